package appsim

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"regexp"
)

// Kind is the firmware a simulated chip runs.
type Kind string

// The kinds of firmware the simulator tells apart.
const (
	// KindNone: nothing bootable (erased or damaged application, or an
	// image for another chip). Nothing happens after reset.
	KindNone Kind = "none"
	// KindStock: an application the simulator cannot name: the stock
	// Tuya firmware, or any firmware it does not recognise. Like the real
	// stock firmware it has no local HTTP API; only Tuya's local-protocol
	// port (TCP 6668) accepts connections.
	KindStock     Kind = "stock"
	KindOpenBeken Kind = "openbeken"
	KindTasmota   Kind = "tasmota"
	KindESPHome   Kind = "esphome"
)

// Image is what the simulator found in flash.
type Image struct {
	Kind Kind `json:"kind"`
	// Version is the version the firmware will report ("demo-1",
	// "14.4.1", "2024.10.2"), "" when the content does not tell.
	Version string `json:"version,omitempty"`
	// Demo is set for tuyaflash's demo images.
	Demo bool `json:"demo,omitempty"`
	// Evidence says how the content was told, for logs and tests.
	Evidence string `json:"evidence"`
}

// Inspect tells what the flash holds for a chip, as Boot does.
func Inspect(f Flash, chip string) (Image, error) {
	c, err := lookupChip(chip)
	if err != nil {
		return Image{}, err
	}
	return inspect(f, c), nil
}

func inspect(f Flash, c chipInfo) Image {
	if c.beken {
		return inspectBeken(f, c)
	}
	return inspectESP(f, c)
}

// Beken application facts (bk7231-protocol.md §9.1–9.2): the application
// starts at physical 0x11000 and is stored in 34-byte units, 32 data bytes
// and their CRC-16/CMS big-endian; its partition is at most 0x121000 bytes
// (BK7231T; less on N).
const (
	bekenApp      = 0x11000
	bekenAppMax   = 0x121000
	bekenUnit     = 34
	bekenMinUnits = 16 // fewer intact units than this is no application
)

// inspectBeken looks at the application. Beken applications are encrypted
// with the chip's eFuse key, so a real OpenBeken build cannot be told
// apart from the stock Tuya firmware (or any other) by its content: every
// intact application that is not a demo image counts as stock.
func inspectBeken(f Flash, c chipInfo) Image {
	n := min(int64(f.Size())-bekenApp, bekenAppMax)
	if n < bekenUnit*bekenMinUnits {
		return Image{Kind: KindNone, Evidence: "the flash is too small to hold an application at 0x11000"}
	}
	raw := make([]byte, n)
	if _, err := f.ReadAt(raw, bekenApp); err != nil {
		return Image{Kind: KindNone, Evidence: fmt.Sprintf("reading the application failed: %v", err)}
	}
	var logical []byte
	for p := 0; p+bekenUnit <= len(raw); p += bekenUnit {
		if crc16CMS(raw[p:p+32]) != binary.BigEndian.Uint16(raw[p+32:]) {
			break
		}
		logical = append(logical, raw[p:p+32]...)
	}
	if len(logical) < 32*bekenMinUnits {
		return Image{Kind: KindNone, Evidence: "no intact application at 0x11000 (CRC-16 framing broken or erased): the bootloader has nothing to start"}
	}
	if img, ok := demoImage(logical, c); ok {
		return img
	}
	return Image{Kind: KindStock, Evidence: fmt.Sprintf("an intact %d KiB application at 0x11000; Beken applications are encrypted, so its content cannot tell stock Tuya firmware from OpenBeken or another build", len(logical)>>10)}
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

// demoMarker starts the description of a demo image (contract C4).
const demoMarker = "TUYAFLASH-DEMO-FIRMWARE "

// demoImage finds a demo image's marker and JSON in b.
func demoImage(b []byte, c chipInfo) (Image, bool) {
	i := bytes.Index(b, []byte(demoMarker))
	if i < 0 {
		return Image{}, false
	}
	rest := b[i+len(demoMarker):]
	end := bytes.IndexByte(rest, 0)
	if end < 0 {
		return Image{}, false
	}
	var d struct{ Firmware, Version, Chip string }
	if err := json.Unmarshal(rest[:end], &d); err != nil {
		return Image{}, false
	}
	kind := Kind(d.Firmware)
	switch kind {
	case KindOpenBeken, KindTasmota, KindESPHome:
	default:
		return Image{Kind: KindStock, Evidence: fmt.Sprintf("a demo image of an unknown firmware %q", d.Firmware)}, true
	}
	if !demoFits(d.Chip, c.name) {
		return Image{Kind: KindNone, Evidence: fmt.Sprintf("a %s demo image built for %s: a %s does not start it", d.Firmware, d.Chip, c.name)}, true
	}
	return Image{Kind: kind, Version: d.Version, Demo: true, Evidence: fmt.Sprintf("demo image marker: %s %s for %s", d.Firmware, d.Version, d.Chip)}, true
}

// demoFits reports whether a demo built for chip img runs on chip: the
// same chip, an ESP8266 image on an ESP8285 (same core), a BK7231N image
// on a BK7231M (the same chip with another key: the key gate, not the
// simulated firmware, decides that).
func demoFits(img, chip string) bool {
	return img == chip || (img == "ESP8266" && chip == "ESP8285") || (img == "BK7231N" && chip == "BK7231M")
}

// ESP8266 image facts (esp8266-protocol.md §11; esptool bin_image.py): a
// V1 image is 0xE9, segment count, flash mode, size/frequency, entry
// point, then segments of load address, length and data, zero padding to
// the last byte of a 16-byte line and an XOR checksum of all segment data
// seeded with 0xEF. Arduino builds (Tasmota, ESPHome) put eboot there and
// the sketch, another V1 image, at 0x1000; the stock Tuya firmware puts
// the SDK's boot_v1.x there and a V2 application (0xEA) at 0x1000.
const (
	espMagicV1  = 0xE9
	espMagicV2  = 0xEA
	espAppAt    = 0x1000
	espChecksum = 0xEF
)

// espSegments walks the segments of a V1 header at off and returns where
// they end and their XOR checksum.
func espSegments(b []byte, off int) (end int, sum byte, ok bool) {
	if off+8 > len(b) || b[off] != espMagicV1 || b[off+1] == 0 || b[off+1] > 16 {
		return 0, 0, false
	}
	sum = espChecksum
	p := off + 8
	for range int(b[off+1]) {
		if p+8 > len(b) {
			return 0, 0, false
		}
		addr, n := binary.LittleEndian.Uint32(b[p:]), int(binary.LittleEndian.Uint32(b[p+4:]))
		if addr < 0x3FFE0000 || addr >= 0x40400000 || n < 0 || p+8+n > len(b) {
			return 0, 0, false
		}
		for _, x := range b[p+8 : p+8+n] {
			sum ^= x
		}
		p += 8 + n
	}
	return p, sum, true
}

// espExtent checks the image the ROM boots and returns where the firmware
// ends in flash (the application at 0x1000 included).
func espExtent(b []byte) (int, string, bool) {
	end, sum, ok := espSegments(b, 0)
	if !ok {
		return 0, "no ESP8266 image at 0x0 (no 0xE9 header with sane segments)", false
	}
	at := end | 15
	if at >= len(b) || b[at] != sum {
		return 0, "the image at 0x0 fails its checksum: the ROM does not start it", false
	}
	end = at + 1
	if end > espAppAt || len(b) < espAppAt+8 {
		return end, "", true
	}
	switch b[espAppAt] {
	case espMagicV1:
		// The sketch's checksum is not checked: Arduino's elf2bin.py
		// writes CRC words into it after computing the checksum.
		if e, _, ok := espSegments(b, espAppAt); ok {
			end = e | 15 + 1
		}
	case espMagicV2:
		p := espAppAt + 8
		if p+8 <= len(b) {
			n := int(binary.LittleEndian.Uint32(b[p+4:]))
			if q := p + 8 + n; n >= 0 && q <= len(b) {
				end = q
				if e, _, ok := espSegments(b, q); ok {
					end = e | 15 + 1
				}
			}
		}
	}
	return min(end, len(b)), "", true
}

var (
	// ESPHome's HelloResponse server_info is App.get_name() + " (esphome
	// v" ESPHOME_VERSION ")" (esphome/components/api/api_connection.cpp):
	// the literal tail is in every build with the native API.
	esphomeVersionRe = regexp.MustCompile(` \(esphome v(\d{4}\.\d{1,2}\.\d+[0-9a-z.-]*)\)`)
	// Tasmota builds its Server header from "Tasmota/%s (%s)"
	// (xdrv_01_9_webserver.ino WSHeaderSend) and carries its default
	// OtaUrl "http://ota.tasmota.com/…" (my_user_config.h OTA_URL).
	tasmotaStrings = [][]byte{[]byte("Tasmota/%s"), []byte("ota.tasmota.com")}
	// Tasmota's VERSION_MARKER: 0x5AA55AA5, the version word in older
	// releases (0xFFFFFFFF in newer ones), 0xA55AA55A (tasmota.ino).
	tasmotaMarkerStart = []byte{0xA5, 0x5A, 0xA5, 0x5A}
	tasmotaMarkerEnd   = []byte{0x5A, 0xA5, 0x5A, 0xA5}
)

// inspectESP checks the boot image and tells the firmware by the strings
// its unencrypted code carries.
func inspectESP(f Flash, c chipInfo) Image {
	b := make([]byte, min(f.Size(), 16<<20))
	if _, err := f.ReadAt(b, 0); err != nil {
		return Image{Kind: KindNone, Evidence: fmt.Sprintf("reading the flash failed: %v", err)}
	}
	end, why, ok := espExtent(b)
	if !ok {
		return Image{Kind: KindNone, Evidence: why}
	}
	fw := b[:end]
	if img, ok := demoImage(fw, c); ok {
		return img
	}
	if m := esphomeVersionRe.FindSubmatch(fw); m != nil {
		return Image{Kind: KindESPHome, Version: string(m[1]), Evidence: fmt.Sprintf("the string %q", m[0])}
	}
	for _, s := range tasmotaStrings {
		if bytes.Contains(fw, s) {
			return Image{Kind: KindTasmota, Version: tasmotaVersion(fw), Evidence: fmt.Sprintf("the string %q", s)}
		}
	}
	return Image{Kind: KindStock, Evidence: fmt.Sprintf("a valid %d KiB image that is neither Tasmota nor ESPHome", end>>10)}
}

// tasmotaVersion reads the version word of an older Tasmota's
// VERSION_MARKER: major, minor, patch and build bytes from the top
// (tasmota GetVersion); "" when the marker holds none.
func tasmotaVersion(b []byte) string {
	for i := 0; ; {
		j := bytes.Index(b[i:], tasmotaMarkerStart)
		if j < 0 || i+j+12 > len(b) {
			return ""
		}
		p := i + j
		if bytes.Equal(b[p+8:p+12], tasmotaMarkerEnd) {
			v := binary.LittleEndian.Uint32(b[p+4:])
			if v == 0xFFFFFFFF || v == 0 {
				return ""
			}
			s := fmt.Sprintf("%d.%d.%d", v>>24, v>>16&0xFF, v>>8&0xFF)
			if v&0xFF != 0 {
				s += fmt.Sprintf(".%d", v&0xFF)
			}
			return s
		}
		i = p + 1
	}
}
