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
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

//go:embed stub.json
var stubJSON []byte

// JSON returns the stub image in esptool's JSON layout (keys entry, text,
// text_start, data, data_start, bss_start). The caller may modify the
// returned slice.
func JSON() []byte { return bytes.Clone(stubJSON) }

// Image is a decoded stub: two segments to upload and the address to start.
type Image struct {
	Text      []byte // code, uploaded to TextStart (IRAM)
	TextStart uint32
	Data      []byte // initialised data, uploaded to DataStart (DRAM)
	DataStart uint32
	BSSStart  uint32 // start of the zero-initialised area (informational)
	Entry     uint32 // where MEM_END jumps
}

// ErrBadImage reports a stub file that is not an ESP8266 stub in esptool's
// JSON layout.
var ErrBadImage = errors.New("not an ESP8266 stub image in esptool's JSON layout")

// ESP8266 RAM the ROM loader lets a stub use (esptool's ESP8266 memory map:
// DRAM 0x3FFE8000-0x40000000; IRAM 0x40100000-0x40110000 with the flash
// cache off, as it is in the loader).
const (
	iramStart = 0x40100000
	iramEnd   = 0x40110000
	dramStart = 0x3FFE8000
	dramEnd   = 0x40000000
)

// Default decodes the embedded stub.
func Default() (*Image, error) { return Parse(stubJSON) }

// Parse decodes a stub in esptool's JSON layout, such as the file given to
// tuyaflash --stub, and checks that it is meant for an ESP8266: text in IRAM,
// data in DRAM, the entry point inside the text. Errors wrap ErrBadImage.
func Parse(b []byte) (*Image, error) {
	var raw struct {
		Entry     *uint32 `json:"entry"`
		Text      *string `json:"text"`
		TextStart *uint32 `json:"text_start"`
		Data      *string `json:"data"`
		DataStart *uint32 `json:"data_start"`
		BSSStart  *uint32 `json:"bss_start"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadImage, err)
	}
	if raw.Entry == nil || raw.Text == nil || raw.TextStart == nil {
		return nil, fmt.Errorf("%w: entry, text and text_start are required", ErrBadImage)
	}
	im := &Image{TextStart: *raw.TextStart, Entry: *raw.Entry}
	var err error
	if im.Text, err = base64.StdEncoding.DecodeString(*raw.Text); err != nil {
		return nil, fmt.Errorf("%w: text: %v", ErrBadImage, err)
	}
	if raw.Data != nil {
		if im.Data, err = base64.StdEncoding.DecodeString(*raw.Data); err != nil {
			return nil, fmt.Errorf("%w: data: %v", ErrBadImage, err)
		}
		if raw.DataStart == nil {
			return nil, fmt.Errorf("%w: data without data_start", ErrBadImage)
		}
		im.DataStart = *raw.DataStart
	}
	if raw.BSSStart != nil {
		im.BSSStart = *raw.BSSStart
	}
	if len(im.Text) == 0 {
		return nil, fmt.Errorf("%w: empty text segment", ErrBadImage)
	}
	if !within(im.TextStart, len(im.Text), iramStart, iramEnd) {
		return nil, fmt.Errorf("%w: text 0x%08X+%d is outside ESP8266 IRAM 0x%08X-0x%08X (a stub for another chip?)",
			ErrBadImage, im.TextStart, len(im.Text), iramStart, iramEnd)
	}
	if len(im.Data) > 0 && !within(im.DataStart, len(im.Data), dramStart, dramEnd) {
		return nil, fmt.Errorf("%w: data 0x%08X+%d is outside ESP8266 DRAM 0x%08X-0x%08X",
			ErrBadImage, im.DataStart, len(im.Data), dramStart, dramEnd)
	}
	if im.Entry < im.TextStart || uint64(im.Entry) >= uint64(im.TextStart)+uint64(len(im.Text)) {
		return nil, fmt.Errorf("%w: entry 0x%08X is not inside the text segment", ErrBadImage, im.Entry)
	}
	return im, nil
}

func within(start uint32, n int, lo, hi uint64) bool {
	s := uint64(start)
	return s >= lo && s+uint64(n) <= hi
}
