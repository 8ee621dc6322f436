//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package transport

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestLockFile: a second lock of the same file fails as a busy port does,
// naming the holder; once released it can be taken again.
func TestLockFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	unlock, err := LockFile(path, "sim:bk7231n")
	if err != nil {
		t.Fatal(err)
	}
	_, err = LockFile(path, "sim:bk7231n")
	var oe *OpenError
	if !errors.Is(err, ErrBusy) || !errors.As(err, &oe) || oe.Name != "sim:bk7231n" || !strings.Contains(oe.Hint, "this process") {
		t.Fatalf("second lock: %v", err)
	}
	unlock()
	unlock2, err := LockFile(path, "sim:bk7231n")
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	unlock2()
}
