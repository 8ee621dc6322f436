package export

import (
	"crypto/sha256"
	"encoding/hex"
	"github.com/tuyaflash/tuyaflash/internal/testshared"
	"testing"

	"github.com/tuyaflash/tuyaflash/backup"
)

// sharedDir is ../shared/testdata/bk7231, or skips the test.
func sharedDir(t *testing.T) string { return testshared.Dir(t, "testdata", "bk7231") }

func inventoryTestSidecar(data []byte) backup.Sidecar {
	sum := sha256.Sum256(data)
	return backup.Sidecar{Format: backup.FormatV1, Family: "BK7231T", SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))}
}
