package espsim

import (
	"crypto/md5"
	"hash"
	"time"
)

// Flash timings (Config.Timing): typical values of the Winbond W25Q32FV
// datasheet (AC electrical characteristics: tSE 45 ms, tBE2 150 ms, tPP
// 0.7 ms). The MD5 rate is an estimate, well inside esptool's 8 s/MB
// budget (reference §10.4).
const (
	tSectorErase = 45 * time.Millisecond
	tBlockErase  = 150 * time.Millisecond
	tPageProgram = 700 * time.Microsecond
	md5PerMiB    = 1500 * time.Millisecond
	pageSize     = 256
)

// session is the protocol state of one boot of the chip: the ROM's or the
// stub's flash and RAM downloads. Only the serving goroutine touches it.
type session struct {
	fw         flashWrite
	mem        memWrite
	pendingErr byte   // stub: error of the last post-processing step
	stubSize   uint32 // stub: flash size from SPI_SET_PARAMS or detection
	uploaded   []memSegment
	inf        *inflater
}

// flashWrite is a FLASH_BEGIN/FLASH_DEFL_BEGIN in progress.
type flashWrite struct {
	active     bool
	compressed bool
	// ROM: blocks are placed by sequence number.
	numBlocks, blockSize, offset, nextSeq uint32
	// Stub: data is written at cursor, erased just in time.
	remaining, cursor, eraseNext, eraseEnd uint32
}

// memWrite is a MEM_BEGIN in progress.
type memWrite struct {
	active                         bool
	size, blockSize, addr, nextSeq uint32
	remaining                      uint32
}

type memSegment struct {
	addr uint32
	data []byte
}

func (s *session) reset() {
	s.abortInflate()
	*s = session{}
}

func (s *session) abortInflate() {
	if s.inf != nil {
		s.inf.abort()
		s.inf = nil
		if s.fw.compressed {
			s.fw = flashWrite{}
		}
	}
}

// phys maps a flash address to the cell it reaches: SPI NOR chips ignore
// address bits above their capacity.
func (d *Device) phys(addr uint32) int {
	return int(addr) & (len(d.flash) - 1)
}

// eraseUnit erases the 4 KiB sector or, when block, the 64 KiB block
// containing addr, and returns the time it takes.
func (d *Device) eraseUnit(addr uint32, block bool) time.Duration {
	n, t := uint32(sectorSize), tSectorErase
	if block {
		n, t = blockSize64K, tBlockErase
	}
	start := addr &^ (n - 1)
	d.mu.Lock()
	for a := start; a < start+n; a += sectorSize {
		p := d.phys(a)
		for i := p; i < p+sectorSize; i++ {
			d.flash[i] = 0xFF
		}
		d.erased[uint32(p)]++
	}
	d.mu.Unlock()
	if !d.cfg.Timing {
		return 0
	}
	return t
}

// eraseSectors erases count sectors from sector first, the way the ROM's
// SPIEraseArea and the stubs do: single sectors up to a 64 KiB boundary,
// whole blocks while 16 or more sectors remain, then single sectors.
func (c *conn) eraseSectors(first, count uint32) error {
	for count > 0 {
		block := first%16 == 0 && count >= 16
		if err := c.sleep(c.d.eraseUnit(first*sectorSize, block)); err != nil {
			return err
		}
		if block {
			first, count = first+16, count-16
		} else {
			first, count = first+1, count-1
		}
	}
	return nil
}

// program writes data at addr the NOR way (a program can only clear bits)
// and reports whether the cells now read back as data.
func (c *conn) program(addr uint32, data []byte) (ok bool, err error) {
	d := c.d
	stuck := d.cfg.Faults.CorruptFlashWriteAt
	ok = true
	d.mu.Lock()
	for i, b := range data {
		p := d.phys(addr + uint32(i))
		v := d.flash[p] & b
		if stuck > 0 && int64(p) == stuck {
			v ^= 0x01
		}
		d.flash[p] = v
		if v != b {
			ok = false
		}
	}
	d.mu.Unlock()
	if d.cfg.Timing && len(data) > 0 {
		pages := (addr+uint32(len(data))-1)/pageSize - addr/pageSize + 1
		err = c.sleep(time.Duration(pages) * tPageProgram)
	}
	return ok, err
}

// read copies n flash bytes from addr.
func (d *Device) read(addr, n uint32) []byte {
	b := make([]byte, n)
	d.mu.Lock()
	for i := range b {
		b[i] = d.flash[d.phys(addr+uint32(i))]
	}
	d.mu.Unlock()
	return b
}

// md5Of hashes n flash bytes from addr, taking the MD5 time when timed.
func (c *conn) md5Of(addr, n uint32) ([16]byte, error) {
	sum := md5.Sum(c.d.read(addr, n))
	if c.d.cfg.Timing {
		return sum, c.sleep(time.Duration(int64(md5PerMiB) * int64(n) / mib))
	}
	return sum, nil
}

func newMD5() hash.Hash { return md5.New() }
