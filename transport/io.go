package transport

import (
	"fmt"
	"time"
)

// ReadFull reads exactly len(buf) bytes from p before deadline. Unlike
// io.ReadFull it does not spin forever on a port whose timed-out reads return
// (0, nil). On a timeout it returns the number of bytes read and an error
// wrapping ErrTimeout.
func ReadFull(p Port, buf []byte, deadline time.Time) (int, error) {
	n := 0
	for n < len(buf) {
		left := time.Until(deadline)
		if left <= 0 {
			return n, fmt.Errorf("read %d of %d bytes: %w", n, len(buf), ErrTimeout)
		}
		if err := p.SetReadTimeout(left); err != nil {
			return n, err
		}
		m, err := p.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// WriteAll writes all of b to p. go.bug.st/serial can return a short write
// with a nil error (for instance when the far end of a pty goes away); WriteAll
// retries the remainder and reports a write that makes no progress.
func WriteAll(p Port, b []byte) error {
	stalls := 0
	for len(b) > 0 {
		n, err := p.Write(b)
		b = b[n:]
		if err != nil {
			return err
		}
		if n == 0 {
			stalls++
			if stalls > 3 {
				return fmt.Errorf("write made no progress with %d bytes left: %w", len(b), ErrClosed)
			}
			time.Sleep(time.Millisecond)
			continue
		}
		stalls = 0
	}
	return nil
}

// Discard reads and discards whatever arrives on p until the line has been
// quiet for quiet, or until max has passed. It returns the number of bytes
// discarded.
func Discard(p Port, quiet, max time.Duration) (int, error) {
	end := time.Now().Add(max)
	buf := make([]byte, 4096)
	total := 0
	for time.Now().Before(end) {
		if err := p.SetReadTimeout(quiet); err != nil {
			return total, err
		}
		n, err := p.Read(buf)
		total += n
		if err != nil {
			return total, err
		}
		if n == 0 {
			return total, nil
		}
	}
	return total, nil
}
