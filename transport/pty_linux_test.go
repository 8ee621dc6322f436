//go:build linux

package transport

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestPTYWithSerialLibrary opens the slave through go.bug.st/serial, as a
// user opens /dev/ttyUSB0, and checks bytes, baud tracking and garbling.
func TestPTYWithSerialLibrary(t *testing.T) {
	dev, host := ptyPair(t, LinkOptions{Baud: 115200}, 115200)

	if err := host.SetDTR(true); err == nil {
		t.Error("SetDTR on a pty succeeded; want ErrNoModemControl")
	}
	if err := WriteAll(host, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := ReadFull(dev, buf, time.Now().Add(2*time.Second)); err != nil || string(buf) != "ping" {
		t.Fatalf("device read %q, %v", buf, err)
	}
	if err := host.SetBaudRate(921600); err != nil {
		t.Fatal(err)
	}
	if got := dev.PeerBaud(); got != 921600 {
		t.Fatalf("PeerBaud = %d, want 921600", got)
	}
	// Device still at 115200: what it sends arrives garbled.
	WriteAll(dev, []byte("pong"))
	if _, err := ReadFull(host, buf, time.Now().Add(2*time.Second)); err != nil || bytes.Equal(buf, []byte("pong")) {
		t.Fatalf("host read %q, %v; want garbled bytes", buf, err)
	}
	dev.SetBaudRate(921600)
	WriteAll(dev, []byte("pong"))
	if _, err := ReadFull(host, buf, time.Now().Add(2*time.Second)); err != nil || string(buf) != "pong" {
		t.Fatalf("host read %q, %v after both switched", buf, err)
	}
	// Read timeout on the device side returns (0, nil).
	dev.SetReadTimeout(50 * time.Millisecond)
	start := time.Now()
	if n, err := dev.Read(buf); n != 0 || err != nil || time.Since(start) < 40*time.Millisecond {
		t.Fatalf("idle read = %d, %v after %v", n, err, time.Since(start))
	}
}

// ptyPair opens a pty with opts and, as a tool would, its slave through
// Open at baud; both close with the test.
func ptyPair(t *testing.T, opts LinkOptions, baud int) (*PTY, Port) {
	t.Helper()
	testLockDir(t)
	dev, err := OpenPTYLink(opts)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { dev.Close() })
	host, err := Open(dev.SlavePath(), baud)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close() })
	return dev, host
}

// TestPTYPaced: through OpenPTYLink the tool sees the wire and the adapter,
// in both directions, at the rate each side set; unpaced stays fast.
// Real time, so only lower bounds are tight.
func TestPTYPaced(t *testing.T) {
	ftdi, _ := ParseAdapter("ftdi")
	tests := []struct {
		name     string
		opts     LinkOptions
		n        int
		toTool   time.Duration // at least
		fromTool time.Duration
	}{
		// 1000 bytes at 115200: 16 full FTDI packets, the last 8 bytes
		// wait for the 16 ms timer.
		{"ftdi paced", LinkOptions{Baud: 115200, Adapter: ftdi, Paced: true}, 1000, WireTime(992, 115200) + 16*time.Millisecond, WireTime(1000, 115200)},
		{"plain paced", LinkOptions{Baud: 115200, Paced: true}, 1000, WireTime(1000, 115200), WireTime(1000, 115200)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dev, host := ptyPair(t, tc.opts, 115200)
			msg := bytes.Repeat([]byte{0x5A}, tc.n)
			buf := make([]byte, tc.n)

			start := time.Now()
			dev.Write(msg)
			if _, err := ReadFull(host, buf, time.Now().Add(5*time.Second)); err != nil || !bytes.Equal(buf, msg) {
				t.Fatalf("tool read: %v", err)
			}
			el := time.Since(start)
			t.Logf("%d bytes to the tool in %v (model: %v)", tc.n, el, tc.toTool)
			if el < tc.toTool {
				t.Errorf("%d bytes reached the tool in %v, faster than the model's %v", tc.n, el, tc.toTool)
			}

			start = time.Now()
			WriteAll(host, msg)
			if _, err := ReadFull(dev, buf, time.Now().Add(5*time.Second)); err != nil || !bytes.Equal(buf, msg) {
				t.Fatalf("device read: %v", err)
			}
			if el := time.Since(start); el < tc.fromTool {
				t.Errorf("%d bytes reached the device in %v, faster than the wire's %v", tc.n, el, tc.fromTool)
			}

			// The tool switches to 921600: the device follows, and the
			// wire is eight times faster.
			host.SetBaudRate(921600)
			dev.SetBaudRate(921600)
			start = time.Now()
			dev.Write(msg)
			if _, err := ReadFull(host, buf, time.Now().Add(5*time.Second)); err != nil || !bytes.Equal(buf, msg) {
				t.Fatalf("tool read at 921600: %v", err)
			}
			if el := time.Since(start); el < WireTime(int64(tc.n), 921600) {
				t.Errorf("at 921600 the bytes took %v, less than the wire time", el)
			}
		})
	}
	t.Run("unpaced", func(t *testing.T) {
		dev, host := ptyPair(t, LinkOptions{Baud: 115200}, 115200)
		msg := bytes.Repeat([]byte{0x5A}, 20000) // 1.7 s on a paced wire
		start := time.Now()
		dev.Write(msg)
		buf := make([]byte, len(msg))
		if _, err := ReadFull(host, buf, time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
		if el, paced := time.Since(start), WireTime(int64(len(msg)), 115200); el > paced {
			t.Errorf("unpaced pty took %v for %d bytes, more than the %v a paced wire takes", el, len(msg), paced)
		}
	})
}

// TestPTYUnplug: the tool's port fails like an unplugged adapter, the
// --link path disappears, and the device side sees the link gone.
func TestPTYUnplug(t *testing.T) {
	testLockDir(t)
	dev := newPTY(t)
	link := filepath.Join(t.TempDir(), "tty")
	if err := dev.Link(link); err != nil {
		t.Fatal(err)
	}
	host, err := Open(link, 115200)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	readErr := make(chan error, 1)
	go func() {
		_, err := host.Read(make([]byte, 8))
		readErr <- err
	}()
	time.Sleep(20 * time.Millisecond)
	dev.Unplug()
	select {
	case err := <-readErr:
		if !errors.Is(err, ErrUnplugged) || !errors.Is(err, ErrClosed) {
			t.Errorf("tool read after unplug: %v, want ErrUnplugged", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("tool read still blocked after unplug")
	}
	if _, err := host.Write([]byte{1}); !errors.Is(err, syscall.EIO) || !errors.Is(err, ErrUnplugged) {
		t.Errorf("tool write after unplug: %v, want EIO", err)
	}
	if _, err := os.Lstat(link); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("link still there after unplug: %v", err)
	}
	if _, err := dev.Read(make([]byte, 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("device read after unplug: %v, want ErrClosed", err)
	}
	if err := dev.Close(); err != nil {
		t.Errorf("Close after Unplug: %v", err)
	}
}

func TestPTYLinkRefusesFiles(t *testing.T) {
	dev := newPTY(t)
	file := filepath.Join(t.TempDir(), "precious")
	os.WriteFile(file, []byte("keep"), 0o644)
	if err := dev.Link(file); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Link over a file: %v, want fs.ErrExist", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep" {
		t.Error("Link clobbered a file")
	}
	old := filepath.Join(t.TempDir(), "tty")
	os.Symlink("/dev/null", old)
	if err := dev.Link(old); err != nil {
		t.Fatalf("Link over a stale symlink: %v", err)
	}
	if dst, _ := os.Readlink(old); dst != dev.SlavePath() {
		t.Errorf("link points to %q", dst)
	}
	dev.Close()
	if _, err := os.Lstat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Close left the link: %v", err)
	}
}

// TestPTYCloseWakesDeviceRead: the simulator's blocked Read ends on Close.
func TestPTYCloseWakesDeviceRead(t *testing.T) {
	dev := newPTY(t)
	errc := make(chan error, 1)
	go func() {
		_, err := dev.Read(make([]byte, 1))
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	dev.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Read returned %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("device Read still blocked after Close")
	}
}

// TestIsPeer: a slave opened by name is told apart from the master's own
// peer (a master from one devpts instance and the name /dev/pts/N of
// another gave two simulators one terminal in CI); OpenPTY's pairs pass.
func TestIsPeer(t *testing.T) {
	m1, s1, err := openPair()
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	defer m1.Close()
	defer s1.Close()
	m2, s2, err := openPair()
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	defer s2.Close()
	for _, tc := range []struct {
		name          string
		master, slave *os.File
		want          bool
	}{
		{"its own slave", m1, s1, true},
		{"another terminal's slave", m1, s2, false},
		{"the other pair", m2, s2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := isPeer(tc.master, tc.slave)
			if err != nil || got != tc.want {
				t.Errorf("isPeer = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}
