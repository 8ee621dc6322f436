package transport

import (
	"sync"
	"time"
)

// LinkOptions configures an in-memory link made by Pipe.
type LinkOptions struct {
	// Baud is the initial rate of both ends (default 115200).
	Baud int
	// Paced delivers bytes no faster than a UART at the sender's baud
	// rate would (10 bits a byte), in real time or in the fake time of a
	// testing/synctest bubble. Unpaced links deliver at once.
	Paced bool
	// MaxBaud, when set, models an adapter or wiring that cannot keep up
	// above this rate: one byte in 97 sent faster arrives corrupted.
	MaxBaud int
}

// usbPacket is how many bytes a paced link hands to a reader at once, like
// the bulk packets of a USB serial adapter.
const usbPacket = 64

// Pipe returns the two ends of an in-memory serial link. Each end has its own
// baud rate, as the host and the chip do: bytes read at a rate other than the
// one they were sent at arrive garbled, so a baud switch that is out of step
// fails the way it does on a real wire. Closing one end makes the other end's
// reads fail with ErrClosed once the bytes in flight are read, and its writes
// fail at once.
func Pipe(opts LinkOptions) (a, b *PipePort) {
	if opts.Baud <= 0 {
		opts.Baud = 115200
	}
	ab, ba := newWire(opts.MaxBaud), newWire(opts.MaxBaud)
	a = &PipePort{rx: ba, tx: ab, baud: opts.Baud, paced: opts.Paced, timeout: NoTimeout, done: make(chan struct{})}
	b = &PipePort{rx: ab, tx: ba, baud: opts.Baud, paced: opts.Paced, timeout: NoTimeout, done: make(chan struct{})}
	return a, b
}

type chunk struct {
	data  []byte
	off   int       // bytes already read
	start time.Time // when the first bit of data[0] went on the wire
	paced bool
	baud  int // sender's baud rate
}

// arrived reports how many unread bytes of c a reader may take at now, and
// when the next batch becomes readable (zero when all have arrived).
func (c *chunk) arrived(now time.Time) (n int, next time.Time) {
	if !c.paced {
		return len(c.data) - c.off, time.Time{}
	}
	done := c.sent(now)
	if done >= len(c.data) {
		return len(c.data) - c.off, time.Time{}
	}
	batch := done - done%usbPacket
	want := min(batch+usbPacket, len(c.data))
	return max(batch-c.off, 0), c.start.Add(WireTime(int64(want), c.baud))
}

// sent is how many whole bytes of c have crossed the wire by now.
func (c *chunk) sent(now time.Time) int {
	el := now.Sub(c.start)
	if el <= 0 {
		return 0
	}
	return int(int64(el) * int64(c.baud) / (10 * int64(time.Second)))
}

type wire struct {
	mu      sync.Mutex
	chunks  []*chunk
	lastEnd time.Time
	changed chan struct{} // closed and replaced on every append or close
	closed  bool          // writer side closed
	dead    bool          // reader side closed: writes fail
	maxBaud int
	count   int64 // bytes delivered so far
}

func newWire(maxBaud int) *wire { return &wire{changed: make(chan struct{}), maxBaud: maxBaud} }

func (w *wire) signal() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// PipePort is one end of an in-memory link made by Pipe.
type PipePort struct {
	rx, tx *wire
	paced  bool

	mu      sync.Mutex
	baud    int
	timeout time.Duration
	once    sync.Once
	done    chan struct{}
}

var _ Port = (*PipePort)(nil)

// Write queues b for the other end. It never blocks.
func (p *PipePort) Write(b []byte) (int, error) {
	select {
	case <-p.done:
		return 0, ErrClosed
	default:
	}
	if len(b) == 0 {
		return 0, nil
	}
	p.mu.Lock()
	baud := p.baud
	p.mu.Unlock()
	w := p.tx
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dead || w.closed {
		return 0, ErrClosed
	}
	now := time.Now()
	c := &chunk{data: append([]byte(nil), b...), start: now, baud: baud, paced: p.paced}
	if p.paced {
		if w.lastEnd.After(now) {
			c.start = w.lastEnd
		}
		w.lastEnd = c.start.Add(WireTime(int64(len(b)), baud))
	}
	w.chunks = append(w.chunks, c)
	w.signal()
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
		w.mu.Lock()
		n, next := p.take(w, b, time.Now())
		closed := w.closed && len(w.chunks) == 0
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

// take copies arrived bytes into b; the caller holds w.mu.
func (p *PipePort) take(w *wire, b []byte, now time.Time) (int, time.Time) {
	p.mu.Lock()
	myBaud := p.baud
	p.mu.Unlock()
	n := 0
	for n < len(b) && len(w.chunks) > 0 {
		c := w.chunks[0]
		avail, next := c.arrived(now)
		if avail == 0 {
			return n, next
		}
		m := copy(b[n:], c.data[c.off:c.off+avail])
		if !compatible(c.baud, myBaud) {
			garble(b[n:n+m], c.baud, myBaud)
		}
		if w.maxBaud > 0 && max(c.baud, myBaud) > w.maxBaud {
			for i := n; i < n+m; i++ {
				if (w.count+int64(i-n))%97 == 50 {
					b[i] ^= 0x10
				}
			}
		}
		w.count += int64(m)
		n += m
		c.off += m
		if c.off == len(c.data) {
			w.chunks = w.chunks[1:]
			continue
		}
		if m < avail {
			return n, time.Time{}
		}
		return n, next
	}
	return n, time.Time{}
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
func (p *PipePort) Close() error {
	p.once.Do(func() {
		close(p.done)
		p.tx.mu.Lock()
		p.tx.closed = true
		p.tx.signal()
		p.tx.mu.Unlock()
		p.rx.mu.Lock()
		p.rx.dead = true
		p.rx.chunks = nil
		p.rx.signal()
		p.rx.mu.Unlock()
	})
	return nil
}

// SetReadTimeout sets how long Read waits for the first byte.
func (p *PipePort) SetReadTimeout(d time.Duration) error {
	p.mu.Lock()
	p.timeout = d
	p.mu.Unlock()
	return nil
}

// SetBaudRate changes this end's rate. Bytes already on the wire keep the
// rate they were sent at.
func (p *PipePort) SetBaudRate(baud int) error {
	p.mu.Lock()
	p.baud = baud
	p.mu.Unlock()
	return nil
}

// BaudRate reports this end's rate.
func (p *PipePort) BaudRate() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.baud
}

// SetDTR reports ErrNoModemControl: an in-memory link has no modem lines.
func (p *PipePort) SetDTR(bool) error { return ErrNoModemControl }

// SetRTS reports ErrNoModemControl: an in-memory link has no modem lines.
func (p *PipePort) SetRTS(bool) error { return ErrNoModemControl }

// ResetInputBuffer discards the bytes that have already arrived.
func (p *PipePort) ResetInputBuffer() error {
	w := p.rx
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	for len(w.chunks) > 0 {
		c := w.chunks[0]
		if !c.paced || c.sent(now) >= len(c.data) {
			w.chunks = w.chunks[1:]
			continue
		}
		c.off = max(c.off, c.sent(now))
		break
	}
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
	return nil
}
