//go:build linux

package transport

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// PTY is the device side of a pseudo-terminal: tuyaflash's simulators serve
// it while any serial tool opens SlavePath as if it were /dev/ttyUSB0.
//
// A pty carries bytes at any speed, so PTY emulates the one thing of a real
// wire that matters to the protocols: bytes exchanged while the two sides'
// baud rates differ arrive garbled. The device side's rate is set with
// SetBaudRate; the tool's rate is read from the slave's termios.
type PTY struct {
	master *os.File
	slave  *os.File // kept open so the master never sees EIO between clients
	path   string

	mu      sync.Mutex
	baud    int
	timeout time.Duration
}

var _ Port = (*PTY)(nil)

// OpenPTY creates a pseudo-terminal in raw mode at baud.
func OpenPTY(baud int) (*PTY, error) {
	m0, s, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("open pseudo-terminal: %w", err)
	}
	// creack/pty leaves the master in blocking mode (it calls Fd), which
	// disables read deadlines; reopen it non-blocking so the runtime poller
	// serves it.
	m, err := pollable(m0)
	if err != nil {
		s.Close()
		return nil, err
	}
	p := &PTY{master: m, slave: s, path: s.Name(), baud: baud, timeout: NoTimeout}
	if err := p.rawSlave(baud); err != nil {
		m.Close()
		s.Close()
		return nil, err
	}
	return p, nil
}

func pollable(f *os.File) (*os.File, error) {
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nfd int
	var derr error
	if err := rc.Control(func(fd uintptr) { nfd, derr = unix.Dup(int(fd)) }); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, fmt.Errorf("dup pty master: %w", derr)
	}
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return nil, err
	}
	unix.CloseOnExec(nfd)
	return os.NewFile(uintptr(nfd), "/dev/ptmx"), nil
}

func (p *PTY) rawSlave(baud int) error {
	rc, err := p.slave.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	err = rc.Control(func(fd uintptr) {
		t, err := unix.IoctlGetTermios(int(fd), unix.TCGETS2)
		if err != nil {
			ierr = err
			return
		}
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Cflag &^= unix.CSIZE | unix.PARENB | unix.CBAUD
		t.Cflag |= unix.CS8 | unix.BOTHER
		t.Ispeed, t.Ospeed = uint32(baud), uint32(baud)
		t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
		ierr = unix.IoctlSetTermios(int(fd), unix.TCSETS2, t)
	})
	if err != nil {
		return err
	}
	return ierr
}

// SlavePath is the path a serial tool opens, e.g. /dev/pts/3.
func (p *PTY) SlavePath() string { return p.path }

// PeerBaud reports the baud rate the tool has set on the slave side.
func (p *PTY) PeerBaud() int {
	rc, err := p.master.SyscallConn()
	if err != nil {
		return 0
	}
	var speed uint32
	_ = rc.Control(func(fd uintptr) {
		if t, err := unix.IoctlGetTermios(int(fd), unix.TCGETS2); err == nil {
			speed = t.Ospeed
		}
	})
	return int(speed)
}

func (p *PTY) mismatch() (bool, int, int) {
	p.mu.Lock()
	mine := p.baud
	p.mu.Unlock()
	peer := p.PeerBaud()
	return peer != 0 && !compatible(peer, mine), peer, mine
}

// Read reads what the tool sent, garbled if it was sent at another rate.
func (p *PTY) Read(b []byte) (int, error) {
	p.mu.Lock()
	to := p.timeout
	p.mu.Unlock()
	if to >= 0 {
		_ = p.master.SetReadDeadline(time.Now().Add(to))
	} else {
		_ = p.master.SetReadDeadline(time.Time{})
	}
	n, err := p.master.Read(b)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return n, nil
	}
	if err != nil {
		return n, fmt.Errorf("pty: %w", ErrClosed)
	}
	if bad, peer, mine := p.mismatch(); bad {
		garble(b[:n], peer, mine)
	}
	return n, nil
}

// Write sends b to the tool, garbled if the tool listens at another rate.
func (p *PTY) Write(b []byte) (int, error) {
	if bad, peer, mine := p.mismatch(); bad {
		g := append([]byte(nil), b...)
		garble(g, mine, peer)
		b = g
	}
	n, err := p.master.Write(b)
	if err != nil {
		return n, fmt.Errorf("pty: %w", ErrClosed)
	}
	return n, nil
}

// Close closes both sides; the tool's reads then fail.
func (p *PTY) Close() error {
	err1 := p.master.Close()
	err2 := p.slave.Close()
	return errors.Join(err1, err2)
}

// SetReadTimeout bounds each Read.
func (p *PTY) SetReadTimeout(d time.Duration) error {
	p.mu.Lock()
	p.timeout = d
	p.mu.Unlock()
	return nil
}

// SetBaudRate sets the device side's rate.
func (p *PTY) SetBaudRate(baud int) error {
	p.mu.Lock()
	p.baud = baud
	p.mu.Unlock()
	return nil
}

// BaudRate reports the device side's rate.
func (p *PTY) BaudRate() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.baud
}

// SetDTR reports ErrNoModemControl.
func (p *PTY) SetDTR(bool) error { return ErrNoModemControl }

// SetRTS reports ErrNoModemControl.
func (p *PTY) SetRTS(bool) error { return ErrNoModemControl }

// ResetInputBuffer discards unread input.
func (p *PTY) ResetInputBuffer() error {
	_, err := Discard(p, time.Millisecond, 100*time.Millisecond)
	return err
}

// Drain is a no-op: a pty has no transmitter.
func (p *PTY) Drain() error { return nil }
