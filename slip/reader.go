package slip

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/tuyaflash/tuyaflash/transport"
)

// Source is what Reader reads from; every transport.Port is one. Read
// follows go.bug.st/serial: a read that times out returns (0, nil).
type Source interface {
	Read(p []byte) (int, error)
	SetReadTimeout(d time.Duration) error
}

// DefaultMaxFrame bounds a frame's payload. The largest frame of the ESP
// protocol is a 16 KiB flash block plus its 16-byte header.
const DefaultMaxFrame = 0x4000 + 64

// junkKeep is how many bytes of junk the reader keeps to look for crash
// banners.
const junkKeep = 512

// Reader reads SLIP frames from a Source. It buffers what it reads, so
// after flushing the port's input also call Reset. A Reader is not safe for
// concurrent use.
type Reader struct {
	src Source
	// MaxFrame is the longest payload accepted (DefaultMaxFrame unless
	// changed before the first ReadFrame).
	MaxFrame int

	buf   []byte
	r, w  int
	dec   decoder
	frame []byte

	junk      []byte // tail of the bytes seen outside frames
	junkTotal int    // junk bytes since the last frame or Reset
}

// NewReader returns a Reader over src.
func NewReader(src Source) *Reader {
	return &Reader{src: src, MaxFrame: DefaultMaxFrame, buf: make([]byte, 8192)}
}

// Reset drops buffered bytes, a partial frame and the junk seen so far.
func (r *Reader) Reset() {
	r.r, r.w = 0, 0
	r.dec = decoder{}
	r.frame = r.frame[:0]
	r.junk = r.junk[:0]
	r.junkTotal = 0
}

// Buffered reports how many bytes the reader holds that no frame consumed
// yet.
func (r *Reader) Buffered() int { return r.w - r.r }

// ReadFrame returns the next non-empty frame's payload, waiting until
// deadline (a zero or past deadline only returns what is already buffered
// or arrives at once). The slice is valid until the next call.
//
// Errors: *TimeoutError (matches transport.ErrTimeout) when the deadline
// passes, *EscapeError on a corrupted escape (the reader then skips to the
// next frame, so calling again is fine), ErrFrameTooLong, *PanicError when
// a crash banner shows up in the bytes outside frames, and whatever the
// Source returns (transport.ErrClosed).
func (r *Reader) ReadFrame(deadline time.Time) ([]byte, error) {
	for {
		if f, err, ok := r.scan(); ok {
			return f, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, r.timeout()
		}
		if err := r.src.SetReadTimeout(left); err != nil {
			return nil, err
		}
		n, err := r.src.Read(r.buf)
		r.r, r.w = 0, n
		if n > 0 {
			if f, ferr, ok := r.scan(); ok {
				return f, ferr
			}
		}
		if err != nil {
			return nil, err
		}
	}
}

// scan runs the buffered bytes through the decoder; ok reports that it
// produced a frame or an error.
func (r *Reader) scan() (frame []byte, err error, ok bool) {
	junkStart := -1
	for r.r < r.w {
		c := r.buf[r.r]
		r.r++
		wasIn := r.dec.inFrame
		done, junk, derr := r.dec.step(c, &r.frame)
		if junk {
			if junkStart < 0 {
				junkStart = r.r - 1
			}
			continue
		}
		if junkStart >= 0 {
			r.keepJunk(r.buf[junkStart : r.r-1])
			junkStart = -1
		}
		if !wasIn && r.dec.inFrame {
			// A frame starts: a crash banner in the junk before it
			// explains why the chip talks again.
			if p := r.panicInJunk(); p != nil {
				return nil, p, true
			}
		}
		if derr != nil {
			return nil, derr, true
		}
		if len(r.frame) > r.MaxFrame {
			r.dec = decoder{}
			r.frame = r.frame[:0]
			return nil, ErrFrameTooLong, true
		}
		if done {
			r.junkTotal = 0
			r.junk = r.junk[:0]
			return r.frame, nil, true
		}
	}
	if junkStart >= 0 {
		r.keepJunk(r.buf[junkStart:r.w])
	}
	return nil, nil, false
}

func (r *Reader) keepJunk(b []byte) {
	r.junkTotal += len(b)
	if len(b) >= junkKeep {
		r.junk = append(r.junk[:0], b[len(b)-junkKeep:]...)
		return
	}
	if over := len(r.junk) + len(b) - junkKeep; over > 0 {
		r.junk = append(r.junk[:0], r.junk[over:]...)
	}
	r.junk = append(r.junk, b...)
}

func (r *Reader) timeout() error {
	if p := r.panicInJunk(); p != nil {
		return p
	}
	e := &TimeoutError{Junk: r.junkTotal}
	if r.dec.inFrame {
		e.Partial = len(r.frame)
		e.InFrame = true
	}
	if r.junkTotal > 0 {
		e.Sample = printable(r.junk, 48)
	}
	return e
}

// TimeoutError reports a deadline that passed before a frame completed.
// It matches transport.ErrTimeout.
type TimeoutError struct {
	// InFrame is set when a frame had started; Partial is its length so
	// far.
	InFrame bool
	Partial int
	// Junk counts the bytes that arrived outside any frame since the last
	// frame; Sample shows their printable tail.
	Junk   int
	Sample string
}

func (e *TimeoutError) Error() string {
	switch {
	case e.InFrame:
		return fmt.Sprintf("slip: frame stopped after %d bytes (timeout)", e.Partial)
	case e.Junk > 0 && e.Sample != "":
		return fmt.Sprintf("slip: no frame, only %d bytes of other data (%q)", e.Junk, e.Sample)
	case e.Junk > 0:
		return fmt.Sprintf("slip: no frame, only %d bytes of other data", e.Junk)
	default:
		return "slip: no data received (timeout)"
	}
}

// Is makes a TimeoutError match transport.ErrTimeout.
func (e *TimeoutError) Is(target error) bool { return target == transport.ErrTimeout }

// PanicError is a crash banner of ESP firmware or of a flasher stub seen
// between frames.
type PanicError struct {
	Banner string // "Guru Meditation Error" or "Fatal exception"
	Text   string // the printable line around it
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("the chip crashed (%s): %s", e.Banner, e.Text)
}

// ErrPanic is matched by every *PanicError.
var ErrPanic = errors.New("chip crashed")

// Is makes a PanicError match ErrPanic.
func (e *PanicError) Is(target error) bool { return target == ErrPanic }

// The banners esptool's slip_reader looks for. The first letter is left out
// because it is often lost on the line.
var banners = []struct{ key, name string }{
	{"uru Meditation", "Guru Meditation Error"},
	{"atal exception", "Fatal exception"},
}

func (r *Reader) panicInJunk() *PanicError {
	if len(r.junk) == 0 {
		return nil
	}
	for _, b := range banners {
		i := bytes.Index(r.junk, []byte(b.key))
		if i < 0 {
			continue
		}
		start := max(i-1, 0)
		end := start + 120
		if nl := bytes.IndexAny(r.junk[start:], "\r\n"); nl >= 0 && start+nl < end {
			end = start + nl
		}
		end = min(end, len(r.junk))
		p := &PanicError{Banner: b.name, Text: printable(r.junk[start:end], 120)}
		r.junk = r.junk[:0]
		return p
	}
	return nil
}

// printable keeps the last max printable ASCII characters of b, with other
// bytes shown as '.'.
func printable(b []byte, max int) string {
	if len(b) > max {
		b = b[len(b)-max:]
	}
	out := make([]byte, len(b))
	for i, c := range b {
		if c >= 0x20 && c < 0x7F {
			out[i] = c
		} else {
			out[i] = '.'
		}
	}
	return string(bytes.TrimSpace(out))
}
