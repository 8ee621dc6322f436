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

	"github.com/tuyaflash/tuyaflash/firmware/fwtest"
)

// The migrate command end to end. Against `tuyaflash sim` on a
// pseudo-terminal (a separate process, so its flash outlives a killed
// tuyaflash) everything up to the reboot runs today. The steps after it
// need the virtual bench of issue 11 (a device that comes online with the
// firmware it was given, demo images): those tests skip, naming what they
// wait for, until the simulators have it.

// migrateReport is the part of `migrate --json` the tests read.
type migrateReport struct {
	Ports []struct {
		Port, Chip, MAC, Backup, Firmware, Host, Result, Error, Hint string
		BackupReused                                                 bool `json:"backup_reused"`
		Steps                                                        []struct {
			Step, Status, Message string
			Elapsed               float64 `json:"elapsed_s"`
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
		if err == nil && d.IsDir() && d.Name() == ".partial" {
			return filepath.SkipDir
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

// TestMigrateKillAtEachStep kills tuyaflash (SIGKILL) at the start and at
// the end of each step up to the reboot and in the middle of the backup
// and the write, then runs the same command: it reaches the same end state
// with one backup and a consistent journal.
func TestMigrateKillAtEachStep(t *testing.T) {
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
			saved := filepath.Join(t.TempDir(), "flash.bin")
			s := startSim(t, "--chip", "bk7231n", "--save", saved)
			store := t.TempDir()
			args := []string{"--port", s.tty, "--firmware", file, "--until", "reboot"}
			if !runKilled(t, store, pt.kill, args...) {
				t.Log("the run ended before the kill point (the step was too quick); the re-run is checked anyway")
			}
			rep, r := migrateJSON(t, store, args...)
			if r.code != 0 || rep.Ports[0].Result != "stopped" {
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

// needsVirtualBench skips when the virtual devices cannot come online yet
// (no demo image in this build: issue 11).
func needsVirtualBench(t *testing.T, store string) {
	t.Helper()
	r := run(t, store, "migrate", "--port", "sim:bk7231n", "--dry-run")
	if strings.Contains(r.stderr, "no demo image") {
		t.Skip("needs the virtual bench (issue 11): demo images and a virtual device that comes online")
	}
}

// TestMigrateReadmeFirstCommand: README's first command takes a virtual
// stock device to verified open firmware on the virtual network.
func TestMigrateReadmeFirstCommand(t *testing.T) {
	store := t.TempDir()
	needsVirtualBench(t, store)
	for _, port := range []string{"sim:bk7231n", "sim:bk7231t", "sim:esp8266"} {
		t.Run(port, func(t *testing.T) {
			store := t.TempDir()
			rep, r := migrateJSON(t, store, "--port", port)
			if r.code != 0 || rep.Ports[0].Result != "migrated" || rep.Ports[0].Host == "" {
				t.Fatalf("%s", r)
			}
			for _, st := range rep.Ports[0].Steps {
				t.Logf("%-9s %-7s %5.2f s  %s", st.Step, st.Status, st.Elapsed, st.Message)
			}
		})
	}
}

// TestMigrateWholeStoryKilled kills tuyaflash at each step of the whole
// story, the network steps included, on a pseudo-terminal device that
// comes online.
func TestMigrateWholeStoryKilled(t *testing.T) {
	needsVirtualBench(t, t.TempDir())
	for _, st := range []string{"provision", "find", "verify", "pins", "record"} {
		t.Run(st, func(t *testing.T) {
			s := startSim(t, "--chip", "bk7231n")
			store := t.TempDir()
			args := []string{"--port", s.tty, "--firmware", "demo"}
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
