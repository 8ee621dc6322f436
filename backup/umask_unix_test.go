//go:build unix

package backup

import (
	"syscall"
	"testing"
)

// withUmask sets the process umask for the test (tests using it must not
// run in parallel).
func withUmask(t *testing.T, m int) {
	old := syscall.Umask(m)
	t.Cleanup(func() { syscall.Umask(old) })
}
