package espsim

import (
	"crypto/md5"
	"errors"
	"hash"
	"math/rand/v2"
	"time"
)

// Flash busy times used when Config.Timing is set: the typical values of
// the Winbond W25Q32FV datasheet's AC characteristics as this package has
// used them since it was written (tSE 45 ms for a 4 KiB sector, tBE2
// 150 ms for a 64 KiB block, tPP 0.7 ms for a 256-byte page, tCE 10 s for
// the 4 MiB chip, here 2.5 s per MiB); the PDF is not among the stored
// sources, so they were cross-checked against secondary ones instead: a
// W25X40 driver header (page program 0.7 ms, 64 KiB block erase 150 ms,
// sector erase 30 ms typical), Apache Mynewt's SPI-flash settings (tPP
// 700 µs, tBE2 150 ms, tSE 30 ms, tCE 3 s) and a W25Q64JV note (tSE
// 45 ms). The GigaDevice GD25Q and XMC XM25QH parts of Tuya modules are
// W25Q clones whose datasheets are not among the sources either; their
// figures are assumed to be of the same order (unverified). Field check:
// esptool#380 measured 1.93 s for the ROM erase of a 236 544-byte image,
// which this model gives as 1.47 s (26 sector and 2 block erases), so a
// real part may be up to a third slower.
//
// The MD5 rate is an estimate (no source measures the ESP8266's MD5 over
// SPI reads): 1.5 s per MiB, well inside esptool's 8 s/MB budget
// (reference §10.4) and faster than the chips of its field reports that
// needed more (§14, esptool#559).
const (
	tSectorErase   = 45 * time.Millisecond
	tBlockErase    = 150 * time.Millisecond
	tPageProgram   = 700 * time.Microsecond
	tChipErasePerM = 2500 * time.Millisecond
	md5PerMiB      = 1500 * time.Millisecond
	pageSize       = 256
)

// opKind tells erase operations from page programs for the power-loss
// fault.
type opKind int

const (
	opErase opKind = iota
	opProgram
)

// FlashOp selects which flash operations Faults.PowerLossAt counts.
type FlashOp int

const (
	// AnyFlashOp counts erases and page programs together.
	AnyFlashOp FlashOp = iota
	// EraseOp counts sector, block and chip erases.
	EraseOp
	// ProgramOp counts page programs (at most 256 bytes, one page).
	ProgramOp
)

// session is the protocol state of one boot of the chip: the ROM's or the
// stub's flash and RAM downloads. Only the serving goroutine touches it.
type session struct {
	fw         flashWrite
	mem        memWrite
	pendingErr byte   // esptool stub: error of the last post-processing step
	stubSize   uint32 // stub: flash size from SPI_SET_PARAMS or detection
	uploaded   []memSegment
	announced  []span // MEM_BEGIN ranges
	inf        *inflater
	// tuyaflash stub: when the erase it started in the background ends,
	// and the read-back MD5 of its last write session.
	busyUntil time.Time
	readBack  readBack
	// loader: tuyaflash's loader runs, not the stub (loader.go).
	loader bool
}

// flashWrite is a FLASH_BEGIN/FLASH_DEFL_BEGIN in progress.
type flashWrite struct {
	active     bool
	compressed bool
	// ROM: blocks are placed by sequence number.
	numBlocks, blockSize, offset, nextSeq uint32
	// Stub: data is written at cursor, erased just in time.
	remaining, cursor, eraseNext, eraseEnd uint32
	// tuyaflash stub: staged bytes (the first stub's 4 KiB stage, the
	// current stub's partial word), the first error of the session, and
	// whether inflating produced more than announced.
	stage    []byte
	sticky   byte
	overflow bool
	done     bool // the compressed stream ended
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

// runOps performs n flash operations of kind, each busy for each (0 when
// timing is off), one after the other. apply(i, frac) gives operation i
// its effect: frac 1 is complete; a smaller fraction is how far it got
// when a reset or power loss struck (NOR model in eraseCells and
// programCells). The power-loss fault (Faults.PowerLossAt) and the
// command-reset fault (Faults.ResetAtCommand) strike here; so does a
// PowerCycle from another goroutine while a timed operation runs.
func (c *conn) runOps(kind opKind, n int, each time.Duration, apply func(i int, frac float64)) error {
	if n <= 0 {
		return nil
	}
	d := c.d
	ft := d.cfg.Faults
	strikeAt, frac, power := -1, 1.0, false
	d.mu.Lock()
	before := d.ops[kind]
	count := before
	if ft.PowerLossOp == AnyFlashOp {
		count = d.ops[opErase] + d.ops[opProgram]
	}
	selected := ft.PowerLossOp == AnyFlashOp || (ft.PowerLossOp == EraseOp) == (kind == opErase)
	if ft.PowerLossAt > 0 && !d.powerLossDone && selected && count < int64(ft.PowerLossAt) && int64(ft.PowerLossAt) <= count+int64(n) {
		strikeAt, power = int(int64(ft.PowerLossAt)-count-1), true
		d.powerLossDone = true
		frac = ft.PowerLossFraction
	} else if c.strike {
		strikeAt = 0
		c.strike = false
	}
	if strikeAt >= 0 && (frac <= 0 || frac >= 1) {
		frac = 0.05 + 0.9*d.flashRand.Float64()
	}
	done := n
	if strikeAt >= 0 {
		done = strikeAt + 1
	}
	d.ops[kind] += int64(done)
	d.mu.Unlock()

	busy := time.Duration(n) * each
	if strikeAt >= 0 {
		busy = time.Duration(strikeAt)*each + time.Duration(frac*float64(each))
	}
	start := time.Now()
	if err := c.sleep(busy); err != nil {
		if errors.Is(err, errInterrupted) && each > 0 {
			// A power cycle from outside: the operation in progress is
			// left as far as it got.
			el := time.Since(start)
			k := min(int(el/each), n-1)
			for i := range k {
				apply(i, 1)
			}
			apply(k, float64(el-time.Duration(k)*each)/float64(each))
			return err
		}
		for i := range done {
			apply(i, 1)
		}
		return err
	}
	if strikeAt < 0 {
		for i := range n {
			apply(i, 1)
		}
		return nil
	}
	for i := range strikeAt {
		apply(i, 1)
	}
	apply(strikeAt, frac)
	what := "reset"
	if power {
		what = "power loss"
	}
	c.logf(d.currentMode().String(), what+" in the middle of a flash operation")
	c.interrupt(power)
	return errInterrupted
}

// eraseCells erases p[lo:hi] (physical offsets) to the fraction frac: a
// NOR erase drives every cell towards 1, so an interrupted one leaves each
// bit set with probability frac (seeded, reproducible) and the others as
// they were: the sector reads as neither the old data nor blank.
func (d *Device) eraseCells(lo, hi int, frac float64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for s := lo &^ (sectorSize - 1); s < hi; s += sectorSize {
		d.erased[uint32(s)]++
	}
	if frac >= 1 {
		for i := lo; i < hi; i++ {
			d.flash[i] = 0xFF
		}
		return
	}
	for i := lo; i < hi; i++ {
		d.flash[i] |= randomBits(d.flashRand, frac)
	}
}

// programCells programs data at addr the NOR way (a program can only clear
// bits) to the fraction frac: an interrupted page program leaves each bit
// it had to clear cleared with probability frac. It reports whether the
// cells now read back as data.
func (d *Device) programCells(addr uint32, data []byte, frac float64) bool {
	stuck := d.cfg.Faults.CorruptFlashWriteAt
	ok := true
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, b := range data {
		p := d.phys(addr + uint32(i))
		v := d.flash[p] & b
		if frac < 1 {
			clear := d.flash[p] &^ b
			v = d.flash[p] &^ (clear & randomBits(d.flashRand, frac))
		}
		if stuck > 0 && int64(p) == stuck {
			v ^= 0x01
		}
		d.flash[p] = v
		if v != b {
			ok = false
		}
	}
	return ok
}

// randomBits returns a byte whose bits are each set with probability p.
func randomBits(r *rand.Rand, p float64) byte {
	var b byte
	for bit := range 8 {
		if r.Float64() < p {
			b |= 1 << bit
		}
	}
	return b
}

// eraseTime is the busy time of one erase of n bytes (sector, block or
// chip) when timing is on.
func (d *Device) eraseTime(n uint32) time.Duration {
	if !d.cfg.Timing {
		return 0
	}
	switch {
	case n <= sectorSize:
		return tSectorErase
	case n <= blockSize64K:
		return tBlockErase
	}
	return time.Duration(int64(tChipErasePerM) * int64(n) / mib)
}

// eraseUnit erases the 4 KiB sector or, when block, the 64 KiB block
// containing addr, taking its busy time.
func (c *conn) eraseUnit(addr uint32, block bool) error {
	n := uint32(sectorSize)
	if block {
		n = blockSize64K
	}
	start := c.d.phys(addr &^ (n - 1))
	return c.runOps(opErase, 1, c.d.eraseTime(n), func(_ int, frac float64) {
		c.d.eraseCells(start, start+int(n), frac)
	})
}

// eraseChip is the chip-erase command (ERASE_FLASH): one operation over
// the whole array.
func (c *conn) eraseChip() error {
	d := c.d
	n := len(d.flash)
	return c.runOps(opErase, 1, d.eraseTime(uint32(n)), func(_ int, frac float64) {
		d.eraseCells(0, n, frac)
	})
}

// eraseSectors erases count sectors from sector first, the way the ROM's
// SPIEraseArea and the stubs do: single sectors up to a 64 KiB boundary,
// whole blocks while 16 or more sectors remain, then single sectors.
func (c *conn) eraseSectors(first, count uint32) error {
	for count > 0 {
		block := first%16 == 0 && count >= 16
		if err := c.eraseUnit(first*sectorSize, block); err != nil {
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

// program writes data at addr page by page (one flash operation per
// 256-byte page touched) and reports whether the cells now read back as
// data.
func (c *conn) program(addr uint32, data []byte) (ok bool, err error) {
	if len(data) == 0 {
		return true, nil
	}
	type piece struct {
		addr     uint32
		from, to int
	}
	var pages []piece
	for i := 0; i < len(data); {
		a := addr + uint32(i)
		n := min(len(data)-i, pageSize-int(a%pageSize))
		pages = append(pages, piece{a, i, i + n})
		i += n
	}
	each := time.Duration(0)
	if c.d.cfg.Timing {
		each = tPageProgram
	}
	ok = true
	err = c.runOps(opProgram, len(pages), each, func(i int, frac float64) {
		p := pages[i]
		if !c.d.programCells(p.addr, data[p.from:p.to], frac) {
			ok = false
		}
	})
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

// appFlash is the flash as the running firmware sees it (App.Boot).
type appFlash struct{ d *Device }

func (f appFlash) Size() int { return len(f.d.flash) }

func (f appFlash) ReadAt(p []byte, off int64) (int, error) {
	d := f.d
	if off < 0 || off > int64(len(d.flash)) {
		return 0, errOutOfFlash
	}
	d.mu.Lock()
	n := copy(p, d.flash[off:])
	d.mu.Unlock()
	if n < len(p) {
		return n, errOutOfFlash
	}
	return n, nil
}

// WriteAt erases every 4 KiB sector p touches, keeping the bytes around
// p, and programs them with p: what the SDK's spi_flash_erase_sector and
// spi_flash_write do for a firmware's config save (as devicesim/bk7231's
// view does, so one App behaves alike on both).
func (f appFlash) WriteAt(p []byte, off int64) (int, error) {
	d := f.d
	if off < 0 || off+int64(len(p)) > int64(len(d.flash)) {
		return 0, errOutOfFlash
	}
	if len(p) == 0 {
		return 0, nil
	}
	lo := int(off) &^ (sectorSize - 1)
	hi := (int(off) + len(p) + sectorSize - 1) &^ (sectorSize - 1)
	d.mu.Lock()
	keep := append([]byte(nil), d.flash[lo:hi]...)
	d.mu.Unlock()
	copy(keep[int(off)-lo:], p)
	d.eraseCells(lo, hi, 1)
	d.programCells(uint32(lo), keep, 1)
	return len(p), nil
}

// Reboot is the firmware's software reset (Rebooter): after a serial
// download the chip lands in download mode again until it is
// power-cycled (reference §2.2); otherwise it boots the firmware anew.
func (f appFlash) Reboot() {
	d := f.d
	d.mu.Lock()
	if d.mode == modeApp {
		d.softResetLocked()
	}
	d.mu.Unlock()
	d.wake()
}

var errOutOfFlash = errors.New("espsim: beyond the end of the flash")
