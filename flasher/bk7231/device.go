// Package bk7231 is the host side of the Beken BK72xx UART download
// protocol (BK7231N/M, BK7231T, BK7238, BK7231U, BK7252, BK7252N): link-up,
// chip identification from the chip table (chips.go), baud negotiation,
// verified flash reads and writes that survive a lost byte, and reboot
// (bk7231-protocol.md, more-chips.md).
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

// LinkBaud is the rate every BK72xx BootROM and bootloader listens at.
const LinkBaud = 115200

// DefaultBaud is the rate BK7231GUIFlashTool's CLI and Beken's
// uartprogram default to; Connect uses it for a chip whose row gives none.
const DefaultBaud = 921600

// Options configures Connect.
type Options struct {
	// Baud is the transfer rate to switch to after link-up (0: the chip
	// row's DefaultBaud, LibreTiny's upload rate for that chip). A failed
	// switch steps down through 460800, 230400 and 115200. BaudMax probes
	// upward from 921600 on adapters known to run faster.
	Baud int
	// LinkTimeout bounds the wait for the chip to answer (0: 20 s).
	LinkTimeout time.Duration
	// Events receives instructions and warnings for the user.
	Events flasher.Notify
	// Family names the chip (a family, or BK7231M) when identification
	// cannot tell: an unknown bootloader that answers like several rows,
	// a chip id in no row. It is checked against what identification
	// finds; "" detects.
	Family flasher.Family
	// Linked says the chip has just answered a LinkCheck at 115200 (a
	// combined detect loop found it): Connect skips the link loop.
	Linked bool
	// AskVirtual sends the virtual-identification command (contract C2)
	// whatever the bootloader: the caller wants a demo image written or
	// suspects a simulator (a pseudo-terminal port). It is sent anyway
	// when the bootloader is not in tuyaflash's table. The answer is
	// Info().Virtual.
	AskVirtual bool
}

// Device is a BK72xx chip in download mode. It implements flasher.Device.
type Device struct {
	c     *conn
	port  transport.Port
	opts  Options
	proto Protocol
	chip  Chip   // the chip's row
	rows  []Chip // rows still possible until the eFuse key is known
	bl    bootloader
	// blKnown: bl is the identified bootloader's fingerprint row.
	blKnown bool
	info    flasher.Info
	size    uint32
	flash   flashPart
	events  flasher.Notify
	// unprotected records that the status register was checked (FULL).
	unprotected bool
}

var _ flasher.Device = (*Device)(nil)

// Connect waits for the chip on p (the user power-cycles it or pulls CEN
// low), identifies it and negotiates the transfer rate.
func Connect(ctx context.Context, p transport.Port, opts Options) (*Device, error) {
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
	probeUp := d.opts.Baud == BaudMax
	switch {
	case probeUp:
		d.opts.Baud = max(d.chip.DefaultBaud, DefaultBaud)
	case d.opts.Baud == 0:
		d.opts.Baud = d.chip.DefaultBaud
		if d.opts.Baud == 0 {
			d.opts.Baud = DefaultBaud
		}
	}
	if err := d.negotiateBaud(ctx); err != nil {
		return nil, err
	}
	if probeUp {
		if err := d.probeUp(ctx); err != nil {
			return nil, err
		}
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

// Chip returns the chip's row of the chip table.
func (d *Device) Chip() Chip { return d.chip.clone() }

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
		if seen[b] || b <= 0 {
			continue
		}
		seen[b] = true
		if err := d.port.SetBaudRate(b); err != nil {
			continue
		}
		d.c.drop(2 * time.Millisecond)
		if _, err := d.c.shortCmd("link check", cmdLinkCheck, nil, probeTimeout(d.port)); err == nil {
			d.c.drop(5 * time.Millisecond)
			return b
		}
	}
	d.port.SetBaudRate(LinkBaud)
	return 0
}

// probeTimeout is how long a probe for a chip still in download mode waits
// for a LinkCheck reply at a fast rate: two latency timers of the adapter
// and 10 ms when the port knows its timer, 60 ms otherwise.
func probeTimeout(p transport.Port) time.Duration {
	if li := transport.Latency(p); li.Known {
		return max(2*li.Timer+10*time.Millisecond, 15*time.Millisecond)
	}
	return 60 * time.Millisecond
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

// crcWire asks the chip for the CRC of n bytes from the wire address start
// and returns it as the standard CRC-32 (the chip omits the final inversion,
// §4.2). On chips that re-protect the flash after a CRC, a LinkCheck
// follows, so that the next erase may unprotect it again (§4.3). One
// attempt; callers retry.
func (d *Device) crcWire(start, n uint32) (uint32, error) {
	end := start + n
	if d.chip.InclusiveCRC {
		end--
	}
	timeout := time.Second + time.Duration(n)*time.Second/200000
	r, err := d.c.shortCmd("check CRC", cmdCheckCRC, append(le32(start), le32(end)...), timeout)
	if err != nil {
		return 0, err
	}
	if len(r.data) < 4 {
		return 0, fmt.Errorf("check CRC: short reply: %w", flasher.ErrProtocol)
	}
	if d.chip.ReprotectAfterCRC {
		if _, err := d.c.shortCmd("link check after CRC", cmdLinkCheck, nil, 500*time.Millisecond); err != nil {
			return 0, err
		}
	}
	return binary.LittleEndian.Uint32(r.data) ^ 0xFFFFFFFF, nil
}

// crcRange is crcWire for the logical range [addr, addr+n).
func (d *Device) crcRange(addr, n uint32) (uint32, error) { return d.crcWire(d.wire(addr), n) }

// wire maps a logical flash address to the one sent on the wire: on chips
// whose bootloader refuses its own area at plain addresses, addresses below
// 0x11000 are sent with the flash size added and reach the same byte through
// the address wrap (§5.1). Nothing else needs the wrap (bkWriter and
// BK7231GUIFlashTool send plain addresses from 0x11000 on), so a flash size
// found wrong could never turn a write into one of the bootloader.
func (d *Device) wire(addr uint32) uint32 {
	if d.chip.WrapReads && addr < bootloaderEnd && d.size != 0 {
		return addr + d.size
	}
	return addr
}

// replyTimeout allows for n bytes on the wire at the current rate plus
// chip and USB latency.
func (d *Device) replyTimeout(n int, chipTime time.Duration) time.Duration {
	return 2*transport.WireTime(int64(n), d.port.BaudRate()) + chipTime + 300*time.Millisecond
}

// read4K reads one 4 KiB sector at a logical address without verification.
func (d *Device) read4K(addr uint32, dst []byte) error { return d.read4KWire(d.wire(addr), dst) }

// read4KWire reads one 4 KiB sector at a wire address.
func (d *Device) read4KWire(wire uint32, dst []byte) error {
	r, err := d.c.longCmd("read 4K", opFlashRead4K, d.replyTimeout(4111, 20*time.Millisecond), le32(wire))
	if err != nil {
		return err
	}
	if err := d.check4K(r, wire); err != nil {
		return err
	}
	copy(dst, r.data[4:])
	return nil
}

// check4K checks a FlashRead4K reply for the wire address wire: status,
// length and address.
func (d *Device) check4K(r reply, wire uint32) error {
	if r.status != 0 {
		return &flasher.StatusError{Command: "read 4K", Status: r.status, Meaning: statusMeaning[r.status]}
	}
	if len(r.data) != 4+sectorSize {
		return fmt.Errorf("read 4K: reply has %d data bytes, want %d: %w", len(r.data), 4+sectorSize, flasher.ErrProtocol)
	}
	if got := binary.LittleEndian.Uint32(r.data); got != wire {
		return fmt.Errorf("read 4K: reply for 0x%X: %w", got, flasher.ErrProtocol)
	}
	return nil
}

// readSectorVerified reads one sector and checks it against the chip's CRC,
// retrying on any error; it returns that CRC.
func (d *Device) readSectorVerified(ctx context.Context, addr uint32, dst []byte) (uint32, error) {
	crc, err := d.readVerified(ctx, d.wire(addr), dst)
	if err != nil && !isFatal(err) {
		return 0, &flasher.OpError{Op: "read 4K", Addr: addr, Err: err}
	}
	return crc, err
}

// readVerified reads the sector at a wire address and checks it against the
// chip's CRC, up to six times, stepping the rate down after repeated
// failures.
func (d *Device) readVerified(ctx context.Context, wire uint32, dst []byte) (uint32, error) {
	var last error
	for try := 0; try < 6; try++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if try > 0 {
			if err := d.recover(ctx, try); err != nil {
				return 0, err
			}
		}
		if err := d.read4KWire(wire, dst); err != nil {
			last = err
			if isFatal(err) {
				return 0, err
			}
			continue
		}
		crc, err := d.crcWire(wire, sectorSize)
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
		last = &flasher.ChecksumError{Algo: "CRC32", Addr: wire, Len: sectorSize, Want: fmt.Sprintf("%08X", crc32.ChecksumIEEE(dst)), Got: fmt.Sprintf("%08X", crc)}
	}
	return 0, last
}

// isFatal reports errors that retrying cannot fix: a closed port, the end of
// the context, a chip that no longer answers at all.
func isFatal(err error) bool {
	var p permanent
	return errors.Is(err, transport.ErrClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, flasher.ErrNoLink) || errors.As(err, &p)
}
