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

var chips = []struct {
	name, family, flashID string
}{
	{"bk7231n", "BK7231N", "EB6015"},
	{"bk7231t", "BK7231T", ""},
}

func TestDetectOverPTY(t *testing.T) {
	t.Parallel()
	for _, c := range chips {
		t.Run(c.name, func(t *testing.T) {
			s := startSim(t, "--chip", c.name, "--flash-id", "1C7015")
			r := mustRun(t, t.TempDir(), "detect", "--port", s.tty, "--json")
			var doc struct {
				Chip struct {
					Family    string `json:"family"`
					FlashID   string `json:"flash_id"`
					FlashSize int    `json:"flash_size"`
					MAC       string `json:"mac"`
					Baud      int    `json:"baud"`
				} `json:"chip"`
			}
			err := json.Unmarshal([]byte(r.stdout), &doc)
			info := doc.Chip
			if err != nil {
				t.Fatalf("detect --json: %v\n%s", err, r)
			}
			if info.Family != c.family || info.FlashSize != 2<<20 || info.MAC == "" || info.Baud != 921600 {
				t.Errorf("detect = %+v", info)
			}
			// Only the BootROM of the N answers the flash id.
			wantID := ""
			if c.name == "bk7231n" {
				wantID = "0x1C7015"
			}
			if info.FlashID != wantID {
				t.Errorf("flash id %q, want %q", info.FlashID, wantID)
			}
			if !strings.Contains(r.stderr, "power-cycle the module now") {
				t.Errorf("no power-cycle prompt on stderr:\n%s", r.stderr)
			}
			text := mustRun(t, t.TempDir(), "detect", "--port", s.tty)
			if !strings.Contains(text.stdout, "Chip:        "+c.family) {
				t.Errorf("detect text does not name the chip:\n%s", text)
			}
		})
	}
}

// TestBackupOfRealDumpIsIdentical loads real stock dumps into the simulator
// and backs them up over the pty.
func TestBackupOfRealDumpIsIdentical(t *testing.T) {
	t.Parallel()
	dir := sharedDumps(t)
	for _, tc := range []struct{ chip, file string }{
		{"bk7231t", "Feit_SYW-BR30-RGBW-CA-AG_Bulb.bin"},
		{"bk7231n", "MOES_WK-US2-TC_In-Wall_Outlet.bin"},
	} {
		t.Run(tc.chip, func(t *testing.T) {
			dump := filepath.Join(dir, tc.file)
			s := startSim(t, "--chip", tc.chip, "--flash", dump)
			store := t.TempDir()
			r := mustRun(t, store, "backup", "--port", s.tty)
			got := readFile(t, backupPath(t, r))
			if sha(got) != sha(readFile(t, dump)) {
				t.Fatalf("backup sha256 %s differs from the dump's %s", sha(got), sha(readFile(t, dump)))
			}
			st, _ := os.Stat(backupPath(t, r))
			if st.Mode().Perm() != 0o600 {
				t.Errorf("backup mode %v, want 0600", st.Mode().Perm())
			}
			var sc map[string]any
			if err := json.Unmarshal(readFile(t, backupPath(t, r)+".json"), &sc); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"family", "flash_size", "mac", "sha256", "crc32", "date", "tool_version", "protocol", "bootloader"} {
				if sc[k] == nil || sc[k] == "" {
					t.Errorf("sidecar lacks %s: %v", k, sc)
				}
			}
			if sc["sha256"] != sha(got) {
				t.Errorf("sidecar sha256 %v, file %s", sc["sha256"], sha(got))
			}
		})
	}
}

// TestWriteRestoreRoundTrip: back up, write an image, read back, restore,
// read back again — for both chips; the T bootloader never changes.
func TestWriteRestoreRoundTrip(t *testing.T) {
	t.Parallel()
	for _, c := range chips {
		t.Run(c.name, func(t *testing.T) {
			s := startSim(t, "--chip", c.name)
			store := t.TempDir()
			orig := readFile(t, backupPath(t, mustRun(t, store, "backup", "--port", s.tty)))

			img := fwtest.App(fwtest.SigTuya, 300000, 7) // an OpenBeken-like UA app
			imgFile := filepath.Join(t.TempDir(), "app.bin")
			os.WriteFile(imgFile, img, 0o644)
			w := mustRun(t, store, "write", "--port", s.tty, "--addr", "0x11000", imgFile)
			if !strings.Contains(w.stdout, "verified by CRC32 on chip") {
				t.Errorf("write output:\n%s", w)
			}
			after := readFile(t, backupPath(t, mustRun(t, store, "backup", "--port", s.tty)))
			if !bytes.Equal(after[0x11000:0x11000+len(img)], img) {
				t.Fatal("read back after write differs from the image")
			}
			if !bytes.Equal(after[:0x11000], orig[:0x11000]) {
				t.Fatal("bootloader area changed by a write at 0x11000")
			}
			if !bytes.Equal(after[0x11000+len(img):], orig[0x11000+len(img):]) {
				t.Fatal("flash after the image changed")
			}

			// Restore the first backup and read everything back.
			first := firstBackup(t, store)
			mustRun(t, store, "restore", "--port", s.tty, first)
			restored := readFile(t, backupPath(t, mustRun(t, store, "backup", "--port", s.tty)))
			if !bytes.Equal(restored, orig) {
				t.Fatal("restore did not bring back the original flash")
			}
		})
	}
}

// firstBackup is the oldest dump in the store.
func firstBackup(t *testing.T, store string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(store, "*", "*.bin"))
	if len(m) == 0 {
		t.Fatal("no backups in the store")
	}
	oldest := m[0]
	for _, p := range m {
		a, _ := os.Stat(p)
		b, _ := os.Stat(oldest)
		if a.ModTime().Before(b.ModTime()) {
			oldest = p
		}
	}
	return oldest
}

// TestRestoreOnTKeepsBootloader restores a backup whose bootloader area
// differs from the chip's: the T bootloader must stay as it is.
func TestRestoreOnTKeepsBootloader(t *testing.T) {
	t.Parallel()
	s := startSim(t, "--chip", "bk7231t")
	store := t.TempDir()
	p := backupPath(t, mustRun(t, store, "backup", "--port", s.tty))
	orig := readFile(t, p)
	// A doctored copy with its sidecar updated to match: bootloader and
	// app bytes changed.
	doctored := append([]byte(nil), orig...)
	for i := 0; i < 0x20000; i++ {
		doctored[i] ^= 0x5A
	}
	dp := filepath.Join(t.TempDir(), "doctored.bin")
	os.WriteFile(dp, doctored, 0o600)
	var sc map[string]any
	json.Unmarshal(readFile(t, p+".json"), &sc)
	sc["sha256"] = sha(doctored)
	meta, _ := json.Marshal(sc)
	os.WriteFile(dp+".json", meta, 0o600)

	r := mustRun(t, store, "restore", "--port", s.tty, dp)
	if !strings.Contains(r.stderr, "bootloader (0x000000-0x010FFF) is kept") {
		t.Errorf("restore did not say the bootloader is kept:\n%s", r)
	}
	after := readFile(t, backupPath(t, mustRun(t, store, "backup", "--port", s.tty)))
	if !bytes.Equal(after[:0x11000], orig[:0x11000]) {
		t.Fatal("T bootloader changed by restore")
	}
	if !bytes.Equal(after[0x11000:], doctored[0x11000:]) {
		t.Fatal("restore did not write the app area")
	}
}

// TestInventoryRecordsTheBenchSession: detect, backup of a stock dump and
// a write leave one record for the device, keyed by MAC and flash id, with
// the backup, the Tuya identity (keys hidden) and the firmware written. The
// simulator said it is one (contract C2): the record is a virtual device's.
func TestInventoryRecordsTheBenchSession(t *testing.T) {
	t.Parallel()
	dump := filepath.Join(sharedDumps(t), "MOES_WK-US2-TC_In-Wall_Outlet.bin")
	s := startSim(t, "--chip", "bk7231n", "--flash", dump)
	store := t.TempDir()
	mustRun(t, store, "detect", "--port", s.tty)
	bp := backupPath(t, mustRun(t, store, "backup", "--port", s.tty))
	app := filepath.Join(t.TempDir(), "OpenBK7231N_UA_1.18.1.bin")
	os.WriteFile(app, fwtest.App(fwtest.SigTuya, 0x20000, 4), 0o644)
	mustRun(t, store, "write", "--port", s.tty, app)
	r := mustRun(t, store, "inventory", "--json")
	var inv struct {
		Devices        []json.RawMessage
		VirtualDevices []struct {
			Key, Family, Firmware string
			Version               string `json:"firmware_version"`
			Backups               []struct{ Path, SHA256 string }
			Tuya                  *struct {
				DeviceID string `json:"device_id"`
				LocalKey string `json:"local_key"`
			}
		} `json:"virtual_devices"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &inv); err != nil {
		t.Fatalf("%v\n%s", err, r)
	}
	devs := inv.VirtualDevices
	if len(devs) != 1 || len(inv.Devices) != 0 {
		t.Fatalf("%d virtual and %d real records, want 1 virtual:\n%s", len(devs), len(inv.Devices), r.stdout)
	}
	d := devs[0]
	if d.Key != "1c90ff5b226b/eb6015" || d.Family != "BK7231N" || d.Firmware != "openbeken" || d.Version != "1.18.1" {
		t.Errorf("record %+v", d)
	}
	if len(d.Backups) != 1 || d.Backups[0].Path != bp {
		t.Errorf("backups %+v, want %s", d.Backups, bp)
	}
	if d.Tuya == nil || d.Tuya.DeviceID == "" || d.Tuya.LocalKey != "" {
		t.Errorf("Tuya identity %+v (the local key must be hidden without --show-secrets)", d.Tuya)
	}
}
