package espimage

import (
	"encoding/binary"
	"hash/crc32"
)

// Test images are built here from the layout the reference documents
// (esptool bin_image.py, esp8266/Arduino elf2bin.py), independently of the
// parser.

type seg struct {
	addr uint32
	data []byte
}

func u32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// v1 builds a V1 image: header, segments, zero padding so the checksum is
// the last byte of a 16-byte line, checksum.
func v1(mode, sizeFreq byte, entry uint32, segs ...seg) []byte {
	b, sum := v1body(mode, sizeFreq, entry, segs...)
	return padSum(b, 0, sum)
}

// v1body is the header and segments of a V1 image and their checksum.
func v1body(mode, sizeFreq byte, entry uint32, segs ...seg) ([]byte, byte) {
	b := []byte{0xE9, byte(len(segs)), mode, sizeFreq}
	b = append(b, u32(entry)...)
	sum := byte(0xEF)
	for _, s := range segs {
		b = append(b, u32(s.addr)...)
		b = append(b, u32(uint32(len(s.data)))...)
		b = append(b, s.data...)
		for _, c := range s.data {
			sum ^= c
		}
	}
	return b, sum
}

// padSum pads b with zeros until the next byte is the last of a 16-byte
// line counted from start, and appends sum.
func padSum(b []byte, start int, sum byte) []byte {
	for (len(b)-start)%16 != 15 {
		b = append(b, 0)
	}
	return append(b, sum)
}

func fill(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// eboot is a small stand-in for Arduino's eboot: two segments like
// elf2bin's .text and .rodata.
func eboot(mode, sizeFreq byte) []byte {
	return v1(mode, sizeFreq, 0x4010F000, seg{0x4010F000, fill(300, 1)}, seg{0x3FFF20B8, fill(40, 9)})
}

// arduino builds an elf2bin-style file: eboot padded with 0xAA to 0x1000,
// then the application whose .irom0.text starts with the two zero CRC
// placeholder words, then the CRC words filled in over the whole file.
func arduino(mode, sizeFreq byte) []byte {
	b := eboot(mode, sizeFreq)
	for len(b) < 0x1000 {
		b = append(b, 0xAA)
	}
	irom := append(make([]byte, 8), fill(5000, 3)...)
	b = append(b, v1(mode, sizeFreq, 0x40100004,
		seg{0x40201010, irom},
		seg{0x40100000, fill(2000, 5)},
		seg{0x3FFE8000, fill(600, 7)},
	)...)
	return addArduinoCRC(b)
}

// addArduinoCRC is elf2bin.py add_crc: CRC-32/MPEG-2 bit by bit, MSB first.
func addArduinoCRC(b []byte) []byte {
	copy(b[0x1010:], make([]byte, 8))
	crc := uint32(0xFFFFFFFF)
	for _, c := range b {
		for m := byte(0x80); m != 0; m >>= 1 {
			bit := crc&0x80000000 != 0
			if c&m != 0 {
				bit = !bit
			}
			crc <<= 1
			if bit {
				crc ^= 0x04C11DB7
			}
		}
	}
	binary.LittleEndian.PutUint32(b[0x1010:], uint32(len(b)))
	binary.LittleEndian.PutUint32(b[0x1014:], crc)
	return b
}

// v2 builds an SDK V2 application: 0xEA header, IROM part with load address
// 0 padded to 16 bytes, a V1 header with the RAM segments and checksum, and
// the SDK CRC32 of all that.
func v2(mode, sizeFreq byte, segs ...seg) []byte {
	b := []byte{0xEA, 4, mode, sizeFreq}
	b = append(b, u32(0x40100004)...)
	irom := fill(3000, 11)
	for len(irom)%16 != 0 {
		irom = append(irom, 0)
	}
	b = append(b, u32(0)...)
	b = append(b, u32(uint32(len(irom)))...)
	b = append(b, irom...)
	body, sum := v1body(mode, sizeFreq, 0x40100004, segs...)
	b = padSum(append(b, body...), 0, sum)
	c := crc32.ChecksumIEEE(b)
	if c&0x80000000 != 0 {
		c ^= 0xFFFFFFFF
	} else {
		c++
	}
	return append(b, u32(c)...)
}
