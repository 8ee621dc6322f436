package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tuyaflash/tuyaflash/firmware/fwtest"
)

func migrateEnv(t *testing.T) string {
	dir := t.TempDir()
	t.Setenv("TUYAFLASH_BACKUP_DIR", filepath.Join(dir, "backups"))
	t.Setenv("TUYAFLASH_DATA_DIR", dir)
	t.Setenv("TUYAFLASH_CACHE_DIR", filepath.Join(dir, "cache"))
	t.Setenv(wifiPasswordEnv, "")
	os.Unsetenv(wifiPasswordEnv) // restored by t.Setenv's cleanup
	return dir
}

// TestMigrateCommand runs migrate on the built-in virtual device: one JSON
// document on stdout, events as JSON lines on stderr, exit codes.
func TestMigrateCommand(t *testing.T) {
	migrateEnv(t)
	var out, errOut bytes.Buffer
	code := Main([]string{"migrate", "--port", "sim:bk7231n", "--until", "backup", "--json", "--events"}, strings.NewReader(""), &out, &errOut)
	if code != ExitOK {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
	var rep struct {
		Ports []struct{ Result, Backup string }
	}
	dec := json.NewDecoder(&out)
	if err := dec.Decode(&rep); err != nil || dec.More() || len(rep.Ports) != 1 || rep.Ports[0].Result != "stopped" || rep.Ports[0].Backup == "" {
		t.Fatalf("stdout is not one report document (%v): %+v", err, rep)
	}
	kinds := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(errOut.String()), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("--events: stderr line is not JSON: %q", line)
		}
		kinds[ev["kind"].(string)]++
	}
	if kinds["step-start"] != 2 || kinds["step-end"] != 2 || kinds["action"] == 0 || kinds["progress"] == 0 || kinds["port-end"] != 1 {
		t.Errorf("events by kind: %v", kinds)
	}

	// A refusal before connecting: usage exit code, nothing on stdout but
	// the error document.
	out.Reset()
	errOut.Reset()
	code = Main([]string{"migrate", "--port", "sim:bk7231n", "--from", "write", "--until", "backup"}, strings.NewReader(""), &out, &errOut)
	if code != ExitUsage || !strings.Contains(errOut.String(), "--until backup comes before --from write") {
		t.Errorf("from after until: exit %d: %s", code, errOut.String())
	}
	// No password, no terminal to ask on.
	code = Main([]string{"migrate", "--port", "sim:bk7231n", "--ssid", "home"}, strings.NewReader(""), &out, &errOut)
	if code != ExitUsage || !strings.Contains(errOut.String(), wifiPasswordEnv) {
		t.Errorf("no Wi-Fi password: exit %d: %s", code, errOut.String())
	}
}

// TestMigrateCommandFailureExitCode: a port that fails makes the exit code
// that of its error, after the table.
func TestMigrateCommandFailureExitCode(t *testing.T) {
	dir := migrateEnv(t)
	img := filepath.Join(dir, "OpenBK7231N_UA_1.17.999.bin")
	if err := os.WriteFile(img, fwtest.App(fwtest.SigTuya, 64*1024, 1), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	// A write to a device without a backup on record is refused (no
	// --yes): the port fails, the table says so, the exit code is the
	// refusal's.
	code := Main([]string{"migrate", "--port", "sim:bk7231n", "--from", "write", "--until", "write", "--firmware", img}, strings.NewReader(""), &out, &errOut)
	if code != ExitRefused {
		t.Errorf("exit %d, want %d (refused)", code, ExitRefused)
	}
	if !strings.Contains(out.String(), "failed: no verified backup of this device on record") || !strings.Contains(errOut.String(), "--yes") {
		t.Errorf("output:\n%s\n%s", out.String(), errOut.String())
	}
	if strings.Count(errOut.String(), "no verified backup") != 1 {
		t.Errorf("the failure is reported more than once:\n%s", errOut.String())
	}
}
