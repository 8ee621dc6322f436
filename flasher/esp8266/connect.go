// Package esp8266 is the host side of the ESP8266/ESP8285 serial download
// protocol: the mask-ROM loader and the flasher-stub protocol that esptool's
// stubs (and tuyaflash's own) speak. It connects and identifies the chip
// (ESP8266 vs ESP8285, MAC, crystal, flash JEDEC id and size), writes flash
// in ROM mode (1 KiB blocks with the ROM's erase-size workaround, unverified)
// or through a stub (zlib-compressed, MD5-verified), and reads flash through
// a stub (the ROM has no read command).
//
// Facts come from /work/shared/reference/esp8266-protocol.md (§ numbers in
// comments) and the sources it names: esptool loader.py, cmds.py,
// targets/esp8266.py; esp-flasher-stub command_handler.c.
//
// A Device is not safe for concurrent use.
package esp8266

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/slip"
	"github.com/tuyaflash/tuyaflash/transport"
)

// powerCycleNow is the bench instruction of manual reset (§2.2).
const powerCycleNow = "hold GPIO0 to GND and power-cycle the module now (keep GPIO0 low until the transfer starts)"

// ResetMode says how the chip gets into its serial loader.
type ResetMode int

const (
	// ResetNone: the user holds GPIO0 low and power-cycles the module
	// (the usual bench case); Connect announces it with a flasher.Action event.
	ResetNone ResetMode = iota
	// ResetClassic pulses DTR (GPIO0) and RTS (EN) as esptool's
	// ClassicReset does (§2.3). On a port without modem lines it falls back
	// to ResetNone, once.
	ResetClassic
)

// Options configure Connect.
type Options struct {
	Reset ResetMode
	// SyncWindow is how long to keep trying SYNC (default 30 s); a try
	// goes out about every 100 ms, with the input flushed before each.
	SyncWindow time.Duration
	// Stub is uploaded and started after the ROM answers; nil stays with
	// the ROM loader (write-only, unverified).
	Stub *Stub
	// Loader, when set with a Stub and a Baud above 115200, goes up first:
	// a small program the ROM takes at 115200 that switches to Baud and
	// then takes the Stub at that rate (tuyaflash's loader, stub/esp8266
	// LoaderJSON; it serves READ_REG, CHANGE_BAUDRATE and MEM_*).
	Loader *Stub
	// Baud is the rate to switch to once a stub runs (CHANGE_BAUDRATE;
	// the sync itself is always at 115200, §5.1). 0 stays at 115200. If
	// the link fails at the new rate the client returns to 115200 and
	// adds a note.
	Baud int
	// Events receives instructions (flasher.Action: "hold GPIO0 low and
	// power-cycle now"), progress notes (stub running, baud) and warnings
	// (also kept in Info().Notes); nil drops them.
	Events flasher.Notify
	// Linked says the loader has just answered a SYNC (a combined detect
	// loop found it): Connect does not ask the user to power-cycle again.
	Linked bool
	// FindStub looks for a stub left running at a fast rate by an earlier
	// session (one SYNC at Baud, 921600, 460800, 230400) before asking
	// for a power-cycle, and reuses it.
	FindStub bool
	// AskVirtual sends the virtual-identification command (contract C2)
	// once the chip is identified: the caller wants a demo image written
	// or suspects a simulator (a pseudo-terminal port). A real ROM or
	// stub rejects it as an unknown command. The answer is
	// Info().Virtual.
	AskVirtual bool
}

// Device is an ESP8266/ESP8285 in download mode, connected and identified.
type Device struct {
	l    *link
	opts Options
	info flasher.Info
	stub bool
	// rts is set when the chip answered after a DTR/RTS reset pulse, so
	// Reboot can pulse EN.
	rts bool
	// eraseSize is the FLASH_BEGIN erase size for a write: the ROM
	// workaround of §8.1, or the identity once a stub runs.
	eraseSize func(offset, size uint32) uint32
	efuse     [4]uint32
	buf       []byte // request data buffer, reused
	readBuf   []byte
	// caps is what the running stub said it can do (STUB_INFO), asked
	// once per stub session; nil: not asked yet.
	caps *stubCaps
}

var _ flasher.Device = (*Device)(nil)

// magicESP8266 is the value of the chip-detect register on ESP8266 and
// ESP8285 (esptool targets/esp8266.py MAGIC_VALUE).
const (
	regChipMagic  = 0x40001000
	magicESP8266  = 0xFFF0C101
	regUARTClkDiv = 0x60000014
)

// Connect brings the chip on p into a session: it sets 115200 baud, syncs
// (resetting it or asking the user to power-cycle it), detects the chip,
// uploads opts.Stub unless a stub already runs, and switches to opts.Baud
// under a stub.
func Connect(ctx context.Context, p transport.Port, opts Options) (*Device, error) {
	if opts.SyncWindow <= 0 {
		opts.SyncWindow = 30 * time.Second
	}
	if p.BaudRate() != romBaud {
		if err := p.SetBaudRate(romBaud); err != nil {
			return nil, fmt.Errorf("set %d baud: %w", romBaud, err)
		}
	}
	d := &Device{l: newLink(p), opts: opts, eraseSize: romEraseSize}
	d.info.Baud = romBaud
	d.info.Protocol = "ROM loader"
	stubRunning := false
	if opts.FindStub && !opts.Linked {
		if rate := FindStub(p, opts.Baud); rate != 0 {
			stubRunning = true
			d.info.Baud = rate
			opts.Events.Emit(flasher.Note, fmt.Sprintf("a flasher stub is still running at %d baud from an earlier session; no power-cycle needed", rate))
		}
	}
	if !stubRunning {
		var err error
		if stubRunning, err = d.syncLoop(ctx); err != nil {
			return nil, err
		}
	}
	if stubRunning {
		d.setStub("stub (already running)")
		d.note("a flasher stub was already running (the chip was not reset since the last session); reusing it")
	}
	if err := d.identify(); err != nil {
		return nil, err
	}
	if opts.AskVirtual {
		d.askVirtual()
	}
	baudTried := false
	if opts.Stub != nil && !d.stub {
		var err error
		if baudTried, err = d.startStub(opts); err != nil {
			return nil, err
		}
	}
	if d.stub {
		d.setFlashParams()
		if opts.Baud > 0 && opts.Baud != d.l.p.BaudRate() && !baudTried {
			if err := d.changeBaud(opts.Baud); err != nil {
				return nil, err
			}
		}
	} else if opts.Baud > 0 && opts.Baud != romBaud {
		d.note(fmt.Sprintf("the ROM loader cannot change its baud rate; staying at %d (a stub is needed for %d)", romBaud, opts.Baud))
	}
	return d, nil
}

// askVirtual sends the virtual-identification command (contract C2):
// opcode 0x7E with the query as data, checksum 0. A simulator answers
// status 0 with its JSON in the data field; a real ROM or stub answers an
// error status (unknown command), which leaves nothing behind.
func (d *Device) askVirtual() {
	_, body, err := d.l.command(flasher.VirtualCode, []byte(flasher.VirtualQuery), 0, virtualWait)
	if err != nil {
		d.l.flush()
		return
	}
	if v, ok := flasher.ParseVirtual(body); ok {
		d.info.Virtual = v
		d.opts.Events.Emit(flasher.Note, fmt.Sprintf("virtual device: %s simulating %s", v.Sim, v.Chip))
	}
}

// virtualWait bounds the wait for the answer to the identification command
// (under 240 bytes of JSON: 21 ms at 115200 baud, plus the adapter's
// latency timer).
const virtualWait = 300 * time.Millisecond

// startStub uploads opts.Stub: behind opts.Loader at opts.Baud when it
// can (the loader goes up at 115200 and raises the rate; the stub must
// not lie where the loader does), else directly at 115200. baudTried
// reports that the switch to opts.Baud has been made or given up.
func (d *Device) startStub(opts Options) (baudTried bool, err error) {
	if opts.Loader == nil || opts.Baud <= romBaud || opts.Loader.overlaps(opts.Stub) {
		return false, d.runStub(opts.Stub)
	}
	if err := d.upload(opts.Loader, "loader"); err != nil {
		return false, err
	}
	if err := d.changeBaud(opts.Baud); err != nil {
		return true, err
	}
	if d.l.p.BaudRate() != romBaud {
		err := d.runStub(opts.Stub)
		if err == nil {
			return true, nil
		}
		// The rate held for a few registers but not for the stub's
		// 8 KB: the loader goes back to 115200.
		d.note(fmt.Sprintf("uploading the stub at %d baud failed (%v); back to %d", opts.Baud, err, romBaud))
		if err := d.backTo(romBaud); err != nil {
			return true, err
		}
	}
	return true, d.runStub(opts.Stub)
}

func (d *Device) setStub(protocol string) {
	d.stub = true
	d.caps = nil
	d.info.Protocol = protocol
	d.eraseSize = func(_, size uint32) uint32 { return size }
}

// note records a warning for Info().Notes and the event stream.
func (d *Device) note(msg string) {
	d.info.Notes = append(d.info.Notes, msg)
	d.opts.Events.Emit(flasher.Warning, msg)
}

func isSyncReply(f []byte) bool {
	return len(f) >= 8 && f[0] == dirResponse && f[1] == opSync
}

// fastRates are where a stub left running by an earlier session may be.
var fastRates = []int{921600, 460800, 230400}

// FindStub looks for a stub still running at a fast rate (an earlier
// session switched it and the chip was not reset since): one SYNC at each
// rate, baud first. It returns the rate with the port left at it, or 0 with
// the port back at 115200.
func FindStub(p transport.Port, baud int) int {
	d := &Device{l: newLink(p)}
	seen := map[int]bool{romBaud: true}
	for _, r := range append([]int{baud}, fastRates...) {
		if r <= 0 || seen[r] {
			continue
		}
		seen[r] = true
		if d.l.p.SetBaudRate(r) != nil {
			continue
		}
		if ok, stub, _ := d.trySync(); ok && stub {
			return r
		}
	}
	_ = d.l.p.SetBaudRate(romBaud)
	return 0
}

// syncLoop tries SYNC until the chip answers or the window ends, and
// reports whether the answer came from a stub (value 0, §5.1).
func (d *Device) syncLoop(ctx context.Context) (bool, error) {
	manual := d.opts.Reset == ResetNone || d.opts.Linked
	if manual && !d.opts.Linked {
		d.opts.Events.Emit(flasher.Action, powerCycleNow)
	}
	end := time.Now().Add(d.opts.SyncWindow)
	var last error // the last try's reader error, for the diagnosis
	junk := 0
	prompted := manual // the user was asked to power-cycle
	for try := 0; time.Now().Before(end); try++ {
		if err := ctx.Err(); err != nil {
			return false, fmt.Errorf("sync: %w", err)
		}
		if !manual && try%5 == 0 {
			if try == 5 && !prompted {
				// A whole reset cycle went unanswered: DTR/RTS may not be
				// wired to GPIO0/EN (Tuya boards have no auto-reset).
				prompted = true
				d.opts.Events.Emit(flasher.Action, "no answer after a DTR/RTS reset: if DTR/RTS are not wired to GPIO0/EN, "+powerCycleNow)
			}
			// esptool: each attempt = one reset + up to 5 syncs; the
			// reset delay alternates 50 ms / 550 ms.
			delay := 50 * time.Millisecond
			if (try/5)%2 == 1 {
				delay = 550 * time.Millisecond
			}
			err := classicReset(d.l.p, delay)
			switch {
			case errors.Is(err, transport.ErrNoModemControl):
				manual, prompted = true, true
				d.note("the port has no DTR/RTS lines: reset the chip by hand")
				d.opts.Events.Emit(flasher.Action, powerCycleNow)
			case err != nil:
				return false, fmt.Errorf("reset through DTR/RTS: %w", err)
			default:
				d.opts.Events.Emit(flasher.Note, "reset pulse on DTR/RTS")
			}
		}
		ok, stub, err := d.trySync()
		if ok {
			d.opts.Events.Emit(flasher.Note, "the ESP8266 loader answered")
			// EN is wired to RTS only if the chip came up after our own
			// pulses, before the user was asked to power-cycle.
			d.rts = !manual && !prompted
			return stub, nil
		}
		var te *slip.TimeoutError
		switch {
		case errors.As(err, &te):
			junk += te.Junk
		case errors.Is(err, slip.ErrPanic):
			last = err
		case errors.Is(err, transport.ErrClosed):
			return false, fmt.Errorf("sync: %w", err)
		case garbled(err):
			junk++
		case err != nil:
			return false, fmt.Errorf("sync: %w", err)
		}
	}
	return false, noSyncError(d.opts.SyncWindow, junk, last)
}

// noSyncError explains a sync that never succeeded.
func noSyncError(window time.Duration, junk int, panicErr error) error {
	err := fmt.Errorf("sync: no SYNC reply within %v: %w", window, flasher.ErrNoLink)
	hint := "no SYNC reply: hold GPIO0 to GND while powering up, check that RX and TX are crossed (adapter TX → module RX), and power the module from a 3.3 V supply that gives at least 300 mA (not 5 V)"
	switch {
	case panicErr != nil:
		err = fmt.Errorf("%w; %v", err, panicErr)
		hint = "the chip printed a crash report instead of answering: its firmware is running, so GPIO0 was not low at power-up; " + hint
	case junk > 0:
		hint = fmt.Sprintf("%d bytes arrived but no loader reply: the firmware may be running (GPIO0 not low at power-up), a TuyaMCU may be talking on the same lines (hold its reset low), or the wiring is noisy; ", junk) + hint
	}
	return &flasher.HintError{Err: err, Hint: hint}
}

// trySync sends one SYNC and collects the replies (eight from the ROM and
// from stubs, §5.1). stub reports that every reply carried value 0.
func (d *Device) trySync() (ok, stub bool, err error) {
	d.l.flush()
	val, _, err := d.l.command(opSync, syncPayload, 0, syncTimeout)
	if err != nil {
		var re *replyError
		if errors.As(err, &re) {
			return false, false, re.err
		}
		return false, false, err
	}
	stub = val == 0
	// Drain the other seven replies; they arrive back to back.
	for range 7 {
		f, err := d.l.r.ReadFrame(time.Now().Add(syncTimeout))
		if err != nil {
			break
		}
		if isSyncReply(f) {
			stub = stub && f[4] == 0 && f[5] == 0 && f[6] == 0 && f[7] == 0
		}
	}
	return true, stub, nil
}

// classicReset is esptool's ClassicReset: DTR drives GPIO0 and RTS drives
// EN, both active low (§2.3).
func classicReset(p transport.Port, delay time.Duration) error {
	steps := []func() error{
		func() error { return p.SetDTR(false) }, // GPIO0 high
		func() error { return p.SetRTS(true) },  // EN low: in reset
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	time.Sleep(100 * time.Millisecond)
	for _, s := range []func() error{
		func() error { return p.SetDTR(true) },  // GPIO0 low
		func() error { return p.SetRTS(false) }, // EN high: boots into the loader
	} {
		if err := s(); err != nil {
			return err
		}
	}
	time.Sleep(delay)
	return p.SetDTR(false) // release GPIO0
}

// changeBaud switches a stub to baud (§5.1: the stub derives the divider
// from the 115200 the ROM synced at) and checks the link; on failure it
// goes back to 115200 and notes why.
func (d *Device) changeBaud(baud int) error {
	old := d.l.p.BaudRate()
	var p [8]byte
	words(p[:0], uint32(baud), uint32(old))
	if _, _, err := d.l.check(opChangeBaudrate, p[:], 0, 0, defaultTimeout); err != nil {
		d.note(fmt.Sprintf("the stub did not switch to %d baud (%v); staying at %d", baud, err, old))
		d.l.flush()
		return d.verifyLink(old)
	}
	if err := d.switchPort(baud); err != nil {
		return err
	}
	if d.verifyLink(baud) == nil {
		d.info.Baud = baud
		d.opts.Events.Emit(flasher.Note, fmt.Sprintf("switched to %d baud", baud))
		return nil
	}
	d.note(fmt.Sprintf("the link failed at %d baud (adapter or wiring too slow); back to %d", baud, old))
	return d.backTo(old)
}

// backTo asks the stub or loader (at the current rate, blind: the link
// does not hold there) to return to the rate old, then talks at old.
func (d *Device) backTo(old int) error {
	baud := d.l.p.BaudRate()
	var p [8]byte
	words(p[:0], uint32(old), uint32(baud))
	_, _ = d.l.send(opChangeBaudrate, p[:], 0)
	_ = d.l.p.Drain()
	time.Sleep(20 * time.Millisecond)
	if err := d.switchPort(old); err != nil {
		return err
	}
	if err := d.verifyLink(old); err != nil {
		return &flasher.HintError{
			Err:  fmt.Errorf("change baud: no answer at %d or %d baud: %w", baud, old, err),
			Hint: "the stub is lost at an unknown baud rate: hold GPIO0 low, power-cycle the module and connect again with a lower --baud (115200 always works)",
		}
	}
	d.info.Baud = old
	d.opts.Events.Emit(flasher.Note, fmt.Sprintf("back at %d baud", old))
	return nil
}

// switchPort changes the host side's rate and drops what arrived during
// the change (esptool sleeps 50 ms and flushes).
func (d *Device) switchPort(baud int) error {
	if err := d.l.p.SetBaudRate(baud); err != nil {
		return fmt.Errorf("change baud: set the port to %d: %w", baud, err)
	}
	time.Sleep(50 * time.Millisecond)
	d.l.flush()
	return nil
}

// verifyLink checks that the chip answers READ_REG of the magic register
// at the current rate, with a few tries.
func (d *Device) verifyLink(baud int) error {
	var err error
	for range 3 {
		var v uint32
		var b [4]byte
		words(b[:0], regChipMagic)
		v, _, err = d.l.check(opReadReg, b[:], 0, 0, 300*time.Millisecond)
		if err == nil && v == magicESP8266 {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("magic register reads 0x%08X: %w", v, flasher.ErrProtocol)
		}
		d.l.flush()
	}
	return fmt.Errorf("at %d baud: %w", baud, err)
}

// setFlashParams tells the stub the flash size (esptool sends
// SPI_SET_PARAMS before writing); a refusal is only a note, since stubs
// also detect the size themselves.
func (d *Device) setFlashParams() {
	if d.info.FlashSize <= 0 {
		return
	}
	var p [24]byte
	words(p[:0], 0, uint32(d.info.FlashSize), flashBlockBytes, sectorSize, 0x100, 0xFFFF)
	if _, _, err := d.l.check(opSPISetParams, p[:], 0, 0, defaultTimeout); err != nil {
		d.note(fmt.Sprintf("the stub refused the flash parameters (%v); it uses its own size detection", err))
	}
}

// Info describes the chip.
func (d *Device) Info() flasher.Info {
	i := d.info
	i.Notes = append([]string(nil), d.info.Notes...)
	return i
}

// Reboot starts the new firmware. With DTR/RTS wired it pulses EN (an
// external reset boots from flash). Otherwise the user must do it: after a
// serial download the ESP8266's first software reset lands in download
// mode again (§2.2), so the answer is a manual instruction.
func (d *Device) Reboot(ctx context.Context) (string, error) {
	if d.rts {
		if err := d.l.p.SetDTR(false); err == nil {
			if err := d.l.p.SetRTS(true); err == nil {
				time.Sleep(100 * time.Millisecond)
				if err := d.l.p.SetRTS(false); err == nil {
					return "", nil
				}
			}
		}
	}
	return "release GPIO0 (disconnect it from GND) and power-cycle the module: unplug its 3.3 V supply and plug it back in. A software reset is not enough: the ESP8266's first reset after a serial download lands in download mode again", nil
}

// SyncFrame is one SYNC request as it goes on the wire (SLIP-framed), for
// loops that probe a port without a Device (see package chipdetect).
func SyncFrame() []byte {
	pkt := []byte{dirRequest, opSync, byte(len(syncPayload)), byte(len(syncPayload) >> 8), 0, 0, 0, 0}
	return slip.Encode(nil, append(pkt, syncPayload...))
}

// syncReplyStart is how every SYNC reply begins on the wire: the SLIP
// delimiter, direction 1, opcode 8 (none of them is escaped).
var syncReplyStart = []byte{0xC0, dirResponse, opSync}

// HasSyncReply reports whether b, bytes read from the port, holds the start
// of a SYNC reply from an ESP8266 ROM loader or stub.
func HasSyncReply(b []byte) bool { return bytes.Contains(b, syncReplyStart) }
