package transport

import (
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// LinkOptions configures an in-memory link made by Pipe (and the link a
// pseudo-terminal made by OpenPTYLink carries).
type LinkOptions struct {
	// Baud is the initial rate of both ends (default 115200).
	Baud int
	// Paced delivers bytes no faster than a UART at the sender's baud
	// rate would (10 bits a byte), in real time or in the fake time of a
	// testing/synctest bubble, through the adapter model's packets, latency
	// timer and USB frames. Unpaced links deliver at once (an adapter model
	// still maps the host's rate).
	Paced bool
	// MaxBaud, when set, models an adapter or wiring that cannot keep up
	// above this rate: one byte in 97 sent faster arrives corrupted.
	MaxBaud int
	// Adapter is the USB-UART bridge on the host's side of the link (see
	// ParseAdapter); the zero value is the plain link. Its timing applies
	// on a Paced link only; its rate mapping always.
	Adapter Adapter
	// Latency overrides the adapter's latency timer (how long a partial
	// USB packet waits before it goes to the host); 0 keeps the model's.
	Latency time.Duration
	// LowLatency models the host asking the driver for ASYNC_LOW_LATENCY,
	// as transport.Open does on Linux: an adapter with such a lever (the
	// FTDI model: 16 ms → 1 ms) runs its short timer; others are unchanged.
	LowLatency bool
	// RxBuffer is the host driver's receive buffer in bytes: bytes the
	// adapter hands over while it is full are lost, as when a reader does
	// not keep up with a long reply (bk7231-protocol.md §2.4; see
	// SmallRxBuffer). 0: LinuxRxBuffer with an adapter model, unlimited on
	// the plain link; negative: unlimited.
	RxBuffer int
}

// LinuxRxBuffer is what a Linux host buffers for a USB serial port before
// dropping bytes: the line discipline's 4096-byte buffer (N_TTY_BUF_SIZE,
// include/linux/tty.h) plus the flip buffers, capped at 640 KiB
// (TTYB_DEFAULT_MEM_LIMIT, drivers/tty/tty_buffer.c).
const LinuxRxBuffer = 4096 + 640*1024

// SmallRxBuffer is the 4096-byte receive buffer of the failure reports in
// bk7231-protocol.md §2.4 (Windows drivers' default queue, mono's
// SerialPort): a 4111-byte reply that nobody reads while it arrives
// overflows it.
const SmallRxBuffer = 4096

// ErrUnplugged is returned (wrapped with syscall.EIO) by reads and writes on
// a port whose USB adapter went away; it wraps ErrClosed.
var ErrUnplugged = fmt.Errorf("%w: adapter unplugged", ErrClosed)

// link is what the two ends of a Pipe share.
type link struct {
	adapter   Adapter
	maxBaud   int
	lowered   bool
	latency   time.Duration
	unplugged atomic.Bool
	host      *PipePort
}

// Pipe returns the two ends of an in-memory serial link: host is the
// computer's side (where the adapter model sits), dev the chip's. Each end
// has its own baud rate, as the host and the chip do: bytes read at a rate
// other than the one they were sent at arrive garbled, so a baud switch that
// is out of step fails the way it does on a real wire. Closing one end makes
// the other end's reads fail with ErrClosed once the bytes in flight are
// read, and its writes fail at once.
//
// With an adapter model the host's rate goes through the model (Adapter.Rate:
// the host's UART runs at the bridge's actual rate and BaudRate reports what
// the driver would) and, on a Paced link, bytes to the host arrive in USB
// packets, the last partial one after the latency timer, and host writes
// wait for the next USB frame.
func Pipe(opts LinkOptions) (host, dev *PipePort) {
	if opts.Baud <= 0 {
		opts.Baud = 115200
	}
	a := opts.Adapter
	model := a.IsModel()
	paced := opts.Paced
	l := &link{adapter: a, maxBaud: opts.MaxBaud, latency: a.Latency}
	if opts.Latency > 0 {
		l.latency = opts.Latency
	}
	if opts.LowLatency && a.LowLatency > 0 {
		l.latency, l.lowered = a.LowLatency, true
	}
	rx := opts.RxBuffer
	switch {
	case rx < 0:
		rx = 0
	case rx == 0 && model:
		rx = LinuxRxBuffer
	}
	epoch := time.Now()
	toHost := laneModel{packet: a.Packet - a.Status, latency: l.latency, rxCap: rx}
	toDev := laneModel{frame: a.Frame}
	up, down := newLane(paced, epoch, toDev), newLane(paced, epoch, toHost)
	host = &PipePort{l: l, host: true, rx: down, tx: up, timeout: NoTimeout, done: make(chan struct{})}
	dev = &PipePort{l: l, rx: up, tx: down, timeout: NoTimeout, done: make(chan struct{})}
	host.setRate(opts.Baud)
	dev.setRate(opts.Baud)
	l.host = host
	return host, dev
}

// PipePort is one end of an in-memory link made by Pipe.
type PipePort struct {
	l      *link
	host   bool
	rx, tx *lane

	mu      sync.Mutex
	baud    int        // requested rate
	wire    int        // rate this end's UART runs at
	report  int        // rate BaudRate reports
	rateFn  func() int // the pty bridge: the tool's rate, read when needed
	timeout time.Duration
	once    sync.Once
	done    chan struct{}
}

var _ Port = (*PipePort)(nil)

func (p *PipePort) setRate(baud int) {
	wire, report := baud, baud
	if p.host {
		wire, report = p.l.adapter.Rate(baud)
	}
	p.mu.Lock()
	p.baud, p.wire, p.report = baud, wire, report
	p.mu.Unlock()
}

// rates returns this end's UART rate and reported rate.
func (p *PipePort) rates() (wire, report int) {
	p.mu.Lock()
	fn := p.rateFn
	wire, report = p.wire, p.report
	p.mu.Unlock()
	if fn != nil {
		if b := fn(); b > 0 {
			if p.host {
				return p.l.adapter.Rate(b)
			}
			return b, b
		}
	}
	return wire, report
}

// gone returns the error for an unplugged link.
func (p *PipePort) gone() error {
	if !p.l.unplugged.Load() {
		return nil
	}
	if p.host {
		return fmt.Errorf("%w: %w", ErrUnplugged, syscall.EIO)
	}
	return fmt.Errorf("link: %w", ErrClosed)
}

// Write queues b for the other end. It never blocks.
func (p *PipePort) Write(b []byte) (int, error) {
	select {
	case <-p.done:
		return 0, ErrClosed
	default:
	}
	if err := p.gone(); err != nil {
		return 0, err
	}
	if len(b) == 0 {
		return 0, nil
	}
	wire, _ := p.rates()
	w := p.tx
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dead || w.closed {
		return 0, ErrClosed
	}
	w.write(b, wire, time.Now())
	return len(b), nil
}

// Read returns the bytes that have arrived, waiting up to the read timeout
// for the first of them.
func (p *PipePort) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	p.mu.Lock()
	timeout := p.timeout
	p.mu.Unlock()
	var deadline <-chan time.Time
	if timeout >= 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	w := p.rx
	for {
		select {
		case <-p.done:
			return 0, ErrClosed
		default:
		}
		if err := p.gone(); err != nil {
			return 0, err
		}
		wire, _ := p.rates()
		over := p.overMax(wire)
		w.mu.Lock()
		next := w.advance(time.Now())
		n := w.take(b, func(got []byte, sentAt int, first int64) {
			if !compatible(sentAt, wire) {
				garble(got, sentAt, wire)
			}
			if over(sentAt) {
				for i := range got {
					if (first+int64(i))%97 == 50 {
						got[i] ^= 0x10
					}
				}
			}
		})
		closed := w.closed && w.empty()
		changed := w.changed
		w.mu.Unlock()
		if n > 0 {
			return n, nil
		}
		if closed {
			return 0, ErrClosed
		}
		var wake <-chan time.Time
		var t *time.Timer
		if !next.IsZero() {
			t = time.NewTimer(time.Until(next))
			wake = t.C
		}
		timedOut := false
		select {
		case <-p.done:
			return 0, ErrClosed
		case <-changed:
		case <-wake:
		case <-deadline:
			timedOut = true
		}
		if t != nil {
			t.Stop()
		}
		if timedOut {
			return 0, nil
		}
	}
}

// overMax returns whether bytes sent at a rate arrive corrupted at this end:
// above LinkOptions.MaxBaud, or with the adapter's UART above its MaxBaud.
func (p *PipePort) overMax(myWire int) func(sentAt int) bool {
	limit := p.l.maxBaud
	adapterOver := false
	if am := p.l.adapter.MaxBaud; am > 0 {
		hostWire := myWire
		if !p.host {
			hostWire, _ = p.l.host.rates()
		}
		adapterOver = hostWire > am
	}
	return func(sentAt int) bool {
		return adapterOver || limit > 0 && max(sentAt, myWire) > limit
	}
}

// compatible reports whether two UARTs at these rates understand each
// other: within 2 %, as real UARTs do (they resample every byte).
func compatible(a, b int) bool {
	d := a - b
	if d < 0 {
		d = -d
	}
	return d*50 <= max(a, b)
}

// garble turns bytes sent at one rate into what a UART at another rate
// makes of them: not the same bytes.
func garble(b []byte, sent, read int) {
	k := byte(sent/1200) ^ byte(read/1200) ^ 0xA5
	for i := range b {
		b[i] = (b[i] ^ k) + byte(i)
	}
}

// Close ends this side of the link. Reads on the other side fail with
// ErrClosed once the bytes already sent are read; writes fail at once.
// A Read blocked on this end returns ErrClosed at once.
func (p *PipePort) Close() error {
	p.once.Do(func() {
		close(p.done)
		p.tx.mu.Lock()
		p.tx.closed = true
		p.tx.signal()
		p.tx.mu.Unlock()
		p.rx.mu.Lock()
		p.rx.dead = true
		p.rx.chunks, p.rx.inbox, p.rx.inboxLen = nil, nil, 0
		p.rx.signal()
		p.rx.mu.Unlock()
	})
	return nil
}

// Unplug makes the link fail like a USB adapter pulled out of the host:
// from now on the host end's reads and writes fail with an error wrapping
// ErrUnplugged (hence ErrClosed) and syscall.EIO, the bytes in flight are
// lost, and the device end's reads and writes fail with ErrClosed. Either
// end may call it; simulators call it on theirs.
func (p *PipePort) Unplug() {
	if p.l.unplugged.Swap(true) {
		return
	}
	for _, w := range []*lane{p.rx, p.tx} {
		w.mu.Lock()
		w.chunks, w.inbox, w.inboxLen = nil, nil, 0
		w.signal()
		w.mu.Unlock()
	}
}

// SetReadTimeout sets how long Read waits for the first byte.
func (p *PipePort) SetReadTimeout(d time.Duration) error {
	p.mu.Lock()
	p.timeout = d
	p.mu.Unlock()
	return nil
}

// SetBaudRate changes this end's rate. Bytes already on the wire keep the
// rate they were sent at. On the host end of a link with an adapter model
// the UART runs at the rate the bridge can make of it (Adapter.Rate).
func (p *PipePort) SetBaudRate(baud int) error {
	if err := p.gone(); err != nil {
		return err
	}
	p.setRate(baud)
	return nil
}

// BaudRate reports this end's rate: on the host end of a link with an
// adapter model, the rate the bridge's driver reports back (Adapter.Rate).
func (p *PipePort) BaudRate() int {
	_, r := p.rates()
	return r
}

// LatencyInfo reports the adapter model's latency timer on the host end
// (Known is false on the plain link and on the device end).
func (p *PipePort) LatencyInfo() LatencyInfo {
	a := p.l.adapter
	if !p.host || !a.IsModel() {
		return LatencyInfo{}
	}
	li := LatencyInfo{Driver: a.Driver, Timer: p.l.latency, Known: true, Lowered: p.l.lowered}
	if !li.Lowered && a.LowLatency == 0 {
		li.Reason = a.Driver + " has no latency timer to lower"
	}
	return li
}

// Lost reports how many bytes to this end were dropped because its receive
// buffer (LinkOptions.RxBuffer) was full.
func (p *PipePort) Lost() int64 {
	p.rx.mu.Lock()
	defer p.rx.mu.Unlock()
	p.rx.advance(time.Now())
	return p.rx.lost
}

// SetDTR reports ErrNoModemControl: an in-memory link has no modem lines.
func (p *PipePort) SetDTR(bool) error { return ErrNoModemControl }

// SetRTS reports ErrNoModemControl: an in-memory link has no modem lines.
func (p *PipePort) SetRTS(bool) error { return ErrNoModemControl }

// ResetInputBuffer discards the bytes that have already arrived.
func (p *PipePort) ResetInputBuffer() error {
	if err := p.gone(); err != nil {
		return err
	}
	w := p.rx
	w.mu.Lock()
	defer w.mu.Unlock()
	w.discardArrived(time.Now())
	return nil
}

// Drain waits until the bytes written so far have left this end.
func (p *PipePort) Drain() error {
	p.tx.mu.Lock()
	end := p.tx.lastEnd
	p.tx.mu.Unlock()
	if d := time.Until(end); d > 0 {
		time.Sleep(d)
	}
	return p.gone()
}
