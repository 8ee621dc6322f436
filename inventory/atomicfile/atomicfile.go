// Package atomicfile replaces small files (the inventory, a tinytuya
// devices.json) so that a reader, or a crash at any moment, sees either the
// whole old content or the whole new one: the new content goes to a
// temporary file in the same folder, is flushed to disk, and is renamed over
// the old file. Lock serialises tuyaflash processes that read, change and
// write the same file.
package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tuyaflash/tuyaflash/internal/safefile"
)

// Stage names a point inside Write where a Hook runs.
type Stage string

// The stages a Hook sees, in order.
const (
	// StageHalfWritten: the first half of the data is in the temporary
	// file, the second half is not.
	StageHalfWritten Stage = "half-written"
	// StageBeforeRename: the temporary file is complete and flushed; the
	// target still holds the old content.
	StageBeforeRename Stage = "before-rename"
)

// Hook is called at each Stage with the temporary file's path. A non-nil
// error aborts the write (the target is left as it was). Tests use it to
// simulate a failing disk or a process killed mid-write.
type Hook func(stage Stage, tmp string) error

// TempPattern returns the glob of the temporary files Write creates for
// path: hidden, next to it, e.g. ".devices.json.tuyaflash-*.tmp".
func TempPattern(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tuyaflash-*.tmp")
}

// Write replaces path with data, atomically, with permission perm (the
// folder is created with 0700 if missing). A symbolic link at path that
// the user owns is followed: its target is replaced and the link kept. A
// link owned by anybody else is refused (safefile.ErrSymlink): planted in a
// shared folder, it would make tuyaflash replace another file.
func Write(path string, data []byte, perm os.FileMode) error {
	return WriteHook(path, data, perm, nil)
}

// WriteHook is Write with a Hook (nil for none).
func WriteHook(path string, data []byte, perm os.FileMode, hook Hook) (err error) {
	real, err := safefile.FollowOwnLink(path)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	path = real
	dir := filepath.Dir(path)
	if err := safefile.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	pat := filepath.Base(TempPattern(path))
	f, err := safefile.CreateTemp(dir, pat, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	safefile.KeepOwner(f, path) // a file replaced under sudo stays its owner's
	half := len(data) / 2
	if _, err := f.Write(data[:half]); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := runHook(hook, StageHalfWritten, tmp); err != nil {
		return err
	}
	if _, err := f.Write(data[half:]); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: flush to disk: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := runHook(hook, StageBeforeRename, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	syncDir(dir)
	return nil
}

func runHook(h Hook, s Stage, tmp string) error {
	if h == nil {
		return nil
	}
	if err := h(s, tmp); err != nil {
		return fmt.Errorf("write %s: %w", strings.TrimSuffix(tmp, filepath.Ext(tmp)), err)
	}
	return nil
}

// RemoveStale deletes temporary files a killed tuyaflash left next to path.
// Call it only while holding path's Lock, so that no other process is
// still writing one of them. It returns how many it removed.
func RemoveStale(path string) int {
	path = resolve(path)
	names, _ := filepath.Glob(TempPattern(path))
	n := 0
	for _, name := range names {
		if os.Remove(name) == nil {
			n++
		}
	}
	return n
}

// resolve is the file path stands for (FollowOwnLink), or path itself when
// it is a link tuyaflash does not follow (Write then refuses it).
func resolve(path string) string {
	if real, err := safefile.FollowOwnLink(path); err == nil {
		return real
	}
	return path
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// ErrLocked: another process held the lock for longer than the wait.
var ErrLocked = errors.New("locked by another tuyaflash process")

// LockError names the lock file that could not be taken.
type LockError struct {
	Path   string
	Waited time.Duration
	Err    error
}

// Error says which lock was busy and for how long tuyaflash waited.
func (e *LockError) Error() string {
	if errors.Is(e.Err, ErrLocked) {
		return fmt.Sprintf("%s is held by another tuyaflash process (waited %s); let it finish, or remove the lock file if no tuyaflash is running", e.Path, e.Waited.Round(time.Millisecond))
	}
	return fmt.Sprintf("lock %s: %v", e.Path, e.Err)
}

// Unwrap returns ErrLocked or the file-system error.
func (e *LockError) Unwrap() error { return e.Err }

// LockPath is the lock file used for path: ".<name>.lock" next to it.
func LockPath(path string) string {
	path = resolve(path)
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".lock")
}

// Lock takes the exclusive lock that guards path against other tuyaflash
// processes (and other Lock calls in this one), waiting up to wait. The
// lock is an OS file lock on LockPath(path), released by unlock or when
// the process dies, so a crash never leaves it held. Other programs (tinytuya)
// do not take it.
func Lock(path string, wait time.Duration) (unlock func(), err error) {
	lp := LockPath(path)
	if err := safefile.MkdirAll(filepath.Dir(lp), 0o700); err != nil {
		return nil, &LockError{Path: lp, Err: err}
	}
	// Never through a link: O_CREATE through a planted one would create
	// any file the user (or root) may create.
	f, err := safefile.OpenFile(lp, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, &LockError{Path: lp, Err: err}
	}
	start := time.Now()
	delay := 2 * time.Millisecond
	for {
		ok, err := tryLock(f)
		if err != nil {
			f.Close()
			return nil, &LockError{Path: lp, Err: err}
		}
		if ok {
			return func() { unlockFile(f); f.Close() }, nil
		}
		if time.Since(start) >= wait {
			f.Close()
			return nil, &LockError{Path: lp, Waited: time.Since(start), Err: ErrLocked}
		}
		time.Sleep(delay)
		if delay < 100*time.Millisecond {
			delay *= 2
		}
	}
}
