package transport

import (
	"sync"
	"time"
)

// A lane is one direction of a link: the bytes one side wrote, on their way
// to the other side's reader. Pipe and the pseudo-terminal bridge both carry
// their bytes in lanes, so the wire and adapter model exists once.
//
// A paced lane puts written bytes on the wire one after another at the
// sender's rate (10 bits a byte) and hands them to the reader in packets:
// a packet goes when it is full, or — with a latency timer — when the timer
// expires, or — without one — when the sender's write has crossed the wire.
// Everything is computed from timestamps when the reader looks, so the same
// code runs in real time and in the fake time of a testing/synctest bubble.
type lane struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change
	paced   bool
	epoch   time.Time // link creation: origin of the USB frame grid
	model   laneModel

	chunks   []*chunk  // written bytes not yet handed to the reader
	lastEnd  time.Time // when the last queued byte leaves the wire
	lastSend time.Time // when the last packet went to the reader (timer origin)

	inbox    []segment // handed over, not read yet: the reader's buffer
	inboxLen int
	lost     int64 // bytes dropped because the reader's buffer was full
	count    int64 // bytes read so far (the corruption pattern counts them)

	closed bool // the writer closed: the reader fails once drained
	dead   bool // the reader closed: writes fail
}

// laneModel is how bytes cross a lane.
type laneModel struct {
	packet  int           // bytes handed to the reader at most at once
	latency time.Duration // partial-packet timer; 0: flush when the write has crossed
	frame   time.Duration // writes start at the next frame boundary; 0: at once
	rxCap   int           // reader's buffer; overflowing bytes are lost; 0: unlimited
}

// chunk is one write on the wire.
type chunk struct {
	data   []byte
	start  time.Time // when the first bit of data[0] went on the wire
	baud   int       // the rate it was sent at
	handed int       // bytes handed to the reader (or discarded)
}

// segment is a run of handed-over bytes sent at one rate.
type segment struct {
	data []byte
	baud int
}

func newLane(paced bool, epoch time.Time, m laneModel) *lane {
	if m.packet <= 0 {
		m.packet = defaultPacket
	}
	return &lane{changed: make(chan struct{}), paced: paced, epoch: epoch, model: m, lastSend: epoch}
}

// defaultPacket is how many bytes the plain link hands over at once, like
// the 64-byte bulk packets of a full-speed USB adapter (USB 2.0 §5.8.3).
const defaultPacket = 64

func (l *lane) signal() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// arrival is when byte k of c has completely crossed the wire.
func (c *chunk) arrival(k int) time.Time {
	return c.start.Add(WireTime(int64(k+1), c.baud))
}

// crossed is how many bytes of c have completely crossed the wire by t.
func (c *chunk) crossed(t time.Time) int {
	el := int64(t.Sub(c.start))
	if el <= 0 || c.baud <= 0 {
		return 0
	}
	// el × baud / 10 s without overflowing for long links
	const tenS = 10 * int64(time.Second)
	n := (el/tenS)*int64(c.baud) + (el%tenS)*int64(c.baud)/tenS
	return int(min(n, int64(len(c.data))))
}

// write queues b, sent at baud, at time now. The caller holds l.mu.
func (l *lane) write(b []byte, baud int, now time.Time) {
	data := append([]byte(nil), b...)
	if !l.paced {
		l.deliver(data, baud)
		l.signal()
		return
	}
	start := now
	if f := l.model.frame; f > 0 {
		if r := now.Sub(l.epoch) % f; r > 0 {
			start = now.Add(f - r)
		}
	}
	if l.lastEnd.After(start) {
		start = l.lastEnd
	}
	l.chunks = append(l.chunks, &chunk{data: data, start: start, baud: baud})
	l.lastEnd = start.Add(WireTime(int64(len(data)), baud))
	l.signal()
}

// deliver puts bytes into the reader's buffer; what does not fit is lost.
func (l *lane) deliver(b []byte, baud int) {
	if c := l.model.rxCap; c > 0 && l.inboxLen+len(b) > c {
		keep := max(c-l.inboxLen, 0)
		l.lost += int64(len(b) - keep)
		b = b[:keep]
	}
	if len(b) == 0 {
		return
	}
	if n := len(l.inbox); n > 0 && l.inbox[n-1].baud == baud {
		l.inbox[n-1].data = append(l.inbox[n-1].data, b...)
	} else {
		l.inbox = append(l.inbox, segment{data: b, baud: baud})
	}
	l.inboxLen += len(b)
}

// nth returns the arrival time of pending byte i (0-based) across chunks.
func (l *lane) nth(i int) (time.Time, bool) {
	for _, c := range l.chunks {
		rest := len(c.data) - c.handed
		if i < rest {
			return c.arrival(c.handed + i), true
		}
		i -= rest
	}
	return time.Time{}, false
}

// arrivedBy counts pending bytes that have crossed the wire by t.
func (l *lane) arrivedBy(t time.Time) int {
	n := 0
	for _, c := range l.chunks {
		k := c.crossed(t) - c.handed
		if k <= 0 {
			break
		}
		n += k
		if c.handed+k < len(c.data) {
			break
		}
	}
	return n
}

// handOver moves the next n pending bytes into the reader's buffer.
func (l *lane) handOver(n int) {
	for n > 0 && len(l.chunks) > 0 {
		c := l.chunks[0]
		k := min(n, len(c.data)-c.handed)
		l.deliver(c.data[c.handed:c.handed+k], c.baud)
		c.handed += k
		n -= k
		if c.handed == len(c.data) {
			l.chunks = l.chunks[1:]
		}
	}
}

// advance hands over every packet due by now and returns when the next one
// is due (zero when nothing is pending). The caller holds l.mu.
func (l *lane) advance(now time.Time) time.Time {
	p := l.model.packet
	for len(l.chunks) > 0 {
		first := l.chunks[0]
		fill, full := l.nth(p - 1) // when a whole packet has arrived
		var due time.Time
		var n int
		if lat := l.model.latency; lat > 0 {
			// The timer runs from the last packet sent; with nothing to
			// send it still expires and restarts (FTDI sends the two
			// status bytes alone), so the first expiry that finds data is
			// the first tick of that grid at or after the byte's arrival.
			a0 := first.arrival(first.handed)
			k := max((a0.Sub(l.lastSend)+lat-1)/lat, 1)
			tick := l.lastSend.Add(k * lat)
			if full && !fill.After(tick) {
				due, n = fill, p
			} else {
				due, n = tick, l.arrivedBy(tick)
			}
		} else {
			// No timer: a partial packet goes once the write has crossed.
			rest := len(first.data) - first.handed
			if rest >= p {
				due, n = first.arrival(first.handed+p-1), p
			} else {
				due, n = first.arrival(len(first.data)-1), rest
			}
		}
		if due.After(now) {
			return due
		}
		l.handOver(n)
		l.lastSend = due
	}
	return time.Time{}
}

// discardArrived drops what the reader's buffer holds and every byte that
// has crossed the wire by now (a flush of the input queue).
func (l *lane) discardArrived(now time.Time) {
	l.advance(now)
	l.inbox, l.inboxLen = nil, 0
	for len(l.chunks) > 0 {
		c := l.chunks[0]
		c.handed = max(c.handed, c.crossed(now))
		if c.handed < len(c.data) {
			break
		}
		l.chunks = l.chunks[1:]
	}
}

// take copies up to len(b) buffered bytes into b and returns them with the
// rate each run was sent at (for the reader to judge). The caller holds l.mu.
func (l *lane) take(b []byte, each func(p []byte, sentAt int, first int64)) int {
	n := 0
	for n < len(b) && len(l.inbox) > 0 {
		s := &l.inbox[0]
		m := copy(b[n:], s.data)
		each(b[n:n+m], s.baud, l.count)
		l.count += int64(m)
		n += m
		l.inboxLen -= m
		if m == len(s.data) {
			l.inbox = l.inbox[1:]
		} else {
			s.data = s.data[m:]
		}
	}
	return n
}

// empty reports whether nothing is buffered or in flight.
func (l *lane) empty() bool { return len(l.chunks) == 0 && l.inboxLen == 0 }
