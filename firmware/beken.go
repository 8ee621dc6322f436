package firmware

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"strings"

	"github.com/tuyaflash/tuyaflash/flasher/bk7231"
)

// Beken flash layout facts (bk7231-protocol.md §9.1–§9.3; libretiny
// boards/_base/beken-72xx.json).
const (
	// bekenAppOffset is the physical flash address of the application:
	// logical 0x10000 after CRC16 framing. Everything below it is the
	// bootloader.
	bekenAppOffset = 0x11000
	// bekenUnit is the physical size of a CRC16-framed unit: 32 data
	// bytes and a big-endian CRC16.
	bekenUnit = 34
	// bekenQIOSizeT and bekenQIOSizeN are the sizes of OpenBeken's QIO
	// images: 1 MiB for T, and the physical size of logical
	// 0x10000+0x108700 for N (ltchiptool detect_file_type).
	bekenQIOSizeT = 0x100000
	bekenQIOSizeN = 0x129F70
	// bekenBootRBL is the physical offset of the bootloader partition's
	// RBL header: logical 0x10000-0x60 (ltchiptool detect_file_type).
	bekenBootRBL = 0x10F9A
)

// bekenDumpSizes are the sizes of a whole Beken flash: 2 MiB on the
// BK7231T/N/M/U and BK7238 modules, 2 or 4 MiB on a BK7252 (BK7231GUIFlashTool
// detectBK7252UFlashSize; LibreTiny beken-7252.json).
var bekenDumpSizes = []int{2 << 20, 4 << 20}

// Signatures of the first 8 bytes of a BK7231 application: the ARM code
// `b #0x40; ldr pc,[pc,#0x14]` encrypted with the Tuya eFuse key, as
// ltchiptool check_app_code_crc looks for it, and the same code in the
// clear (ltchiptool's "Raw ARM Binary"), which is what an app for an
// all-zero key looks like: the Beken cipher is bypassed when the top byte
// of the last key word is 0x00 or 0xFF (ltchiptool util/crypto.py
// BekenCrypto, after Tuya's encrypt_crc/abc.c).
var (
	appSigTuya  = []byte{0x2F, 0x07, 0xB5, 0x94, 0x35, 0xFF, 0x2A, 0x9B}
	appSigPlain = []byte{0x0E, 0x00, 0x00, 0xEA, 0x14, 0xF0, 0x9F, 0xE5}
)

// eFuse key names, as flasher.Info.EfuseKey spells them.
const (
	KeyTuya = "tuya"
	KeyZero = "zero"
)

// crc16Table is CRC-16/CMS: polynomial 0x8005, initial 0xFFFF, not
// reflected, no final XOR (bk7231-protocol.md §9.1; ltchiptool
// util/crc16.py CRC16.CMS).
var crc16Table = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x8005
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

func crc16CMS(b []byte) uint16 {
	c := uint16(0xFFFF)
	for _, x := range b {
		c = c<<8 ^ crc16Table[byte(c>>8)^x]
	}
	return c
}

// unitOK reports whether the CRC16 unit at physical offset off is intact.
func unitOK(b []byte, off int) bool {
	if off < 0 || off+bekenUnit > len(b) {
		return false
	}
	return crc16CMS(b[off:off+32]) == binary.BigEndian.Uint16(b[off+32:])
}

// uncrc strips the CRC16 framing of n whole units from off; nil when one
// of them is damaged.
func uncrc(b []byte, off, n int) []byte {
	out := make([]byte, 0, 32*n)
	for i := range n {
		u := off + i*bekenUnit
		if !unitOK(b, u) {
			return nil
		}
		out = append(out, b[u:u+32]...)
	}
	return out
}

// appKey tells which key the application at physical offset off is
// encrypted for: KeyTuya, KeyZero (plain code), or "" when no application
// with an intact first unit starts there.
func appKey(b []byte, off int) string {
	if !unitOK(b, off) {
		return ""
	}
	switch {
	case bytes.HasPrefix(b[off:], appSigTuya):
		return KeyTuya
	case bytes.HasPrefix(b[off:], appSigPlain):
		return KeyZero
	}
	return ""
}

// identifyBootloader looks the start of a flash image up in the client's
// bootloader fingerprint table (flasher/bk7231, after bk7231tools
// BkBootloaderType: the standard CRC-32 of the first 257 bytes on chips
// whose ROM answers the UART, of the first 256 on the others). One table
// serves the chip and the files.
func identifyBootloader(b []byte) (bk7231.Bootloader, bool) {
	if len(b) < 257 {
		return bk7231.Bootloader{}, false
	}
	c256, c257 := crc32.ChecksumIEEE(b[:256]), crc32.ChecksumIEEE(b[:257])
	for _, bl := range bk7231.Bootloaders() {
		if (bl.Full && bl.CRC == c257) || (!bl.Full && bl.CRC == c256) {
			return bl, true
		}
	}
	return bk7231.Bootloader{}, false
}

// rblHeader is the 96-byte Beken RBL header (ltchiptool
// soc/bk72xx/util/rbl.py, after bk7231tools analysis/rbl.py): "RBL\0",
// encryption u8, compression u8, 2 bytes padding, timestamp u32, name[16],
// version[24], sn[24], data CRC32, data FNV hash, raw size, data size, and
// a CRC-32 of the 92 bytes before it; little-endian.
type rblHeader struct {
	Encryption  byte
	Compression byte
	Name        string
	Version     string
	RawSize     uint32
	DataSize    uint32
}

const rblSize = 96

func parseRBL(b []byte) (*rblHeader, bool) {
	if len(b) < rblSize || !bytes.HasPrefix(b, []byte("RBL\x00")) {
		return nil, false
	}
	if crc32.ChecksumIEEE(b[:92]) != binary.LittleEndian.Uint32(b[92:]) {
		return nil, false
	}
	cstr := func(p []byte) string {
		if i := bytes.IndexByte(p, 0); i >= 0 {
			p = p[:i]
		}
		return strings.ToValidUTF8(string(p), "?")
	}
	return &rblHeader{
		Encryption:  b[4],
		Compression: b[5],
		Name:        cstr(b[12:28]),
		Version:     cstr(b[28:52]),
		RawSize:     binary.LittleEndian.Uint32(b[84:]),
		DataSize:    binary.LittleEndian.Uint32(b[88:]),
	}, true
}

// trailerRBL finds the CRC16-framed RBL header LibreTiny puts in the last
// 102 bytes of an app partition image (image_bk72xx_app.0x011000.rbl;
// libretiny builder/family/beken-72xx.py rbl_offs).
func trailerRBL(b []byte) (*rblHeader, bool) {
	const framed = 3 * bekenUnit
	if len(b) < framed+bekenUnit || len(b)%bekenUnit != 0 {
		return nil, false
	}
	raw := uncrc(b, len(b)-framed, 3)
	if raw == nil {
		return nil, false
	}
	return parseRBL(raw)
}

// bootRBL reads the bootloader partition's RBL header of a flash image.
func bootRBL(b []byte) (*rblHeader, bool) {
	raw := uncrc(b, bekenBootRBL, 3)
	if raw == nil {
		return nil, false
	}
	return parseRBL(raw)
}

// isTuyaUG reports the header of a Tuya UG update file: 55AA55AA at 0 and
// AA55AA55 at 0x1C (ltchiptool util/detection.py FILE_TYPES "Tuya UG";
// the layout ltchiptool's elf2bin writes: magic, version[12], length,
// sum, header sum, end magic).
func isTuyaUG(b []byte) bool {
	return len(b) >= 0x20 &&
		bytes.HasPrefix(b, []byte{0x55, 0xAA, 0x55, 0xAA}) &&
		bytes.Equal(b[0x1C:0x20], []byte{0xAA, 0x55, 0xAA, 0x55})
}
