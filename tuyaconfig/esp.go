package tuyaconfig

import (
	"bytes"
	"fmt"
)

// ESP8266 Tuya firmware keeps its configuration in a different store: a
// "PSM" area at 0x7B000 of a 1 MiB dump, AES-ECB encrypted with a key of
// which one byte varies per device, or in plaintext (BK7231GUIFlashTool
// Utils/TuyaConfig.cs TryExtractPSM, which finds it heuristically and
// brute-forces that byte; openshwprojects/FlashDumps
// IoT/ESP8266/rename_report.csv, psm_start 0x7B000 on every Tuya ESP8266
// dump listed). Its record layout and checksums are not publicly
// documented, and libretiny's maintainer states the ESP format is
// "completely different" and unknown to them
// (https://github.com/libretiny-eu/ltchiptool/issues/44). So tuyaflash
// recognises such dumps and says so instead of guessing.

// espPSMOffset is where the Tuya PSM store starts in the public ESP8266
// dumps.
const espPSMOffset = 0x7B000

// detectUnsupported returns an *UnsupportedFormatError when dump looks
// like an ESP8266 flash dump, nil otherwise.
func detectUnsupported(dump []byte) error {
	var found []string
	// An ESP8266 flash starts with a boot image whose first byte is the
	// image magic 0xE9 (esp8266-protocol.md §11.1); a BK7231 dump starts
	// with the Beken bootloader.
	if len(dump) >= 4 && dump[0] == 0xE9 && dump[1] <= 16 && dump[2] <= 3 {
		found = append(found, "ESP8266 boot image at 0x0")
	}
	for off := 0; off+4 <= len(dump); off += sectorSize {
		if bytes.HasPrefix(dump[off:], []byte("PSM1")) {
			found = append(found, fmt.Sprintf("plaintext Tuya PSM store at 0x%X", off))
			break
		}
	}
	if len(found) == 0 {
		return nil
	}
	detail := found[0]
	if len(found) > 1 {
		detail += ", " + found[1]
	}
	if len(found) == 1 && found[0] == "ESP8266 boot image at 0x0" && len(dump) > espPSMOffset {
		detail += fmt.Sprintf("; its Tuya store (PSM, usually at 0x%X) has no public format description", espPSMOffset)
	}
	return &UnsupportedFormatError{Chip: "ESP8266", Detail: detail}
}
