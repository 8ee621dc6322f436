// Package safefiletest plants symbolic links where tuyaflash writes, for the
// tests of every writer: the file a link points to, outside the folder,
// must come out untouched.
package safefiletest

import (
	"os"
	"path/filepath"
	"testing"
)

// Victim is the content of a planted link's target.
const Victim = "precious: not tuyaflash's"

// Plant makes path a symbolic link to a new file outside path's folder
// holding Victim, and returns that file. Missing folders of path are
// created. It skips the test where links cannot be made.
func Plant(t testing.TB, path string) string {
	t.Helper()
	target := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(target, []byte(Victim), 0o644); err != nil {
		t.Fatal(err)
	}
	PlantTo(t, path, target)
	return target
}

// PlantDangling makes path a symbolic link to a file that does not exist,
// and returns that file's path: a writer that follows the link would
// create it.
func PlantDangling(t testing.TB, path string) string {
	t.Helper()
	target := filepath.Join(t.TempDir(), "created-through-the-link")
	PlantTo(t, path, target)
	return target
}

// PlantTo makes path a symbolic link to target.
func PlantTo(t testing.TB, path, target string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Skipf("no symbolic links here: %v", err)
	}
}

// Untouched fails the test when the target of a planted link changed: a
// Plant target must still hold Victim, a PlantDangling target must still
// not exist.
func Untouched(t testing.TB, target string) {
	t.Helper()
	b, err := os.ReadFile(target)
	if filepath.Base(target) == "created-through-the-link" {
		if err == nil {
			t.Errorf("%s was created through a planted link (%d bytes)", target, len(b))
		}
		return
	}
	if err != nil || string(b) != Victim {
		t.Errorf("the planted link's target %s was changed: %q %v", target, b, err)
	}
}

// IsLink reports whether path is still a symbolic link.
func IsLink(t testing.TB, path string) bool {
	t.Helper()
	st, err := os.Lstat(path)
	return err == nil && st.Mode()&os.ModeSymlink != 0
}

// Mode returns the permission bits of path (not following a link).
func Mode(t testing.TB, path string) os.FileMode {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}
