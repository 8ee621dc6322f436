package firmware

import (
	"bytes"
	"errors"
	"github.com/tuyaflash/tuyaflash/firmware/fwtest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tuyaflash/tuyaflash/espimage"
	"github.com/tuyaflash/tuyaflash/flasher"
)

func TestDetectSyntheticImages(t *testing.T) {
	ua := fwtest.App(fwtest.SigTuya, 0x8000, 3)
	uaZero := fwtest.App(fwtest.SigPlain, 0x8000, 4)
	// LibreTiny's app partition image: app, 0xFF up to the RBL header,
	// which fills the last three units.
	ltRBL := append(append([]byte(nil), ua...), bytes.Repeat([]byte{0xFF}, 34*10)...)
	ltRBL = append(ltRBL, fwtest.Frame(fwtest.RBL(0, 0, "app", "26.08.01-bk7231n"))...)
	qioT := fwtest.Beken(fwtest.BootCRCT, 256, fwtest.App(fwtest.SigTuya, 0x20000, 5), bekenQIOSizeT)
	qioN := fwtest.Beken(fwtest.BootCRCN, 257, fwtest.App(fwtest.SigTuya, 0x20000, 6), bekenQIOSizeN)
	qioM := fwtest.Beken(0, 0, fwtest.App(fwtest.SigPlain, 0x20000, 8), bekenQIOSizeN)
	dumpN := fwtest.Beken(fwtest.BootCRCN, 257, fwtest.App(fwtest.SigTuya, 0x20000, 6), 2<<20)
	dumpNoApp := fwtest.Beken(fwtest.BootCRCT, 256, nil, 2<<20)
	esp := fwtest.ESPImage(3, 0x20, 3000)
	espDump := append(append([]byte(nil), esp...), bytes.Repeat([]byte{0xFF}, 1<<20-len(esp))...)
	ota := append(fwtest.RBL(2, 1, "app", "1.18.299"), fwtest.PRNG(4000, 9)...)
	ug := append([]byte{0x55, 0xAA, 0x55, 0xAA}, make([]byte, 24)...)
	ug = append(ug, 0xAA, 0x55, 0xAA, 0x55)
	ug = append(ug, ota...)

	tests := []struct {
		name     string
		data     []byte
		file     string
		format   Format
		family   flasher.Family
		offset   uint32
		skip     int
		key      string
		refused  bool
		mentions []string // in the error (refused) or the notes
	}{
		{"UA app", ua, "OpenBK7231T_UA_1.0.0.bin", FormatBekenUA, "", 0x11000, 0, KeyTuya, false, []string{"the name says BK7231T"}},
		{"UA app for zero key", uaZero, "x.bin", FormatBekenUA, "", 0x11000, 0, KeyZero, false, []string{"not encrypted"}},
		{"LibreTiny app .rbl", ltRBL, "image_bk7231n_app.0x011000.rbl", FormatBekenAppRBL, "", 0x11000, 0, KeyTuya, false, []string{"26.08.01-bk7231n", "despite the .rbl name"}},
		{"OBK QIO for T", qioT, "OpenBK7231T_QIO_1.0.0.bin", FormatBekenQIO, flasher.BK7231T, 0, 0x11000, KeyTuya, false, []string{"bl_bk7231s_1.0.5_4FF7", "1 MiB"}},
		{"OBK QIO for N", qioN, "q.bin", FormatBekenQIO, flasher.BK7231N, 0, 0x11000, KeyTuya, false, []string{"bl_bk7231n_1.0.1_34B7", "BK7231N QIO"}},
		{"QIO for zero-key chips", qioM, "OpenBK7231M_QIO_1.0.0.bin", FormatBekenQIO, "", 0, 0x11000, KeyZero, false, []string{"not in tuyaflash's table"}},
		{"BK7231N full dump", dumpN, "backup.bin", FormatBekenDump, flasher.BK7231N, 0, 0x11000, KeyTuya, false, []string{"whole 2 MiB"}},
		{"BK7231T dump with erased app", dumpNoApp, "d.bin", FormatBekenDump, flasher.BK7231T, 0, 0x11000, "", false, []string{"no application found"}},
		{"QIO of a chip tuyaflash only names", fwtest.Beken(fwtest.BootCRCQ, 256, fwtest.App(fwtest.SigTuya, 0x1000, 1), bekenQIOSizeT), "q.bin", FormatBekenQIO, "BK7231Q", 0, 0x11000, KeyTuya, true, []string{"BK7231Q"}},
		{"BK7231U QIO", fwtest.Beken(fwtest.BootCRCU, 256, fwtest.App(fwtest.SigTuya, 0x1000, 1), bekenQIOSizeT), "u.bin", FormatBekenQIO, flasher.BK7231U, 0, 0x11000, KeyTuya, false, []string{"bl_bk7231u_1.0.6"}},
		{"BK7238 QIO is written whole", fwtest.Beken(fwtest.BootCRC7238, 257, fwtest.App(fwtest.SigPlain, 0x1000, 1), 0x60000), "OpenBK7238_QIO_1.0.0.bin", FormatBekenQIO, flasher.BK7238, 0, 0, KeyZero, false, []string{"bootloader_bk7238_uart1_v1.0.14"}},
		{"BK7252 4 MiB dump", fwtest.Beken(fwtest.BootCRC7252, 256, fwtest.App(fwtest.SigPlain, 0x1000, 1), 4<<20), "d.bin", FormatBekenDump, flasher.BK7252, 0, 0x11000, KeyZero, false, []string{"whole 4 MiB"}},
		{"ESP8266 image", esp, "tasmota.bin", FormatESPApp, flasher.ESP8266, 0, 0, "", false, nil},
		{"ESP8266 image in gzip", fwtest.Gzip(esp), "tasmota.bin.gz", FormatESPApp, flasher.ESP8266, 0, 0, "", false, []string{"unpacked from gzip"}},
		{"ESP8266 1 MiB dump", espDump, "esp.bin", FormatESPDump, flasher.ESP8266, 0, 0, "", false, []string{"byte-exact"}},
		{"Beken OTA package", ota, "OpenBK7231N_1.18.299.rbl", FormatBekenOTA, "", 0, 0, "", true, []string{"OTA", "web page"}},
		{"Tuya UG", ug, "OpenBK7231N_UG_1.0.0.bin", FormatTuyaUG, "", 0, 0, "", true, []string{"UG", "cloudcutter"}},
		{"encrypted app without CRC", append(append([]byte(nil), fwtest.SigTuya...), fwtest.PRNG(200, 1)...), "a.crc", FormatBekenEncrypted, "", 0, 0, "", true, []string{"without its CRC16 framing"}},
		{"raw ARM binary", append(append([]byte(nil), fwtest.SigPlain...), fwtest.PRNG(200, 1)...), "a.bin", FormatRawARM, "", 0, 0, "", true, []string{"raw ARM"}},
		{"ELF", append([]byte{0x7F, 'E', 'L', 'F'}, fwtest.PRNG(100, 1)...), "fw.elf", FormatELF, "", 0, 0, "", true, []string{"ELF"}},
		{"zip", append([]byte{'P', 'K', 3, 4}, fwtest.PRNG(100, 1)...), "fw.zip", FormatZip, "", 0, 0, "", true, []string{"zip"}},
		{"unknown bytes", fwtest.PRNG(5000, 11), "what.bin", FormatUnknown, "", 0, 0, "", true, []string{"does not know this file"}},
		{"erased flash", bytes.Repeat([]byte{0xFF}, 4096), "ff.bin", FormatUnknown, "", 0, 0, "", true, []string{"FF FF"}},
		{"empty", nil, "e.bin", FormatUnknown, "", 0, 0, "", true, []string{"empty"}},
		{"broken gzip", []byte{0x1F, 0x8B, 8, 0, 1, 2}, "x.gz", FormatUnknown, "", 0, 0, "", true, []string{"does not unpack"}},
		{"ESP32 image", espImage32(), "tasmota32.bin", FormatUnknown, "", 0, 0, "", true, []string{"ESP32"}},
		{"damaged ESP image", damage(esp, 100), "t.bin", FormatUnknown, "", 0, 0, "", true, []string{"checksum"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Detect(tc.data, tc.file)
			if d == nil {
				t.Fatalf("no detection (err %v)", err)
			}
			if tc.refused != (err != nil) {
				t.Fatalf("err = %v, refused want %v (detected %s)", err, tc.refused, d.Format)
			}
			if err != nil && !errors.Is(err, flasher.ErrRefused) {
				t.Errorf("error %v does not match ErrRefused", err)
			}
			if err != nil && flasher.Hint(err) == "" && tc.format != FormatUnknown {
				t.Errorf("refusal without a hint: %v", err)
			}
			if d.Format != tc.format || d.Family != tc.family || d.Key != tc.key {
				t.Errorf("format %s family %q key %q, want %s %q %q", d.Format, d.Family, d.Key, tc.format, tc.family, tc.key)
			}
			if !tc.refused && (d.Offset != tc.offset || d.Skip != tc.skip) {
				t.Errorf("offset 0x%X skip 0x%X, want 0x%X 0x%X", d.Offset, d.Skip, tc.offset, tc.skip)
			}
			text := strings.Join(d.Notes, "\n")
			if err != nil {
				text += "\n" + err.Error() + "\n" + flasher.Hint(err)
			}
			for _, m := range tc.mentions {
				if !strings.Contains(text, m) {
					t.Errorf("%q not mentioned in:\n%s", m, text)
				}
			}
			if len(tc.data) > 0 && d.SHA256 == "" {
				t.Error("no sha256")
			}
		})
	}
}

// espImage32 is an image whose segment loads at an ESP32 address.
func espImage32() []byte {
	b := fwtest.ESPImage(2, 0x20, 100)
	b[8], b[9], b[10], b[11] = 0x20, 0x00, 0x40, 0x3F // 0x3F400020, ESP32 flash-mapped data
	return b
}

func damage(b []byte, at int) []byte {
	c := append([]byte(nil), b...)
	c[at] ^= 0x55
	return c
}

func TestDetectESPHeaderFields(t *testing.T) {
	d, err := Detect(fwtest.ESPImage(byte(espimage.ModeQIO), 0x40, 500), "x.bin")
	if err != nil {
		t.Fatal(err)
	}
	if d.FlashMode == nil || *d.FlashMode != espimage.ModeQIO || d.FlashSize != "4MB" {
		t.Errorf("flash mode %v size %q, want qio 4MB", d.FlashMode, d.FlashSize)
	}
	gzd, err := Detect(fwtest.Gzip(fwtest.ESPImage(3, 0x20, 500)), "x.bin.gz")
	if err != nil {
		t.Fatal(err)
	}
	if !gzd.Compressed || gzd.Data[0] != 0xE9 || gzd.Size == len(gzd.Data) {
		t.Errorf("gzip: compressed %v, first byte 0x%02X, file size %d, data %d", gzd.Compressed, gzd.Data[0], gzd.Size, len(gzd.Data))
	}
}

func TestDetectUF2(t *testing.T) {
	appData := fwtest.App(fwtest.SigTuya, 0x2000, 12)
	trailer := fwtest.Frame(fwtest.RBL(0, 0, "app", "26.08.01"))
	const trailerRel = 0x118F0A // to_offset(0x108700) - 102, libretiny's rbl_offs
	file := fwtest.LibreTinyUF2(0x7B3EF230, appData, trailerRel, trailer)
	d, err := Detect(file, "firmware.uf2")
	if err != nil {
		t.Fatal(err)
	}
	if d.Format != FormatUF2 || d.Family != flasher.BK7231N || d.Key != KeyTuya {
		t.Fatalf("format %s family %s key %s", d.Format, d.Family, d.Key)
	}
	if len(d.Regions) != 2 {
		t.Fatalf("%d regions, want app and RBL header: %+v", len(d.Regions), d.Regions)
	}
	if r := d.Regions[0]; r.Addr != 0x11000 || !bytes.Equal(r.Data, appData) || r.Part != "app" {
		t.Errorf("region 0 at 0x%X (%d bytes, part %q)", r.Addr, len(r.Data), r.Part)
	}
	if r := d.Regions[1]; r.Addr != 0x11000+trailerRel || !bytes.Equal(r.Data, trailer) {
		t.Errorf("region 1 at 0x%X (%d bytes), want 0x129F0A", r.Addr, len(r.Data))
	}
	if !strings.Contains(strings.Join(d.Notes, " "), "esphome 2026.8.0") || d.Version != "2026.8.0" {
		t.Errorf("notes %q version %q", d.Notes, d.Version)
	}

	refusals := []struct {
		name string
		file []byte
		want string
	}{
		{"other family", fwtest.LibreTinyUF2(0x9FFFD543, appData, 0, nil), "0x9FFFD543"},
		{"no family", fwtest.UF2File([]fwtest.UF2Block{{Data: appData[:256], Tags: [][2][]byte{fwtest.Tag(0x6C8492, nil)}}}), "names no chip family"},
		{"legacy format", fwtest.UF2File([]fwtest.UF2Block{{Data: appData[:256], Family: 0x675A40B0, Tags: [][2][]byte{fwtest.Tag(0x5D57D0, nil)}}}), "legacy format"},
		{"no flasher data", fwtest.UF2File([]fwtest.UF2Block{{Data: appData[:256], Family: 0x675A40B0, Tags: [][2][]byte{fwtest.Tag(0x6C8492, nil), fwtest.Tag(0xC0EE0C, fwtest.PartInfo(0, "download"))}}}), "no data for serial flashing"},
		{"unknown partition", fwtest.UF2File([]fwtest.UF2Block{{Data: appData[:256], Family: 0x675A40B0, Tags: [][2][]byte{fwtest.Tag(0x6C8492, nil), fwtest.Tag(0xC0EE0C, fwtest.PartInfo(1, "kvs"))}}}), `partition "kvs"`},
		{"truncated", file[:len(file)-512], "blocks say"},
		{"not whole blocks", file[:1000], "multiple of 512"},
		{"bad magic", damage(file, 508), "wrong magic"},
		{"file container", fwtest.UF2File([]fwtest.UF2Block{{Data: appData[:256], Flags: 0x1000}}), "file container"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Detect(tc.file, "f.uf2")
			if err == nil || !errors.Is(err, flasher.ErrRefused) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want a refusal mentioning %q", err, tc.want)
			}
		})
	}
}

func TestDetectUF2WithPartitionTable(t *testing.T) {
	entry := func(name string, off, n uint32) []byte {
		e := make([]byte, 48)
		copy(e, []byte{0x30, 0x31, 0x50, 0x45})
		copy(e[4:20], name)
		copy(e[20:36], "beken_onchip")
		e[36], e[37], e[38] = byte(off), byte(off>>8), byte(off>>16)
		e[40], e[41], e[42] = byte(n), byte(n>>8), byte(n>>16)
		return e
	}
	pt := append(entry("bootloader", 0, 0x11000), entry("app", 0x11000, 0x119000)...)
	appData := fwtest.App(fwtest.SigTuya, 0x200, 1)
	file := fwtest.UF2File([]fwtest.UF2Block{{Data: appData[:200], Family: 0x675A40B0, Tags: [][2][]byte{
		fwtest.Tag(0x6C8492, nil), fwtest.Tag(0x8288ED, pt), fwtest.Tag(0xC0EE0C, fwtest.PartInfo(1, "app"))}}})
	d, err := Detect(file, "f.uf2")
	if err != nil {
		t.Fatal(err)
	}
	if d.Family != flasher.BK7231T || len(d.Regions) != 1 || d.Regions[0].Addr != 0x11000 {
		t.Errorf("family %s regions %+v", d.Family, d.Regions)
	}
}

// TestDetectRealDumps runs detection on the real stock dumps: every 2 MiB
// file is a full BK7231 dump whose chip variant comes from its bootloader.
func TestDetectRealDumps(t *testing.T) {
	dir := sharedDir(t, "bk7231")
	want := map[string]flasher.Family{
		"Feit_SYW-BR30-RGBW-CA-AG_Bulb.bin":                 flasher.BK7231T,
		"Tuya_Generic_DS-101JL_4_Gang_Smart_Switch.bin":     flasher.BK7231T,
		"Kanlux_33643_S_GU10_RGBCCT_Bulb.bin":               flasher.BK7231N,
		"MOES_WK-US2-TC_In-Wall_Outlet.bin":                 flasher.BK7231N,
		"Mirabella_Genio_I003632_Plug.bin":                  flasher.BK7231N,
		"SmartLED_8046_2_Gang_Smart_Switch.bin":             flasher.BK7231N,
		"Tuya_Generic_AP-SMT-Breaker02-1CH_Smart_Relay.bin": flasher.BK7231N,
	}
	for name, fam := range want {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Skip(err)
			}
			d, err := Detect(data, name)
			if err != nil {
				t.Fatal(err)
			}
			if d.Format != FormatBekenDump || d.Family != fam || d.Key != KeyTuya || d.BootKey != KeyTuya {
				t.Errorf("%s for %s, key %s/%s; want a %s dump with Tuya keys", d.Format, d.Family, d.Key, d.BootKey, fam)
			}
			if !strings.Contains(strings.Join(d.Notes, " "), `bootloader partition header "bootloader"`) {
				t.Errorf("no bootloader RBL header found: %q", d.Notes)
			}
		})
	}
	// The storage-only extract is no flash image.
	if data, err := os.ReadFile(filepath.Join(dir, "BK7231T_TuyaConfig_PC44HA.bin")); err == nil {
		if _, err := Detect(data, "extract.bin"); !errors.Is(err, flasher.ErrRefused) {
			t.Errorf("storage extract: err = %v, want refused", err)
		}
	}
}

func FuzzDetect(f *testing.F) {
	f.Add(fwtest.App(fwtest.SigTuya, 0x100, 1), "a.bin")
	f.Add(fwtest.Beken(fwtest.BootCRCN, 257, fwtest.App(fwtest.SigTuya, 0x100, 2), 0x12000), "q.bin")
	f.Add(fwtest.ESPImage(3, 0x20, 100), "e.bin")
	f.Add(fwtest.Gzip(fwtest.ESPImage(3, 0x20, 100)), "e.bin.gz")
	f.Add(fwtest.LibreTinyUF2(0x7B3EF230, fwtest.App(fwtest.SigTuya, 0x400, 3), 0x1000, fwtest.Frame(fwtest.RBL(0, 0, "app", "1"))), "f.uf2")
	f.Add(fwtest.RBL(1, 1, "app", "1.0"), "o.rbl")
	f.Add([]byte{0x55, 0xAA, 0x55, 0xAA}, "u.bin")
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		d, err := Detect(data, name)
		if d == nil {
			t.Fatal("nil detection")
		}
		if err != nil {
			if !errors.Is(err, flasher.ErrRefused) || err.Error() == "" {
				t.Fatalf("unclear error %v", err)
			}
			return
		}
		if !d.Format.Writable() {
			t.Fatalf("%s accepted without error", d.Format)
		}
		if d.Length() <= 0 {
			t.Fatalf("%s with nothing to write", d.Format)
		}
		_ = d.Describe()
		for _, fam := range Families {
			Place(flasher.Info{Family: fam, FlashSize: 2 << 20, EfuseKey: KeyTuya}, d, PlaceOptions{FlashMode: "dout"})
		}
	})
}

func TestCRC16CMSCheckValue(t *testing.T) {
	// CRC-16/CMS in the CRC catalogue: check value of "123456789" is 0xAEE7.
	if got := crc16CMS([]byte("123456789")); got != 0xAEE7 {
		t.Errorf("crc16CMS check = %04X, want AEE7", got)
	}
}
