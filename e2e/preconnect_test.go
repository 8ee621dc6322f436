//go:build linux

package e2e

import (
	"encoding/json"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/firmware/fwtest"
	"github.com/tuyaflash/tuyaflash/transport"
)

// TestChecksBeforeThePowerCycle: everything that can be checked without
// the device fails at once, before tuyaflash asks for the power-cycle. The
// port is a pseudo-terminal nobody serves, with a long --timeout: a
// command that got as far as waiting for the chip would print the prompt
// and hang.
func TestChecksBeforeThePowerCycle(t *testing.T) {
	t.Parallel()
	pty, err := transport.OpenPTY(115200)
	if err != nil {
		t.Skip(err)
	}
	defer pty.Close()
	port := pty.SlavePath()
	dir := t.TempDir()
	file := func(name string, b []byte) string { return writeIn(t, dir, name, b) }
	random := make([]byte, 64<<10)
	rand.New(rand.NewSource(5)).Read(random)
	ua := file("OpenBK7231T_UA_1.0.0.bin", fwtest.App(fwtest.SigTuya, 0x20000, 3))
	qioN := file("OpenBK7231N_QIO_1.0.0.bin", fwtest.Beken(fwtest.BootCRCN, 257, fwtest.App(fwtest.SigTuya, 0x8000, 1), 0x40000))
	esp := file("tasmota.bin", espImage(100000, 3, 7))
	notFile := filepath.Join(dir, "nothing-here.bin")

	// A backup whose dump no longer matches its sidecar, one of another
	// family, and one without a sidecar.
	dump := make([]byte, 2<<20)
	rand.New(rand.NewSource(6)).Read(dump)
	sidecar := func(name, family, hash string) string {
		p := file(name, dump)
		meta, _ := json.Marshal(map[string]any{"format": "tuyaflash-backup/2", "family": family, "flash_size": len(dump), "offset": "0x000000", "size": len(dump), "sha256": hash})
		os.WriteFile(p+".json", meta, 0o600)
		return p
	}
	damaged := sidecar("damaged.bin", "BK7231N", strings.Repeat("0", 64))
	espBackup := sidecar("esp.bin", "ESP8266", sha(dump))
	noSidecar := file("no-sidecar.bin", dump)

	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	manifest := qioManifest(t, filepath.Join(dir, "manifest.json"), srv.URL+"/gone/OpenBK7231N_QIO_9.9.bin", "9.9", "")
	emptyCache := filepath.Join(dir, "empty-cache")
	aFile := file("a-file", []byte("x"))
	existing := file("existing.bin", []byte("mine"))
	stub := file("stub.json", []byte(`{"entry": 1, "text": "not base64!"}`))

	tests := []struct {
		name  string
		code  int
		frags []string
		args  []string
	}{
		{"write: missing file", 1, []string{"nothing-here.bin", "does not exist"}, []string{"write", notFile}},
		{"write: empty file", 4, []string{"empty"}, []string{"write", file("empty.bin", nil)}},
		{"write: text file", 4, []string{"does not know this file"}, []string{"write", file("notes.txt", []byte("just some notes\n"))}},
		{"write: random bytes", 4, []string{"does not know this file"}, []string{"write", file("random.bin", random)}},
		{"write: ESP8266 image, --chip bk7231n", 4, []string{"wrong chip family", "BK7231N"}, []string{"write", "--chip", "bk7231n", esp}},
		{"write: Beken app, --chip esp8266", 4, []string{"wrong chip family", "ESP8266"}, []string{"write", "--chip", "esp8266", ua}},
		{"write: BK7231N QIO, --chip bk7231t", 4, []string{"BK7231T"}, []string{"write", "--chip", "bk7231t", "--include-bootloader", qioN}},
		{"write: ESP8285 not DOUT", 4, []string{"wired for DOUT", "--flash-mode"}, []string{"write", "--chip", "esp8285", "--flash-mode", "qio", esp}},
		{"write: --include-bootloader with a UA image", 4, []string{"--include-bootloader", "no bootloader part"}, []string{"write", "--include-bootloader", ua}},
		{"write: unknown catalogue name", 1, []string{"no firmware \"no-such-firmware\" in the catalogue"}, []string{"write", "--firmware", "no-such-firmware", "--manifest", manifest, "--cache-dir", emptyCache}},
		{"write: catalogue name offline, not cached", 1, []string{"not in the firmware cache", "firmware fetch"}, []string{"write", "--firmware", "obk", "--offline", "--manifest", manifest, "--cache-dir", emptyCache}},
		{"write: download fails (404)", 1, []string{"404", "refused the file"}, []string{"write", "--firmware", "obk", "--manifest", manifest, "--cache-dir", emptyCache}},
		{"write: no build for --chip", 4, []string{"no build for a ESP8266"}, []string{"write", "--firmware", "obk", "--chip", "esp8266", "--manifest", manifest, "--cache-dir", emptyCache}},
		{"restore: missing backup", 1, []string{"no such file"}, []string{"restore", notFile}},
		{"restore: damaged backup", 5, []string{"sha256", "do not restore it"}, []string{"restore", damaged}},
		{"restore: no sidecar", 1, []string{"has no sidecar", "--force"}, []string{"restore", noSidecar}},
		{"restore: other family", 4, []string{"the backup is of a ESP8266, the chip is a BK7231N", "no flag overrides"}, []string{"restore", "--chip", "bk7231n", "--force", espBackup}},
		{"backup: unwritable backup folder", 1, []string{"backup folder"}, []string{"backup", "--backup-dir", filepath.Join(aFile, "sub")}},
		{"backup: existing -o", 4, []string{"never overwrites"}, []string{"backup", "-o", existing}},
		{"backup: -o in a folder that cannot be", 1, []string{"-o folder"}, []string{"backup", "-o", filepath.Join(aFile, "dump.bin")}},
		{"detect: bad --stub", 1, []string{"--stub"}, []string{"detect", "--chip", "esp8266", "--stub", stub}},
		{"provision: no Wi-Fi password", 2, []string{"TUYAFLASH_WIFI_PASSWORD"}, []string{"provision", "--ssid", "home"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t0 := time.Now()
			args := append(tc.args[:1:1], append([]string{"--port", port, "--timeout", "5m"}, tc.args[1:]...)...)
			if tc.args[0] == "provision" {
				args = append(tc.args[:1:1], append([]string{"--port", port}, tc.args[1:]...)...)
			}
			r := expectFail(t, t.TempDir(), tc.code, tc.frags, args...)
			if strings.Contains(r.stderr+r.stdout, "power-cycle") || strings.Contains(r.stderr, "Make sure GPIO0") {
				t.Errorf("asked for the device before checking what needs none:\n%s", r)
			}
			if took := time.Since(t0); took > 30*time.Second {
				t.Errorf("took %v", took)
			}
		})
	}
	if ents, _ := os.ReadDir(emptyCache); len(ents) > 1 {
		t.Logf("cache after the failed downloads: %v", ents)
	}
}
