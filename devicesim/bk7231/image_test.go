package bksim

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/tuyaflash/tuyaflash/firmware"
	"github.com/tuyaflash/tuyaflash/tuyaconfig"
)

// knownBootloaders are the standard CRC-32 values of reference §6 (first 257
// bytes on FULL chips, 256 otherwise).
var knownBootloaders = map[uint32]string{
	0xE14191BA: "bl_bk7231n_1.0.1", 0xC1ECA871: "bl_bk7231s_1.0.1", 0x4B31E44D: "bl_bk7231s_1.0.3",
	0xBA54C1B8: "bl_bk7231s_1.0.5", 0xE5CBC953: "bl_bk7231s_1.0.6", 0xF0231EF6: "bl_bk7231q",
	0xFF5A3EAC: "bl_bk7231q_tysdk", 0x2739019F: "bl_bk7231u_1.0.6", 0x39F9B50C: "bl_bk7252_0.1.3",
	0xE3A27C26: "bootloader_7252", 0xF42F8C32: "bl_t1_2.0.0", 0x6BEB0924: "bootloader_bk7238",
	0x4063D299: "bl_bk7231n_1.0.1 (256 bytes)",
}

// tlvGroup returns the tag/length pairs of the first group of an RF sector.
func tlvGroup(t *testing.T, sec []byte) [][2]uint32 {
	t.Helper()
	if !bytes.Equal(sec[:4], []byte("TLV\x00")) {
		t.Fatalf("RF sector starts % X, want TLV\\0", sec[:4])
	}
	tag, n := binary.LittleEndian.Uint32(sec[8:]), binary.LittleEndian.Uint32(sec[12:])
	if tag != 0x11111100 {
		t.Fatalf("first group tag %08X", tag)
	}
	var out [][2]uint32
	for p := uint32(16); p < 16+n; {
		tg, l := binary.LittleEndian.Uint32(sec[p:]), binary.LittleEndian.Uint32(sec[p+4:])
		out = append(out, [2]uint32{tg, l})
		p += 8 + l
	}
	return out
}

// uncrc strips the CRC16 framing of n logical bytes from phys, checking
// every unit.
func uncrc(t *testing.T, b []byte, phys, n int) []byte {
	t.Helper()
	var out []byte
	for u := 0; u < n/32; u++ {
		p := phys + 34*u
		if got, want := binary.BigEndian.Uint16(b[p+32:]), crc16CMS(b[p:p+32]); got != want {
			t.Fatalf("CRC16 unit at 0x%X: %04X, want %04X", p, got, want)
		}
		out = append(out, b[p:p+32]...)
	}
	return out
}

func TestDefaultFlash(t *testing.T) {
	mac := [6]byte{0x02, 0x11, 0x22, 0x33, 0x44, 0x55}
	tuyaKeyChips := map[Chip]bool{BK7231N: true, BK7231T: true}
	for _, chip := range Chips() {
		t.Run(chip.String(), func(t *testing.T) {
			p := chip.profile()
			img := DefaultFlash(chip, mac)
			wantSize := 2 << 20
			if chip == BK7252 {
				wantSize = 4 << 20
			}
			if len(img) != wantSize {
				t.Fatalf("size %d, want %d", len(img), wantSize)
			}
			if !bytes.Equal(img, buildImage(chip, p, mac, len(img))) {
				t.Fatal("DefaultFlash is not deterministic")
			}
			img[0x11000] ^= 0xFF
			if again := DefaultFlash(chip, mac); again[0x11000] == img[0x11000] {
				t.Fatal("DefaultFlash handed out its cached image")
			}
			img[0x11000] ^= 0xFF
			other := DefaultFlash(chip, [6]byte{0x02, 0x11, 0x22, 0x33, 0x44, 0x56})
			if bytes.Equal(img[0x11000:], other[0x11000:]) || !bytes.Equal(img[:0x11000], other[:0x11000]) {
				t.Error("another MAC must change the device, not the chip's bootloader")
			}

			// Bootloader: CRC16-framed, the profile's own fingerprint,
			// nobody's real bootloader.
			uncrc(t, img, 0, 0x11000/34*32)
			n := 256
			if p.proto == protoFull {
				n = 257
			}
			if got := crc32.ChecksumIEEE(img[:n]); got != p.bootCRC {
				t.Errorf("bootloader CRC over %d bytes %08X, profile says %08X", n, got, p.bootCRC)
			}
			for _, n := range []int{256, 257} {
				if name, ok := knownBootloaders[crc32.ChecksumIEEE(img[:n])]; ok {
					t.Errorf("bootloader CRC over %d bytes matches %s", n, name)
				}
			}

			// Application: framed, signed for the chip's key, marked.
			app := uncrc(t, img, 0x11000, 0xB0000)
			sig := hx("0E 00 00 EA 14 F0 9F E5")
			if tuyaKeyChips[chip] {
				sig = hx("2F 07 B5 94 35 FF 2A 9B")
			}
			if !bytes.Equal(app[:8], sig) {
				t.Errorf("app starts % X, want % X", app[:8], sig)
			}
			i := bytes.Index(app, []byte(StockMarker))
			if i < 0 {
				t.Fatal("no stock marker in the application")
			}
			js := app[i+len(StockMarker):]
			js = js[:bytes.IndexByte(js, 0)]
			var marker map[string]string
			if err := json.Unmarshal(js, &marker); err != nil || marker["firmware"] != "tuya" || marker["chip"] != chip.String() || marker["version"] != StockVersion {
				t.Errorf("marker %s: %v", js, err)
			}

			// RF sector: structure as in the real dumps, our MAC at +0x24.
			rf := img[RFOffset(chip) : RFOffset(chip)+0x1000]
			if !bytes.Equal(rf[0x1C:0x24], hx("02 11 11 11 06 00 00 00")) || !bytes.Equal(rf[0x24:0x2A], mac[:]) {
				t.Errorf("RF sector 0x1C..0x2A = % X", rf[0x1C:0x2A])
			}
			if got := binary.LittleEndian.Uint32(rf[4:]); got != 0x62 {
				t.Errorf("TLV length %X, want 62", got)
			}
			if !allFF(rf[8+0x62:]) {
				t.Error("RF sector not 0xFF after the TLV data")
			}

			// Everything else is erased flash.
			kv := TuyaStorageOffset(chip, len(img))
			kvEnd := min(kv+18*0x1000, len(img))
			appEnd := 0x11000 + 0xB0000/32*34
			used := [][2]int{{0, appEnd}, {RFOffset(chip), RFOffset(chip) + 0x1000}, {kv, kvEnd}}
			for a := 0; a < len(img); a += 0x1000 {
				in := false
				for _, u := range used {
					in = in || (a >= u[0]&^0xFFF && a < u[1])
				}
				if !in && !allFF(img[a:a+0x1000]) {
					t.Fatalf("sector 0x%06X is not erased", a)
				}
			}
			for a := kv; a < kvEnd; a += 0x1000 {
				if allFF(img[a : a+0x1000]) {
					t.Errorf("Tuya storage sector 0x%06X is empty", a)
				}
			}
		})
	}
	if got := DefaultFlash(BK7231N, [6]byte{})[0x1D0024:0x1D002A]; !bytes.Equal(got, DefaultMAC[:]) {
		t.Errorf("zero MAC gave % X, want DefaultMAC", got)
	}
	boots := map[string]Chip{}
	for _, c := range Chips() {
		b := string(DefaultFlash(c, mac)[:0x11000])
		if o, dup := boots[b]; dup {
			t.Errorf("%v and %v share a bootloader", o, c)
		}
		boots[b] = c
	}
}

// TestDefaultFlashTuyaConfig reads the synthetic Tuya storage back with
// the project's own parser (written independently of the encoder here).
func TestDefaultFlashTuyaConfig(t *testing.T) {
	mac := [6]byte{0x02, 0xAB, 0xCD, 0xEF, 0x01, 0x23}
	for _, chip := range Chips() {
		t.Run(chip.String(), func(t *testing.T) {
			p := chip.profile()
			img := DefaultFlash(chip, mac)
			cfg, err := tuyaconfig.Parse(img)
			if err != nil {
				t.Fatalf("tuyaconfig.Parse: %v", err)
			}
			if cfg.KeyBlockOffset != TuyaStorageOffset(chip, len(img)) {
				t.Errorf("key block at 0x%X, want 0x%X", cfg.KeyBlockOffset, TuyaStorageOffset(chip, len(img)))
			}
			checks := []struct{ what, got, want string }{
				{"device id", cfg.DeviceID[:17], "bfsim02abcdef0123"},
				{"platform", cfg.Platform, p.platform},
				{"module", cfg.Module, p.module},
				{"Wi-Fi SSID", cfg.WiFiSSID, StockSSID},
				{"Wi-Fi password", cfg.WiFiPassword, StockPassword},
				{"firmware version", cfg.FirmwareVersion, StockVersion},
				{"local key prefix", cfg.LocalKey[:8], "simlocal"},
				{"uuid", cfg.UUID, "sim002abcdef0123"},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
				}
			}
			if len(cfg.DeviceID) != 22 || len(cfg.LocalKey) != 16 || !cfg.Activated {
				t.Errorf("device id %q, local key of %d chars, activated %v", cfg.DeviceID, len(cfg.LocalKey), cfg.Activated)
			}
			if cfg.UserParams == nil {
				t.Fatal("no user_param_key")
			}
			for k, want := range map[string]any{"rl1_pin": 6, "rl1_lv": 1, "bt1_pin": 7, "bt1_lv": 0, "netled1_pin": 8} {
				if got := cfg.UserParams.Values[k]; got != want {
					t.Errorf("user_param_key %s = %v, want %v", k, got, want)
				}
			}
			if chip == BK7231N || chip == BK7231T {
				if cfg.Chip != chip.String() {
					t.Errorf("tuyaconfig names the chip %q", cfg.Chip)
				}
			}
			// Three live blocks, three older swap copies not in use.
			var live, swaps int
			for _, b := range cfg.Blocks {
				if b.Kind == tuyaconfig.KindData && b.InUse && b.ID <= 2 {
					live++
				}
				if b.Kind == tuyaconfig.KindData && !b.InUse {
					swaps++
				}
			}
			if live != 3 || swaps != 3 {
				t.Errorf("%d live blocks with values and %d swap copies, want 3 and 3", live, swaps)
			}
		})
	}
	a, b := DefaultFlash(BK7231N, mac), DefaultFlash(BK7231N, DefaultMAC)
	ca, _ := tuyaconfig.Parse(a)
	cb, _ := tuyaconfig.Parse(b)
	if ca.DeviceID == cb.DeviceID || ca.LocalKey == cb.LocalKey {
		t.Error("two MACs gave the same Tuya identity")
	}
}

// TestDefaultFlashDetect runs the project's image detection on the dumps.
func TestDefaultFlashDetect(t *testing.T) {
	for _, chip := range Chips() {
		t.Run(chip.String(), func(t *testing.T) {
			img, err := DefaultFlashSize(chip, DefaultMAC, 2<<20)
			if err != nil {
				t.Fatal(err)
			}
			d, err := firmware.Detect(img, "dump.bin")
			if err != nil {
				t.Fatalf("Detect: %v", err)
			}
			wantKey := firmware.KeyZero
			if chip.profile().tuyaKey {
				wantKey = firmware.KeyTuya
			}
			if d.Format != firmware.FormatBekenDump || d.Key != wantKey || d.Bootloader != "unknown" {
				t.Errorf("Detect: format %s, key %q, bootloader %q; want %s, %q, unknown", d.Format, d.Key, d.Bootloader, firmware.FormatBekenDump, wantKey)
			}
		})
	}
}

// TestDefaultFlashMatchesRealRFLayout compares the RF sector's first group
// (tags and lengths only, never values) with the real dumps.
func TestDefaultFlashMatchesRealRFLayout(t *testing.T) {
	dir := sharedDir(t)
	if dir == "" {
		t.Skip("../shared/testdata/bk7231 not found next to the repository; the synthetic layout is covered by TestDefaultFlash")
	}
	for _, c := range []struct {
		file string
		chip Chip
	}{{"Feit_SYW-BR30-RGBW-CA-AG_Bulb.bin", BK7231T}, {"Kanlux_33643_S_GU10_RGBCCT_Bulb.bin", BK7231N}} {
		real, err := os.ReadFile(filepath.Join(dir, c.file))
		if err != nil {
			t.Fatal(err)
		}
		off := RFOffset(c.chip)
		want := tlvGroup(t, real[off:off+0x1000])
		got := tlvGroup(t, DefaultFlash(c.chip, DefaultMAC)[off:off+0x1000])
		if len(got) != len(want) {
			t.Fatalf("%s: %d entries, real dump has %d", c.file, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s entry %d: tag/len %X, real %X", c.file, i, got[i], want[i])
			}
		}
	}
}
