// Package fwtest builds synthetic firmware images for tests: BK7231 UA,
// QIO and dump images with CRC16 framing and a bootloader whose CRC-32
// matches a known bootloader, RBL headers, LibreTiny UF2 packages and
// ESP8266 images. They follow the format descriptions (bk7231-protocol.md
// §6 and §9, ltchiptool's RBL and UF2 layouts, esptool's image layout),
// independently of package firmware, and hold no one's code.
package fwtest

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"hash/crc32"
)

// PRNG returns n deterministic pseudo-random bytes; deterministic pseudo-random bytes.
func PRNG(n int, seed uint32) []byte {
	b := make([]byte, n)
	x := seed*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// CMS is CRC-16/CMS computed bit by bit (poly 0x8005, init 0xFFFF).
func CMS(b []byte) uint16 {
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

// Frame lays logical bytes out as 34-byte units (32 data + CRC16 BE); the
// length is rounded up to whole units with 0xFF.
func Frame(logical []byte) []byte {
	for len(logical)%32 != 0 {
		logical = append(logical, 0xFF)
	}
	var out []byte
	for i := 0; i < len(logical); i += 32 {
		u := logical[i : i+32]
		out = append(out, u...)
		out = binary.BigEndian.AppendUint16(out, CMS(u))
	}
	return out
}

// App is an application of n logical bytes starting with sig, framed.
func App(sig []byte, n int, seed uint32) []byte {
	l := PRNG(n, seed)
	copy(l, sig)
	return Frame(l)
}

// The first 8 bytes of a BK7231 application: `b #0x40; ldr pc,[pc,#0x14]`
// encrypted with the Tuya eFuse key, and in the clear (what an app for an
// all-zero key holds); ltchiptool check_app_code_crc and "Raw ARM Binary".
var (
	SigTuya  = []byte{0x2F, 0x07, 0xB5, 0x94, 0x35, 0xFF, 0x2A, 0x9B}
	SigPlain = []byte{0x0E, 0x00, 0x00, 0xEA, 0x14, 0xF0, 0x9F, 0xE5}
)

// RBL builds a 96-byte RBL header.
func RBL(enc, comp byte, name, version string) []byte {
	h := make([]byte, 92)
	copy(h, "RBL\x00")
	h[4], h[5] = enc, comp
	binary.LittleEndian.PutUint32(h[8:], 1700000000)
	copy(h[12:28], name)
	copy(h[28:52], version)
	copy(h[52:76], "00000000000000000000000")
	binary.LittleEndian.PutUint32(h[84:], 1000)
	binary.LittleEndian.PutUint32(h[88:], 1000)
	return binary.LittleEndian.AppendUint32(h, crc32.ChecksumIEEE(h))
}

// ForgeCRC32 changes b[at:at+4] so that the CRC-32 of b[:n] is want
// (reversing the CRC over the suffix, then solving for the four bytes).
func ForgeCRC32(b []byte, at, n int, want uint32) {
	// state after b[:at]
	s := ^crc32.Update(0, crc32.IEEETable, b[:at]) // raw register
	// required register after the 4 bytes: run the suffix backwards
	r := ^want
	for i := n - 1; i >= at+4; i-- {
		r = crcBack(r, b[i])
	}
	// find 4 bytes taking register s to r: invert 4 steps from r
	var idx [4]byte
	for k := 3; k >= 0; k-- {
		j := topIndex[byte(r>>24)]
		idx[k] = j
		r = (r ^ crc32.IEEETable[j]) << 8
	}
	// now r holds the low 24 bits we must match from s; replay forwards
	reg := s
	for k := range 4 {
		x := byte(reg) ^ idx[k]
		b[at+k] = x
		reg = reg>>8 ^ crc32.IEEETable[byte(reg)^x]
	}
}

// topIndex maps the top byte of a table entry to its index (unique for the
// IEEE table).
var topIndex = func() (m [256]byte) {
	for i, v := range crc32.IEEETable {
		m[byte(v>>24)] = byte(i)
	}
	return m
}()

// crcBack undoes one byte step of the reflected CRC register.
func crcBack(r uint32, x byte) uint32 {
	j := topIndex[byte(r>>24)]
	r = (r ^ crc32.IEEETable[j]) << 8
	return r | uint32(j^x)
}

// Beken builds a flash image from 0x0: a framed bootloader area whose
// CRC-32 over the first 256 (T) or 257 (N) bytes is bootCRC (0: any), an
// RBL header at 0x10F9A, and app at 0x11000; size bytes, 0xFF filled.
func Beken(bootCRC uint32, over int, appImg []byte, size int) []byte {
	img := bytes.Repeat([]byte{0xFF}, size)
	boot := PRNG(0x10000, 7)
	copy(boot[0x10000-0x60:], RBL(0, 0, "bootloader", "1.00"))
	framed := Frame(boot)
	if bootCRC != 0 {
		// unit 7 holds physical bytes 238..271: forge inside its data,
		// then mend its CRC16 (at 270, outside the 256/257-byte window)
		ForgeCRC32(framed, 240, over, bootCRC)
		binary.BigEndian.PutUint16(framed[270:], CMS(framed[238:270]))
	}
	copy(img, framed)
	copy(img[0x11000:], appImg)
	return img
}

// CRC-32s of known bootloaders (bk7231-protocol.md §6, from bk7231tools),
// for Beken's bootCRC argument.
const (
	BootCRCT = 0xBA54C1B8 // bl_bk7231s_1.0.5 over 256 bytes
	BootCRCN = 0xE14191BA // bl_bk7231n_1.0.1 over 257 bytes
	BootCRCU = 0x2739019F // bl_bk7231u_1.0.6 over 256 bytes
	// bootloader_bk7238_uart1_v1.0.14 over 257 bytes: the bootloader of
	// Beken's BK7238 SDK, which OpenBeken's BK7238 QIO images carry
	// (inference: the SDK's packager puts it there).
	BootCRC7238 = 0x6BEB0924
	BootCRCT1   = 0xF42F8C32 // bl_t1_2.0.0 (Tuya T1) over 257 bytes
	BootCRC7252 = 0x39F9B50C // bl_bk7252_0.1.3 over 256 bytes
	BootCRCQ    = 0xF0231EF6 // bl_bk7231q over 256 bytes
)

// ESPImage builds an ESP8266 V1 image: header, two segments, zero
// padding, XOR checksum.
func ESPImage(mode, sizeFreq byte, n int) []byte {
	b := []byte{0xE9, 2, mode, sizeFreq}
	b = binary.LittleEndian.AppendUint32(b, 0x40100004)
	sum := byte(0xEF)
	for _, s := range []struct {
		addr uint32
		data []byte
	}{{0x40100000, PRNG(n, 1)}, {0x3FFE8000, PRNG(64, 2)}} {
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

// Gzip compresses b.
func Gzip(b []byte) []byte {
	var w bytes.Buffer
	z := gzip.NewWriter(&w)
	z.Write(b)
	z.Close()
	return w.Bytes()
}

// UF2Block is one block of a UF2 file.
type UF2Block struct {
	Addr   uint32
	Data   []byte
	Family uint32      // 0: no family id
	Tags   [][2][]byte // type (3 bytes LE), value; see Tag
	Flags  uint32
}

// UF2File encodes blocks as uf2tool's Block.encode does.
func UF2File(blocks []UF2Block) []byte {
	var out []byte
	for i, bl := range blocks {
		b := make([]byte, 512)
		binary.LittleEndian.PutUint32(b[0:], 0x0A324655)
		binary.LittleEndian.PutUint32(b[4:], 0x9E5D5157)
		flags := bl.Flags
		if bl.Family != 0 {
			flags |= 0x2000
		}
		if len(bl.Tags) > 0 {
			flags |= 0x8000
		}
		binary.LittleEndian.PutUint32(b[8:], flags)
		binary.LittleEndian.PutUint32(b[12:], bl.Addr)
		binary.LittleEndian.PutUint32(b[16:], uint32(len(bl.Data)))
		binary.LittleEndian.PutUint32(b[20:], uint32(i))
		binary.LittleEndian.PutUint32(b[24:], uint32(len(blocks)))
		binary.LittleEndian.PutUint32(b[28:], bl.Family)
		copy(b[32:], bl.Data)
		pos := 32 + len(bl.Data)
		for _, tg := range bl.Tags {
			n := 4 + len(tg[1])
			b[pos] = byte(n)
			copy(b[pos+1:pos+4], tg[0])
			copy(b[pos+4:], tg[1])
			pos += (n + 3) &^ 3
		}
		binary.LittleEndian.PutUint32(b[508:], 0x0AB16F30)
		out = append(out, b...)
	}
	return out
}

// Tag is a UF2 extension tag of type t (3 bytes) with value v.
func Tag(t uint32, v []byte) [2][]byte {
	return [2][]byte{{byte(t), byte(t >> 8), byte(t >> 16)}, v}
}

// PartInfo is an OTA_PART_INFO value putting the flasher scheme (index
// 3) and device scheme (0) into the named partitions.
func PartInfo(flasherIdx byte, names ...string) []byte {
	v := []byte{0x00, flasherIdx, 0x00}
	for _, n := range names {
		v = append(v, n...)
		v = append(v, 0)
	}
	return v
}

// LibreTinyUF2 is a LibreTiny-style UF2: the app (enc+crc) in partition "app"
// from relative offset 0 and a trailer chunk at trailerRel.
func LibreTinyUF2(family uint32, appData []byte, trailerRel uint32, trailer []byte) []byte {
	var blocks []UF2Block
	first := true
	add := func(rel uint32, data []byte) {
		for off := 0; off < len(data); off += 256 {
			end := min(off+256, len(data))
			bl := UF2Block{Addr: rel + uint32(off), Data: data[off:end], Family: family}
			if first {
				bl.Tags = [][2][]byte{
					Tag(0x6C8492, nil), // OTA_FORMAT_2
					Tag(0x00DE43, []byte("esphome")),
					Tag(0x9FC7BC, []byte("2026.8.0")),
					Tag(0xCA25C8, []byte("cb2s")),
					Tag(0xC0EE0C, PartInfo(1, "app")),
				}
				first = false
			}
			blocks = append(blocks, bl)
		}
	}
	add(0, appData)
	if trailer != nil {
		add(trailerRel, trailer)
	}
	return UF2File(blocks)
}
