package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/tuyaflash/tuyaflash/backup"
	"github.com/tuyaflash/tuyaflash/firmware"
	"github.com/tuyaflash/tuyaflash/firmware/fwtest"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/transport"
	"github.com/tuyaflash/tuyaflash/tuyaconfig"
)

// result is one in-process run of the command line.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// runCLI runs tuyaflash in this process with its stores in a temporary
// folder.
func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("TUYAFLASH_BACKUP_DIR", filepath.Join(dir, "backups"))
	t.Setenv("TUYAFLASH_DATA_DIR", dir)
	t.Setenv("TUYAFLASH_CACHE_DIR", filepath.Join(dir, "cache"))
	var o, e bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &o, &e)
	return result{code, o.String(), e.String()}
}

func TestSplitArgs(t *testing.T) {
	tests := []struct {
		args    []string
		cmd     string
		rest    []string
		help    bool
		wantErr string
	}{
		{[]string{"backup", "-p", "/dev/ttyUSB0"}, "backup", []string{"-p", "/dev/ttyUSB0"}, false, ""},
		{[]string{"-p", "/dev/ttyUSB0", "backup"}, "backup", []string{"-p", "/dev/ttyUSB0"}, false, ""},
		{[]string{"-p/dev/ttyUSB0", "-vv", "backup", "-o", "x.bin"}, "backup", []string{"-p/dev/ttyUSB0", "-vv", "-o", "x.bin"}, false, ""},
		{[]string{"--port=/dev/ttyUSB0", "--json", "detect"}, "detect", []string{"--port=/dev/ttyUSB0", "--json"}, false, ""},
		{[]string{"--baud", "115200", "--chip", "esp8266", "write", "f.bin"}, "write", []string{"--baud", "115200", "--chip", "esp8266", "f.bin"}, false, ""},
		{[]string{"help", "write"}, "write", nil, true, ""},
		{[]string{"--help"}, "", nil, true, ""},
		{[]string{"--nonsense", "detect"}, "", nil, false, "unknown flag --nonsense"},
		{[]string{"-p"}, "", nil, false, "needs a value"},
		{[]string{"-p", "/dev/ttyUSB0"}, "", nil, false, "no command"},
		{[]string{"read_flash"}, "", nil, false, "did you mean 'tuyaflash backup'"},
	}
	for _, tc := range tests {
		inv, err := splitArgs(tc.args)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want %q", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		name := ""
		if inv.cmd != nil {
			name = inv.cmd.name
		}
		if name != tc.cmd || inv.help != tc.help || strings.Join(inv.rest, " ") != strings.Join(tc.rest, " ") {
			t.Errorf("%q: command %q rest %q help %v, want %q %q %v", tc.args, name, inv.rest, inv.help, tc.cmd, tc.rest, tc.help)
		}
	}
}

// TestFlagsMeanTheSameEverywhere: a flag name takes a value in every
// command or in none, so that it can come before the command.
func TestFlagsMeanTheSameEverywhere(t *testing.T) {
	flagArity()
	if len(arityErr) > 0 {
		t.Fatal(strings.Join(arityErr, "\n"))
	}
}

func TestOptionsBeforeTheCommand(t *testing.T) {
	r := runCLI(t, "--json", "-p", "sim:bk7231n", "--chip", "bk7231n", "--timeout", "5s", "detect")
	var doc struct {
		OK   bool
		Chip struct{ Family string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || !doc.OK || doc.Chip.Family != "BK7231N" {
		t.Fatalf("%v\n%s", err, r)
	}
}

func TestDidYouMean(t *testing.T) {
	tests := []struct{ typed, want string }{
		{"read_flash", "tuyaflash backup"},
		{"read-flash", "tuyaflash backup"},
		{"write_flash", "tuyaflash write"},
		{"flash", "tuyaflash write"},
		{"chip_id", "tuyaflash detect"},
		{"flash_id", "tuyaflash detect"},
		{"erase_flash", "never erases the whole flash"},
		{"bakup", "tuyaflash backup"},
		{"detetc", "tuyaflash detect"},
		{"restor", "tuyaflash restore"},
		{"inv", "tuyaflash inventory"},
		{"xyzzyq", "see 'tuyaflash help'"},
	}
	for _, tc := range tests {
		r := runCLI(t, tc.typed)
		if r.code != ExitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: %s, want %q", tc.typed, r, tc.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"backup", "backup", 0}, {"bakup", "backup", 1}, {"detetc", "detect", 1}, {"wirte", "write", 1}, {"", "abc", 3}, {"kitten", "sitting", 3}} {
		if d := editDistance(tc.a, tc.b); d != tc.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, d, tc.d)
		}
	}
}

func TestExitCodeMapping(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{errors.New("disk full"), ExitFailure},
		{usagef("bad flag"), ExitUsage},
		{fmt.Errorf("link: %w", flasher.ErrNoLink), ExitNoDevice},
		{&transport.OpenError{Name: "/dev/ttyUSB0", Err: os.ErrNotExist}, ExitNoDevice},
		{fmt.Errorf("gate: %w", flasher.ErrRefused), ExitRefused},
		{fmt.Errorf("save: %w", backup.ErrExists), ExitRefused},
		{&flasher.ChecksumError{Algo: "CRC32"}, ExitVerify},
		{fmt.Errorf("load: %w", backup.ErrCorrupt), ExitVerify},
		{fmt.Errorf("x: %w", flasher.ErrUnsupported), ExitUnsupported},
		{&interruptError{sig: os.Interrupt}, ExitInterrupted},
		{fmt.Errorf("backup: %w", context.Canceled), ExitInterrupted},
		// An interruption that closed the port is no link fault.
		{fmt.Errorf("read: %w: %w", &interruptError{sig: os.Interrupt}, flasher.ErrNoLink), ExitInterrupted},
	}
	for _, tc := range tests {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
	names := map[string]bool{}
	for _, x := range exitTable {
		if names[x.Name] {
			t.Errorf("exit code name %q twice", x.Name)
		}
		names[x.Name] = true
	}
}

// TestExitTableInREADME: README's "Exit codes" table is the code's.
func TestExitTableInREADME(t *testing.T) {
	f, err := os.Open("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	row := regexp.MustCompile("^\\| *(\\d+) *\\| *`([a-z_]+)` *\\| *(.+?) *\\|$")
	var got []exitInfo
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "## ") {
			in = l == "## Exit codes"
			continue
		}
		if m := row.FindStringSubmatch(l); in && m != nil {
			code, _ := strconv.Atoi(m[1])
			got = append(got, exitInfo{code, m[2], m[3]})
		}
	}
	if len(got) != len(exitTable) {
		t.Fatalf("README lists %d exit codes, the code %d:\n%v", len(got), len(exitTable), got)
	}
	for i, want := range exitTable {
		if got[i] != want {
			t.Errorf("README row %d: %+v, code: %+v", i, got[i], want)
		}
	}
	help := runCLI(t, "help")
	for _, x := range exitTable {
		if !strings.Contains(help.stdout, fmt.Sprintf("%3d  %-14s %s", x.Code, x.Name, x.Meaning)) {
			t.Errorf("'tuyaflash help' lacks exit code %d:\n%s", x.Code, help.stdout)
		}
	}
}

// TestJSONErrorShape: every failure with --json prints one document of the
// same shape.
func TestJSONErrorShape(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.bin")
	tests := []struct {
		args []string
		code string
		exit int
	}{
		{[]string{"flash", "--json"}, "usage", 2},
		{[]string{"detect", "--json", "--nonsense"}, "usage", 2},
		{[]string{"detect", "--json"}, "usage", 2},
		{[]string{"restore", "--json", "-p", "sim:bk7231n", missing}, "failure", 1},
		{[]string{"write", "--json", "-p", "sim:bk7231n", "--firmware", "no-such-firmware", "--offline"}, "failure", 1},
		{[]string{"tuya-config", "--json", missing}, "failure", 1},
		{[]string{"inventory", "--json", "02:00:00:00:00:09"}, "failure", 1},
		{[]string{"verify", "--json"}, "usage", 2},
		{[]string{"sim", "--json"}, "usage", 2},
	}
	for _, tc := range tests {
		r := runCLI(t, tc.args...)
		var doc map[string]json.RawMessage
		dec := json.NewDecoder(strings.NewReader(r.stdout))
		if err := dec.Decode(&doc); err != nil {
			t.Errorf("%q: stdout is no JSON document: %v\n%s", tc.args, err, r)
			continue
		}
		if dec.More() {
			t.Errorf("%q: more than one document on stdout:\n%s", tc.args, r)
		}
		var e struct {
			Code     string  `json:"code"`
			Message  string  `json:"message"`
			Hint     *string `json:"hint"`
			ExitCode int     `json:"exit_code"`
		}
		var raw map[string]json.RawMessage
		json.Unmarshal(doc["error"], &raw)
		json.Unmarshal(doc["error"], &e)
		_, hasHint := raw["hint"]
		if string(doc["ok"]) != "false" || len(doc["command"]) == 0 || e.Code != tc.code || e.ExitCode != tc.exit || e.Message == "" || !hasHint || len(raw) != 4 || r.code != tc.exit {
			t.Errorf("%q: error document %s, want code %q exit %d (process exit %d)", tc.args, r.stdout, tc.code, tc.exit, r.code)
		}
	}
}

// TestRefusedCombinations lists the flag combinations that would do
// nothing, and checks each is refused with its reason before anything
// else happens.
func TestRefusedCombinations(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "app.bin")
	os.WriteFile(file, []byte("x"), 0o644)
	tests := []struct {
		args   []string
		reason string
	}{
		{[]string{"sim", "--json"}, "has no result"},
		{[]string{"sim", "--chip", "esp8266", "--zero-key"}, "--zero-key applies to the Beken simulator"},
		{[]string{"sim", "--chip", "esp8266", "--timing"}, "realistic timing on by default (--no-timing turns it off)"},
		{[]string{"sim", "--chip", "bk7231t", "--no-timing"}, "--no-timing applies to the ESP8266 simulator"},
		{[]string{"sim", "--chip", "bk7231n", "--stub-model", "esptool"}, "Beken chips run no uploaded stub"},
		{[]string{"sim", "--chip", "bk7231n", "--release-after", "2s"}, "boots its firmware on the Reboot command"},
		{[]string{"sim", "--chip", "bk7231n", "--idle-exit", "1s"}, "a BootROM waits"},
		{[]string{"sim", "--chip", "esp8266", "--power-loss-rate", "0.1"}, "--power-loss-at"},
		{[]string{"sim", "--chip", "esp8266", "--flash-inaccessible"}, "applies to the Beken simulator"},
		{[]string{"sim", "--chip", "esp8266", "--power-loss-op", "erase"}, "--power-loss-at is not given"},
		{[]string{"sim", "--unpaced", "--latency", "5ms"}, "--unpaced delivers every byte at once"},
		{[]string{"sim", "--adapter", "ch9102"}, "unknown adapter"},
		{[]string{"sim", "--net", "192.168.1.5"}, "loopback address"},
		{[]string{"sim", "--delay", "1s"}, "go together"},
		{[]string{"sim", "--reset-rate", "2"}, "want a probability"},
		{[]string{"sim", "--list", "--chip", "esp8266"}, "serve nothing"},
		{[]string{"sim", "--forget", "bk7231q"}, "no simulator for chip"},
		{[]string{"sim", "--flash", file, "--mac", "10:D5:61:00:00:01"}, "with --flash the file is the flash"},
		{[]string{"sim", "--manual-reset", "--auto-reset", "1s"}, "exclude each other"},
		{[]string{"sim", "--fault-after", "100"}, "none is given"},
		{[]string{"sim", "--seed", "7"}, "none is given"},
		{[]string{"tuya-config", "--json", "--template", "obk", file}, "a template is in the firmware's own format"},
		{[]string{"tuya-config", "--show-secrets", "--template", "esphome", file}, "templates hold no secrets"},
		{[]string{"tuya-config", "--name", "plug", file}, "--name goes with --template"},
		{[]string{"tuya-config", "--template", "obk", "--name", "plug", file}, "carry no name"},
		{[]string{"tuya-config", "--template", "yaml", file}, "want obk, obk-json, esphome, tasmota"},
		{[]string{"write", "-p", "sim:bk7231n", "--raw", file}, "--raw needs --addr"},
		{[]string{"write", "-p", "sim:bk7231n", "--raw", "--addr", "0x11000", "--include-bootloader", file}, "--include-bootloader does nothing with --raw"},
		{[]string{"write", "-p", "sim:esp8266", "--raw", "--addr", "0", "--flash-size", "1MB", file}, "--flash-size does nothing with --raw"},
		{[]string{"write", "-p", "sim:bk7231n", "--flash-mode", "qio", file}, "--flash-mode applies to ESP8266 images"},
		{[]string{"write", "--chip", "bk7231t", "-p", "/dev/null", "--flash-size", "1MB", file}, "--flash-size applies to ESP8266 images"},
		{[]string{"write", "-p", "sim:esp8266", "--include-bootloader", file}, "--include-bootloader applies to Beken QIO images"},
		{[]string{"write", "-p", "sim:bk7231n", "--offline", file}, "--offline applies to catalogue names"},
		{[]string{"write", "-p", "sim:bk7231n", "--manifest", file, file}, "--manifest applies to catalogue names"},
		{[]string{"write", "-p", "sim:bk7231n", "--dry-run", "--no-reboot", file}, "--no-reboot does nothing with --dry-run"},
		{[]string{"write", "-p", "sim:bk7231n", "--firmware", "openbeken", file}, "not both"},
		{[]string{"restore", "-p", "sim:bk7231n", "--dry-run", "--no-reboot", file}, "--no-reboot does nothing with --dry-run"},
		{[]string{"write", "-p", "sim:bk7231n", "--dry-run", "--yes", file}, "--yes does nothing with --dry-run"},
		{[]string{"restore", "-p", "sim:bk7231n", "--yes", file}, "--yes goes with --force"},
		{[]string{"backup", "-p", "sim:esp8266", "--no-stub"}, "ROM loader cannot read flash"},
		{[]string{"detect", "-p", "sim:bk7231n", "--chip", "bk7231n", "--reset", "classic"}, "--reset applies to ESP8266 chips only"},
		{[]string{"detect", "-p", "sim:bk7231n", "--chip", "bk7231n", "--no-stub"}, "--no-stub applies to ESP8266 chips only"},
		{[]string{"detect", "-p", "sim:bk7231n", "-vvvv"}, "up to -vvv"},
		{[]string{"ports", "-v"}, "has no verbose output"},
		{[]string{"inventory", "-vv"}, "has no verbose output"},
		{[]string{"firmware", "list", "--sha256", "00"}, "--sha256 applies to 'firmware verify' only"},
		{[]string{"firmware", "list", "--offline"}, "--offline applies to 'firmware fetch' only"},
		{[]string{"firmware", "verify", file, "--offline"}, "--offline applies to 'firmware fetch' only"},
		{[]string{"firmware", "list", "--efuse-key", "zero"}, "--efuse-key applies to --chip bk7231n only"},
		{[]string{"provision", "--ap", "--firmware", "tasmota", "--port", "/dev/ttyUSB0", "--ssid", "home"}, "not a serial port"},
		{[]string{"provision", "--ap", "--firmware", "tasmota", "--wifi-password", "secret"}, "without --ssid"},
		{[]string{"provision", "--port", "/dev/ttyUSB0", "--ssid", "home", "--web-password", "x"}, "--web-password applies to --ap only"},
		{[]string{"provision", "--port", "/dev/ttyUSB0", "--ssid", "home", "--firmware", "tasmota"}, "--firmware applies to --ap only"},
		{[]string{"provision", "--port", "sim:bk7231n", "--ssid", "home"}, "use --ap --port sim:bk7231n"},
		{[]string{"provision", "--ap", "--port", "sim:bk7231n", "--ap-host", "127.0.0.1", "--ssid", "home"}, "which tuyaflash finds"},
		{[]string{"verify", "--port", "/dev/ttyUSB0"}, "verify starts virtual devices only"},
		{[]string{"verify", "--port", "sim:bk7231n", "--host", "10.0.0.9"}, "exclude each other"},
		{[]string{"verify", "--port", "sim:bk7231q"}, "no simulator for chip"},
		{[]string{"detect", "-p", "sim:bk7231n#a/b"}, "instance name"},
		{[]string{"verify", "--host", "10.0.0.9", "--user", "admin"}, "--user goes with --password"},
		{[]string{"verify", "--host", "10.0.0.9", "--mac", "nonsense"}, "--mac"},
		{[]string{"inventory", "forget"}, "needs one DEVICE"},
		{[]string{"inventory", "forget", "x", "--show-secrets"}, "does nothing with inventory forget"},
		{[]string{"export", "templates", "--mqtt-host", "x"}, "does not apply to export templates"},
		{[]string{"export", "tinytuya", "--devices", "d.json", "--all"}, "--all goes with --undo"},
	}
	for _, tc := range tests {
		r := runCLI(t, tc.args...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, tc.reason) {
			t.Errorf("%q: %s\nwant usage error %q", tc.args, r, tc.reason)
		}
		if strings.Contains(r.stderr, "power-cycle") {
			t.Errorf("%q: asked for a power-cycle before refusing:\n%s", tc.args, r)
		}
	}
}

// TestHelpShowsPlainBooleans: --json, not --json[=true|false].
func TestHelpShowsPlainBooleans(t *testing.T) {
	for _, c := range commands {
		r := runCLI(t, c.name, "--help")
		if r.code != 0 {
			t.Errorf("%s --help: %s", c.name, r)
		}
		if strings.Contains(r.stdout, "[=") {
			t.Errorf("%s --help shows a flag value in brackets:\n%s", c.name, r.stdout)
		}
		if c.noJSON == "" && !regexp.MustCompile(`(?m)^      --json   `).MatchString(r.stdout) {
			t.Errorf("%s --help does not show --json plainly:\n%s", c.name, r.stdout)
		}
		if len(c.verbose) > 1 && !strings.Contains(r.stdout, "-vv: ") {
			t.Errorf("%s --help does not say what -vv adds:\n%s", c.name, r.stdout)
		}
	}
}

func TestWifiPassword(t *testing.T) {
	e := &env{stdin: strings.NewReader(""), stderr: &bytes.Buffer{}, terminal: func(any) bool { return false }}
	t.Setenv(wifiPasswordEnv, "from-env")
	if p, err := e.wifiPassword(passwordFlag{value: "from-flag", set: true}, "home"); err != nil || p != "from-flag" {
		t.Errorf("flag: %q %v", p, err)
	}
	if p, err := e.wifiPassword(passwordFlag{value: "", set: true}, "home"); err != nil || p != "" {
		t.Errorf("empty flag (open network): %q %v", p, err)
	}
	if p, err := e.wifiPassword(passwordFlag{}, "home"); err != nil || p != "from-env" {
		t.Errorf("environment: %q %v", p, err)
	}
	os.Unsetenv(wifiPasswordEnv)
	if _, err := e.wifiPassword(passwordFlag{}, "home"); exitCode(err) != ExitUsage || !strings.Contains(err.Error(), wifiPasswordEnv) {
		t.Errorf("no source: %v", err)
	}
	// A terminal is asked, without echo.
	tty, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	old := readPassword
	defer func() { readPassword = old }()
	readPassword = func(*os.File) ([]byte, error) { return []byte("typed"), nil }
	var prompt bytes.Buffer
	e = &env{stdin: tty, stderr: &prompt, terminal: func(any) bool { return true }}
	if p, err := e.wifiPassword(passwordFlag{}, "home"); err != nil || p != "typed" || !strings.Contains(prompt.String(), "Wi-Fi password for home (not shown)") {
		t.Errorf("prompt: %q %v %q", p, err, prompt.String())
	}
}

// TestJSONDocsMatchTheCode: docs/json.md lists, per command, exactly the
// top-level fields of the command's document type.
func TestJSONDocsMatchTheCode(t *testing.T) {
	docs := map[string]any{
		"ports": portsDoc{}, "detect": detectDoc{}, "backup": backupDoc{}, "write": writeDoc{}, "restore": writeDoc{},
		"tuya-config": tuyaConfigDoc{}, "firmware list": listDoc{}, "firmware fetch": fetchDoc{}, "firmware verify": verifyFileDoc{},
		"inventory": inventoryDoc{}, "inventory forget": forgetDoc{}, "export tinytuya": tinyTuyaDoc{},
		"export homeassistant": haDoc{}, "export templates": templatesDoc{}, "verify": verifyDoc{}, "provision": provisionDoc{},
		"version": versionDoc{}, "migrate": migrateDoc{},
		// objects shared by several documents
		"Every document": header{}, "The error object": errorJSON{}, "The chip object": chipJSON{},
	}
	sections := jsonDocSections(t)
	for name, v := range docs {
		want := jsonFields(v)
		if name != "Every document" {
			want = without(want, "ok", "command", "error")
		}
		got, ok := sections[name]
		if !ok {
			t.Errorf("docs/json.md has no section for %q", name)
			continue
		}
		sort.Strings(got)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("docs/json.md %q lists %v, the code has %v", name, got, want)
		}
	}
	for _, c := range commands {
		if c.noJSON != "" {
			continue
		}
		found := false
		for name := range docs {
			found = found || name == c.name || strings.HasPrefix(name, c.name+" ")
		}
		if !found {
			t.Errorf("command %s has no documented JSON document", c.name)
		}
	}
}

// TestTuyaConfigSecrets: the home Wi-Fi name is hidden like the keys, in
// the report and in JSON (null, not a placeholder).
func TestTuyaConfigSecrets(t *testing.T) {
	cfg := &tuyaconfig.Config{DeviceID: "bf0123", Activated: true, LocalKey: "0123456789abcdef", WiFiSSID: "HomeNet-5G", WiFiPassword: "hunter22",
		Keys:           map[string]json.RawMessage{"gw_wsm": json.RawMessage(`{"ssid":"HomeNet-5G","passwd":"hunter22","nc_tp":3}`), "gw_ai": json.RawMessage(`{"lckey":"0123456789abcdef"}`)},
		KeyBlockOffset: 0x1EE000}
	text := summary(cfg, false)
	for _, secret := range []string{"HomeNet-5G", "hunter22", "0123456789abcdef"} {
		if strings.Contains(text, secret) {
			t.Errorf("the report shows %q without --show-secrets:\n%s", secret, text)
		}
	}
	if !strings.Contains(summary(cfg, true), "HomeNet-5G") {
		t.Error("--show-secrets hides the Wi-Fi name")
	}
	m, err := tuyaConfigJSON(cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(m)
	for _, secret := range []string{"HomeNet-5G", "hunter22", "0123456789abcdef", "hidden"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("JSON shows %q without --show-secrets: %s", secret, b)
		}
	}
	if m["wifi_ssid"] != nil || m["local_key"] != nil || m["key_block_offset"] != "0x1EE000" || !strings.Contains(string(b), `"nc_tp":3`) {
		t.Errorf("JSON: %s", b)
	}
	shown, _ := tuyaConfigJSON(cfg, true)
	if shown["wifi_ssid"] != "HomeNet-5G" {
		t.Errorf("--show-secrets JSON: %v", shown["wifi_ssid"])
	}
}

// TestZeroKeyHintShowsTheBuild: the command the zero-key refusal names
// lists the build it is about.
func TestZeroKeyHintShowsTheBuild(t *testing.T) {
	qio := fwtest.Beken(fwtest.BootCRCN, 257, fwtest.App(fwtest.SigTuya, 0x8000, 2), 0x129F70)
	det, err := firmware.Detect(qio, "OpenBK7231N_QIO_1.0.bin")
	if err != nil {
		t.Fatal(err)
	}
	_, err = firmware.Place(flasher.Info{Family: flasher.BK7231N, FlashSize: 2 << 20, EfuseKey: firmware.KeyZero}, det, firmware.PlaceOptions{})
	hint := flasher.Hint(err)
	refs := commandRefs(hint, "hint")
	if len(refs) != 1 {
		t.Fatalf("hint %q names %d commands", hint, len(refs))
	}
	r := runCLI(t, append(strings.Fields(refs[0].line)[1:], "--json")...)
	if r.code != 0 || !strings.Contains(r.stdout, "OpenBK7231M_QIO_") {
		t.Errorf("%q does not list the BK7231M build:\n%s", refs[0].line, r)
	}
}

// TestVerboseLevels: each -v adds something: notes, a line per command to
// the chip, a hex dump.
func TestVerboseLevels(t *testing.T) {
	type level struct {
		flag      string
		has, lack []string
	}
	for _, l := range []level{
		{"", nil, []string{"chip answered", "  -> ", "TX "}},
		{"-v", []string{"chip answered", "switched to 921600 baud"}, []string{"  -> ", "TX "}},
		{"-vv", []string{"chip answered", "  -> ", "  <- "}, []string{"TX "}},
		{"-vvv", []string{"chip answered", "TX ", "RX "}, nil},
	} {
		args := []string{"detect", "--port", "sim:bk7231n", "--chip", "bk7231n"}
		if l.flag != "" {
			args = append(args, l.flag)
		}
		r := runCLI(t, args...)
		if r.code != 0 {
			t.Fatalf("%s: %s", l.flag, r)
		}
		for _, s := range l.has {
			if !strings.Contains(r.stderr, s) {
				t.Errorf("%q: stderr lacks %q:\n%s", l.flag, s, r.stderr)
			}
		}
		for _, s := range l.lack {
			if strings.Contains(r.stderr, s) {
				t.Errorf("%q: stderr has %q already", l.flag, s)
			}
		}
	}
}
