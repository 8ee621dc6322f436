//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bksim "github.com/tuyaflash/tuyaflash/devicesim/bk7231"
	"github.com/tuyaflash/tuyaflash/firmware/fwtest"
	"github.com/tuyaflash/tuyaflash/internal/testshared"
)

// The migrate command end to end, on `tuyaflash sim` over a
// pseudo-terminal (a separate process, so its flash outlives a killed
// tuyaflash) and on the virtual devices of sim: ports (kept in the data
// folder, so they outlive a killed tuyaflash too): the whole story, from a
// stock flash to a verified demo firmware on the virtual network.

// migrateReport is the part of `migrate --json` the tests read.
type migrateReport struct {
	Ports []struct {
		Port, Chip, MAC, Backup, Firmware, Host, Result, Error, Hint string
		BackupReused                                                 bool    `json:"backup_reused"`
		Elapsed                                                      float64 `json:"elapsed_s"`
		Steps                                                        []struct {
			Step, Status, Message string
			Elapsed               float64 `json:"elapsed_s"`
		}
		TinyTuya []struct {
			Moved []struct{ ID, MAC string }
		}
	}
	Failed  int
	Elapsed float64 `json:"elapsed_s"`
}

// migrateJSON runs migrate --json and decodes its one document.
func migrateJSON(t *testing.T, store string, args ...string) (migrateReport, result) {
	t.Helper()
	r := run(t, store, append([]string{"migrate", "--json"}, args...)...)
	var rep migrateReport
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("migrate --json: not a JSON document: %v\n%s", err, r)
	}
	if dec.More() {
		t.Fatalf("migrate --json printed more than one document:\n%s", r)
	}
	return rep, r
}

// uaImage writes an OpenBeken-like UA application (placed at 0x11000).
func uaImage(t *testing.T) (string, []byte) {
	t.Helper()
	img := fwtest.App(fwtest.SigTuya, 300000, 7)
	f := filepath.Join(t.TempDir(), "OpenBK7231N_UA_1.17.999.bin")
	if err := os.WriteFile(f, img, 0o644); err != nil {
		t.Fatal(err)
	}
	return f, img
}

// dumps lists the finished backups in the store.
func dumps(store string) []string {
	var out []string
	filepath.WalkDir(store, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && (d.Name() == ".partial" || d.Name() == "virtual") {
			return filepath.SkipDir // partial reads; the virtual devices' own flash
		}
		if err == nil && strings.HasSuffix(p, ".bin") && !strings.Contains(p, string(filepath.Separator)+"cache"+string(filepath.Separator)) {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// journal reads the migration journal of the only device in the inventory.
func journal(t *testing.T, store string) map[string]string {
	t.Helper()
	var inv struct {
		Devices []struct {
			Migration *struct {
				Steps []struct{ Step, Status string }
			}
		}
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(store, "inventory.json")), &inv); err != nil {
		t.Fatal(err)
	}
	if len(inv.Devices) != 1 || inv.Devices[0].Migration == nil {
		t.Fatalf("inventory: %d devices", len(inv.Devices))
	}
	out := map[string]string{}
	for _, s := range inv.Devices[0].Migration.Steps {
		out[s.Step] = s.Status
	}
	return out
}

// TestMigrateUntilRebootOverPTY: detect, backup, config, firmware, write,
// reboot through a pseudo-terminal; the same command again re-checks
// everything and redoes nothing.
func TestMigrateUntilRebootOverPTY(t *testing.T) {
	t.Parallel()
	for _, chip := range []string{"bk7231n", "bk7231t"} {
		t.Run(chip, func(t *testing.T) {
			saved := filepath.Join(t.TempDir(), "flash.bin")
			s := startSim(t, "--chip", chip, "--save", saved)
			store := t.TempDir()
			file, img := uaImage(t)
			rep, r := migrateJSON(t, store, "--port", s.tty, "--firmware", file, "--until", "reboot")
			if r.code != 0 || len(rep.Ports) != 1 || rep.Ports[0].Result != "stopped" {
				t.Fatalf("first run:\n%s", r)
			}
			p := rep.Ports[0]
			if p.Firmware != "openbeken 1.17.999" || p.BackupReused || len(dumps(store)) != 1 {
				t.Errorf("first run: firmware %q, backup reused %v, %d dumps", p.Firmware, p.BackupReused, len(dumps(store)))
			}
			for _, st := range p.Steps {
				t.Logf("%-9s %-7s %5.2f s  %s", st.Step, st.Status, st.Elapsed, st.Message)
			}
			again, r := migrateJSON(t, store, "--port", s.tty, "--firmware", file, "--until", "reboot")
			if r.code != 0 || again.Ports[0].Result != "stopped" {
				t.Fatalf("second run:\n%s", r)
			}
			for _, st := range again.Ports[0].Steps {
				if (st.Step == "backup" || st.Step == "write") && st.Status != "reused" {
					t.Errorf("second run: %s %s (%s)", st.Step, st.Status, st.Message)
				}
			}
			if n := len(dumps(store)); n != 1 {
				t.Errorf("%d backups after two runs", n)
			}
			s.stop(t)
			flash := readFile(t, saved)
			if !bytes.Equal(flash[0x11000:0x11000+len(img)], img) {
				t.Error("the image is not in the simulator's flash at 0x11000")
			}
			if first := readFile(t, p.Backup); !bytes.Equal(first[:0x11000], flash[:0x11000]) {
				t.Error("the bootloader area changed")
			}
		})
	}
}

// runKilled runs migrate with --events and kills it (SIGKILL, as kill -9)
// at the first event kill accepts. It reports whether the kill happened
// before the command ended by itself.
func runKilled(t *testing.T, store string, kill func(ev map[string]any) bool, args ...string) bool {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"migrate", "--events"}, args...)...)
	cmd.Env = storeEnv(store)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		var ev map[string]any
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			continue
		}
		if !killed && kill(ev) {
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
		}
	}
	cmd.Wait()
	return killed
}

// killThenRerun runs migrate with args, kills it (SIGKILL) at the first
// event kill accepts, runs it again and checks the end state: result
// want, one backup in the store, every journaled step done (or a note).
func killThenRerun(t *testing.T, store string, kill func(ev map[string]any) bool, want string, args ...string) {
	t.Helper()
	if !runKilled(t, store, kill, args...) {
		t.Log("the run ended before the kill point (the step was too quick); the re-run is checked anyway")
	}
	rep, r := migrateJSON(t, store, args...)
	if r.code != 0 || rep.Ports[0].Result != want {
		t.Fatalf("re-run:\n%s", r)
	}
	if n := len(dumps(store)); n != 1 {
		t.Errorf("%d backups in the store: %v", n, dumps(store))
	}
	for st, status := range journal(t, store) {
		if status != "done" && status != "note" {
			t.Errorf("journal: %s is %s", st, status)
		}
	}
}

// TestMigrateKillAtEachStep kills tuyaflash (SIGKILL) at the start and at
// the end of each step up to the reboot and in the middle of the backup
// and the write, then runs the same command: it reaches the same end state
// with one backup and a consistent journal.
func TestMigrateKillAtEachStep(t *testing.T) {
	t.Parallel()
	type point struct {
		name string
		kill func(ev map[string]any) bool
	}
	var points []point
	for _, st := range []string{"detect", "backup", "config", "firmware", "write", "reboot"} {
		points = append(points,
			point{"start of " + st, func(ev map[string]any) bool { return ev["step"] == st && ev["kind"] == "step-start" }},
			point{"end of " + st, func(ev map[string]any) bool { return ev["step"] == st && ev["kind"] == "step-end" }})
	}
	for _, st := range []string{"backup", "write"} {
		points = append(points, point{"middle of " + st, func(ev map[string]any) bool {
			done, _ := ev["done"].(float64)
			total, _ := ev["total"].(float64)
			return ev["step"] == st && ev["kind"] == "progress" && done > 0 && done >= total/3
		}})
	}
	file, img := uaImage(t)
	for _, pt := range points {
		t.Run(pt.name, func(t *testing.T) {
			t.Parallel()
			saved := filepath.Join(t.TempDir(), "flash.bin")
			s := startSim(t, "--chip", "bk7231n", "--save", saved)
			store := t.TempDir()
			killThenRerun(t, store, pt.kill, "stopped", "--port", s.tty, "--firmware", file, "--until", "reboot")
			s.stop(t)
			if flash := readFile(t, saved); !bytes.Equal(flash[0x11000:0x11000+len(img)], img) {
				t.Error("the image is not in the simulator's flash")
			}
		})
	}
}

// TestMigrateChecksBeforeThePrompt: what can be checked without the device
// fails before tuyaflash waits for it, and leaves nothing behind.
func TestMigrateChecksBeforeThePrompt(t *testing.T) {
	t.Parallel()
	s := startSim(t, "--chip", "bk7231n")
	for _, tc := range []struct {
		name string
		args []string
		want string
		code int
	}{
		{"catalogue build not in the cache, offline", []string{"--firmware", "openbeken", "--offline", "--chip", "bk7231n", "--until", "write"}, "tuyaflash firmware fetch openbeken --chip bk7231n", 1},
		{"no such image file", []string{"--firmware", "/nonexistent/fw.bin", "--until", "write"}, "/nonexistent/fw.bin", 1},
		{"no Wi-Fi network", []string{"--firmware", "/nonexistent/fw.bin"}, "--ssid is required", 2},
		{"Wi-Fi password neither given nor promptable", []string{"--ssid", "home"}, "TUYAFLASH_WIFI_PASSWORD", 2},
		{"bad tinytuya file", []string{"--ssid", "home", "--wifi-password", "x", "--tinytuya", "/etc/hostname"}, "tinytuya", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := t.TempDir()
			start := time.Now()
			r := run(t, store, append([]string{"migrate", "--port", s.tty}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d (want %d), stderr lacks %q:\n%s", r.code, tc.code, tc.want, r)
			}
			if strings.Contains(r.stderr, "power-cycle") {
				t.Errorf("asked for a power-cycle before failing:\n%s", r)
			}
			if time.Since(start) > 10*time.Second {
				t.Errorf("took %s", time.Since(start))
			}
			if f := files(t, store); len(f) != 0 {
				t.Errorf("left files behind: %v", f)
			}
		})
	}
}

// TestMigrateDryRun prints the plan and changes nothing: no file, no byte
// of the chip's flash.
func TestMigrateDryRun(t *testing.T) {
	t.Parallel()
	saved := filepath.Join(t.TempDir(), "flash.bin")
	s := startSim(t, "--chip", "bk7231n", "--save", saved)
	store := t.TempDir()
	first := filepath.Join(t.TempDir(), "first.bin")
	backupOut := mustRun(t, t.TempDir(), "backup", "--port", s.tty, "-o", first)
	_ = backupOut
	file, _ := uaImage(t)
	r := mustRun(t, store, "migrate", "--port", s.tty, "--firmware", file, "--ssid", "home", "--wifi-password", "x", "--dry-run")
	for _, want := range []string{"backup    planned", "write     planned", "0x011000", "provision planned"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the plan lacks %q:\n%s", want, r)
		}
	}
	if f := files(t, store); len(f) != 0 {
		t.Errorf("dry run left files: %v", f)
	}
	s.stop(t)
	if !bytes.Equal(readFile(t, saved), readFile(t, first)) {
		t.Error("dry run changed the flash")
	}
}

// TestMigrateSeveralPorts runs four virtual devices (distinct MACs) up to
// the reboot at once and notes the timings. The wall-time comparison with
// one device needs paced links (issue 11); before that the transfers run
// at memory speed and the comparison says nothing.
func TestMigrateSeveralPorts(t *testing.T) {
	t.Parallel()
	file, _ := uaImage(t)
	var args []string
	for i := range 4 {
		s := startSim(t, "--chip", "bk7231n", "--mac", fmt.Sprintf("D8:1F:12:00:00:%02X", i+1))
		args = append(args, "--port", s.tty)
	}
	store := t.TempDir()
	rep, r := migrateJSON(t, store, append(args, "--firmware", file, "--until", "reboot")...)
	if r.code != 0 || len(rep.Ports) != 4 || rep.Failed != 0 {
		t.Fatalf("four ports:\n%s", r)
	}
	slowest := 0.0
	for _, p := range rep.Ports {
		if p.Result != "stopped" {
			t.Errorf("%s: %s %s", p.Port, p.Result, p.Error)
		}
		total := 0.0
		for _, st := range p.Steps {
			total += st.Elapsed
		}
		slowest = max(slowest, total)
	}
	if n := len(dumps(store)); n != 4 {
		t.Errorf("%d backups for four devices", n)
	}
	t.Logf("four devices: %.1f s wall, slowest port %.1f s", rep.Elapsed, slowest)
	if slowest < 5 {
		t.Log("links are not paced (issue 11): the wall-time comparison is made by migrate's TestFourPortsInParallel on a fake clock")
	} else if rep.Elapsed > slowest*1.3 {
		t.Errorf("four ports took %.1f s, the slowest port alone %.1f s", rep.Elapsed, slowest)
	}
}

// logSteps logs a port's steps with their timings.
func logSteps(t *testing.T, rep migrateReport) {
	t.Helper()
	for _, p := range rep.Ports {
		t.Logf("%s: %s in %.1f s", p.Port, p.Result, p.Elapsed)
		for _, st := range p.Steps {
			t.Logf("  %-9s %-7s %6.2f s  %s", st.Step, st.Status, st.Elapsed, st.Message)
		}
	}
}

// tinytuyaFile writes a tinytuya devices.json with the device of mac (and
// another one).
func tinytuyaFile(t *testing.T, mac string) string {
	t.Helper()
	return writeIn(t, t.TempDir(), "devices.json", []byte(`[
  {"name": "virtual plug", "id": "bf00000000000000sim1", "key": "0123456789abcdef", "mac": "`+strings.ToLower(mac)+`", "ver": "3.3"},
  {"name": "other", "id": "bfffffffffffffffffff", "key": "fedcba9876543210", "mac": "aa:bb:cc:dd:ee:ff", "ver": "3.3"}
]
`))
}

// chipMAC runs detect on port and returns the chip's MAC.
func chipMAC(t *testing.T, store, port string) string {
	t.Helper()
	var doc struct{ Chip struct{ MAC string } }
	r := mustRun(t, store, "detect", "--port", port, "--json")
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || doc.Chip.MAC == "" {
		t.Fatalf("detect: %v\n%s", err, r)
	}
	return doc.Chip.MAC
}

// TestMigrateReadmeFirstCommand: README's first command takes a virtual
// stock device to verified open firmware on the virtual network, offline:
// OpenBeken's demo with the Tuya pins applied on Beken chips, Tasmota's on
// the ESP8266, the tinytuya entry moved; and a real stock dump as well.
// The device stays migrated: verify --port finds it online again later.
func TestMigrateReadmeFirstCommand(t *testing.T) {
	t.Parallel()
	ports := []string{"sim:bk7231n", "sim:bk7231t", "sim:esp8266"}
	if dir := testshared.Lookup("testdata", "bk7231", "MOES_WK-US2-TC_In-Wall_Outlet.bin"); dir != "" {
		ports = append(ports, "sim:bk7231n:"+dir)
	} else {
		t.Log("../shared absent: the real-dump case is left out")
	}
	for _, port := range ports {
		name := strings.TrimPrefix(port, "sim:")
		if i := strings.IndexByte(name, ':'); i >= 0 {
			name = name[:i] + " with a real dump"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			store := t.TempDir()
			devices := tinytuyaFile(t, chipMAC(t, store, port))
			rep, r := migrateJSON(t, store, "--port", port, "--tinytuya", devices)
			logSteps(t, rep)
			if r.code != 0 || rep.Ports[0].Result != "migrated" || rep.Ports[0].Host == "" {
				t.Fatalf("%s", r)
			}
			p := rep.Ports[0]
			esp := strings.Contains(port, "esp")
			want := map[string]string{"backup": "done", "write": "done", "provision": "done", "verify": "done", "pins": "done", "record": "done"}
			if esp {
				want["pins"] = "note" // the ESP8266's Tuya config format is not public: no pin map
			}
			for _, st := range p.Steps {
				if w, ok := want[st.Step]; ok && st.Status != w {
					t.Errorf("%s: %s (%s), want %s", st.Step, st.Status, st.Message, w)
				}
			}
			if len(p.TinyTuya) != 1 || len(p.TinyTuya[0].Moved) != 1 || p.TinyTuya[0].Moved[0].ID != "bf00000000000000sim1" {
				t.Errorf("tinytuya: %+v", p.TinyTuya)
			}
			if strings.Contains(string(readFile(t, devices)), "bf00000000000000sim1") {
				t.Error("the device is still in devices.json")
			}
			expect := "openbeken"
			if esp {
				expect = "tasmota"
			}
			canon := "sim:" + strings.SplitN(strings.TrimPrefix(port, "sim:"), ":", 2)[0]
			v := mustRun(t, store, "verify", "--port", canon, "--expect", expect, "--json")
			var doc struct{ Device struct{ MAC, Host string } }
			json.Unmarshal([]byte(v.stdout), &doc)
			if !strings.EqualFold(doc.Device.MAC, p.MAC) || doc.Device.Host != p.Host {
				t.Errorf("verify later: %+v, migrated as %s at %s", doc.Device, p.MAC, p.Host)
			}
		})
	}
}

// TestMigrateWholeStoryKilled kills tuyaflash at each step of the whole
// story, the network steps included, on a pseudo-terminal device that
// comes online. Over a pty tuyaflash learns that the device is virtual
// only once connected (contract C2), so the run names the firmware and
// the network as for a real device: the demo, the virtual network.
func TestMigrateWholeStoryKilled(t *testing.T) {
	t.Parallel()
	for _, st := range []string{"provision", "find", "verify", "pins", "record"} {
		t.Run(st, func(t *testing.T) {
			t.Parallel()
			s := startSim(t, "--chip", "bk7231n")
			store := t.TempDir()
			args := []string{"--port", s.tty, "--firmware", "demo", "--ssid", "tuyaflash-virtual", "--wifi-password", "virtual-bench"}
			runKilled(t, store, func(ev map[string]any) bool { return ev["step"] == st && ev["kind"] == "step-end" }, args...)
			rep, r := migrateJSON(t, store, args...)
			if r.code != 0 || rep.Ports[0].Result != "migrated" {
				t.Fatalf("re-run:\n%s", r)
			}
			if n := len(dumps(store)); n != 1 {
				t.Errorf("%d backups", n)
			}
		})
	}
}

// TestMigrateKilledOnVirtualDevice: kill -9 while a sim: device runs in
// tuyaflash's own process — in the middle of the backup, after the write,
// after provisioning (its Wi-Fi settings), after verify — and the same
// command again reaches the same end state: the device keeps its flash like
// a real one.
func TestMigrateKilledOnVirtualDevice(t *testing.T) {
	t.Parallel()
	points := map[string]func(ev map[string]any) bool{
		"middle of backup": func(ev map[string]any) bool {
			done, _ := ev["done"].(float64)
			total, _ := ev["total"].(float64)
			return ev["step"] == "backup" && ev["kind"] == "progress" && done > 0 && done >= total/3
		},
		"end of write":     func(ev map[string]any) bool { return ev["step"] == "write" && ev["kind"] == "step-end" },
		"end of provision": func(ev map[string]any) bool { return ev["step"] == "provision" && ev["kind"] == "step-end" },
		"end of verify":    func(ev map[string]any) bool { return ev["step"] == "verify" && ev["kind"] == "step-end" },
	}
	for name, kill := range points {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			killThenRerun(t, t.TempDir(), kill, "migrated", "--port", "sim:bk7231n#k")
		})
	}
}

// TestMigrateAgainOnVirtualESP: on a virtual ESP8266 a migration run in two
// parts (up to the reboot, then the rest) and then once more reaches a
// verified device each time, although the second and third runs find the
// image in place and write nothing: the simulated user follows the reboot
// step's instruction (before, only a flash write made them release GPIO0,
// and the second run waited 3 minutes for a console that never came).
func TestMigrateAgainOnVirtualESP(t *testing.T) {
	t.Parallel()
	store := t.TempDir()
	for i, args := range [][]string{
		{"--port", "sim:esp8266#again", "--until", "reboot"},
		{"--port", "sim:esp8266#again"},
		{"--port", "sim:esp8266#again"},
	} {
		start := time.Now()
		rep, r := migrateJSON(t, store, args...)
		want := "migrated"
		if i == 0 {
			want = "stopped"
		}
		if r.code != 0 || len(rep.Ports) != 1 || rep.Ports[0].Result != want {
			t.Fatalf("run %d (%v): want %s:\n%s", i+1, args, want, r)
		}
		if took := time.Since(start); took > time.Minute {
			t.Errorf("run %d took %v", i+1, took)
		}
	}
}

// TestMigrateWrongWiFiPassword: a device given the wrong password never
// comes online; the port fails saying what to do.
func TestMigrateWrongWiFiPassword(t *testing.T) {
	t.Parallel()
	store := t.TempDir()
	rep, r := migrateJSON(t, store, "--port", "sim:bk7231n#w", "--ssid", "tuyaflash-virtual", "--wifi-password", "wrong-password", "--wait", "6s")
	if r.code == 0 || rep.Ports[0].Result != "failed" {
		t.Fatalf("%s", r)
	}
	p := rep.Ports[0]
	if !strings.Contains(p.Error, "did not come online") || !strings.Contains(p.Hint, "virtual network") || !strings.Contains(p.Hint, "virtual-bench") {
		t.Errorf("error %q, hint %q", p.Error, p.Hint)
	}
}

// TestMigrateMACMismatchFlagged: the device that answers on the network
// reports another MAC than the flash backed up (its RF calibration sector
// was replaced after the backup): flagged, not recorded as migrated.
func TestMigrateMACMismatchFlagged(t *testing.T) {
	t.Parallel()
	store := t.TempDir()
	port := "sim:bk7231n#m"
	if rep, r := migrateJSON(t, store, "--port", port, "--until", "reboot"); r.code != 0 || rep.Ports[0].Result != "stopped" {
		t.Fatalf("up to the reboot:\n%s", r)
	}
	other, err := bksim.DefaultFlashSize(bksim.BK7231N, [6]byte{0x02, 0x42, 0x4B, 0x99, 0x99, 0x99}, 0)
	if err != nil {
		t.Fatal(err)
	}
	rf := bksim.RFOffset(bksim.BK7231N)
	sector := writeIn(t, t.TempDir(), "rf.bin", other[rf:rf+0x1000])
	mustRun(t, store, "write", "--port", port, "--raw", "--addr", fmt.Sprintf("0x%X", rf), sector)
	rep, r := migrateJSON(t, store, "--port", port, "--from", "provision")
	if r.code == 0 || rep.Ports[0].Result != "flagged" {
		t.Fatalf("%s", r)
	}
	if !strings.Contains(rep.Ports[0].Error, "02:42:4B:99:99:99") {
		t.Errorf("error %q does not name the MAC that answered", rep.Ports[0].Error)
	}
	var inv struct {
		Devices []struct {
			Virtual   bool
			Migration *struct{ Outcome string }
		}
	}
	json.Unmarshal(readFile(t, filepath.Join(store, "inventory.json")), &inv)
	if len(inv.Devices) != 1 || !inv.Devices[0].Virtual || inv.Devices[0].Migration == nil || inv.Devices[0].Migration.Outcome != "flagged" {
		t.Errorf("inventory: %+v", inv.Devices)
	}
}

// TestMigrateFourVirtualDevicesPaced: the whole story, paced as on a real
// bench (USB adapter model, wire time, flash timing, the firmwares' own
// delays), for one device and for four at once: four take about as long
// as the slowest of them, not the sum.
func TestMigrateFourVirtualDevicesPaced(t *testing.T) {
	t.Parallel()
	runPaced := func(store string, args ...string) migrateReport {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"migrate", "--json", "--baud", "max"}, args...)...)
		cmd.Env = pacedEnv(store)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			t.Errorf("%v\n%s\n%s", err, out.String(), errOut.String())
		}
		var rep migrateReport
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Error(err)
		}
		return rep
	}
	// The single device runs beside the four (its own store and data
	// folder): paced runs wait on the wire and the firmwares' timers,
	// not on the CPU.
	var one migrateReport
	oneDone := make(chan struct{})
	go func() {
		defer close(oneDone)
		one = runPaced(t.TempDir(), "--port", "sim:bk7231n#solo")
	}()
	var args []string
	for range 4 {
		args = append(args, "--port", "sim:bk7231n")
	}
	four := runPaced(t.TempDir(), args...)
	<-oneDone
	logSteps(t, one)
	logSteps(t, four)
	slowest := 0.0
	for _, p := range four.Ports {
		if p.Result != "migrated" {
			t.Errorf("%s: %s %s", p.Port, p.Result, p.Error)
		}
		slowest = max(slowest, p.Elapsed)
	}
	macs := map[string]bool{}
	for _, p := range four.Ports {
		macs[p.MAC] = true
	}
	if len(macs) != 4 {
		t.Errorf("four devices, %d MACs", len(macs))
	}
	t.Logf("one device: %.1f s; four at once: %.1f s wall, the slowest port %.1f s", one.Elapsed, four.Elapsed, slowest)
	if four.Elapsed > slowest*1.3 {
		t.Errorf("four ports took %.1f s, the slowest alone %.1f s", four.Elapsed, slowest)
	}
}
