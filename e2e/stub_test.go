//go:build linux

package e2e

import (
	"bytes"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCLIWithHostBuiltStub runs tuyaflash's own ESP8266 stub, built for
// this machine from the same C sources as the chip image, on a pty, and
// backs it up and writes it with the tuyaflash command a user types.
func TestCLIWithHostBuiltStub(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"make", "cc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: the host-built stub needs make and a C compiler", tool)
		}
	}
	build := t.TempDir()
	if out, err := exec.Command("make", "-C", "../stub/esp8266", "--no-print-directory", "BUILD="+build, "host").CombinedOutput(); err != nil {
		t.Fatalf("make host: %v\n%s", err, out)
	}
	dir := t.TempDir()
	flash := make([]byte, 1<<20)
	rand.New(rand.NewSource(8)).Read(flash)
	flashFile := filepath.Join(dir, "flash.bin")
	os.WriteFile(flashFile, flash, 0o644)
	tty := filepath.Join(dir, "ttyESP")
	stub := exec.Command(filepath.Join(build, "host-stub"), "--pty-link", tty, "--flash", flashFile, "--size", "1M")
	var stderr bytes.Buffer
	stub.Stderr = &stderr
	if err := stub.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stub.Process.Signal(os.Interrupt)
		stub.Wait()
		if t.Failed() {
			t.Logf("host-stub stderr:\n%s", stderr.String())
		}
	}()
	for i := 0; ; i++ {
		if _, err := os.Stat(tty); err == nil {
			break
		}
		if i == 300 {
			t.Fatal("host-stub did not create its pty link")
		}
		time.Sleep(10 * time.Millisecond)
	}
	store := t.TempDir()
	r := mustRun(t, store, "backup", "--port", tty, "--chip", "esp8266")
	if got := readFile(t, backupPath(t, r)); !bytes.Equal(got, flash) {
		t.Fatal("backup through the host-built stub differs from its flash")
	}
	img := espImage(200000, 3, 9)
	imgFile := filepath.Join(dir, "tasmota.bin")
	os.WriteFile(imgFile, img, 0o644)
	w := mustRun(t, store, "write", "--port", tty, "--chip", "esp8266", "--addr", "0", imgFile)
	if !strings.Contains(w.stdout, "verified by MD5") {
		t.Errorf("write output:\n%s", w)
	}
	got, _ := os.ReadFile(flashFile)
	if !bytes.Equal(got[:len(img)], img) {
		t.Fatal("the stub's flash does not hold the image")
	}
}
