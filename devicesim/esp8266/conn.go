package espsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// errStopped and errInterrupted unwind a command when Serve's context ends
// or the chip is reset under it.
var (
	errStopped     = errors.New("espsim: stopped")
	errInterrupted = errors.New("espsim: interrupted by a reset")
)

// conn is one Serve call: the line, the receive decoder and the chip's
// side of the I/O, including the fault injection.
type conn struct {
	d    *Device
	l    Line
	ctx  context.Context
	dec  slipDecoder
	rbuf []byte
	// pending is a frame the tuyaflash stub read while streaming
	// READ_FLASH; it is handled as the next command.
	pending *rxFrame
	// raw is the tuyaflash stub's receive buffer (rxbuf.go); rxHighWater
	// and rxLost its statistics since the last STUB_INFO reset.
	raw                 []byte
	rxHighWater, rxLost int
	// strike and delayReply are the command-indexed faults armed for the
	// command being handled (Faults.ResetAtCommand, DelayAtCommand).
	strike, delayReply bool
	// baud is the chip's UART rate; worked is the modelled time the stub
	// has spent working since it last took bytes from the line (rxbuf.go).
	baud   int
	worked time.Duration
}

// setLineBaud sets the chip's UART rate on the line.
func (c *conn) setLineBaud(baud int) error {
	c.baud = baud
	return c.l.SetBaudRate(baud)
}

func (c *conn) loop() error {
	for {
		if c.ctx.Err() != nil {
			return errStopped
		}
		if err := c.checkUnplug(); err != nil {
			return err
		}
		if err := c.powerState(); err != nil {
			if errors.Is(err, errInterrupted) {
				continue
			}
			return err
		}
		if err := c.applyReset(); err != nil {
			if errors.Is(err, errInterrupted) {
				continue
			}
			return err
		}
		c.benchUser()
		var f rxFrame
		ok := false
		var err error
		if c.pending != nil {
			f, ok, c.pending = *c.pending, true, nil
		} else {
			f, ok, err = c.nextFrame()
		}
		if err == nil && ok {
			err = c.dispatch(f)
			c.d.active()
			if err == nil && c.strike {
				// The command sent no reply and did no flash work: the
				// reset lands right after it.
				c.logf(c.d.currentMode().String(), "reset at the end of the command")
				c.interrupt(false)
				err = errInterrupted
			}
		}
		c.strike, c.delayReply = false, false
		if errors.Is(err, errInterrupted) {
			continue
		}
		if err != nil {
			return err
		}
	}
}

// active records activity on the link for the bench user's quiet timer.
func (d *Device) active() {
	d.mu.Lock()
	d.lastActive = time.Now()
	d.mu.Unlock()
}

// checkUnplug carries out an unplug asked for by Device.Unplug.
func (c *conn) checkUnplug() error {
	d := c.d
	d.mu.Lock()
	pulled := d.unplugged
	d.mu.Unlock()
	if !pulled {
		return nil
	}
	return c.unplug()
}

// unplug pulls the adapter: the line fails, and the module, powered from
// the adapter, is off until it is plugged in again (the next Serve).
func (c *conn) unplug() error {
	d := c.d
	c.haltApp()
	c.logf(d.currentMode().String(), "USB adapter unplugged: the module loses power")
	switch u := c.l.(type) {
	case unplugger:
		u.Unplug()
	case unpluggerErr:
		_ = u.Unplug()
	default:
		_ = c.l.Close()
	}
	d.mu.Lock()
	d.unplugged = true
	d.powerOnLocked(d.gpio0Low)
	d.mu.Unlock()
	return ErrUnplugged
}

// powerState waits out a power loss: bytes that arrive while the chip is
// off are lost; then it powers up with GPIO0 as the bench holds it.
func (c *conn) powerState() error {
	d := c.d
	for {
		d.mu.Lock()
		off, until := d.mode == modeOff, d.offUntil
		if off && !time.Now().Before(until) {
			d.powerOnLocked(d.gpio0Low)
			off = false
		}
		d.mu.Unlock()
		if !off {
			return nil
		}
		c.haltApp()
		if err := c.l.SetReadTimeout(min(pollInterval, time.Until(until))); err != nil {
			return fmt.Errorf("espsim: set read timeout: %w", err)
		}
		n, err := c.l.Read(c.rbuf)
		if n > 0 {
			d.mu.Lock()
			d.bytesIn += int64(n)
			d.mu.Unlock()
		}
		if err != nil {
			if c.ctx.Err() != nil {
				return errStopped
			}
			return fmt.Errorf("espsim: read: %w", err)
		}
		if c.ctx.Err() != nil {
			return errStopped
		}
		if err := c.checkUnplug(); err != nil {
			return err
		}
	}
}

// applyReset starts a new session after a reset and sends the boot
// output the reset left pending.
func (c *conn) applyReset() error {
	d := c.d
	d.mu.Lock()
	gen, ev := d.gen, d.boot
	d.boot = nil
	d.mu.Unlock()
	if gen != d.sessGen {
		c.haltApp()
		d.sess.reset()
		d.sessGen = gen
		c.dec.reset()
		c.pending = nil
		c.raw = c.raw[:0]
	}
	if ev == nil {
		if !d.appRunning && d.currentMode() == modeApp && d.lastBootOK {
			// Serve restarted while the firmware was running.
			c.bootApp()
		}
		return nil
	}
	if ev.jump {
		c.logf("app", "ROM left the loader: running the application from flash")
		if err := c.setLineBaud(d.cfg.AppBaud); err != nil {
			return fmt.Errorf("espsim: set baud rate: %w", err)
		}
		return c.startApp()
	}
	if ev.download {
		c.logf("rom", fmt.Sprintf("reset (rst cause %d), GPIO0 low: serial download", ev.cause))
	} else {
		c.logf("app", fmt.Sprintf("reset (rst cause %d), GPIO0 high: boot from flash", ev.cause))
	}
	bootBaud := 74880
	if d.xtal == 40 {
		bootBaud = 115200
	}
	if err := c.setLineBaud(bootBaud); err != nil {
		return fmt.Errorf("espsim: set baud rate: %w", err)
	}
	if err := c.write(bootLog(ev, d.Flash())); err != nil {
		return err
	}
	if ev.download {
		if err := c.setLineBaud(romBaud); err != nil {
			return fmt.Errorf("espsim: set baud rate: %w", err)
		}
		return nil
	}
	if err := c.setLineBaud(d.cfg.AppBaud); err != nil {
		return fmt.Errorf("espsim: set baud rate: %w", err)
	}
	return c.startApp()
}

// startApp runs the firmware in flash when the image at 0x0 passes the
// ROM's checks.
func (c *conn) startApp() error {
	d := c.d
	err := romBootCheck(d.Flash())
	d.lastBootOK = err == nil
	if err != nil {
		c.logf("app", fmt.Sprintf("nothing boots: %v", err))
		return nil
	}
	if d.cfg.App == nil {
		return c.write(appBanner())
	}
	c.bootApp()
	return nil
}

// bootApp calls App.Boot (from the serving goroutine, as contract C1
// says).
func (c *conn) bootApp() {
	d := c.d
	if d.cfg.App == nil || d.appRunning {
		return
	}
	if m, ok := d.cfg.App.(MACReceiver); ok {
		m.SetMAC(d.cfg.MAC)
	}
	d.mu.Lock()
	d.appBoots++
	d.mu.Unlock()
	d.appRunning = true
	c.logf("app", "firmware booted")
	d.cfg.App.Boot(appFlash{d})
}

// haltApp calls App.Halt when the firmware runs.
func (c *conn) haltApp() {
	d := c.d
	if !d.appRunning {
		return
	}
	d.appRunning = false
	c.logf("app", "firmware halted")
	d.cfg.App.Halt()
}

// bootLog is what the ROM prints after a reset (reference §2.1): the
// "ets Jan  8 2013,rst cause:N, boot mode:(X,Y)" banner; when booting
// from flash, one line per loaded segment of the image at 0x0, or why
// nothing boots. The exact text beyond the banner is illustrative.
func bootLog(ev *bootEvent, flash []byte) []byte {
	bm := "(3,6)"
	if ev.download {
		bm = "(1,6)"
		if ev.soft || ev.cause != 1 {
			bm = "(1,7)"
		}
	}
	s := fmt.Sprintf("\r\n ets Jan  8 2013,rst cause:%d, boot mode:%s\r\n\r\n", ev.cause, bm)
	if ev.download {
		return []byte(s)
	}
	if err := romBootCheck(flash); err != nil {
		return []byte(s + err.Error() + "\r\n")
	}
	p := 8
	for i := 0; i < int(flash[1]); i++ {
		addr, n := getLE32(flash[p:]), getLE32(flash[p+4:])
		s += fmt.Sprintf("load 0x%08x, len %d\r\n", addr, n)
		p += 8 + int(n)
	}
	return []byte(s)
}

func appBanner() []byte {
	return []byte("\r\n[espsim] application running; hold GPIO0 low and power-cycle to flash\r\n")
}

// benchUser performs the simulated user's power cycles: back into
// download mode (Config.AutoReset) or into the firmware after a write
// (Config.ReleaseAfterWrite).
func (c *conn) benchUser() {
	d := c.d
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.autoResetAt.IsZero() && !now.Before(d.autoResetAt) {
		d.powerOnLocked(true)
		return
	}
	rel := d.cfg.ReleaseAfterWrite
	if rel > 0 && d.wrote && (d.mode == modeROM || d.mode == modeStub) && now.Sub(d.lastActive) >= rel {
		if d.cfg.Log != nil {
			fmt.Fprintf(d.cfg.Log, "espsim %-4s host quiet for %v after a write: the user releases GPIO0 and power-cycles\n", d.mode, rel)
		}
		d.powerOnLocked(false)
	}
}

// markWrite notes a flash write or reboot request for the bench user.
func (d *Device) markWrite() {
	d.mu.Lock()
	d.wrote = true
	d.mu.Unlock()
}

// junkLimit is how many bytes outside any SLIP frame, in the loader or the
// stub, make the simulated user power-cycle the chip: the tool is talking at
// another baud rate (a stub left at 460800 by an earlier session) and asks
// for a power cycle.
const junkLimit = 64

// watchJunk arms the simulated user's power cycle when garbage keeps
// arriving in the loader or the stub (see Config.AutoReset).
func (c *conn) watchJunk() {
	d := c.d
	if d.cfg.AutoReset <= 0 || c.dec.junk < junkLimit {
		return
	}
	d.mu.Lock()
	arm := (d.mode == modeROM || d.mode == modeStub) && d.autoResetAt.IsZero()
	if arm {
		d.autoResetAt = time.Now().Add(d.cfg.AutoReset)
	}
	mode := d.mode
	d.mu.Unlock()
	if arm {
		c.logf(mode.String(), fmt.Sprintf("%d bytes of garbage (host at another baud rate?): the user power-cycles the chip in %v", c.dec.junk, d.cfg.AutoReset))
	}
}

// goodFrame clears the garbage count: the host is talking properly.
func (c *conn) goodFrame() {
	c.dec.junk = 0
	d := c.d
	d.mu.Lock()
	if d.mode == modeROM || d.mode == modeStub {
		d.autoResetAt = time.Time{}
	}
	d.mu.Unlock()
}

// nextFrame returns the next received frame, waiting at most one poll
// interval for bytes; ok is false when none arrived.
func (c *conn) nextFrame() (rxFrame, bool, error) {
	if c.ringMode() {
		return c.ringFrame()
	}
	if f, ok := c.dec.next(); ok {
		return f, true, nil
	}
	if c.ctx.Err() != nil {
		return rxFrame{}, false, errStopped
	}
	if c.d.currentGen() != c.d.sessGen {
		return rxFrame{}, false, errInterrupted
	}
	if err := c.l.SetReadTimeout(pollInterval); err != nil {
		return rxFrame{}, false, fmt.Errorf("espsim: set read timeout: %w", err)
	}
	n, err := c.l.Read(c.rbuf)
	if n > 0 {
		if rerr := c.received(c.rbuf[:n]); rerr != nil {
			return rxFrame{}, false, rerr
		}
	} else if err == nil {
		if werr := c.appSerial(nil); werr != nil {
			return rxFrame{}, false, werr
		}
	}
	if err != nil {
		if c.ctx.Err() != nil {
			return rxFrame{}, false, errStopped
		}
		return rxFrame{}, false, fmt.Errorf("espsim: read: %w", err)
	}
	f, ok := c.dec.next()
	return f, ok, nil
}

// appSerial hands bytes from the host to a running firmware — nil at each
// poll interval without input, so that output the firmware produced on its
// own (boot log, results of queued commands) goes out — and sends its
// answer at the console rate.
func (c *conn) appSerial(in []byte) error {
	d := c.d
	if !d.appRunning || d.currentMode() != modeApp {
		return nil
	}
	if out := d.cfg.App.Serial(in); len(out) > 0 {
		return c.write(out)
	}
	return nil
}

// received counts bytes from the host, applies the disconnect, unplug and
// receive faults, decodes them and hands them to a running firmware.
func (c *conn) received(p []byte) error {
	d := c.d
	ft := d.cfg.Faults
	d.mu.Lock()
	before := d.bytesIn
	cut, pull := false, false
	if ft.DisconnectAfter > 0 && !d.disconnectDone && before+int64(len(p)) >= ft.DisconnectAfter {
		p = p[:max(ft.DisconnectAfter-before, 0)]
		cut = true
		d.disconnectDone = true
	}
	if ft.UnplugAfter > 0 && !d.unplugDone && before+int64(len(p)) >= ft.UnplugAfter {
		p = p[:max(ft.UnplugAfter-before, 0)]
		pull = true
		d.unplugDone = true
	}
	d.bytesIn += int64(len(p))
	d.lastActive = time.Now()
	m := d.mode
	d.mu.Unlock()
	if ft.RxDropRate > 0 || ft.RxCorruptRate > 0 || ft.RxDupRate > 0 {
		p = damage(p, before, ft.FaultAfter, d.rxRand, ft.RxDropRate, ft.RxCorruptRate, ft.RxDupRate)
	}
	if c.ringMode() {
		c.raw = append(c.raw, p...) // decoded when the stub is ready
	} else {
		c.dec.feed(p)
	}
	c.watchJunk()
	if m == modeApp && len(p) > 0 {
		if err := c.appSerial(p); err != nil {
			return err
		}
	}
	switch {
	case pull:
		c.logf(m.String(), fmt.Sprintf("unplug fault after %d received bytes", ft.UnplugAfter))
		d.mu.Lock()
		d.unplugged = true
		d.mu.Unlock()
		return c.unplug()
	case cut:
		c.logf(m.String(), fmt.Sprintf("disconnect fault after %d received bytes", ft.DisconnectAfter))
		_ = c.l.Close()
		return ErrDisconnected
	}
	return nil
}

// damage drops, corrupts and duplicates bytes with the given
// probabilities; pos is the stream position of p[0] and bytes before
// after are left alone.
func damage(p []byte, pos, after int64, r interface {
	Float64() float64
	IntN(int) int
}, drop, corrupt, dup float64) []byte {
	q := make([]byte, 0, len(p))
	for i, b := range p {
		if pos+int64(i) < after {
			q = append(q, b)
			continue
		}
		if drop > 0 && r.Float64() < drop {
			continue
		}
		if corrupt > 0 && r.Float64() < corrupt {
			b ^= byte(1 + r.IntN(255))
		}
		q = append(q, b)
		if dup > 0 && r.Float64() < dup {
			q = append(q, b)
		}
	}
	return q
}

// write sends chip output, applying the delay, drop, corrupt and
// duplicate faults.
func (c *conn) write(p []byte) error {
	d := c.d
	ft := d.cfg.Faults
	if d.faultsActive() {
		if ft.DelayRate > 0 && ft.Delay > 0 && d.txRand.Float64() < ft.DelayRate {
			if err := c.sleep(ft.Delay); err != nil {
				return err
			}
		}
		if ft.DropRate > 0 || ft.CorruptRate > 0 || ft.DupRate > 0 {
			p = damage(p, 0, 0, d.txRand, ft.DropRate, ft.CorruptRate, ft.DupRate)
		}
	}
	for len(p) > 0 {
		n, err := c.l.Write(p)
		d.mu.Lock()
		d.bytesOut += int64(n)
		d.mu.Unlock()
		if err != nil {
			if c.ctx.Err() != nil {
				return errStopped
			}
			return fmt.Errorf("espsim: write: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("espsim: write: %w", io.ErrShortWrite)
		}
		p = p[n:]
	}
	return nil
}

// sendFrame sends payload as one SLIP frame.
func (c *conn) sendFrame(payload []byte) error {
	return c.write(appendSLIP(nil, payload))
}

// respond sends the wire bytes of a command's reply, unless the
// command-reset fault strikes first (no reply, the chip restarts); the
// delay fault holds it back.
func (c *conn) respond(wire []byte) error {
	if c.strike {
		c.strike = false
		c.logf(c.d.currentMode().String(), "reset in the middle of the command: no reply")
		c.interrupt(false)
		return errInterrupted
	}
	if c.delayReply {
		c.delayReply = false
		if err := c.sleep(c.d.cfg.Faults.Delay); err != nil {
			return err
		}
	}
	return c.write(wire)
}

// interrupt carries out a reset (EN pulse) or a power loss now.
func (c *conn) interrupt(power bool) {
	d := c.d
	d.mu.Lock()
	if power {
		d.powerLossLocked(d.cfg.Faults.PowerOffTime)
	} else {
		d.hardResetLocked(2)
	}
	d.mu.Unlock()
}

// sleep waits d, returning early when Serve stops or the chip is reset.
func (c *conn) sleep(dur time.Duration) error {
	if dur <= 0 {
		return nil
	}
	c.worked += dur
	t := time.NewTimer(dur)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return errStopped
		case <-c.d.kick:
			if c.d.currentGen() != c.d.sessGen {
				return errInterrupted
			}
		case <-t.C:
			return nil
		}
	}
}

func (c *conn) logf(mode, msg string) {
	if c.d.cfg.Log != nil {
		fmt.Fprintf(c.d.cfg.Log, "espsim %-4s %s\n", mode, msg)
	}
}

// dispatch hands a frame to the ROM, the stub or the application.
func (c *conn) dispatch(f rxFrame) error {
	d := c.d
	m := d.currentMode()
	if (m == modeROM || m == modeStub) && !wellFormed(f) {
		// Garbled bytes that happen to sit between two 0xC0 (a host at
		// another baud rate) are no sign of a host that talks properly:
		// they count as garbage for the bench user's power cycle.
		c.dec.junk += len(f.data) + 2
		c.watchJunk()
	}
	if (m == modeROM || m == modeStub) && wellFormed(f) {
		c.goodFrame()
		n := d.count(f.data[1])
		ft := d.cfg.Faults
		d.mu.Lock()
		if ft.ResetAtCommand == n && !d.resetCmdDone {
			d.resetCmdDone = true
			c.strike = true
		}
		d.mu.Unlock()
		c.delayReply = ft.DelayAtCommand == n && ft.Delay > 0
	}
	switch m {
	case modeROM:
		return c.romFrame(f)
	case modeStub:
		return c.stubFrame(f)
	case modeApp, modeCrashed:
		c.userSync(f)
	}
	return nil
}

// wellFormed reports whether a frame has the shape of a request:
// direction 0 and a length field that matches its data.
func wellFormed(f rxFrame) bool {
	return len(f.data) >= 8 && f.data[0] == 0 && int(f.data[2])|int(f.data[3])<<8 == len(f.data)-8
}

// userSync: the application (or a crashed chip) ignores the protocol; a
// SYNC starts the simulated user's power cycle with GPIO0 held
// (Config.AutoReset).
func (c *conn) userSync(f rxFrame) {
	if c.d.cfg.AutoReset <= 0 || len(f.data) < 8 || f.data[0] != 0 || f.data[1] != opSync {
		return
	}
	d := c.d
	d.mu.Lock()
	if d.autoResetAt.IsZero() {
		d.autoResetAt = time.Now().Add(d.cfg.AutoReset)
	}
	d.mu.Unlock()
}
