// Package slip implements the RFC 1055 framing that the ESP8266 ROM loader
// and its flasher stubs use on the UART: a frame is 0xC0, the payload with
// 0xC0 written as 0xDB 0xDC and 0xDB written as 0xDB 0xDD, then 0xC0.
//
// Encode builds frames. Decode finds the first frame in a byte slice. Reader
// pulls frames from a serial port with a deadline; it skips bytes that arrive
// outside a frame (a boot log, another chip's chatter) and reports the crash
// banners an ESP prints there ("Guru Meditation", "Fatal exception") as a
// *PanicError.
//
// Empty frames carry nothing in this protocol (esptool's command layer drops
// them), so two 0xC0 in a row are read as one delimiter: the decoder never
// returns an empty frame and stays in step when it starts in the middle of
// a frame.
package slip

import (
	"errors"
	"fmt"
)

// The SLIP special bytes.
const (
	End    = 0xC0 // frame delimiter
	Esc    = 0xDB // escape
	EscEnd = 0xDC // Esc EscEnd stands for End
	EscEsc = 0xDD // Esc EscEsc stands for Esc
)

// Encode appends the SLIP frame of payload (both delimiters included) to
// dst and returns the extended slice.
func Encode(dst, payload []byte) []byte {
	dst = grow(dst, EncodedLen(payload))
	dst = append(dst, End)
	for _, c := range payload {
		switch c {
		case End:
			dst = append(dst, Esc, EscEnd)
		case Esc:
			dst = append(dst, Esc, EscEsc)
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, End)
}

// EncodedLen is the length of the frame Encode makes of payload.
func EncodedLen(payload []byte) int {
	n := len(payload) + 2
	for _, c := range payload {
		if c == End || c == Esc {
			n++
		}
	}
	return n
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), len(b)+n)
	copy(nb, b)
	return nb
}

// ErrIncomplete is returned by Decode when wire holds no complete frame.
var ErrIncomplete = errors.New("slip: no complete frame")

// ErrFrameTooLong is returned when a frame exceeds the reader's limit; the
// bytes are most likely noise.
var ErrFrameTooLong = errors.New("slip: frame longer than the limit (noise on the line?)")

// EscapeError is an escape byte followed by something other than 0xDC or
// 0xDD: the frame was corrupted on the wire.
type EscapeError struct {
	Next byte // the byte that followed 0xDB
}

func (e *EscapeError) Error() string {
	return fmt.Sprintf("slip: invalid escape 0xDB 0x%02X (corrupted frame: noise, wrong baud rate or a loose wire)", e.Next)
}

// decoder is the byte-at-a-time SLIP state machine shared by Decode and
// Reader.
type decoder struct {
	inFrame bool
	esc     bool
}

// step feeds c. It reports whether c completed a non-empty frame in *frame,
// whether c lay outside any frame (junk), and an escape error. On an error
// the partial frame is dropped and the decoder waits for the next 0xC0.
func (d *decoder) step(c byte, frame *[]byte) (done, junk bool, err error) {
	if !d.inFrame {
		if c == End {
			d.inFrame = true
			*frame = (*frame)[:0]
			return false, false, nil
		}
		return false, true, nil
	}
	if d.esc {
		d.esc = false
		switch c {
		case EscEnd:
			*frame = append(*frame, End)
		case EscEsc:
			*frame = append(*frame, Esc)
		default:
			d.inFrame = false
			*frame = (*frame)[:0]
			return false, false, &EscapeError{Next: c}
		}
		return false, false, nil
	}
	switch c {
	case Esc:
		d.esc = true
	case End:
		if len(*frame) == 0 {
			// 0xC0 0xC0: the end of nothing and a new start.
			return false, false, nil
		}
		d.inFrame = false
		return true, false, nil
	default:
		*frame = append(*frame, c)
	}
	return false, false, nil
}

// Decode finds the first frame in wire, skipping bytes before its opening
// 0xC0. It appends the payload to dst and returns it with the number of
// bytes of wire consumed (up to and including the closing 0xC0). Without a
// complete frame it returns ErrIncomplete; on a bad escape an *EscapeError
// and the bytes consumed up to it.
func Decode(dst, wire []byte) (payload []byte, n int, err error) {
	var d decoder
	start := len(dst)
	frame := dst[start:start]
	for i, c := range wire {
		done, _, err := d.step(c, &frame)
		if err != nil {
			return dst, i + 1, err
		}
		if done {
			// frame either still shares dst's array at start (then this
			// copies it onto itself) or was moved by a growing append.
			return append(dst[:start], frame...), i + 1, nil
		}
	}
	return dst, len(wire), ErrIncomplete
}
