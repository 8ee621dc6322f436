//go:build linux

package e2e

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tuyaflash/tuyaflash/firmware/fwtest"
	"github.com/tuyaflash/tuyaflash/internal/jsondocs"
	"github.com/tuyaflash/tuyaflash/transport"
)

// checkJSON checks the --json contract on one run: exactly one document on
// stdout, an object with ok and command, only the fields docs/json.md
// documents for that command, and on failure the error object, whose
// exit_code is the process's.
func checkJSON(t *testing.T, docs map[string][]string, r result, wantOK bool) map[string]json.RawMessage {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	var doc map[string]json.RawMessage
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, r)
	}
	var rest bytes.Buffer
	rest.ReadFrom(dec.Buffered())
	if dec.More() || strings.TrimSpace(rest.String()) != "" {
		t.Fatalf("more than one document on stdout:\n%s", r)
	}
	var ok bool
	var command string
	if json.Unmarshal(doc["ok"], &ok) != nil || json.Unmarshal(doc["command"], &command) != nil || command == "" {
		t.Fatalf("no ok/command:\n%s", r)
	}
	if ok != wantOK || ok != (r.code == 0) {
		t.Fatalf("ok %v with exit %d, want ok %v:\n%s", ok, r.code, wantOK, r)
	}
	fields, documented := docs[command]
	if !documented {
		t.Fatalf("docs/json.md has no section for %q", command)
	}
	for k := range doc {
		if k != "ok" && k != "command" && k != "error" && !slices.Contains(fields, k) {
			t.Errorf("%s: field %q is not documented (docs/json.md lists %v)", command, k, fields)
		}
	}
	if ok {
		if _, has := doc["error"]; has {
			t.Errorf("error object on success:\n%s", r)
		}
		return doc
	}
	var e map[string]json.RawMessage
	if err := json.Unmarshal(doc["error"], &e); err != nil {
		t.Fatalf("error object: %v\n%s", err, r)
	}
	var code int
	json.Unmarshal(e["exit_code"], &code)
	for _, k := range docs["The error object"] {
		if _, has := e[k]; !has {
			t.Errorf("error object lacks %q:\n%s", k, r)
		}
	}
	if len(e) != len(docs["The error object"]) || code != r.code {
		t.Errorf("error object %s, exit %d", doc["error"], r.code)
	}
	return doc
}

// TestJSONContract runs every command with --json, succeeding and
// failing.
func TestJSONContract(t *testing.T) {
	t.Parallel()
	docs, err := jsondocs.Sections("../docs/json.md")
	if err != nil {
		t.Fatal(err)
	}
	store := t.TempDir()
	dir := t.TempDir()
	file := func(name string, b []byte) string { return writeIn(t, dir, name, b) }
	random := make([]byte, 8192)
	rand.New(rand.NewSource(9)).Read(random)
	esp := file("tasmota.bin", espImage(60000, 3, 1))
	ua := file("OpenBK7231N_UA_1.0.0.bin", fwtest.App(fwtest.SigTuya, 0x10000, 2))
	qio := fwtest.Beken(fwtest.BootCRCN, 257, fwtest.App(fwtest.SigTuya, 0x8000, 1), 0x40000)
	rel := releaseServer(t, "/1.0/OpenBK7231N_QIO_1.0.bin", qio)
	manifest := qioManifest(t, filepath.Join(dir, "m.json"), rel.URL+"/1.0/OpenBK7231N_QIO_1.0.bin", "1.0", "")
	gone := qioManifest(t, filepath.Join(dir, "gone.json"), rel.URL+"/gone.bin", "1.0", "")
	cache := filepath.Join(dir, "cache")
	tasmota := strings.TrimPrefix(tasmotaServer(t).URL, "http://")
	pty, err := transport.OpenPTY(115200)
	if err != nil {
		t.Skip(err)
	}
	defer pty.Close()
	devices := file("devices.json", []byte("[]\n"))
	garbage := file("garbage.json", []byte("not json"))

	// A backup to restore and to read the config of.
	b := run(t, store, "backup", "--port", "sim:bk7231n", "--json")
	bdoc := checkJSON(t, docs, b, true)
	var backupFile string
	json.Unmarshal(bdoc["path"], &backupFile)
	var sc struct {
		FlashID  string `json:"flash_id"`
		Offset   string `json:"offset"`
		Verified struct {
			Method      string `json:"method"`
			Granularity int    `json:"granularity"`
		} `json:"verified"`
	}
	json.Unmarshal(bdoc["sidecar"], &sc)
	if sc.FlashID != "0xEB6015" || sc.Offset != "0x000000" || sc.Verified.Method != "crc32" || sc.Verified.Granularity != 65536 {
		t.Errorf("sidecar in backup --json: %s", bdoc["sidecar"])
	}

	tests := []struct {
		name string
		ok   bool
		args []string
	}{
		{"ports", true, []string{"ports"}},
		{"version", true, []string{"version"}},
		{"detect", true, []string{"detect", "--port", "sim:bk7231n"}},
		{"detect, no port", false, []string{"detect", "--port", "/dev/ttyUSB-none"}},
		{"detect, no answer", false, []string{"detect", "--port", pty.SlavePath(), "--timeout", "1s"}},
		{"backup, existing -o", false, []string{"backup", "--port", "sim:bk7231n", "-o", backupFile}},
		{"write --dry-run", true, []string{"write", "--port", "sim:bk7231n", "--dry-run", ua}},
		{"write, unknown file", false, []string{"write", "--port", "sim:bk7231n", file("random.bin", random)}},
		{"write, after connecting", false, []string{"write", "--port", "sim:esp8285", "--flash-size", "4MB", esp}},
		{"restore --dry-run", true, []string{"restore", "--port", "sim:bk7231n", "--dry-run", backupFile}},
		{"restore, no sidecar", false, []string{"restore", "--port", "sim:bk7231n", file("plain.bin", random)}},
		{"tuya-config, no Tuya storage", false, []string{"tuya-config", file("random2.bin", random)}},
		{"tuya-config, usage", false, []string{"tuya-config"}},
		{"firmware list", true, []string{"firmware", "list", "--chip", "bk7231n", "--cache-dir", cache}},
		{"firmware list, bad chip", false, []string{"firmware", "list", "--chip", "z80"}},
		{"firmware fetch", true, []string{"firmware", "fetch", "obk", "--manifest", manifest, "--cache-dir", cache}},
		{"firmware fetch, 404", false, []string{"firmware", "fetch", "obk", "--manifest", gone, "--cache-dir", filepath.Join(dir, "c2")}},
		{"firmware verify", true, []string{"firmware", "verify", esp, "--chip", "esp8266", "--cache-dir", cache}},
		{"firmware verify, refused", false, []string{"firmware", "verify", ua, "--chip", "esp8266", "--cache-dir", cache}},
		{"inventory", true, []string{"inventory"}},
		{"inventory, unknown device", false, []string{"inventory", "02:00:00:00:00:09"}},
		{"inventory forget, unknown device", false, []string{"inventory", "forget", "02:00:00:00:00:09"}},
		{"export tinytuya", true, []string{"export", "tinytuya", "--devices", devices}},
		{"export tinytuya, garbage", false, []string{"export", "tinytuya", "--devices", garbage, "--id", "bf0000000000000000"}},
		{"export homeassistant", true, []string{"export", "homeassistant"}},
		{"export templates", true, []string{"export", "templates"}},
		{"export templates, unknown device", false, []string{"export", "templates", "02:00:00:00:00:09"}},
		{"verify", true, []string{"verify", "--host", tasmota, "--expect", "tasmota"}},
		{"verify, mismatch", false, []string{"verify", "--host", tasmota, "--expect", "openbeken"}},
		{"verify, nothing there", false, []string{"verify", "--host", "127.0.0.1:9"}},
		{"provision --ap steps", true, []string{"provision", "--ap", "--firmware", "tasmota"}},
		{"provision, no console", false, []string{"provision", "--port", pty.SlavePath(), "--ssid", "home", "--wifi-password", "x", "--wait", "1s"}},
		{"inventory forget", true, []string{"inventory", "forget", "02:42:4b:72:31:01"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, store, append(tc.args, "--json")...)
			doc := checkJSON(t, docs, r, tc.ok)
			if tc.name == "verify, mismatch" {
				if _, has := doc["device"]; !has {
					t.Errorf("a mismatch does not report the device found:\n%s", r)
				}
			}
		})
	}
	// The backup's Tuya config, when the shared dumps are there.
	dump := filepath.Join(sharedDumps(t), "BK7231T_TuyaConfig_PC44HA.bin")
	r := run(t, store, "tuya-config", dump, "--json")
	doc := checkJSON(t, docs, r, true)
	var cfg map[string]any
	json.Unmarshal(doc["config"], &cfg)
	for _, k := range []string{"local_key", "sec_key", "wifi_password", "wifi_ssid"} {
		if v, has := cfg[k]; has && v != nil {
			t.Errorf("secret %s is %v without --show-secrets", k, v)
		}
	}
	if s, _ := cfg["key_block_offset"].(string); !strings.HasPrefix(s, "0x") {
		t.Errorf("key_block_offset %v, want 0x…", cfg["key_block_offset"])
	}
}
