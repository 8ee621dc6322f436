//go:build linux && !ppc && !ppc64 && !ppc64le

package transport

import "golang.org/x/sys/unix"

// tcgets2/tcsets2 read and write the termios2 structure, whose c_ispeed and
// c_ospeed hold any rate (asm-generic/ioctls.h TCGETS2/TCSETS2).
const (
	tcgets2 = unix.TCGETS2
	tcsets2 = unix.TCSETS2
)
