package atomicfile

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestWriteReplacesWithMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "f.json")
	if err := Write(path, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	st, _ := os.Stat(path)
	if string(b) != "two" || st.Mode().Perm() != 0o644 {
		t.Fatalf("content %q mode %v", b, st.Mode().Perm())
	}
	if m, _ := filepath.Glob(TempPattern(path)); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

func TestFailureAtEveryStageKeepsOriginal(t *testing.T) {
	for _, stage := range []Stage{StageHalfWritten, StageBeforeRename} {
		t.Run(string(stage), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "devices.json")
			os.WriteFile(path, []byte("original"), 0o640)
			var seen []Stage
			err := WriteHook(path, []byte("new content that is longer"), 0o640, func(s Stage, tmp string) error {
				seen = append(seen, s)
				if !strings.HasPrefix(filepath.Base(tmp), ".devices.json.tuyaflash-") {
					t.Errorf("temporary file %s is not hidden next to the target", tmp)
				}
				if s == stage {
					return errors.New("disk full")
				}
				return nil
			})
			if err == nil || !strings.Contains(err.Error(), "disk full") {
				t.Fatalf("err = %v", err)
			}
			if seen[len(seen)-1] != stage {
				t.Errorf("stages seen %v", seen)
			}
			if b, _ := os.ReadFile(path); string(b) != "original" {
				t.Fatalf("original changed to %q", b)
			}
			if m, _ := filepath.Glob(TempPattern(path)); len(m) != 0 {
				t.Errorf("temporary files left after a failed write: %v", m)
			}
		})
	}
}

func TestSymlinkIsFollowed(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.json")
	link := filepath.Join(dir, "link.json")
	os.WriteFile(real, []byte("old"), 0o600)
	if err := os.Symlink(real, link); err != nil {
		t.Skip("no symlinks here:", err)
	}
	if err := Write(link, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(link); fi.Mode()&os.ModeSymlink == 0 {
		t.Error("the link was replaced by a file")
	}
	if b, _ := os.ReadFile(real); string(b) != "new" {
		t.Errorf("target holds %q", b)
	}
}

func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "inventory.json")
	os.WriteFile(filepath.Join(dir, ".inventory.json.tuyaflash-123.tmp"), []byte("half"), 0o600)
	os.WriteFile(filepath.Join(dir, ".other.json.tuyaflash-1.tmp"), []byte("x"), 0o600)
	if n := RemoveStale(path); n != 1 {
		t.Fatalf("removed %d, want 1", n)
	}
	if _, err := os.Stat(filepath.Join(dir, ".other.json.tuyaflash-1.tmp")); err != nil {
		t.Error("a temporary file of another target was removed")
	}
}

func TestLockExcludesAndReleases(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.json")
	unlock, err := Lock(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = Lock(path, 60*time.Millisecond)
	if !errors.Is(err, ErrLocked) || time.Since(start) < 60*time.Millisecond {
		t.Fatalf("second lock: %v after %v", err, time.Since(start))
	}
	if !strings.Contains(err.Error(), "another tuyaflash process") {
		t.Errorf("message: %v", err)
	}
	unlock()
	u2, err := Lock(path, 0)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	u2()
}

// TestLockDiesWithProcess: a killed holder never leaves the lock held.
func TestLockDiesWithProcess(t *testing.T) {
	if runtime.GOOS == "windows" || testing.Short() {
		t.Skip("uses SIGKILL on a child process")
	}
	path := filepath.Join(t.TempDir(), "inventory.json")
	ready := path + ".ready"
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldLock$")
	cmd.Env = append(os.Environ(), "ATOMICFILE_HOLD="+path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if i > 500 {
			cmd.Process.Kill()
			t.Fatal("helper never took the lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := Lock(path, 20*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Fatalf("lock held by the child was not exclusive: %v", err)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	u, err := Lock(path, 2*time.Second)
	if err != nil {
		t.Fatalf("lock of a killed process still held: %v", err)
	}
	u()
}

func TestHelperHoldLock(t *testing.T) {
	path := os.Getenv("ATOMICFILE_HOLD")
	if path == "" {
		t.Skip("helper for TestLockDiesWithProcess")
	}
	if _, err := Lock(path, time.Second); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path+".ready", nil, 0o600)
	time.Sleep(time.Minute)
}
