#!/bin/sh
# mkjson.sh CROSS ELF: print the stub image in esptool's JSON layout
# (entry, text, text_start, data, data_start, bss_start; segments in base64,
# addresses as decimal integers) on stdout.
set -eu
cross=$1
elf=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"${cross}objcopy" -O binary --only-section=.text "$elf" "$tmp/text.bin"
"${cross}objcopy" -O binary --only-section=.data "$elf" "$tmp/data.bin"
"${cross}nm" "$elf" >"$tmp/syms"

sym() {
	v=$(awk -v s="$1" '$3 == s { print $1 }' "$tmp/syms")
	if [ -z "$v" ]; then
		echo "mkjson: symbol $1 missing from $elf" >&2
		exit 1
	fi
	echo $((0x$v))
}

entry=$("${cross}readelf" -h "$elf" | awk '/Entry point address/ { print $4 }')
printf '{\n'
printf '    "entry": %d,\n' $((entry))
printf '    "text": "%s",\n' "$(base64 -w0 "$tmp/text.bin")"
printf '    "text_start": %d,\n' "$(sym _text_start)"
printf '    "data": "%s",\n' "$(base64 -w0 "$tmp/data.bin")"
printf '    "data_start": %d,\n' "$(sym _data_start)"
printf '    "bss_start": %d\n' "$(sym _bss_start)"
printf '}\n'
