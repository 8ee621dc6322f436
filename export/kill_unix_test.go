//go:build unix

package export

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/inventory/atomicfile"
)

// TestKilledMidWrite runs the migration in a child process that is killed
// (SIGKILL) when half of the new file is written: the original must be
// intact, and the next run must finish the job and clean up.
func TestKilledMidWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a child process with SIGKILL")
	}
	for _, stage := range []atomicfile.Stage{atomicfile.StageHalfWritten, atomicfile.StageBeforeRename} {
		t.Run(string(stage), func(t *testing.T) {
			path := copyFixture(t, "devices_list.json", 0o600)
			orig, _ := os.ReadFile(path)
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperKilledWriter$")
			cmd.Env = append(os.Environ(), "EXPORT_HELPER_FILE="+path, "EXPORT_HELPER_STAGE="+string(stage))
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child was not killed: %v\n%s", err, out)
			}
			if now, _ := os.ReadFile(path); !bytes.Equal(now, orig) {
				t.Fatal("original damaged by a process killed mid-write")
			}
			left, _ := filepath.Glob(atomicfile.TempPattern(path))
			if len(left) != 1 {
				t.Fatalf("expected the killed run's temporary file, found %v", left)
			}
			if stage == atomicfile.StageHalfWritten {
				if b, _ := os.ReadFile(left[0]); json.Valid(b) {
					t.Error("the temporary file was complete: not a mid-write kill")
				}
			}
			res, err := MigrateTinyTuya(path, migrated, Options{Now: fixedNow})
			if err != nil {
				t.Fatal(err)
			}
			if res.Removed != 1 {
				t.Errorf("stale temporary files removed: %d, want 1", res.Removed)
			}
			if left, _ := filepath.Glob(atomicfile.TempPattern(path)); len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}
			assertMigratedOnce(t, path, orig)
		})
	}
}

func TestHelperKilledWriter(t *testing.T) {
	path := os.Getenv("EXPORT_HELPER_FILE")
	if path == "" {
		t.Skip("helper for TestKilledMidWrite")
	}
	stage := atomicfile.Stage(os.Getenv("EXPORT_HELPER_STAGE"))
	writeHook = func(s atomicfile.Stage, tmp string) error {
		if s == stage {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Minute)
		}
		return nil
	}
	MigrateTinyTuya(path, migrated, Options{Now: fixedNow})
	t.Fatal("not killed")
}
