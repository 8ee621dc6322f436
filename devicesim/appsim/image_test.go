package appsim

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tuyaflash/tuyaflash/firmware/demo"
	"github.com/tuyaflash/tuyaflash/firmware/fwtest"
	"github.com/tuyaflash/tuyaflash/internal/testshared"
)

func TestInspect(t *testing.T) {
	obkN, _ := demo.OpenBeken("BK7231N")
	obkT, _ := demo.OpenBeken("BK7231T")
	tasmotaDemo := mustESPDemo(t, demo.Tasmota)
	esphomeDemo := mustESPDemo(t, demo.ESPHome)
	// Tasmota's VERSION_MARKER with 12.5.0.0 in it, and its strings.
	marker := []byte{0xA5, 0x5A, 0xA5, 0x5A}
	marker = binary.LittleEndian.AppendUint32(marker, 0x0C050000)
	marker = append(marker, 0x5A, 0xA5, 0x5A, 0xA5)
	realTasmota := arduinoImage(append([]byte("x Tasmota/%s (%s) http://ota.tasmota.com/tasmota/release/tasmota.bin.gz "), marker...))
	realESPHome := arduinoImage([]byte("\x00 (esphome v2024.10.2)\x00"))
	badSum := espV1([]byte("Tasmota/%s"))
	badSum[len(badSum)-1] ^= 0xFF
	stockESP := espV1([]byte("tuya_iot sdk boot"))
	erasedTail := bytes.Clone(obkN[:34*10]) // too few intact units

	tests := []struct {
		name    string
		chip    string
		flash   *memFlash
		kind    Kind
		version string
		demo    bool
	}{
		{"OpenBeken demo on BK7231N", "BK7231N", bekenFlash(t, "BK7231N", obkN), KindOpenBeken, "demo-1", true},
		{"OpenBeken demo on BK7231T", "BK7231T", bekenFlash(t, "BK7231T", obkT), KindOpenBeken, "demo-1", true},
		{"BK7231N demo on BK7231M", "BK7231M", bekenFlash(t, "BK7231M", obkN), KindOpenBeken, "demo-1", true},
		{"BK7231N demo on a BK7231T", "BK7231T", bekenFlash(t, "BK7231T", obkN), KindNone, "", false},
		{"encrypted Beken application", "BK7231N", bekenFlash(t, "BK7231N", fwtest.App(fwtest.SigTuya, 0x20000, 3)), KindStock, "", false},
		{"erased Beken flash", "BK7231N", bekenFlash(t, "BK7231N", nil), KindNone, "", false},
		{"Beken application cut short", "BK7231N", bekenFlash(t, "BK7231N", erasedTail), KindNone, "", false},
		{"Tasmota demo", "ESP8266", espFlash(tasmotaDemo), KindTasmota, "demo-1", true},
		{"Tasmota demo on ESP8285", "ESP8285", espFlash(tasmotaDemo), KindTasmota, "demo-1", true},
		{"ESPHome demo", "ESP8266", espFlash(esphomeDemo), KindESPHome, "demo-1", true},
		{"Tasmota build", "ESP8266", espFlash(realTasmota), KindTasmota, "12.5.0", false},
		{"ESPHome build", "ESP8266", espFlash(realESPHome), KindESPHome, "2024.10.2", false},
		{"other ESP8266 image", "ESP8266", espFlash(stockESP), KindStock, "", false},
		{"ESP image with a bad checksum", "ESP8266", espFlash(badSum), KindNone, "", false},
		{"erased ESP flash", "ESP8266", newFlash(1 << 20), KindNone, "", false},
		{"OpenBeken demo on an ESP8266", "ESP8266", espFlash(obkN), KindNone, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := Inspect(tt.flash, tt.chip)
			if err != nil {
				t.Fatal(err)
			}
			if img.Kind != tt.kind || img.Version != tt.version || img.Demo != tt.demo {
				t.Errorf("Inspect = %+v, want %s %q demo=%v", img, tt.kind, tt.version, tt.demo)
			}
			if img.Evidence == "" {
				t.Error("no evidence")
			}
		})
	}
	if _, err := Inspect(newFlash(4096), "ESP32"); err == nil {
		t.Error("Inspect accepted an unknown chip")
	}
}

func TestRFMAC(t *testing.T) {
	f := newFlash(2<<20).put(rfN, rfSector(bekenMAC))
	if m, off, ok := rfMAC(f, []int64{rfN}); !ok || m != bekenMAC || off != rfN {
		t.Errorf("rfMAC = %v at 0x%X, %v; want %v", m, off, ok, bekenMAC)
	}
	// The MAC sits at +0x24, where BK7231GUIFlashTool reads it.
	sec := rfSector(bekenMAC)
	if !bytes.Equal(sec[0x24:0x2A], bekenMAC[:]) {
		t.Errorf("synthetic sector: MAC at 0x24 is % X", sec[0x24:0x2A])
	}
	// The BK7238 looks at 0x1E3000 too.
	g := newFlash(2<<20).put(0x1E3000, rfSector(bekenMAC))
	if m, _, ok := rfMAC(g, chips["BK7238"].rf); !ok || m != bekenMAC {
		t.Errorf("BK7238: %v %v", m, ok)
	}
	for _, bad := range [][]byte{nil, []byte("TLV\x00\xFF\xFF\x00\x00"), append([]byte("TLV\x00\x08\x00\x00\x00"), 0, 0x11, 0x11, 0x11, 0xF0, 0, 0, 0)} {
		h := newFlash(2<<20).put(rfN, bad)
		if _, _, ok := rfMAC(h, []int64{rfN}); ok {
			t.Errorf("rfMAC found a MAC in % X", bad)
		}
	}
}

// The parser must agree with the fixed offset BK7231GUIFlashTool reads on
// the real dumps (never printing their MACs).
func TestRFMACRealDumps(t *testing.T) {
	dir := testshared.Dir(t, "testdata", "bk7231")
	files, _ := filepath.Glob(filepath.Join(dir, "*.bin"))
	seen := 0
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil || len(b) != 2<<20 {
			continue
		}
		f := &memFlash{b: b}
		m, off, ok := rfMAC(f, []int64{rfN, rfT})
		if !ok {
			t.Errorf("%s: no MAC found", filepath.Base(p))
			continue
		}
		if !bytes.Equal(b[off+0x24:off+0x2A], m[:]) {
			t.Errorf("%s: the TLV walk and offset 0x24 disagree", filepath.Base(p))
		}
		seen++
	}
	if seen == 0 {
		t.Skip("no full dumps")
	}
}

func TestSettingsRoundTrip(t *testing.T) {
	f := newFlash(2 << 20)
	if _, err := loadSettings(f, 0x1D1000); err != errNoSettings {
		t.Errorf("erased sector: %v", err)
	}
	s := &settings{Firmware: "openbeken", SSID: [2]string{"net", ""}, ShortName: "obk1", Roles: []int{0, 1, 3}}
	if err := saveSettings(f, 0x1D1000, s); err != nil {
		t.Fatal(err)
	}
	got, err := loadSettings(f, 0x1D1000)
	if err != nil || got.ShortName != "obk1" || got.SSID[0] != "net" || len(got.Roles) != 3 {
		t.Fatalf("loaded %+v, %v", got, err)
	}
	f.b[0x1D1000+20] ^= 1
	if _, err := loadSettings(f, 0x1D1000); err != errNoSettings {
		t.Errorf("damaged sector: %v", err)
	}
	if err := saveSettings(newFlash(1<<20), 0x1D1000, s); err == nil || !strings.Contains(err.Error(), "beyond") {
		t.Errorf("sector beyond the flash: %v", err)
	}
}
