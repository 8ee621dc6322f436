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
	"github.com/tuyaflash/tuyaflash/transport"
)

// expectFail runs tuyaflash, expects exit code want and every fragment in
// the combined output.
func expectFail(t *testing.T, store string, want int, frags []string, args ...string) result {
	t.Helper()
	r := run(t, store, args...)
	if r.code != want {
		t.Fatalf("exit %d, want %d:\n%s", r.code, want, r)
	}
	for _, f := range frags {
		if !strings.Contains(r.stdout+r.stderr, f) {
			t.Errorf("output lacks %q:\n%s", f, r)
		}
	}
	return r
}

func TestNoDeviceAnswering(t *testing.T) {
	t.Parallel()
	// A pty nobody serves: the adapter is there, the chip is not.
	pty, err := transport.OpenPTY(115200)
	if err != nil {
		t.Skip(err)
	}
	defer pty.Close()
	tests := []struct {
		chip  string
		frags []string
	}{
		{"auto", []string{"no chip answered within 1s", "power-cycle the module now", "GPIO0 to GND", "RX/TX are crossed", "at least 300 mA", "3.3 V logic", "--chip"}},
		{"bk7231n", []string{"no reply to link checks within 1s", "power-cycle the module now", "RX/TX are crossed", "3.3 V supply is strong enough", "3.3 V logic"}},
		{"esp8266", []string{"no SYNC reply within 1s", "hold GPIO0 to GND", "RX and TX are crossed", "300 mA"}},
	}
	for _, tc := range tests {
		t.Run(tc.chip, func(t *testing.T) {
			expectFail(t, t.TempDir(), 3, tc.frags, "detect", "--port", pty.SlavePath(), "--timeout", "1s", "--chip", tc.chip)
		})
	}
}

func TestNoSuchPort(t *testing.T) {
	t.Parallel()
	expectFail(t, t.TempDir(), 3, []string{"no such port", "tuyaflash ports"}, "detect", "--port", "/dev/ttyUSB-does-not-exist")
}

func TestWrongChip(t *testing.T) {
	t.Parallel()
	s := startSim(t, "--chip", "bk7231n")
	expectFail(t, t.TempDir(), 4, []string{"--chip BK7231T given, but the chip is a BK7231N"}, "detect", "--port", s.tty, "--chip", "bk7231t")
}

func TestWriteRefusals(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	small := filepath.Join(dir, "small.bin")
	os.WriteFile(small, bytes.Repeat([]byte{0x42}, 8192), 0o644)
	big := filepath.Join(dir, "big.bin")
	os.WriteFile(big, bytes.Repeat([]byte{0x42}, 3<<20), 0o644)
	ua := filepath.Join(dir, "ua.bin")
	os.WriteFile(ua, fwtest.App(fwtest.SigTuya, 0x20000, 3), 0o644)
	tests := []struct {
		name  string
		chip  string
		args  []string
		frags []string
	}{
		// The image gates (package firmware) ...
		{"UA app below the T bootloader", "bk7231t", []string{"--addr", "0x0", ua}, []string{"refused", "0x011000"}},
		{"unknown bytes", "bk7231n", []string{small}, []string{"does not know this file", "--raw"}},
		// ... and the chip's own guard, which holds even for --raw.
		{"raw below the T bootloader", "bk7231t", []string{"--raw", "--addr", "0x0", small}, []string{"the BK7231T bootloader occupies 0x000000-0x010FFF", "refused"}},
		{"raw just below 0x11000 on T", "bk7231t", []string{"--raw", "--addr", "0x10000", small}, []string{"bootloader", "refused"}},
		{"raw image larger than the flash", "bk7231n", []string{"--raw", "--addr", "0x0", big}, []string{"larger than the chip's 2048 KiB flash", "refused"}},
		{"raw image past the end", "bk7231n", []string{"--raw", "--addr", "0x1FF000", small}, []string{"does not fit the 2048 KiB flash", "refused"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startSim(t, "--chip", tc.chip, "--save", filepath.Join(t.TempDir(), "after.bin"))
			store := t.TempDir()
			before := readFile(t, backupPath(t, mustRun(t, store, "backup", "--port", s.tty)))
			expectFail(t, store, 4, tc.frags, append([]string{"write", "--port", s.tty}, tc.args...)...)
			s.stop(t)
			after := readFile(t, strings.TrimSpace(lastSaved(t, s)))
			if !bytes.Equal(before, after) {
				t.Fatal("flash changed after a refused write")
			}
		})
	}
}

// lastSaved returns the --save path the simulator reported.
func lastSaved(t *testing.T, s *sim) string {
	t.Helper()
	for _, l := range strings.Split(s.out.String(), "\n") {
		if p, ok := strings.CutPrefix(l, "flash saved to "); ok {
			return p
		}
	}
	t.Fatalf("simulator saved no flash:\n%s", s.out)
	return ""
}

func TestRestoreRefusesDamagedOrForeignBackups(t *testing.T) {
	t.Parallel()
	s := startSim(t, "--chip", "bk7231n")
	store := t.TempDir()
	good := backupPath(t, mustRun(t, store, "backup", "--port", s.tty))
	storeBefore := files(t, store)

	copyBackup := func(t *testing.T, mutate func(data []byte, sc map[string]any) []byte) string {
		dir := t.TempDir()
		data := readFile(t, good)
		var sc map[string]any
		json.Unmarshal(readFile(t, good+".json"), &sc)
		data = mutate(append([]byte(nil), data...), sc)
		p := filepath.Join(dir, "b.bin")
		os.WriteFile(p, data, 0o600)
		meta, _ := json.Marshal(sc)
		os.WriteFile(p+".json", meta, 0o600)
		return p
	}
	tests := []struct {
		name   string
		mutate func([]byte, map[string]any) []byte
		code   int
		frags  []string
	}{
		{"truncated", func(d []byte, _ map[string]any) []byte { return d[:1<<20] }, 5, []string{"truncated", "do not restore it"}},
		{"corrupted", func(d []byte, _ map[string]any) []byte { d[0x20000] ^= 0xFF; return d }, 5, []string{"sha256", "do not restore it"}},
		{"another device", func(d []byte, sc map[string]any) []byte { sc["mac"] = "10:D5:61:AA:BB:CC"; return d }, 4, []string{"not from this chip", "backup MAC 10:D5:61:AA:BB:CC", "--force"}},
		{"another family", func(d []byte, sc map[string]any) []byte { sc["family"] = "BK7231T"; return d }, 4, []string{"backup is of a BK7231T, the chip is a BK7231N"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := copyBackup(t, tc.mutate)
			expectFail(t, store, tc.code, tc.frags, "restore", "--port", s.tty, p)
		})
	}
	t.Run("no sidecar", func(t *testing.T) {
		p := copyBackup(t, func(d []byte, _ map[string]any) []byte { return d })
		os.Remove(p + ".json")
		expectFail(t, store, 1, []string{"has no sidecar", "--force"}, "restore", "--port", s.tty, p)
	})
	// Nothing in the store was touched by the refused restores.
	if after := files(t, store); len(after) != len(storeBefore) {
		t.Fatalf("store changed: %v -> %v", storeBefore, after)
	} else {
		for k, v := range storeBefore {
			if after[k] != v {
				t.Fatalf("%s changed", k)
			}
		}
	}
	// --force restores a foreign backup.
	p := copyBackup(t, func(d []byte, sc map[string]any) []byte { sc["mac"] = "10:D5:61:AA:BB:CC"; return d })
	mustRun(t, store, "restore", "--port", s.tty, "--force", p)
}

func TestBackupNeverOverwrites(t *testing.T) {
	t.Parallel()
	s := startSim(t, "--chip", "bk7231n")
	out := filepath.Join(t.TempDir(), "mine.bin")
	os.WriteFile(out, []byte("precious"), 0o600)
	expectFail(t, t.TempDir(), 4, []string{"never overwrites"}, "backup", "--port", s.tty, "-o", out)
	if string(readFile(t, out)) != "precious" {
		t.Fatal("existing file overwritten")
	}
	// A second backup of the same device lands next to the first.
	store := t.TempDir()
	a := backupPath(t, mustRun(t, store, "backup", "--port", s.tty))
	b := backupPath(t, mustRun(t, store, "backup", "--port", s.tty))
	if a == b || filepath.Dir(a) != filepath.Dir(b) {
		t.Fatalf("second backup %s vs first %s", b, a)
	}
	if _, err := os.Stat(a); err != nil {
		t.Fatal(err)
	}
}
