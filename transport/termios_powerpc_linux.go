//go:build linux && (ppc || ppc64 || ppc64le)

package transport

import "golang.org/x/sys/unix"

// On powerpc the plain termios already carries c_ispeed and c_ospeed and
// there is no TCGETS2 (arch/powerpc/include/uapi/asm/ioctls.h).
const (
	tcgets2 = unix.TCGETS
	tcsets2 = unix.TCSETS
)
