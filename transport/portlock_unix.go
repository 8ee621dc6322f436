//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package transport

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"go.bug.st/serial"
	"golang.org/x/sys/unix"
)

// lockDirs are where UUCP lock files live (FHS 3.0 §5.9 names /var/lock;
// /run/lock is where current distributions keep it). Tests point it
// elsewhere.
var lockDirs = []string{"/run/lock", "/var/lock"}

// osHold is what Open keeps besides the go.bug.st/serial port: a second,
// read-only descriptor of the same device — go.bug.st/serial does not expose
// its own — which carries the flock and serves the ioctls (termios read-back,
// the FTDI latency flag), and the UUCP lock file.
type osHold struct {
	fd       int    // -1 when none
	dev      string // the device, symlinks resolved
	lockPath string // our lock file, "" when none
	restore  func() // undoes the latency change, nil when none
}

// acquire locks the device behind name for this process, or fails with an
// *OpenError wrapping ErrBusy that names the holder. It locks before
// go.bug.st/serial opens the port, so that a second tuyaflash never touches
// the settings of a port in use.
func acquire(name string) (*osHold, error) {
	dev := name
	if r, err := filepath.EvalSymlinks(name); err == nil {
		dev = r
	}
	// O_NONBLOCK: do not wait for carrier; O_NOCTTY: never become our
	// controlling terminal.
	fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EBUSY) {
			// The holder set TIOCEXCL, which binds everyone but root.
			return nil, busy(name, dev)
		}
		return nil, err
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			unix.Close(fd)
			return nil, busy(name, dev)
		}
		// A device that cannot be flocked: go on with the lock file alone.
	}
	h := &osHold{fd: fd, dev: dev}
	if pid := h.lockFile(); pid != 0 {
		unix.Close(fd)
		return nil, busyBy(name, dev, pid)
	}
	return h, nil
}

// lockName is the UUCP lock file name of a device: LCK.. and the path below
// /dev, slashes turned into underscores (LCK..ttyUSB0, LCK..pts_3).
func lockName(dev string) string {
	rel := strings.TrimPrefix(dev, "/dev/")
	return "LCK.." + strings.ReplaceAll(rel, "/", "_")
}

// lockFile creates the UUCP lock file in the first usable lock directory.
// It returns the PID of a live process that holds it already, else 0 (also
// when no directory is usable: the flock still holds).
func (h *osHold) lockFile() int {
	name := lockName(h.dev)
	for _, dir := range lockDirs {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			continue
		}
		path := filepath.Join(dir, name)
		pid, err := takeLock(path, h.dev)
		if err != nil {
			continue // not writable here: skip silently
		}
		if pid != 0 {
			return pid
		}
		h.lockPath = path
		return 0
	}
	return 0
}

// takeLock creates path holding our PID, taking over a lock whose process is
// gone. It returns the PID of a live holder, or an error when path cannot be
// created.
func takeLock(path, dev string) (int, error) {
	me := os.Getpid()
	sweepLockTemps(filepath.Dir(path))
	// The temporary file's name carries our PID, so that one left by a
	// killed tuyaflash (kill -9 between here and the removal below) is
	// swept by the next.
	tmp, err := os.CreateTemp(filepath.Dir(path), fmt.Sprintf("%s%d-", lockTempPrefix, me))
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	_, werr := fmt.Fprintf(tmp, "%10d\n", me)
	if err := errors.Join(werr, tmp.Chmod(0o644), tmp.Close()); err != nil {
		return 0, err
	}
	for attempt := 0; attempt < 2; attempt++ {
		// link is atomic and fails on an existing name: the lock file
		// never exists half-written.
		err := os.Link(tmp.Name(), path)
		if err == nil {
			return 0, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return 0, err
		}
		if pid := lockHolder(path); pid != 0 && pid != me && !lacksDevice(pid, dev) {
			return pid, nil
		}
		// Stale (its process is gone, or has no such device open: it
		// held an earlier device of this name), unreadable, or a leftover
		// of ours (the flock says nobody else here holds the port): take
		// it over.
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, err
		}
	}
	return 0, fmt.Errorf("lock file %s keeps reappearing", path)
}

// lockTempPrefix starts the name of the temporary file a lock file is made
// from: .tuyaflash-lock-PID-RANDOM.
const lockTempPrefix = ".tuyaflash-lock-"

// sweepLockTemps removes the temporary lock files in dir whose process is
// gone. Files of live processes, and names it did not make, stay.
func sweepLockTemps(dir string) {
	names, err := filepath.Glob(filepath.Join(dir, lockTempPrefix+"*"))
	if err != nil {
		return
	}
	for _, name := range names {
		rest := strings.TrimPrefix(filepath.Base(name), lockTempPrefix)
		pidText, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 {
			continue
		}
		if errors.Is(unix.Kill(pid, 0), unix.ESRCH) {
			os.Remove(name)
		}
	}
}

// lockHolder returns the PID in a lock file if that process is alive, else 0.
func lockHolder(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	if err := unix.Kill(pid, 0); err == nil || errors.Is(err, unix.EPERM) {
		return pid
	}
	return 0
}

// release removes the lock file (if it is still ours) and closes the
// descriptor, which drops the flock.
func (h *osHold) release() {
	if h == nil {
		return
	}
	if h.lockPath != "" {
		if b, err := os.ReadFile(h.lockPath); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(os.Getpid()) {
			os.Remove(h.lockPath)
		}
		h.lockPath = ""
	}
	if h.fd >= 0 {
		unix.Close(h.fd)
		h.fd = -1
	}
}

// busy is the error for a port held by someone: the flock's holder (the
// kernel's lock table: another tuyaflash), else the lock file's process if
// it has the device open, else a process with the device open (Linux
// /proc), else unknown.
func busy(name, dev string) error {
	pid := flockHolder(dev)
	for _, dir := range lockDirs {
		if pid != 0 {
			break
		}
		// A lock left by a killed process may carry a PID the system
		// has given to another program since.
		if p := lockHolder(filepath.Join(dir, lockName(dev))); p != 0 && !lacksDevice(p, dev) {
			pid = p
		}
	}
	if pid == 0 {
		pid = procHolder(dev)
	}
	return busyBy(name, dev, pid)
}

// busyBy is the error for a port held by pid (0: unknown); dev is the
// device behind name ("" when not known).
func busyBy(name, dev string, pid int) error {
	oe := &OpenError{Name: name, Err: ErrBusy, Hint: hintBusy}
	if pid != 0 {
		who := fmt.Sprintf("PID %d", pid)
		if cmd := cmdline(pid); cmd != "" {
			who += " (" + cmd + ")"
		}
		if pid == os.Getpid() {
			who += ", this process"
		}
		oe.Hint = "in use by " + who + "; wait for it to finish or stop it"
		if dev != "" && dev != name {
			// The device behind a symbolic link (a /dev/serial/by-id
			// name, a simulator's --link), as the holder has it.
			oe.Hint = dev + " is " + oe.Hint
		}
	}
	return oe
}

// LockFile takes an exclusive lock on path (created if missing, mode 0600)
// for a resource that is not a device file but is used like a port — a
// virtual device's state folder — and writes this process's PID into it.
// Another holder, in this process or another, makes it fail the way Open
// fails on a busy port: an *OpenError for name wrapping ErrBusy, whose hint
// names the holder. unlock releases the lock (the file stays).
func LockFile(path, name string) (unlock func(), err error) {
	// O_NOFOLLOW: a symbolic link planted at path never redirects the
	// lock (or the PID written into it).
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, &OpenError{Name: name, Err: err}
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, busyBy(name, "", lockHolder(path))
		}
		return nil, &OpenError{Name: name, Err: err}
	}
	pid := []byte(fmt.Sprintf("%10d\n", os.Getpid()))
	if err := unix.Ftruncate(fd, 0); err == nil {
		_, _ = unix.Pwrite(fd, pid, 0)
	}
	return func() {
		_ = unix.Ftruncate(fd, 0)
		unix.Close(fd)
	}, nil
}

// openPort opens the port with go.bug.st/serial and makes its descriptor
// close-on-exec: go.bug.st/serial opens without O_CLOEXEC, and a program
// started meanwhile or later (a browser opened by tuyaflash serve) would
// keep the adapter open for as long as it runs. syscall.ForkLock keeps
// every fork of this process out until the flag is set.
func (h *osHold) openPort(name string, mode *serial.Mode) (serial.Port, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	p, err := serial.Open(name, mode)
	if err == nil {
		closeOnExec(h.dev)
	}
	return p, err
}

// closeOnExec sets FD_CLOEXEC on every descriptor of this process that is
// the device dev (the same device number and inode).
func closeOnExec(dev string) {
	var want unix.Stat_t
	if err := unix.Stat(dev, &want); err != nil {
		return
	}
	dir := "/proc/self/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		dir = "/dev/fd"
		if ents, err = os.ReadDir(dir); err != nil {
			return
		}
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil && st.Dev == want.Dev && st.Ino == want.Ino {
			unix.CloseOnExec(fd)
		}
	}
}
