//go:build linux

package e2e

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tuyaflash/tuyaflash/firmware/fwtest"
)

// TestWriteCatalogueFirmware: "write --firmware NAME" downloads the build
// for the detected chip from the catalogue, checks it, and writes it where
// it belongs without the user typing an offset.
func TestWriteCatalogueFirmware(t *testing.T) {
	t.Parallel()
	qio := fwtest.Beken(fwtest.BootCRCN, 257, fwtest.App(fwtest.SigTuya, 0x30000, 5), 0x50000)
	srv := releaseServer(t, "/2.0/OpenBK7231N_QIO_2.0.bin", qio)
	dir := t.TempDir()
	manifest := qioManifest(t, filepath.Join(dir, "manifest.json"), srv.URL+"/2.0/OpenBK7231N_QIO_2.0.bin", "2.0", "")

	saved := filepath.Join(dir, "flash.bin")
	s := startSim(t, "--chip", "bk7231n", "--save", saved)
	store := t.TempDir()
	before := readFile(t, backupPath(t, mustRun(t, store, "backup", "--port", s.tty)))
	r := mustRun(t, store, "write", "--port", s.tty, "--firmware", "obk", "--manifest", manifest, "--cache-dir", filepath.Join(dir, "cache"))
	if !strings.Contains(r.stdout, "Wrote") || !strings.Contains(r.stderr, "0x011000") {
		t.Errorf("write output:\n%s", r)
	}
	s.stop(t)
	after := readFile(t, saved)
	if !bytes.Equal(after[:0x11000], before[:0x11000]) {
		t.Fatal("the chip's bootloader was overwritten")
	}
	if !bytes.Equal(after[0x11000:len(qio)], qio[0x11000:]) {
		t.Fatal("the app part of the QIO image is not at 0x11000")
	}
	if !bytes.Equal(after[len(qio):], before[len(qio):]) {
		t.Fatal("flash after the image changed")
	}
}
