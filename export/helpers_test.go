package export

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/tuyaflash/tuyaflash/backup"
)

// sharedDir is ../shared/testdata/bk7231 next to the repository (the folder
// holding go.mod); the test skips when it is absent.
func sharedDir(t *testing.T) string {
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
			t.Skip("repository root (go.mod) not found")
		}
		dir = parent
	}
	shared := filepath.Join(dir, "..", "shared", "testdata", "bk7231")
	if _, err := os.Stat(shared); err != nil {
		t.Skipf("real dumps not available (%s missing); the synthetic pin maps cover the same code", shared)
	}
	return shared
}

func inventoryTestSidecar(data []byte) backup.Sidecar {
	sum := sha256.Sum256(data)
	return backup.Sidecar{Format: backup.FormatV1, Family: "BK7231T", SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))}
}
