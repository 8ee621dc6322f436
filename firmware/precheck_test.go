package firmware

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tuyaflash/tuyaflash/espimage"
	"github.com/tuyaflash/tuyaflash/firmware/fwtest"
	"github.com/tuyaflash/tuyaflash/flasher"
)

// TestPrecheck: the gates that need no chip refuse before connecting; the
// gates that need the chip's key or flash size wait for Place.
func TestPrecheck(t *testing.T) {
	ua := mustDetect(t, fwtest.App(fwtest.SigTuya, 0x8000, 1))
	qioN := mustDetect(t, fwtest.Beken(fwtest.BootCRCN, 257, fwtest.App(fwtest.SigTuya, 0x8000, 2), bekenQIOSizeN))
	esp := mustDetect(t, fwtest.ESPImage(0, 0x20, 4000))
	qioM := mustDetect(t, fwtest.Beken(0, 0, fwtest.App(fwtest.SigPlain, 0x8000, 2), bekenQIOSizeN))
	qioU := mustDetect(t, fwtest.Beken(fwtest.BootCRCU, 256, fwtest.App(fwtest.SigPlain, 0x8000, 2), 0x60000))
	tests := []struct {
		name    string
		fam     flasher.Family
		det     *Detection
		o       PlaceOptions
		refused string
	}{
		{"UA, family unknown", "", ua, PlaceOptions{}, ""},
		{"UA on an ESP8266", flasher.ESP8266, ua, PlaceOptions{}, "wrong chip family"},
		{"ESP image on a BK7231N", flasher.BK7231N, esp, PlaceOptions{}, "wrong chip family"},
		{"N QIO on a T", flasher.BK7231T, qioN, PlaceOptions{}, "the chip is a BK7231T"},
		{"--include-bootloader with a UA image, family unknown", "", ua, PlaceOptions{IncludeBootloader: true}, "no bootloader part"},
		{"--include-bootloader with a UA image on N", flasher.BK7231N, ua, PlaceOptions{IncludeBootloader: true}, "no bootloader part"},
		{"--include-bootloader, N QIO, key not known yet", flasher.BK7231N, qioN, PlaceOptions{IncludeBootloader: true}, ""},
		{"ESP8285 not DOUT", flasher.ESP8285, esp, PlaceOptions{FlashMode: "qio"}, "wired for DOUT"},
		{"checksum", "", ua, PlaceOptions{SHA256: strings.Repeat("0", 64)}, "sha256"},
		{"--addr that does not fit", flasher.BK7231N, ua, PlaceOptions{Addr: addr(0)}, "does not match"},
		{"--flash-size, flash size not known yet", flasher.ESP8266, esp, PlaceOptions{FlashSize: "16MB"}, ""},
		// --chip bk7231m names a BK7231N with the zero key
		{"Tuya-key N QIO, --chip bk7231m", flasher.BK7231M, qioN, PlaceOptions{}, "need OpenBeken's BK7231M build"},
		{"M QIO, --chip bk7231m", flasher.BK7231M, qioM, PlaceOptions{}, ""},
		{"M QIO, --chip bk7231n: the key is told later", flasher.BK7231N, qioM, PlaceOptions{}, ""},
		// the chip table's bootloader rule before the power-cycle prompt
		{"--include-bootloader on a BK7231U", flasher.BK7231U, qioU, PlaceOptions{IncludeBootloader: true}, "nothing below 0x11000 is written on a BK7231U"},
		{"U QIO on a BK7252", flasher.BK7252, qioU, PlaceOptions{}, "the chip is a BK7252"},
		{"N QIO on a BK7238", flasher.BK7238, qioN, PlaceOptions{}, "the chip is a BK7238"},
	}
	for _, tc := range tests {
		err := Precheck(tc.fam, tc.det, tc.o)
		if tc.refused == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil || !errors.Is(err, flasher.ErrRefused) || !strings.Contains(err.Error()+flasher.Hint(err), tc.refused) {
			t.Errorf("%s: %v, want a refusal with %q", tc.name, err, tc.refused)
		}
	}
}

// TestESPHeaderFlashSizeGate: a header claiming more flash than the chip
// has is refused naming --flash-size, and the notes say what is written.
func TestESPHeaderFlashSizeGate(t *testing.T) {
	esp8285 := flasher.Info{Family: flasher.ESP8285, FlashSize: 1 << 20}
	img := mustDetect(t, fwtest.ESPImage(3, 0x00, 4000)) // 512KB, 40m
	_, err := Place(esp8285, img, PlaceOptions{FlashSize: "4MB"})
	var re *RefusalError
	if !errors.As(err, &re) || re.Flag != "--flash-size" || !strings.Contains(err.Error(), "4MB") || !strings.Contains(flasher.Hint(err), "--flash-size 1MB") {
		t.Fatalf("4MB header on a 1 MiB chip: %v (hint %q)", err, flasher.Hint(err))
	}
	big := mustDetect(t, fwtest.ESPImage(3, 0x40, 4000)) // the file's own header says 4MB
	if _, err := Place(esp8285, big, PlaceOptions{}); !errors.As(err, &re) || re.Flag != "--flash-size" || !strings.Contains(err.Error(), "the image header says 4MB") {
		t.Errorf("a 4MB header kept: %v", err)
	}
	p, err := Place(esp8285, big, PlaceOptions{FlashSize: "1MB", FlashFreq: "80m"})
	if err != nil {
		t.Fatal(err)
	}
	data := p.Regions[0].Data
	name, _, _ := espimage.SizeFromCode(data[3])
	notes := strings.Join(p.Notes, "\n")
	if name != "1MB" || data[3]&0x0F != 0xF || !strings.Contains(notes, "flash size set to 1MB in the image header (was 4MB)") || !strings.Contains(notes, "flash frequency set to 80m in the image header (was 40m)") {
		t.Errorf("header 0x%02X, notes:\n%s", data[3], notes)
	}
	if p, err := Place(esp8285, img, PlaceOptions{}); err != nil || strings.Contains(strings.Join(p.Notes, " "), "flash size") {
		t.Errorf("an unchanged header gets a size note: %v %q", err, p.Notes)
	}
}

func TestCandidatesAndPrefetch(t *testing.T) {
	srv := newFileServer(t)
	ua := fwtest.App(fwtest.SigTuya, 0x8000, 1)
	qio := fwtest.Beken(fwtest.BootCRCN, 257, fwtest.App(fwtest.SigTuya, 0x8000, 1), bekenQIOSizeN)
	qioM := fwtest.Beken(0, 0, fwtest.App(fwtest.SigPlain, 0x8000, 1), bekenQIOSizeN)
	srv.set("/1.0/t.bin", ua)
	srv.set("/1.0/n.bin", qio)
	srv.set("/1.0/m.bin", qioM)
	manifest := `{"name": "t", "firmwares": [
	  {"name": "openbeken", "kind": "openbeken", "version": "1.0", "builds": [
	    {"chipFamily": "BK7231T", "parts": [{"path": "` + srv.url("/1.0/t.bin") + `", "offset": 69632, "format": "beken-ua"}]},
	    {"chipFamily": "BK7231N", "efuse_key": "tuya", "parts": [{"path": "` + srv.url("/1.0/n.bin") + `", "offset": 0, "skip": 69632, "format": "beken-qio"}]},
	    {"chipFamily": "BK7231N", "efuse_key": "zero", "parts": [{"path": "` + srv.url("/1.0/m.bin") + `", "offset": 0, "skip": 69632, "format": "beken-qio"}]}]}
	]}`
	m, err := Parse([]byte(manifest), "test", "")
	if err != nil {
		t.Fatal(err)
	}
	count := func(fam flasher.Family) int {
		ch, err := Candidates(m, "openbeken", fam)
		if err != nil {
			t.Fatalf("%s: %v", fam, err)
		}
		return len(ch)
	}
	if n := count(""); n != 3 {
		t.Errorf("no family: %d builds, want 3", n)
	}
	if n := count(flasher.BK7231N); n != 2 {
		t.Errorf("BK7231N, key unknown: %d builds, want both keys'", n)
	}
	if n := count(flasher.BK7231T); n != 1 {
		t.Errorf("BK7231T: %d builds", n)
	}
	if ch, err := Candidates(m, "openbeken", flasher.BK7231M); err != nil || len(ch) != 1 || ch[0].Build.EfuseKey != KeyZero {
		t.Errorf("--chip bk7231m: %v %v, want the zero-key build alone", ch, err)
	}
	if _, err := Candidates(m, "openbeken", flasher.ESP8266); !errors.Is(err, flasher.ErrRefused) {
		t.Errorf("no build for the family: %v", err)
	}
	if _, err := Candidates(m, "nothing", ""); err == nil || !strings.Contains(err.Error(), `no firmware "nothing"`) {
		t.Errorf("unknown name: %v", err)
	}
	c := newCache(t, srv)
	res, err := Prefetch(context.Background(), m, "openbeken", flasher.BK7231N, c)
	if err != nil || len(res) != 2 {
		t.Fatalf("prefetch: %v %v", res, err)
	}
	// Connected later: Resolve finds the chip's build in the cache, offline.
	c.Offline = true
	r, err := Resolve(context.Background(), "openbeken", Chip{flasher.BK7231N, KeyZero}, m, c)
	if err != nil || !r.Fetch.FromCache || r.Detection.SHA256 != shaHex(qioM) {
		t.Errorf("resolve after prefetch: %+v %v", r, err)
	}
}

// TestDownloadHints: a download the server refuses is not "resumed"; a cut
// one is.
func TestDownloadHints(t *testing.T) {
	fs := newFileServer(t)
	c := newCache(t, fs)
	_, err := c.Fetch(context.Background(), Request{URL: fs.url("/gone.bin")})
	if h := flasher.Hint(err); strings.Contains(h, "resume") || !strings.Contains(h, "refused the file") {
		t.Errorf("404 hint %q", h)
	}
	data := make([]byte, 300000)
	fs2, c2 := cutTwice(t, "/cut.bin", data)
	fs2.cutAfter = 100000
	_, err = c2.Fetch(context.Background(), Request{URL: fs2.url("/cut.bin")})
	if h := flasher.Hint(err); err == nil || !strings.Contains(h, "resume") {
		t.Errorf("cut download: %v, hint %q", err, h)
	}
}
