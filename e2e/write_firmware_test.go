//go:build linux

package e2e

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/firmware/fwtest"
)

// TestWriteCatalogueFirmware: "write --firmware NAME" downloads the build
// for the detected chip from the catalogue, checks it, and writes it where
// it belongs without the user typing an offset.
func TestWriteCatalogueFirmware(t *testing.T) {
	qio := fwtest.Beken(fwtest.BootCRCN, 257, fwtest.App(fwtest.SigTuya, 0x30000, 5), 0x50000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/2.0/OpenBK7231N_QIO_2.0.bin" {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(qio))
	}))
	defer srv.Close()
	dir := t.TempDir()
	manifest := filepath.Join(dir, "manifest.json")
	os.WriteFile(manifest, []byte(`{"name": "local", "firmwares": [{"name": "obk", "kind": "openbeken", "version": "2.0",
	  "builds": [{"chipFamily": "BK7231N", "parts": [{"path": "`+srv.URL+`/2.0/OpenBK7231N_QIO_2.0.bin",
	  "offset": 0, "skip": 69632, "format": "beken-qio"}]}]}]}`), 0o644)

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
