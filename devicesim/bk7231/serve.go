package bksim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// readPoll bounds each Read on the line, so that the reader notices a stop
// request and Serve returns promptly when its context ends.
const readPoll = 20 * time.Millisecond

// errStopped ends the serving loop without an error (context done).
var errStopped = errors.New("bksim: stopped")

// inbox holds bytes the reader took off the line until the chip looks at
// them. It never blocks the reader: a pseudo-terminal that nobody drains
// would block the host's writes.
type inbox struct {
	mu     sync.Mutex
	buf    []byte
	notify chan struct{}
}

func (in *inbox) put(b []byte) {
	if len(b) == 0 {
		return
	}
	in.mu.Lock()
	in.buf = append(in.buf, b...)
	in.mu.Unlock()
	select {
	case in.notify <- struct{}{}:
	default:
	}
}

func (in *inbox) take() []byte {
	in.mu.Lock()
	defer in.mu.Unlock()
	b := in.buf
	in.buf = nil
	return b
}

type session struct {
	d        *Device
	l        Line
	ctx      context.Context
	in       *inbox
	p        parser
	lastByte time.Time
	epoch    uint64
	lineBaud int
	readErr  chan error
	// appOn says App.Boot was called without a Halt since; appGen is the
	// Device.appBoots value it was booted for.
	appOn  bool
	appGen int
	// pulled is the fault that took the line away (under d.mu).
	pulled error
}

// Serve runs the chip on l until ctx ends (it returns nil) or the line fails
// or closes (it returns the error; ErrDisconnected or ErrUnplugged when a
// fault pulled the cable or the adapter). It keeps reading l all the time.
// Serve calls Config.App's Boot and Halt; it halts a running App when it
// returns. Serve may be called again afterwards, with the same or another
// line; the device keeps its state, including its UART rate.
func (d *Device) Serve(ctx context.Context, l Line) error {
	d.mu.Lock()
	if d.serving {
		d.mu.Unlock()
		return errors.New("bksim: Serve is already running on this device")
	}
	d.serving = true
	epoch := d.epoch
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.serving = false
		d.mu.Unlock()
	}()

	if err := l.SetReadTimeout(readPoll); err != nil {
		return fmt.Errorf("bksim: set line read timeout: %w", err)
	}
	s := &session{
		d: d, l: l, ctx: ctx, epoch: epoch,
		in:      &inbox{notify: make(chan struct{}, 1)},
		readErr: make(chan error, 1),
	}
	defer s.haltApp()
	if err := s.syncBaud(); err != nil {
		return err
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go s.reader(stop, done)
	defer func() {
		// The reader notices stop within readPoll on a line that honours
		// read timeouts; do not hang on one that does not.
		close(stop)
		t := time.NewTimer(time.Second)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
		}
	}()
	err := s.run()
	if errors.Is(err, errStopped) {
		return nil
	}
	d.mu.Lock()
	if s.pulled != nil {
		// A write may notice the pulled cable before the reader reports it.
		err = s.pulled
	}
	d.mu.Unlock()
	return err
}

// reader copies the line into the inbox, applying the receive faults,
// DisconnectAfter and UnplugAfter.
func (s *session) reader(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	d := s.d
	buf := make([]byte, 4096)
	for {
		select {
		case <-stop:
			return
		default:
		}
		n, err := s.l.Read(buf)
		if n > 0 {
			out := make([]byte, 0, n)
			var pulled error
			d.mu.Lock()
			fa := d.cfg.Faults
			for _, b := range buf[:n] {
				d.bytesIn++
				if d.bytesIn > fa.FaultAfter {
					out = noisy(out, b, d.rxRand, fa.RxDropRate, fa.RxCorruptRate, fa.RxDupRate)
				} else {
					out = append(out, b)
				}
				if fa.DisconnectAfter > 0 && !d.disconnected && d.bytesIn >= fa.DisconnectAfter {
					d.disconnected = true
					pulled = ErrDisconnected
					d.logf("cable pulled after %d bytes received (Faults.DisconnectAfter)", d.bytesIn)
					break
				}
				if fa.UnplugAfter > 0 && !d.unplugged && d.bytesIn >= fa.UnplugAfter {
					d.unplugged = true
					pulled = ErrUnplugged
					d.logf("adapter unplugged after %d bytes received (Faults.UnplugAfter)", d.bytesIn)
					break
				}
			}
			s.pulled = pulled
			d.mu.Unlock()
			s.in.put(out)
			if pulled != nil {
				if u, ok := s.l.(Unplugger); ok && pulled == ErrUnplugged {
					u.Unplug()
				} else {
					s.l.Close()
				}
				s.readErr <- pulled
				return
			}
		}
		if err != nil {
			s.readErr <- fmt.Errorf("bksim: read from line: %w", err)
			return
		}
	}
}

func (s *session) run() error {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		if err := s.syncBaud(); err != nil {
			return err
		}
		s.syncApp()
		d := s.d
		d.mu.Lock()
		s.checkEpoch()
		next := s.nextDeadline()
		sig := d.resetSig
		d.mu.Unlock()
		var tc <-chan time.Time
		if !next.IsZero() {
			timer.Reset(time.Until(next))
			tc = timer.C
		}
		var err error
		select {
		case <-s.ctx.Done():
			return errStopped
		case err = <-s.readErr:
		case <-sig:
		case <-s.in.notify:
			err = s.process()
		case <-tc:
			err = s.tick()
		}
		timer.Stop()
		if err != nil {
			return err
		}
	}
}

// syncApp calls App.Halt and App.Boot so that the firmware runs exactly
// when the chip is in its application, and is booted again after every
// new start.
func (s *session) syncApp() {
	d := s.d
	app := d.cfg.App
	if app == nil {
		return
	}
	d.mu.Lock()
	want, gen := d.state == stateApp, d.appBoots
	d.mu.Unlock()
	if s.appOn && (!want || gen != s.appGen) {
		app.Halt()
		s.appOn = false
	}
	if want && !s.appOn {
		app.Boot(flashView{d})
		s.appOn, s.appGen = true, gen
	}
}

func (s *session) haltApp() {
	if s.appOn {
		s.d.cfg.App.Halt()
		s.appOn = false
	}
}

// checkEpoch forgets a half-received frame after a reset; the caller holds
// d.mu.
func (s *session) checkEpoch() {
	if s.d.epoch != s.epoch {
		s.p.reset()
		s.epoch = s.d.epoch
	}
}

// idleDeadline is when a bootloader-based chip in download mode gives up on
// the host; zero when it does not; the caller holds d.mu.
func (d *Device) idleDeadline() time.Time {
	if d.state != stateDownload || d.prof.proto == protoFull || d.cfg.IdleExit < 0 {
		return time.Time{}
	}
	return d.lastCmd.Add(d.cfg.IdleExit)
}

// nextDeadline is when the chip must act without input; the caller holds d.mu.
func (s *session) nextDeadline() time.Time {
	d := s.d
	var t time.Time
	consider := func(x time.Time) {
		if !x.IsZero() && (t.IsZero() || x.Before(t)) {
			t = x
		}
	}
	if d.state == stateWindow {
		consider(d.windowEnd)
	}
	consider(d.autoResetAt)
	consider(d.idleDeadline())
	if s.p.midFrame() {
		consider(s.lastByte.Add(frameIdleTimeout(d.baud)))
	}
	return t
}

// syncBaud puts the line at the chip's UART rate.
func (s *session) syncBaud() error {
	s.d.mu.Lock()
	b := s.d.baud
	s.d.mu.Unlock()
	if b == s.lineBaud {
		return nil
	}
	if err := s.l.SetBaudRate(b); err != nil {
		return fmt.Errorf("bksim: set line to %d baud: %w", b, err)
	}
	s.lineBaud = b
	return nil
}

// process feeds what arrived to the frame decoder and executes a complete
// frame. Whatever follows the frame arrived while the chip was busy and is
// dropped: the ROM ignores input until it has answered (one command at a
// time). While the application runs, the bytes go to App.Serial (and the
// decoder still watches for LinkChecks, which the simulated user answers
// with a power cycle when Config.AutoReset is set).
func (s *session) process() error {
	s.syncApp()
	chunk := s.in.take()
	if len(chunk) == 0 {
		return nil
	}
	now := time.Now()
	s.lastByte = now
	d := s.d
	d.mu.Lock()
	s.checkEpoch()
	var toApp []byte
	if d.state == stateApp && s.appOn {
		toApp = chunk
	}
	epoch := d.epoch
	for i, b := range chunk {
		d.consumed++
		f := s.p.feed(b)
		if f == nil {
			if !s.p.midFrame() {
				d.noteJunk(now)
			}
			continue
		}
		a := d.onFrame(f, now)
		if a.handled {
			d.junk = 0
			if d.state == stateDownload {
				d.autoResetAt = time.Time{}
			}
			d.mu.Unlock()
			return s.perform(a, len(chunk)-i-1)
		}
	}
	d.mu.Unlock()
	if toApp != nil {
		if out := d.cfg.App.Serial(toApp); len(out) > 0 {
			return s.send(out, epoch)
		}
	}
	return nil
}

// perform carries out an executed command: UART rate change, waiting, then
// the reply (or the fault that cuts the command). dropped counts input
// bytes already discarded with it.
func (s *session) perform(a action, dropped int) error {
	if err := s.syncBaud(); err != nil {
		return err
	}
	if wait := a.busy + a.wait; wait > 0 {
		if ok, err := s.sleep(wait, a.epoch); !ok {
			return err
		}
	}
	s.dropInput(dropped)
	d := s.d
	if a.cut.kind != cutNone {
		d.mu.Lock()
		if d.epoch == a.epoch {
			why := fmt.Sprintf("%.0f%% into %s", 100*a.cut.frac, a.what)
			if a.cut.kind == cutPowerLoss {
				d.powerLosses++
				d.powerOffLocked("power lost " + why + " (Faults.PowerLoss*)")
			} else {
				d.faultResets++
				d.resetLocked("chip reset " + why + " (Faults.Reset*)")
			}
		}
		d.mu.Unlock()
		return nil
	}
	var err error
	if a.reply != nil {
		err = s.send(a.reply, a.epoch)
	}
	d.mu.Lock()
	if d.epoch == a.epoch && d.state == stateDownload {
		d.lastCmd = time.Now() // the idle time counts from the end of the reply
	}
	d.mu.Unlock()
	return err
}

// dropInput discards input that arrived while the chip was busy.
func (s *session) dropInput(already int) {
	late := len(s.in.take())
	s.p.reset()
	s.d.mu.Lock()
	s.d.consumed += int64(already + late)
	s.d.mu.Unlock()
}

// sleep waits d. It returns false when the wait was cut short: by a reset of
// the chip (nil error: the pending reply is lost) or by the end of the
// context (errStopped).
func (s *session) sleep(d time.Duration, epoch uint64) (bool, error) {
	s.d.mu.Lock()
	sig, cur := s.d.resetSig, s.d.epoch
	s.d.mu.Unlock()
	if cur != epoch {
		return false, nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return true, nil
		case <-sig:
			s.d.mu.Lock()
			sig, cur = s.d.resetSig, s.d.epoch
			s.d.mu.Unlock()
			if cur != epoch {
				return false, nil
			}
		case <-s.ctx.Done():
			return false, errStopped
		}
	}
}

// send writes b to the host unless the chip was reset since epoch, applying
// Delay, DropRate, CorruptRate and DupRate.
func (s *session) send(b []byte, epoch uint64) error {
	d := s.d
	d.mu.Lock()
	fa := d.cfg.Faults
	active := d.faultActive()
	delayed := active && fa.Delay > 0 && fa.DelayRate > 0 && d.txRand.Float64() < fa.DelayRate
	d.mu.Unlock()
	if delayed {
		if ok, err := s.sleep(fa.Delay, epoch); !ok {
			return err
		}
		s.dropInput(0)
	}
	d.mu.Lock()
	if d.epoch != epoch {
		d.mu.Unlock()
		return nil
	}
	out := b
	if active && (fa.DropRate > 0 || fa.CorruptRate > 0 || fa.DupRate > 0) {
		out = make([]byte, 0, len(b))
		for _, c := range b {
			out = noisy(out, c, d.txRand, fa.DropRate, fa.CorruptRate, fa.DupRate)
		}
	}
	d.bytesOut += int64(len(out))
	d.mu.Unlock()
	return s.write(out)
}

// noisy appends c to out as a noisy line delivers it: lost with
// probability drop, changed with probability corrupt, doubled with
// probability dup.
func noisy(out []byte, c byte, rng *rand.Rand, drop, corrupt, dup float64) []byte {
	if drop > 0 && rng.Float64() < drop {
		return out
	}
	if corrupt > 0 && rng.Float64() < corrupt {
		c ^= byte(1 + rng.IntN(255))
	}
	if dup > 0 && rng.Float64() < dup {
		out = append(out, c)
	}
	return append(out, c)
}

// write writes all of b, giving up when the context ends (a pseudo-terminal
// whose reader went away can block a write for good).
func (s *session) write(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	done := make(chan error, 1)
	go func() {
		for len(b) > 0 {
			n, err := s.l.Write(b)
			b = b[n:]
			if err != nil {
				done <- err
				return
			}
			if n == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("bksim: write to line: %w", err)
		}
		return nil
	case <-s.ctx.Done():
		return errStopped
	}
}

// tick handles the chip's timeouts: an incomplete frame, the end of the link
// window, the idle exit of a bootloader, the simulated user's power cycle.
func (s *session) tick() error {
	now := time.Now()
	d := s.d
	d.mu.Lock()
	s.checkEpoch()
	var a action
	if s.p.midFrame() && !now.Before(s.lastByte.Add(frameIdleTimeout(d.baud))) {
		if f := s.p.expire(); f != nil {
			a = d.onFrame(f, now)
		}
	}
	var banner []byte
	if d.state == stateWindow && !now.Before(d.windowEnd) {
		d.enterAppLocked(fmt.Sprintf("no LinkCheck within %v", d.cfg.LinkWindow))
		banner = fmt.Appendf(nil, "\r\n[bksim] %s application started\r\n", d.cfg.Chip)
	}
	if t := d.idleDeadline(); !t.IsZero() && !now.Before(t) {
		d.enterAppLocked(fmt.Sprintf("no command for %v: the bootloader leaves download mode", d.cfg.IdleExit))
		banner = fmt.Appendf(nil, "\r\n[bksim] %s application started\r\n", d.cfg.Chip)
	}
	if !d.autoResetAt.IsZero() && !now.Before(d.autoResetAt) {
		d.resetLocked("simulated user power cycle (AutoReset)")
		banner = nil
	}
	epoch := d.epoch
	d.mu.Unlock()
	if a.handled {
		if err := s.perform(a, 0); err != nil {
			return err
		}
	}
	if banner != nil {
		if err := s.syncBaud(); err != nil {
			return err
		}
		return s.send(banner, epoch)
	}
	return nil
}
