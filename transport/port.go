// Package transport carries bytes between tuyaflash and a device: the Port
// interface the protocol packages speak, an adapter over go.bug.st/serial
// (locked against other processes, root included, with the driver's actual
// rate read back and an FTDI adapter's latency timer lowered on Linux), an
// in-memory link and a pseudo-terminal paced at each side's baud rate
// through a model of the USB-UART adapter (rates, USB packets, latency
// timer, host buffer), a hex tracer and deadline-aware I/O helpers.
//
// A blocked Read ends when its port is closed; CloseOnDone ties that to a
// context, so that no quiet line can hold up a cancellation.
//
// Read follows go.bug.st/serial: it blocks until at least one byte arrives,
// the read timeout expires (then it returns 0, nil) or the port fails.
// Protocol code never calls io.ReadFull on a Port; it uses ReadFull from this
// package, which honours a deadline.
package transport

import (
	"errors"
	"io"
	"time"
)

// Port is the byte stream to one device plus the few line controls the
// flashing protocols need.
type Port interface {
	io.ReadWriteCloser
	// SetReadTimeout bounds each Read; a timed-out Read returns (0, nil).
	// A negative duration means no timeout.
	SetReadTimeout(d time.Duration) error
	// SetBaudRate changes the line rate (8N1).
	SetBaudRate(baud int) error
	// BaudRate reports the line rate in effect: where the platform
	// tells, the rate the driver actually set (which may be a rounded
	// version of the one asked for), else the one last set.
	BaudRate() int
	// SetDTR and SetRTS drive the modem lines. Ports without modem
	// control (pseudo-terminals, in-memory links) return ErrNoModemControl.
	SetDTR(on bool) error
	SetRTS(on bool) error
	// ResetInputBuffer discards received bytes that were not read yet.
	ResetInputBuffer() error
	// Drain waits until written bytes have left the host.
	Drain() error
}

var (
	// ErrTimeout is returned by ReadFull and the protocol readers when a
	// deadline passes before the expected bytes arrive.
	ErrTimeout = errors.New("timeout")
	// ErrNoModemControl is returned by SetDTR/SetRTS on ports that have
	// no modem lines, such as pseudo-terminals.
	ErrNoModemControl = errors.New("port has no DTR/RTS control")
	// ErrClosed is returned when the port was closed or the device
	// disconnected.
	ErrClosed = errors.New("port closed")
)

// NoTimeout disables the read timeout in SetReadTimeout.
const NoTimeout time.Duration = -1

// WireTime is the time n bytes take on a UART at baud (8N1: 10 bits a
// byte), rounded up to the nanosecond.
func WireTime(n int64, baud int) time.Duration {
	if baud <= 0 {
		return 0
	}
	num := n * 10 * int64(time.Second)
	return time.Duration((num + int64(baud) - 1) / int64(baud))
}
