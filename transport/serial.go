package transport

import (
	"errors"
	"fmt"
	"io/fs"
	"sync/atomic"
	"syscall"
	"time"

	"go.bug.st/serial"
)

// OpenError explains why a serial port could not be opened, with a hint for
// the user.
type OpenError struct {
	Name string
	Err  error
	Hint string
}

func (e *OpenError) Error() string {
	msg := fmt.Sprintf("open %s: %v", e.Name, e.Err)
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

func (e *OpenError) Unwrap() error { return e.Err }

// ErrBusy is wrapped by the *OpenError of a port another process (or
// another Open in this one) holds.
var ErrBusy = errors.New("port busy")

// hintBusy is the hint for a busy port whose holder is unknown.
const hintBusy = "another program holds the port; close it (screen, minicom, a serial monitor, ModemManager)"

// Open opens the serial device name (e.g. /dev/ttyUSB0, COM3 or a
// pseudo-terminal) at baud, 8N1, without touching DTR/RTS at open time so that
// pseudo-terminals work too.
//
// On Linux and the BSDs (macOS included) the port is locked for the whole
// session in a way that binds root too — TIOCEXCL, which go.bug.st/serial
// sets, does not: an exclusive flock on the device and the UUCP lock file
// LCK..<name> in /run/lock or /var/lock (FHS 3.0 §5.9: the PID as ten ASCII
// digits and a newline; a lock whose process is gone is taken over; a lock
// directory that is missing or not writable is skipped). A port held by
// someone else fails with an *OpenError wrapping ErrBusy whose hint names
// the holder ("in use by PID 1234 (tuyaflash backup …)"). Windows opens are
// exclusive by themselves.
//
// On Linux, BaudRate reports the rate the driver actually set (read back
// from termios: cp210x, for one, rounds to its table), and an FTDI adapter's
// latency timer is lowered to 1 ms for the session (see LatencyInfo). Close
// undoes both the locks and the latency change.
func Open(name string, baud int) (Port, error) {
	h, err := acquire(name)
	if err != nil {
		return nil, openError(name, err)
	}
	p, err := h.openPort(name, &serial.Mode{BaudRate: baud})
	if err != nil {
		h.release()
		return nil, openError(name, err)
	}
	s := &serialPort{p: p, name: name, hold: h, closeDone: make(chan struct{})}
	s.baud = s.readBack(baud)
	s.latency = h.lowerLatency()
	return s, nil
}

// openError turns an error of opening name into an *OpenError with a hint.
func openError(name string, err error) error {
	var oe *OpenError
	if errors.As(err, &oe) {
		return oe
	}
	oe = &OpenError{Name: name, Err: err}
	var pe *serial.PortError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		oe.Hint = "no such port; run 'tuyaflash ports' to list adapters (is the adapter plugged in?)"
	case errors.Is(err, fs.ErrPermission):
		oe.Hint = "permission denied; add yourself to the dialout (Debian/Ubuntu) or uucp (Arch) group and log in again"
	case errors.Is(err, syscall.EBUSY):
		oe.Err, oe.Hint = fmt.Errorf("%w: %w", ErrBusy, err), hintBusy
	}
	if errors.As(err, &pe) {
		switch pe.Code() {
		case serial.PortBusy:
			oe.Err, oe.Hint = fmt.Errorf("%w: %w", ErrBusy, err), hintBusy
		case serial.PortNotFound:
			oe.Hint = "no such port; run 'tuyaflash ports' to list adapters"
		case serial.PermissionDenied:
			oe.Hint = "permission denied; add yourself to the dialout (Debian/Ubuntu) or uucp (Arch) group and log in again"
		case serial.InvalidSpeed:
			oe.Hint = "the adapter or driver refuses this baud rate"
		}
	}
	return oe
}

type serialPort struct {
	p       serial.Port
	name    string
	hold    *osHold
	baud    int
	latency LatencyInfo
	closed  atomic.Bool
	// closeDone is closed once Close has released everything, so that a
	// Read that Close ended returns only after the port can be opened again.
	closeDone chan struct{}
}

// readBack returns the rate the driver set, or the requested one where the
// platform cannot tell.
func (s *serialPort) readBack(requested int) int {
	if r, ok := s.hold.rate(); ok && r > 0 {
		return r
	}
	return requested
}

func (s *serialPort) mapErr(err error) error {
	if err == nil {
		return nil
	}
	if s.closed.Load() {
		return fmt.Errorf("%s: %w", s.name, ErrClosed)
	}
	var pe *serial.PortError
	if errors.As(err, &pe) && pe.Code() == serial.PortClosed {
		// go.bug.st/serial reports a read that found the line hung up
		// (readable, no data) this way: the adapter went away.
		return fmt.Errorf("%s: %w (the port hung up)", s.name, ErrUnplugged)
	}
	if errors.Is(err, syscall.EIO) || errors.Is(err, syscall.ENXIO) || errors.Is(err, syscall.ENODEV) {
		return fmt.Errorf("%s: %w: %w", s.name, ErrUnplugged, err)
	}
	return fmt.Errorf("%s: %w", s.name, err)
}

func (s *serialPort) Read(b []byte) (int, error) {
	n, err := s.p.Read(b)
	if err != nil && s.closed.Load() {
		<-s.closeDone
	}
	return n, s.mapErr(err)
}

func (s *serialPort) Write(b []byte) (int, error) {
	n, err := s.p.Write(b)
	return n, s.mapErr(err)
}

// Close closes the port (a Read blocked on it returns an error wrapping
// ErrClosed at once), restores the latency timer and releases the locks.
func (s *serialPort) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	err := s.p.Close()
	s.hold.restoreLatency()
	s.hold.release()
	close(s.closeDone)
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	return nil
}

func (s *serialPort) SetReadTimeout(d time.Duration) error {
	if d < 0 {
		d = serial.NoTimeout
	}
	return s.mapErr(s.p.SetReadTimeout(d))
}

func (s *serialPort) SetBaudRate(baud int) error {
	if err := s.p.SetMode(&serial.Mode{BaudRate: baud}); err != nil {
		return s.mapErr(err)
	}
	s.baud = s.readBack(baud)
	return nil
}

// BaudRate reports the rate the driver set (Linux), else the one requested.
func (s *serialPort) BaudRate() int { return s.baud }

// LatencyInfo reports the adapter's latency timer (see Open).
func (s *serialPort) LatencyInfo() LatencyInfo { return s.latency }

func (s *serialPort) SetDTR(on bool) error { return s.modem(s.p.SetDTR(on)) }

func (s *serialPort) SetRTS(on bool) error { return s.modem(s.p.SetRTS(on)) }

// modem maps the errors of ports without modem lines (a pty answers
// ENOTTY, some drivers EINVAL) to ErrNoModemControl.
func (s *serialPort) modem(err error) error {
	if errors.Is(err, syscall.ENOTTY) || errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("%s: %w", s.name, ErrNoModemControl)
	}
	return s.mapErr(err)
}

func (s *serialPort) ResetInputBuffer() error { return s.mapErr(s.p.ResetInputBuffer()) }

func (s *serialPort) Drain() error { return s.mapErr(s.p.Drain()) }
