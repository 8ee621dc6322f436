package ops

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/tuyaflash/tuyaflash/backup"
	"github.com/tuyaflash/tuyaflash/flasher"
)

// fakeDevice is a chip whose flash is a byte slice. failAt makes Read fail
// after that many bytes (a pulled cable), once.
type fakeDevice struct {
	info     flasher.Info
	flash    []byte
	failAt   int
	verified [][2]uint32
}

func (f *fakeDevice) Info() flasher.Info { return f.info }

func (f *fakeDevice) Read(ctx context.Context, addr, size uint32, w io.Writer, p flasher.Progress) error {
	for off := uint32(0); off < size; off += 4096 {
		if f.failAt > 0 && int(addr+off) >= f.failAt {
			f.failAt = 0
			return fmt.Errorf("read at 0x%X: %w", addr+off, errors.New("port closed"))
		}
		if _, err := w.Write(f.flash[addr+off : addr+off+4096]); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeDevice) Write(ctx context.Context, addr uint32, data []byte, p flasher.Progress) (flasher.WriteResult, error) {
	copy(f.flash[addr:], data)
	return flasher.WriteResult{Addr: addr, Size: len(data), Verified: true}, nil
}

func (f *fakeDevice) Verify(ctx context.Context, addr uint32, data []byte) error {
	f.verified = append(f.verified, [2]uint32{addr, uint32(len(data))})
	if crc32.ChecksumIEEE(f.flash[addr:int(addr)+len(data)]) != crc32.ChecksumIEEE(data) {
		return &flasher.ChecksumError{Algo: "CRC32", Addr: addr, Len: uint32(len(data))}
	}
	return nil
}

func (f *fakeDevice) Reboot(ctx context.Context) (string, error) { return "", nil }

func newFake(fam flasher.Family, size int) *fakeDevice {
	flash := make([]byte, size)
	for i := range flash {
		flash[i] = byte(i*7 + i/4096)
	}
	mac, _ := flasher.ParseMAC("10:D5:61:11:22:33")
	return &fakeDevice{flash: flash, info: flasher.Info{Family: fam, FlashSize: size, FlashID: [3]byte{0xEB, 0x60, 0x15}, MAC: mac, MACFrom: "test", Baud: 921600}}
}

func TestBackupResumesAfterAnInterruption(t *testing.T) {
	root := t.TempDir()
	dev := newFake(flasher.BK7231N, 1<<20)
	dev.failAt = 0x64000
	_, err := Backup(context.Background(), dev, BackupOptions{Root: root, ToolVersion: "test"})
	if err == nil || !strings.Contains(flasher.Hint(err), "run the same command again to resume") {
		t.Fatalf("interrupted backup: err %v, hint %q", err, flasher.Hint(err))
	}
	res, err := Backup(context.Background(), dev, BackupOptions{Root: root, ToolVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	// Everything the device handed over before the cable was pulled was
	// verified by it, so all of it is kept.
	if res.Resumed != 0x64000 {
		t.Errorf("resumed %#x bytes, want 0x64000", res.Resumed)
	}
	if len(dev.verified) != 1 || dev.verified[0] != [2]uint32{0, uint32(res.Resumed)} {
		t.Errorf("the stored part was not checked against the chip first: %v", dev.verified)
	}
	got, err := os.ReadFile(res.Path)
	if err != nil || !bytes.Equal(got, dev.flash) {
		t.Fatalf("resumed backup differs from the flash (%v)", err)
	}
	if res.Sidecar.MAC != "10:D5:61:11:22:33" || res.Sidecar.FlashID != "EB6015" || res.Sidecar.ToolVersion != "test" {
		t.Errorf("sidecar %+v", res.Sidecar)
	}
}

func TestBackupRestartsWhenTheChipChanged(t *testing.T) {
	root := t.TempDir()
	dev := newFake(flasher.BK7231N, 1<<20)
	dev.failAt = 0x80000
	Backup(context.Background(), dev, BackupOptions{Root: root})
	dev.flash[0x100] ^= 0xFF // something wrote the chip meanwhile
	res, err := Backup(context.Background(), dev, BackupOptions{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if res.Resumed != 0 {
		t.Errorf("resumed %#x bytes of a stale partial", res.Resumed)
	}
	if got, _ := os.ReadFile(res.Path); !bytes.Equal(got, dev.flash) {
		t.Fatal("backup differs from the flash")
	}
}

func TestBackupRefusesUnreadableFlash(t *testing.T) {
	dev := newFake(flasher.BK7231N, 1<<20)
	clear(dev.flash)
	_, err := Backup(context.Background(), dev, BackupOptions{Root: t.TempDir()})
	if !errors.Is(err, flasher.ErrDevice) || !strings.Contains(err.Error(), "reads as 0x00") {
		t.Fatalf("err = %v", err)
	}
}

func TestMatchSidecar(t *testing.T) {
	info := newFake(flasher.BK7231N, 2<<20).info
	tests := []struct {
		name string
		sc   backup.Sidecar
		want []string
	}{
		{"same device", backup.Sidecar{Family: "BK7231N", FlashSize: 2 << 20, FlashID: "EB6015", MAC: "10:D5:61:11:22:33"}, nil},
		{"family", backup.Sidecar{Family: "BK7231T"}, []string{"backup is of a BK7231T"}},
		{"size and id", backup.Sidecar{FlashSize: 1 << 20, FlashID: "1C7015"}, []string{"flash size 1024 KiB", "flash id 1C7015"}},
		{"mac", backup.Sidecar{MAC: "10:D5:61:AA:BB:CC"}, []string{"backup MAC 10:D5:61:AA:BB:CC"}},
		{"placeholder mac is not compared", backup.Sidecar{MAC: "C8:47:8C:00:00:00", MACPlaceholder: "Beken default"}, nil},
	}
	for _, tc := range tests {
		err := MatchSidecar(info, tc.sc)
		if (err == nil) != (tc.want == nil) {
			t.Errorf("%s: err = %v", tc.name, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) || !errors.Is(err, flasher.ErrRefused) {
				t.Errorf("%s: %v lacks %q", tc.name, err, w)
			}
		}
	}
}

func TestRestorePlan(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fam      flasher.Family
		sc       backup.Sidecar
		size     int
		force    bool
		wantAddr uint32
		wantSkip int
		wantErr  string
	}{
		{"N whole flash", flasher.BK7231N, backup.Sidecar{Family: "BK7231N"}, 2 << 20, false, 0, 0, ""},
		{"T keeps its bootloader", flasher.BK7231T, backup.Sidecar{Family: "BK7231T"}, 2 << 20, false, 0x11000, 0x11000, ""},
		{"T backup of the bootloader only", flasher.BK7231T, backup.Sidecar{Family: "BK7231T"}, 0x10000, false, 0, 0, "only the BK7231T bootloader"},
		{"U keeps its bootloader", flasher.BK7231U, backup.Sidecar{Family: "BK7231U"}, 2 << 20, false, 0x11000, 0x11000, ""},
		{"BK7252 keeps its bootloader", flasher.BK7252, backup.Sidecar{Family: "BK7252"}, 2 << 20, false, 0x11000, 0x11000, ""},
		{"BK7238 whole flash", flasher.BK7238, backup.Sidecar{Family: "BK7238"}, 2 << 20, false, 0, 0, ""},
		{"BK7252N whole flash", flasher.BK7252N, backup.Sidecar{Family: "BK7252N"}, 2 << 20, false, 0, 0, ""},
		{"foreign backup", flasher.BK7231N, backup.Sidecar{Family: "BK7231N", MAC: "10:D5:61:AA:BB:CC"}, 2 << 20, false, 0, 0, "not from this chip"},
		{"foreign backup forced", flasher.BK7231N, backup.Sidecar{Family: "BK7231N", MAC: "10:D5:61:AA:BB:CC"}, 2 << 20, true, 0, 0, ""},
		{"another family, even forced", flasher.BK7231N, backup.Sidecar{Family: "BK7231T"}, 2 << 20, true, 0, 0, "--force does not override"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev := newFake(tc.fam, 2<<20)
			b := &backup.Backup{Sidecar: tc.sc, Data: make([]byte, tc.size)}
			p, data, err := RestorePlan(dev, b, tc.force)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error()+"\n"+flasher.Hint(err), tc.wantErr) {
					t.Fatalf("err = %v (hint %q), want %q", err, flasher.Hint(err), tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Addr != tc.wantAddr || p.Skip != tc.wantSkip || len(data) != tc.size-tc.wantSkip {
				t.Errorf("plan %+v, %d bytes", p, len(data))
			}
		})
	}
}

// TestPrecheckWrite: the chip table's bootloader rule refuses a write below
// 0x11000 on the chips whose bootloader answers the UART before any chip
// is connected, and lets it through where the BootROM answers.
func TestPrecheckWrite(t *testing.T) {
	for _, tc := range []struct {
		fam     flasher.Family
		addr    uint32
		refused bool
	}{
		{flasher.BK7231T, 0, true},
		{flasher.BK7231U, 0x10000, true},
		{flasher.BK7252, 0x1000, true},
		{flasher.BK7231U, 0x11000, false},
		{flasher.BK7231N, 0, false},
		{flasher.BK7231M, 0, false},
		{flasher.BK7238, 0, false},
		{flasher.BK7252N, 0, false},
		{flasher.ESP8266, 0, false},
		{"", 0, false},
	} {
		err := PrecheckWrite(tc.fam, tc.addr, 0x1000)
		if errors.Is(err, flasher.ErrRefused) != tc.refused {
			t.Errorf("%s at 0x%06X: err %v, want refused %v", tc.fam, tc.addr, err, tc.refused)
		}
		if tc.refused && !strings.Contains(err.Error(), string(tc.fam)+" bootloader") {
			t.Errorf("%s: %v does not name the chip's bootloader", tc.fam, err)
		}
	}
}

func TestPlanWrite(t *testing.T) {
	dev := newFake(flasher.ESP8266, 1<<20)
	for _, tc := range []struct {
		name string
		addr uint32
		size int
		err  string
	}{
		{"fits", 0x10000, 0x20000, ""},
		{"empty", 0, 0, "empty"},
		{"bigger than the flash", 0, 2 << 20, "larger than the chip's 1024 KiB flash"},
		{"past the end", 0xF8000, 0x10000, "past the end"},
	} {
		p, err := PlanWrite(dev, tc.addr, make([]byte, tc.size))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, flasher.ErrRefused)):
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.err)
		case tc.err == "" && p.Sectors != (tc.size+4095)/4096:
			t.Errorf("%s: %d sectors", tc.name, p.Sectors)
		}
	}
}

func TestIdentityKey(t *testing.T) {
	info := newFake(flasher.BK7231N, 2<<20).info
	if got := IdentityKey(info); got != "bk7231n-eb6015-2048k-10d561112233" {
		t.Errorf("key %q", got)
	}
	info.MAC, _ = flasher.ParseMAC("C8:47:8C:00:00:00")
	if got := IdentityKey(info); got != "bk7231n-eb6015-2048k" {
		t.Errorf("placeholder MAC used in key %q", got)
	}
}

// TestForceNamesWhatItOverrides: the plan of a forced restore lists every
// difference it overrides.
func TestForceNamesWhatItOverrides(t *testing.T) {
	dev := newFake(flasher.BK7231N, 2<<20)
	b := &backup.Backup{Sidecar: backup.Sidecar{Family: "BK7231N", MAC: "10:D5:61:AA:BB:CC", FlashID: "1C7015"}, Data: make([]byte, 2<<20)}
	p, _, err := RestorePlan(dev, b, true)
	if err != nil {
		t.Fatal(err)
	}
	notes := strings.Join(p.Notes, "\n")
	for _, want := range []string{"--force overrides", "backup MAC 10:D5:61:AA:BB:CC, chip 10:D5:61:11:22:33", "backup flash id 1C7015, chip EB6015"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
}

// TestInterruptedBackupIsNoLinkFault: a backup interrupted by the user
// keeps its verified part and says so, without blaming the wiring.
func TestInterruptedBackupIsNoLinkFault(t *testing.T) {
	root := t.TempDir()
	dev := newFake(flasher.BK7231N, 1<<20)
	dev.failAt = 0x40000
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var partial string
	_, err := Backup(ctx, dev, BackupOptions{Root: root, Started: func(p string, done int64) { partial = p }})
	h := flasher.Hint(err)
	if !errors.Is(err, context.Canceled) || !strings.Contains(h, "the partial backup (0x000000-0x03FFFF verified, 256 KiB) is kept in "+partial) || strings.Contains(h, "wires") || strings.Contains(h, "unreliable") {
		t.Fatalf("err %v, hint %q", err, h)
	}
	dev2 := newFake(flasher.BK7231N, 1<<20)
	dev2.failAt = 0x40000
	_, err = Backup(context.Background(), dev2, BackupOptions{Root: t.TempDir()})
	if h := flasher.Hint(err); !strings.Contains(h, "link") || !strings.Contains(h, "nothing is lost") {
		t.Errorf("a lost link: hint %q", h)
	}
}

// TestSidecarSaysWhatWasVerified: the structured verified field names the
// check of each family's client and the resumed part's.
func TestSidecarSaysWhatWasVerified(t *testing.T) {
	for _, tc := range []struct {
		fam       flasher.Family
		method    string
		by        string
		interrupt bool
	}{
		{flasher.BK7231N, "crc32", "chip", false},
		{flasher.ESP8266, "md5", "stub", true},
	} {
		root := t.TempDir()
		dev := newFake(tc.fam, 1<<20)
		if tc.interrupt {
			dev.failAt = 0x20000
			Backup(context.Background(), dev, BackupOptions{Root: root})
		}
		res, err := Backup(context.Background(), dev, BackupOptions{Root: root})
		if err != nil {
			t.Fatal(err)
		}
		v := res.Sidecar.Verified
		if v == nil || v.Method != tc.method || v.By != tc.by || v.Granularity != 64<<10 || v.Whole == "" {
			t.Errorf("%s: verified %+v", tc.fam, v)
			continue
		}
		if tc.interrupt && (v.Resumed != 0x20000 || !strings.Contains(v.ResumedMethod, tc.method)) {
			t.Errorf("%s: resumed part %+v", tc.fam, v)
		}
	}
}
