package bksim

import "time"

// crcTable is the reflected CRC-32 table for polynomial 0xEDB88320, built here
// rather than taken from hash/crc32 so that the simulator and the client do
// not share a checksum implementation.
var crcTable = func() (t [256]uint32) {
	for i := range t {
		c := uint32(i)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ 0xEDB88320
			} else {
				c >>= 1
			}
		}
		t[i] = c
	}
	return t
}()

// romCRC continues the ROM's CRC over p: reflected CRC-32, started at
// 0xFFFFFFFF and never inverted at the end (reference §4.2; bk_idk
// FLASH_IMAGE_CEC_CHECK).
func romCRC(crc uint32, p []byte) uint32 {
	for _, b := range p {
		crc = crcTable[byte(crc)^b] ^ crc>>8
	}
	return crc
}

// crc16Table is the MSB-first table of polynomial 0x8005.
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

// crc16CMS is CRC-16/CMS (poly 0x8005, init 0xFFFF, not reflected, no final
// XOR), the check word of every 32-byte unit of Beken code partitions
// (reference §9.1).
func crc16CMS(p []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, b := range p {
		crc = crc<<8 ^ crc16Table[byte(crc>>8)^b]
	}
	return crc
}

const (
	sectorSize = 0x1000
	pageSize   = 0x100
	// protectMask is BP0–BP4 and CMP: with any of them set the simulated
	// flash refuses erase and program (reference §7.2, mask 0x407C).
	protectMask = 0x407C
	// srWritable are the status-register bits a WRSR can change: all but
	// WIP, WEL (SR1 bits 0, 1) and SUS (SR2 bit 7).
	srWritable = 0x7FFC
	// srLockedValue is what a P25Q16HBK showed after a no-op WRSR: BP bits,
	// SRP0/SRP1, QE, LB and CMP set (bk7231tools PR #29).
	srLockedValue = 0x7BFC
	srWIP         = 0x0001
)

// phys maps a protocol address onto the flash: addresses wrap modulo the
// (power-of-two) flash size (reference §5.1).
func (d *Device) phys(addr uint32) uint32 { return addr & (d.size - 1) }

// at is the byte at protocol address addr as the chip reads it: zero when
// the flash is not accessible (Faults.FlashInaccessible).
func (d *Device) at(addr uint32) byte {
	if d.cfg.Faults.FlashInaccessible {
		return 0
	}
	return d.flash[d.phys(addr)]
}

func (d *Device) readFlash(addr uint32, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = d.at(addr + uint32(i))
	}
	return out
}

// crcFlash returns the ROM CRC of n bytes from addr.
func (d *Device) crcFlash(addr uint32, n int64) uint32 {
	crc := uint32(0xFFFFFFFF)
	buf := make([]byte, 0, pageSize)
	for n > 0 {
		k := min(n, pageSize)
		buf = buf[:k]
		for i := range buf {
			buf[i] = d.at(addr + uint32(i))
		}
		crc = romCRC(crc, buf)
		addr += uint32(k)
		n -= k
	}
	return crc
}

// program ANDs data into the flash (NOR: programming only clears bits).
func (d *Device) program(addr uint32, data []byte) {
	for i, b := range data {
		a := d.phys(addr + uint32(i))
		d.flash[a] &= b
	}
}

// erase sets the aligned block of n bytes (a multiple of 4 KiB) that
// contains addr to 0xFF.
func (d *Device) erase(addr uint32, n uint32) {
	base := d.phys(addr) &^ (n - 1)
	for off := uint32(0); off < n; off += sectorSize {
		s := d.phys(base + off)
		for i := s; i < s+sectorSize; i++ {
			d.flash[i] = 0xFF
		}
		d.erased[s]++
	}
}

// erasePartial is an erase of the block holding addr cut off frac of the
// way through: NOR erase raises the cells of the whole block together, so
// when the power fails each bit still to be set to 1 has become 1 with
// probability frac (the simulator's model: some bytes reach 0xFF, others
// keep some of their zero bits). The sector counts as erased.
func (d *Device) erasePartial(addr, n uint32, frac float64) {
	base := d.phys(addr) &^ (n - 1)
	for off := uint32(0); off < n; off += sectorSize {
		s := d.phys(base + off)
		for i := s; i < s+sectorSize; i++ {
			d.flash[i] |= d.randomBits(frac)
		}
		d.erased[s]++
	}
	d.logf("power lost %.0f%% into the erase of 0x%06X+0x%X: the block is partly erased", 100*frac, base, n)
}

// randomBits returns a byte whose bits are each set with probability p.
func (d *Device) randomBits(p float64) byte {
	r := d.txRand.Uint64()
	lim := uint64(p * 256)
	var m byte
	for k := range 8 {
		if (r>>(8*k))&0xFF < lim {
			m |= 1 << k
		}
	}
	return m
}

// programCut programs data at addr, unless a fault cuts the command
// (d.cut): flash pages (256 bytes) are programmed one after the other, so
// a power loss leaves the pages before the cut programmed, the page it hit
// with only some of its bits cleared (each with the probability of how far
// into that page it was) and the rest untouched; a reset lets the flash
// finish the page it was on and stops there.
func (d *Device) programCut(addr uint32, data []byte) {
	if d.cut.kind == cutNone {
		d.program(addr, data)
		return
	}
	pos := d.cut.frac * float64(len(data))
	page := int(pos) / pageSize
	done := min(page*pageSize, len(data))
	d.program(addr, data[:done])
	end := min(done+pageSize, len(data))
	switch d.cut.kind {
	case cutReset:
		d.program(addr+uint32(done), data[done:end])
		d.logf("reset while programming 0x%06X: %d of %d bytes programmed", addr, end, len(data))
	case cutPowerLoss:
		into := (pos - float64(done)) / float64(end-done)
		for i := done; i < end; i++ {
			a := d.phys(addr + uint32(i))
			clearBits := d.flash[a] &^ data[i] // the 1 bits the program clears
			d.flash[a] &^= clearBits & d.randomBits(into)
		}
		d.logf("power lost while programming 0x%06X: %d of %d bytes programmed, the page at +0x%X partly", addr, done, len(data), done)
	}
}

// readSR answers a read-register SPI opcode.
func (d *Device) readSR(opcode byte, now time.Time) byte {
	switch opcode {
	case 0x05:
		v := byte(d.sr)
		if now.Before(d.wipUntil) {
			v |= srWIP
		}
		return v
	case 0x35:
		return byte(d.sr >> 8)
	case 0x15:
		return d.sr3
	case 0x9F:
		return d.jedec()[0]
	}
	return 0xFF
}

// writeSR performs a write-status-register SPI opcode with its value bytes,
// wrapped in WREN/WRDI as the ROM does. It reports what happened for the log.
func (d *Device) writeSR(opcode byte, vals []byte, now time.Time) string {
	if d.srLocked {
		return "ignored: status register locked"
	}
	if len(vals) == 0 {
		return "ignored: no value"
	}
	next := d.sr
	var mask uint16
	switch opcode {
	case 0x01:
		next = next&0xFF00 | uint16(vals[0])
		mask = 0x00FF
		if len(vals) >= 2 {
			next = next&0x00FF | uint16(vals[1])<<8
			mask = 0xFFFF
		}
	case 0x31:
		next = next&0x00FF | uint16(vals[0])<<8
		mask = 0xFF00
	case 0x11:
		if d.srLocksOnNoop() && d.sr3 == vals[0] {
			d.lockSR()
			return "no-op write: status register now locked"
		}
		d.sr3 = vals[0]
		d.startWIP(now)
		return "ok"
	default:
		return "ignored: not a status-register write opcode"
	}
	mask &= srWritable
	if d.srLocksOnNoop() && next&mask == d.sr&mask {
		d.lockSR()
		return "no-op write: status register now locked"
	}
	d.sr = d.sr&^mask | next&mask
	d.startWIP(now)
	return "ok"
}

func (d *Device) srLocksOnNoop() bool { return d.cfg.LockOnNoopSRWrite || d.prof.srLocks }

func (d *Device) lockSR() {
	d.sr = srLockedValue
	d.srLocked = true
}

func (d *Device) startWIP(now time.Time) {
	if d.cfg.Timing {
		d.wipUntil = now.Add(timeWRSR)
	}
}

// jedec is the flash id the chip reads: 00 00 00 when the flash is not
// accessible (reference §13).
func (d *Device) jedec() [3]byte {
	if d.cfg.Faults.FlashInaccessible {
		return [3]byte{}
	}
	return d.id
}

// spiTransfer answers a raw SPI transaction (long op 0E): one received byte
// per byte sent, the first one clocked in while the opcode goes out. Read
// opcodes are modelled; anything else reads 0xFF and changes nothing.
func (d *Device) spiTransfer(tx []byte, now time.Time) []byte {
	rx := make([]byte, len(tx))
	if len(tx) == 0 {
		return rx
	}
	fill := func(v func(i int) byte) {
		for i := 1; i < len(rx); i++ {
			rx[i] = v(i)
		}
	}
	switch tx[0] {
	case 0x9F: // JEDEC ID: MFR, TYPE, CAP
		fill(func(i int) byte {
			if i <= 3 {
				return d.jedec()[i-1]
			}
			return 0x00
		})
	case 0x05, 0x35, 0x15:
		v := d.readSR(tx[0], now)
		fill(func(int) byte { return v })
	case 0x03: // read data, 24-bit address
		if len(tx) >= 4 {
			addr := uint32(tx[1])<<16 | uint32(tx[2])<<8 | uint32(tx[3])
			for i := 4; i < len(rx); i++ {
				rx[i] = d.at(addr + uint32(i-4))
			}
		}
	default:
		fill(func(int) byte { return 0xFF })
	}
	return rx
}
