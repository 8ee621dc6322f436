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

// TestFirmwareList checks what the built-in catalogue offers each chip.
func TestFirmwareList(t *testing.T) {
	t.Parallel()
	cache := t.TempDir()
	r := mustRun(t, t.TempDir(), "firmware", "list", "--json", "--cache-dir", cache)
	var doc struct {
		Firmware []struct {
			Name, Chip, Format, URL string
			EfuseKey                string `json:"efuse_key"`
		} `json:"firmware"`
	}
	err := json.Unmarshal([]byte(r.stdout), &doc)
	rows := doc.Firmware
	if err != nil {
		t.Fatalf("list --json: %v\n%s", err, r)
	}
	want := map[string]string{ // name/chip/key → asset
		"openbeken/BK7231T/":     "OpenBK7231T_UA_",
		"openbeken/BK7231N/tuya": "OpenBK7231N_QIO_",
		"openbeken/BK7231N/zero": "OpenBK7231M_QIO_",
		"tasmota/ESP8266/":       "/tasmota.bin",
	}
	for _, row := range rows {
		if asset, ok := want[row.Name+"/"+row.Chip+"/"+row.EfuseKey]; ok {
			if !strings.Contains(row.URL, asset) {
				t.Errorf("%s %s: %s, want %s", row.Name, row.Chip, row.URL, asset)
			}
			delete(want, row.Name+"/"+row.Chip+"/"+row.EfuseKey)
		}
	}
	if len(want) > 0 {
		t.Errorf("missing from the catalogue: %v", want)
	}
	r = mustRun(t, t.TempDir(), "firmware", "list", "--chip", "bk7231n", "--efuse-key", "zero", "--cache-dir", cache)
	if !strings.Contains(r.stdout, "zero key") || strings.Contains(r.stdout, "tasmota") {
		t.Errorf("list for a zero-key BK7231N:\n%s", r)
	}
}

// TestFirmwareFetchPinVerifyOffline runs fetch and verify against a local
// release server through a catalogue given with --manifest.
func TestFirmwareFetchPinVerifyOffline(t *testing.T) {
	t.Parallel()
	qio := fwtest.Beken(fwtest.BootCRCN, 257, fwtest.App(fwtest.SigTuya, 0x8000, 1), 0x129F70)
	srv := releaseServer(t, "/1.0/OpenBK7231N_QIO_1.0.bin", qio)
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	manifest := func(sha string) string {
		return qioManifest(t, filepath.Join(dir, "m-"+sha[:min(len(sha), 4)]+".json"), srv.URL+"/1.0/OpenBK7231N_QIO_1.0.bin", "1.0", sha)
	}
	unpinned := manifest("")
	store := t.TempDir()
	r := mustRun(t, store, "firmware", "fetch", "obk", "--manifest", unpinned, "--cache-dir", cache)
	if !strings.Contains(r.stdout, "PINNED NOW") {
		t.Errorf("first fetch does not report the pin:\n%s", r)
	}
	r = mustRun(t, store, "firmware", "fetch", "obk", "--chip", "bk7231n", "--manifest", unpinned, "--cache-dir", cache)
	if !strings.Contains(r.stdout, "from the cache") || !strings.Contains(r.stdout, "matches the one pinned") {
		t.Errorf("second fetch:\n%s", r)
	}
	// A catalogue checksum the served file does not have: refused, and
	// nothing is kept.
	fresh := filepath.Join(dir, "fresh")
	expectFail(t, store, 4, []string{"sha256", "deleted"}, "firmware", "fetch", "obk", "--manifest", manifest(strings.Repeat("ab", 32)), "--cache-dir", fresh)
	if es, _ := os.ReadDir(fresh); len(es) != 0 {
		t.Errorf("the mismatching download was kept: %v", es)
	}
	srv.Close()
	r = mustRun(t, store, "firmware", "fetch", "obk", "--offline", "--manifest", unpinned, "--cache-dir", cache)
	if !strings.Contains(r.stdout, "from the cache") {
		t.Errorf("offline fetch:\n%s", r)
	}
	var cached string
	for _, l := range strings.Split(r.stdout, "\n") {
		if _, p, ok := strings.Cut(l, "bytes: "); ok {
			cached = p
		}
	}
	r = mustRun(t, store, "firmware", "verify", cached, "--chip", "bk7231n", "--efuse-key", "tuya", "--manifest", unpinned, "--cache-dir", cache)
	for _, want := range []string{"BK7231 bootloader + application image (QIO) for BK7231N", "obk 1.0 for BK7231N (checksum pinned", "at 0x011000-0x129F6F", "bootloader (0x000000-0x010FFF) is kept"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("verify lacks %q:\n%s", want, r)
		}
	}
	expectFail(t, store, 4, []string{"the chip has the zero key", "BK7231M"}, "firmware", "verify", cached, "--chip", "bk7231n", "--efuse-key", "zero", "--manifest", unpinned, "--cache-dir", cache)
	expectFail(t, store, 4, []string{"sha256"}, "firmware", "verify", cached, "--sha256", strings.Repeat("0", 64), "--cache-dir", cache)

}

// TestFirmwareVerifyRefusals checks the exit code and advice for files
// that must not be written over serial.
func TestFirmwareVerifyRefusals(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ug := append([]byte{0x55, 0xAA, 0x55, 0xAA}, make([]byte, 24)...)
	ug = append(append(ug, 0xAA, 0x55, 0xAA, 0x55), make([]byte, 100)...)
	for _, tc := range []struct {
		name  string
		data  []byte
		frags []string
	}{
		{"OpenBK7231N_UG_1.0.bin", ug, []string{"Tuya UG", "cloudcutter", "OpenBK7231N_QIO_"}},
		{"OpenBK7231N_1.0.rbl", append(fwtest.RBL(2, 1, "app", "1.0"), make([]byte, 100)...), []string{"RBL OTA", "web page"}},
		{"random.bin", fwtest.PRNG(4096, 3), []string{"does not know this file"}},
		{"tasmota.bin.gz", fwtest.Gzip(fwtest.ESPImage(3, 0x20, 1000)), []string{"wrong chip family", "ESP8266"}},
	} {
		p := filepath.Join(dir, tc.name)
		os.WriteFile(p, tc.data, 0o644)
		expectFail(t, t.TempDir(), 4, tc.frags, "firmware", "verify", p, "--chip", "bk7231n", "--cache-dir", filepath.Join(dir, "c"))
	}
}

// TestWriteFirmwareGates writes images through 'write --firmware' to the
// virtual devices: every refusal leaves the flash exactly as it was, and
// what is written never touches a BK7231T bootloader. It runs once the
// write command takes --firmware.
func TestWriteFirmwareGates(t *testing.T) {
	t.Parallel()
	help := mustRun(t, t.TempDir(), "write", "--help")
	if !strings.Contains(help.stdout, "--firmware") {
		t.Skip("write --firmware is not wired yet")
	}
	hasIB := strings.Contains(help.stdout, "--include-bootloader")
	dir := t.TempDir()
	file := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o644)
		return p
	}
	qioN := fwtest.Beken(fwtest.BootCRCN, 257, fwtest.App(fwtest.SigTuya, 0x8000, 1), 0x129F70)
	qioT := fwtest.Beken(fwtest.BootCRCT, 256, fwtest.App(fwtest.SigTuya, 0x8000, 2), 0x100000)
	nFile, tFile := file("OpenBK7231N_QIO_1.0.bin", qioN), file("OpenBK7231T_QIO_1.0.bin", qioT)
	ua := file("ua.bin", fwtest.App(fwtest.SigTuya, 0x4000, 3))
	esp := file("tasmota.bin", fwtest.ESPImage(3, 0x20, 2000))
	big := file("big.bin", append(append([]byte(nil), qioN...), make([]byte, 2<<20)...))
	refusals := []struct {
		name  string
		sim   []string
		args  []string
		frags []string
		ib    bool
	}{
		{"N image on a T", []string{"--chip", "bk7231t"}, []string{"--firmware", nFile}, []string{"wrong chip family"}, false},
		{"ESP image on an N", []string{"--chip", "bk7231n"}, []string{"--firmware", esp}, []string{"wrong chip family"}, false},
		{"Tuya-key app on a zero-key N", []string{"--chip", "bk7231n", "--zero-key"}, []string{"--firmware", ua}, []string{"eFuse key", "BK7231M"}, false},
		{"image larger than the flash", []string{"--chip", "bk7231n"}, []string{"--firmware", big}, []string{"larger than"}, false},
		{"T bootloader", []string{"--chip", "bk7231t"}, []string{"--firmware", tFile, "--include-bootloader"}, []string{"never written"}, true},
		{"N bootloader on a zero-key chip", []string{"--chip", "bk7231n", "--zero-key"}, []string{"--firmware", nFile, "--include-bootloader"}, []string{"--include-bootloader", "zero key"}, true},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			if tc.ib && !hasIB {
				t.Skip("write has no --include-bootloader yet")
			}
			s := startSim(t, append(tc.sim, "--save", filepath.Join(t.TempDir(), "after.bin"))...)
			store := t.TempDir()
			before := readFile(t, backupPath(t, mustRun(t, store, "backup", "--port", s.tty)))
			expectFail(t, store, 4, append(tc.frags, "refused"), append([]string{"write", "--port", s.tty}, tc.args...)...)
			s.stop(t)
			if !bytes.Equal(before, readFile(t, strings.TrimSpace(lastSaved(t, s)))) {
				t.Fatal("flash changed after a refused write")
			}
		})
	}
	for _, tc := range []struct {
		name string
		chip string
		file string
		img  []byte
	}{{"QIO on N keeps the bootloader", "bk7231n", nFile, qioN}, {"QIO on T skips the bootloader", "bk7231t", tFile, qioT}} {
		t.Run(tc.name, func(t *testing.T) {
			s := startSim(t, "--chip", tc.chip, "--save", filepath.Join(t.TempDir(), "after.bin"))
			store := t.TempDir()
			before := readFile(t, backupPath(t, mustRun(t, store, "backup", "--port", s.tty)))
			mustRun(t, store, "write", "--port", s.tty, "--firmware", tc.file, "--no-reboot")
			s.stop(t)
			after := readFile(t, strings.TrimSpace(lastSaved(t, s)))
			if !bytes.Equal(after[:0x11000], before[:0x11000]) {
				t.Error("the bootloader area changed")
			}
			if !bytes.Equal(after[0x11000:len(tc.img)], tc.img[0x11000:]) {
				t.Error("the application area does not hold the image from 0x11000")
			}
			if !bytes.Equal(after[len(tc.img):], before[len(tc.img):]) {
				t.Error("flash beyond the image changed")
			}
		})
	}
}
