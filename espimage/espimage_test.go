package espimage

import (
	"bytes"
	"errors"
	"github.com/tuyaflash/tuyaflash/internal/testshared"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseV1(t *testing.T) {
	img := v1(3, 0x20, 0x40100004, seg{0x40100000, fill(1000, 1)}, seg{0x3FFE8000, fill(33, 2)})
	im, err := Parse(img)
	if err != nil {
		t.Fatal(err)
	}
	if im.Format != FormatV1 || im.FlashMode != ModeDOUT || im.Entry != 0x40100004 {
		t.Errorf("header: %v %v 0x%X", im.Format, im.FlashMode, im.Entry)
	}
	if name, n, ok := im.FlashSize(); !ok || name != "1MB" || n != 1<<20 {
		t.Errorf("size %q %d %v", name, n, ok)
	}
	if f := im.FlashFreq(); f != "40m" {
		t.Errorf("freq %q", f)
	}
	if len(im.Segments) != 2 || im.Segments[1].Addr != 0x3FFE8000 || im.Segments[1].Size != 33 || im.Segments[0].Offset != 16 {
		t.Errorf("segments %+v", im.Segments)
	}
	if im.End != len(img) || im.End%16 != 0 {
		t.Errorf("End %d, file %d", im.End, len(img))
	}
	if im.App != nil || im.EbootCRC != nil || len(im.Warnings) != 0 {
		t.Errorf("unexpected extras: %+v", im)
	}
}

func TestParseArduinoLayout(t *testing.T) {
	img := arduino(3, 0x20)
	im, err := Parse(img)
	if err != nil {
		t.Fatal(err)
	}
	if im.App == nil || im.App.Offset != 0x1000 || len(im.App.Segments) != 3 || im.App.Segments[0].Addr != 0x40201010 {
		t.Fatalf("app part: %+v", im.App)
	}
	if im.EbootCRC == nil || !im.EbootCRC.Valid || im.EbootCRC.Length != uint32(len(img)) {
		t.Fatalf("eboot CRC: %+v", im.EbootCRC)
	}
	if len(im.Warnings) != 0 {
		t.Errorf("warnings: %q", im.Warnings)
	}
	// The CRC words sit inside the app's first segment: its checksum was
	// made over zeros there, and the parser accepts that.
	if im.App.Segments[0].Offset != 0x1010 {
		t.Errorf("first app segment data at 0x%X, want 0x1010", im.App.Segments[0].Offset)
	}
}

// TestParseArduinoWithoutCRC mirrors a real tasmota-lite.bin: a
// one-segment eboot and an application whose IROM code starts right at
// 0x1010, where elf2bin's CRC step would have put its words.
func TestParseArduinoWithoutCRC(t *testing.T) {
	img := v1(3, 0x20, 0x4010F45C, seg{0x4010F000, fill(3584, 1)})
	for len(img) < 0x1000 {
		img = append(img, 0xAA)
	}
	img = append(img, v1(3, 0x20, 0x401000B8, seg{0x40201010, fill(9000, 2)}, seg{0x3FFE8000, fill(1348, 3)})...)
	im, err := Parse(img)
	if err != nil {
		t.Fatal(err)
	}
	if im.App == nil || im.EbootCRC != nil || len(im.Warnings) != 0 || len(im.Segments) != 1 {
		t.Fatalf("%+v", im)
	}
}

func TestParseStaleArduinoCRCWarns(t *testing.T) {
	img := arduino(3, 0x20)
	img[2] = 0 // what a header patch without CRC update leaves
	im, err := Parse(img)
	if err != nil {
		t.Fatal(err)
	}
	if im.EbootCRC == nil || im.EbootCRC.Valid {
		t.Fatalf("eboot CRC should be present and stale: %+v", im.EbootCRC)
	}
	if len(im.Warnings) != 1 || !strings.Contains(im.Warnings[0], "checkFlashCRC") {
		t.Errorf("warnings %q", im.Warnings)
	}
}

func TestParseV2(t *testing.T) {
	app := v2(2, 0x40, seg{0x40100000, fill(900, 4)}, seg{0x3FFE8000, fill(77, 5)})
	im, err := Parse(app)
	if err != nil {
		t.Fatal(err)
	}
	if im.Format != FormatV2 || im.V2CRC == nil || im.End != len(app) || im.FlashMode != ModeDIO {
		t.Fatalf("V2: %+v", im)
	}
	if im.Segments[0].InChecksum || !im.Segments[1].InChecksum {
		t.Errorf("IROM part must be outside the checksum: %+v", im.Segments)
	}
	// SDK layout: boot_v1.x at 0, user1.bin at 0x1000.
	boot := v1(2, 0x40, 0x40100004, seg{0x40100000, fill(2000, 6)})
	flash := append(boot, bytes.Repeat([]byte{0xFF}, 0x1000-len(boot))...)
	flash = append(flash, app...)
	im, err = Parse(flash)
	if err != nil {
		t.Fatal(err)
	}
	if im.App == nil || im.App.Format != FormatV2 || im.EbootCRC != nil {
		t.Fatalf("SDK layout: %+v", im)
	}
}

func TestParseRefuses(t *testing.T) {
	good := v1(3, 0x20, 0x40100004, seg{0x40100000, fill(64, 1)})
	badSum := bytes.Clone(good)
	badSum[len(badSum)-1] ^= 0x55
	badData := bytes.Clone(good)
	badData[20] ^= 1
	badCRC := v2(2, 0x40, seg{0x40100000, fill(64, 4)})
	badCRC[len(badCRC)-1] ^= 0x80
	badApp := arduino(3, 0x20)
	badApp[0x1100] ^= 0xFF // inside the app's first segment
	esp32 := append([]byte{0xE9, 4, 2, 0x20, 0x20, 0x00, 0x08, 0x40}, 0xEE, 0, 0, 0, 0, 0, 0, 0)
	esp32 = append(esp32, make([]byte, 64)...)
	tests := []struct {
		name string
		in   []byte
		kind error
		msg  string
	}{
		{"empty", nil, ErrNotImage, "empty"},
		{"gzip", []byte{0x1F, 0x8B, 8, 0}, ErrNotImage, "gzip"},
		{"elf", []byte("\x7fELF\x01\x01"), ErrNotImage, "ELF"},
		{"uf2", []byte("UF2\nWQ]\x9e"), ErrNotImage, "UF2"},
		{"beken qio", []byte{0x43, 0x09, 0xB5, 0x96, 1, 2}, ErrNotImage, "Beken"},
		{"tuya ug", []byte{0x55, 0xAA, 0x55, 0xAA, 0}, ErrNotImage, "Tuya UG"},
		{"erased", bytes.Repeat([]byte{0xFF}, 100), ErrNotImage, "erased"},
		{"random", []byte{0x12, 0x34}, ErrNotImage, "first byte is 0x12"},
		{"short header", []byte{0xE9, 1, 2}, ErrMalformed, "cut short"},
		{"no segments", []byte{0xE9, 0, 2, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xEF}, ErrMalformed, "segment count is 0"},
		{"17 segments", append([]byte{0xE9, 17, 2, 0x20}, make([]byte, 60)...), ErrMalformed, "segment count is 17"},
		{"segment past end", good[:40], ErrMalformed, "claims 64 bytes"},
		{"checksum past end", good[:len(good)-1], ErrMalformed, "before the checksum"},
		{"checksum byte", badSum, ErrChecksum, "stored checksum"},
		{"segment data", badData, ErrChecksum, "the file is damaged"},
		{"esp32 image", esp32, ErrNotImage, "ESP32"},
		{"v2 crc", badCRC, ErrChecksum, "CRC32"},
		{"arduino app data", badApp, ErrChecksum, "application image at 0x1000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			im, err := Parse(tc.in)
			if err == nil {
				t.Fatalf("accepted: %+v", im)
			}
			var ie *ImageError
			if !errors.Is(err, tc.kind) || !errors.As(err, &ie) {
				t.Fatalf("err = %v, want an *ImageError of kind %v", err, tc.kind)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q lacks %q", err, tc.msg)
			}
		})
	}
}

func TestParseSuspiciousSegmentWarns(t *testing.T) {
	im, err := Parse(v1(3, 0x20, 0, seg{0x3FF00000, fill(8, 1)}))
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Warnings) != 1 || !strings.Contains(im.Warnings[0], "suspicious segment 0") {
		t.Errorf("warnings %q", im.Warnings)
	}
}

// TestParseRefusesBekenDumps feeds the real BK7231 stock dumps to Parse.
func TestParseRefusesBekenDumps(t *testing.T) {
	dir := sharedDir(t, "testdata", "bk7231")
	files, _ := filepath.Glob(filepath.Join(dir, "*.bin"))
	if len(files) == 0 {
		t.Skipf("no dumps in %s", dir)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Parse(b)
		if !errors.Is(err, ErrNotImage) {
			// Report only the kind: the dumps hold device keys.
			t.Errorf("%s: got %v, want ErrNotImage", filepath.Base(f), errors.Unwrap(err))
		}
	}
}

// sharedDir returns ../shared/<elem…> or skips the test when it is absent.
func sharedDir(t *testing.T, elem ...string) string { return testshared.Dir(t, elem...) }

func TestPatchHeader(t *testing.T) {
	base := v1(0, 0x20, 0x40100004, seg{0x40100000, fill(500, 1)}) // qio, 1MB, 40m
	tests := []struct {
		name        string
		mode        FlashMode
		size, freq  string
		b2, b3      byte
		wantChanged bool
	}{
		{"mode only", ModeDOUT, "keep", "keep", 0x03, 0x20, true},
		{"size only", ModeKeep, "4MB", "keep", 0x00, 0x40, true},
		{"freq only", ModeKeep, "keep", "80m", 0x00, 0x2F, true},
		{"esptool vector -fs 2MB -fm dout -ff 80m", ModeDOUT, "2MB", "80m", 0x03, 0x3F, true},
		{"all keep", ModeKeep, "keep", "keep", 0x00, 0x20, false},
		{"same values", ModeQIO, "1MB", "40m", 0x00, 0x20, false},
		{"empty strings keep", ModeKeep, "", "", 0x00, 0x20, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := bytes.Clone(base)
			out, changed, err := PatchHeader(in, tc.mode, tc.size, tc.freq)
			if err != nil {
				t.Fatal(err)
			}
			if changed != tc.wantChanged {
				t.Errorf("changed = %v", changed)
			}
			if !bytes.Equal(in, base) {
				t.Fatal("input modified")
			}
			if out[2] != tc.b2 || out[3] != tc.b3 {
				t.Errorf("bytes 2,3 = %02X %02X, want %02X %02X", out[2], out[3], tc.b2, tc.b3)
			}
			diff := 0
			for i := range out {
				if out[i] != base[i] {
					diff++
					if i != 2 && i != 3 {
						t.Errorf("byte %d changed", i)
					}
				}
			}
			if !changed && (diff != 0 || &out[0] != &in[0]) {
				t.Error("unchanged image should come back as the same slice")
			}
			if _, err := Parse(out); err != nil {
				t.Errorf("patched image no longer parses: %v", err)
			}
		})
	}
}

func TestPatchHeaderKeepsArduinoCRC(t *testing.T) {
	img := arduino(0, 0x20)
	out, changed, err := PatchHeader(img, ModeDOUT, "keep", "keep")
	if err != nil || !changed {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
	im, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if im.EbootCRC == nil || !im.EbootCRC.Valid {
		t.Fatalf("CRC after patch: %+v", im.EbootCRC)
	}
	// Only bytes 2 and the 4 CRC bytes differ; the app header stays.
	for i := range out {
		if out[i] != img[i] && i != 2 && (i < 0x1014 || i >= 0x1018) {
			t.Errorf("byte 0x%X changed", i)
		}
	}
	if out[0x1002] != 0 {
		t.Error("application header must not be patched")
	}
	// Compare with an image built directly in DOUT: same CRC.
	if !bytes.Equal(out[0x1014:0x1018], patchedReference(img)) {
		t.Error("CRC differs from elf2bin's over the patched file")
	}
}

func patchedReference(img []byte) []byte {
	ref := bytes.Clone(img)
	ref[2] = 3
	return addArduinoCRC(ref)[0x1014:0x1018]
}

func TestPatchHeaderRefuses(t *testing.T) {
	good := v1(0, 0x20, 0, seg{0x40100000, fill(16, 1)})
	tests := []struct {
		name       string
		in         []byte
		mode       FlashMode
		size, freq string
		kind       error
		msg        string
	}{
		{"not an image", []byte("hello world"), ModeDOUT, "keep", "keep", ErrNotImage, "first byte"},
		{"v2 application", v2(2, 0x40, seg{0x40100000, fill(16, 1)}), ModeDOUT, "keep", "keep", ErrNotPatchable, "V2"},
		{"bad mode", good, FlashMode(7), "keep", "keep", ErrNotPatchable, "flash mode 7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, changed, err := PatchHeader(tc.in, tc.mode, tc.size, tc.freq)
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.msg) || changed || !bytes.Equal(out, tc.in) {
				t.Fatalf("changed=%v err=%v", changed, err)
			}
		})
	}
	for _, bad := range [][2]string{{"3MB", "keep"}, {"keep", "60m"}} {
		if _, _, err := PatchHeader(good, ModeKeep, bad[0], bad[1]); err == nil || !strings.Contains(err.Error(), "unknown ESP8266 flash") {
			t.Errorf("%v: err = %v", bad, err)
		}
	}
}

func TestParseFlashMode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want FlashMode
	}{{"keep", ModeKeep}, {"QIO", ModeQIO}, {"qout", ModeQOUT}, {"dio", ModeDIO}, {" dout ", ModeDOUT}} {
		got, err := ParseFlashMode(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("%q: %v %v", tc.in, got, err)
		}
		if tc.want.String() != strings.ToLower(strings.TrimSpace(tc.in)) {
			t.Errorf("String() = %q", tc.want)
		}
	}
	if _, err := ParseFlashMode("fast"); err == nil {
		t.Error("accepted fast")
	}
	var m FlashMode
	if err := m.Set("dio"); err != nil || m != ModeDIO {
		t.Errorf("Set: %v %v", m, err)
	}
}

func TestSizeAndFreqCodes(t *testing.T) {
	for _, s := range flashSizes {
		code, err := SizeCode(strings.ToLower(s.name))
		if err != nil || code != s.code {
			t.Errorf("%s: 0x%X %v", s.name, code, err)
		}
	}
	if SizeName(1<<20) != "1MB" || SizeName(2<<20) != "2MB" || SizeName(3<<20) != "" {
		t.Error("SizeName")
	}
}

// TestCRCs checks the two CRC variants against their catalogue check
// values over "123456789".
func TestCRCs(t *testing.T) {
	if got := crcMPEG2(0xFFFFFFFF, []byte("123456789")); got != 0x0376E6E7 {
		t.Errorf("CRC-32/MPEG-2 = 0x%08X, want 0x0376E6E7", got)
	}
	// zlib CRC-32 of the check string is 0xCBF43926 (top bit set: inverted).
	if got := sdkCRC32([]byte("123456789")); got != 0xCBF43926^0xFFFFFFFF {
		t.Errorf("SDK CRC = 0x%08X", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(v1(3, 0x20, 0x40100004, seg{0x40100000, fill(40, 1)}))
	f.Add(arduino(3, 0x20)[:0x1100])
	f.Add(v2(2, 0x40, seg{0x40100000, fill(40, 4)}))
	f.Add([]byte{0xE9, 1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		im, err := Parse(b)
		if err != nil {
			var ie *ImageError
			if !errors.As(err, &ie) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if im.End > len(b) {
			t.Fatalf("End %d beyond %d", im.End, len(b))
		}
		out, _, err := PatchHeader(b, ModeDOUT, "1MB", "40m")
		if err == nil {
			if _, err := Parse(out); err != nil {
				t.Fatalf("patched image does not parse: %v", err)
			}
		}
	})
}
