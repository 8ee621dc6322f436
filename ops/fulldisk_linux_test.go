package ops

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/tuyaflash/tuyaflash/flasher"
)

// TestBackupOnAFullDiskResumes: a disk that takes only part of the dump
// ends the backup saying the disk refused it, keeping what it holds up to
// the last whole sector, and the next run, with room again, resumes and
// finishes. Two ways a disk fills: the process's file size limit (Go turns
// it into EFBIG; found by the fault campaign: the journal kept the odd byte
// count, and every later run stopped at once with "address and size must
// be multiples of 4 KiB") and a full filesystem (ENOSPC: a small tmpfs,
// which needs CAP_SYS_ADMIN to mount; skipped, saying so, without it).
func TestBackupOnAFullDiskResumes(t *testing.T) {
	tests := []struct {
		name string
		// fill makes root take only part of the dump and returns what
		// gives it room again.
		fill func(t *testing.T, root string) (room func())
	}{
		{"file size limit (EFBIG)", func(t *testing.T, root string) func() {
			var old syscall.Rlimit
			if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
				t.Skip(err)
			}
			const limit = 0x64000 + 100 // mid-sector
			if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: limit, Max: old.Max}); err != nil {
				t.Skipf("cannot set a file size limit: %v", err)
			}
			t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old) })
			return func() {
				if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"full filesystem (ENOSPC)", func(t *testing.T, root string) func() {
			if err := syscall.Mount("tuyaflash-test", root, "tmpfs", 0, "size=400k,mode=0700"); err != nil {
				t.Skipf("cannot mount a small tmpfs (needs CAP_SYS_ADMIN): %v", err)
			}
			t.Cleanup(func() { syscall.Unmount(root, syscall.MNT_DETACH) })
			return func() {
				if err := syscall.Mount("tuyaflash-test", root, "tmpfs", syscall.MS_REMOUNT, "size=8m,mode=0700"); err != nil {
					t.Fatalf("give the tmpfs room again: %v", err)
				}
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			dev := newFake(flasher.BK7231N, 1<<20)
			room := tc.fill(t, root)
			_, err := Backup(context.Background(), dev, BackupOptions{Root: root, ToolVersion: "test"})
			room()
			if err == nil {
				t.Fatal("a backup larger than the disk's room succeeded")
			}
			if h := flasher.Hint(err); !strings.Contains(h, "disk of the backup folder") || !strings.Contains(h, "run the same command again") {
				t.Errorf("hint %q does not say the disk refused it and what to do", h)
			}
			var kept int64
			if _, serr := fmt.Sscanf(err.Error()[strings.Index(err.Error(), "stopped at ")+len("stopped at "):], "0x%x", &kept); serr != nil || kept == 0 || kept%0x1000 != 0 {
				t.Fatalf("error %v: want the backup kept up to a whole sector (%v)", err, serr)
			}
			res, err := Backup(context.Background(), dev, BackupOptions{Root: root, ToolVersion: "test"})
			if err != nil {
				t.Fatalf("the next run with room again: %v", err)
			}
			if res.Resumed != kept {
				t.Errorf("resumed %#x bytes, want the %#x kept", res.Resumed, kept)
			}
			if got, err := os.ReadFile(res.Path); err != nil || !bytes.Equal(got, dev.flash) {
				t.Fatalf("resumed backup differs from the flash (%v)", err)
			}
		})
	}
}
