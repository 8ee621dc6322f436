package bk7231

// crc32Combine returns the standard CRC-32 of A‖B from crc1 = CRC(A),
// crc2 = CRC(B) and len(B), by polynomial arithmetic modulo the CRC
// polynomial (the method zlib's crc32_combine uses). It lets a whole range
// be verified from the chip's CRCs of its parts without asking the chip to
// checksum the range a second time.
func crc32Combine(crc1, crc2 uint32, len2 int64) uint32 {
	return gfMul(xPow8n(len2), crc1) ^ crc2
}

// reflected IEEE polynomial: bit 31 is x^0, bit 0 is x^31.
const crcPoly = 0xEDB88320

// gfMul multiplies a and b modulo the CRC polynomial.
func gfMul(a, b uint32) uint32 {
	var p uint32
	for m := uint32(1) << 31; m != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
		}
		if b&1 != 0 {
			b = b>>1 ^ crcPoly
		} else {
			b >>= 1
		}
	}
	return p
}

// xPow8n returns x^(8n) modulo the CRC polynomial: appending n zero bytes
// multiplies a CRC's polynomial by it.
func xPow8n(n int64) uint32 {
	p := uint32(1) << 31  // x^0
	sq := uint32(1) << 23 // x^8
	for ; n > 0; n >>= 1 {
		if n&1 != 0 {
			p = gfMul(sq, p)
		}
		sq = gfMul(sq, sq)
	}
	return p
}
