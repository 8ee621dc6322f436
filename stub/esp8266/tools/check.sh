#!/bin/sh
# check.sh CROSS BUILD: check the linked stub and loader before anyone
# uploads them.
#  - the only allocated sections are .text, .data and .bss (the loader:
#    .text alone)
#  - each lies inside the RAM window its linker script gives it; the
#    loader's code lies clear of the stub's
#  - the entry point is stub_entry / loader_entry and inside .text
#  - no undefined symbols; every absolute symbol the link resolved (the
#    mask-ROM functions from rom.ld) lies in the ROM, 0x40000000-0x40010000
#  - no stack frame above 512 bytes and none of dynamic size (both run on
#    the ROM loader's stack)
#  - the JSON files decode back to exactly the ELFs' .text and .data
set -eu
cross=$1
b=$2
fail=0
bad() {
	echo "check: $*" >&2
	fail=1
}

inside() { # name start end lo hi
	if [ "$2" -lt "$4" ] || [ "$3" -gt "$5" ] || [ "$2" -gt "$3" ]; then
		bad "$(printf '%s 0x%08X-0x%08X is outside 0x%08X-0x%08X' "$1" "$2" "$3" "$4" "$5")"
	fi
	printf 'check: %-12s 0x%08X-0x%08X %6d bytes (window 0x%08X-0x%08X, %d free)\n' \
		"$1" "$2" "$3" $(($3 - $2)) "$4" "$5" $(($5 - $3))
}

# image NAME ENTRY SECTIONS: checks one ELF and its JSON; sets ts te ds de bs be.
image() {
	name=$1
	elf=$b/$name.elf
	json=$b/$name.json
	"${cross}nm" "$elf" >"$b/check.syms"
	sym() {
		v=$(awk -v s="$1" '$3 == s { print $1 }' "$b/check.syms")
		[ -n "$v" ] || { echo "check: no symbol $1 in $name" >&2; exit 1; }
		echo $((0x$v))
	}
	alloc=$("${cross}readelf" -SW "$elf" | awk '
		/^ *\[ *[0-9]+\]/ {
			sub(/^ *\[ *[0-9]+\] */, "")
			if ($0 ~ /^NULL/) next
			name = $1; flags = $7
			if (flags ~ /A/) printf "%s ", name
		}')
	[ "$alloc" = "$3" ] || bad "$name: allocated sections are '$alloc', want '$3'"
	ts=$(sym _text_start) te=$(sym _text_end)
	ds=$(sym _data_start) de=$(sym _data_end)
	bs=$(sym _bss_start) be=$(sym _bss_end)
	[ "$te" -gt "$ts" ] || bad "$name: .text is empty"

	entry=$("${cross}readelf" -h "$elf" | awk '/Entry point address/ { print $4 }')
	entry=$((entry))
	want=$(sym "$2")
	[ "$entry" -eq "$want" ] || bad "$(printf '%s: entry 0x%08X is not %s 0x%08X' "$name" "$entry" "$2" "$want")"
	{ [ "$entry" -ge "$ts" ] && [ "$entry" -lt "$te" ]; } || bad "$name: entry outside .text"
	printf 'check: %s entry 0x%08X (%s)\n' "$name" "$entry" "$2"

	und=$("${cross}nm" -u "$elf")
	[ -z "$und" ] || bad "$name: undefined symbols: $und"

	rom=$(awk '$2 == "A" && $3 !~ /^_(text|data|bss)_(start|end)$/ { print $1, $3 }' "$b/check.syms")
	echo "$rom" | while read -r addr sname; do
		[ -n "$addr" ] || continue
		a=$((0x$addr))
		if [ "$a" -lt $((0x40000000)) ] || [ "$a" -ge $((0x40010000)) ]; then
			echo "check: $name: absolute symbol $sname 0x$addr is not in the ROM" >&2
			exit 1
		fi
	done || fail=1
	n=$(echo "$rom" | grep -c . || true)
	echo "check: $name: $n ROM symbols used: $(echo "$rom" | awk '{ printf "%s ", $2 }')"

	# The JSON carries exactly the ELF's bytes and addresses.
	"${cross}objcopy" -O binary --only-section=.text "$elf" "$b/check.text"
	if [ "$ds" -lt "$de" ]; then
		"${cross}objcopy" -O binary --only-section=.data "$elf" "$b/check.data"
	else
		: >"$b/check.data"
	fi
	field() { sed -n "s/^ *\"$1\": \"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}\$/\1/p" "$json"; }
	field text | base64 -d >"$b/check.text.json"
	field data | base64 -d >"$b/check.data.json"
	cmp -s "$b/check.text" "$b/check.text.json" || bad "$name: JSON text differs from the ELF"
	cmp -s "$b/check.data" "$b/check.data.json" || bad "$name: JSON data differs from the ELF"
	[ "$(field entry)" = "$entry" ] || bad "$name: JSON entry $(field entry) != $entry"
	[ "$(field text_start)" = "$ts" ] || bad "$name: JSON text_start wrong"
	[ "$(field data_start)" = "$ds" ] || bad "$name: JSON data_start wrong"
	[ "$(field bss_start)" = "$bs" ] || bad "$name: JSON bss_start wrong"
	rm -f "$b"/check.*
}

image stub stub_entry ".text .data .bss "
inside "stub .text" "$ts" "$te" $((0x4010C500)) $((0x4010EA00))
inside "stub .data" "$ds" "$de" $((0x3FFFACAC)) $((0x3FFFB204))
inside "stub .bss" "$bs" "$be" $((0x3FFE8100)) $((0x3FFFACAC))

image loader loader_entry ".text "
inside "loader .text" "$ts" "$te" $((0x4010EA00)) $((0x4010F1C0))
[ "$ds" -eq "$de" ] && [ "$bs" -eq "$be" ] || bad "loader has data"

# Stack frames (-fstack-usage writes one .su per object).
frames=$(cat "$b"/xtensa/*.su)
echo "$frames" | awk -F'\t' '
	$3 ~ /dynamic/ { print "check: dynamic stack frame: " $1 > "/dev/stderr"; bad = 1 }
	$2 + 0 > 512 { print "check: stack frame over 512 bytes: " $1 " " $2 > "/dev/stderr"; bad = 1 }
	$2 + 0 > max { max = $2 + 0; who = $1 }
	END { sub(/.*:/, "", who); printf "check: largest stack frame %d bytes (%s)\n", max, who; exit bad }' || fail=1

if [ "$fail" -ne 0 ]; then
	echo "check: FAILED" >&2
	exit 1
fi
echo "check: ok"
