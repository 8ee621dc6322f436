//go:build linux

package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tuyaflash/tuyaflash/firmware/fwtest"
)

// TestESPHeaderFlashSize: a header that would claim more flash than a
// 1 MiB ESP8285 has is refused naming --flash-size; a size that fits is
// written, and the note says what the header now holds.
func TestESPHeaderFlashSize(t *testing.T) {
	t.Parallel()
	saved := filepath.Join(t.TempDir(), "flash.bin")
	s := startSim(t, "--chip", "esp8285", "--save", saved)
	store := t.TempDir()
	before := readFile(t, backupPath(t, mustRun(t, store, "backup", "--port", s.tty)))
	img := espImage(200000, 3, 8) // header: 512KB
	f := filepath.Join(t.TempDir(), "tasmota.bin")
	os.WriteFile(f, img, 0o644)

	r := expectFail(t, store, 4, []string{"--flash-size 4MB would write 4MB flash into the image header, but the chip has 1024 KiB", "--flash-size 1MB"},
		"write", "--port", s.tty, "--flash-size", "4MB", f)
	if strings.Contains(r.stdout+r.stderr, "set to 4MB") {
		t.Errorf("a note claims the refused header was written:\n%s", r)
	}
	w := mustRun(t, store, "write", "--port", s.tty, "--flash-size", "1MB", f)
	if !strings.Contains(w.stderr, "flash size set to 1MB in the image header (was 512KB)") {
		t.Errorf("no note saying what the header holds:\n%s", w)
	}
	s.stop(t)
	after := readFile(t, saved)
	if after[3]&0xF0 != 0x20 || !bytes.Equal(after[4:len(img)], img[4:]) {
		t.Errorf("header byte 3 is 0x%02X, want the 1MB code 0x2X; image body changed: %v", after[3], !bytes.Equal(after[4:len(img)], img[4:]))
	}
	if !bytes.Equal(after[len(img)+0x1000:], before[len(img)+0x1000:]) {
		t.Error("flash after the image changed")
	}
}

// TestStockSafety: a device with no verified backup on record is not
// written without --yes; after a backup it is. restore --force names what
// it overrides, and a backup of another family is refused even with it.
func TestStockSafety(t *testing.T) {
	t.Parallel()
	s := startSim(t, "--chip", "bk7231n")
	store := t.TempDir()
	app := filepath.Join(t.TempDir(), "OpenBK7231N_UA_1.0.0.bin")
	os.WriteFile(app, fwtest.App(fwtest.SigTuya, 0x10000, 2), 0o644)
	r := expectFail(t, store, 4, []string{"no verified backup of this device is on record", "tuyaflash backup --port " + s.tty, "--yes"}, "write", "--port", s.tty, app)
	if strings.Contains(r.stdout, "Wrote") {
		t.Fatalf("written anyway:\n%s", r)
	}
	mustRun(t, store, "write", "--port", s.tty, "--yes", app)
	bp := backupPath(t, mustRun(t, store, "backup", "--port", s.tty))
	w := mustRun(t, store, "write", "--port", s.tty, "-v", app)
	if !strings.Contains(w.stderr, "backup on record: "+bp) {
		t.Errorf("the backup was not found:\n%s", w)
	}

	// A foreign backup: --force lists what it overrides.
	copyWith := func(key, value string) string {
		var sc map[string]any
		json.Unmarshal(readFile(t, bp+".json"), &sc)
		sc[key] = value
		p := filepath.Join(t.TempDir(), "b.bin")
		os.WriteFile(p, readFile(t, bp), 0o600)
		meta, _ := json.Marshal(sc)
		os.WriteFile(p+".json", meta, 0o600)
		return p
	}
	foreign := copyWith("mac", "10:D5:61:AA:BB:CC")
	f := mustRun(t, store, "restore", "--port", s.tty, "--force", foreign)
	if !strings.Contains(f.stderr, "--force overrides: backup MAC 10:D5:61:AA:BB:CC, chip 02:42:4B:72:31:01") {
		t.Errorf("--force does not say what it overrides:\n%s", f)
	}
	other := copyWith("family", "BK7231T")
	expectFail(t, store, 4, []string{"backup is of a BK7231T, the chip is a BK7231N", "no flag overrides this"}, "restore", "--port", s.tty, "--force", other)
}

// TestVirtualDevicesInTheInventory: devices behind sim: ports are recorded
// as virtual, listed apart, left out of exports, written without a backup,
// and 'inventory forget' removes a record.
func TestVirtualDevicesInTheInventory(t *testing.T) {
	t.Parallel()
	store := t.TempDir()
	app := filepath.Join(t.TempDir(), "OpenBK7231N_UA_1.0.0.bin")
	os.WriteFile(app, fwtest.App(fwtest.SigTuya, 0x10000, 2), 0o644)
	w := mustRun(t, store, "write", "--port", "sim:bk7231n", app)
	if !strings.Contains(w.stdout, "Wrote") {
		t.Fatalf("virtual device not written:\n%s", w)
	}
	r := mustRun(t, store, "inventory")
	if !strings.Contains(r.stdout, "Virtual devices (simulators; left out of every export):") || !strings.Contains(r.stdout, "0 devices (+1 virtual) in") {
		t.Errorf("listing:\n%s", r)
	}
	var doc struct {
		VirtualDevices []struct {
			Key     string `json:"key"`
			Virtual bool   `json:"virtual"`
		} `json:"virtual_devices"`
	}
	j := mustRun(t, store, "inventory", "--json")
	if err := json.Unmarshal([]byte(j.stdout), &doc); err != nil || len(doc.VirtualDevices) != 1 || !doc.VirtualDevices[0].Virtual {
		t.Fatalf("%v\n%s", err, j)
	}
	key := doc.VirtualDevices[0].Key
	ha := mustRun(t, store, "export", "homeassistant")
	if strings.Contains(ha.stdout, key) {
		t.Errorf("a virtual device in the Home Assistant hints:\n%s", ha)
	}
	devices := filepath.Join(t.TempDir(), "devices.json")
	os.WriteFile(devices, []byte("[]\n"), 0o644)
	tt := mustRun(t, store, "export", "tinytuya", "--devices", devices)
	if !strings.Contains(tt.stdout, "nothing to do") {
		t.Errorf("tinytuya export of a virtual device:\n%s", tt)
	}
	f := mustRun(t, store, "inventory", "forget", key)
	if !strings.Contains(f.stdout, "Forgot "+key) {
		t.Errorf("forget:\n%s", f)
	}
	if r := mustRun(t, store, "inventory"); !strings.Contains(r.stdout, "No devices yet") {
		t.Errorf("still listed after forget:\n%s", r)
	}
	expectFail(t, store, 1, []string{"not in the inventory"}, "inventory", "forget", key)
}
