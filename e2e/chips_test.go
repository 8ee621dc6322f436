//go:build linux

package e2e

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	bksim "github.com/tuyaflash/tuyaflash/devicesim/bk7231"
	"github.com/tuyaflash/tuyaflash/firmware/fwtest"
)

// obkVersion is the version of the local test catalogue's OpenBeken entry.
const obkVersion = "9.9.9"

// obkImages are synthetic OpenBeken UART images in the format OpenBeken
// publishes for each chip (its release notes and Makefile): QIO images
// (bootloader + application) for BK7238, BK7252N and BK7231M, UA
// applications for BK7231U and BK7252. The BK7238 image carries a
// bootloader whose fingerprint is the Beken SDK's BK7238 bootloader, as
// OpenBeken's image does; the others' bootloaders are in no table.
var obkImages = map[string]struct {
	file, family, key, format string
	data                      []byte
}{
	"bk7238":  {"OpenBK7238_QIO_" + obkVersion + ".bin", "BK7238", "", "beken-qio", fwtest.Beken(fwtest.BootCRC7238, 257, fwtest.App(fwtest.SigPlain, 0x50000, 38), 0x80000)},
	"bk7252n": {"OpenBK7252N_QIO_" + obkVersion + ".bin", "BK7252N", "", "beken-qio", fwtest.Beken(0, 0, fwtest.App(fwtest.SigTuya, 0x50000, 52), 0x80000)},
	"bk7231m": {"OpenBK7231M_QIO_" + obkVersion + ".bin", "BK7231N", "zero", "beken-qio", fwtest.Beken(0, 0, fwtest.App(fwtest.SigPlain, 0x50000, 31), 0x80000)},
	"bk7231u": {"OpenBK7231U_UA_" + obkVersion + ".bin", "BK7231U", "", "beken-ua", fwtest.App(fwtest.SigTuya, 0x50000, 21)},
	"bk7252":  {"OpenBK7252_UA_" + obkVersion + ".bin", "BK7252", "", "beken-ua", fwtest.App(fwtest.SigTuya, 0x50000, 72)},
}

// obkCatalogue writes the images and a catalogue naming them by relative
// path (a local entry, as a user's own catalogue can hold) into dir; the
// offsets and skips are those the validator demands of each chip's format.
func obkCatalogue(t *testing.T, dir string) string {
	t.Helper()
	type part struct {
		Path   string `json:"path"`
		Offset int    `json:"offset"`
		Skip   int    `json:"skip,omitempty"`
		Format string `json:"format"`
	}
	type build struct {
		ChipFamily string `json:"chipFamily"`
		EfuseKey   string `json:"efuse_key,omitempty"`
		Parts      []part `json:"parts"`
	}
	var builds []build
	for _, chip := range []string{"bk7238", "bk7252n", "bk7231m", "bk7231u", "bk7252"} {
		img := obkImages[chip]
		writeIn(t, dir, img.file, img.data)
		p := part{Path: img.file, Format: img.format}
		switch {
		case img.format == "beken-ua":
			p.Offset = 0x11000
		case chip == "bk7231m":
			p.Skip = 0x11000
		}
		builds = append(builds, build{ChipFamily: img.family, EfuseKey: img.key, Parts: []part{p}})
	}
	doc := map[string]any{"name": "local", "firmwares": []any{map[string]any{
		"name": "openbeken", "kind": "openbeken", "version": obkVersion, "builds": builds}}}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return writeIn(t, dir, "manifest.json", b)
}

// TestNewChipsEndToEnd runs each new Beken chip's bench session over a pty
// against "tuyaflash sim --chip CHIP": detect, backup, write of its
// OpenBeken build from a local catalogue entry, restore, each checked on
// the flash. The bootloader of the chips whose bootloader answers the UART
// (BK7231U, BK7252) is never changed; BK7238 and BK7252N take the QIO image
// whole from 0x0; a BK7231M keeps its bootloader and gets the M build; a
// BK7238's MAC is read back where OpenBeken looks for it after the write.
func TestNewChipsEndToEnd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		chip string
		// chipFlag is --chip: the simulator's bootloaders are in no table,
		// so a BASIC_BEKEN chip cannot tell U from BK7252 by itself.
		chipFlag        string
		family, model   string
		size            int
		whole, keepBoot bool
		rf              bool
	}{
		{"bk7238", "", "BK7238", "BK7238", 2 << 20, true, false, true},
		{"bk7231u", "bk7231u", "BK7231U", "BK7231U", 2 << 20, false, true, false},
		{"bk7252", "bk7252", "BK7252", "BK7252", 4 << 20, false, true, false},
		{"bk7252n", "", "BK7252N", "BK7252N", 2 << 20, true, false, false},
		{"bk7231m", "bk7231m", "BK7231N", "BK7231M", 2 << 20, false, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.chip, func(t *testing.T) {
			dir := t.TempDir()
			manifest := obkCatalogue(t, dir)
			img := obkImages[tc.chip]
			s := startSim(t, "--chip", tc.chip)
			store := t.TempDir()
			args := func(cmd string, more ...string) []string {
				a := []string{cmd, "--port", s.tty}
				if tc.chipFlag != "" {
					a = append(a, "--chip", tc.chipFlag)
				}
				return append(a, more...)
			}

			var det struct {
				Chip struct {
					Family    string `json:"family"`
					Model     string `json:"model"`
					FlashSize int    `json:"flash_size"`
					MAC       string `json:"mac"`
				} `json:"chip"`
			}
			r := mustRun(t, store, args("detect", "--json")...)
			if err := json.Unmarshal([]byte(r.stdout), &det); err != nil {
				t.Fatalf("detect --json: %v\n%s", err, r)
			}
			if det.Chip.Family != tc.family || det.Chip.Model != tc.model || det.Chip.FlashSize != tc.size || det.Chip.MAC == "" {
				t.Fatalf("detect = %+v", det.Chip)
			}

			orig := readFile(t, backupPath(t, mustRun(t, store, args("backup")...)))
			if len(orig) != tc.size {
				t.Fatalf("backup of %d bytes, want %d", len(orig), tc.size)
			}

			w := mustRun(t, store, args("write", "--firmware", "openbeken", "--manifest", manifest, "--json")...)
			var wd struct {
				Plans []struct {
					Addr string `json:"addr"`
				} `json:"plans"`
				RF *struct {
					OK  bool   `json:"ok"`
					MAC string `json:"mac"`
					At  string `json:"at"`
				} `json:"rf"`
			}
			if err := json.Unmarshal([]byte(w.stdout), &wd); err != nil || len(wd.Plans) != 1 {
				t.Fatalf("write --json: %v\n%s", err, w)
			}
			after := readFile(t, backupPath(t, mustRun(t, store, args("backup")...)))
			switch {
			case tc.whole:
				if wd.Plans[0].Addr != "0x000000" || !bytes.Equal(after[:len(img.data)], img.data) {
					t.Fatalf("the QIO image was not written whole from 0x0 (plan at %s)", wd.Plans[0].Addr)
				}
			case img.format == "beken-qio":
				if wd.Plans[0].Addr != "0x011000" || !bytes.Equal(after[0x11000:len(img.data)], img.data[0x11000:]) {
					t.Fatalf("the QIO image's application is not at 0x11000 (plan at %s)", wd.Plans[0].Addr)
				}
			default:
				if wd.Plans[0].Addr != "0x011000" || !bytes.Equal(after[0x11000:0x11000+len(img.data)], img.data) {
					t.Fatalf("the UA image is not at 0x11000 (plan at %s)", wd.Plans[0].Addr)
				}
			}
			if tc.keepBoot && !bytes.Equal(after[:0x11000], orig[:0x11000]) {
				t.Fatal("the chip's bootloader changed")
			}
			end := 0x11000 + len(img.data)
			if img.format == "beken-qio" {
				end = len(img.data)
			}
			if !bytes.Equal(after[end:], orig[end:]) {
				t.Fatal("flash after the image changed")
			}
			if tc.rf != (wd.RF != nil) || tc.rf && (!wd.RF.OK || wd.RF.MAC != det.Chip.MAC || wd.RF.At != "0x1E0000") {
				t.Errorf("rf check %+v (want one: %v, MAC %s)", wd.RF, tc.rf, det.Chip.MAC)
			}

			mustRun(t, store, args("restore", firstBackup(t, store))...)
			restored := readFile(t, backupPath(t, mustRun(t, store, args("backup")...)))
			if !bytes.Equal(restored, orig) {
				t.Fatal("restore did not bring back the original flash")
			}
		})
	}
}

// TestT1RFMovedAfterWrite: a BK7238 in Tuya's T1 layout keeps its RF
// calibration at 0x1E3000 (LibreTiny beken-7238-tuya.json) with 0x1E0000
// blank. After OpenBeken is written the RF sector is copied to 0x1E0000,
// where OpenBeken looks for it, as BK7231GUIFlashTool does; 0x1E3000 stays
// as it was, and the MAC reads back the same.
func TestT1RFMovedAfterWrite(t *testing.T) {
	t.Parallel()
	flash := bksim.DefaultFlash(bksim.BK7238, bksim.DefaultMAC)
	rf := bksim.RFOffset(bksim.BK7238)
	copy(flash[0x1E3000:0x1E4000], flash[rf:rf+0x1000])
	copy(flash[rf:rf+0x1000], bytes.Repeat([]byte{0xFF}, 0x1000))
	dir := t.TempDir()
	dump := writeIn(t, dir, "t1.bin", flash)
	manifest := obkCatalogue(t, dir)
	s := startSim(t, "--chip", "bk7238", "--flash", dump)
	store := t.TempDir()
	d := mustRun(t, store, "detect", "--port", s.tty)
	if !strings.Contains(d.stdout, "RF calibration sector at 0x1E3000") || !strings.Contains(d.stderr, "not at 0x1E0000 where OpenBeken looks") {
		t.Fatalf("detect does not report the T1 layout:\n%s", d)
	}
	mustRun(t, store, "backup", "--port", s.tty)
	w := mustRun(t, store, "write", "--port", s.tty, "--firmware", "openbeken", "--manifest", manifest)
	if !strings.Contains(w.stdout, "copied the RF calibration sector from 0x1E3000 to 0x1E0000") {
		t.Fatalf("write did not copy the RF sector:\n%s", w)
	}
	after := readFile(t, backupPath(t, mustRun(t, store, "backup", "--port", s.tty)))
	if !bytes.Equal(after[0x1E0000:0x1E1000], flash[0x1E3000:0x1E4000]) || !bytes.Equal(after[0x1E3000:0x1E4000], flash[0x1E3000:0x1E4000]) {
		t.Fatal("the RF sector is not at both 0x1E0000 and 0x1E3000")
	}
	d = mustRun(t, store, "detect", "--port", s.tty)
	if !strings.Contains(d.stdout, "RF calibration sector at 0x1E0000") {
		t.Errorf("detect after the write:\n%s", d)
	}
}

// TestChipFlagNamesEveryChip: --chip takes every family; bk7231m asserts
// the zero eFuse key (refused on a Tuya-key BK7231N), and a BASIC_BEKEN
// chip whose bootloader is in no table is told apart only by --chip.
func TestChipFlagNamesEveryChip(t *testing.T) {
	t.Parallel()
	store := t.TempDir()
	n := startSim(t, "--chip", "bk7231n")
	expectFail(t, store, 4, []string{"--chip BK7231M given", "eFuse key is tuya"}, "detect", "--port", n.tty, "--chip", "bk7231m")
	u := startSim(t, "--chip", "bk7231u")
	expectFail(t, store, 6, []string{"BK7231U or BK7252", "--chip bk7231u or --chip bk7252"}, "detect", "--port", u.tty)
	r := mustRun(t, store, "detect", "--port", u.tty, "--chip", "BK7231U")
	if !strings.Contains(r.stdout, "Chip:        BK7231U") {
		t.Errorf("detect --chip BK7231U:\n%s", r)
	}
	expectFail(t, store, 2, []string{"bk7238", "bk7252n", "esp8285"}, "detect", "--port", u.tty, "--chip", "bk7299")
	// The chip table's bootloader rule, before the power-cycle prompt.
	raw := writeIn(t, t.TempDir(), "boot.bin", make([]byte, 0x1000))
	for _, port := range []string{u.tty, "sim:bk7252"} {
		r = expectFail(t, store, 4, []string{"bootloader occupies 0x000000-0x010FFF"}, "write", "--port", port, "--chip", "bk7231u", "--raw", "--addr", "0x1000", "--yes", raw)
		if strings.Contains(r.stderr, "power-cycle the module now") {
			t.Errorf("refused only after the power-cycle prompt:\n%s", r)
		}
	}
}
