// Package espstub carries tuyaflash's own ESP8266 flasher stub: a small RAM
// program, built from the C sources in this directory for the xtensa-lx106
// core, that a client uploads with MEM_BEGIN/MEM_DATA/MEM_END so that the
// chip can read flash, compute MD5 sums, change the baud rate and take
// zlib-compressed writes, none of which the ESP8266 ROM loader can do. It
// speaks esptool's stub protocol.
//
// stub.json is generated (make -C stub/esp8266 update) and committed, so
// building tuyaflash needs no cross compiler; make verify rebuilds it from
// source and fails when it differs. See README.md.
package espstub

import (
	"bytes"
	_ "embed"
)

//go:embed stub.json
var stubJSON []byte

//go:embed loader.json
var loaderJSON []byte

// JSON returns the stub image in esptool's JSON layout (keys entry, text,
// text_start, data, data_start, bss_start), as flasher/esp8266.LoadStub
// reads it. The caller may modify the returned slice.
func JSON() []byte { return bytes.Clone(stubJSON) }

// LoaderJSON returns the loader, in the same layout: a first stage of
// 1.4 KB that the ROM takes at 115200 baud; it raises the rate and loads
// the stub at the new one (README, "The loader"). It lies at
// 0x4010EA00-0x4010F1C0, clear of the stub, and speaks READ_REG,
// CHANGE_BAUDRATE and MEM_BEGIN/MEM_DATA/MEM_END only.
func LoaderJSON() []byte { return bytes.Clone(loaderJSON) }
