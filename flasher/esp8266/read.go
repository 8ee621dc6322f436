package esp8266

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/transport"
)

// Read chunk sizes: one READ_FLASH covers up to maxReadChunk bytes and
// ends with the stub's MD5 of them. After a failed chunk the size halves
// (down to one 4 KiB packet) so that a noisy line still gets whole chunks
// through; after a good one it doubles again. Each chunk costs a command
// and an MD5 frame, two round trips (32 ms behind an FTDI bridge's
// default latency timer); a failed 256 KiB chunk costs 2.8 s at 921600.
const (
	maxReadChunk = 256 << 10
	minReadChunk = readPacket
	readAttempts = 6 // tries per chunk position
)

// needStub is the error of a stub-only operation in ROM mode.
func needStub(op string, addr uint32, what string) error {
	return &flasher.HintError{
		Err:  &flasher.OpError{Op: op, Addr: addr, Err: fmt.Errorf("the ESP8266 ROM loader cannot %s: %w", what, flasher.ErrUnsupported)},
		Hint: "this needs a flasher stub running on the chip: tuyaflash uploads its own unless --no-stub is given (--stub FILE uses another in esptool's JSON layout); writing works without one",
	}
}

// Read streams size bytes of flash from addr to w. It needs a stub (the
// ROM has no read command, §8.2): READ_FLASH in chunks of up to 256 KiB,
// each 4 KiB frame acknowledged with the byte count so far, each chunk
// checked against the stub's MD5 before it goes to w, and retried (smaller)
// up to 6 times.
func (d *Device) Read(ctx context.Context, addr, size uint32, w io.Writer, p flasher.Progress) error {
	if !d.stub {
		return needStub("read", addr, "read flash")
	}
	if fs := d.info.FlashSize; fs > 0 && uint64(addr)+uint64(size) > uint64(fs) {
		return &flasher.OpError{Op: "read", Addr: addr, Err: fmt.Errorf("0x%X bytes end past the %d KiB flash: %w", size, fs>>10, flasher.ErrRefused)}
	}
	p = flasher.OrNop(p)
	p.Begin("read", addr, int64(size))
	var shown uint32 // progress reported so far (retries do not rewind it)
	chunk := uint32(maxReadChunk)
	for off := uint32(0); off < size; {
		var data []byte
		var err error
		var n uint32
		for try := range readAttempts {
			if err = ctx.Err(); err != nil {
				break
			}
			n = min(size-off, chunk)
			data, err = d.readChunk(addr+off, n, func(got uint32) {
				if off+got > shown {
					p.Advance(int64(off + got - shown))
					shown = off + got
				}
			})
			if err == nil {
				break
			}
			chunk = max(chunk/2, minReadChunk)
			if try < readAttempts-1 {
				d.resync()
			}
		}
		if err != nil {
			p.End(err)
			op := fmt.Sprintf("read 0x%X bytes", n)
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return &flasher.OpError{Op: op, Addr: addr + off, Err: err}
			}
			return &flasher.HintError{Err: &flasher.OpError{Op: op, Addr: addr + off, Err: err},
				Hint: "the read kept failing: use a lower --baud, a shorter cable, and check the 3.3 V supply; the chip is unchanged"}
		}
		if _, err := w.Write(data); err != nil {
			p.End(err)
			return &flasher.OpError{Op: "save read data", Addr: addr + off, Err: err}
		}
		off += n
		chunk = min(chunk*2, maxReadChunk)
	}
	p.End(nil)
	return nil
}

// readChunk reads n bytes at addr with one READ_FLASH (§10.1).
func (d *Device) readChunk(addr, n uint32, progress func(uint32)) ([]byte, error) {
	var req [16]byte
	words(req[:0], addr, n, readPacket, readWindow)
	if _, _, err := d.l.check(opReadFlash, req[:], 0, 0, defaultTimeout); err != nil {
		return nil, err
	}
	buf := d.readBuf[:0]
	var ack [4]byte
	// wire is how long a data packet takes on the line. Sleeping most of
	// it before reading the next one saves waking up for every USB packet
	// (CPU per MiB) — but only while the line really runs at that speed:
	// when a packet is already there as soon as it is asked for (a
	// pseudo-terminal, an unpaced link), sleeping would only slow the
	// transfer down to a wire it does not have.
	wire := transport.WireTime(readPacket, d.l.p.BaudRate())
	pace := true
	for uint32(len(buf)) < n {
		asked := time.Now()
		f, err := d.l.r.ReadFrame(time.Now().Add(readFrameWait))
		pace = time.Since(asked) > wire/16
		if err != nil {
			return nil, fmt.Errorf("data frame after %d of %d bytes: %w", len(buf), n, err)
		}
		if uint32(len(buf)+len(f)) < n && len(f) != readPacket {
			return nil, fmt.Errorf("corrupt data: a %d-byte frame where %d were due: %w", len(f), readPacket, flasher.ErrProtocol)
		}
		if uint32(len(buf)+len(f)) > n {
			return nil, fmt.Errorf("the stub sent %d bytes, %d were asked for: %w", len(buf)+len(f), n, flasher.ErrProtocol)
		}
		buf = append(buf, f...)
		binary.LittleEndian.PutUint32(ack[:], uint32(len(buf)))
		if _, err := d.l.sendRaw(ack[:]); err != nil {
			return nil, err
		}
		progress(uint32(len(buf)))
		if uint32(len(buf)) < n && pace {
			// The next packet is on the wire (the window keeps several
			// in flight): let most of it arrive before reading.
			time.Sleep(wire * 7 / 8)
		}
	}
	d.readBuf = buf
	f, err := d.l.r.ReadFrame(time.Now().Add(readFrameWait))
	if err != nil {
		return nil, fmt.Errorf("MD5 frame: %w", err)
	}
	if len(f) != md5.Size {
		return nil, fmt.Errorf("expected the 16-byte MD5 frame, got %d bytes: %w", len(f), flasher.ErrProtocol)
	}
	if got := md5.Sum(buf); string(f) != string(got[:]) {
		return nil, fmt.Errorf("the data received differs from what the chip sent (line noise?): %w",
			&flasher.ChecksumError{Algo: "MD5", Addr: addr, Len: n, Want: hex.EncodeToString(got[:]), Got: hex.EncodeToString(f)})
	}
	return buf, nil
}

// resync brings a stub back to the command loop after a broken transfer:
// a frame other than a 4-byte ACK ends a stalled READ_FLASH (the stub then
// sends its MD5 frame), and SYNC is answered once the stub listens again.
func (d *Device) resync() {
	for range 4 {
		d.l.flush()
		if _, err := d.l.send(opSync, syncPayload, 0); err != nil {
			return
		}
		deadline := time.Now().Add(200 * time.Millisecond)
		for {
			f, err := d.l.frame(deadline)
			if err != nil {
				break
			}
			if isSyncReply(f) {
				d.l.drain(50 * time.Millisecond)
				return
			}
		}
	}
}

// MD5 returns the MD5 of size bytes of flash at addr, computed by the stub
// (SPI_FLASH_MD5; the ESP8266 ROM lacks it).
func (d *Device) MD5(ctx context.Context, addr, size uint32) ([16]byte, error) {
	var sum [16]byte
	if !d.stub {
		return sum, needStub("MD5", addr, "compute an MD5 of flash")
	}
	if err := ctx.Err(); err != nil {
		return sum, err
	}
	var req [16]byte
	words(req[:0], addr, size, 0, 0)
	_, resp, err := d.l.check(opSPIFlashMD5, req[:], 0, md5.Size, timeoutFor(opSPIFlashMD5, true, int(size)))
	if err != nil {
		return sum, &flasher.OpError{Op: fmt.Sprintf("MD5 of 0x%X bytes", size), Addr: addr, Err: err}
	}
	copy(sum[:], resp)
	return sum, nil
}

// EraseRegion erases size bytes at addr, both multiples of 4 KiB, through
// the stub's ERASE_REGION.
func (d *Device) EraseRegion(ctx context.Context, addr, size uint32) error {
	if !d.stub {
		return needStub("erase", addr, "erase a region")
	}
	if addr%sectorSize != 0 || size%sectorSize != 0 || size == 0 {
		return &flasher.OpError{Op: "erase", Addr: addr, Err: fmt.Errorf("address and size (0x%X) must be non-zero multiples of 4 KiB: %w", size, flasher.ErrRefused)}
	}
	if fs := d.info.FlashSize; fs > 0 && uint64(addr)+uint64(size) > uint64(fs) {
		return &flasher.OpError{Op: "erase", Addr: addr, Err: fmt.Errorf("0x%X bytes end past the %d KiB flash: %w", size, fs>>10, flasher.ErrRefused)}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var req [8]byte
	words(req[:0], addr, size)
	if _, _, err := d.l.check(opEraseRegion, req[:], 0, 0, timeoutFor(opEraseRegion, true, int(size))); err != nil {
		return &flasher.HintError{Err: &flasher.OpError{Op: fmt.Sprintf("erase 0x%X bytes", size), Addr: addr, Err: err}, Hint: reflashHint}
	}
	return nil
}

// Verify checks that the flash at addr holds data by the stub's MD5; a
// mismatch is a *flasher.ChecksumError (ErrVerify). The ROM loader cannot
// verify (§8.2): ErrUnsupported with a hint.
func (d *Device) Verify(ctx context.Context, addr uint32, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	if !d.stub {
		return needStub("verify", addr, "compute an MD5 of flash")
	}
	got, err := d.MD5(ctx, addr, uint32(len(data)))
	if err != nil {
		return err
	}
	if want := md5.Sum(data); got != want {
		return &flasher.OpError{Op: "verify", Addr: addr, Err: &flasher.ChecksumError{Algo: "MD5", Addr: addr, Len: uint32(len(data)), Want: hex.EncodeToString(want[:]), Got: hex.EncodeToString(got[:])}}
	}
	return nil
}
