package espimage

// mpeg2Table is the table of the CRC the Arduino core's eboot and
// elf2bin.py use: polynomial 0x04C11DB7 fed MSB first, no reflection
// (CRC-32/MPEG-2 in the CRC catalogue).
var mpeg2Table = func() (t [256]uint32) {
	for i := range t {
		c := uint32(i) << 24
		for range 8 {
			if c&0x80000000 != 0 {
				c = c<<1 ^ 0x04C11DB7
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

// crcMPEG2 continues a CRC-32/MPEG-2 over b.
func crcMPEG2(crc uint32, b []byte) uint32 {
	for _, c := range b {
		crc = crc<<8 ^ mpeg2Table[byte(crc>>24)^c]
	}
	return crc
}

// ebootCRC is the Arduino whole-file CRC of file: initial value
// 0xFFFFFFFF, no final XOR, over the file with the 8 bytes of the CRC words
// at 0x1010 taken as zero (elf2bin.py add_crc, Esp.cpp checkFlashCRC).
func ebootCRC(file []byte) uint32 {
	var zero [8]byte
	crc := crcMPEG2(0xFFFFFFFF, file[:ebootCRCLenOffset])
	crc = crcMPEG2(crc, zero[:])
	return crcMPEG2(crc, file[ebootCRCValOffset+4:])
}
