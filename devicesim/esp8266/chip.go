package espsim

import (
	"fmt"
	"strings"
)

// Chip is the simulated Espressif part.
type Chip int

const (
	// ESP8266 is the ESP8266EX with an external SPI flash chip (Tuya
	// TYWE2S/TYWE3S class modules).
	ESP8266 Chip = iota
	// ESP8285 is the ESP8266 core with the flash in the package; its
	// eFuses carry the ESP8285 marker bits (reference §7.2).
	ESP8285
)

// Chips returns every simulated chip, in Chip order.
func Chips() []Chip { return []Chip{ESP8266, ESP8285} }

// ParseChip accepts "esp8266" and "esp8285" in any case.
func ParseChip(s string) (Chip, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "esp8266":
		return ESP8266, nil
	case "esp8285":
		return ESP8285, nil
	}
	return 0, fmt.Errorf("espsim: unknown chip %q (want esp8266 or esp8285)", s)
}

// String returns the chip name as ParseChip accepts it.
func (c Chip) String() string {
	switch c {
	case ESP8266:
		return "esp8266"
	case ESP8285:
		return "esp8285"
	}
	return fmt.Sprintf("Chip(%d)", int(c))
}

const (
	kib = 1024
	mib = 1024 * kib

	// defaultFlashSize is the flash size of Tuya's ESP8266/ESP8285
	// modules and of Tasmota's 1M board definition (reference §1).
	defaultFlashSize = 1 * mib
)

// Defaults used when Config leaves a field zero.
var (
	// defaultMAC8266 uses Espressif's first OUI, which the eFuses encode
	// as OUI index 0 in word 1 (reference §7.3).
	defaultMAC8266 = [6]byte{0x18, 0xFE, 0x34, 0x5A, 0xC3, 0xE1}
	// defaultMAC8285 uses the OUI seen on an ESP8285 in
	// https://github.com/espressif/esptool/issues/358 (dc:4f:22), which
	// the eFuses carry in word 3.
	defaultMAC8285 = [6]byte{0xDC, 0x4F, 0x22, 0x6B, 0x21, 0x9E}
)

// defaultMAC is the eFuse MAC of a chip whose Config leaves MAC zero.
func defaultMAC(c Chip) [6]byte {
	if c == ESP8285 {
		return defaultMAC8285
	}
	return defaultMAC8266
}

// defaultFlashID returns a GigaDevice GD25Q-series JEDEC id (manufacturer
// 0xC8, memory type 0x40) whose capacity byte is log2 of size, the
// convention esptool decodes (reference §9.1; GD25Q80 = 0x1440C8 on an
// ESP-07 in https://github.com/esp8266/Arduino/issues/822).
func defaultFlashID(size int) uint32 {
	capByte := uint32(0)
	for s := size; s > 1; s >>= 1 {
		capByte++
	}
	return 0xC8 | 0x40<<8 | capByte<<16
}

// eFuse bit positions (reference §7.2, esptool targets/esp8266.py).
const (
	efuseW0ESP8285  = 1 << 4  // bit 4: ESP8285, embedded flash 1 or 2 MB
	efuseW2ESP8285  = 1 << 16 // bit 80: ESP8285, embedded flash 2 or 4 MB
	efuseW3Flash25  = 1 << 25 // bit 121
	efuseW3Flash26  = 1 << 26 // bit 122
	ouiEspressif0   = 0x18FE34
	ouiEspressif1   = 0xACD074
	efuseMAC0Addr   = 0x3FF00050
	efuseMAC3Addr   = 0x3FF0005C
	chipMagicAddr   = 0x40001000
	chipMagicValue  = 0xFFF0C101
	uartClkdivAddr  = 0x60000014
	spiBase         = 0x60000200
	spiAddrOffs     = 0x04
	spiRdStatusOffs = 0x10
	spiUserOffs     = 0x1C
	spiUser1Offs    = 0x20
	spiUser2Offs    = 0x24
	spiW0Offs       = 0x40
	spiEnd          = spiBase + 0x80
)

// encodeEFuses returns the four eFuse words (0x3FF00050…5C) that make
// esptool's read_mac return mac and get_chip_description name the chip:
//
//	MAC[3], MAC[4] = w1 bits 15..8, 7..0; MAC[5] = w0 bits 31..24;
//	OUI = w3 bits 23..0 when w3 != 0, else 18:FE:34 (w1 bits 23..16 = 0)
//	or AC:D0:74 (w1 bits 23..16 = 1).
//
// ESP8285 parts carry the embedded-flash size in w0 bit 4, w2 bit 16 and w3
// bits 25/26; when w3 must hold those bits the OUI is stored in w3 too,
// because a non-zero w3 is what esptool reads the OUI from.
func encodeEFuses(chip Chip, mac [6]byte, flashSize int) ([4]uint32, error) {
	var w [4]uint32
	if chip == ESP8285 {
		switch flashSize {
		case 1 * mib:
			w[0] |= efuseW0ESP8285
		case 2 * mib:
			w[0] |= efuseW0ESP8285
			w[3] |= efuseW3Flash26
		case 4 * mib:
			w[2] |= efuseW2ESP8285
			w[3] |= efuseW3Flash25 | efuseW3Flash26
		default:
			return w, fmt.Errorf("espsim: an ESP8285 has 1, 2 or 4 MiB of embedded flash, not %d bytes", flashSize)
		}
	}
	w[0] |= uint32(mac[5]) << 24
	w[1] |= uint32(mac[3])<<8 | uint32(mac[4])
	oui := uint32(mac[0])<<16 | uint32(mac[1])<<8 | uint32(mac[2])
	switch {
	case w[3] == 0 && oui == ouiEspressif0:
		// OUI index 0 in w1 bits 23..16.
	case w[3] == 0 && oui == ouiEspressif1:
		w[1] |= 1 << 16
	default:
		w[3] |= oui
	}
	return w, nil
}
