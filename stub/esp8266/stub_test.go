package espstub

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/tuyaflash/tuyaflash/flasher/esp8266"
)

// TestEmbeddedImage checks what a client uploads, decoded by the client's
// own loader: both segments present, inside the windows stub.ld gives
// them, entry in the text.
func TestEmbeddedImage(t *testing.T) {
	im, err := esp8266.LoadStub(bytes.NewReader(JSON()))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(JSON(), stubJSON) {
		t.Fatal("JSON() differs from the embedded file")
	}
	j := JSON()
	j[0] = 'x'
	if stubJSON[0] == 'x' {
		t.Fatal("JSON() hands out the embedded bytes themselves")
	}
	checks := []struct {
		name   string
		start  uint32
		size   int
		lo, hi uint32
	}{
		{"text", im.TextStart, len(im.Text), 0x4010C500, 0x4010EA00}, // the loader follows
		{"data", im.DataStart, len(im.Data), 0x3FFFACAC, 0x3FFFB204},
	}
	for _, c := range checks {
		if c.size == 0 {
			t.Errorf("%s segment is empty", c.name)
		}
		if c.start < c.lo || uint64(c.start)+uint64(c.size) > uint64(c.hi) {
			t.Errorf("%s 0x%08X+%d outside 0x%08X-0x%08X", c.name, c.start, c.size, c.lo, c.hi)
		}
		if c.start%4 != 0 || c.size%4 != 0 {
			t.Errorf("%s not word aligned: 0x%08X+%d", c.name, c.start, c.size)
		}
	}
	if im.BSSStart != 0x3FFE8100 {
		t.Errorf("bss_start 0x%08X, want 0x3FFE8100", im.BSSStart)
	}
	if im.Entry < im.TextStart || im.Entry >= im.TextStart+uint32(len(im.Text)) {
		t.Errorf("entry 0x%08X outside text", im.Entry)
	}
}

// TestCommittedImageReproducible rebuilds the xtensa image from source and
// compares it with the committed stub.json, as CI does with make verify.
func TestCommittedImageReproducible(t *testing.T) {
	if _, err := exec.LookPath("xtensa-lx106-elf-gcc"); err != nil {
		t.Skip("xtensa-lx106-elf-gcc not installed (apt-get install gcc-xtensa-lx106 binutils-xtensa-lx106); CI runs make verify")
	}
	requireMake(t)
	dir := t.TempDir()
	out, err := exec.Command("make", "--no-print-directory", "BUILD="+dir, "verify").CombinedOutput()
	if err != nil {
		t.Fatalf("make verify: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("check: ok")) {
		t.Fatalf("make verify did not run the checks:\n%s", out)
	}
}

func requireMake(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"make", "cc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: the host-built stub needs make and a C compiler", tool)
		}
	}
}

var (
	hostOnce  sync.Once
	hostDir   string
	hostErr   error
	hostBuild []byte
)

// hostTools builds build/host-stub and build/inflate-check (once per test
// binary, in a temporary directory) and returns that directory.
func hostTools(t *testing.T) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the host-built stub needs Linux (pseudo-terminals, TCSETS2)")
	}
	requireMake(t)
	hostOnce.Do(func() {
		hostDir, hostErr = os.MkdirTemp("", "espstub-host-")
		if hostErr != nil {
			return
		}
		args := []string{"--no-print-directory", "BUILD=" + hostDir, "host"}
		if san := os.Getenv("ESPSTUB_SAN"); san != "" {
			args = append(args, "SAN="+san) // 1: ASan+UBSan, thread: TSan
		}
		hostBuild, hostErr = exec.Command("make", args...).CombinedOutput()
	})
	if hostErr != nil {
		t.Fatalf("make host: %v\n%s", hostErr, hostBuild)
	}
	return hostDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if hostDir != "" {
		os.RemoveAll(hostDir)
	}
	os.Exit(code)
}

func hostTool(t *testing.T, name string) string {
	return filepath.Join(hostTools(t), name)
}
