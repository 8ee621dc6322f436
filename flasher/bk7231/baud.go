package bk7231

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/transport"
)

// fallbackBauds are tried, in order, below a rate that failed.
var fallbackBauds = []int{921600, 460800, 230400, LinkBaud}

// setBaudDelay is the delay_ms the chip waits before answering SetBaudRate
// at the new rate; the host switches halfway through it (§4.1).
const setBaudDelay = 40

// negotiateBaud switches once to the requested rate, confirms it with a
// verified 4 KiB read, and steps down on failure (§4.1; no upward probing).
// When no rate passes, not even 115200, it fails: a link that cannot carry
// one verified sector is no link to back up or write over.
func (d *Device) negotiateBaud(ctx context.Context) error {
	if d.opts.Baud == LinkBaud && d.port.BaudRate() == LinkBaud {
		d.info.Baud = LinkBaud
		return nil
	}
	steps := []int{d.opts.Baud}
	for _, b := range fallbackBauds {
		if b < d.opts.Baud {
			steps = append(steps, b)
		}
	}
	var last error
	for _, want := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := d.switchAndConfirm(want)
		if err == nil {
			d.info.Baud = want
			if want != d.opts.Baud {
				d.note(flasher.Warning, fmt.Sprintf("running at %d baud: %d did not work with this adapter/wiring", want, d.opts.Baud))
			}
			return nil
		}
		if isFatal(err) {
			return err
		}
		last = err
		d.events.Emit(flasher.Warning, fmt.Sprintf("%d baud failed (%v); trying a lower rate", want, err))
		// Back to the link's rate first: the next SetBaudRate then goes
		// out at a rate that works, not at the one that garbles it.
		if err := d.fallBack(ctx, LinkBaud); err != nil {
			if isFatal(err) {
				return err
			}
			if _, err := d.resync(ctx); err != nil {
				return err
			}
		}
	}
	return &flasher.HintError{
		Err:  fmt.Errorf("no transfer rate works: a verified 4 KiB test read failed at every rate down to %d baud (last: %w)", steps[len(steps)-1], last),
		Hint: "the chip answers link checks but loses data: use short wires with a common GND, a separate 3.3 V supply (>= 300 mA), and another USB-serial adapter if this persists",
	}
}

// switchAndConfirm sends SetBaudRate and proves the new rate with a 4 KiB
// read checked against the chip's CRC.
func (d *Device) switchAndConfirm(baud int) error {
	if baud == d.port.BaudRate() {
		return d.confirm()
	}
	if err := d.setBaud(baud); err != nil {
		return err
	}
	return d.confirm()
}

func (d *Device) confirm() error {
	buf := make([]byte, sectorSize)
	addr := uint32(bootloaderEnd)
	if err := d.read4K(addr, buf); err != nil {
		return err
	}
	crc, err := d.crcRange(addr, sectorSize)
	if err != nil {
		return err
	}
	if crc != crc32.ChecksumIEEE(buf) {
		return fmt.Errorf("4 KiB test read did not match the chip's CRC: %w", flasher.ErrVerify)
	}
	return nil
}

// BaudMax, as Options.Baud, asks for the highest rate the adapter and the
// chip hold: 921600 as usual, then, on adapters known to run them
// (upDrivers), each of upRates in turn, every step confirmed by a 4 KiB
// read checked against the chip's CRC; the first step that fails goes back
// at once to the last rate that passed.
const BaudMax = -1

// upRates are the rates BaudMax tries above DefaultBaud, in order
// (BK7231GUIFlashTool offers 1500000 and 2000000; Beken's uartprogram ran
// 1.5 Mbaud before settling on 921600 "for better reliability").
var upRates = []int{1500000, 2000000}

// upDrivers are the Linux drivers of USB-UART bridges that run upRates: the
// CH340 (ch341: 2 Mbaud in WCH's data sheet) and the FT232R (ftdi_sio:
// 3 Mbaud). The cp210x driver also serves the CP2102, which stops at
// 1 Mbaud, and PL2303 clones are unreliable: those stay at 921600.
var upDrivers = map[string]bool{"ch341": true, "ftdi_sio": true}

// probeUp is BaudMax's upward probe, after negotiateBaud reached opts.Baud.
func (d *Device) probeUp(ctx context.Context) error {
	if d.info.Baud != d.opts.Baud {
		return nil // the base rate already failed
	}
	drv := transport.Latency(d.port).Driver
	if !upDrivers[drv] {
		why := "the adapter's driver is unknown"
		if drv != "" {
			why = "adapters on " + drv + " are not known to run faster"
		}
		d.events.Emit(flasher.Note, fmt.Sprintf("--baud max: staying at %d baud (%s)", d.info.Baud, why))
		return nil
	}
	for _, up := range upRates {
		if err := ctx.Err(); err != nil {
			return err
		}
		good := d.info.Baud
		err := d.switchAndConfirm(up)
		if err == nil {
			d.info.Baud = up
			continue
		}
		if isFatal(err) {
			return err
		}
		d.events.Emit(flasher.Note, fmt.Sprintf("--baud max: %d baud failed (%v); back to %d", up, err, good))
		return d.fallBack(ctx, good)
	}
	return nil
}

// fallBack returns the link to good, a rate that passed, after a step
// above it failed: the chip is at the new rate or, if the switch was lost,
// still at good.
func (d *Device) fallBack(ctx context.Context, good int) error {
	d.c.drop(20 * time.Millisecond)
	for try := 0; try < 3; try++ {
		if d.port.BaudRate() != good {
			if err := d.setBaud(good); err != nil {
				linked, err := d.resync(ctx)
				if err != nil {
					return err
				}
				if linked {
					return d.restoreBaud(ctx, good)
				}
				continue
			}
		}
		if err := d.confirm(); err == nil {
			d.info.Baud = good
			return nil
		}
		if _, err := d.resync(ctx); err != nil {
			return err
		}
	}
	return fmt.Errorf("could not return to %d baud: %w", good, errBaud)
}

// setBaud performs the SetBaudRate dance: send at the old rate, wait for the
// bytes to leave, switch the port inside the chip's delay, read the echo at
// the new rate.
func (d *Device) setBaud(baud int) error {
	old := d.port.BaudRate()
	frame := shortFrame(cmdSetBaud, append(le32(uint32(baud)), setBaudDelay)...)
	d.c.buf = d.c.buf[:0]
	if err := d.c.send(frame); err != nil {
		return fmt.Errorf("set baud %d: %w", baud, err)
	}
	if err := d.port.Drain(); err != nil {
		return fmt.Errorf("set baud %d: %w", baud, err)
	}
	time.Sleep(setBaudDelay * time.Millisecond / 2)
	if err := d.port.SetBaudRate(baud); err != nil {
		d.port.SetBaudRate(old)
		return fmt.Errorf("set baud %d on the adapter: %w", baud, err)
	}
	r, err := d.c.await(false, cmdSetBaud, time.Now().Add(setBaudDelay*time.Millisecond+500*time.Millisecond))
	if err != nil {
		return fmt.Errorf("set baud %d: %w", baud, err)
	}
	if len(r.data) < 4 || !bytes.Equal(r.data[:4], le32(uint32(baud))) {
		return fmt.Errorf("set baud %d: echo % X does not match: %w", baud, r.data, flasher.ErrProtocol)
	}
	d.events.Emit(flasher.Note, fmt.Sprintf("switched to %d baud", baud))
	return nil
}

// resync finds the chip again after a failed switch or command: it may be
// at the new rate (echo lost) or still at the old one; if neither answers
// it must be reset and linked again at 115200, which linked reports.
func (d *Device) resync(ctx context.Context) (linked bool, err error) {
	cur := d.port.BaudRate()
	tried := map[int]bool{}
	for _, b := range append([]int{cur, d.lastGoodBaud()}, fallbackBauds...) {
		if tried[b] {
			continue
		}
		tried[b] = true
		if err := ctx.Err(); err != nil {
			return false, err
		}
		d.port.SetBaudRate(b)
		d.c.drop(10 * time.Millisecond)
		for i := 0; i < 3; i++ {
			if _, err := d.c.shortCmd("link check", cmdLinkCheck, nil, 100*time.Millisecond); err == nil {
				d.c.drop(5 * time.Millisecond)
				return false, nil
			}
		}
	}
	d.events.Emit(flasher.Action, "lost the chip: power-cycle the module again now")
	if err := d.link(ctx, d.opts.LinkTimeout, false); err != nil {
		return false, err
	}
	return true, nil
}

func (d *Device) lastGoodBaud() int {
	if d.info.Baud != 0 {
		return d.info.Baud
	}
	return LinkBaud
}

// stepDown lowers the transfer rate after repeated errors during a
// transfer ("falls back to a lower rate on errors"). The rate Info reports
// is the one the link then runs at.
func (d *Device) stepDown(ctx context.Context) error {
	cur := d.port.BaudRate()
	next := 0
	for _, b := range fallbackBauds {
		if b < cur {
			next = b
			break
		}
	}
	if next == 0 {
		return fmt.Errorf("already at the lowest rate: %w", errBaud)
	}
	d.events.Emit(flasher.Warning, fmt.Sprintf("repeated errors at %d baud; stepping down to %d", cur, next))
	d.c.drop(20 * time.Millisecond)
	if err := d.setBaud(next); err != nil {
		// The chip may or may not have switched; find it.
		linked, err := d.resync(ctx)
		if err != nil {
			return err
		}
		if linked {
			d.unprotected = false // the firmware may have run meanwhile
		}
	}
	d.info.Baud = d.port.BaudRate()
	if d.info.Baud >= cur {
		return fmt.Errorf("the chip stayed at %d baud: %w", d.info.Baud, errBaud)
	}
	d.note(flasher.Warning, fmt.Sprintf("stepped down to %d baud after errors", d.info.Baud))
	return nil
}
