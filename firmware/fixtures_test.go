package firmware

import (
	"github.com/tuyaflash/tuyaflash/internal/testshared"
	"testing"
)

// sharedDir is ../shared/testdata/<sub>, or skips the test.
func sharedDir(t *testing.T, sub string) string { return testshared.Dir(t, "testdata", sub) }
