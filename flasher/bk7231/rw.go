package bk7231

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
)

// A read is checked against the chip's CRC in groups: verifyGroup bytes
// first, doubling after every good group up to maxVerifyGroup, back to
// verifyGroup after a group that had to be re-read sector by sector. Each
// CRC costs a round trip (a latency timer on USB adapters, and a LinkCheck
// on chips that re-protect after a CRC) but no extra chip time (the chip's
// CRC time is linear), so long groups are faster on a good link, while a
// failed group re-reads no more than maxVerifyGroup.
const (
	verifyGroup    = 16 * sectorSize
	maxVerifyGroup = 8 * verifyGroup
)

// FlashSize is the flash size in bytes.
func (d *Device) FlashSize() uint32 { return d.size }

func (d *Device) checkRange(op string, addr, size uint32) error {
	if size == 0 {
		return nil
	}
	if uint64(addr)+uint64(size) > uint64(d.size) {
		return &flasher.OpError{Op: op, Addr: addr, Err: fmt.Errorf("0x%X bytes from 0x%06X go past the end of the %d KiB flash: %w", size, addr, d.size/1024, flasher.ErrRefused)}
	}
	return nil
}

// Read streams size bytes of flash starting at addr to w. Every group of
// 64 KiB to 512 KiB is checked against the chip's CRC (a mismatching group
// is re-read sector by sector, each verified) before it is written to w, and the whole range is
// checked against the CRC the chip's parts combine to, so that no range is
// checksummed on the chip twice.
func (d *Device) Read(ctx context.Context, addr, size uint32, w io.Writer, p flasher.Progress) error {
	p = flasher.OrNop(p)
	if err := d.checkRange("read", addr, size); err != nil {
		return err
	}
	if addr%sectorSize != 0 || size%sectorSize != 0 {
		return fmt.Errorf("read: address and size must be multiples of 4 KiB: %w", flasher.ErrRefused)
	}
	p.Begin("read", addr, int64(size))
	err := d.read(ctx, addr, size, w, p)
	p.End(err)
	return err
}

func (d *Device) read(ctx context.Context, addr, size uint32, w io.Writer, p flasher.Progress) error {
	whole := crc32.NewIEEE()
	var chip uint32 // the chip's CRCs of the groups, combined
	group := make([]byte, maxVerifyGroup)
	span := uint32(verifyGroup)
	for off := uint32(0); off < size; {
		n := min(span, size-off)
		buf := group[:n]
		crc, clean, err := d.readGroup(ctx, addr+off, buf, p)
		if err != nil {
			return err
		}
		off += n
		if clean {
			span = min(2*span, maxVerifyGroup)
		} else {
			span = verifyGroup
		}
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("read: store data: %w", err)
		}
		whole.Write(buf)
		chip = crc32Combine(chip, crc, int64(n))
	}
	if chip != whole.Sum32() {
		return &flasher.OpError{Op: "verify read", Addr: addr, Err: &flasher.ChecksumError{Algo: "CRC32", Addr: addr, Len: size, Want: fmt.Sprintf("%08X", whole.Sum32()), Got: fmt.Sprintf("%08X", chip)}}
	}
	return nil
}

// readGroup reads len(buf) bytes (a multiple of 4 KiB) and checks them with
// one CRC; on a mismatch or a failed read it falls back to verified
// sector-by-sector reads. It returns the chip's CRC of the group and
// whether the group passed without the fallback.
func (d *Device) readGroup(ctx context.Context, addr uint32, buf []byte, p flasher.Progress) (uint32, bool, error) {
	var done int64
	fast := func() (uint32, bool) {
		if err := d.readRun(ctx, addr, buf, func() { p.Advance(sectorSize); done += sectorSize }); err != nil {
			return 0, false
		}
		crc, err := d.crcRange(addr, uint32(len(buf)))
		return crc, err == nil && crc == crc32.ChecksumIEEE(buf)
	}
	if crc, ok := fast(); ok {
		return crc, true, nil
	}
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	p.Advance(-done)
	if err := d.recover(ctx, 1); err != nil {
		return 0, false, &flasher.OpError{Op: "read", Addr: addr, Err: err}
	}
	var crc uint32
	for off := 0; off < len(buf); off += sectorSize {
		sc, err := d.readSectorVerified(ctx, addr+uint32(off), buf[off:off+sectorSize])
		if err != nil {
			return 0, false, err
		}
		crc = crc32Combine(crc, sc, sectorSize)
		p.Advance(sectorSize)
	}
	return crc, false, nil
}

// readRun reads len(buf) bytes (whole sectors) with back-to-back
// FlashRead4K commands, unverified: each request goes out as soon as the
// chip has sent the previous reply (awaitEarly), so that no adapter latency
// is paid between sectors. Any failure ends the run; the caller falls back
// to verified sector reads.
func (d *Device) readRun(ctx context.Context, addr uint32, buf []byte, advance func()) error {
	request := func(a uint32) func() error {
		return func() error { return d.c.send(longFrame(opFlashRead4K, le32(d.wire(a)))) }
	}
	if err := request(addr)(); err != nil {
		return err
	}
	timeout := d.replyTimeout(4111, 20*time.Millisecond)
	for off := 0; off < len(buf); off += sectorSize {
		a := addr + uint32(off)
		var next func() error
		if off+sectorSize < len(buf) && ctx.Err() == nil {
			next = request(a + sectorSize)
		}
		r, err := d.c.awaitEarly(true, opFlashRead4K, time.Now().Add(timeout), next)
		if err != nil {
			return err
		}
		if err := d.check4K(r, d.wire(a)); err != nil {
			return err
		}
		copy(buf[off:off+sectorSize], r.data[4:])
		advance()
	}
	return ctx.Err()
}

// Write erases and programs data at addr and verifies it with the chip's
// CRC. Sectors that already hold the data are skipped, so re-running an
// interrupted write resumes it. Every command survives a lost or garbled
// byte in either direction: it is retried after the link is brought back
// (see retry); a sector that fails verification is erased and written
// again. A write that still fails is an *flasher.OpError naming the
// command and address, inside a *flasher.HintError.
func (d *Device) Write(ctx context.Context, addr uint32, data []byte, p flasher.Progress) (flasher.WriteResult, error) {
	p = flasher.OrNop(p)
	res := flasher.WriteResult{Addr: addr, Size: len(data), VerifyMethod: "CRC32 on chip"}
	if err := d.CheckWrite(addr, len(data)); err != nil {
		return res, err
	}
	if len(data) == 0 {
		res.Verified = true
		return res, nil
	}
	p.Begin("write", addr, int64(len(data)))
	err := d.write(ctx, addr, data, &res, p)
	p.End(err)
	return res, err
}

// CheckWrite refuses writes that would brick the device or cannot fit:
// anything below 0x11000 on a chip whose download mode is its bootloader
// (BK7231T/U, BK7252: that bootloader is the only way back in over UART,
// §1) and anything past the end of the flash.
func (d *Device) CheckWrite(addr uint32, size int) error {
	return d.chip.CheckWrite(addr, size, d.size)
}

// CheckWrite applies the row's bootloader rule to a write of size bytes at
// addr, and the flash size when flashSize is not 0: what Device.CheckWrite
// refuses, checked before a chip is connected when its row is known.
func (c Chip) CheckWrite(addr uint32, size int, flashSize uint32) error {
	if !c.BootloaderWritable && addr < bootloaderEnd {
		return &flasher.OpError{Op: "write", Addr: addr, Err: fmt.Errorf("the %s bootloader occupies 0x000000-0x010FFF and is what lets tuyaflash reach the chip; writing there can brick it for good (only SPI flashing recovers it): %w", c.Model, flasher.ErrRefused)}
	}
	if flashSize != 0 && uint64(addr)+uint64(size) > uint64(flashSize) {
		return &flasher.OpError{Op: "write", Addr: addr, Err: fmt.Errorf("image of %d bytes at 0x%06X does not fit the %d KiB flash: %w", size, addr, flashSize/1024, flasher.ErrRefused)}
	}
	return nil
}

func (d *Device) write(ctx context.Context, addr uint32, data []byte, res *flasher.WriteResult, p flasher.Progress) error {
	if err := d.unprotect(ctx); err != nil {
		return err
	}
	start := addr &^ (sectorSize - 1)
	end := (addr + uint32(len(data)) + sectorSize - 1) &^ (sectorSize - 1)
	image := make([]byte, end-start)
	// Partial head and tail sectors keep what the flash holds around the
	// data (read-modify-write).
	if start != addr {
		if _, err := d.readSectorVerified(ctx, start, image[:sectorSize]); err != nil {
			return err
		}
	}
	if tail := end - sectorSize; end != addr+uint32(len(data)) && (tail != start || start == addr) {
		if _, err := d.readSectorVerified(ctx, tail, image[tail-start:]); err != nil {
			return err
		}
	}
	copy(image[addr-start:], data)

	// Work block by block (64 KiB, aligned); each block ends verified by
	// the chip's CRC, and the whole range by the CRCs combined. A block is
	// written only when a CRC shows it differs. Those checks cost chip time
	// (the chip's CRC rate) and a round trip each, so:
	//   - while blocks match, runs of them are checked with one CRC, the
	//     run doubling up to maxSkipSpan (an identical re-write costs
	//     little more than one CRC over the range);
	//   - otherwise a whole block's first sector is checked first: when it
	//     differs, so does the block, and a fresh write does not pay a CRC
	//     over every block before writing it.
	var chip uint32
	span := uint32(blockSize)
	matching := false // the last block checked held its data already
	for bs := start &^ (blockSize - 1); bs < end; {
		if err := ctx.Err(); err != nil {
			return err
		}
		lo := max(bs, start)
		if hi := min(bs+span, end); matching && hi-lo > blockSize {
			crc, err := d.crc(ctx, lo, hi-lo)
			if err != nil {
				return err
			}
			if crc == crc32.ChecksumIEEE(image[lo-start:hi-start]) {
				res.Skipped += int(hi - lo)
				p.Advance(int64(hi - lo))
				chip = crc32Combine(chip, crc, int64(hi-lo))
				span = min(2*span, maxSkipSpan)
				bs = hi
				continue
			}
			span = blockSize
		}
		hi := min(bs+blockSize, end)
		whole := lo == bs && hi == bs+blockSize
		check := true
		if whole && !matching {
			sc, err := d.crc(ctx, lo, sectorSize)
			if err != nil {
				return err
			}
			check = sc == crc32.ChecksumIEEE(image[lo-start:lo-start+sectorSize])
		}
		crc, same, err := d.writeBlock(ctx, lo, hi, image[lo-start:hi-start], whole, check, res, p)
		if err != nil {
			return err
		}
		matching = same
		if same {
			span = min(2*span, maxSkipSpan)
		} else {
			span = blockSize
		}
		chip = crc32Combine(chip, crc, int64(hi-lo))
		bs += blockSize
	}
	if want := crc32.ChecksumIEEE(image); chip != want {
		return &flasher.OpError{Op: "verify write", Addr: start, Err: &flasher.ChecksumError{Algo: "CRC32", Addr: start, Len: end - start, Want: fmt.Sprintf("%08X", want), Got: fmt.Sprintf("%08X", chip)}}
	}
	res.Verified = true
	return nil
}

// maxSkipSpan is the longest run of blocks a write checks with one CRC
// for data the flash already holds.
const maxSkipSpan = 8 * blockSize

// writeBlock brings [lo, hi) (at most one aligned 64 KiB block) to hold
// chunk and returns the chip's CRC of it and whether it held chunk already.
// With check, a block that already matches is skipped (without, the caller
// knows it differs); a whole block is erased at once, a partial one sector
// by sector, each sector checked first.
// A write 4K that fails is not retried on the spot: the link is brought
// back and the pass goes on; the check at the end finds every sector that
// did not take and rewrites it, erase first (rewriteSector).
func (d *Device) writeBlock(ctx context.Context, lo, hi uint32, chunk []byte, whole, check bool, res *flasher.WriteResult, p flasher.Progress) (uint32, bool, error) {
	want := crc32.ChecksumIEEE(chunk)
	if check {
		crc, err := d.crc(ctx, lo, hi-lo)
		if err != nil {
			return 0, false, err
		}
		if crc == want {
			res.Skipped += int(hi - lo)
			p.Advance(int64(hi - lo))
			return crc, true, nil
		}
	}
	var crc uint32
	var err error
	if whole {
		if err := d.erase(ctx, lo, eraseCmd64K); err != nil {
			return 0, false, err
		}
		res.Erased += blockSize
	}
	bad := false
	for a := lo; a < hi; a += sectorSize {
		sec := chunk[a-lo : a-lo+sectorSize]
		if !whole {
			if check {
				crc, err := d.crc(ctx, a, sectorSize)
				if err != nil {
					return 0, false, err
				}
				if crc == crc32.ChecksumIEEE(sec) {
					res.Skipped += sectorSize
					p.Advance(sectorSize)
					continue
				}
			}
			if err := d.erase(ctx, a, eraseCmd4K); err != nil {
				return 0, false, err
			}
			res.Erased += sectorSize
		}
		if !bytes.Equal(sec, allFF) {
			if err := d.write4K(a, sec); err != nil {
				if isFatal(err) {
					return 0, false, d.interrupted(ctx, "write 4K", a, err)
				}
				if err := d.recover(ctx, 1); err != nil {
					return 0, false, d.interrupted(ctx, "write 4K", a, err)
				}
				bad = true
			}
		}
		p.Advance(sectorSize)
	}
	if !bad {
		if crc, err = d.crc(ctx, lo, hi-lo); err != nil {
			return 0, false, err
		}
		if crc == want {
			return crc, false, nil
		}
	}
	// Find and redo the sectors that did not take.
	var sum uint32
	for a := lo; a < hi; a += sectorSize {
		sec := chunk[a-lo : a-lo+sectorSize]
		crc, err := d.crc(ctx, a, sectorSize)
		if err != nil {
			return 0, false, err
		}
		if crc != crc32.ChecksumIEEE(sec) {
			tries, err := d.rewriteSector(ctx, a, sec)
			res.Retries += tries
			if err != nil {
				return 0, false, err
			}
			crc = crc32.ChecksumIEEE(sec) // rewriteSector verified it
		}
		sum = crc32Combine(sum, crc, sectorSize)
	}
	return sum, false, nil
}

var allFF = bytes.Repeat([]byte{0xFF}, sectorSize)

// interrupted maps an error after a cancellation to the context's error
// and names the command and address otherwise.
func (d *Device) interrupted(ctx context.Context, op string, addr uint32, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return &flasher.OpError{Op: op, Addr: addr, Err: err}
}

// rewriteSector erases and writes one sector that failed verification and
// checks it again, as one unit retried like every write-path command; it
// returns how many times it wrote the sector.
func (d *Device) rewriteSector(ctx context.Context, addr uint32, sec []byte) (int, error) {
	want := crc32.ChecksumIEEE(sec)
	tries := 0
	hint := hintWrite
	if d.proto == ProtoFull {
		hint = hintWriteFull
	}
	err := d.retry(ctx, "write 4K", addr, hint, func() error {
		tries++
		if err := d.eraseOnce(ctx, addr, eraseCmd4K); err != nil {
			return err
		}
		if !bytes.Equal(sec, allFF) {
			if err := d.write4K(addr, sec); err != nil {
				return err
			}
		}
		crc, err := d.crcRange(addr, sectorSize)
		if err != nil {
			return err
		}
		if crc != want {
			return &flasher.ChecksumError{Algo: "CRC32", Addr: addr, Len: sectorSize, Want: fmt.Sprintf("%08X", want), Got: fmt.Sprintf("%08X", crc)}
		}
		return nil
	})
	return tries, err
}

// write4K sends one FlashWrite4K (one attempt).
func (d *Device) write4K(addr uint32, sec []byte) error {
	_, err := d.c.longCmd("write 4K", opFlashWrite4K, d.replyTimeout(4108+15, 50*time.Millisecond), le32(d.wire(addr)), sec)
	return err
}

// erase erases the 4 KiB sector or 64 KiB block at addr, retried.
func (d *Device) erase(ctx context.Context, addr uint32, kind byte) error {
	op := "erase 4K"
	if kind == eraseCmd64K {
		op = "erase 64K"
	}
	hint := hintWrite
	if d.proto == ProtoFull {
		hint = hintWriteFull
	}
	return d.retry(ctx, op, addr, hint, func() error { return d.eraseOnce(ctx, addr, kind) })
}

// eraseOnce sends one FlashErase, after making sure a FULL chip's flash is
// unprotected (again, after the chip was linked anew).
func (d *Device) eraseOnce(ctx context.Context, addr uint32, kind byte) error {
	if err := d.unprotect(ctx); err != nil {
		return permanent{err}
	}
	op, chipTime := "erase 4K", 500*time.Millisecond
	if kind == eraseCmd64K {
		op, chipTime = "erase 64K", 3*time.Second
	}
	_, err := d.c.longCmd(op, opFlashErase, d.replyTimeout(16, chipTime), []byte{kind}, le32(d.wire(addr)))
	return err
}

// permanent marks an error that retrying the command cannot fix (it has
// been retried on its own level already).
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// crc returns the chip's CRC-32 of [addr, addr+n), retried.
func (d *Device) crc(ctx context.Context, addr, n uint32) (uint32, error) {
	var v uint32
	err := d.retry(ctx, "check CRC", addr, hintLink, func() (err error) {
		v, err = d.crcRange(addr, n)
		return err
	})
	return v, err
}

// unprotect clears the flash protection bits on FULL chips (§7): read the
// status register, and write it only when protect bits are set — a needless
// write can lock the register on some parts (§7.3). A write whose reply was
// lost is therefore never sent again blindly: the register is read again
// first.
func (d *Device) unprotect(ctx context.Context) error {
	if d.proto != ProtoFull || d.unprotected || d.flash.srBytes == 0 {
		return nil
	}
	target := uint16(0) // BFD(cwUnp=0, sb, lb) = 0 for every part in the table
	for try := 0; try < 5; try++ {
		sr, err := d.readSR(ctx)
		if err != nil {
			return err
		}
		if sr&d.flash.mask == target {
			if try > 0 {
				d.events.Emit(flasher.Note, fmt.Sprintf("flash protection cleared (status register 0x%04X)", sr))
			}
			d.unprotected = true
			return nil
		}
		if try == 0 {
			d.events.Emit(flasher.Note, fmt.Sprintf("flash is write-protected (status register 0x%04X); clearing the protect bits", sr))
		}
		val := (sr &^ d.flash.mask) | target
		payload := []byte{d.flash.wrOps[0], byte(val)}
		if d.flash.srBytes > 1 {
			payload = append(payload, byte(val>>8))
		}
		if _, err := d.c.longCmd("write status register", opWriteSR, 500*time.Millisecond, payload); err != nil {
			if isFatal(err) {
				return d.interrupted(ctx, "write status register", 0, err)
			}
			if err := d.recover(ctx, 1); err != nil {
				return d.interrupted(ctx, "write status register", 0, err)
			}
			continue
		}
		time.Sleep(10 * time.Millisecond)
	}
	sr, _ := d.readSR(ctx)
	return &flasher.HintError{
		Err:  &flasher.OpError{Op: "unprotect flash", Addr: 0, Err: fmt.Errorf("status register stays 0x%04X: %w", sr, flasher.ErrDevice)},
		Hint: "the flash status register is locked; power-cycle the module and try again; if it persists the flash cannot be written over UART",
	}
}

// readSR reads the status register bytes with the part's read opcodes,
// waiting out a set WIP bit; every read is retried.
func (d *Device) readSR(ctx context.Context) (uint16, error) {
	for poll := 0; ; poll++ {
		var sr uint16
		for i := 0; i < d.flash.srBytes && i < 2; i++ {
			err := d.retry(ctx, "read status register", 0, hintSR, func() error {
				r, err := d.c.longCmd("read status register", opReadSR, 500*time.Millisecond, []byte{d.flash.readOps[i]})
				if err != nil {
					return err
				}
				if len(r.data) < 2 || r.data[0] != d.flash.readOps[i] {
					return fmt.Errorf("read status register: reply % X: %w", r.data, flasher.ErrProtocol)
				}
				sr |= uint16(r.data[1]) << (8 * i)
				return nil
			})
			if err != nil {
				return 0, err
			}
		}
		if sr&1 == 0 || poll >= 50 {
			return sr, nil
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Reboot restarts the chip into its firmware (Reboot command, sent three
// times as Beken's tools do; there is no reply).
func (d *Device) Reboot(ctx context.Context) (string, error) {
	frame := shortFrame(cmdReboot, 0xA5)
	for i := 0; i < 3; i++ {
		if err := d.c.send(frame); err != nil {
			return "", fmt.Errorf("reboot: %w", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	d.port.Drain()
	d.port.SetBaudRate(LinkBaud)
	return "", nil
}

// Verify checks with the chip's CRC that the flash at addr holds data.
func (d *Device) Verify(ctx context.Context, addr uint32, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	if err := d.checkRange("verify", addr, uint32(len(data))); err != nil {
		return err
	}
	crc, err := d.crc(ctx, addr, uint32(len(data)))
	if err != nil {
		return err
	}
	if want := crc32.ChecksumIEEE(data); crc != want {
		return &flasher.OpError{Op: "verify", Addr: addr, Err: &flasher.ChecksumError{Algo: "CRC32", Addr: addr, Len: uint32(len(data)), Want: fmt.Sprintf("%08X", want), Got: fmt.Sprintf("%08X", crc)}}
	}
	return nil
}
