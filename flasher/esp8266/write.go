package esp8266

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
)

// romEraseSize is esptool's ESP8266ROM.get_erase_size (§8.1): the ROM's
// SPIEraseArea erases `head` sectors too many when the range crosses a
// 64 KiB block boundary and twice the sectors otherwise, so it is told a
// smaller size that it inflates to the real one.
func romEraseSize(offset, size uint32) uint32 {
	const perBlock = 16
	n := (size + sectorSize - 1) / sectorSize
	start := offset / sectorSize
	head := perBlock - start%perBlock
	if n < head {
		head = n
	}
	if n < 2*head {
		return (n + 1) / 2 * sectorSize
	}
	return (n - head) * sectorSize
}

// reflashHint is what to do after a failed write: the loader is in mask
// ROM, so the module can always be written again.
const reflashHint = "nothing is bricked: the ESP8266's serial loader is in ROM. Hold GPIO0 to GND, power-cycle the module and run the write again; if it fails again, use a lower --baud and check the 3.3 V supply (≥ 300 mA)"

// checkWrite refuses writes the chip cannot take safely.
func (d *Device) checkWrite(addr uint32, n int) error {
	if n == 0 {
		return &flasher.OpError{Op: "write", Addr: addr, Err: fmt.Errorf("no data to write: %w", flasher.ErrRefused)}
	}
	if addr%sectorSize != 0 {
		return &flasher.OpError{Op: "write", Addr: addr, Err: fmt.Errorf("address is not on a 4 KiB sector boundary; the sector's first 0x%X bytes would be erased: %w", addr%sectorSize, flasher.ErrRefused)}
	}
	if size := d.info.FlashSize; size > 0 && uint64(addr)+uint64(n) > uint64(size) {
		return &flasher.HintError{
			Err:  &flasher.OpError{Op: "write", Addr: addr, Err: fmt.Errorf("%d bytes at 0x%X end past the %d KiB flash: %w", n, addr, size>>10, flasher.ErrRefused)},
			Hint: "the image is larger than this module's flash: pick a build for this flash size (Tasmota: tasmota-lite or the 1M variant for 1 MiB modules)",
		}
	}
	return nil
}

// pad4 pads data to a multiple of 4 bytes with 0xFF (esptool pads images
// to 4), copying only when needed.
func pad4(data []byte) []byte {
	if len(data)%4 == 0 {
		return data
	}
	out := make([]byte, len(data)+(4-len(data)%4))
	copy(out, data)
	for i := len(data); i < len(out); i++ {
		out[i] = 0xFF
	}
	return out
}

// Write erases and writes data at addr (a 4 KiB boundary). In ROM mode it
// sends 1 KiB FLASH_DATA blocks after a FLASH_BEGIN with the erase-size
// workaround and no FLASH_END (§10.2); the ROM has no MD5, so the result is
// not verified. Under a stub it writes zlib-compressed (FLASH_DEFL_*) and
// checks the flash's MD5 afterwards.
func (d *Device) Write(ctx context.Context, addr uint32, data []byte, p flasher.Progress) (flasher.WriteResult, error) {
	if !d.stub {
		return d.writeROM(ctx, addr, data, flasher.OrNop(p))
	}
	return d.writeCompressed(ctx, addr, data, flasher.OrNop(p))
}

// WriteUncompressed writes like Write without compression: FLASH_BEGIN /
// FLASH_DATA in 16 KiB blocks and an MD5 check under a stub, the ROM path
// otherwise.
func (d *Device) WriteUncompressed(ctx context.Context, addr uint32, data []byte, p flasher.Progress) (flasher.WriteResult, error) {
	if !d.stub {
		return d.writeROM(ctx, addr, data, flasher.OrNop(p))
	}
	return d.writeStubPlain(ctx, addr, data, flasher.OrNop(p))
}

func sectorsBytes(n int) int { return (n + sectorSize - 1) / sectorSize * sectorSize }

// writeROM is the ROM loader path.
func (d *Device) writeROM(ctx context.Context, addr uint32, data []byte, p flasher.Progress) (res flasher.WriteResult, err error) {
	if err := d.checkWrite(addr, len(data)); err != nil {
		return res, err
	}
	res = flasher.WriteResult{Addr: addr, Size: len(data), VerifyMethod: "ROM block checksum only"}
	img := pad4(data)
	blocks := (len(img) + romBlockSize - 1) / romBlockSize
	var hdr [16]byte
	words(hdr[:0], d.eraseSize(addr, uint32(len(img))), uint32(blocks), romBlockSize, addr)
	erased := sectorsBytes(len(img))
	p.Begin("erase", addr, int64(erased))
	// The ROM erases the whole range before it answers.
	_, _, err = d.l.check(opFlashBegin, hdr[:], 0, 0, timeoutFor(opFlashBegin, false, len(img)))
	p.Advance(int64(erased))
	p.End(err)
	if err != nil {
		return res, d.writeErr("erase (FLASH_BEGIN)", addr, err)
	}
	res.Erased = erased
	p.Begin("write", addr, int64(len(data)))
	defer func() { p.End(err) }()
	block := make([]byte, romBlockSize)
	for seq := range blocks {
		if err := ctx.Err(); err != nil {
			return res, d.writeErr("write", addr+uint32(seq*romBlockSize), err)
		}
		off := seq * romBlockSize
		n := copy(block, img[off:])
		for i := n; i < romBlockSize; i++ {
			block[i] = 0xFF // esptool pads the last block
		}
		retries, err := d.dataBlock(opFlashData, block, seq, defaultTimeout, 3)
		res.Retries += retries
		if err != nil {
			return res, d.writeErr(fmt.Sprintf("write block %d", seq), addr+uint32(off), err)
		}
		p.Advance(int64(min(romBlockSize, len(data)-off)))
	}
	// No FLASH_END: it would make the ROM leave the loader (§5.1).
	return res, nil
}

// dataBlock sends one FLASH_DATA block to the ROM (and, in the speed
// suite's esptool model, a FLASH_DEFL_DATA to a stub), retrying up to
// attempts times. The ROM writes a block before it answers and checks the
// sequence number, so any failure may be retried; to a stub only a
// checksum rejection (the block was dropped unprocessed) is retried
// (retryable). Writes through a stub go through sendStream.
func (d *Device) dataBlock(op byte, blk []byte, seq int, timeout time.Duration, attempts int) (retries int, err error) {
	d.buf = words(d.buf[:0], uint32(len(blk)), uint32(seq), 0, 0)
	d.buf = append(d.buf, blk...)
	chk := checksum(blk)
	for try := 0; ; try++ {
		_, _, err = d.l.check(op, d.buf, chk, 0, timeout)
		if err == nil || try+1 >= attempts || !d.retryable(err) {
			return try, err
		}
		d.l.flush()
	}
}

// retryable reports whether a failed data block may be sent again.
func (d *Device) retryable(err error) bool {
	var se *flasher.StatusError
	if !d.stub {
		return !errors.Is(err, flasher.ErrUnsupported)
	}
	return errors.As(err, &se) && se.Status == stubBadChecksum
}

// writeErr wraps a write failure with its operation, address and the
// re-flash hint.
func (d *Device) writeErr(op string, addr uint32, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &flasher.OpError{Op: op, Addr: addr, Err: err}
	}
	var se *flasher.StatusError
	if d.stub && errors.As(err, &se) && se.Status == romInvalidMessage {
		// The ROM rejects a stub command: the chip was reset under the
		// session (power, EN) and its stub is gone.
		err = fmt.Errorf("the ROM loader answered where the flasher stub ran, so the chip was reset (%v): %w", err, flasher.ErrNoLink)
	}
	return &flasher.HintError{Err: &flasher.OpError{Op: op, Addr: addr, Err: err}, Hint: reflashHint}
}

// writeCompressed is the stub's FLASH_DEFL path (§10.3).
func (d *Device) writeCompressed(ctx context.Context, addr uint32, data []byte, p flasher.Progress) (res flasher.WriteResult, err error) {
	if err := d.checkWrite(addr, len(data)); err != nil {
		return res, err
	}
	img := pad4(data)
	comp, err := d.deflate(img)
	if err != nil {
		return res, &flasher.OpError{Op: "compress", Addr: addr, Err: err}
	}
	if len(comp) >= len(img) {
		// esptool: compression only when it shrinks the data.
		return d.writeStubPlain(ctx, addr, data, p)
	}
	inflated, err := inflatedPerBlock(comp, stubBlockSize)
	if err != nil {
		return res, &flasher.OpError{Op: "compress", Addr: addr, Err: err}
	}
	res = flasher.WriteResult{Addr: addr, Size: len(data), Erased: sectorsBytes(len(img)), VerifyMethod: "MD5 on chip"}
	blocks := make([][]byte, len(inflated))
	for i := range blocks {
		blocks[i] = comp[i*stubBlockSize : min((i+1)*stubBlockSize, len(comp))]
	}
	var hdr [20]byte
	words(hdr[:0], uint32(len(img)), uint32(len(blocks)), stubBlockSize, addr, 0)
	if _, _, err := d.l.check(opFlashDeflBegin, hdr[:], 0, 0, defaultTimeout); err != nil {
		return res, d.writeErr("begin compressed write (FLASH_DEFL_BEGIN)", addr, err)
	}
	// offsets[i]: where packet i's inflated data starts, for errors.
	offsets := make([]int, len(inflated)+1)
	for i, n := range inflated {
		offsets[i+1] = offsets[i] + n
	}
	p.Begin("write", addr, int64(len(data)))
	s := &packetStream{op: opFlashDeflData, endOp: opFlashDeflEnd, blocks: blocks, work: inflated,
		done: func(i int) {
			if i < len(inflated) {
				p.Advance(int64(max(min(offsets[i+1], len(data))-offsets[i], 0)))
			}
		}}
	retries, err := d.sendStream(ctx, s)
	res.Retries += retries
	if err != nil {
		p.End(err)
		return res, d.streamErr(s, err, addr, offsets, "write compressed block %d", "finish compressed write (FLASH_DEFL_END)")
	}
	p.End(nil)
	return res, d.verifyWrite(ctx, &res, img, p)
}

// writeStubPlain is the stub's FLASH_BEGIN/FLASH_DATA path.
func (d *Device) writeStubPlain(ctx context.Context, addr uint32, data []byte, p flasher.Progress) (res flasher.WriteResult, err error) {
	if err := d.checkWrite(addr, len(data)); err != nil {
		return res, err
	}
	img := pad4(data)
	res = flasher.WriteResult{Addr: addr, Size: len(data), Erased: sectorsBytes(len(img)), VerifyMethod: "MD5 on chip"}
	n := (len(img) + stubBlockSize - 1) / stubBlockSize
	blocks := make([][]byte, n)
	work := make([]int, n)
	offsets := make([]int, n+1)
	for i := range blocks {
		blk := img[i*stubBlockSize : min((i+1)*stubBlockSize, len(img))]
		if len(blk) < stubBlockSize {
			// esptool pads the last block with 0xFF; the stub ignores
			// what lies past the announced size.
			blk = append(blk[:len(blk):len(blk)], bytes.Repeat([]byte{0xFF}, stubBlockSize-len(blk))...)
		}
		blocks[i], work[i] = blk, stubBlockSize
		offsets[i+1] = min((i+1)*stubBlockSize, len(img))
	}
	var hdr [20]byte
	words(hdr[:0], d.eraseSize(addr, uint32(len(img))), uint32(n), stubBlockSize, addr, 0)
	if _, _, err := d.l.check(opFlashBegin, hdr[:], 0, 0, defaultTimeout); err != nil {
		return res, d.writeErr("begin write (FLASH_BEGIN)", addr, err)
	}
	p.Begin("write", addr, int64(len(data)))
	s := &packetStream{op: opFlashData, endOp: opFlashEnd, blocks: blocks, work: work,
		done: func(i int) {
			if i < n {
				p.Advance(int64(max(min(offsets[i+1], len(data))-offsets[i], 0)))
			}
		}}
	retries, err := d.sendStream(ctx, s)
	res.Retries += retries
	if err != nil {
		p.End(err)
		return res, d.streamErr(s, err, addr, offsets, "write block %d", "finish write (FLASH_END)")
	}
	p.End(nil)
	return res, d.verifyWrite(ctx, &res, img, p)
}

// streamErr wraps a sendStream failure with the packet's operation and
// flash address (offsets[i]: where packet i's data starts).
func (d *Device) streamErr(s *packetStream, err error, addr uint32, offsets []int, blockOp, endOp string) error {
	var se *streamError
	if !errors.As(err, &se) {
		return d.writeErr("write", addr, err)
	}
	if se.packet == len(s.blocks) {
		return d.writeErr(endOp, addr, se.err)
	}
	return d.writeErr(fmt.Sprintf(blockOp, se.packet), addr+uint32(offsets[se.packet]), se.err)
}

// verifyWrite compares the flash's MD5 with the image's (§10.3 step 7).
func (d *Device) verifyWrite(ctx context.Context, res *flasher.WriteResult, img []byte, p flasher.Progress) error {
	p.Begin("verify", res.Addr, int64(len(img)))
	got, err := d.MD5(ctx, res.Addr, uint32(len(img)))
	if err != nil {
		p.End(err)
		return d.writeErr("verify (SPI_FLASH_MD5)", res.Addr, err)
	}
	want := md5.Sum(img)
	if got != want {
		cerr := &flasher.ChecksumError{Algo: "MD5", Addr: res.Addr, Len: uint32(len(img)), Want: hex.EncodeToString(want[:]), Got: hex.EncodeToString(got[:])}
		p.End(cerr)
		hint := "the flash does not hold what was sent (a failing flash chip, or a write disturbed by a weak supply); " + reflashHint
		if got == md5.Sum(bytes.Repeat([]byte{0xFF}, len(img))) {
			hint = "the written region reads back erased: the writes did not reach the flash (write-protected flash?); " + reflashHint
		}
		return &flasher.HintError{Err: &flasher.OpError{Op: "verify", Addr: res.Addr, Err: cerr}, Hint: hint}
	}
	p.Advance(int64(len(img)))
	p.End(nil)
	res.Verified = true
	return nil
}

// deflateLevel is the zlib level of compressed writes. esptool uses 9; Go's
// compressor at 9 costs about 270 ms of CPU per MiB of image, at 5 about
// 30 ms, for a stream 1.4 % longer on a Tasmota-like image (speed suite:
// the CPU per MiB target is 50 ms, and on a slow host the compression time
// adds to the wall time that 1.4 % of wire time would cost at 921600).
const deflateLevel = 5

// deflate compresses b with zlib (RFC 1950) at deflateLevel.
func (d *Device) deflate(b []byte) ([]byte, error) {
	var out bytes.Buffer
	out.Grow(len(b)/2 + 64)
	zw, err := zlib.NewWriterLevel(&out, deflateLevel)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// countingReader counts the compressed bytes the inflater has taken.
type countingReader struct {
	b []byte
	n int
}

func (r *countingReader) Read(p []byte) (int, error) {
	if r.n >= len(r.b) {
		return 0, io.EOF
	}
	k := copy(p, r.b[r.n:])
	r.n += k
	return k, nil
}

func (r *countingReader) ReadByte() (byte, error) {
	if r.n >= len(r.b) {
		return 0, io.EOF
	}
	c := r.b[r.n]
	r.n++
	return c, nil
}

// inflatedPerBlock splits comp into blocks of size and returns how many
// bytes each block inflates to (esptool learns it by feeding each block to
// a decompressor). It sets progress, per-block timeouts and the flash
// address an error names. Go's decompressor hands out its output a window
// (up to 32 KiB) at a time, after the input that produced it, so the input
// position of each output byte is interpolated between those points.
func inflatedPerBlock(comp []byte, size int) ([]int, error) {
	blocks := (len(comp) + size - 1) / size
	cr := &countingReader{b: comp}
	zr, err := zlib.NewReader(cr)
	if err != nil {
		return nil, err
	}
	// (input consumed, output produced) after each read.
	type point struct{ in, out int }
	pts := []point{{0, 0}}
	buf := make([]byte, 32<<10)
	total := 0
	for {
		n, err := zr.Read(buf)
		if n > 0 {
			total += n
			pts = append(pts, point{cr.n, total})
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	// outAt is the output produced by the first in bytes of input.
	outAt := func(in int) int {
		for i := 1; i < len(pts); i++ {
			a, b := pts[i-1], pts[i]
			if in <= b.in {
				if b.in == a.in {
					return b.out
				}
				return a.out + (b.out-a.out)*(in-a.in)/(b.in-a.in)
			}
		}
		return total
	}
	out := make([]int, blocks)
	for i := range out {
		out[i] = outAt(min((i+1)*size, len(comp))) - outAt(i*size)
	}
	return out, nil
}
