//go:build !linux

package transport

import (
	"errors"
	"time"
)

// PTY is the device side of a pseudo-terminal; only Linux is supported.
type PTY struct{}

var errNoPTY = errors.New("pseudo-terminal simulators are supported on Linux only")

// OpenPTY is not supported on this system.
func OpenPTY(baud int) (*PTY, error) { return nil, errNoPTY }

// OpenPTYLink is not supported on this system.
func OpenPTYLink(LinkOptions) (*PTY, error) { return nil, errNoPTY }

// Link is not supported on this system.
func (p *PTY) Link(string) error { return errNoPTY }

// Unplug does nothing on this system.
func (p *PTY) Unplug() {}

func (p *PTY) SlavePath() string                  { return "" }
func (p *PTY) PeerBaud() int                      { return 0 }
func (p *PTY) Read(b []byte) (int, error)         { return 0, ErrClosed }
func (p *PTY) Write(b []byte) (int, error)        { return 0, ErrClosed }
func (p *PTY) Close() error                       { return nil }
func (p *PTY) SetReadTimeout(time.Duration) error { return nil }
func (p *PTY) SetBaudRate(int) error              { return nil }
func (p *PTY) BaudRate() int                      { return 0 }
func (p *PTY) SetDTR(bool) error                  { return ErrNoModemControl }
func (p *PTY) SetRTS(bool) error                  { return ErrNoModemControl }
func (p *PTY) ResetInputBuffer() error            { return nil }
func (p *PTY) Drain() error                       { return nil }
