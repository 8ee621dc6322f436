package firmware

import (
	"os"
	"path/filepath"
	"testing"
)

// sharedDir is ../shared/testdata/<sub> found from the module root, or
// skips the test.
func sharedDir(t *testing.T, sub string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("no go.mod above the test directory")
		}
		dir = parent
	}
	p := filepath.Join(dir, "..", "shared", "testdata", sub)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("real test data not available (%s missing); the synthetic fixtures cover the same logic", p)
	}
	return p
}
