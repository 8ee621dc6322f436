//go:build linux

package e2e

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tuyaflash/tuyaflash/firmware/fwtest"
)

// espImage builds a valid ESP8266 V1 image (magic 0xE9) of about size
// bytes: a few segments of code-like bytes with zero runs, the XOR checksum
// seeded with 0xEF, flash mode mode (0 qio … 3 dout), 1 MB / 40 MHz.
func espImage(size int, mode byte, seed int64) []byte {
	rng := rand.New(rand.NewSource(seed))
	segs := [][2]uint32{{0x40100000, 0}, {0x3FFE8000, 0}, {0x40201010, 0}}
	per := (size - 8 - 3*8 - 16) / 3
	var img bytes.Buffer
	img.Write([]byte{0xE9, byte(len(segs)), mode, 0x00})
	binary.Write(&img, binary.LittleEndian, uint32(0x40100004))
	sum := byte(0xEF)
	for i := range segs {
		n := per &^ 3
		data := make([]byte, n)
		for j := 0; j < n; j++ {
			if j%97 < 30 {
				data[j] = 0
			} else {
				data[j] = byte(rng.Intn(256))
			}
		}
		binary.Write(&img, binary.LittleEndian, segs[i][0])
		binary.Write(&img, binary.LittleEndian, uint32(n))
		img.Write(data)
		for _, c := range data {
			sum ^= c
		}
	}
	for img.Len()%16 != 15 {
		img.WriteByte(0)
	}
	img.WriteByte(sum)
	return img.Bytes()
}

func TestESPDetectOverPTY(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ chip, family, flashID string }{
		{"esp8266", "ESP8266", "C84014"},
		{"esp8285", "ESP8285", "C84014"},
	} {
		t.Run(tc.chip, func(t *testing.T) {
			s := startSim(t, "--chip", tc.chip)
			// No --chip: the combined BK/ESP loop finds it.
			r := mustRun(t, t.TempDir(), "detect", "--port", s.tty, "--json")
			var doc struct {
				Chip map[string]any `json:"chip"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
				t.Fatalf("%v\n%s", err, r)
			}
			info := doc.Chip
			if info["family"] != tc.family || info["flash_id"] != "0x"+tc.flashID || info["mac"] == "" || info["protocol"] != "stub" {
				t.Errorf("detect = %v", info)
			}
			if !strings.Contains(r.stderr, "ESP8266: hold GPIO0 to GND") {
				t.Errorf("prompt does not tell how to enter the ESP loader:\n%s", r.stderr)
			}
		})
	}
}

// TestESPWriteReadRestore: ROM write (no stub), read back through the stub,
// compressed write, restore.
func TestESPWriteReadRestore(t *testing.T) {
	t.Parallel()
	s := startSim(t, "--chip", "esp8266")
	store := t.TempDir()
	orig := readFile(t, backupPath(t, mustRun(t, store, "backup", "--port", s.tty)))

	img := espImage(300000, 0 /* qio */, 1)
	f := filepath.Join(t.TempDir(), "tasmota.bin")
	os.WriteFile(f, img, 0o644)

	// ROM mode: written, not verified, header patched to DOUT.
	w := mustRun(t, store, "write", "--port", s.tty, "--addr", "0", "--no-stub", f)
	if !strings.Contains(w.stdout, "NOT verified") || !strings.Contains(w.stdout, "release GPIO0") {
		t.Errorf("ROM write output:\n%s", w)
	}
	if !strings.Contains(w.stderr, "flash mode set to dout") {
		t.Errorf("no note about the header patch:\n%s", w)
	}
	want := append([]byte(nil), img...)
	want[2] = 3 // DOUT
	got := readFile(t, backupPath(t, mustRun(t, store, "backup", "--port", s.tty)))
	if !bytes.Equal(got[:len(want)], want) {
		t.Fatal("read back after ROM write differs from the DOUT-patched image")
	}
	if !bytes.Equal(got[len(want)+0x1000:], orig[len(want)+0x1000:]) {
		t.Fatal("flash after the image changed (erase-size workaround?)")
	}

	// Stub mode: compressed and MD5-verified; --flash-mode keep leaves
	// the header as it is.
	img2 := espImage(200000, 2 /* dio */, 2)
	os.WriteFile(f, img2, 0o644)
	w2 := mustRun(t, store, "write", "--port", s.tty, "--addr", "0", "--flash-mode", "keep", f)
	if !strings.Contains(w2.stdout, "verified by MD5") {
		t.Errorf("stub write output:\n%s", w2)
	}
	got = readFile(t, backupPath(t, mustRun(t, store, "backup", "--port", s.tty)))
	if !bytes.Equal(got[:len(img2)], img2) {
		t.Fatal("read back after compressed write differs")
	}

	mustRun(t, store, "restore", "--port", s.tty, firstBackup(t, store))
	back := readFile(t, backupPath(t, mustRun(t, store, "backup", "--port", s.tty)))
	if !bytes.Equal(back, orig) {
		t.Fatal("restore did not bring back the original flash")
	}
}

func TestESPBadInputs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o644)
		return p
	}
	beken := fwtest.App(fwtest.SigTuya, 0x8000, 1) // an OpenBeken UA app
	random := make([]byte, 8192)
	rand.New(rand.NewSource(3)).Read(random)
	big := espImage(1200000, 3, 4)
	tests := []struct {
		name  string
		args  []string
		code  int
		frags []string
	}{
		{"BK image", []string{write("obk.bin", beken)}, 4, []string{"BK7231", "ESP8266"}},
		{"random bytes", []string{"--addr", "0", write("rnd.bin", random)}, 4, []string{"does not know this file", "--raw"}},
		{"larger than the flash", []string{"--addr", "0", write("big.bin", big)}, 4, []string{"larger than the chip's 1024 KiB flash"}},
		{"ESP8285 not DOUT", []string{"--addr", "0", "--chip", "esp8285", "--flash-mode", "qio", write("img.bin", espImage(50000, 0, 5))}, 4, []string{"wired for DOUT", "--flash-mode"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			chip := "esp8266"
			if strings.Contains(tc.name, "8285") {
				chip = "esp8285"
			}
			saved := filepath.Join(t.TempDir(), "flash.bin")
			s := startSim(t, "--chip", chip, "--save", saved)
			before := readFile(t, backupPath(t, mustRun(t, t.TempDir(), "backup", "--port", s.tty)))
			expectFail(t, t.TempDir(), tc.code, tc.frags, append([]string{"write", "--port", s.tty}, tc.args...)...)
			s.stop(t)
			if !bytes.Equal(readFile(t, saved), before) {
				t.Fatal("flash changed after a refused write")
			}
		})
	}
	t.Run("invalid stub file", func(t *testing.T) {
		s := startSim(t, "--chip", "esp8266")
		bad := write("stub.json", []byte(`{"entry": 1074790404, "text": "not base64!"}`))
		expectFail(t, t.TempDir(), 1, []string{"--stub", "text"}, "detect", "--port", s.tty, "--chip", "esp8266", "--stub", bad)
	})
	t.Run("MD5 mismatch", func(t *testing.T) {
		s := startSim(t, "--chip", "esp8266", "--corrupt-flash-at", "4100")
		f := write("img.bin", espImage(60000, 3, 6))
		expectFail(t, t.TempDir(), 5, []string{"MD5"}, "write", "--port", s.tty, "--addr", "0", "--yes", f)
	})
}
