//go:build linux

package transport

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rate reads the rate the driver set back from termios2 (c_ospeed): drivers
// that cannot run the requested rate write the actual one there (cp210x,
// pl2303 via tty_encode_baud_rate); a pty keeps what was set.
func (h *osHold) rate() (int, bool) {
	if h == nil || h.fd < 0 {
		return 0, false
	}
	t, err := unix.IoctlGetTermios(h.fd, tcgets2)
	if err != nil {
		return 0, false
	}
	return int(t.Ospeed), true
}

// asyncLowLatency is ASYNC_LOW_LATENCY (1 << ASYNCB_LOW_LATENCY,
// include/uapi/linux/tty_flags.h).
const asyncLowLatency = 1 << 13

// serialStruct is the head of struct serial_struct
// (include/uapi/linux/serial.h) up to flags, with room for the rest (72
// bytes on 64-bit systems): TIOCGSERIAL fills it, TIOCSSERIAL writes it back
// unchanged but for the flag.
type serialStruct struct {
	typ, line int32
	port      uint32
	irq       int32
	flags     int32
	rest      [108]byte // xmit_fifo_size, custom_divisor, baud_base, …
}

func getSerial(fd int) (serialStruct, error) {
	var ss serialStruct
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCGSERIAL, uintptr(unsafe.Pointer(&ss)))
	if e != 0 {
		return ss, e
	}
	return ss, nil
}

func setSerial(fd int, ss serialStruct) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCSSERIAL, uintptr(unsafe.Pointer(&ss)))
	if e != 0 {
		return e
	}
	return nil
}

// sysfsTTY is where the kernel describes tty devices (tests point it
// elsewhere).
var sysfsTTY = "/sys/class/tty"

// ttyDriver returns the driver of a tty device as sysfs names it
// (/sys/class/tty/ttyUSB0/device/driver → ftdi_sio), "" when unknown.
func ttyDriver(dev string) string {
	l, err := os.Readlink(filepath.Join(sysfsTTY, filepath.Base(dev), "device", "driver"))
	if err != nil {
		return ""
	}
	return filepath.Base(l)
}

// lowerLatency sets ASYNC_LOW_LATENCY on an FTDI adapter, which ftdi_sio
// turns into a 1 ms latency timer (write_latency_timer). The driver accepts
// the flag from any user who can open the port (ASYNC_USR_MASK in
// set_serial_info), unlike the sysfs latency_timer file, which needs root.
// Other drivers have no latency timer to lower; a pty answers ENOTTY.
func (h *osHold) lowerLatency() LatencyInfo {
	if h == nil || h.fd < 0 {
		return LatencyInfo{}
	}
	li := LatencyInfo{Driver: ttyDriver(h.dev)}
	if li.Driver != "ftdi_sio" {
		li.Reason = "only FTDI adapters have a latency timer the host can lower"
		if li.Driver == "" {
			li.Reason = "not a USB serial adapter the host can tune"
		}
		return li
	}
	if ms, err := readInt(filepath.Join(sysfsTTY, filepath.Base(h.dev), "device", "latency_timer")); err == nil {
		li.Timer, li.Known = time.Duration(ms)*time.Millisecond, true
	}
	ss, err := getSerial(h.fd)
	if err != nil {
		li.Reason = fmt.Sprintf("cannot read the serial flags: %v", err)
		return li
	}
	if ss.flags&asyncLowLatency != 0 {
		li.Timer, li.Known = time.Millisecond, true
		li.Reason = "already in low-latency mode"
		return li
	}
	old := ss
	ss.flags |= asyncLowLatency
	if err := setSerial(h.fd, ss); err != nil {
		li.Reason = fmt.Sprintf("the driver refused the low-latency flag: %v", err)
		return li
	}
	h.restore = func() { _ = setSerial(h.fd, old) }
	li.Timer, li.Known, li.Lowered = time.Millisecond, true, true
	return li
}

// restoreLatency puts back the serial flags lowerLatency changed.
func (h *osHold) restoreLatency() {
	if h != nil && h.restore != nil && h.fd >= 0 {
		h.restore()
		h.restore = nil
	}
}

func readInt(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// procRoot is where processes are listed (tests point it elsewhere).
var procRoot = "/proc"

// procHolder returns a process that has dev open (readable /proc entries
// only: all of them for root, one's own otherwise), else 0.
func procHolder(dev string) int {
	want, err := os.Stat(dev)
	if err != nil {
		return 0
	}
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return 0
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if has, _ := hasOpen(pid, want); has {
			return pid
		}
	}
	return 0
}

// hasOpen reports whether process pid has the file want open (an error:
// its descriptors cannot be read). It compares
// what each descriptor is, not the name /proc shows, which is only the
// holder's view: a device node bind-mounted into a container under another
// name is the same file, and a /dev/pts/0 of another devpts instance is
// another. A terminal device is the same device under any node (a
// container's own node, made for it, of the same adapter); only
// pseudo-terminals, whose numbers each devpts instance hands out again,
// must be the same file. Only descriptors below /dev are looked at (a
// stat of a file on a hung network mount would hang).
func hasOpen(pid int, want fs.FileInfo) (bool, error) {
	fdDir := filepath.Join(procRoot, strconv.Itoa(pid), "fd")
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		return false, err
	}
	for _, f := range fds {
		fd := filepath.Join(fdDir, f.Name())
		if l, err := os.Readlink(fd); err != nil || !strings.HasPrefix(l, "/dev/") {
			continue
		}
		if st, err := os.Stat(fd); err == nil && sameDevice(st, want) {
			return true, nil
		}
	}
	return false, nil
}

// sameDevice reports whether a and b are the same file, or nodes of the
// same terminal device other than a pseudo-terminal.
func sameDevice(a, b fs.FileInfo) bool {
	sa, okA := a.Sys().(*syscall.Stat_t)
	sb, okB := b.Sys().(*syscall.Stat_t)
	if !okA || !okB {
		return false
	}
	if sa.Dev == sb.Dev && sa.Ino == sb.Ino {
		return true
	}
	if a.Mode()&fs.ModeCharDevice == 0 || b.Mode()&fs.ModeCharDevice == 0 || sa.Rdev != sb.Rdev {
		return false
	}
	// Unix98 pseudo-terminal slaves: majors 136-143 (the kernel's
	// Documentation/admin-guide/devices.txt).
	major := unix.Major(uint64(sa.Rdev))
	return major < 136 || major > 143
}

// flockHolder returns the process that holds a flock on dev, as the
// kernel lists it in /proc/locks (its superblock's major:minor in hex and
// the inode), or 0 when none is listed.
func flockHolder(dev string) int {
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		return 0
	}
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(uint64(st.Dev)), unix.Minor(uint64(st.Dev)), st.Ino)
	b, err := os.ReadFile(filepath.Join(procRoot, "locks"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		// "1: FLOCK  ADVISORY  WRITE 4242 00:1a:6 0 EOF"; a waiter's
		// line has "->" after the number and is skipped.
		f := strings.Fields(line)
		if len(f) < 6 || f[1] != "FLOCK" || f[5] != want {
			continue
		}
		if pid, err := strconv.Atoi(f[4]); err == nil && pid > 0 {
			return pid
		}
	}
	return 0
}

// lacksDevice reports whether process pid, which holds dev's lock file,
// is known not to have dev open: a tuyaflash whose adapter was unplugged
// or whose pseudo-terminal closed keeps running a moment with its lock
// file, and the kernel may give the name to the next device at once; a
// killed tuyaflash's PID may be given to another program. The lock guards
// nothing then. False when pid's descriptors cannot be read (another
// user's process, without root): its lock holds.
func lacksDevice(pid int, dev string) bool {
	want, err := os.Stat(dev)
	if err != nil {
		return false
	}
	has, err := hasOpen(pid, want)
	return err == nil && !has
}

// cmdline returns a process's command line, space-separated and shortened,
// "" when unreadable.
func cmdline(pid int) string {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return ""
	}
	s := strings.TrimSpace(string(bytes.ReplaceAll(bytes.TrimRight(b, "\x00"), []byte{0}, []byte{' '})))
	if r := []rune(s); len(r) > 120 {
		s = string(r[:117]) + "..."
	}
	return s
}
