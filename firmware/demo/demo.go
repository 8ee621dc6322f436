// Package demo builds tuyaflash's demo images: small, clearly synthetic
// firmware images for tuyaflash's virtual devices only (contract C4 of the
// virtual bench). They let `--firmware demo` run the whole migration story
// offline against a simulated chip, whose simulated firmware recognises them
// and brings up the network side of the firmware the image names.
//
// A demo image is not firmware: no real chip can run it. Each one carries,
// in the clear, the ASCII marker "TUYAFLASH-DEMO-FIRMWARE " followed by a
// JSON object {"firmware":…,"version":"demo-1","chip":…} and a NUL, and a
// sentence saying what it is. The images are generated here, byte for byte
// the same on every call; nothing is stored in the repository.
//
//   - Beken (OpenBeken demo): an application as tuyaflash's image detection
//     knows one, for 0x11000: 32-byte units each followed by its CRC-16/CMS
//     (big-endian; bk7231-protocol.md §9.1), the first unit starting with
//     the 8 bytes every application for the chip's eFuse key starts with
//     (the Tuya-key signature on BK7231T/N, the plain one on the zero-key
//     chips; ltchiptool soc/bk72xx/binary.py check_app_code_crc), so that
//     the chip-family and key gates treat it like an OpenBeken UA image.
//   - ESP8266/ESP8285 (Tasmota demo, ESPHome demo): a V1 image for 0x0
//     (magic 0xE9, flash mode DOUT, 1 MiB at 40 MHz, an IRAM segment that
//     holds only the Xtensa instruction "j ." at the entry point, a DRAM
//     segment with the marker and the label, the XOR checksum seeded with
//     0xEF; esp8266-protocol.md §11).
//
// The package never prints and does no I/O.
package demo

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Marker starts the description every demo image carries.
const Marker = "TUYAFLASH-DEMO-FIRMWARE "

// Version is the version all current demo images report.
const Version = "demo-1"

// The firmwares a demo image can name.
const (
	OpenBekenFirmware = "openbeken"
	TasmotaFirmware   = "tasmota"
	ESPHomeFirmware   = "esphome"
)

// Info is what a demo image says about itself.
type Info struct {
	Firmware string `json:"firmware"`
	Version  string `json:"version"`
	Chip     string `json:"chip"`
}

// ErrChip is returned for a chip no demo image exists for.
var ErrChip = errors.New("no demo image for this chip")

// label is the sentence after the marker, for people who look inside.
const label = "\nThis is a synthetic demo image made by tuyaflash for its virtual devices only. " +
	"It is not firmware and does nothing on a real chip. " +
	"The simulated chip recognises it by the line above and plays the firmware it names.\n"

// The first 8 bytes of a BK72xx application (ltchiptool soc/bk72xx/
// binary.py check_app_code_crc): the ARM code "b #0x40; ldr pc,[pc,#0x14]"
// encrypted with Tuya's eFuse key, and the same code in the clear, as an
// application for a chip with an all-zero key starts.
var (
	bekenSigTuya  = []byte{0x2F, 0x07, 0xB5, 0x94, 0x35, 0xFF, 0x2A, 0x9B}
	bekenSigPlain = []byte{0x0E, 0x00, 0x00, 0xEA, 0x14, 0xF0, 0x9F, 0xE5}
)

// bekenChips are the Beken chips a demo exists for, with the eFuse key
// their applications are built for: Tuya's on BK7231T and BK7231N, none on
// BK7231M (a BK7231N with an all-zero key) and on the chips whose
// bootloaders tuyaflash's table lists for the zero key (BK7238, BK7231U,
// BK7252; bk7231tools BkBootloaderType). BK7252N is taken as zero-key like
// its BK7252 sibling (not confirmed by a source).
var bekenChips = map[string]bool{
	"BK7231T": true, "BK7231N": true,
	"BK7231M": false, "BK7238": false, "BK7231U": false, "BK7252": false, "BK7252N": false,
}

// espChips are the ESP chips a demo exists for.
var espChips = map[string]bool{"ESP8266": true, "ESP8285": true}

// canon upper-cases a chip name and checks it against a table.
func canon(chip string, table map[string]bool) (string, bool) {
	c := strings.ToUpper(strings.TrimSpace(chip))
	_, ok := table[c]
	return c, ok
}

// OpenBeken returns the OpenBeken demo application for a Beken chip
// (BK7231T, BK7231N, BK7231M, BK7238, BK7231U, BK7252, BK7252N), to be
// written at 0x11000.
func OpenBeken(chip string) ([]byte, error) {
	c, ok := canon(chip, bekenChips)
	if !ok {
		return nil, fmt.Errorf("openbeken demo for %q: %w (Beken chips: BK7231T, BK7231N, BK7231M, BK7238, BK7231U, BK7252, BK7252N)", chip, ErrChip)
	}
	return bekenApp(Info{Firmware: OpenBekenFirmware, Version: Version, Chip: c}, bekenChips[c]), nil
}

// Tasmota returns the Tasmota demo image for an ESP8266 or ESP8285, to be
// written at 0x0.
func Tasmota(chip string) ([]byte, error) {
	return espDemo(TasmotaFirmware, chip)
}

// ESPHome returns the ESPHome demo image for an ESP8266 or ESP8285, to be
// written at 0x0. `--firmware demo` picks Tasmota on these chips; this one
// lets the virtual bench show ESPHome too.
func ESPHome(chip string) ([]byte, error) {
	return espDemo(ESPHomeFirmware, chip)
}

func espDemo(fw, chip string) ([]byte, error) {
	c, ok := canon(chip, espChips)
	if !ok {
		return nil, fmt.Errorf("%s demo for %q: %w (ESP chips: ESP8266, ESP8285)", fw, chip, ErrChip)
	}
	return espImage(Info{Firmware: fw, Version: Version, Chip: c}), nil
}

// For returns the demo image `--firmware demo` means for a chip family:
// OpenBeken on Beken chips, Tasmota on ESP8266/ESP8285.
func For(family string) ([]byte, error) {
	if _, ok := canon(family, espChips); ok {
		return Tasmota(family)
	}
	if _, ok := canon(family, bekenChips); ok {
		return OpenBeken(family)
	}
	return nil, fmt.Errorf("demo for %q: %w", family, ErrChip)
}

// FileName is the name tuyaflash gives a demo image in messages and
// backups, e.g. "tuyaflash-demo-openbeken-BK7231N.bin".
func FileName(i Info) string {
	return fmt.Sprintf("tuyaflash-demo-%s-%s.bin", i.Firmware, i.Chip)
}

// text is the marker, its JSON, the NUL and the label.
func text(i Info) []byte {
	j, _ := json.Marshal(i) // a struct of strings always marshals
	b := append([]byte(Marker), j...)
	b = append(b, 0)
	return append(b, label...)
}

// bekenLogical is the application's length before CRC framing: 4 KiB,
// 128 units.
const bekenLogical = 4096

// bekenApp builds the CRC-framed application.
func bekenApp(i Info, tuyaKey bool) []byte {
	logical := make([]byte, bekenLogical)
	sig := bekenSigPlain
	if tuyaKey {
		sig = bekenSigTuya
	}
	copy(logical, sig)
	copy(logical[32:], text(i))
	out := make([]byte, 0, bekenLogical/32*34)
	for off := 0; off < len(logical); off += 32 {
		unit := logical[off : off+32]
		out = append(out, unit...)
		out = binary.BigEndian.AppendUint16(out, crc16CMS(unit))
	}
	return out
}

// crc16CMS is CRC-16/CMS: polynomial 0x8005, initial 0xFFFF, not reflected,
// no final XOR (bk7231-protocol.md §9.1).
func crc16CMS(b []byte) uint16 {
	c := uint16(0xFFFF)
	for _, x := range b {
		c ^= uint16(x) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x8005
			} else {
				c <<= 1
			}
		}
	}
	return c
}

// ESP8266 image facts (esp8266-protocol.md §11; esptool bin_image.py).
const (
	espMagic     = 0xE9
	espModeDOUT  = 3
	espSize1M40  = 0x20 // flash size 1 MiB (high nibble 2), 40 MHz (low nibble 0)
	espIRAM      = 0x40100000
	espDRAM      = 0x3FFE8000
	espChecksum0 = 0xEF
	// espDataLen is the DRAM segment's length: the image stays under
	// 0x1000 bytes, so nothing looks like an application behind it.
	espDataLen = 3072
)

// espImage builds a V1 image: header, IRAM segment "j ." at the entry
// point, DRAM segment with the text, zero padding and the checksum in the
// last byte of a 16-byte line.
func espImage(i Info) []byte {
	code := []byte{0x06, 0xFF, 0xFF, 0x00} // Xtensa "j ." (jump to itself), padded to 4 bytes
	data := make([]byte, espDataLen)
	copy(data, text(i))
	segs := []struct {
		addr uint32
		data []byte
	}{{espIRAM, code}, {espDRAM, data}}
	b := []byte{espMagic, byte(len(segs)), espModeDOUT, espSize1M40}
	b = binary.LittleEndian.AppendUint32(b, espIRAM)
	sum := byte(espChecksum0)
	for _, s := range segs {
		b = binary.LittleEndian.AppendUint32(b, s.addr)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s.data)))
		b = append(b, s.data...)
		for _, c := range s.data {
			sum ^= c
		}
	}
	for len(b)%16 != 15 {
		b = append(b, 0)
	}
	return append(b, sum)
}

// Is reports whether data is a demo image (or a flash dump that holds one:
// an ESP image at 0x0, a Beken application at 0x0 or at 0x11000) and what
// it says about itself.
func Is(data []byte) (Info, bool) {
	if len(data) > 0 && data[0] == espMagic {
		return parse(data[:min(len(data), 0x1000)])
	}
	for _, off := range []int{0, 0x11000} {
		if i, ok := parse(unframe(data, off, bekenLogical/32)); ok {
			return i, true
		}
	}
	return Info{}, false
}

// unframe strips the CRC-16 framing of up to n units from off, stopping at
// the first unit whose CRC does not match.
func unframe(b []byte, off, n int) []byte {
	var out []byte
	for u := 0; u < n; u++ {
		p := off + u*34
		if p+34 > len(b) || crc16CMS(b[p:p+32]) != binary.BigEndian.Uint16(b[p+32:]) {
			break
		}
		out = append(out, b[p:p+32]...)
	}
	return out
}

// parse finds the marker in b and decodes the JSON after it.
func parse(b []byte) (Info, bool) {
	i := bytes.Index(b, []byte(Marker))
	if i < 0 {
		return Info{}, false
	}
	rest := b[i+len(Marker):]
	end := bytes.IndexByte(rest, 0)
	if end < 0 {
		return Info{}, false
	}
	var info Info
	if err := json.Unmarshal(rest[:end], &info); err != nil || info.Firmware == "" || info.Chip == "" {
		return Info{}, false
	}
	return info, true
}
