//go:build linux

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tuyaflash/tuyaflash/internal/safefile/safefiletest"
)

// secretFields are the names under which a Tuya config holds secrets
// (tuyaconfig's list, written out independently).
var secretFields = map[string]bool{"lckey": true, "key": true, "seckey": true, "local_key": true, "localkey": true,
	"auth_key": true, "psk_key": true, "passwd": true, "password": true, "ssid": true, "token": true, "reg_key": true, "fac_pin": true}

// collectSecrets walks a --show-secrets tuya-config document and returns
// every secret value in it: the typed fields and the secret-named fields
// of the stored keys.
func collectSecrets(t *testing.T, doc []byte) []string {
	t.Helper()
	var d struct {
		Config map[string]any `json:"config"`
	}
	if err := json.Unmarshal(doc, &d); err != nil || d.Config == nil {
		t.Fatalf("tuya-config --json: %v\n%s", err, doc)
	}
	// The typed fields come first, in this order (secrets[0] is the
	// local key, which the text report prints as it is); the stored keys'
	// values follow, sorted, some of them base64 as the device stores them.
	var typed []string
	seen := map[string]bool{}
	for _, f := range []string{"local_key", "sec_key", "auth_key", "psk_key", "wifi_ssid", "wifi_password"} {
		if s, ok := d.Config[f].(string); ok && len(s) >= 6 && !seen[s] {
			seen[s] = true
			typed = append(typed, s)
		}
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && secretFields[strings.ToLower(k)] && len(s) >= 6 {
					seen[s] = true
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case string:
			var inner any // keys hold JSON objects as strings too
			if json.Unmarshal([]byte(x), &inner) == nil {
				walk(inner)
			}
		}
	}
	walk(d.Config["keys"])
	var rest []string
	for s := range seen {
		if !slices.Contains(typed, s) {
			rest = append(rest, s)
		}
	}
	slices.Sort(rest)
	return append(typed, rest...)
}

// TestSecretsStayHidden runs the main commands against the virtual
// devices, whose stock flash holds a Tuya config with a local key, auth
// and PSK keys and home Wi-Fi credentials, and checks that none of these
// appears in stdout, stderr or a JSON document unless --show-secrets asks
// for it (-v, -vv and the error paths included).
func TestSecretsStayHidden(t *testing.T) {
	t.Parallel()
	for _, chip := range []string{"bk7231n", "esp8266"} {
		t.Run(chip, func(t *testing.T) {
			// A pseudo-terminal, as a real adapter: the device is not
			// marked virtual, so the exports include it.
			port := startSim(t, "--chip", chip, "--unmarked").tty
			store := t.TempDir()
			r := mustRun(t, store, "backup", "--port", port, "-v")
			dump := backupPath(t, r)
			shown := mustRun(t, store, "tuya-config", dump, "--show-secrets", "--json")
			secrets := collectSecrets(t, []byte(shown.stdout))
			if len(secrets) < 3 {
				t.Fatalf("the virtual device's dump holds too few secrets to test with: %q", secrets)
			}
			outputs := []result{r}
			for _, args := range [][]string{
				{"detect", "--port", port, "-vv"},
				{"detect", "--port", port, "--json"},
				{"backup", "--port", port, "--json", "-v"},
				{"tuya-config", dump},
				{"tuya-config", dump, "--json"},
				{"tuya-config", dump, "--template", "esphome"},
				{"inventory"},
				{"inventory", "--json"},
				{"export", "templates"},
				{"export", "templates", "--json"},
				{"export", "homeassistant", "--json"},
				{"restore", "--port", port, dump, "--dry-run", "-v"},
				{"restore", "--port", port, dump, "--dry-run", "--json"},
				{"tuya-config", dump + ".missing"},
				{"restore", "--port", "sim:bk7231t", dump, "--json"},
				{"export", "tinytuya", "--devices", filepath.Join(store, "missing-devices.json"), "--json"},
			} {
				outputs = append(outputs, run(t, store, args...))
			}
			o := filepath.Join(t.TempDir(), "config.txt")
			outputs = append(outputs, mustRun(t, store, "tuya-config", dump, "-o", o))
			report := string(readFile(t, o))
			if m := safefiletest.Mode(t, o); m != 0o600 {
				t.Errorf("tuya-config -o: mode %v, want 0600", m)
			}
			for i, out := range outputs {
				for _, s := range secrets {
					if strings.Contains(out.stdout, s) || strings.Contains(out.stderr, s) {
						t.Errorf("run %d shows the secret %q:\n%s", i, s, out)
					}
					if strings.Contains(report, s) {
						t.Errorf("tuya-config -o wrote the secret %q without --show-secrets", s)
					}
				}
			}
			// The check can fail: --show-secrets does show them.
			if !strings.Contains(mustRun(t, store, "tuya-config", dump, "--show-secrets").stdout, secrets[0]) {
				t.Errorf("--show-secrets does not show %q", secrets[0])
			}
		})
	}
}

// TestTraceWarnsOnce: --trace (and -vvv) say once, before the dump, that
// flash contents hold secrets.
func TestTraceWarnsOnce(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"detect", "--port", "sim:bk7231n", "--trace"}, {"detect", "--port", "sim:bk7231n", "-vvv"}} {
		r := mustRun(t, t.TempDir(), args...)
		if n := strings.Count(r.stderr, "warning: --trace dumps all serial traffic"); n != 1 {
			t.Errorf("%v: the warning appears %d times:\n%s", args, n, r.stderr[:min(len(r.stderr), 2000)])
		}
	}
	if r := mustRun(t, t.TempDir(), "detect", "--port", "sim:bk7231n", "-vv"); strings.Contains(r.stderr, "warning: --trace") {
		t.Error("-vv warns about --trace")
	}
}

// TestOutputsRefusePlantedLinks: the files a user names (-o, --save) are
// never written through a link planted there; the link's target stays as
// it was and the command says the file exists.
func TestOutputsRefusePlantedLinks(t *testing.T) {
	t.Parallel()
	store := t.TempDir()
	dump := backupPath(t, mustRun(t, store, "backup", "--port", startSim(t, "--chip", "bk7231n", "--unmarked").tty))
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		link string
		args []string
	}{
		{"backup -o", "dump.bin", []string{"backup", "--port", "sim:bk7231n", "-o", "LINK"}},
		{"tuya-config -o", "config.txt", []string{"tuya-config", dump, "-o", "LINK"}},
		{"tuya-config --template -o", "obk.txt", []string{"tuya-config", dump, "--template", "obk", "-o", "LINK"}},
		{"sim --save", "flash.bin", []string{"sim", "--save", "LINK"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			link := filepath.Join(dir, tc.link)
			victim := safefiletest.Plant(t, link)
			args := append([]string(nil), tc.args...)
			for i, a := range args {
				if a == "LINK" {
					args[i] = link
				}
			}
			r := run(t, store, args...)
			if r.code == 0 {
				t.Errorf("wrote through the link:\n%s", r)
			}
			safefiletest.Untouched(t, victim)
		})
	}
	t.Run("export templates -o", func(t *testing.T) {
		out := t.TempDir()
		first := mustRun(t, store, "export", "templates", "--json")
		var doc struct {
			Templates []struct {
				FileName string `json:"file_name"`
			} `json:"templates"`
		}
		if err := json.Unmarshal([]byte(first.stdout), &doc); err != nil || len(doc.Templates) == 0 {
			t.Fatalf("no templates: %v\n%s", err, first)
		}
		victim := safefiletest.Plant(t, filepath.Join(out, doc.Templates[0].FileName))
		if r := run(t, store, "export", "templates", "-o", out); r.code == 0 {
			t.Errorf("wrote through the link:\n%s", r)
		}
		safefiletest.Untouched(t, victim)
	})
}

// TestSudoNotice: run as root with SUDO_UID set, tuyaflash says once that
// the files it creates outside the user's home folder stay root's.
func TestSudoNotice(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	store := t.TempDir()
	cmd := exec.Command(bin, "backup", "--port", "sim:bk7231n")
	// nobody's home folder is /nonexistent: the store is outside it.
	cmd.Env = append(os.Environ(), "TUYAFLASH_BACKUP_DIR="+filepath.Join(store, "b"), "TUYAFLASH_DATA_DIR="+store,
		"TUYAFLASH_CACHE_DIR="+filepath.Join(store, "cache"), "SUDO_UID=65534", "SUDO_GID=65534")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if n := strings.Count(string(out), "note: tuyaflash runs as root (sudo)"); n != 1 {
		t.Errorf("the sudo notice appears %d times:\n%s", n, out)
	}
}

// TestMigrateKeepsSecretsHidden: the whole story, told step by step
// (text and --events), quotes neither the stock dump's secrets nor the
// Wi-Fi password it provisioned.
func TestMigrateKeepsSecretsHidden(t *testing.T) {
	t.Parallel()
	const password = "virtual-bench" // the virtual network's: the only one it joins
	for _, chip := range []string{"bk7231n", "esp8266"} {
		t.Run(chip, func(t *testing.T) {
			t.Parallel()
			port := startSim(t, "--chip", chip).tty
			store := t.TempDir()
			r := mustRun(t, store, "migrate", "--port", port, "--chip", chip, "--firmware", "demo",
				"--ssid", "tuyaflash-virtual", "--wifi-password", password, "--events")
			d := dumps(store)
			if len(d) != 1 {
				t.Fatalf("backups in the store: %q\n%s", d, r)
			}
			shown := mustRun(t, store, "tuya-config", d[0], "--show-secrets", "--json")
			// The network name the user typed is echoed ("gave
			// tuyaflash-virtual to …"); the stock ESP8266 image happens to
			// hold the same name, so it is no secret here.
			secrets := slices.DeleteFunc(collectSecrets(t, []byte(shown.stdout)), func(s string) bool { return s == "tuyaflash-virtual" })
			secrets = append(secrets, password)
			if len(secrets) < 4 {
				t.Fatalf("the dump holds too few secrets to test with: %q", secrets)
			}
			outputs := []result{r, mustRun(t, store, "inventory", "--json"), mustRun(t, store, "inventory")}
			for i, out := range outputs {
				for _, s := range secrets {
					if strings.Contains(out.stdout, s) || strings.Contains(out.stderr, s) {
						t.Errorf("output %d shows the secret %q", i, s)
					}
				}
			}
			if !strings.Contains(r.stdout+r.stderr, "migrated") {
				t.Errorf("the migration did not finish:\n%s", r)
			}
		})
	}
}
