package session

import (
	"bytes"
	"context"
	"strings"
	"sync"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/migrate"
	"github.com/tuyaflash/tuyaflash/transport"
)

// Connector is migrate's Connector on sessions: each port is opened and
// connected as the device commands do it, with Options as the template
// (Port and Notify are set per call).
type Connector struct {
	Options Options
	// TraceNotes sends the serial trace (a hex dump, or with
	// Options.Summary set a line per command) to each port's Notify as
	// notes, one a line, instead of Options.Trace.
	TraceNotes bool
}

var _ migrate.Connector = (*Connector)(nil)

// Connect implements migrate.Connector.
func (c *Connector) Connect(ctx context.Context, port string, notify flasher.Notify) (migrate.Link, error) {
	o := c.Options
	o.Port, o.Notify = port, notify
	if c.TraceNotes {
		w := NoteWriter(notify)
		defer w.Flush()
		if o.Summary != nil {
			o.Summary = w
		} else {
			o.Trace = w
		}
	}
	s, err := Connect(ctx, o)
	if err != nil {
		return nil, err
	}
	return &link{s: s}, nil
}

// Console implements migrate.Connector: the port opened for the
// firmware's console; a virtual device of this process is started into
// its firmware, and the port returned also tells its addresses (Virtual).
// Closing the port ends the session.
func (c *Connector) Console(ctx context.Context, port string) (transport.Port, error) {
	o := c.Options
	o.Port = port
	s, err := Open(ctx, o)
	if err != nil {
		return nil, err
	}
	if s.vdev != nil {
		_ = s.BootApp()
	}
	return &consolePort{Port: s.Port, s: s}, nil
}

// link is a connected session as migrate sees it.
type link struct{ s *Session }

func (l *link) Device() flasher.Device    { return l.s.Device }
func (l *link) Virtual() *migrate.Virtual { return l.s.Virtual.migrate() }
func (l *link) Console() transport.Port   { return l.s.Port }
func (l *link) Close() error              { return l.s.Close() }

// FollowReboot is the simulated user of an ESP8266 or ESP8285 served in
// this process doing what the reboot step told them: GPIO0 released, a
// power cycle, the firmware starts. (On its own the simulated user
// releases GPIO0 only after a flash write, so a migration that found its
// image in place — a re-run — left the chip in download mode and waited
// for a console or a network answer that never came.) A real device's
// user reads the instruction; nothing is done for them.
func (l *link) FollowReboot() {
	if v := l.s.vdev; v != nil && v.Spec.ESP() {
		_ = l.s.BootApp()
	}
}

// consolePort is a console session's port; Close ends the session.
type consolePort struct {
	transport.Port
	s *Session
}

func (p *consolePort) Close() error { return p.s.Close() }

// Virtual tells migrate a virtual device's addresses (nil for a real one).
func (p *consolePort) Virtual() *migrate.Virtual { return p.s.Virtual.migrate() }

// Unwrap gives the port under it.
func (p *consolePort) Unwrap() transport.Port { return p.Port }

// migrate is the virtual device as migrate describes it.
func (v *VirtualInfo) migrate() *migrate.Virtual {
	if v == nil {
		return nil
	}
	return &migrate.Virtual{Station: v.Addrs.Station, AP: v.Addrs.AP}
}

// LineWriter turns written text into lines: each one that is not blank
// goes to its function, without its line end.
type LineWriter struct {
	mu   sync.Mutex
	line func(string)
	buf  []byte
}

// LinesTo returns a LineWriter that calls f with each line (f runs under
// the writer's lock: one line at a time).
func LinesTo(f func(line string)) *LineWriter { return &LineWriter{line: f} }

// NoteWriter returns a LineWriter that emits each line as a Note to n.
func NoteWriter(n flasher.Notify) *LineWriter {
	return LinesTo(func(line string) { n.Emit(flasher.Note, line) })
}

// Write passes on each complete line and keeps the rest.
func (w *LineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.emit(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
}

// Flush passes on what is left without a line end.
func (w *LineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.emit(w.buf)
	w.buf = nil
}

func (w *LineWriter) emit(b []byte) {
	if line := strings.TrimRight(string(b), "\r"); strings.TrimSpace(line) != "" {
		w.line(line)
	}
}
