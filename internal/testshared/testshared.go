// Package testshared locates ../shared, the real stock dumps and recorded
// firmware replies that CI puts next to the repository, for tests. Tests
// that use it skip with a clear message when it is absent; each package's
// own synthetic fixtures cover the same logic.
package testshared

import (
	"os"
	"path/filepath"
	"testing"
)

// Lookup returns ../shared/<elem…> next to the repository root (the
// directory holding go.mod, found upwards from the working directory), or
// "" when it does not exist.
func Lookup(elem ...string) string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
	p := filepath.Join(append([]string{dir, "..", "shared"}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// Dir is Lookup, skipping t when the data is absent.
func Dir(t testing.TB, elem ...string) string {
	t.Helper()
	p := Lookup(elem...)
	if p == "" {
		t.Skipf("skipping: ../shared/%s is not next to the repository (real test data; the package's own fixtures cover the same logic)", filepath.Join(elem...))
	}
	return p
}
