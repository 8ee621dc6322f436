package transport

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Trace wraps p so that every byte written and read, and every line change,
// is hex-dumped to w with a timestamp relative to the first event.
func Trace(p Port, w io.Writer) Port {
	return &tracer{Port: p, w: w}
}

type tracer struct {
	Port
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

func (t *tracer) log(dir string, b []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.start.IsZero() {
		t.start = time.Now()
	}
	stamp := time.Since(t.start).Seconds()
	if b == nil {
		fmt.Fprintf(t.w, "%10.6f %s\n", stamp, dir)
		return
	}
	for off := 0; off < len(b); off += 32 {
		end := min(off+32, len(b))
		var sb strings.Builder
		for i, c := range b[off:end] {
			if i > 0 {
				sb.WriteByte(' ')
			}
			fmt.Fprintf(&sb, "%02X", c)
		}
		if off == 0 {
			fmt.Fprintf(t.w, "%10.6f %s %5d | %s\n", stamp, dir, len(b), sb.String())
		} else {
			fmt.Fprintf(t.w, "%10s %s %5s | %s\n", "", dir, "", sb.String())
		}
	}
}

// Unwrap returns the traced port.
func (t *tracer) Unwrap() Port { return t.Port }

func (t *tracer) Write(b []byte) (int, error) {
	n, err := t.Port.Write(b)
	if n > 0 {
		t.log("TX", b[:n])
	}
	if err != nil {
		t.log("TX error: "+err.Error(), nil)
	}
	return n, err
}

func (t *tracer) Read(b []byte) (int, error) {
	n, err := t.Port.Read(b)
	if n > 0 {
		t.log("RX", b[:n])
	}
	if err != nil {
		t.log("RX error: "+err.Error(), nil)
	}
	return n, err
}

func (t *tracer) SetBaudRate(baud int) error {
	err := t.Port.SetBaudRate(baud)
	t.log(fmt.Sprintf("-- baud %d (%v)", baud, errText(err)), nil)
	return err
}

func (t *tracer) SetDTR(on bool) error {
	err := t.Port.SetDTR(on)
	t.log(fmt.Sprintf("-- DTR %v (%v)", on, errText(err)), nil)
	return err
}

func (t *tracer) SetRTS(on bool) error {
	err := t.Port.SetRTS(on)
	t.log(fmt.Sprintf("-- RTS %v (%v)", on, errText(err)), nil)
	return err
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}
