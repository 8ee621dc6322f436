package transport

import (
	"errors"
	"fmt"
	"io/fs"
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

// Open opens the serial device name (e.g. /dev/ttyUSB0, COM3 or a
// pseudo-terminal) at baud, 8N1, without touching DTR/RTS at open time so that
// pseudo-terminals work too.
func Open(name string, baud int) (Port, error) {
	p, err := serial.Open(name, &serial.Mode{BaudRate: baud})
	if err != nil {
		oe := &OpenError{Name: name, Err: err}
		var pe *serial.PortError
		switch {
		case errors.Is(err, fs.ErrNotExist):
			oe.Hint = "no such port; run 'tuyaflash ports' to list adapters (is the adapter plugged in?)"
		case errors.Is(err, fs.ErrPermission):
			oe.Hint = "permission denied; add yourself to the dialout (Debian/Ubuntu) or uucp (Arch) group and log in again"
		}
		if errors.As(err, &pe) {
			switch pe.Code() {
			case serial.PortBusy:
				oe.Hint = "another program holds the port; close it (screen, minicom, a serial monitor, ModemManager)"
			case serial.PortNotFound:
				oe.Hint = "no such port; run 'tuyaflash ports' to list adapters"
			case serial.PermissionDenied:
				oe.Hint = "permission denied; add yourself to the dialout (Debian/Ubuntu) or uucp (Arch) group and log in again"
			case serial.InvalidSpeed:
				oe.Hint = "the adapter or driver refuses this baud rate"
			}
		}
		return nil, oe
	}
	return &serialPort{p: p, name: name, baud: baud}, nil
}

type serialPort struct {
	p    serial.Port
	name string
	baud int
}

func (s *serialPort) mapErr(err error) error {
	if err == nil {
		return nil
	}
	var pe *serial.PortError
	if errors.As(err, &pe) && pe.Code() == serial.PortClosed {
		return fmt.Errorf("%s: %w", s.name, ErrClosed)
	}
	return fmt.Errorf("%s: %w", s.name, err)
}

func (s *serialPort) Read(b []byte) (int, error) {
	n, err := s.p.Read(b)
	return n, s.mapErr(err)
}

func (s *serialPort) Write(b []byte) (int, error) {
	n, err := s.p.Write(b)
	return n, s.mapErr(err)
}

func (s *serialPort) Close() error { return s.mapErr(s.p.Close()) }

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
	s.baud = baud
	return nil
}

func (s *serialPort) BaudRate() int { return s.baud }

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
