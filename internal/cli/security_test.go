package cli

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tuyaflash/tuyaflash/firmware"
)

// hostile is what a device (or a crafted dump) could put in a name: clear
// the screen, set the window title, forge a line.
const hostile = "\x1b[2J\x1b]0;owned\x07\nverified: OK\u009b1m"

func noEscapes(t *testing.T, what, s string) {
	t.Helper()
	for _, r := range s {
		if r == 0x1b || r == 0x07 || r == 0x9b {
			t.Errorf("%s holds %U:\n%s", what, r, s)
			return
		}
	}
}

// TestInventoryOutputIsSafeToPrint: names and versions stored in the
// inventory (from devices and dumps) are printed with visible escapes.
func TestInventoryOutputIsSafeToPrint(t *testing.T) {
	dir := t.TempDir()
	inv := `{"format":"tuyaflash-inventory/1","devices":[{"key":"c8478c1a2b3c/eb6015","mac":"C8:47:8C:1A:2B:3C","family":"BK7231N",
"first_seen":"2026-01-01T00:00:00Z","last_seen":"2026-01-01T00:00:00Z","firmware":"openbeken","firmware_version":"1.17` + jsonEsc(hostile) + `",
"hostname":"plug` + jsonEsc(hostile) + `","tuya":{"device_id":"bf` + jsonEsc(hostile) + `","module":"CB2S` + jsonEsc(hostile) + `","date":"2026-01-01T00:00:00Z"},
"last_verify":{"date":"2026-01-01T00:00:00Z","host":"10.0.0.5","firmware":"openbeken","version":"x` + jsonEsc(hostile) + `","ok":true}}]}`
	path := filepath.Join(dir, "inventory.json")
	os.WriteFile(path, []byte(inv), 0o600)
	for _, args := range [][]string{{"inventory", "--inventory", path}, {"inventory", "--inventory", path, "c8478c1a2b3c/eb6015"}} {
		r := runCLI(t, args...)
		if r.code != 0 {
			t.Fatalf("%v: %s", args, r)
		}
		noEscapes(t, strings.Join(args, " "), r.stdout+r.stderr)
		if !strings.Contains(r.stdout, `\x1b[2J`) {
			t.Errorf("%v: the stored name is not shown with visible escapes:\n%s", args, r.stdout)
		}
	}
}

func jsonEsc(s string) string {
	r := strings.NewReplacer("\x1b", `\u001b`, "\x07", `\u0007`, "\n", `\n`, "\u009b", `\u009b`)
	return r.Replace(s)
}

// TestVerifyFollowsNoRedirect: verify talks to the device with postflash's
// own client; a device answering with a redirect cannot send the request,
// and the web password with it, to another host.
func TestVerifyFollowsNoRedirect(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	dev := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusFound)
	}))
	defer dev.Close()
	r := runCLI(t, "verify", "--host", strings.TrimPrefix(dev.URL, "http://"), "--password", "hunter22", "--json")
	if elsewhere.Load() != 0 {
		t.Fatalf("the redirect was followed (%d requests elsewhere):\n%s", elsewhere.Load(), r)
	}
	if strings.Contains(r.stdout+r.stderr, "hunter22") {
		t.Errorf("the web password is printed:\n%s", r)
	}
}

// TestAllowHTTP: a catalogue on a LAN mirror over plain HTTP is refused
// (no request made) with a hint naming --allow-http; --allow-http that
// would do nothing is refused as a usage error.
func TestAllowHTTP(t *testing.T) {
	r := runCLI(t, "firmware", "list", "--manifest", "http://mirror.invalid/manifest.json")
	if r.code != ExitRefused || !strings.Contains(r.stderr, "--allow-http") {
		t.Errorf("http manifest: %s", r)
	}
	if r := runCLI(t, "firmware", "list", "--allow-http"); r.code != ExitUsage {
		t.Errorf("--allow-http without a download: %s", r)
	}
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write(firmware.DefaultBytes())
	}))
	defer srv.Close()
	// A loopback address crosses no network: allowed without the flag.
	if r := runCLI(t, "firmware", "list", "--manifest", srv.URL+"/m.json", "--json"); r.code != 0 || hits.Load() != 1 || !strings.Contains(r.stdout, `"pins_file"`) {
		t.Errorf("loopback manifest: %d requests, %s", hits.Load(), r)
	}
}

// TestFirmwareListShowsThePinsFile: the checksums pinned on first download
// are in a file the user can read; list and verify name it.
func TestFirmwareListShowsThePinsFile(t *testing.T) {
	r := runCLI(t, "firmware", "list")
	cache := os.Getenv("TUYAFLASH_CACHE_DIR")
	if r.code != 0 || !strings.Contains(r.stdout, "Checksums pinned on first download (0): "+filepath.Join(cache, "pins.json")) {
		t.Errorf("firmware list:\n%s", r)
	}
}

func TestSudoNoticeText(t *testing.T) {
	n := sudoNotice("/root/.local/share/tuyaflash/backups")
	for _, want := range []string{"/root/.local/share/tuyaflash/backups", "sudo", "dialout"} {
		if !strings.Contains(n, want) {
			t.Errorf("notice %q lacks %q", n, want)
		}
	}
}

// TestThreatModelNamesRealTests: every test docs/security.md names as the
// proof of a control exists.
func TestThreatModelNamesRealTests(t *testing.T) {
	doc, err := os.ReadFile("../../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	named := regexp.MustCompile("`((?:Test|Fuzz)[A-Za-z0-9_]+)`").FindAllStringSubmatch(string(doc), -1)
	if len(named) < 20 {
		t.Fatalf("docs/security.md names %d tests", len(named))
	}
	defined := map[string]bool{}
	funcRe := regexp.MustCompile(`(?m)^func ((?:Test|Fuzz)[A-Za-z0-9_]+)\(`)
	filepath.WalkDir("../..", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, _ := os.ReadFile(p)
		for _, m := range funcRe.FindAllStringSubmatch(string(b), -1) {
			defined[m[1]] = true
		}
		return nil
	})
	for _, m := range named {
		if !defined[m[1]] {
			t.Errorf("docs/security.md names %s, which no test file defines", m[1])
		}
	}
}
