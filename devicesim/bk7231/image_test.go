package bksim

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
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

func TestDefaultFlash(t *testing.T) {
	mac := [6]byte{0x02, 0x11, 0x22, 0x33, 0x44, 0x55}
	for _, chip := range []Chip{BK7231T, BK7231N} {
		t.Run(chip.String(), func(t *testing.T) {
			img := DefaultFlash(chip, mac)
			if len(img) != 2<<20 {
				t.Fatalf("size %d", len(img))
			}
			if !bytes.Equal(img, DefaultFlash(chip, mac)) {
				t.Fatal("DefaultFlash is not deterministic")
			}
			// CRC16 framing of the bootloader area and the app.
			checkUnits := func(from, units int) {
				for u := range units {
					p := from + 34*u
					if got, want := binary.BigEndian.Uint16(img[p+32:]), crc16CMS(img[p:p+32]); got != want {
						t.Fatalf("unit at 0x%X: CRC16 %04X, want %04X", p, got, want)
					}
				}
			}
			checkUnits(0, 0x11000/34)
			checkUnits(0x11000, 0xB0000/32)
			if !bytes.Equal(img[0x11000:0x11008], hx("2F 07 B5 94 35 FF 2A 9B")) {
				t.Errorf("app starts % X, want the encrypted-app signature", img[0x11000:0x11008])
			}
			// The bootloader is nobody's: a client must probe the protocol.
			for _, n := range []int{256, 257} {
				if name, ok := knownBootloaders[crc32.ChecksumIEEE(img[:n])]; ok {
					t.Errorf("bootloader CRC over %d bytes matches %s", n, name)
				}
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
			end := 0x11000 + 0xB0000/32*34
			if !allFF(img[end:RFOffset(chip)]) || !allFF(img[RFOffset(chip)+0x1000:]) {
				t.Error("image not 0xFF outside bootloader, app and RF sector")
			}
		})
	}
	if bytes.Equal(DefaultFlash(BK7231T, mac)[:0x11000], DefaultFlash(BK7231N, mac)[:0x11000]) {
		t.Error("T and N images share a bootloader")
	}
	if got := DefaultFlash(BK7231N, [6]byte{})[rfN+0x24 : rfN+0x2A]; !bytes.Equal(got, DefaultMAC[:]) {
		t.Errorf("zero MAC gave % X, want DefaultMAC", got)
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
