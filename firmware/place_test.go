package firmware

import (
	"bytes"
	"errors"
	"github.com/tuyaflash/tuyaflash/firmware/fwtest"
	"strings"
	"testing"

	"github.com/tuyaflash/tuyaflash/flasher"
)

func mustDetect(t *testing.T, data []byte) *Detection {
	t.Helper()
	d, err := Detect(data, "img.bin")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func padFF(b []byte, n int) []byte {
	return append(b, bytes.Repeat([]byte{0xFF}, n-len(b))...)
}

func addr(a uint32) *uint32 { return &a }

func TestPlaceGates(t *testing.T) {
	var (
		tChip     = flasher.Info{Family: flasher.BK7231T, FlashSize: 2 << 20}
		nTuya     = flasher.Info{Family: flasher.BK7231N, FlashSize: 2 << 20, EfuseKey: KeyTuya}
		nZero     = flasher.Info{Family: flasher.BK7231N, FlashSize: 2 << 20, EfuseKey: KeyZero}
		nUnknown  = flasher.Info{Family: flasher.BK7231N, FlashSize: 2 << 20}
		n1M       = flasher.Info{Family: flasher.BK7231N, FlashSize: 1 << 20, EfuseKey: KeyTuya}
		esp1M     = flasher.Info{Family: flasher.ESP8266, FlashSize: 1 << 20}
		esp8285   = flasher.Info{Family: flasher.ESP8285, FlashSize: 1 << 20}
		keep      = PlaceOptions{}
		ua        = mustDetect(t, fwtest.App(fwtest.SigTuya, 0x8000, 1))
		uaZero    = mustDetect(t, fwtest.App(fwtest.SigPlain, 0x8000, 1))
		qioT      = mustDetect(t, fwtest.Beken(fwtest.BootCRCT, 256, fwtest.App(fwtest.SigTuya, 0x8000, 2), bekenQIOSizeT))
		qioN      = mustDetect(t, fwtest.Beken(fwtest.BootCRCN, 257, fwtest.App(fwtest.SigTuya, 0x8000, 2), bekenQIOSizeN))
		qioM      = mustDetect(t, fwtest.Beken(0, 0, fwtest.App(fwtest.SigPlain, 0x8000, 2), bekenQIOSizeN))
		dumpT     = mustDetect(t, fwtest.Beken(fwtest.BootCRCT, 256, fwtest.App(fwtest.SigTuya, 0x8000, 2), 2<<20))
		dumpN     = mustDetect(t, fwtest.Beken(fwtest.BootCRCN, 257, fwtest.App(fwtest.SigTuya, 0x8000, 2), 2<<20))
		uf2N      = mustDetect(t, fwtest.LibreTinyUF2(0x7B3EF230, fwtest.App(fwtest.SigTuya, 0x1000, 3), 0x118F0A, fwtest.Frame(fwtest.RBL(0, 0, "app", "1"))))
		uf2T      = mustDetect(t, fwtest.LibreTinyUF2(0x675A40B0, fwtest.App(fwtest.SigTuya, 0x1000, 3), 0, nil))
		espQIO    = mustDetect(t, fwtest.ESPImage(0, 0x20, 4000))
		espDOUT   = mustDetect(t, fwtest.ESPImage(3, 0x20, 4000))
		espDump   = mustDetect(t, padFF(fwtest.ESPImage(0, 0x20, 4000), 1<<20))
		espDump2M = mustDetect(t, padFF(fwtest.ESPImage(0, 0x30, 4000), 2<<20))
		dout      = PlaceOptions{FlashMode: "dout"}
		// the rest of the Beken family (chip table rows)
		t1          = flasher.Info{Family: flasher.BK7238, Model: "BK7238", FlashSize: 2 << 20, EfuseKey: KeyZero}
		t1Unknown   = flasher.Info{Family: flasher.BK7238, Model: "BK7238", FlashSize: 2 << 20}
		uChip       = flasher.Info{Family: flasher.BK7231U, FlashSize: 2 << 20, EfuseKey: KeyZero}
		b52         = flasher.Info{Family: flasher.BK7252, FlashSize: 4 << 20, EfuseKey: KeyZero}
		b52N        = flasher.Info{Family: flasher.BK7252N, FlashSize: 2 << 20}
		mChip       = flasher.Info{Family: flasher.BK7231N, Model: "BK7231M", FlashSize: 2 << 20, EfuseKey: KeyZero}
		qio7238     = mustDetect(t, fwtest.Beken(fwtest.BootCRC7238, 257, fwtest.App(fwtest.SigPlain, 0x8000, 2), 0x60000))
		qio7238Tuya = mustDetect(t, fwtest.Beken(fwtest.BootCRCN, 257, fwtest.App(fwtest.SigTuya, 0x8000, 2), 0x60000))
		qioUnknown  = mustDetect(t, fwtest.Beken(0, 0, fwtest.App(fwtest.SigTuya, 0x8000, 2), 0x60000))
		qioU        = mustDetect(t, fwtest.Beken(fwtest.BootCRCU, 256, fwtest.App(fwtest.SigPlain, 0x8000, 2), 0x60000))
		dump52      = mustDetect(t, fwtest.Beken(fwtest.BootCRC7252, 256, fwtest.App(fwtest.SigPlain, 0x8000, 2), 4<<20))
		dumpT1      = mustDetect(t, fwtest.Beken(fwtest.BootCRCT1, 257, fwtest.App(fwtest.SigPlain, 0x8000, 2), 2<<20))
		uf2T1       = mustDetect(t, fwtest.LibreTinyUF2(0x159AC324, fwtest.App(fwtest.SigPlain, 0x1000, 3), 0, nil))
		uf252       = mustDetect(t, fwtest.LibreTinyUF2(0x6A82CC42, fwtest.App(fwtest.SigPlain, 0x1000, 3), 0, nil))
		dio         = PlaceOptions{FlashMode: "dio"}
	)
	type region struct {
		addr uint32
		size int
	}
	tests := []struct {
		name    string
		info    flasher.Info
		det     *Detection
		opts    PlaceOptions
		regions []region
		patched bool
		refused string // substring of the refusal
		flag    string // the flag the refusal names
	}{
		// wrong family
		{"ESP image on a Beken chip", nTuya, espDOUT, keep, nil, false, "wrong chip family", ""},
		{"Beken image on an ESP chip", esp1M, ua, keep, nil, false, "wrong chip family", ""},
		{"N QIO on a T", tChip, qioN, keep, nil, false, "is for BK7231N, the chip is a BK7231T", ""},
		{"T UF2 on an N", nTuya, uf2T, keep, nil, false, "is for BK7231T, the chip is a BK7231N", ""},
		// UA and LibreTiny app images
		{"UA on T", tChip, ua, keep, []region{{0x11000, len(ua.Data)}}, false, "", ""},
		{"UA on N", nTuya, ua, keep, []region{{0x11000, len(ua.Data)}}, false, "", ""},
		{"UA with matching --addr", nTuya, ua, PlaceOptions{Addr: addr(0x11000)}, []region{{0x11000, len(ua.Data)}}, false, "", ""},
		{"UA with --addr 0", nTuya, ua, PlaceOptions{Addr: addr(0)}, nil, false, "--addr 0x000000 does not match", "--addr"},
		{"Tuya-key app on a zero-key chip", nZero, ua, keep, nil, false, "built for the tuya eFuse key, the chip has the zero key", ""},
		{"zero-key app on a Tuya-key chip", nTuya, uaZero, keep, nil, false, "built for the zero eFuse key", ""},
		{"zero-key app on a zero-key chip", nZero, uaZero, keep, []region{{0x11000, len(uaZero.Data)}}, false, "", ""},
		// QIO on BK7231T: first 0x11000 bytes skipped, --include-bootloader refused
		{"QIO on T skips the bootloader", tChip, qioT, keep, []region{{0x11000, bekenQIOSizeT - 0x11000}}, false, "", ""},
		{"QIO on T with --include-bootloader", tChip, qioT, PlaceOptions{IncludeBootloader: true}, nil, false, "never written", ""},
		{"QIO on T with --addr 0", tChip, qioT, PlaceOptions{Addr: addr(0)}, nil, false, "--addr 0x000000 does not match", "--addr"},
		// QIO on BK7231N
		{"QIO on N keeps the bootloader", nTuya, qioN, keep, []region{{0x11000, bekenQIOSizeN - 0x11000}}, false, "", ""},
		{"QIO on N with --include-bootloader, keys match", nTuya, qioN, PlaceOptions{IncludeBootloader: true}, []region{{0, bekenQIOSizeN}}, false, "", ""},
		{"QIO on N with --include-bootloader, zero-key chip", nZero, qioN, PlaceOptions{IncludeBootloader: true}, nil, false, "needs the tuya eFuse key, the chip has the zero key", "--include-bootloader"},
		{"QIO on N with --include-bootloader, key unknown", nUnknown, qioN, PlaceOptions{IncludeBootloader: true}, nil, false, "eFuse key is unknown", "--include-bootloader"},
		{"M QIO with --include-bootloader, bootloader unknown", nZero, qioM, PlaceOptions{IncludeBootloader: true}, nil, false, "not in tuyaflash's table", "--include-bootloader"},
		{"M QIO on a zero-key chip", nZero, qioM, keep, []region{{0x11000, bekenQIOSizeN - 0x11000}}, false, "", ""},
		{"M QIO on a Tuya-key chip", nTuya, qioM, keep, nil, false, "built for the zero eFuse key", ""},
		{"N QIO with --addr 0 hints --include-bootloader", nTuya, qioN, PlaceOptions{Addr: addr(0)}, nil, false, "does not match", "--addr"},
		// BK7238 and BK7252N: QIO images whole from 0x0 (GUI, OpenBeken's
		// release notes); the key is checked where both sides know it
		{"BK7238 QIO is written whole", t1, qio7238, keep, []region{{0, 0x60000}}, false, "", ""},
		{"BK7238 QIO, chip key unknown: whole", t1Unknown, qio7238, keep, []region{{0, 0x60000}}, false, "", ""},
		{"BK7238 QIO, image bootloader unknown: whole", t1, qioM, keep, []region{{0, bekenQIOSizeN}}, false, "", ""},
		{"Tuya-key app behind an unknown bootloader on a BK7238", t1, qioUnknown, keep, nil, false, "built for the tuya eFuse key, the chip has the zero key", ""},
		{"Tuya-key bootloader on a BK7238", t1, qio7238Tuya, keep, nil, false, "is for BK7231N, the chip is a BK7238", ""},
		{"BK7238 QIO on an N", nTuya, qio7238, keep, nil, false, "is for BK7238, the chip is a BK7231N", ""},
		{"BK7238 QIO on a (hypothetical) Tuya-key BK7238", flasher.Info{Family: flasher.BK7238, FlashSize: 2 << 20, EfuseKey: KeyTuya}, qio7238, keep, nil, false, "needs the zero eFuse key, the chip has the tuya key", ""},
		{"BK7238 QIO with --include-bootloader", t1, qio7238, PlaceOptions{IncludeBootloader: true}, []region{{0, 0x60000}}, false, "", ""},
		{"BK7238 UA at 0x11000", t1, uaZero, keep, []region{{0x11000, len(uaZero.Data)}}, false, "", ""},
		{"Tuya-key UA on a BK7238", t1, ua, keep, nil, false, "tuyaflash firmware list --chip bk7238", ""},
		{"BK7238 dump restore from 0", t1, dumpT1, PlaceOptions{Restore: true}, []region{{0, 2 << 20}}, false, "", ""},
		{"BK7238 dump written as firmware keeps the bootloader", t1, dumpT1, keep, []region{{0x11000, 2<<20 - 0x11000}}, false, "", ""},
		{"BK7238 UF2", t1, uf2T1, keep, []region{{0x11000, len(uf2T1.Regions[0].Data)}}, false, "", ""},
		{"BK7252N QIO whole, keys unknown", b52N, qioUnknown, keep, []region{{0, 0x60000}}, false, "", ""},
		// BK7231U and BK7252: the bootloader answers the UART and is never
		// written (GUI isSectorModificationAllowed)
		{"BK7231U QIO skips the bootloader", uChip, qioU, keep, []region{{0x11000, 0x60000 - 0x11000}}, false, "", ""},
		{"BK7231U QIO with --include-bootloader", uChip, qioU, PlaceOptions{IncludeBootloader: true}, nil, false, "nothing below 0x11000 is written on a BK7231U", ""},
		{"BK7231U UA", uChip, uaZero, keep, []region{{0x11000, len(uaZero.Data)}}, false, "", ""},
		{"BK7252 dump restore skips the bootloader", b52, dump52, PlaceOptions{Restore: true}, []region{{0x11000, 4<<20 - 0x11000}}, false, "", ""},
		{"BK7252 UF2", b52, uf252, keep, []region{{0x11000, len(uf252.Regions[0].Data)}}, false, "", ""},
		{"BK7252 UF2 on a BK7238", t1, uf252, keep, nil, false, "is for BK7252, the chip is a BK7238", ""},
		{"BK7252 --addr 0", b52, uaZero, PlaceOptions{Addr: addr(0)}, nil, false, "does not match", "--addr"},
		// BK7231M: a BK7231N with the zero key
		{"M QIO on a BK7231M keeps the bootloader", mChip, qioM, keep, []region{{0x11000, bekenQIOSizeN - 0x11000}}, false, "", ""},
		{"N QIO on a BK7231M", mChip, qioN, keep, nil, false, "need OpenBeken's BK7231M build", ""},
		// full dumps and restores
		{"T dump restore skips the bootloader", tChip, dumpT, PlaceOptions{Restore: true}, []region{{0x11000, 2<<20 - 0x11000}}, false, "", ""},
		{"N dump restore is byte-exact from 0", nTuya, dumpN, PlaceOptions{Restore: true}, []region{{0, 2 << 20}}, false, "", ""},
		{"N dump restore, chip key unknown", nUnknown, dumpN, PlaceOptions{Restore: true}, []region{{0, 2 << 20}}, false, "", ""},
		{"N dump restore onto a zero-key chip", nZero, dumpN, PlaceOptions{Restore: true}, nil, false, "cannot be from this chip", ""},
		{"N dump written as firmware keeps the bootloader", nTuya, dumpN, keep, []region{{0x11000, 2<<20 - 0x11000}}, false, "", ""},
		{"dump larger than the flash", n1M, dumpN, PlaceOptions{Restore: true}, nil, false, "larger than the chip's 1024 KiB flash", ""},
		// UF2
		{"UF2 on N", nTuya, uf2N, keep, []region{{0x11000, len(uf2N.Regions[0].Data)}, {0x129F0A, 102}}, false, "", ""},
		{"UF2 on N with --addr", nTuya, uf2N, PlaceOptions{Addr: addr(0x20000)}, nil, false, "does not match", "--addr"},
		// ESP flash mode
		{"ESP image, zero options keep the mode", esp1M, espQIO, PlaceOptions{}, []region{{0, len(espQIO.Data)}}, false, "", ""},
		{"ESP image patched to dout", esp1M, espQIO, dout, []region{{0, len(espQIO.Data)}}, true, "", ""},
		{"ESP image already dout: not patched", esp1M, espDOUT, dout, []region{{0, len(espDOUT.Data)}}, false, "", ""},
		{"ESP8285 forces dout", esp8285, espQIO, keep, []region{{0, len(espQIO.Data)}}, true, "", ""},
		{"ESP8285 refuses dio", esp8285, espQIO, dio, nil, false, "wired for DOUT", "--flash-mode"},
		{"explicit keep", esp1M, espQIO, PlaceOptions{FlashMode: "keep"}, []region{{0, len(espQIO.Data)}}, false, "", ""},
		{"ESP dump never patched", esp1M, espDump, dout, []region{{0, 1 << 20}}, false, "", ""},
		{"ESP restore never patched", esp1M, espQIO, PlaceOptions{FlashMode: "dout", Restore: true}, []region{{0, len(espQIO.Data)}}, false, "", ""},
		{"ESP dump larger than the flash", esp1M, espDump2M, keep, nil, false, "larger than the chip's 1024 KiB flash", ""},
		{"ESP image with --addr 0x1000", esp1M, espDOUT, PlaceOptions{Addr: addr(0x1000)}, nil, false, "does not match", "--addr"},
		// checksum
		{"checksum mismatch", nTuya, ua, PlaceOptions{SHA256: strings.Repeat("ab", 32)}, nil, false, "sha256", ""},
		{"checksum match", nTuya, ua, PlaceOptions{SHA256: strings.ToUpper(ua.SHA256)}, []region{{0x11000, len(ua.Data)}}, false, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Place(tc.info, tc.det, tc.opts)
			if tc.refused != "" {
				if err == nil {
					t.Fatalf("placed %+v, want a refusal", p.Regions)
				}
				if !errors.Is(err, flasher.ErrRefused) {
					t.Errorf("%v does not match ErrRefused", err)
				}
				if text := err.Error() + "\n" + flasher.Hint(err); !strings.Contains(text, tc.refused) {
					t.Errorf("refusal %q lacks %q", text, tc.refused)
				}
				var re *RefusalError
				if errors.As(err, &re) && re.Flag != tc.flag {
					t.Errorf("refusal names flag %q, want %q", re.Flag, tc.flag)
				}
				if tc.flag != "" && !strings.Contains(err.Error(), tc.flag) {
					t.Errorf("refusal %q does not name %s", err, tc.flag)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Regions) != len(tc.regions) {
				t.Fatalf("regions %+v, want %+v", p.Regions, tc.regions)
			}
			for i, r := range tc.regions {
				if got := p.Regions[i]; got.Addr != r.addr || len(got.Data) != r.size {
					t.Errorf("region %d: %d bytes at 0x%X, want %d at 0x%X", i, len(got.Data), got.Addr, r.size, r.addr)
				}
			}
			if p.Patched != tc.patched {
				t.Errorf("patched %v, want %v (notes %q)", p.Patched, tc.patched, p.Notes)
			}
			if tc.info.Family == flasher.BK7231T {
				for _, r := range p.Regions {
					if r.Addr < 0x11000 {
						t.Errorf("BK7231T write at 0x%X", r.Addr)
					}
				}
			}
		})
	}
}

// TestPlaceWritesTheImageBytes checks what goes to the chip, not only
// where: a skipped QIO keeps the image's own bytes, a patched ESP image
// differs only in header byte 2 and the original stays untouched.
func TestPlaceWritesTheImageBytes(t *testing.T) {
	qio := fwtest.Beken(fwtest.BootCRCN, 257, fwtest.App(fwtest.SigTuya, 0x8000, 2), bekenQIOSizeN)
	d := mustDetect(t, qio)
	p, err := Place(flasher.Info{Family: flasher.BK7231N, FlashSize: 2 << 20, EfuseKey: KeyTuya}, d, PlaceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.Regions[0].Data, qio[0x11000:]) || p.Skip != 0x11000 {
		t.Error("QIO placement is not the image from 0x11000")
	}
	img := fwtest.ESPImage(0, 0x20, 3000)
	orig := append([]byte(nil), img...)
	e := mustDetect(t, img)
	p, err = Place(flasher.Info{Family: flasher.ESP8285, FlashSize: 1 << 20}, e, PlaceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w := p.Regions[0].Data
	if w[2] != 3 || !bytes.Equal(w[3:], orig[3:]) || !bytes.Equal(w[:2], orig[:2]) {
		t.Errorf("patched header % X, want mode byte 3 and nothing else changed", w[:4])
	}
	if !bytes.Equal(img, orig) || !bytes.Equal(e.Data, orig) {
		t.Error("the detected image was modified in place")
	}
}

func TestPlaceRefusesNonWritable(t *testing.T) {
	d, _ := Detect(fwtest.RBL(1, 1, "app", "1"), "x.rbl")
	_, err := Place(flasher.Info{Family: flasher.BK7231N, FlashSize: 2 << 20}, d, PlaceOptions{})
	if !errors.Is(err, flasher.ErrRefused) {
		t.Errorf("err = %v, want refused", err)
	}
	if _, err := Place(flasher.Info{Family: flasher.BK7231N}, nil, PlaceOptions{}); !errors.Is(err, flasher.ErrRefused) {
		t.Errorf("nil detection: %v", err)
	}
}

func TestPlaceRejectsUnknownFlashMode(t *testing.T) {
	d := mustDetect(t, fwtest.ESPImage(3, 0x20, 100))
	_, err := Place(flasher.Info{Family: flasher.ESP8266, FlashSize: 1 << 20}, d, PlaceOptions{FlashMode: "fast"})
	if err == nil || !strings.Contains(err.Error(), "--flash-mode") {
		t.Errorf("err = %v", err)
	}
}

func TestForRestoreKeepsUnusualDumpsRestorable(t *testing.T) {
	erased := padFF(nil, 2<<20) // no bootloader, no app: Detect refuses it
	if _, err := Detect(erased, "b.bin"); err == nil {
		t.Fatal("an erased dump was detected")
	}
	for _, fam := range []flasher.Family{flasher.BK7231T, flasher.BK7231N} {
		d := ForRestore(erased, "b.bin", fam)
		p, err := Place(flasher.Info{Family: fam, FlashSize: 2 << 20}, d, PlaceOptions{Restore: true})
		if err != nil {
			t.Fatalf("%s: %v", fam, err)
		}
		want := uint32(0)
		if fam == flasher.BK7231T {
			want = 0x11000
		}
		if p.Regions[0].Addr != want || len(p.Regions[0].Data) != 2<<20-int(want) {
			t.Errorf("%s: %d bytes at 0x%X", fam, len(p.Regions[0].Data), p.Regions[0].Addr)
		}
	}
	esp := ForRestore(padFF(nil, 1<<20), "e.bin", flasher.ESP8285)
	if p, err := Place(flasher.Info{Family: flasher.ESP8285, FlashSize: 1 << 20}, esp, PlaceOptions{Restore: true}); err != nil || p.Patched {
		t.Errorf("ESP restore: %v patched=%v", err, p != nil && p.Patched)
	}
	// A recognised image for another architecture stays refused.
	d := ForRestore(fwtest.ESPImage(3, 0x20, 100), "x.bin", flasher.BK7231N)
	if _, err := Place(flasher.Info{Family: flasher.BK7231N, FlashSize: 2 << 20}, d, PlaceOptions{Restore: true}); !errors.Is(err, flasher.ErrRefused) {
		t.Errorf("ESP image restored onto a BK7231N: %v", err)
	}
}
