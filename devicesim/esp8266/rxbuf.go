package espsim

import (
	"bytes"
	"fmt"
	"math"
	"time"
)

// The receive buffer of a tuyaflash stub (stubProfile.rxBuffer): bytes the
// chip received and the stub has not decoded yet. The stub decodes only
// while it waits for a command; while it works on one, whatever arrives
// stays here, up to the buffer's size, and the rest is lost — the
// current stub's 20 KiB ring filled under interrupt, or the first stub's
// 128-byte UART FIFO that nobody empties while it works.
//
// The simulator reads the line only when it waits for a frame, so bytes
// that arrived during a command's work are still in the line when the
// work ends: absorb then takes what a UART at the chip's rate delivers in
// the modelled time the work took (conn.worked) and keeps what fits, which
// is what the buffer held at that moment (nothing left it meanwhile).
// Bytes beyond that are still on the wire: they stay in the line. The
// model so depends neither on how the host's scheduler ran the simulator
// nor on whether the link is paced (an unpaced pty hands over at once
// what a real wire takes its time to carry).

// ringMode reports whether received bytes go through the stub's buffer.
func (c *conn) ringMode() bool {
	return c.d.currentMode() == modeStub && c.profile().rxBuffer > 0
}

// takeFrame decodes buffered bytes up to the end of the next frame; the
// bytes after it stay buffered.
func (c *conn) takeFrame() (rxFrame, bool) {
	if f, ok := c.dec.next(); ok {
		return f, true
	}
	// A frame can only end at a delimiter: feed up to each in turn.
	for start := 0; start < len(c.raw); {
		end := len(c.raw)
		if i := bytes.IndexByte(c.raw[start:], slipEnd); i >= 0 {
			end = start + i + 1
		}
		c.dec.feed(c.raw[start:end])
		start = end
		if f, ok := c.dec.next(); ok {
			c.raw = c.raw[:copy(c.raw, c.raw[start:])]
			return f, true
		}
	}
	c.raw = c.raw[:0]
	return rxFrame{}, false
}

// absorb ends a stretch of work: it takes what the line delivered
// meanwhile into the buffer, drops what does not fit and records the
// buffer's level.
func (c *conn) absorb() error {
	if !c.ringMode() {
		return nil
	}
	if err := c.l.SetReadTimeout(0); err != nil {
		return fmt.Errorf("espsim: set read timeout: %w", err)
	}
	allow := wireBytes(c.worked, c.baud)
	c.worked = 0
	for allow > 0 {
		n, err := c.l.Read(c.rbuf[:min(len(c.rbuf), allow)])
		allow -= n
		if n > 0 {
			if rerr := c.received(c.rbuf[:n]); rerr != nil {
				return rerr
			}
		}
		if err != nil {
			if c.ctx.Err() != nil {
				return errStopped
			}
			return fmt.Errorf("espsim: read: %w", err)
		}
		if n == 0 {
			break
		}
	}
	size := c.profile().rxBuffer
	lost := max(len(c.raw)-size, 0)
	if lost > 0 {
		c.raw = c.raw[:size]
		c.logf("stub", fmt.Sprintf("receive buffer full: %d bytes lost", lost))
	}
	c.rxLost += lost
	c.rxHighWater = max(c.rxHighWater, len(c.raw))
	d := c.d
	d.mu.Lock()
	d.rxLost += lost
	d.rxHighWater = max(d.rxHighWater, len(c.raw))
	d.mu.Unlock()
	return nil
}

// ringFrame is nextFrame for a stub with a receive buffer: a frame from
// the buffer, else one step of the stub's background work, else up to one
// poll interval of waiting for bytes (shorter when background work waits
// for the flash).
func (c *conn) ringFrame() (rxFrame, bool, error) {
	if f, ok := c.takeFrame(); ok {
		return f, true, nil
	}
	if c.ctx.Err() != nil {
		return rxFrame{}, false, errStopped
	}
	if c.d.currentGen() != c.d.sessGen {
		return rxFrame{}, false, errInterrupted
	}
	worked, wait, err := c.tfBackground()
	if err == nil && worked {
		err = c.absorb()
	}
	if err != nil {
		return rxFrame{}, false, err
	}
	if worked {
		f, ok := c.takeFrame()
		return f, ok, nil
	}
	timeout := pollInterval
	if wait > 0 {
		timeout = min(timeout, wait)
	}
	if err := c.l.SetReadTimeout(timeout); err != nil {
		return rxFrame{}, false, fmt.Errorf("espsim: set read timeout: %w", err)
	}
	n, err := c.l.Read(c.rbuf)
	c.worked = 0
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
	f, ok := c.takeFrame()
	return f, ok, nil
}

// waitFlash waits for an erase the stub started in the background.
func (c *conn) waitFlash() error {
	return c.sleep(time.Until(c.d.sess.busyUntil))
}

// wireBytes is how many bytes a UART at baud (8N1: 10 bits a byte) carries
// in d; a rate not known yet counts as no limit.
func wireBytes(d time.Duration, baud int) int {
	if baud <= 0 {
		return math.MaxInt
	}
	return int(d.Seconds() * float64(baud) / 10)
}
