//go:build linux

package transport

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.bug.st/serial"
	"golang.org/x/sys/unix"
)

// testLockDir points the UUCP lock files at a fresh directory for one test.
func testLockDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	old := lockDirs
	lockDirs = []string{dir}
	t.Cleanup(func() { lockDirs = old })
	return dir
}

func newPTY(t *testing.T) *PTY {
	t.Helper()
	p, err := OpenPTY(115200)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func wantBusy(t *testing.T, err error, hintParts ...string) {
	t.Helper()
	var oe *OpenError
	if !errors.Is(err, ErrBusy) || !errors.As(err, &oe) {
		t.Fatalf("second open: %v, want an *OpenError wrapping ErrBusy", err)
	}
	for _, h := range hintParts {
		if !strings.Contains(oe.Hint, h) {
			t.Errorf("hint %q lacks %q", oe.Hint, h)
		}
	}
}

// TestOpenLockBindsRoot: a second Open of a port in use fails, as root too
// (where TIOCEXCL, go.bug.st/serial's only guard, lets everyone in), and the
// locks go with Close.
func TestOpenLockBindsRoot(t *testing.T) {
	dir := testLockDir(t)
	dev := newPTY(t)
	first, err := Open(dev.SlavePath(), 115200)
	if err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(dir, lockName(dev.SlavePath()))
	if b, err := os.ReadFile(lock); err != nil || string(b) != fmt.Sprintf("%10d\n", os.Getpid()) {
		t.Errorf("lock file %s holds %q, %v; want the PID in ten ASCII digits and a newline", lock, b, err)
	}
	_, err = Open(dev.SlavePath(), 115200)
	wantBusy(t, err, fmt.Sprintf("PID %d", os.Getpid()), "this process")

	if os.Geteuid() == 0 {
		// The bug being fixed: without the lock, root opens a port in use.
		raw, err := serial.Open(dev.SlavePath(), &serial.Mode{BaudRate: 115200})
		if err != nil {
			t.Logf("root could not bypass TIOCEXCL here: %v", err)
		} else {
			raw.Close()
		}
		_, err = Open(dev.SlavePath(), 115200)
		wantBusy(t, err)
	}

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(lock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file left after Close: %v", err)
	}
	again, err := Open(dev.SlavePath(), 115200)
	if err != nil {
		t.Fatalf("open after Close: %v", err)
	}
	again.Close()
}

// TestStaleLock: a lock file whose process is gone, or that holds garbage,
// is taken over; one held by a live process is respected.
func TestStaleLock(t *testing.T) {
	tests := []struct {
		name     string
		content  string
		wantBusy bool
	}{
		{"dead process", fmt.Sprintf("%10d\n", 99999999), false},
		{"garbage", "not a pid\n", false},
		// A tuyaflash that lost its device (unplugged, or its pty's other
		// side closed) still running with its lock file, the name given
		// to a new device.
		{"live process without the device open", fmt.Sprintf("%10d\n", 1), false},
		// minicom and other UUCP-lock users that do not flock.
		{"live process with the device open, no flock", "HOLDER", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := testLockDir(t)
			dev := newPTY(t)
			lock := filepath.Join(dir, lockName(dev.SlavePath()))
			want := "PID 1"
			if tc.content == "HOLDER" {
				f, err := os.OpenFile(dev.SlavePath(), os.O_RDWR|syscall.O_NOCTTY, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				holder := exec.Command("sleep", "60")
				holder.Stdin = f
				if err := holder.Start(); err != nil {
					t.Skipf("no sleep command to hold the device: %v", err)
				}
				t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
				tc.content = fmt.Sprintf("%10d\n", holder.Process.Pid)
				want = fmt.Sprintf("PID %d", holder.Process.Pid)
			}
			if err := os.WriteFile(lock, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			p, err := Open(dev.SlavePath(), 115200)
			if tc.wantBusy {
				wantBusy(t, err, want)
				if b, _ := os.ReadFile(lock); string(b) != tc.content {
					t.Errorf("someone else's lock file changed to %q", b)
				}
				return
			}
			if err != nil {
				t.Fatalf("stale lock not taken over: %v", err)
			}
			if b, _ := os.ReadFile(lock); string(b) != fmt.Sprintf("%10d\n", os.Getpid()) {
				t.Errorf("lock file holds %q after the takeover", b)
			}
			p.Close()
		})
	}
}

// TestBusyNamesTheHolder: the process named for a busy port is the one
// that holds it — the kernel's flock table says who — even when the lock
// file names a live process that has nothing to do with the port (a lock
// left by a killed tuyaflash whose PID the system gave to another program:
// the name was wrong in CI).
func TestBusyNamesTheHolder(t *testing.T) {
	dir := testLockDir(t)
	dev := newPTY(t)
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	h := startHelper(t, bin, dev.SlavePath(), dir, "hold", -1)
	if got := h.line(t); got != "held" {
		t.Fatalf("holder: %s", got)
	}
	defer func() { h.stdin.Close(); h.cmd.Wait() }()
	lock := filepath.Join(dir, lockName(dev.SlavePath()))
	if err := os.WriteFile(lock, []byte(fmt.Sprintf("%10d\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(dev.SlavePath(), 115200)
	wantBusy(t, err, fmt.Sprintf("in use by PID %d (", h.cmd.Process.Pid))
}

// TestPortNotInherited: no descriptor of an open port passes to a program
// this process starts (go.bug.st/serial opens without O_CLOEXEC; a browser
// started by tuyaflash serve kept the adapter open for good).
func TestPortNotInherited(t *testing.T) {
	testLockDir(t)
	dev := newPTY(t)
	p, err := Open(dev.SlavePath(), 115200)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var want unix.Stat_t
	if err := unix.Stat(dev.SlavePath(), &want); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip(err)
	}
	n := 0
	for _, e := range ents {
		fd, _ := strconv.Atoi(e.Name())
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil || st.Dev != want.Dev || st.Ino != want.Ino {
			continue
		}
		n++
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC == 0 {
			t.Errorf("descriptor %d of the port is passed on to programs this process starts (flags %#x, %v)", fd, flags, err)
		}
	}
	// The test's pty keeps one descriptor of the device; Open adds its
	// lock's and go.bug.st/serial's.
	if n < 3 {
		t.Errorf("%d descriptors of the device, want the port's two and the test's", n)
	}
}

// TestLockDirUnusable: without a usable lock directory the flock alone
// still keeps a second Open out.
func TestLockDirUnusable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	os.WriteFile(file, nil, 0o644)
	old := lockDirs
	lockDirs = []string{"/nonexistent/lock", file}
	defer func() { lockDirs = old }()
	dev := newPTY(t)
	p, err := Open(dev.SlavePath(), 115200)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = Open(dev.SlavePath(), 115200)
	wantBusy(t, err)
}

// TestHelperProcess is not a test: TestOpenBusyAcrossProcesses runs the test
// binary again as a second tuyaflash that holds or tries a port.
func TestHelperProcess(t *testing.T) {
	port := os.Getenv("TUYAFLASH_TEST_PORT")
	if port == "" {
		t.Skip("helper process only")
	}
	lockDirs = []string{os.Getenv("TUYAFLASH_TEST_LOCKDIR")}
	p, err := Open(port, 115200)
	switch {
	case err != nil:
		var oe *OpenError
		errors.As(err, &oe)
		fmt.Printf("busy=%v hint=%s\n", errors.Is(err, ErrBusy), oe.Hint)
	case os.Getenv("TUYAFLASH_TEST_MODE") == "hold":
		fmt.Println("held")
		io.Copy(io.Discard, os.Stdin) // until the parent lets go
		p.Close()
	default:
		fmt.Println("opened")
		p.Close()
	}
	os.Exit(0)
}

// helper starts the test binary as a helper process on port.
type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

func startHelper(t *testing.T, bin, port, lockDir, mode string, uid int) *helper {
	t.Helper()
	cmd := exec.Command(bin, "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "TUYAFLASH_TEST_PORT="+port, "TUYAFLASH_TEST_LOCKDIR="+lockDir, "TUYAFLASH_TEST_MODE="+mode)
	if uid >= 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	}
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	t.Cleanup(func() { h.stdin.Close(); h.cmd.Wait() })
	return h
}

func (h *helper) line(t *testing.T) string {
	t.Helper()
	s, err := h.out.ReadString('\n')
	if err != nil {
		t.Fatalf("helper said %q: %v", s, err)
	}
	return strings.TrimSpace(s)
}

// TestOpenBusyAcrossProcesses: another process (another tuyaflash) holding
// the port is named in the error, whoever the two users are, and the port
// is free again once it exits.
func TestOpenBusyAcrossProcesses(t *testing.T) {
	const nobody = 65534
	tests := []struct {
		name       string
		holderUID  int // -1: the test's own user
		tryUID     int
		needsRoot  bool
		holderIsUs bool
	}{
		{"same user", -1, -1, false, false},
		{"root tries a port a normal user holds", nobody, -1, true, false},
		{"normal user tries a port root holds", -1, nobody, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.needsRoot && os.Geteuid() != 0 {
				t.Skip("needs root to run a process as another user")
			}
			dir := testLockDir(t)
			dev := newPTY(t)
			bin, err := os.Executable()
			if err != nil {
				t.Fatal(err)
			}
			if tc.needsRoot {
				bin = shareForNobody(t, bin, dir, dev.SlavePath())
			}
			var holderPID int
			if tc.holderIsUs {
				p, err := Open(dev.SlavePath(), 115200)
				if err != nil {
					t.Fatal(err)
				}
				defer p.Close()
				holderPID = os.Getpid()
			} else {
				h := startHelper(t, bin, dev.SlavePath(), dir, "hold", tc.holderUID)
				if got := h.line(t); got != "held" {
					t.Fatalf("holder: %s", got)
				}
				holderPID = h.cmd.Process.Pid
				defer func() {
					h.stdin.Close()
					h.cmd.Wait()
					p, err := Open(dev.SlavePath(), 115200)
					if err != nil {
						t.Errorf("port still busy after the holder exited: %v", err)
						return
					}
					p.Close()
				}()
			}
			wantPID := fmt.Sprintf("in use by PID %d (", holderPID)
			if tc.tryUID < 0 {
				_, err := Open(dev.SlavePath(), 115200)
				wantBusy(t, err, wantPID, filepath.Base(bin))
				return
			}
			got := startHelper(t, bin, dev.SlavePath(), dir, "try", tc.tryUID).line(t)
			if !strings.HasPrefix(got, "busy=true ") || !strings.Contains(got, wantPID) {
				t.Errorf("helper as uid %d: %q, want busy naming %q", tc.tryUID, got, wantPID)
			}
		})
	}
}

// shareForNobody makes the test binary, the lock directory and the pty
// usable by another user and returns the binary's new path.
func shareForNobody(t *testing.T, bin, lockDir, tty string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tuyaflash-helper-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, filepath.Base(bin))
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	// t.TempDir's parents are private to the test's user.
	for d := lockDir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	os.Chmod(lockDir, 0o1777)
	os.Chmod(tty, 0o666)
	return dst
}

// TestCloseOnDoneEndsBlockedRead: a Read blocked on a real pty opened
// through go.bug.st/serial returns at once when the context ends.
func TestCloseOnDoneEndsBlockedRead(t *testing.T) {
	dev, p := ptyPair(t, LinkOptions{}, 115200)
	dir := lockDirs[0]
	ctx, cancel := context.WithCancel(context.Background())
	defer CloseOnDone(ctx, p)()
	type result struct {
		err error
		at  time.Time
	}
	res := make(chan result, 1)
	go func() {
		_, err := p.Read(make([]byte, 16)) // no timeout: would block for ever
		res <- result{err, time.Now()}
	}()
	time.Sleep(50 * time.Millisecond)
	cancelled := time.Now()
	cancel()
	var r result
	select {
	case r = <-res:
	case <-time.After(5 * time.Second):
		t.Fatal("Read still blocked 5 s after the cancel")
	}
	el := r.at.Sub(cancelled)
	t.Logf("blocked Read returned %v after the cancel", el)
	if el > 500*time.Millisecond {
		t.Errorf("Read returned %v after the cancel, want well under 100 ms (500 ms allowed on a loaded machine)", el)
	}
	if !errors.Is(r.err, ErrClosed) {
		t.Errorf("Read returned %v, want ErrClosed", r.err)
	}
	// Once the Read has returned, the port is free again.
	if _, err := os.Stat(filepath.Join(dir, lockName(dev.SlavePath()))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file left after the cancel: %v", err)
	}
	again, err := Open(dev.SlavePath(), 115200)
	if err != nil {
		t.Fatalf("reopen right after the cancelled Read: %v", err)
	}
	again.Close()
}

// TestBaudReadBack: BaudRate is what termios says, not what was asked: a
// pty keeps what was set, and a driver's rewrite would show.
func TestBaudReadBack(t *testing.T) {
	dev, p := ptyPair(t, LinkOptions{}, 921600)
	for _, baud := range []int{921600, 74880, 1500000, 115200} {
		if baud != 921600 {
			if err := p.SetBaudRate(baud); err != nil {
				t.Fatal(err)
			}
		}
		if got, peer := p.BaudRate(), dev.PeerBaud(); got != baud || peer != baud {
			t.Errorf("after setting %d: BaudRate %d, termios %d", baud, got, peer)
		}
	}
	// A driver that rounds (cp210x) rewrites termios; simulate it from the
	// master side and read back.
	setSlaveSpeed(t, dev, 117028)
	if got, ok := p.(*serialPort).hold.rate(); !ok || got != 117028 {
		t.Errorf("read-back after the driver changed termios: %d, %v; want 117028", got, ok)
	}
}

func setSlaveSpeed(t *testing.T, dev *PTY, baud int) {
	t.Helper()
	rc, _ := dev.slave.SyscallConn()
	var ierr error
	rc.Control(func(fd uintptr) {
		tio, err := unix.IoctlGetTermios(int(fd), tcgets2)
		if err != nil {
			ierr = err
			return
		}
		tio.Cflag = tio.Cflag&^unix.CBAUD | unix.BOTHER
		tio.Ispeed, tio.Ospeed = uint32(baud), uint32(baud)
		ierr = unix.IoctlSetTermios(int(fd), tcsets2, tio)
	})
	if ierr != nil {
		t.Fatal(ierr)
	}
}

// TestLowLatencyLever: the lever is pulled only on ftdi_sio ports; a pty
// answers ENOTTY and the port opens all the same.
func TestLowLatencyLever(t *testing.T) {
	tests := []struct {
		name       string
		fakeDriver string // what sysfs claims drives the pty
		want       LatencyInfo
		reasonHas  string
	}{
		{"pty", "", LatencyInfo{}, "not a USB serial adapter"},
		{"cp210x", "cp210x", LatencyInfo{Driver: "cp210x"}, "only FTDI"},
		{"pty claiming ftdi_sio", "ftdi_sio", LatencyInfo{Driver: "ftdi_sio", Timer: 16 * time.Millisecond, Known: true}, "cannot read the serial flags"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			testLockDir(t)
			dev := newPTY(t)
			if tc.fakeDriver != "" {
				sys := t.TempDir()
				d := filepath.Join(sys, filepath.Base(dev.SlavePath()), "device")
				os.MkdirAll(d, 0o755)
				os.Symlink("../../bus/usb-serial/drivers/"+tc.fakeDriver, filepath.Join(d, "driver"))
				os.WriteFile(filepath.Join(d, "latency_timer"), []byte("16\n"), 0o644)
				old := sysfsTTY
				sysfsTTY = sys
				defer func() { sysfsTTY = old }()
			}
			p, err := Open(dev.SlavePath(), 115200)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			got := Latency(Trace(p, io.Discard))
			reason := got.Reason
			got.Reason = ""
			if got != tc.want || !strings.Contains(reason, tc.reasonHas) {
				t.Errorf("LatencyInfo %+v reason %q; want %+v and a reason with %q", got, reason, tc.want, tc.reasonHas)
			}
		})
	}
	dev := newPTY(t)
	f, err := os.OpenFile(dev.SlavePath(), os.O_RDONLY|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := getSerial(int(f.Fd())); !errors.Is(err, unix.ENOTTY) {
		t.Errorf("TIOCGSERIAL on a pty: %v, want ENOTTY", err)
	}
}

// TestSerialStructLayout reads TIOCGSERIAL from a real UART, where the
// kernel has one: type and baud_base land where serialStruct expects them.
func TestSerialStructLayout(t *testing.T) {
	fd, err := unix.Open("/dev/ttyS0", unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Skipf("no /dev/ttyS0 to read: %v", err)
	}
	defer unix.Close(fd)
	ss, err := getSerial(fd)
	if err != nil {
		t.Skipf("TIOCGSERIAL on ttyS0: %v", err)
	}
	baudBase := int32(binary.NativeEndian.Uint32(ss.rest[8:12]))
	t.Logf("ttyS0: type %d line %d flags %#x baud_base %d", ss.typ, ss.line, ss.flags, baudBase)
	if ss.line != 0 || baudBase <= 0 || baudBase%100 != 0 {
		t.Errorf("ttyS0 reads as line %d baud_base %d: struct serial_struct layout is off", ss.line, baudBase)
	}
}

// TestLockTempsSwept: a temporary lock file left by a killed tuyaflash (its
// PID in the name, the process gone) is removed by the next Open; one of a
// live process, and names tuyaflash did not make, stay.
func TestLockTempsSwept(t *testing.T) {
	dir := testLockDir(t)
	dev := newPTY(t)
	files := map[string]bool{ // name: wanted after Open
		lockTempPrefix + "99999999-123": false,
		lockTempPrefix + "1-456":        true,
		lockTempPrefix + "789":          true, // an old-style name: no PID
		"LCK..ttyS0":                    true,
	}
	for name := range files {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p, err := Open(dev.SlavePath(), 115200)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	for name, want := range files {
		_, err := os.Stat(filepath.Join(dir, name))
		if got := err == nil; got != want {
			t.Errorf("%s: there %v after Open, want %v", name, got, want)
		}
	}
	left, _ := filepath.Glob(filepath.Join(dir, lockTempPrefix+"*"))
	if len(left) != 2 {
		t.Errorf("temporary lock files after Open: %v", left)
	}
}

// TestLockHolderSeenByIdentity: a lock file's live process that has the
// device open under another name — its own view of it: the node
// bind-mounted into a container as /dev/ttyUSB0 — keeps the port (the name
// /proc showed was compared before: the port was taken over); one that has
// another file open below /dev does not. Here a fake /proc whose PID 1
// holds one descriptor.
func TestLockHolderSeenByIdentity(t *testing.T) {
	tests := []struct {
		name     string
		fd       func(dev string) string // what PID 1's descriptor 3 leads to
		wantBusy bool
	}{
		{"the device under another name", func(dev string) string {
			alias := filepath.Join(t.TempDir(), "ttyUSB0")
			if err := os.Symlink(dev, alias); err != nil {
				t.Fatal(err)
			}
			return alias
		}, true},
		{"another file of the same base name", func(dev string) string {
			other := filepath.Join(t.TempDir(), "dev", "pts", filepath.Base(dev))
			os.MkdirAll(filepath.Dir(other), 0o755)
			if err := os.WriteFile(other, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return other
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := testLockDir(t)
			dev := newPTY(t)
			proc := t.TempDir()
			fdDir := filepath.Join(proc, "1", "fd")
			if err := os.MkdirAll(fdDir, 0o755); err != nil {
				t.Fatal(err)
			}
			// /proc shows names below /dev for devices; "/dev/.." leads
			// from there to the test's file.
			if err := os.Symlink("/dev/.."+tc.fd(dev.SlavePath()), filepath.Join(fdDir, "3")); err != nil {
				t.Fatal(err)
			}
			old := procRoot
			procRoot = proc
			defer func() { procRoot = old }()
			lock := filepath.Join(dir, lockName(dev.SlavePath()))
			if err := os.WriteFile(lock, []byte(fmt.Sprintf("%10d\n", 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			p, err := Open(dev.SlavePath(), 115200)
			if tc.wantBusy {
				wantBusy(t, err, "PID 1")
				return
			}
			if err != nil {
				t.Fatalf("a lock file whose process has another file open kept the port: %v", err)
			}
			p.Close()
		})
	}
}

// fakeInfo is a file's stat for sameDevice.
type fakeInfo struct {
	fs.FileInfo
	mode fs.FileMode
	st   syscall.Stat_t
}

func (f fakeInfo) Mode() fs.FileMode { return f.mode }
func (f fakeInfo) Sys() any          { return &f.st }

// TestSameDevice: two nodes of one terminal device are one device (a
// container's own /dev/ttyUSB0 made for the host's ttyUSB3); two
// pseudo-terminals of one number in two devpts instances are not.
func TestSameDevice(t *testing.T) {
	node := func(dev, ino uint64, major, minor uint32, mode fs.FileMode) fakeInfo {
		f := fakeInfo{mode: mode}
		// The fields' types differ between architectures.
		st := reflect.ValueOf(&f.st).Elem()
		st.FieldByName("Dev").SetUint(dev)
		st.FieldByName("Ino").SetUint(ino)
		st.FieldByName("Rdev").SetUint(unix.Mkdev(major, minor))
		return f
	}
	chr := fs.ModeDevice | fs.ModeCharDevice
	tests := []struct {
		name string
		a, b fakeInfo
		want bool
	}{
		{"the same node", node(6, 100, 188, 3, chr), node(6, 100, 188, 3, chr), true},
		{"another node of the adapter", node(6, 100, 188, 3, chr), node(99, 7, 188, 3, chr), true},
		{"another adapter", node(6, 100, 188, 3, chr), node(6, 101, 188, 4, chr), false},
		{"pts/0 of another devpts instance", node(0x1a, 3, 136, 0, chr), node(0x18, 3, 136, 0, chr), false},
		{"pts/0 of the same instance", node(0x1a, 3, 136, 0, chr), node(0x1a, 3, 136, 0, chr), true},
		{"regular files", node(1, 5, 0, 0, 0), node(2, 5, 0, 0, 0), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := sameDevice(tc.a, tc.b); got != tc.want {
				t.Errorf("sameDevice = %v, want %v", got, tc.want)
			}
		})
	}
}
