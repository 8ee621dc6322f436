//go:build linux

package transport

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// PTY is the device side of a pseudo-terminal: tuyaflash's simulators serve
// it while any serial tool opens SlavePath as if it were /dev/ttyUSB0.
//
// Between the tool and the device side runs the same link model as Pipe:
// the tool is the host end, its rate read from the slave's termios whenever
// it matters, the device side has its own (SetBaudRate). Bytes exchanged
// while the two rates differ arrive garbled; with LinkOptions.Paced or an
// adapter model they also take the time the wire and the adapter take, in
// both directions, so an external tool sees real transfer times.
type PTY struct {
	master *os.File
	slave  *os.File // kept open so the master never sees EIO between clients
	path   string

	dev    *PipePort // what Read and Write use
	bridge *PipePort // the tool's end, pumped to and from the master
	wg     sync.WaitGroup

	mu        sync.Mutex
	link      string
	closed    bool
	unplugged bool
}

var _ Port = (*PTY)(nil)

// OpenPTY creates a pseudo-terminal in raw mode at baud, unpaced: bytes
// cross at once (rates that differ still garble them). See OpenPTYLink.
func OpenPTY(baud int) (*PTY, error) {
	return OpenPTYLink(LinkOptions{Baud: baud})
}

// OpenPTYLink creates a pseudo-terminal in raw mode at opts.Baud whose link
// follows opts as Pipe's does (pacing, adapter model, latency). The host's
// receive buffer is the kernel's pty buffer, so opts.RxBuffer is ignored.
func OpenPTYLink(opts LinkOptions) (*PTY, error) {
	if opts.Baud <= 0 {
		opts.Baud = 115200
	}
	m0, s, err := openPair()
	if err != nil {
		return nil, fmt.Errorf("open pseudo-terminal: %w", err)
	}
	// creack/pty leaves the master in blocking mode (it calls Fd), which
	// disables read deadlines and Close wake-ups; reopen it non-blocking
	// so the runtime poller serves it.
	m, err := pollable(m0)
	if err != nil {
		s.Close()
		return nil, err
	}
	p := &PTY{master: m, slave: s, path: s.Name()}
	if err := p.rawSlave(opts.Baud); err != nil {
		m.Close()
		s.Close()
		return nil, err
	}
	opts.RxBuffer = -1
	p.bridge, p.dev = Pipe(opts)
	p.bridge.rateFn = p.PeerBaud
	// What the tool writes enters the link as it is written; what the
	// link delivers goes to the tool when it is delivered. Both copies
	// end when Close or Unplug closes the master and the link.
	p.wg.Add(2)
	go p.pump(p.bridge, p.master)
	go p.pump(p.master, p.bridge)
	return p, nil
}

// openPair opens a pseudo-terminal whose slave, opened by its name, is the
// master's own peer. /dev/ptmx allocates in the devpts instance mounted at
// /dev/pts — but where several are stacked there (containers, some VMs) a
// master was seen to come from another instance than the one the name
// /dev/pts/N leads to: the "slave" was then another program's terminal,
// /dev/pts/0 of the instance in use, and two simulators served one
// terminal. Each pair is checked through TIOCGPTPEER, which opens the peer
// without a path; a pair that fails the check is closed and another
// allocated, from /dev/pts/ptmx (the instance the names lead to) at the
// end.
func openPair() (master, slave *os.File, err error) {
	for attempt := 0; attempt < 4; attempt++ {
		m, s, err := pty.Open()
		if err != nil {
			return nil, nil, err
		}
		same, err := isPeer(m, s)
		if err == nil && same {
			return m, s, nil
		}
		m.Close()
		s.Close()
		if err != nil {
			return nil, nil, err
		}
	}
	m, err := os.OpenFile("/dev/pts/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("/dev/ptmx allocates terminals /dev/pts does not show, and /dev/pts/ptmx cannot be opened: %w", err)
	}
	s, err := openSlave(m)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	if same, err := isPeer(m, s); err != nil || !same {
		m.Close()
		s.Close()
		return nil, nil, fmt.Errorf("the name %s does not lead to the terminal allocated for it", s.Name())
	}
	return m, s, nil
}

// openSlave unlocks master's slave and opens it by its name.
func openSlave(m *os.File) (*os.File, error) {
	rc, err := m.SyscallConn()
	if err != nil {
		return nil, err
	}
	n := -1
	var ierr error
	if err := rc.Control(func(fd uintptr) {
		if n, ierr = unix.IoctlGetInt(int(fd), unix.TIOCGPTN); ierr == nil {
			ierr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0)
		}
	}); err != nil {
		return nil, err
	}
	if ierr != nil {
		return nil, ierr
	}
	return os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
}

// isPeer reports whether slave is master's peer (the same device and
// inode as TIOCGPTPEER's descriptor). Where TIOCGPTPEER is missing (Linux
// before 4.13) it cannot tell and reports true.
func isPeer(master, slave *os.File) (bool, error) {
	rc, err := master.SyscallConn()
	if err != nil {
		return false, err
	}
	peer := -1
	if err := rc.Control(func(fd uintptr) {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, unix.TIOCGPTPEER, uintptr(unix.O_RDONLY|unix.O_NOCTTY|unix.O_CLOEXEC))
		if errno == 0 {
			peer = int(r)
		}
	}); err != nil {
		return false, err
	}
	if peer < 0 {
		return true, nil
	}
	pf := os.NewFile(uintptr(peer), "peer")
	defer pf.Close()
	want, err := pf.Stat()
	if err != nil {
		return false, err
	}
	got, err := slave.Stat()
	if err != nil {
		return false, err
	}
	return os.SameFile(got, want), nil
}

func (p *PTY) pump(dst io.Writer, src io.Reader) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
}

func pollable(f *os.File) (*os.File, error) {
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nfd int
	var derr error
	// F_DUPFD_CLOEXEC: the copy is close-on-exec from the start. (A dup
	// followed by FD_CLOEXEC leaves a moment in which a process started
	// by another goroutine inherits the master and keeps the pty alive.)
	if err := rc.Control(func(fd uintptr) { nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, fmt.Errorf("dup pty master: %w", derr)
	}
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return nil, err
	}
	return os.NewFile(uintptr(nfd), "/dev/ptmx"), nil
}

func (p *PTY) rawSlave(baud int) error {
	rc, err := p.slave.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	err = rc.Control(func(fd uintptr) {
		t, err := unix.IoctlGetTermios(int(fd), tcgets2)
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
		ierr = unix.IoctlSetTermios(int(fd), tcsets2, t)
	})
	if err != nil {
		return err
	}
	return ierr
}

// SlavePath is the path a serial tool opens, e.g. /dev/pts/3.
func (p *PTY) SlavePath() string { return p.path }

// PeerBaud reports the baud rate the tool has set on the slave side (0
// once the pty is closed).
func (p *PTY) PeerBaud() int {
	rc, err := p.master.SyscallConn()
	if err != nil {
		return 0
	}
	var speed uint32
	_ = rc.Control(func(fd uintptr) {
		if t, err := unix.IoctlGetTermios(int(fd), tcgets2); err == nil {
			speed = t.Ospeed
		}
	})
	return int(speed)
}

// Link makes path a symbolic link to SlavePath, for tools that want a fixed
// name. An existing symlink is replaced; anything else is refused with an
// error wrapping fs.ErrExist. Close and Unplug remove the link.
func (p *PTY) Link(path string) error {
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSymlink == 0 {
			return fmt.Errorf("%s exists and is not a symlink: %w", path, fs.ErrExist)
		}
		if err := os.Remove(path); err != nil {
			return err
		}
	}
	if err := os.Symlink(p.path, path); err != nil {
		return err
	}
	p.mu.Lock()
	p.link = path
	p.mu.Unlock()
	return nil
}

// removeLink removes the symlink Link made, if it still points here.
func (p *PTY) removeLink() {
	p.mu.Lock()
	path := p.link
	p.link = ""
	p.mu.Unlock()
	if path == "" {
		return
	}
	if dst, err := os.Readlink(path); err == nil && dst == p.path {
		os.Remove(path)
	}
}

// Unplug makes the pty fail like a USB adapter pulled out: the master is
// closed, so the tool's reads on the slave report a hang-up and its writes
// fail with EIO, and the Link symlink disappears. The device side's reads
// and writes fail with ErrClosed from then on.
func (p *PTY) Unplug() {
	p.mu.Lock()
	if p.closed || p.unplugged {
		p.mu.Unlock()
		return
	}
	p.unplugged = true
	p.mu.Unlock()
	p.removeLink()
	p.bridge.Unplug()
	p.master.Close()
	p.slave.Close()
}

// Read reads what the tool sent, garbled if it was sent at another rate.
func (p *PTY) Read(b []byte) (int, error) {
	n, err := p.dev.Read(b)
	if err != nil {
		return n, fmt.Errorf("pty: %w", err)
	}
	return n, nil
}

// Write sends b to the tool, garbled if the tool listens at another rate.
func (p *PTY) Write(b []byte) (int, error) {
	n, err := p.dev.Write(b)
	if err != nil {
		return n, fmt.Errorf("pty: %w", err)
	}
	return n, nil
}

// Close closes both sides; the tool's reads then fail, and a Read blocked
// on the device side returns ErrClosed at once.
func (p *PTY) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	unplugged := p.unplugged
	p.mu.Unlock()
	p.removeLink()
	p.dev.Close()
	p.bridge.Close()
	var err error
	if !unplugged {
		err = errors.Join(p.master.Close(), p.slave.Close())
	}
	p.wg.Wait()
	return err
}

// SetReadTimeout bounds each Read.
func (p *PTY) SetReadTimeout(d time.Duration) error { return p.dev.SetReadTimeout(d) }

// SetBaudRate sets the device side's rate.
func (p *PTY) SetBaudRate(baud int) error { return p.dev.SetBaudRate(baud) }

// BaudRate reports the device side's rate.
func (p *PTY) BaudRate() int { return p.dev.BaudRate() }

// SetDTR reports ErrNoModemControl.
func (p *PTY) SetDTR(bool) error { return ErrNoModemControl }

// SetRTS reports ErrNoModemControl.
func (p *PTY) SetRTS(bool) error { return ErrNoModemControl }

// ResetInputBuffer discards unread input until the line has been quiet for
// a millisecond (at most 100 ms).
func (p *PTY) ResetInputBuffer() error {
	_, err := Discard(p, time.Millisecond, 100*time.Millisecond)
	return err
}

// Drain waits until the device side's bytes have crossed the modelled wire.
func (p *PTY) Drain() error { return p.dev.Drain() }
