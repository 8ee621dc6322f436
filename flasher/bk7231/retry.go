package bk7231

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
)

// writeTries is how often a command of the write path (erase, write 4K,
// CRC, status register) is tried before the write fails.
const writeTries = 4

// stepDownAfter is the retry from which a failing command steps the rate
// down first.
const stepDownAfter = 3

// Hints for a command of the write path that failed every try.
const (
	hintWrite     = "the sector did not take the data after %d attempts; check the supply (voltage drops during erase/program are the usual cause) and the wires, then run the same command again: sectors already written are skipped"
	hintWriteFull = "the sector did not take the data after %d attempts: the flash may still be write-protected, or the supply drops during erase/program; run the same command again: sectors already written are skipped"
	hintLink      = "the chip stopped answering this command reliably after %d attempts: check the wires (short, crossed RX/TX, common GND), use a separate 3.3 V supply and a lower --baud, then run the same command again: sectors already written are skipped"
	hintSR        = "the flash status register did not answer after %d attempts: check the wires and the supply, power-cycle the module and run the same command again"
)

// recover brings the link back to a known state after a failed command, so
// that it can be retried: it drops whatever is in flight and re-syncs with
// a LinkCheck at the session rate. From the stepDownAfter-th retry on it
// steps the rate down instead. When no LinkCheck is answered, the chip has
// changed rate or left download mode: resync finds it at another rate or
// links again (asking for a power-cycle), the rate is restored and, on FULL
// chips, the flash protection checked again before the next erase.
func (d *Device) recover(ctx context.Context, try int) error {
	d.c.drop(30 * time.Millisecond)
	if try >= stepDownAfter {
		if err := d.stepDown(ctx); err == nil {
			return nil
		} else if isFatal(err) {
			return err
		}
	}
	for i := 0; i < 3; i++ {
		_, err := d.c.shortCmd("link check", cmdLinkCheck, nil, 200*time.Millisecond)
		if err == nil {
			d.c.drop(5 * time.Millisecond)
			return nil
		}
		if isFatal(err) {
			return err
		}
		d.c.drop(20 * time.Millisecond)
	}
	want := d.info.Baud
	linked, err := d.resync(ctx)
	if err != nil {
		return err
	}
	if linked {
		return d.restoreBaud(ctx, want)
	}
	return nil
}

// restoreBaud brings a chip that was linked again at 115200 back to the
// session's rate; the flash protection is checked again before the next
// erase (the firmware may have run and protected it).
func (d *Device) restoreBaud(ctx context.Context, want int) error {
	d.unprotected = false
	d.info.Baud = LinkBaud
	if want <= LinkBaud {
		return nil
	}
	if err := d.setBaud(want); err != nil {
		if _, err := d.resync(ctx); err != nil {
			return err
		}
		d.info.Baud = d.port.BaudRate()
		d.note(flasher.Warning, fmt.Sprintf("running at %d baud: %d failed after linking again", d.info.Baud, want))
		return nil
	}
	d.info.Baud = want
	return nil
}

// newSession ends the download session and starts another: Reboot, link-up
// at 115200 (asking for a power-cycle only when the chip does not come back
// by itself) and the session's rate restored. On the BASIC bootloaders a
// write retried in the same session keeps failing (bk7231-protocol.md §4.3:
// "Retrying a failed write on T in the same session fails to retry
// everytime", while on N it works; BK7231GUIFlashTool re-acquires the bus
// between backup and write for the same reason).
func (d *Device) newSession(ctx context.Context) error {
	d.events.Emit(flasher.Warning, "a retried write failed again: starting a new download session (this bootloader refuses retried writes within one session)")
	want := d.info.Baud
	d.c.drop(20 * time.Millisecond)
	if err := d.c.send(shortFrame(cmdReboot, 0xA5)); err != nil {
		return err
	}
	d.port.Drain()
	if err := d.link(ctx, 2*time.Second, false); err != nil {
		if !errors.Is(err, flasher.ErrNoLink) {
			return err
		}
		if err := d.link(ctx, d.opts.LinkTimeout, true); err != nil {
			return err
		}
	}
	return d.restoreBaud(ctx, want)
}

// prepareRetry readies the chip for retry number try (1, 2, …) of a
// command of the write path. On chips that re-protect after a CRC the
// second retry runs in a new session (§4.3); otherwise recover. A retried
// write always starts again with its erase, right after the re-link: that
// LinkCheck is what lets a BASIC bootloader unprotect the flash for it.
func (d *Device) prepareRetry(ctx context.Context, try int) error {
	if try == 2 && d.chip.ReprotectAfterCRC {
		return d.newSession(ctx)
	}
	return d.recover(ctx, try)
}

// retry runs one command of the write path until it succeeds, at most
// writeTries times, readying the chip before each retry. It fails with an
// *flasher.OpError naming op and addr inside a *flasher.HintError; an
// interruption is returned as the context's error.
func (d *Device) retry(ctx context.Context, op string, addr uint32, hint string, f func() error) error {
	var last error
	for try := 0; try < writeTries; try++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if try > 0 {
			if err := d.prepareRetry(ctx, try); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				// The chip is lost; err carries its own hint.
				return &flasher.OpError{Op: op, Addr: addr, Err: fmt.Errorf("after %v: %w", last, err)}
			}
		}
		err := f()
		if err == nil {
			return nil
		}
		last = err
		if isFatal(err) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var p permanent
			if errors.As(err, &p) {
				return p.error // typed and hinted where it was retried
			}
			return &flasher.OpError{Op: op, Addr: addr, Err: err}
		}
	}
	return d.failed(op, addr, hint, writeTries, last)
}

// failed builds the error of a command that failed tries times.
func (d *Device) failed(op string, addr uint32, hint string, tries int, err error) error {
	return &flasher.HintError{Err: &flasher.OpError{Op: op, Addr: addr, Err: err}, Hint: fmt.Sprintf(hint, tries)}
}
