package demo_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/tuyaflash/tuyaflash/espimage"
	"github.com/tuyaflash/tuyaflash/firmware"
	"github.com/tuyaflash/tuyaflash/firmware/demo"
	"github.com/tuyaflash/tuyaflash/firmware/fwtest"
	"github.com/tuyaflash/tuyaflash/flasher"
)

// The demo images must pass tuyaflash's own detection and safety gates on
// the chip they are for, land where the real firmware would, and carry the
// marker that the simulated firmware looks for.
func TestDemoImagesDetectAndPlace(t *testing.T) {
	tests := []struct {
		family   flasher.Family
		key      string
		firmware string
		format   firmware.Format
		addr     uint32
	}{
		{flasher.BK7231T, firmware.KeyTuya, demo.OpenBekenFirmware, firmware.FormatBekenUA, 0x11000},
		{flasher.BK7231N, firmware.KeyTuya, demo.OpenBekenFirmware, firmware.FormatBekenUA, 0x11000},
		{flasher.ESP8266, "", demo.TasmotaFirmware, firmware.FormatESPApp, 0},
		{flasher.ESP8285, "", demo.TasmotaFirmware, firmware.FormatESPApp, 0},
	}
	for _, tt := range tests {
		t.Run(string(tt.family), func(t *testing.T) {
			data, err := demo.For(string(tt.family))
			if err != nil {
				t.Fatal(err)
			}
			if n := len(data); n < 1<<10 || n > 64<<10 {
				t.Errorf("demo image is %d bytes, want a few KiB", n)
			}
			det, err := firmware.Detect(data, "demo.bin")
			if err != nil {
				t.Fatalf("Detect: %v", err)
			}
			if det.Format != tt.format {
				t.Errorf("format %s, want %s", det.Format, tt.format)
			}
			if det.Demo == nil || det.Demo.Firmware != tt.firmware || det.Demo.Version != demo.Version || det.Demo.Chip != string(tt.family) {
				t.Fatalf("Detection.Demo = %+v, want %s %s for %s", det.Demo, tt.firmware, demo.Version, tt.family)
			}
			if det.Family != tt.family && !(tt.family == flasher.ESP8285 && det.Family == flasher.ESP8266) {
				t.Errorf("family %q, want %s", det.Family, tt.family)
			}
			info := flasher.Info{Family: tt.family, FlashSize: 2 << 20, EfuseKey: tt.key}
			p, err := firmware.Place(info, det, firmware.PlaceOptions{})
			if err != nil {
				t.Fatalf("Place: %v", err)
			}
			if len(p.Regions) != 1 || p.Regions[0].Addr != tt.addr || !bytes.Equal(p.Regions[0].Data, data) {
				t.Errorf("placement %+v, want the whole image at 0x%X", p.Regions, tt.addr)
			}
			if p.Patched {
				t.Errorf("the image header was patched: %v", p.Notes)
			}
			got, ok := demo.Is(data)
			if !ok || got != *det.Demo {
				t.Errorf("Is = %+v, %v", got, ok)
			}
		})
	}
}

func TestESPDemoIsValidDOUTImage(t *testing.T) {
	for _, build := range []func(string) ([]byte, error){demo.Tasmota, demo.ESPHome} {
		data, err := build("ESP8266")
		if err != nil {
			t.Fatal(err)
		}
		im, err := espimage.Parse(data)
		if err != nil {
			t.Fatalf("espimage.Parse: %v", err)
		}
		if im.FlashMode != espimage.ModeDOUT {
			t.Errorf("flash mode %s, want dout", im.FlashMode)
		}
		if len(im.Warnings) > 0 {
			t.Errorf("warnings: %v", im.Warnings)
		}
		if !bytes.Contains(data, []byte("synthetic demo image")) {
			t.Error("the image does not say it is synthetic")
		}
	}
}

// A demo image for one chip is refused on another, as a real build would
// be; and any demo is refused on a real chip by DemoGate.
func TestDemoImageGates(t *testing.T) {
	nDemo, _ := demo.OpenBeken("BK7231N")
	espDemo, _ := demo.Tasmota("ESP8266")
	tests := []struct {
		name string
		data []byte
		chip flasher.Info
	}{
		{"N demo on T", nDemo, flasher.Info{Family: flasher.BK7231T, FlashSize: 2 << 20}},
		{"ESP demo on N", espDemo, flasher.Info{Family: flasher.BK7231N, FlashSize: 2 << 20, EfuseKey: firmware.KeyTuya}},
		{"N demo on a zero-key N", nDemo, flasher.Info{Family: flasher.BK7231N, FlashSize: 2 << 20, EfuseKey: firmware.KeyZero}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			det, err := firmware.Detect(tt.data, "demo.bin")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := firmware.Place(tt.chip, det, firmware.PlaceOptions{}); !errors.Is(err, flasher.ErrRefused) {
				t.Errorf("Place = %v, want a refusal", err)
			}
		})
	}
	det, _ := firmware.Detect(nDemo, "demo.bin")
	if err := firmware.DemoGate(det, false); !errors.Is(err, flasher.ErrRefused) {
		t.Errorf("DemoGate on a real chip = %v, want a refusal", err)
	}
	if err := firmware.DemoGate(det, true); err != nil {
		t.Errorf("DemoGate on a virtual chip = %v", err)
	}
	real, _ := firmware.Detect(fwtest.App(fwtest.SigTuya, 0x8000, 1), "OpenBK7231N_UA_1.18.0.bin")
	if real.Demo != nil || firmware.DemoGate(real, false) != nil {
		t.Error("a non-demo image is treated as a demo")
	}
}

func TestResolveDemo(t *testing.T) {
	if !firmware.IsDemoName(" Demo ") || firmware.IsDemoName("openbeken") {
		t.Error("IsDemoName")
	}
	for _, fam := range []flasher.Family{flasher.BK7231T, flasher.BK7231N, flasher.ESP8266} {
		r, err := firmware.ResolveDemo(firmware.Chip{Family: fam})
		if err != nil {
			t.Fatalf("%s: %v", fam, err)
		}
		if r.Detection.Demo == nil || r.Detection.Demo.Chip != string(fam) {
			t.Errorf("%s: resolved %+v", fam, r.Detection.Demo)
		}
		want := firmware.KindOpenBeken
		if fam.Espressif() {
			want = firmware.KindTasmota
		}
		if fw := r.Choice.Firmware; fw == nil || fw.Kind != want || fw.Name != string(want) || fw.Version != demo.Version {
			t.Errorf("%s: catalogue-like entry %+v, want %s %s", fam, fw, want, demo.Version)
		}
	}
	if _, err := firmware.ResolveDemo(firmware.Chip{Family: "ESP32"}); !errors.Is(err, demo.ErrChip) {
		t.Errorf("ESP32: %v, want ErrChip", err)
	}
}

func TestDemoImagesAreDeterministic(t *testing.T) {
	for _, chip := range []string{"BK7231T", "BK7231N", "BK7231M", "BK7238", "BK7231U", "BK7252", "BK7252N", "ESP8266", "ESP8285"} {
		a, err := demo.For(chip)
		if err != nil {
			t.Fatalf("%s: %v", chip, err)
		}
		b, _ := demo.For(chip)
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two builds differ", chip)
		}
		if i, ok := demo.Is(a); !ok || i.Chip != chip {
			t.Errorf("%s: Is = %+v, %v", chip, i, ok)
		}
	}
	if _, err := demo.For("BK7231Q"); !errors.Is(err, demo.ErrChip) {
		t.Errorf("BK7231Q: %v, want ErrChip", err)
	}
}

func TestIs(t *testing.T) {
	app, _ := demo.OpenBeken("BK7231N")
	dump := bytes.Repeat([]byte{0xFF}, 2<<20)
	copy(dump[0x11000:], app)
	damaged := bytes.Clone(app)
	damaged[40] ^= 1 // inside the unit that holds the marker
	tests := []struct {
		name string
		data []byte
		want bool
	}{
		{"application", app, true},
		{"flash dump with the demo at 0x11000", dump, true},
		{"real-looking application", fwtest.App(fwtest.SigTuya, 0x8000, 7), false},
		{"damaged unit", damaged, false},
		{"marker without NUL", []byte(demo.Marker + `{"firmware":"x","version":"1","chip":"y"}`), false},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		if _, got := demo.Is(tt.data); got != tt.want {
			t.Errorf("%s: Is = %v, want %v", tt.name, got, tt.want)
		}
	}
}
