//go:build linux

package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tuyaflash/tuyaflash/firmware/fwtest"
)

// TestBackupSurvivesLineNoise: bytes lost or changed on the wire are
// retried until the dump is exact.
func TestBackupSurvivesLineNoise(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
	}{
		{"dropped bytes", []string{"--drop-rate", "0.00002"}},
		{"corrupted bytes", []string{"--corrupt-rate", "0.00002"}},
		{"lost host bytes", []string{"--rx-drop-rate", "0.0005"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			saved := filepath.Join(t.TempDir(), "flash.bin")
			args := append([]string{"--chip", "bk7231n", "--fault-after", "2000", "--seed", "3", "--save", saved}, tc.args...)
			s := startSim(t, args...)
			store := t.TempDir()
			r := mustRun(t, store, "backup", "--port", s.tty, "-v")
			got := readFile(t, backupPath(t, r))
			s.stop(t)
			want := readFile(t, saved)
			if !bytes.Equal(got, want) {
				t.Fatalf("backup differs from the simulator's flash (sha %s vs %s)", sha(got), sha(want))
			}
		})
	}
}

// TestDisconnectMidWriteResumes pulls the cable in the middle of a write:
// tuyaflash ends with a clear error, and running the same command against
// the same flash finishes the job, skipping what was already written.
func TestDisconnectMidWriteResumes(t *testing.T) {
	t.Parallel()
	for _, chip := range []string{"bk7231n", "bk7231t"} {
		t.Run(chip, func(t *testing.T) {
			dir := t.TempDir()
			img := fwtest.App(fwtest.SigTuya, 512*1024, 11)
			imgFile := filepath.Join(dir, "app.bin")
			os.WriteFile(imgFile, img, 0o644)
			half := filepath.Join(dir, "half.bin")

			s := startSim(t, "--chip", chip, "--disconnect-after", "300000", "--save", half)
			store := t.TempDir()
			r := run(t, store, "write", "--port", s.tty, "--addr", "0x11000", "--yes", imgFile)
			if r.code == 0 {
				t.Fatalf("write survived a disconnect:\n%s", r)
			}
			for _, f := range []string{"port closed", "run the same command again"} {
				if !strings.Contains(r.stderr, f) {
					t.Errorf("error lacks %q:\n%s", f, r)
				}
			}
			s.wait(t)
			if _, err := os.Stat(half); err != nil {
				t.Fatalf("simulator saved no flash: %v\n%s", err, s.out)
			}

			final := filepath.Join(dir, "final.bin")
			s2 := startSim(t, "--chip", chip, "--flash", half, "--save", final)
			r2 := mustRun(t, store, "write", "--port", s2.tty, "--addr", "0x11000", "--yes", imgFile)
			if strings.Contains(r2.stdout, " 0 KiB already in place") {
				t.Errorf("second run rewrote everything:\n%s", r2)
			}
			s2.stop(t)
			got := readFile(t, final)
			if !bytes.Equal(got[0x11000:0x11000+len(img)], img) {
				t.Fatal("flash does not hold the image after the resumed write")
			}
			if !bytes.Equal(got[:0x11000], readFile(t, half)[:0x11000]) {
				t.Fatal("bootloader area changed")
			}
		})
	}
}

// TestDisconnectMidBackupResumes: a backup interrupted by a pulled cable
// or a pulled USB adapter (the pty then fails with EIO and its path
// disappears) keeps its verified part, says so, and the next run — on a
// new simulator with the same flash, as after plugging in again —
// continues from there.
func TestDisconnectMidBackupResumes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		fault   []string
		unplugs bool
	}{
		{"cable pulled", []string{"--disconnect-after", "4000"}, false},
		{"adapter unplugged", []string{"--unplug-after", "3000"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			saved := filepath.Join(dir, "flash.bin")
			s := startSim(t, append([]string{"--chip", "bk7231n", "--save", saved}, tc.fault...)...)
			store := t.TempDir()
			r := run(t, store, "backup", "--port", s.tty)
			if r.code == 0 {
				t.Fatalf("backup survived it:\n%s", r)
			}
			if !strings.Contains(r.stderr, "run the same command again to resume") {
				t.Errorf("no resume hint:\n%s", r)
			}
			s.wait(t)
			if _, err := os.Lstat(s.tty); tc.unplugs && !os.IsNotExist(err) {
				t.Errorf("the unplugged port's link is still there: %v", err)
			}
			if dumps, _ := filepath.Glob(filepath.Join(store, "bk7231n-*", "*.bin")); len(dumps) != 0 {
				t.Fatalf("a half backup was saved as a backup: %v", dumps)
			}
			if partial, _ := filepath.Glob(filepath.Join(store, ".partial", "*.bin")); len(partial) != 1 {
				t.Fatalf("verified part not kept for resuming: %v", partial)
			}
			s2 := startSim(t, "--chip", "bk7231n", "--flash", saved)
			r2 := mustRun(t, store, "backup", "--port", s2.tty)
			if !strings.Contains(r2.stderr, "resuming an interrupted backup") {
				t.Errorf("second run did not resume:\n%s", r2)
			}
			if got := readFile(t, backupPath(t, r2)); !bytes.Equal(got, readFile(t, saved)) {
				t.Fatal("resumed backup differs from the flash")
			}
			if left, _ := filepath.Glob(filepath.Join(store, ".partial", "*")); len(left) != 0 {
				t.Errorf("partial files left after a finished backup: %v", left)
			}
		})
	}
}
