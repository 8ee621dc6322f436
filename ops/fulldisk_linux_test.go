package ops

import (
	"bytes"
	"context"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/tuyaflash/tuyaflash/flasher"
)

// TestBackupOnAFullDiskResumes: a disk that takes only part of a sector of
// the dump (here the process's file size limit, which Go turns into EFBIG)
// ends the backup saying the disk refused it, and the next run, with room
// again, resumes and finishes. Found by the fault campaign: the journal
// kept the odd byte count, and every later run stopped at once with
// "address and size must be multiples of 4 KiB".
func TestBackupOnAFullDiskResumes(t *testing.T) {
	root := t.TempDir()
	dev := newFake(flasher.BK7231N, 1<<20)
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Skip(err)
	}
	const limit = 0x64000 + 100 // mid-sector
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: limit, Max: old.Max}); err != nil {
		t.Skipf("cannot set a file size limit: %v", err)
	}
	_, err := Backup(context.Background(), dev, BackupOptions{Root: root, ToolVersion: "test"})
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	if err == nil {
		t.Fatal("a backup larger than the file size limit succeeded")
	}
	if h := flasher.Hint(err); !strings.Contains(h, "disk of the backup folder") || !strings.Contains(h, "run the same command again") {
		t.Errorf("hint %q does not say the disk refused it and what to do", h)
	}
	if !strings.Contains(err.Error(), "stopped at 0x064000") {
		t.Errorf("error %v: want the backup kept up to the last whole sector, 0x064000", err)
	}
	res, err := Backup(context.Background(), dev, BackupOptions{Root: root, ToolVersion: "test"})
	if err != nil {
		t.Fatalf("the next run with room again: %v", err)
	}
	if res.Resumed != 0x64000 {
		t.Errorf("resumed %#x bytes, want 0x64000", res.Resumed)
	}
	if got, err := os.ReadFile(res.Path); err != nil || !bytes.Equal(got, dev.flash) {
		t.Fatalf("resumed backup differs from the flash (%v)", err)
	}
}
