// Package espimage reads and patches ESP8266 firmware image files (the .bin
// files that esptool writes at flash address 0x0): the 0xE9 "V1" image the
// ROM boots, the Arduino-core layout of Tasmota and ESPHome builds (eboot
// at 0x0, the application at 0x1000, a whole-file CRC) and the 0xEA "V2"
// application of the Espressif SDK that stock Tuya firmware uses.
//
// Facts: esptool bin_image.py (image layout, checksum), targets/esp8266.py
// (size and frequency codes), cmds.py _update_image_flash_params (what a
// header patch changes), esp8266/Arduino tools/elf2bin.py and
// cores/esp8266/Esp.cpp checkFlashCRC (the eboot CRC).
//
// The package does no I/O and knows nothing of the serial protocol.
package espimage

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Image magic bytes.
const (
	MagicV1 = 0xE9 // image loaded by the ROM
	MagicV2 = 0xEA // SDK OTA application loaded by boot_v1.x
)

// ChecksumSeed starts the XOR checksum of segment data.
const ChecksumSeed = 0xEF

// AppOffset is where the Arduino core and the SDK put the application
// behind the bootloader.
const AppOffset = 0x1000

// maxSegments is esptool's limit ("Invalid segment count").
const maxSegments = 16

// The ESP8266 address ranges a segment may load to (esptool MEMORY_MAP and
// IROM_MAP_START/END, with its "suspicious segment" range for RAM).
const (
	addrLow       = 0x3FF00000 // DPORT
	ramLow        = 0x3FFE0000 // esptool's lower bound for unsuspicious RAM segments
	iromMapStart  = 0x40200000
	iromMapEnd    = 0x40300000
	maxRAMSegment = 65536
)

// Format tells the two image kinds apart.
type Format int

// The formats.
const (
	FormatV1 Format = 1 // magic 0xE9, loaded by the ROM
	FormatV2 Format = 2 // magic 0xEA, loaded by the SDK bootloader
)

func (f Format) String() string {
	switch f {
	case FormatV1:
		return "V1 (0xE9)"
	case FormatV2:
		return "V2 (0xEA, SDK OTA application)"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// Segment is one load segment of an image.
type Segment struct {
	Addr   uint32 // load address (0 for the flash-mapped part of a V2 image)
	Offset int    // file offset of the data
	Size   int
	// InChecksum is false for the IROM part of a V2 image, which the
	// XOR checksum does not cover.
	InChecksum bool
}

// Image is a parsed image file, or one image inside it.
type Image struct {
	Format Format
	// Offset is the image's file offset (0, or AppOffset for App).
	Offset int
	// FlashMode, FlashSizeFreq and Entry are header bytes 2, 3 and 4..7.
	// A V2 image has two headers; these are the second one's, which the
	// SDK bootloader uses (esptool does the same).
	FlashMode     FlashMode
	FlashSizeFreq byte
	Entry         uint32
	Segments      []Segment
	// Checksum is the stored XOR checksum byte; it was verified.
	Checksum byte
	// End is the file offset just past the checksum byte (past the CRC32
	// of a V2 image).
	End int
	// App is the application at AppOffset behind a bootloader image
	// (Arduino eboot + sketch, or SDK boot_v1.x + user1.bin), or nil.
	App *Image
	// EbootCRC is the Arduino whole-file CRC when the file carries one.
	EbootCRC *EbootCRC
	// V2CRC is the CRC32 word after a V2 image, when present.
	V2CRC *uint32
	// Warnings are things worth telling the user that do not stop a
	// write (esptool's "suspicious segment", unknown size code …).
	Warnings []string
}

// EbootCRC is the CRC the Arduino core's elf2bin.py stores at 0x1010
// (file length) and 0x1014 (CRC-32/MPEG-2 of the file with those 8 bytes
// zeroed); ESP.checkFlashCRC() checks it on the device.
type EbootCRC struct {
	Length uint32
	Stored uint32
	// Valid is true when Stored matches the file.
	Valid bool
}

// Offsets of the eboot CRC words (elf2bin.py crcsize_offset, crcval_offset).
const (
	ebootCRCLenOffset = AppOffset + 16
	ebootCRCValOffset = AppOffset + 20
)

// FlashSize decodes the size nibble of FlashSizeFreq to esptool's name
// and byte count; ok is false for an unknown code.
func (im *Image) FlashSize() (name string, bytes int, ok bool) {
	return SizeFromCode(im.FlashSizeFreq & 0xF0)
}

// FlashFreq decodes the frequency nibble ("40m" …); "" when unknown.
func (im *Image) FlashFreq() string {
	for _, f := range flashFreqs {
		if f.code == im.FlashSizeFreq&0x0F {
			return f.name
		}
	}
	return ""
}

// flashSizes are esptool's ESP8266 FLASH_SIZES (high nibble of byte 3).
var flashSizes = []struct {
	name  string
	code  byte
	bytes int
}{
	{"512KB", 0x00, 512 << 10},
	{"256KB", 0x10, 256 << 10},
	{"1MB", 0x20, 1 << 20},
	{"2MB", 0x30, 2 << 20},
	{"4MB", 0x40, 4 << 20},
	{"2MB-c1", 0x50, 2 << 20},
	{"4MB-c1", 0x60, 4 << 20},
	{"8MB", 0x80, 8 << 20},
	{"16MB", 0x90, 16 << 20},
}

// flashFreqs are esptool's ESP8266 FLASH_FREQUENCY (low nibble of byte 3).
var flashFreqs = []struct {
	name string
	code byte
}{
	{"40m", 0x0},
	{"26m", 0x1},
	{"20m", 0x2},
	{"80m", 0xF},
}

// SizeFromCode decodes a size code (high nibble of header byte 3).
func SizeFromCode(code byte) (name string, bytes int, ok bool) {
	for _, s := range flashSizes {
		if s.code == code&0xF0 {
			return s.name, s.bytes, true
		}
	}
	return "", 0, false
}

// SizeCode returns the header code for a flash size name as esptool spells
// it ("1MB", "4MB-c1"; case does not matter).
func SizeCode(name string) (byte, error) {
	for _, s := range flashSizes {
		if strings.EqualFold(s.name, name) {
			return s.code, nil
		}
	}
	return 0, fmt.Errorf("unknown ESP8266 flash size %q (use %s)", name, sizeNames())
}

// SizeName is the esptool size name of a flash of n bytes, or "" when the
// header has no code for it.
func SizeName(n int) string {
	for _, s := range flashSizes {
		if s.bytes == n && !strings.HasSuffix(s.name, "-c1") {
			return s.name
		}
	}
	return ""
}

func sizeNames() string {
	var n []string
	for _, s := range flashSizes {
		n = append(n, s.name)
	}
	return strings.Join(n, ", ")
}

// FreqCode returns the header code of a flash frequency name ("40m",
// "26m", "20m", "80m").
func FreqCode(name string) (byte, error) {
	for _, f := range flashFreqs {
		if strings.EqualFold(f.name, name) {
			return f.code, nil
		}
	}
	return 0, fmt.Errorf("unknown ESP8266 flash frequency %q (use 40m, 26m, 20m or 80m)", name)
}

func le32(b []byte, off int) uint32 { return binary.LittleEndian.Uint32(b[off:]) }
