//go:build linux

package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestTuyaConfigHidesSecrets(t *testing.T) {
	t.Parallel()
	dump := filepath.Join(sharedDumps(t), "BK7231T_TuyaConfig_PC44HA.bin")
	hidden := mustRun(t, t.TempDir(), "tuya-config", dump)
	shown := mustRun(t, t.TempDir(), "tuya-config", dump, "--show-secrets")
	// The local key is a 16-character value on the "Local key:" line.
	key := regexp.MustCompile(`Local key:\s+(\S{16})`).FindStringSubmatch(shown.stdout)
	if key == nil {
		t.Fatalf("--show-secrets printed no local key:\n%s", shown.stdout)
	}
	if strings.Contains(hidden.stdout+hidden.stderr, key[1]) {
		t.Fatal("the local key is printed without --show-secrets")
	}
	// The home Wi-Fi name is a secret too, in the report and in JSON.
	ssid := regexp.MustCompile(`Wi-Fi SSID:\s+(\S[^\n]*)`).FindStringSubmatch(shown.stdout)
	if ssid == nil || ssid[1] == "-" {
		t.Fatal("--show-secrets printed no Wi-Fi SSID for a dump that has one")
	}
	hiddenJSON := mustRun(t, t.TempDir(), "tuya-config", dump, "--json")
	if strings.Contains(hidden.stdout+hidden.stderr+hiddenJSON.stdout, strings.TrimSpace(ssid[1])) {
		t.Fatal("the home Wi-Fi name is printed without --show-secrets")
	}
	for _, want := range []string{"Module:           WB2S", "<hidden: --show-secrets>", "relay 1"} {
		if !strings.Contains(hidden.stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, hidden.stdout)
		}
	}
	// JSON with secrets written to a file: mode 0600, never overwritten.
	out := filepath.Join(t.TempDir(), "cfg.json")
	mustRun(t, t.TempDir(), "tuya-config", dump, "--json", "--show-secrets", "-o", out)
	st, err := os.Stat(out)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("output file: %v mode %v", err, st.Mode().Perm())
	}
	if !strings.Contains(string(readFile(t, out)), key[1]) {
		t.Error("JSON with --show-secrets lacks the local key")
	}
	expectFail(t, t.TempDir(), 4, []string{"file exists"}, "tuya-config", dump, "--json", "-o", out)
}

func TestTuyaConfigTemplates(t *testing.T) {
	t.Parallel()
	dump := filepath.Join(sharedDumps(t), "Mirabella_Genio_I003632_Plug.bin")
	obk := mustRun(t, t.TempDir(), "tuya-config", dump, "--template", "obk")
	for _, want := range []string{"SetPinRole 6 Rel", "SetPinChannel 6 1", "SetPinRole 26 WifiLED"} {
		if !strings.Contains(obk.stdout, want) {
			t.Errorf("OpenBeken template lacks %q:\n%s", want, obk.stdout)
		}
	}
	esp := mustRun(t, t.TempDir(), "tuya-config", dump, "--template", "esphome", "--name", "plug")
	if !strings.Contains(esp.stdout, "bk72xx:") || !strings.Contains(esp.stdout, "name: plug") {
		t.Errorf("ESPHome template:\n%s", esp.stdout)
	}
	expectFail(t, t.TempDir(), 6, []string{"Tasmota runs on ESP8266"}, "tuya-config", dump, "--template", "tasmota")
}

// TestBackupPrintsTuyaConfig: a backup of a stock BK7231 dump shows its Tuya
// config right away, secrets hidden.
func TestBackupPrintsTuyaConfig(t *testing.T) {
	t.Parallel()
	dump := filepath.Join(sharedDumps(t), "MOES_WK-US2-TC_In-Wall_Outlet.bin")
	s := startSim(t, "--chip", "bk7231n", "--flash", dump)
	r := mustRun(t, t.TempDir(), "backup", "--port", s.tty)
	for _, want := range []string{"Tuya configuration", "Device ID:", "Local key:        <hidden: --show-secrets>", "tuya-config"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("backup output lacks %q:\n%s", want, r.stdout)
		}
	}
}

// TestTuyaConfigOfESP8266Dump: the backup of a virtual stock ESP8266
// (whose PSM the simulator writes, encrypted, independently of tuyaconfig)
// gives its device id with the secrets hidden; a dump without Tuya's PSM
// store says what was searched and where; a dump holding one (synthetic:
// no real ESP8266 Tuya dump is available) gives the local key and Wi-Fi
// behind --show-secrets, and a Tasmota template from its pin map.
func TestTuyaConfigOfESP8266Dump(t *testing.T) {
	t.Parallel()
	s := startSim(t, "--chip", "esp8266")
	dump := backupPath(t, mustRun(t, t.TempDir(), "backup", "--port", s.tty))
	stock := mustRun(t, t.TempDir(), "tuya-config", dump)
	for _, want := range []string{"ESP8266 PSM store at 0x07B000, 1 sector, AES-128-ECB, key byte 0x5A", "Device ID:        tfsim0",
		"Local key:        <hidden: --show-secrets>", "Wi-Fi SSID:       <hidden: --show-secrets>"} {
		if !strings.Contains(stock.stdout, want) {
			t.Errorf("summary of the virtual stock ESP8266 lacks %q:\n%s", want, stock.stdout)
		}
	}

	img := espImage(60000, 3, 9)
	img = append(img, bytes.Repeat([]byte{0xFF}, 0x100000-len(img))...)
	empty := filepath.Join(t.TempDir(), "esp-no-psm.bin")
	if err := os.WriteFile(empty, img, 0o600); err != nil {
		t.Fatal(err)
	}
	expectFail(t, t.TempDir(), 1, []string{"without a Tuya PSM store", "searched 256 sectors", "0x7B000"}, "tuya-config", empty)

	// A plaintext PSM store at 0x7B000 of an ESP8266 flash, built by hand
	// from the description (more-chips.md §4).
	psm := "PSM1\x00ty_ws_ver=1.0.3\x00gw_id=bf00e2e0000000000001\x00local_key=e2elocalkey00001\x00ssid=E2E-Net\x00" +
		"passwd=e2e-wifi-pass\x00user_param_key={module:TYWE3S,rl1_pin:12,rl1_lv:1,bt1_pin:0,bt1_lv:0}\x00"
	copy(img[0x7B000:], psm)
	file := filepath.Join(t.TempDir(), "esp-psm.bin")
	if err := os.WriteFile(file, img, 0o600); err != nil {
		t.Fatal(err)
	}
	hidden := mustRun(t, t.TempDir(), "tuya-config", file)
	for _, want := range []string{"ESP8266 PSM store at 0x07B000", "bf00e2e0000000000001", "Local key:        <hidden: --show-secrets>",
		"Wi-Fi SSID:       <hidden: --show-secrets>", "TYWE3S", "relay 1 (active high)"} {
		if !strings.Contains(hidden.stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, hidden.stdout)
		}
	}
	for _, secret := range []string{"e2elocalkey00001", "E2E-Net", "e2e-wifi-pass"} {
		if strings.Contains(hidden.stdout+hidden.stderr, secret) {
			t.Errorf("a secret of %d chars is printed without --show-secrets", len(secret))
		}
	}
	shown := mustRun(t, t.TempDir(), "tuya-config", file, "--show-secrets")
	for _, secret := range []string{"e2elocalkey00001", "E2E-Net", "e2e-wifi-pass"} {
		if !strings.Contains(shown.stdout, secret) {
			t.Errorf("--show-secrets lacks a secret of %d chars", len(secret))
		}
	}
	// Tasmota: relay 1 (224) on GPIO12, Button1 (32) on GPIO0.
	tas := mustRun(t, t.TempDir(), "tuya-config", file, "--template", "tasmota", "--name", "plug")
	if !strings.Contains(tas.stdout, `"NAME":"plug","GPIO":[32,0,0,0,0,0,0,0,224,`) {
		t.Errorf("Tasmota template:\n%s", tas.stdout)
	}
}
