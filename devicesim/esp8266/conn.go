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
}

func (c *conn) loop() error {
	for {
		if c.ctx.Err() != nil {
			return errStopped
		}
		if err := c.applyReset(); err != nil {
			if errors.Is(err, errInterrupted) {
				continue
			}
			return err
		}
		c.benchAutoReset()
		f, ok, err := c.nextFrame()
		if err == nil && ok {
			err = c.dispatch(f)
		}
		if errors.Is(err, errInterrupted) {
			continue
		}
		if err != nil {
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
		d.sess.reset()
		d.sessGen = gen
		c.dec.reset()
	}
	if ev == nil {
		return nil
	}
	if ev.jump {
		c.logf("app", "ROM left the loader: running the application from flash")
		return c.write(appBanner())
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
	if err := c.l.SetBaudRate(bootBaud); err != nil {
		return fmt.Errorf("espsim: set baud rate: %w", err)
	}
	if err := c.write(bootLog(ev, d.Flash())); err != nil {
		return err
	}
	if err := c.l.SetBaudRate(romBaud); err != nil {
		return fmt.Errorf("espsim: set baud rate: %w", err)
	}
	if !ev.download {
		return c.write(appBanner())
	}
	return nil
}

// bootLog is what the ROM prints after a reset (reference §2.1): the
// "ets Jan  8 2013,rst cause:N, boot mode:(X,Y)" banner; when booting
// from flash, one line per loaded segment of the image at 0x0. The exact
// text beyond the banner is illustrative.
func bootLog(ev *bootEvent, flash []byte) []byte {
	bm := "(3,6)"
	if ev.download {
		bm = "(1,6)"
		if ev.cause != 1 {
			bm = "(1,7)"
		}
	}
	s := fmt.Sprintf("\r\n ets Jan  8 2013,rst cause:%d, boot mode:%s\r\n\r\n", ev.cause, bm)
	if ev.download {
		return []byte(s)
	}
	if len(flash) >= 8 && flash[0] == 0xE9 {
		p := 8
		for i := 0; i < int(flash[1]) && p+8 <= len(flash); i++ {
			addr, n := getLE32(flash[p:]), getLE32(flash[p+4:])
			s += fmt.Sprintf("load 0x%08x, len %d\r\n", addr, n)
			p += 8 + int(n)
		}
	} else {
		s += "no valid image at 0x0\r\n"
	}
	return []byte(s)
}

func appBanner() []byte {
	return []byte("\r\n[espsim] application running; hold GPIO0 low and power-cycle to flash\r\n")
}

// benchAutoReset performs the simulated user's power cycle (Config.AutoReset).
func (c *conn) benchAutoReset() {
	d := c.d
	d.mu.Lock()
	due := !d.autoResetAt.IsZero() && !time.Now().Before(d.autoResetAt)
	if due {
		d.resetLocked(true, 1)
	}
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
	arm := d.mode != modeApp && d.autoResetAt.IsZero()
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
	if d.mode != modeApp {
		d.autoResetAt = time.Time{}
	}
	d.mu.Unlock()
}

// nextFrame returns the next received frame, waiting at most one poll
// interval for bytes; ok is false when none arrived.
func (c *conn) nextFrame() (rxFrame, bool, error) {
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

// received counts, disconnects, drops (RxDropRate) and decodes bytes from
// the host.
func (c *conn) received(p []byte) error {
	d := c.d
	ft := d.cfg.Faults
	d.mu.Lock()
	before := d.bytesIn
	cut := false
	if ft.DisconnectAfter > 0 && !d.disconnectDone && before+int64(len(p)) >= ft.DisconnectAfter {
		p = p[:max(ft.DisconnectAfter-before, 0)]
		cut = true
		d.disconnectDone = true
	}
	d.bytesIn += int64(len(p))
	d.mu.Unlock()
	if ft.RxDropRate > 0 {
		kept := p[:0:0]
		for i, b := range p {
			if before+int64(i) >= ft.FaultAfter && d.rxRand.Float64() < ft.RxDropRate {
				continue
			}
			kept = append(kept, b)
		}
		p = kept
	}
	c.dec.feed(p)
	c.watchJunk()
	if cut {
		c.logf(c.d.currentMode().String(), fmt.Sprintf("disconnect fault after %d received bytes", ft.DisconnectAfter))
		_ = c.l.Close()
		return ErrDisconnected
	}
	return nil
}

// write sends chip output, applying the delay, drop and corrupt faults.
func (c *conn) write(p []byte) error {
	d := c.d
	ft := d.cfg.Faults
	if d.faultsActive() {
		if ft.DelayRate > 0 && ft.Delay > 0 && d.txRand.Float64() < ft.DelayRate {
			if err := c.sleep(ft.Delay); err != nil {
				return err
			}
		}
		if ft.DropRate > 0 || ft.CorruptRate > 0 {
			q := make([]byte, 0, len(p))
			for _, b := range p {
				if ft.DropRate > 0 && d.txRand.Float64() < ft.DropRate {
					continue
				}
				if ft.CorruptRate > 0 && d.txRand.Float64() < ft.CorruptRate {
					b ^= byte(1 + d.txRand.IntN(255))
				}
				q = append(q, b)
			}
			p = q
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

// sleep waits d, returning early when Serve stops or the chip is reset.
func (c *conn) sleep(dur time.Duration) error {
	if dur <= 0 {
		return nil
	}
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
	switch c.d.currentMode() {
	case modeROM:
		c.goodFrame()
		return c.romFrame(f)
	case modeStub:
		c.goodFrame()
		return c.stubFrame(f)
	}
	c.appFrame(f)
	return nil
}

// appFrame: the application ignores the protocol; a SYNC starts the
// simulated user's auto-reset timer.
func (c *conn) appFrame(f rxFrame) {
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
