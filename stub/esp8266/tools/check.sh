#!/bin/sh
# check.sh CROSS BUILD: check the linked stub before anyone uploads it.
#  - the only allocated sections are .text, .data and .bss
#  - each lies inside the RAM window stub.ld gives it
#  - the entry point is stub_entry and inside .text
#  - no undefined symbols; every absolute symbol the link resolved (the
#    mask-ROM functions from rom.ld) lies in the ROM, 0x40000000-0x40010000
#  - no stack frame above 512 bytes and none of dynamic size (the stub runs
#    on the ROM loader's stack)
#  - stub.json decodes back to exactly the ELF's .text and .data
set -eu
cross=$1
b=$2
elf=$b/stub.elf
json=$b/stub.json
fail=0
bad() {
	echo "check: $*" >&2
	fail=1
}

"${cross}nm" "$elf" >"$b/check.syms"
sym() {
	v=$(awk -v s="$1" '$3 == s { print $1 }' "$b/check.syms")
	[ -n "$v" ] || { echo "check: no symbol $1" >&2; exit 1; }
	echo $((0x$v))
}

# Allocated sections.
alloc=$("${cross}readelf" -SW "$elf" | awk '
	/^ *\[ *[0-9]+\]/ {
		sub(/^ *\[ *[0-9]+\] */, "")
		if ($0 ~ /^NULL/) next
		name = $1; flags = $7
		if (flags ~ /A/) printf "%s ", name
	}')
[ "$alloc" = ".text .data .bss " ] || bad "allocated sections are '$alloc', want '.text .data .bss '"

inside() { # name start end lo hi
	if [ "$2" -lt "$4" ] || [ "$3" -gt "$5" ] || [ "$2" -gt "$3" ]; then
		bad "$(printf '%s 0x%08X-0x%08X is outside 0x%08X-0x%08X' "$1" "$2" "$3" "$4" "$5")"
	fi
	printf 'check: %-5s 0x%08X-0x%08X %6d bytes (window 0x%08X-0x%08X, %d free)\n' \
		"$1" "$2" "$3" $(($3 - $2)) "$4" "$5" $(($5 - $3))
}
ts=$(sym _text_start) te=$(sym _text_end)
ds=$(sym _data_start) de=$(sym _data_end)
bs=$(sym _bss_start) be=$(sym _bss_end)
inside .text "$ts" "$te" $((0x4010C500)) $((0x4010F1C0))
inside .data "$ds" "$de" $((0x3FFFACAC)) $((0x3FFFB204))
inside .bss "$bs" "$be" $((0x3FFE8100)) $((0x3FFFACAC))
[ "$te" -gt "$ts" ] || bad ".text is empty"

entry=$("${cross}readelf" -h "$elf" | awk '/Entry point address/ { print $4 }')
entry=$((entry))
want=$(sym stub_entry)
[ "$entry" -eq "$want" ] || bad "$(printf 'entry 0x%08X is not stub_entry 0x%08X' "$entry" "$want")"
{ [ "$entry" -ge "$ts" ] && [ "$entry" -lt "$te" ]; } || bad "entry outside .text"
printf 'check: entry 0x%08X (stub_entry)\n' "$entry"

und=$("${cross}nm" -u "$elf")
[ -z "$und" ] || bad "undefined symbols: $und"

rom=$(awk '$2 == "A" && $3 !~ /^_(text|data|bss)_(start|end)$/ { print $1, $3 }' "$b/check.syms")
n=0
echo "$rom" | while read -r addr name; do
	[ -n "$addr" ] || continue
	a=$((0x$addr))
	if [ "$a" -lt $((0x40000000)) ] || [ "$a" -ge $((0x40010000)) ]; then
		echo "check: absolute symbol $name 0x$addr is not in the ROM" >&2
		exit 1
	fi
done || fail=1
n=$(echo "$rom" | grep -c . || true)
echo "check: $n ROM symbols used: $(echo "$rom" | awk '{ printf "%s ", $2 }')"

# Stack frames (-fstack-usage writes one .su per object).
frames=$(cat "$b"/xtensa/*.su)
echo "$frames" | awk -F'\t' '
	$3 ~ /dynamic/ { print "check: dynamic stack frame: " $1 > "/dev/stderr"; bad = 1 }
	$2 + 0 > 512 { print "check: stack frame over 512 bytes: " $1 " " $2 > "/dev/stderr"; bad = 1 }
	$2 + 0 > max { max = $2 + 0; who = $1 }
	END { sub(/.*:/, "", who); printf "check: largest stack frame %d bytes (%s)\n", max, who; exit bad }' || fail=1

# The JSON carries exactly the ELF's bytes and addresses.
"${cross}objcopy" -O binary --only-section=.text "$elf" "$b/check.text"
"${cross}objcopy" -O binary --only-section=.data "$elf" "$b/check.data"
field() { sed -n "s/^ *\"$1\": \"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}\$/\1/p" "$json"; }
field text | base64 -d >"$b/check.text.json"
field data | base64 -d >"$b/check.data.json"
cmp -s "$b/check.text" "$b/check.text.json" || bad "JSON text differs from the ELF"
cmp -s "$b/check.data" "$b/check.data.json" || bad "JSON data differs from the ELF"
[ "$(field entry)" = "$entry" ] || bad "JSON entry $(field entry) != $entry"
[ "$(field text_start)" = "$ts" ] || bad "JSON text_start wrong"
[ "$(field data_start)" = "$ds" ] || bad "JSON data_start wrong"
[ "$(field bss_start)" = "$bs" ] || bad "JSON bss_start wrong"
rm -f "$b"/check.*

if [ "$fail" -ne 0 ]; then
	echo "check: FAILED" >&2
	exit 1
fi
echo "check: ok"
