package firmware

import (
	"context"
	"errors"
	"github.com/tuyaflash/tuyaflash/firmware/fwtest"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tuyaflash/tuyaflash/espimage"
	"github.com/tuyaflash/tuyaflash/flasher"
)

func TestResolve(t *testing.T) {
	srv := newFileServer(t)
	esp := fwtest.ESPImage(0, 0x20, 3000) // QIO header: the catalogue's dout patches it
	qio := fwtest.Beken(fwtest.BootCRCN, 257, fwtest.App(fwtest.SigTuya, 0x8000, 1), bekenQIOSizeN)
	srv.set("/v1.0/tasmota.bin", esp)
	srv.set("/1.0/OpenBK7231N_QIO_1.0.bin", qio)
	srv.set("/1.0/wrong.bin", fwtest.App(fwtest.SigTuya, 0x1000, 2))
	manifest := `{"name": "t", "firmwares": [
	  {"name": "tasmota", "kind": "tasmota", "version": "1.0", "builds": [{"chipFamily": "ESP8266", "flash_mode": "dout",
	    "parts": [{"path": "` + srv.url("/v1.0/tasmota.bin") + `", "offset": 0, "format": "esp-app", "sha256": "` + shaHex(esp) + `"}]}]},
	  {"name": "openbeken", "kind": "openbeken", "version": "1.0", "builds": [
	    {"chipFamily": "BK7231N", "parts": [{"path": "` + srv.url("/1.0/OpenBK7231N_QIO_1.0.bin") + `", "offset": 0, "skip": 69632, "format": "beken-qio"}]},
	    {"chipFamily": "BK7231T", "parts": [{"path": "` + srv.url("/1.0/wrong.bin") + `", "offset": 0, "skip": 69632, "format": "beken-qio"}]}]},
	  {"name": "esphome", "kind": "esphome", "version": "", "user_file": true, "builds": [{"chipFamily": "BK7231N", "parts": [{"offset": 0, "format": "uf2"}]}]}
	]}`
	m, err := Parse([]byte(manifest), "test", "")
	if err != nil {
		t.Fatal(err)
	}
	c := newCache(t, srv)
	ctx := context.Background()

	r, err := Resolve(ctx, "tasmota", Chip{Family: flasher.ESP8266}, m, c)
	if err != nil {
		t.Fatal(err)
	}
	if r.Options.FlashMode != "dout" || r.Options.SHA256 != shaHex(esp) || r.Fetch.Status != StatusVerified {
		t.Errorf("tasmota: options %+v fetch %+v", r.Options, r.Fetch)
	}
	p, err := Place(flasher.Info{Family: flasher.ESP8266, FlashSize: 1 << 20}, r.Detection, r.Options)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Patched || p.Regions[0].Data[2] != byte(espimage.ModeDOUT) {
		t.Errorf("catalogue flash mode not applied: %+v", p.Notes)
	}

	r, err = Resolve(ctx, "openbeken", Chip{flasher.BK7231N, KeyTuya}, m, c)
	if err != nil {
		t.Fatal(err)
	}
	if r.Fetch.Status != StatusPinned || r.Options.SHA256 != shaHex(qio) || r.Detection.Format != FormatBekenQIO {
		t.Errorf("openbeken: %+v %+v", r.Fetch, r.Options)
	}

	if _, err := Resolve(ctx, "openbeken", Chip{Family: flasher.BK7231T}, m, c); !errors.Is(err, ErrChecksum) {
		t.Errorf("a UA served where the catalogue says QIO: %v", err)
	}
	if _, err := Resolve(ctx, "esphome", Chip{Family: flasher.BK7231N}, m, c); err == nil || !strings.Contains(flasher.Hint(err), "firmware.uf2") {
		t.Errorf("esphome: %v (hint %q)", err, flasher.Hint(err))
	}
	if _, err := Resolve(ctx, "tasmota", Chip{Family: flasher.BK7231N}, m, c); !errors.Is(err, flasher.ErrRefused) {
		t.Errorf("tasmota on a BK7231N: %v", err)
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "mine.uf2")
	os.WriteFile(file, fwtest.LibreTinyUF2(0x7B3EF230, fwtest.App(fwtest.SigTuya, 0x400, 3), 0, nil), 0o644)
	r, err = Resolve(ctx, file, Chip{Family: flasher.BK7231N}, m, c)
	if err != nil {
		t.Fatal(err)
	}
	if r.Detection.Format != FormatUF2 || r.Fetch != nil || r.Options.FlashMode != "" {
		t.Errorf("local file: %+v", r)
	}
	if _, err := Resolve(ctx, filepath.Join(dir, "missing.bin"), Chip{}, m, c); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Resolve(ctx, dir, Chip{}, m, c); err == nil {
		t.Error("a folder was accepted")
	}
}
