//go:build linux

package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tuyaflash/tuyaflash/backup"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/inventory"
	"github.com/tuyaflash/tuyaflash/tuyaconfig"
)

const plugKey = "a1b2c3d4e5f6a7b8" // the plug's local key in the fixture

// makeInventory records two flashed devices the way the device commands do:
// a plug with its own MAC (OpenBeken) and a lamp whose MAC is the Beken
// placeholder (Tasmota), identified by its backup.
func makeInventory(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data", "inventory.json")
	inv, err := inventory.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	add := func(mac flasher.MAC, dump, id, key, fw, ver string) {
		info := flasher.Info{Family: flasher.BK7231N, FlashID: [3]byte{0xEB, 0x60, 0x15}, FlashSize: 2 << 20, MAC: mac, MACFrom: "RF calibration sector"}
		sum := sha256.Sum256([]byte(dump))
		d, err := inv.RecordBackup(info, "/backups/"+id+".bin", backup.Sidecar{Family: "BK7231N", SHA256: hex.EncodeToString(sum[:]), Size: int64(len(dump))})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := inv.RecordTuyaConfig(d.Key, &tuyaconfig.Config{DeviceID: id, LocalKey: key, Module: "CB2S",
			UserParams: &tuyaconfig.UserParamKey{Raw: "{rl1_pin:26,rl1_lv:1,bt1_pin:10,bt1_lv:0,netled1_pin:6,netled1_lv:0,module:CB2S}"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := inv.RecordWrite(info, fw, ver, flasher.WriteResult{Addr: 0, Size: 1 << 20, Verified: true, VerifyMethod: "CRC32 on chip"}); err != nil {
			t.Fatal(err)
		}
	}
	add(flasher.MAC{0xD8, 0x1F, 0x12, 0xAA, 0xBB, 0xCC}, "plug dump", "bf7e3a2c1d0f9e8a7bxq1z", plugKey, "openbeken", "1.17.670")
	add(flasher.MAC{0xC8, 0x47, 0x8C, 0, 0, 0}, "lamp dump", "bfdeadbeef0123456789ab", "ffeeddccbbaa9988", "tasmota", "")
	if err := inv.Save(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestInventoryListing(t *testing.T) {
	t.Parallel()
	invPath := makeInventory(t)
	r := mustRun(t, t.TempDir(), "inventory", "--inventory", invPath)
	for _, want := range []string{"d81f12aabbcc/eb6015", "openbeken 1.17.670", "placeholder/eb6015/", "C8:47:8C:00:00:00 (placeholder)", "2 devices in"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("listing lacks %q:\n%s", want, r)
		}
	}
	if strings.Contains(r.stdout, plugKey) {
		t.Error("local key shown without --show-secrets")
	}
	r = mustRun(t, t.TempDir(), "inventory", "--inventory", invPath, "d8:1f:12:aa:bb:cc")
	if !strings.Contains(r.stdout, "local key "+inventory.Hidden) || !strings.Contains(r.stdout, "CRC32 on chip") {
		t.Errorf("details:\n%s", r)
	}
	r = mustRun(t, t.TempDir(), "inventory", "--inventory", invPath, "--show-secrets", "bf7e3a2c1d0f9e8a7bxq1z")
	if !strings.Contains(r.stdout, plugKey) {
		t.Errorf("--show-secrets hides the key:\n%s", r)
	}
	r = mustRun(t, t.TempDir(), "inventory", "--inventory", invPath, "--json")
	var out struct {
		Devices []inventory.Device `json:"devices"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Devices) != 2 || out.Devices[0].Tuya.LocalKey != "" || strings.Contains(r.stdout, plugKey) {
		t.Errorf("--json: %v\n%s", err, r)
	}
	if st, _ := os.Stat(invPath); st.Mode().Perm() != 0o600 {
		t.Errorf("inventory mode %v", st.Mode().Perm())
	}
	if r := run(t, t.TempDir(), "inventory", "--inventory", invPath, "02:00:00:00:00:09"); r.code != 1 || !strings.Contains(r.stderr, "not in the inventory") {
		t.Errorf("unknown device: %s", r)
	}
	empty := filepath.Join(t.TempDir(), "none.json")
	if r := mustRun(t, t.TempDir(), "inventory", "--inventory", empty); !strings.Contains(r.stdout, "No devices yet") {
		t.Errorf("empty: %s", r)
	}
}

func TestExportTinyTuya(t *testing.T) {
	t.Parallel()
	invPath := makeInventory(t)
	orig := readFile(t, filepath.Join("..", "export", "testdata", "devices_list.json"))
	dir := t.TempDir()
	devices := filepath.Join(dir, "devices.json")
	os.WriteFile(devices, orig, 0o644)
	snapOrig := readFile(t, filepath.Join("..", "export", "testdata", "snapshot.json"))
	snapshot := filepath.Join(dir, "snapshot.json")
	os.WriteFile(snapshot, snapOrig, 0o644)

	r := mustRun(t, dir, "export", "tinytuya", "--inventory", invPath, "--devices", devices, "--snapshot", snapshot)
	for _, want := range []string{"2 entries moved out of devices.json (list form)", "Kitchen Plug", "Desk Lamp", "2 entries moved out of snapshot.json (object form)", "kept as"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r)
		}
	}
	after := readFile(t, devices)
	if bytes.Contains(after, []byte("Kitchen Plug")) || !bytes.Contains(after, []byte("Hall Bulb")) || !bytes.Contains(after, []byte(`"\u5e26\u8ba1\u91cf"`)) && bytes.Contains(orig, []byte(`"\u5e26\u8ba1\u91cf"`)) {
		t.Errorf("devices.json after export:\n%s", after)
	}
	r = mustRun(t, dir, "export", "tinytuya", "--inventory", invPath, "--devices", devices, "--snapshot", snapshot)
	if !strings.Contains(r.stdout, "devices.json: nothing to change") || !bytes.Equal(readFile(t, devices), after) {
		t.Errorf("second run:\n%s", r)
	}
	r = mustRun(t, dir, "export", "tinytuya", "--devices", devices, "--snapshot", snapshot, "--undo", "--all", "--json")
	var res struct {
		Devices struct {
			Moved []any `json:"moved"`
		} `json:"devices"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || len(res.Devices.Moved) != 2 {
		t.Errorf("undo --json: %v\n%s", err, r)
	}
	if !bytes.Equal(readFile(t, devices), orig) || !bytes.Equal(readFile(t, snapshot), snapOrig) {
		t.Error("undo did not restore the files byte for byte")
	}

	os.WriteFile(devices, []byte("not json"), 0o644)
	if r := run(t, dir, "export", "tinytuya", "--inventory", invPath, "--devices", devices); r.code != 1 || !strings.Contains(r.stderr, "not a tinytuya device file") || !strings.Contains(r.stderr, "what to do:") {
		t.Errorf("garbage devices.json: %s", r)
	}
}

func TestExportHintsAndTemplates(t *testing.T) {
	t.Parallel()
	invPath := makeInventory(t)
	r := mustRun(t, t.TempDir(), "export", "homeassistant", "--inventory", invPath, "--mqtt-host", "broker.lan")
	for _, want := range []string{"scheduleHADiscovery 5", "MqttHost broker.lan", "Tasmota integration", "local_bf7e3a2c1d0f9e8a7bxq1z"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("hints lack %q:\n%s", want, r)
		}
	}
	out := filepath.Join(t.TempDir(), "templates")
	r = mustRun(t, t.TempDir(), "export", "templates", "--inventory", invPath, "-o", out, "d8:1f:12:aa:bb:cc")
	for _, f := range []string{"tuya-aabbcc.obk.txt", "tuya-aabbcc.obk.json", "tuya-aabbcc.esphome.yaml"} {
		if b, err := os.ReadFile(filepath.Join(out, f)); err != nil || len(b) == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(out, "tuya-aabbcc.obk.txt")); !bytes.Contains(b, []byte("SetPinRole 26 Rel")) {
		t.Errorf("OpenBeken template:\n%s", b)
	}
	if r := run(t, t.TempDir(), "export", "templates", "--inventory", invPath, "-o", out, "d8:1f:12:aa:bb:cc"); r.code != 4 {
		t.Errorf("templates overwrote existing files: %s", r)
	}
	for _, args := range [][]string{
		{"export"},
		{"export", "tinytuya"},
		{"export", "csv"},
		{"export", "templates", "--mqtt-host", "x"},
		{"export", "tinytuya", "--devices", "d.json", "--all"},
	} {
		if r := run(t, t.TempDir(), args...); r.code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage)\n%s", args, r.code, r)
		}
	}
}
