package inventory

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/backup"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/inventory/atomicfile"
	"github.com/tuyaflash/tuyaflash/postflash"
	"github.com/tuyaflash/tuyaflash/tuyaconfig"
)

var flashEB6015 = [3]byte{0xEB, 0x60, 0x15}

func chip(mac string, flash [3]byte) flasher.Info {
	i := flasher.Info{Family: flasher.BK7231N, FlashID: flash, FlashSize: 2 << 20, Baud: 921600}
	if mac != "" {
		m, err := flasher.ParseMAC(mac)
		if err != nil {
			panic(err)
		}
		i.MAC, i.MACFrom = m, "RF calibration sector at 0x1D0000"
	}
	return i
}

func sidecar(content string) backup.Sidecar {
	sum := sha256.Sum256([]byte(content))
	return backup.Sidecar{Format: backup.FormatV1, Family: "BK7231N", SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content)), Date: "2026-05-01T10:00:00Z"}
}

func open(t *testing.T, path string) *Inventory {
	t.Helper()
	inv, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func TestKeyByMACAndFlashID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.json")
	inv := open(t, path)
	d, ok := inv.RecordDetect(chip("C8:47:8C:1A:2B:3C", flashEB6015))
	if !ok || d.Key != "c8478c1a2b3c/eb6015" || d.MAC != "C8:47:8C:1A:2B:3C" || d.MACPlaceholder != "" {
		t.Fatalf("detect: ok=%v %+v", ok, d)
	}
	// The same MAC written as tinytuya does, and another flash chip.
	other, _ := inv.RecordDetect(chip("c8-47-8c-1a-2b-3c", [3]byte{0x85, 0x40, 0x15}))
	noID, _ := inv.RecordDetect(chip("c8478c1a2b3c", [3]byte{}))
	if other.Key != "c8478c1a2b3c/854015" || noID.Key != "c8478c1a2b3c/noid" {
		t.Errorf("keys %q %q", other.Key, noID.Key)
	}
	if n := len(inv.Devices()); n != 3 {
		t.Errorf("%d records, want 3 (MAC plus flash id)", n)
	}
	again, _ := inv.RecordDetect(chip("C8:47:8C:1A:2B:3C", flashEB6015))
	if again.Key != d.Key || len(inv.Devices()) != 3 {
		t.Errorf("second detect of the same chip made a new record")
	}
}

func TestPlaceholderMACsNeverKeyAlone(t *testing.T) {
	cases := []struct {
		name, mac, why string
	}{
		{"all zero", "00:00:00:00:00:00", "all zero"},
		{"Beken default", "C8:47:8C:00:00:00", "Beken default"},
		{"Espressif", "18:FE:34:00:00:00", "Espressif placeholder"},
		{"erased", "FF:FF:FF:FF:FF:FF", "all ones"},
		{"not read", "", "not read"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "inventory.json")
			inv := open(t, path)
			info := chip(c.mac, flashEB6015)
			if _, ok := inv.RecordDetect(info); ok {
				t.Fatal("a placeholder MAC was used as a key at detect")
			}
			if _, err := inv.RecordWrite(info, "openbeken", "1.17.670", flasher.WriteResult{}); !errors.Is(err, ErrUnidentified) || flasher.Hint(err) == "" {
				t.Fatalf("write before any backup: %v (hint %q)", err, flasher.Hint(err))
			}
			s1 := sidecar("stock dump of board 1")
			d, err := inv.RecordBackup(info, "/b/one.bin", s1)
			if err != nil {
				t.Fatal(err)
			}
			want := "placeholder/eb6015/" + s1.SHA256[:12]
			if d.Key != want || !strings.Contains(d.MACPlaceholder, c.why) {
				t.Fatalf("key %q placeholder %q, want %q and %q", d.Key, d.MACPlaceholder, want, c.why)
			}
			// The same chip later in the session: write lands on it.
			w, err := inv.RecordWrite(info, "openbeken", "1.17.670", flasher.WriteResult{Size: 4096, Verified: true})
			if err != nil || w.Key != want || w.Firmware != "openbeken" {
				t.Fatalf("write: %v %+v", err, w)
			}
			if err := inv.Save(); err != nil {
				t.Fatal(err)
			}
			// Another board of the same model, same placeholder: its own record.
			inv2 := open(t, path)
			if _, err := inv2.RecordWrite(info, "tasmota", "", flasher.WriteResult{}); !errors.Is(err, ErrUnidentified) {
				t.Fatalf("a new session wrote to a placeholder device without its backup: %v", err)
			}
			s2 := sidecar("stock dump of board 2")
			d2, _ := inv2.RecordBackup(info, "/b/two.bin", s2)
			if d2.Key == want {
				t.Fatal("two boards sharing a placeholder MAC got one record")
			}
			// Board 1's stock dump seen again (restored to stock, backed up
			// again): recognised by its SHA-256.
			inv3 := open(t, path)
			d3, _ := inv3.RecordBackup(info, "/b/one-again.bin", s1)
			if d3.Key != want || len(d3.Backups) != 2 {
				t.Fatalf("same dump again: key %q, %d backups", d3.Key, len(d3.Backups))
			}
		})
	}
}

func TestFileModeAndRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "inventory.json")
	inv := open(t, path)
	info := chip("D8:1F:12:AA:BB:CC", flashEB6015)
	d, _ := inv.RecordBackup(info, "/b/stock.bin", sidecar("stock"))
	cfg := &tuyaconfig.Config{DeviceID: "bf1234567890abcdefgh", LocalKey: "0123456789abcdef", Module: "CB2S", Chip: "BK7231N",
		UserParams: &tuyaconfig.UserParamKey{Raw: "{rl1_pin:6,rl1_lv:1}"}}
	if _, err := inv.RecordTuyaConfig(d.Key, cfg); err != nil {
		t.Fatal(err)
	}
	if err := inv.Save(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("inventory mode %v, want 0600 (it holds local keys)", st.Mode().Perm())
	}
	if dst, _ := os.Stat(dir); dst.Mode().Perm() != 0o700 {
		t.Errorf("data folder mode %v, want 0700", dst.Mode().Perm())
	}
	got := open(t, path).Devices()
	if len(got) != 1 || got[0].Tuya == nil || got[0].Tuya.LocalKey != "0123456789abcdef" || got[0].Tuya.PinMap != "{rl1_pin:6,rl1_lv:1}" {
		t.Fatalf("reloaded: %+v", got)
	}
	if got[0].Tuya.FromBackup != sidecar("stock").SHA256 {
		t.Errorf("config not tied to the backup it came from")
	}
	red := got[0].Redacted()
	if red.Tuya.LocalKey != Hidden || got[0].Tuya.LocalKey == Hidden {
		t.Errorf("Redacted: %q (original %q)", red.Tuya.LocalKey, got[0].Tuya.LocalKey)
	}
	// An unpaired config later must not erase the device id and key.
	inv2 := open(t, path)
	inv2.RecordTuyaConfig(d.Key, &tuyaconfig.Config{Module: "CB2S"})
	if dd := inv2.Find(d.Key)[0]; dd.Tuya.DeviceID != "bf1234567890abcdefgh" || dd.Tuya.LocalKey == "" {
		t.Errorf("empty config erased identity: %+v", dd.Tuya)
	}
	if _, err := inv2.RecordTuyaConfig("nope/eb6015", cfg); !errors.Is(err, ErrUnknownDevice) {
		t.Errorf("config for unknown key: %v", err)
	}
	// No stray temporary or lock-holder files besides the lock file.
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func TestFindAndVerify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.json")
	inv := open(t, path)
	info := chip("D8:1F:12:AA:BB:CC", flashEB6015)
	d, _ := inv.RecordBackup(info, "/b/stock.bin", sidecar("stock"))
	inv.RecordTuyaConfig(d.Key, &tuyaconfig.Config{DeviceID: "bf00112233445566aabb"})
	for _, q := range []string{d.Key, "d8:1f:12:aa:bb:cc", "d81f12aabbcc", "bf00112233445566aabb", "/b/stock.bin", sidecar("stock").SHA256[:12]} {
		if got := inv.Find(q); len(got) != 1 || got[0].Key != d.Key {
			t.Errorf("Find(%q) = %d records", q, len(got))
		}
	}
	if got := inv.Find("00:00:00:00:00:01"); len(got) != 0 {
		t.Errorf("Find of another MAC matched %d", len(got))
	}

	// A failed check: recorded, but the address is not taken over.
	bad := &postflash.Result{Host: "192.168.1.77", Firmware: postflash.OpenBeken, MAC: "11:22:33:44:55:66", IP: "192.168.1.77"}
	v, err := inv.RecordVerify("D8:1F:12:AA:BB:CC", bad, errors.New("a different device answered"))
	if err != nil || v.LastVerify == nil || v.LastVerify.OK || v.LastVerify.Problem != "a different device answered" || v.IP != "" {
		t.Fatalf("failed verify: %v %+v", err, v)
	}
	good := &postflash.Result{Host: "192.168.1.50", Firmware: postflash.OpenBeken, Version: "1.17.670", MAC: "D8:1F:12:AA:BB:CC", IP: "192.168.1.50", Hostname: "obk-plug"}
	v, err = inv.RecordVerify("", good, nil)
	if err != nil || !v.LastVerify.OK || v.IP != "192.168.1.50" || v.Hostname != "obk-plug" {
		t.Fatalf("good verify: %v %+v", err, v)
	}
	// Found again by its address when no MAC is given or reported.
	v, err = inv.RecordVerify("", &postflash.Result{Host: "192.168.1.50", Firmware: postflash.OpenBeken}, nil)
	if err != nil || v.Key != d.Key {
		t.Fatalf("verify by IP: %v %q", err, v.Key)
	}
	// A web server with a port (a virtual device): the address keeps it,
	// and finds the record again.
	withPort := &postflash.Result{Host: "127.84.3.4:40001", Firmware: postflash.OpenBeken, MAC: "D8:1F:12:AA:BB:CC", IP: "127.84.3.4"}
	if v, err = inv.RecordVerify("", withPort, nil); err != nil || v.IP != "127.84.3.4:40001" {
		t.Fatalf("verify on a port: %v %q", err, v.IP)
	}
	if v, err = inv.RecordVerify("", &postflash.Result{Host: "127.84.3.4:40001", Firmware: postflash.OpenBeken}, nil); err != nil || v.Key != d.Key {
		t.Fatalf("verify by address and port: %v %q", err, v.Key)
	}
	if _, err := inv.RecordVerify("AA:AA:AA:AA:AA:AA", &postflash.Result{Host: "10.0.0.9"}, nil); !errors.Is(err, ErrUnknownDevice) {
		t.Errorf("unknown device: %v", err)
	}
	if fw, ver := inv.Find(d.Key)[0].CurrentFirmware(); fw != "openbeken" || ver != "" {
		// the last OK verify reported no version
		t.Errorf("current firmware %q %q", fw, ver)
	}
}

func TestDamagedInventoryIsNeverOverwritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.json")
	inv := open(t, path) // opened while absent
	inv.RecordDetect(chip("D8:1F:12:AA:BB:CC", flashEB6015))
	garbage := []byte(`{"format":"tuyaflash-inventory/1","devices":[{"key":`)
	if err := os.WriteFile(path, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	err := inv.Save()
	if !errors.Is(err, ErrDamaged) || !strings.Contains(flasher.Hint(err), "move it aside") {
		t.Fatalf("save over damaged file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != string(garbage) {
		t.Fatal("damaged inventory was overwritten")
	}
	if _, err := Open(path); !errors.Is(err, ErrDamaged) {
		t.Errorf("open damaged: %v", err)
	}
	os.WriteFile(path, []byte(`{"format":"tuyaflash-inventory/9","devices":[]}`), 0o600)
	if _, err := Open(path); !errors.Is(err, ErrNewerFormat) {
		t.Errorf("open newer: %v", err)
	}
}

// TestConcurrentSessions: sessions opened on the same file before any of
// them saved each keep their changes.
func TestConcurrentSessions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.json")
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		inv := open(t, path)
		wg.Add(1)
		go func() {
			defer wg.Done()
			info := chip(fmt.Sprintf("D8:1F:12:00:00:%02X", i+1), flashEB6015)
			inv.RecordDetect(info)
			errs <- inv.Save()
			inv.RecordWrite(info, "openbeken", "1.17.670", flasher.WriteResult{})
			errs <- inv.Save()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	devs := open(t, path).Devices()
	if len(devs) != n {
		t.Fatalf("%d records after %d concurrent sessions", len(devs), n)
	}
	for _, d := range devs {
		if d.Firmware != "openbeken" || len(d.Writes) != 1 {
			t.Errorf("%s lost its write: %+v", d.Key, d.Writes)
		}
	}
}

// TestConcurrentProcesses runs several copies of the test binary that all
// update the same inventory.
func TestConcurrentProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := filepath.Join(t.TempDir(), "inventory.json")
	const procs, rounds = 3, 4
	var cmds []*exec.Cmd
	for p := range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$")
		cmd.Env = append(os.Environ(), "TUYAFLASH_INV_HELPER="+path, fmt.Sprintf("TUYAFLASH_INV_PROC=%d", p), fmt.Sprintf("TUYAFLASH_INV_ROUNDS=%d", rounds))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("writer process: %v", err)
		}
	}
	devs := open(t, path).Devices()
	if len(devs) != procs*rounds {
		t.Fatalf("%d records, want %d: updates were lost", len(devs), procs*rounds)
	}
}

func TestHelperWriter(t *testing.T) {
	path := os.Getenv("TUYAFLASH_INV_HELPER")
	if path == "" {
		t.Skip("helper for TestConcurrentProcesses")
	}
	var p, rounds int
	fmt.Sscan(os.Getenv("TUYAFLASH_INV_PROC"), &p)
	fmt.Sscan(os.Getenv("TUYAFLASH_INV_ROUNDS"), &rounds)
	for r := range rounds {
		inv := open(t, path)
		inv.RecordDetect(chip(fmt.Sprintf("D8:1F:12:00:%02X:%02X", p+1, r+1), flashEB6015))
		if err := inv.Save(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSaveWaitsForLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.json")
	old := LockWait
	LockWait = 50 * time.Millisecond
	defer func() { LockWait = old }()
	holder := open(t, path)
	holder.RecordDetect(chip("D8:1F:12:AA:BB:01", flashEB6015))
	// Hold the lock as another process would during its Save.
	unlock, err := atomicfile.Lock(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	err = holder.Save()
	unlock()
	if err == nil || !strings.Contains(err.Error(), "another tuyaflash process") {
		t.Fatalf("save while locked: %v", err)
	}
	if !holder.Pending() {
		t.Fatal("changes dropped after a failed save")
	}
	if err := holder.Save(); err != nil {
		t.Fatal(err)
	}
}

func TestDefaultPath(t *testing.T) {
	home, _ := os.UserHomeDir()
	cases := []struct{ data, xdg, want string }{
		{"/d", "/x", "/d/inventory.json"},
		{"", "/x", "/x/tuyaflash/inventory.json"},
		{"", "", filepath.Join(home, ".local/share/tuyaflash/inventory.json")},
	}
	for _, c := range cases {
		t.Setenv("TUYAFLASH_DATA_DIR", c.data)
		t.Setenv("XDG_DATA_HOME", c.xdg)
		if got, err := DefaultPath(); err != nil || got != c.want {
			t.Errorf("DefaultPath(%q,%q) = %q, %v; want %q", c.data, c.xdg, got, err, c.want)
		}
	}
}

func TestGuessFirmware(t *testing.T) {
	cases := []struct{ name, fw, ver string }{
		{"OpenBK7231N_QIO_1.17.670.bin", "openbeken", "1.17.670"},
		{"/tmp/OpenBK7231T_UA_1.18.207.bin", "openbeken", "1.18.207"},
		{"OpenBK7231N_1.17.670.rbl", "openbeken", "1.17.670"},
		{"OpenBK7231N_QIO_1.17.670_berry.bin", "openbeken", "1.17.670"},
		{"OpenBK7231T_Tuya_UA_1.17.427.bin", "openbeken", "1.17.427"},
		{"tasmota.bin", "tasmota", ""},
		{"tasmota-lite.bin.gz", "tasmota", ""},
		{"tasmota32.factory.bin", "tasmota", ""},
		{"esphome-kickstart-bk7231n.uf2", "esphome", ""},
		{"plug.bin", "", ""},
	}
	for _, c := range cases {
		if fw, ver := GuessFirmware(c.name); fw != c.fw || ver != c.ver {
			t.Errorf("GuessFirmware(%q) = %q %q, want %q %q", c.name, fw, ver, c.fw, c.ver)
		}
	}
}

func TestInfoFromSidecar(t *testing.T) {
	s := backup.Sidecar{Family: "BK7231T", FlashID: "EB6015", FlashSize: 2 << 20, MAC: "C8:47:8C:00:00:00", ChipID: "0x7231C", SHA256: sidecar("x").SHA256}
	i := InfoFromSidecar(s)
	if i.Family != flasher.BK7231T || i.FlashIDString() != "EB6015" || !i.HasMAC() || i.ChipID != 0x7231C {
		t.Fatalf("%+v", i)
	}
	inv := open(t, filepath.Join(t.TempDir(), "i.json"))
	d, err := inv.RecordBackup(flasher.Info{}, "/b/x.bin", s)
	if err != nil || !strings.HasPrefix(d.Key, "placeholder/eb6015/") || d.Family != "BK7231T" {
		t.Fatalf("backup from sidecar alone: %v %+v", err, d)
	}
	if _, err := inv.RecordBackup(flasher.Info{}, "/b/y.bin", backup.Sidecar{}); err == nil {
		t.Error("a sidecar without SHA-256 was accepted")
	}
}

func TestJSONShape(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.json")
	inv := open(t, path)
	inv.RecordDetect(chip("D8:1F:12:AA:BB:CC", flashEB6015))
	if err := inv.Save(); err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	devs := raw["devices"].([]any)
	d := devs[0].(map[string]any)
	if raw["format"] != FormatV1 || d["key"] != "d81f12aabbcc/eb6015" || d["flash_id"] != "0xEB6015" || d["family"] != "BK7231N" {
		t.Errorf("file: %s", b)
	}
}

func TestForget(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.json")
	inv := open(t, path)
	inv.RecordDetect(chip("D8:1F:12:AA:BB:CC", flashEB6015))
	inv.RecordDetect(chip("D8:1F:12:AA:BB:CC", [3]byte{0x85, 0x40, 0x15}))
	inv.RecordDetect(chip("10:D5:61:00:00:01", flashEB6015))
	if err := inv.Save(); err != nil {
		t.Fatal(err)
	}
	inv = open(t, path)
	if _, err := inv.Forget("d8:1f:12:aa:bb:cc"); !errors.Is(err, ErrAmbiguous) || !strings.Contains(err.Error(), "d81f12aabbcc/eb6015") {
		t.Errorf("a MAC of two records: %v", err)
	}
	if _, err := inv.Forget("02:00:00:00:00:09"); !errors.Is(err, ErrUnknownDevice) {
		t.Errorf("unknown: %v", err)
	}
	d, err := inv.Forget("10:d5:61:00:00:01")
	if err != nil || d.Key != "10d561000001/eb6015" {
		t.Fatalf("forget by MAC: %+v %v", d, err)
	}
	if _, err := inv.Forget("d81f12aabbcc/854015"); err != nil {
		t.Fatal(err)
	}
	if err := inv.Save(); err != nil {
		t.Fatal(err)
	}
	left := open(t, path).Devices()
	if len(left) != 1 || left[0].Key != "d81f12aabbcc/eb6015" {
		t.Errorf("left: %+v", left)
	}
}

func TestMarkVirtual(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.json")
	inv := open(t, path)
	d, _ := inv.RecordDetect(chip("02:42:4B:72:31:01", flashEB6015))
	inv.MarkVirtual(d.Key)
	inv.MarkVirtual("not/a/key")
	if err := inv.Save(); err != nil {
		t.Fatal(err)
	}
	devs := open(t, path).Devices()
	if len(devs) != 1 || !devs[0].Virtual {
		t.Errorf("%+v", devs)
	}
}

// TestAddressesReadInBothForms: files written before addresses became
// "0x…" strings are read too.
func TestAddressesReadInBothForms(t *testing.T) {
	old := `{"format": "tuyaflash-inventory/1", "devices": [{"key": "k", "family": "BK7231N", "flash_id": "EB6015",
	  "backups": [{"path": "/b.bin", "sha256": "00", "size": 1, "offset": 69632, "date": "2026-05-01T10:00:00Z"}],
	  "writes": [{"date": "2026-05-01T10:00:00Z", "firmware": "x", "addr": 69632, "size": 1, "verified": true}],
	  "first_seen": "2026-05-01T10:00:00Z", "last_seen": "2026-05-01T10:00:00Z"}]}`
	path := filepath.Join(t.TempDir(), "inventory.json")
	os.WriteFile(path, []byte(old), 0o600)
	d := open(t, path).Devices()[0]
	if d.FlashID != "EB6015" || d.Backups[0].Offset != 0x11000 || d.Writes[0].Addr != 0x11000 {
		t.Fatalf("%+v", d)
	}
	b, _ := json.Marshal(d)
	for _, want := range []string{`"flash_id":"0xEB6015"`, `"offset":"0x011000"`, `"addr":"0x011000"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
	var back Device
	if err := json.Unmarshal(b, &back); err != nil || back.FlashID != "EB6015" || back.Backups[0].Offset != 0x11000 || back.Writes[0].Addr != 0x11000 {
		t.Errorf("round trip: %+v %v", back, err)
	}
}

// TestDetectWithoutFlashIsNotRecorded: an identification the flash did not
// answer (no id, no size) records nothing, so a device detected during a
// brown-out does not appear twice (found by the fault campaign: a reset
// while an ESP8266 was identified added a second record, key …/noid).
func TestDetectWithoutFlashIsNotRecorded(t *testing.T) {
	inv := open(t, filepath.Join(t.TempDir(), "inventory.json"))
	if _, ok := inv.RecordDetect(chip("C8:47:8C:1A:2B:3C", flashEB6015)); !ok {
		t.Fatal("a complete identification was not recorded")
	}
	half := chip("C8:47:8C:1A:2B:3C", [3]byte{})
	half.FlashSize = 0
	if d, ok := inv.RecordDetect(half); ok {
		t.Errorf("recorded %+v", d)
	}
	if n := len(inv.Devices()); n != 1 {
		t.Errorf("%d devices, want 1", n)
	}
}

// TestFlashIDMissedOnce: a chip identified once without its flash id (a
// reset or a lost reply in the middle of the identification; the fault
// campaign found it on an ESP8285, whose eFuses still give the size) stays
// one device, whichever of its two identifications came first and whether
// or not the session is saved between them — but a chip of another family
// on the same MAC stays apart.
func TestFlashIDMissedOnce(t *testing.T) {
	const mac = "DC:4F:22:6B:21:9E"
	withID := chip(mac, [3]byte{0xC8, 0x40, 0x14})
	withID.Family = flasher.ESP8285
	noID := withID
	noID.FlashID = [3]byte{}
	other := chip(mac, [3]byte{}) // a BK7231N without id on the same MAC
	for _, tc := range []struct {
		name  string
		order []flasher.Info
		save  bool
		want  []string
	}{
		{"id, then none", []flasher.Info{withID, noID}, false, []string{"dc4f226b219e/c84014"}},
		{"none, then id", []flasher.Info{noID, withID}, false, []string{"dc4f226b219e/c84014"}},
		{"none, saved, then id", []flasher.Info{noID, withID}, true, []string{"dc4f226b219e/c84014"}},
		{"id, saved, then none", []flasher.Info{withID, noID}, true, []string{"dc4f226b219e/c84014"}},
		{"another family stays apart", []flasher.Info{withID, other}, false, []string{"dc4f226b219e/c84014", "dc4f226b219e/noid"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "inventory.json")
			inv := open(t, path)
			for i, info := range tc.order {
				sha := strings.Repeat(fmt.Sprint(i+1), 64)
				if _, err := inv.RecordBackup(info, fmt.Sprintf("/b/%d.bin", i), backup.Sidecar{SHA256: sha, Size: 1 << 20}); err != nil {
					t.Fatal(err)
				}
				if tc.save {
					if err := inv.Save(); err != nil {
						t.Fatal(err)
					}
					inv = open(t, path)
				}
			}
			if err := inv.Save(); err != nil {
				t.Fatal(err)
			}
			var keys []string
			backups := 0
			for _, d := range open(t, path).Devices() {
				keys = append(keys, d.Key)
				backups += len(d.Backups)
			}
			slices.Sort(keys)
			if !slices.Equal(keys, tc.want) || backups != len(tc.order) {
				t.Errorf("devices %v with %d backups, want %v with %d", keys, backups, tc.want, len(tc.order))
			}
		})
	}
}
