package cli

import (
	"os"
	"testing"

	"github.com/tuyaflash/tuyaflash/internal/virtual"
)

// TestMain runs the virtual devices of sim: ports unpaced: the tests here
// check what the commands do, not how long the wire takes (e2e and the
// speed suite measure that).
func TestMain(m *testing.M) {
	os.Setenv(virtual.EnvUnpaced, "1")
	os.Exit(m.Run())
}
