// Package bk7231 is the host side of the Beken BK7231T/BK7231N UART
// download protocol: link-up, chip identification, baud negotiation,
// verified flash reads and writes, and reboot (bk7231-protocol.md).
package bk7231

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/transport"
)

// LinkBaud is the rate the BootROM and the T bootloader listen at.
const LinkBaud = 115200

// DefaultBaud is the transfer rate negotiated when none is asked for: the
// rate BK7231GUIFlashTool's CLI and Beken's uartprogram default to.
const DefaultBaud = 921600

// Options configures Connect.
type Options struct {
	// Baud is the transfer rate to switch to after link-up (0:
	// DefaultBaud). A failed switch steps down through 460800, 230400 and
	// 115200; there is no upward probing.
	Baud int
	// LinkTimeout bounds the wait for the chip to answer (0: 20 s).
	LinkTimeout time.Duration
	// Events receives instructions and warnings for the user.
	Events flasher.Notify
	// Family forces BK7231T or BK7231N when identification cannot tell
	// (an unknown bootloader that answers like both); "" detects.
	Family flasher.Family
	// Linked says the chip has just answered a LinkCheck at 115200 (a
	// combined detect loop found it): Connect skips the link loop.
	Linked bool
}

// Device is a BK7231 chip in download mode. It implements flasher.Device.
type Device struct {
	c      *conn
	port   transport.Port
	opts   Options
	proto  Protocol
	info   flasher.Info
	size   uint32
	flash  flashPart
	events flasher.Notify
	// unprotected records that the status register was checked (FULL).
	unprotected bool
}

var _ flasher.Device = (*Device)(nil)

// Connect waits for the chip on p (the user power-cycles it or pulls CEN
// low), identifies it and negotiates the transfer rate.
func Connect(ctx context.Context, p transport.Port, opts Options) (*Device, error) {
	if opts.Baud == 0 {
		opts.Baud = DefaultBaud
	}
	if opts.LinkTimeout == 0 {
		opts.LinkTimeout = 20 * time.Second
	}
	d := &Device{c: newConn(p), port: p, opts: opts, events: opts.Events}
	if opts.Linked {
		if err := p.SetBaudRate(LinkBaud); err != nil {
			return nil, err
		}
		d.c.drop(20 * time.Millisecond)
	} else if rate := d.stillLinked(); rate != 0 {
		d.events.Emit(flasher.Note, fmt.Sprintf("the chip is still in download mode from an earlier session (at %d baud); no power-cycle needed", rate))
	} else if err := d.link(ctx, opts.LinkTimeout, true); err != nil {
		return nil, err
	}
	if err := d.identify(ctx); err != nil {
		return nil, err
	}
	if err := d.negotiateBaud(ctx); err != nil {
		return nil, err
	}
	if err := d.identifyMore(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// Info describes the chip.
func (d *Device) Info() flasher.Info {
	i := d.info
	i.Notes = append([]string(nil), d.info.Notes...)
	return i
}

// Protocol reports the command subset of the connected chip.
func (d *Device) Protocol() Protocol { return d.proto }

func (d *Device) note(kind flasher.EventKind, msg string) {
	d.info.Notes = append(d.info.Notes, msg)
	d.events.Emit(kind, msg)
}

// noLinkHint is what a bench user checks when the chip never answers.
const noLinkHint = `the chip did not answer. Check, in this order:
  - the module was power-cycled (or CEN briefly shorted to GND) while tuyaflash was waiting: the chip only listens right after reset
  - RX/TX are crossed: adapter TX -> module RX1 (P10), adapter RX <- module TX1 (P11); TX2 is a log port only
  - the 3.3 V supply is strong enough: the adapter's 3.3 V pin is often too weak, use a separate 3.3 V regulator (>= 300 mA) with a common GND
  - the adapter runs at 3.3 V logic, not 5 V
  - the board does not drive RX1/TX1 itself (TuyaMCU boards: isolate the MCU)`

// link sends LinkChecks until the chip answers (§2.2, §2.3).
func (d *Device) link(ctx context.Context, timeout time.Duration, prompt bool) error {
	if err := d.port.SetBaudRate(LinkBaud); err != nil {
		return fmt.Errorf("set %d baud: %w", LinkBaud, err)
	}
	if prompt {
		d.events.Emit(flasher.Action, "Waiting for the chip: power-cycle the module now (or briefly short CEN to GND)")
	}
	d.pulseReset()
	deadline := time.Now().Add(timeout)
	frame := shortFrame(cmdLinkCheck)
	d.c.buf = d.c.buf[:0]
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := d.c.send(frame); err != nil {
			return fmt.Errorf("link check: %w", err)
		}
		_, err := d.c.await(false, replyLinkCheck, time.Now().Add(5*time.Millisecond))
		if err == nil {
			// Stale replies to the LinkChecks still in flight follow;
			// drop them and confirm with one more (§2.3).
			time.Sleep(20 * time.Millisecond)
			d.c.drop(20 * time.Millisecond)
			if _, err := d.c.shortCmd("link check", cmdLinkCheck, nil, 200*time.Millisecond); err == nil {
				d.events.Emit(flasher.Note, "chip answered")
				return nil
			}
			continue
		}
		if !errors.Is(err, transport.ErrTimeout) {
			return fmt.Errorf("link check: %w", err)
		}
		if len(d.c.buf) > 4096 {
			d.c.buf = d.c.buf[:0]
		}
	}
	return &flasher.HintError{Err: fmt.Errorf("no reply to link checks within %v: %w", timeout, flasher.ErrNoLink), Hint: noLinkHint}
}

// FindLinked looks for a BK7231 left in download mode by an earlier session
// at one of the fast rates, and returns that rate with the port left at it;
// 0 (port back at 115200) when none answers.
func FindLinked(p transport.Port, baud int) int {
	d := &Device{c: newConn(p), port: p, opts: Options{Baud: baud}}
	return d.stillLinked()
}

// LinkCheckFrame is one LinkCheck request as it goes on the wire, for loops
// that probe a port without a Device (see package chipdetect).
func LinkCheckFrame() []byte { return shortFrame(cmdLinkCheck) }

// linkCheckReply is the chip's whole answer to a LinkCheck (§4).
var linkCheckReply = []byte{0x04, 0x0E, 0x05, 0x01, 0xE0, 0xFC, replyLinkCheck, 0x00}

// HasLinkCheckReply reports whether b, bytes read from the port, holds a
// LinkCheck reply.
func HasLinkCheckReply(b []byte) bool { return bytes.Contains(b, linkCheckReply) }

// stillLinked looks for a chip left in download mode by an earlier session
// at one of the fast rates (a BK7231N stays there until it is reset) and
// returns that rate, leaving the port at it; 0 when none answers.
func (d *Device) stillLinked() int {
	seen := map[int]bool{LinkBaud: true}
	for _, b := range append([]int{d.opts.Baud}, fallbackBauds...) {
		if seen[b] {
			continue
		}
		seen[b] = true
		if err := d.port.SetBaudRate(b); err != nil {
			continue
		}
		d.c.drop(2 * time.Millisecond)
		if _, err := d.c.shortCmd("link check", cmdLinkCheck, nil, 60*time.Millisecond); err == nil {
			d.c.drop(5 * time.Millisecond)
			return b
		}
	}
	d.port.SetBaudRate(LinkBaud)
	return 0
}

// pulseReset resets the chip through RTS where an adapter wires RTS (or DTR)
// to CEN; ports without modem lines are left alone.
func (d *Device) pulseReset() {
	if err := d.port.SetRTS(true); err != nil {
		return
	}
	d.port.SetDTR(true)
	time.Sleep(50 * time.Millisecond)
	d.port.SetDTR(false)
	d.port.SetRTS(false)
}

// crcRange asks the chip for the CRC of [addr, addr+n) and returns it as the
// standard CRC-32 (the chip omits the final inversion, §4.2).
func (d *Device) crcRange(addr, n uint32) (uint32, error) {
	start := d.phys(addr)
	end := start + n
	if d.proto.inclusiveCRC() {
		end--
	}
	timeout := time.Second + time.Duration(n)*time.Second/200000
	r, err := d.c.shortCmd("check CRC", cmdCheckCRC, append(le32(start), le32(end)...), timeout)
	if err != nil {
		return 0, &flasher.OpError{Op: "check CRC", Addr: addr, Err: err}
	}
	if len(r.data) < 4 {
		return 0, &flasher.OpError{Op: "check CRC", Addr: addr, Err: fmt.Errorf("short reply: %w", flasher.ErrProtocol)}
	}
	if d.proto.reprotectsAfterCRC() {
		// The bootloader re-protects the flash after every CheckCRC
		// until the next LinkCheck (§4.3).
		if _, err := d.c.shortCmd("link check", cmdLinkCheck, nil, 500*time.Millisecond); err != nil {
			return 0, &flasher.OpError{Op: "link check after CRC", Addr: addr, Err: err}
		}
	}
	return binary.LittleEndian.Uint32(r.data) ^ 0xFFFFFFFF, nil
}

// phys maps a logical flash address to the one sent on the wire: on
// bootloader-based chips every address is sent with the flash size added,
// so that the bootloader does not refuse its own area (§5.1).
func (d *Device) phys(addr uint32) uint32 {
	if d.proto != ProtoFull && d.size != 0 {
		return addr + d.size
	}
	return addr
}

// replyTimeout allows for n bytes on the wire at the current rate plus
// chip and USB latency.
func (d *Device) replyTimeout(n int, chipTime time.Duration) time.Duration {
	return 2*transport.WireTime(int64(n), d.port.BaudRate()) + chipTime + 300*time.Millisecond
}

// read4K reads one 4 KiB sector without verification.
func (d *Device) read4K(addr uint32, dst []byte) error {
	r, err := d.c.longCmd("read 4K", opFlashRead4K, d.replyTimeout(4111, 20*time.Millisecond), le32(d.phys(addr)))
	if err != nil {
		return err
	}
	if len(r.data) != 4+sectorSize {
		return fmt.Errorf("read 4K: reply has %d data bytes, want %d: %w", len(r.data), 4+sectorSize, flasher.ErrProtocol)
	}
	if got := binary.LittleEndian.Uint32(r.data); got != d.phys(addr) {
		return fmt.Errorf("read 4K: reply for 0x%X: %w", got, flasher.ErrProtocol)
	}
	copy(dst, r.data[4:])
	return nil
}

// readSectorVerified reads one sector and checks it against the chip's CRC,
// retrying on any error; it returns that CRC.
func (d *Device) readSectorVerified(ctx context.Context, addr uint32, dst []byte) (uint32, error) {
	var last error
	for try := 0; try < 6; try++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if try > 0 {
			d.recover(try)
		}
		if err := d.read4K(addr, dst); err != nil {
			last = err
			if isFatal(err) {
				return 0, &flasher.OpError{Op: "read 4K", Addr: addr, Err: err}
			}
			continue
		}
		crc, err := d.crcRange(addr, sectorSize)
		if err != nil {
			last = err
			if isFatal(err) {
				return 0, err
			}
			continue
		}
		if crc == crc32.ChecksumIEEE(dst) {
			return crc, nil
		}
		last = &flasher.ChecksumError{Algo: "CRC32", Addr: addr, Len: sectorSize, Want: fmt.Sprintf("%08X", crc32.ChecksumIEEE(dst)), Got: fmt.Sprintf("%08X", crc)}
	}
	return 0, &flasher.OpError{Op: "read 4K", Addr: addr, Err: last}
}

// isFatal reports errors that retrying cannot fix: a closed port.
func isFatal(err error) bool {
	return errors.Is(err, transport.ErrClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// recover brings the link back to a known state after a failed command:
// drop whatever is in flight and re-sync with a LinkCheck. After repeated
// failures it steps the baud rate down.
func (d *Device) recover(try int) {
	d.c.drop(30 * time.Millisecond)
	if try >= 3 {
		if err := d.stepDown(); err == nil {
			return
		}
	}
	d.c.shortCmd("link check", cmdLinkCheck, nil, 200*time.Millisecond)
	d.c.drop(5 * time.Millisecond)
}
