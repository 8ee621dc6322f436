package bk7231

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	bksim "github.com/tuyaflash/tuyaflash/devicesim/bk7231"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/transport"
)

var (
	testMAC  = flasher.MAC{0x02, 0x7A, 0x42, 0x38, 0x00, 0x01}
	tuyaKey  = tuyaEfuseKey
	zeroKey  = [16]byte{}
	noPrint  = uint32(0x12345678) // a bootloader fingerprint in no table
	printN   = uint32(0x1EBE6E45) // bl_bk7231n_1.0.1 (raw)
	printT   = uint32(0x45AB3E47) // bl_bk7231s_1.0.5
	printT1  = uint32(0x0BD073CD) // bl_t1_2.0.0
	printU   = uint32(0xD8C6FE60) // bl_bk7231u_1.0.6
	print52  = uint32(0xC6064AF3) // bl_bk7252_0.1.3
	printQ   = uint32(0x0FDCE109) // bl_bk7231q
	jedec2M  = [3]byte{0xEB, 0x60, 0x15}
	jedecPY  = [3]byte{0x85, 0x20, 0x15}
	jedecGD4 = [3]byte{0xC8, 0x40, 0x16}
)

// tlvSector is an RF calibration sector holding mac (tag 0x11111102 inside
// the 0x11111100 container), as bk7231-protocol.md §9.2 describes it.
func tlvSector(mac flasher.MAC) []byte {
	le := binary.LittleEndian
	b := []byte("TLV\x00")
	b = le.AppendUint32(b, 8+8+6)
	b = le.AppendUint32(b, 0x11111100)
	b = le.AppendUint32(b, 8+6)
	b = le.AppendUint32(b, 0x11111102)
	b = le.AppendUint32(b, 6)
	b = append(b, mac[:]...)
	return append(b, bytes.Repeat([]byte{0xFF}, sectorSize-len(b))...)
}

// profiles are scripted download modes of each chip (fakeROM), with the
// facts of more-chips.md: fingerprints, chip ids, flash ids, keys.
func profile(name string, size int, rf uint32) *fakeROM {
	flash := make([]byte, size)
	rand.New(rand.NewSource(int64(size) + int64(rf))).Read(flash)
	copy(flash[rf:], tlvSector(testMAC))
	f := &fakeROM{flash: flash, idReg: regChipID}
	switch name {
	case "BK7231N":
		f.proto, f.fingerprint, f.chipID, f.jedec, f.key = ProtoFull, printN, 0x7231C, jedec2M, tuyaKey
	case "BK7231M":
		f.proto, f.fingerprint, f.chipID, f.jedec, f.key = ProtoFull, noPrint, 0x7231C, jedec2M, zeroKey
	case "BK7238":
		f.proto, f.fingerprint, f.chipID, f.jedec = ProtoFull, printT1, 0x7238, jedecPY
	case "BK7252N":
		f.proto, f.fingerprint, f.chipID, f.jedec = ProtoFull, noPrint, 0x7252A, jedecGD4
	case "BK7231T":
		f.proto, f.fingerprint, f.bootVersion = ProtoBasicTuya, printT, "BK7231S_1.0.5"
	case "BK7231U":
		f.proto, f.fingerprint = ProtoBasicBeken, printU
	case "BK7252":
		f.proto, f.fingerprint = ProtoBasicBeken, print52
	case "BK7231Q":
		f.proto, f.fingerprint = ProtoBasicBeken, printQ
	default:
		panic(name)
	}
	return f
}

// fakeRig connects to f over an in-memory link inside a synctest bubble.
type fakeRig struct {
	f      *fakeROM
	dev    *Device
	events []flasher.Event
}

func (r *fakeRig) saw(sub string) bool {
	for _, e := range r.events {
		if strings.Contains(e.Message, sub) {
			return true
		}
	}
	return false
}

func withFake(t *testing.T, f *fakeROM, opts Options, body func(t *testing.T, r *fakeRig, err error)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		host, devEnd := transport.Pipe(transport.LinkOptions{})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { f.serve(ctx, devEnd); close(done) }()
		defer func() { cancel(); host.Close(); devEnd.Close(); <-done }()
		r := &fakeRig{f: f}
		opts.Events = func(e flasher.Event) { r.events = append(r.events, e) }
		if opts.LinkTimeout == 0 {
			opts.LinkTimeout = time.Second
		}
		dev, err := Connect(context.Background(), host, opts)
		r.dev = dev
		body(t, r, err)
	})
}

// TestChipRows identifies each supported chip from its scripted download
// mode: the row, its key, flash size, MAC and default rate.
func TestChipRows(t *testing.T) {
	tests := []struct {
		name, chip    string
		size          int
		rf            uint32
		family        flasher.Family
		model, key    string
		keyFrom       string // substring of EfuseKeyFrom; "" none
		sizeFrom      string
		baud          int
		notes         []string
		mutate        func(f *fakeROM)
		protoContains string
	}{
		{"BK7231N", "BK7231N", 2 << 20, 0x1D0000, flasher.BK7231N, "BK7231N", keyTuya, "eFuse registers", "JEDEC", 460800, nil, nil, "FULL"},
		{"BK7231M is a zero-key N", "BK7231M", 2 << 20, 0x1D0000, flasher.BK7231N, "BK7231M", keyZero, "eFuse registers", "JEDEC", 460800,
			[]string{"eFuse encryption key is zero", "bootloader not in tuyaflash's table"}, nil, "FULL"},
		{"BK7238", "BK7238", 2 << 20, 0x1E0000, flasher.BK7238, "BK7238", keyZero, "bl_t1_2.0.0", "JEDEC", 460800, nil, nil, "FULL"},
		{"BK7238 with Tuya's RF at 0x1E3000", "BK7238", 2 << 20, 0x1E3000, flasher.BK7238, "BK7238", keyZero, "bl_t1", "JEDEC", 460800,
			[]string{"at 0x1E3000, not at 0x1E0000 where OpenBeken looks"}, nil, "FULL"},
		{"BK7252N", "BK7252N", 4 << 20, 0x1E0000, flasher.BK7252N, "BK7252N", "", "", "JEDEC", 921600,
			[]string{"BK7231GUIFlashTool alone"}, nil, "FULL"},
		{"BK7231T", "BK7231T", 2 << 20, 0x1E0000, flasher.BK7231T, "BK7231T", "", "", "bootloader table", 921600, nil, nil, "BK7231S_1.0.5 (BASIC_TUYA)"},
		{"BK7231U", "BK7231U", 2 << 20, 0x1E0000, flasher.BK7231U, "BK7231U", keyZero, "bl_bk7231u", "bootloader table", 921600,
			[]string{"BK7231GUIFlashTool alone"}, nil, "BASIC_BEKEN"},
		{"BK7252 4 MiB", "BK7252", 4 << 20, 0x1E0000, flasher.BK7252, "BK7252", keyZero, "bl_bk7252", "repeat at 0x411000", 921600, nil, nil, "BASIC_BEKEN"},
		{"BK7252 2 MiB", "BK7252", 2 << 20, 0x1E0000, flasher.BK7252, "BK7252", keyZero, "bl_bk7252", "repeat at 0x211000", 921600, nil, nil, "BASIC_BEKEN"},
		{"BK7252 4 MiB with a blank app", "BK7252", 4 << 20, 0x1E0000, flasher.BK7252, "BK7252", keyZero, "bl_bk7252", "bootloader repeats at 0x400000 and 0x800000", 921600, nil,
			func(f *fakeROM) { copy(f.flash[0x11000:], allFF) }, "BASIC_BEKEN"},
		{"BK7252 4 MiB, RF where LibreTiny puts it", "BK7252", 4 << 20, 0x3FE000, flasher.BK7252, "BK7252", keyZero, "bl_bk7252", "repeat at 0x411000", 921600,
			[]string{"at 0x3FE000, not at 0x1E0000"}, nil, "BASIC_BEKEN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := profile(tc.chip, tc.size, tc.rf)
			if tc.mutate != nil {
				tc.mutate(f)
			}
			withFake(t, f, Options{}, func(t *testing.T, r *fakeRig, err error) {
				if err != nil {
					t.Fatal(err)
				}
				i := r.dev.Info()
				if i.Family != tc.family || i.Model != tc.model || i.EfuseKey != tc.key || i.FlashSize != tc.size || i.Baud != tc.baud {
					t.Errorf("family %s model %s key %q size 0x%X baud %d; want %s %s %q 0x%X %d", i.Family, i.Model, i.EfuseKey, i.FlashSize, i.Baud, tc.family, tc.model, tc.key, tc.size, tc.baud)
				}
				if !strings.Contains(i.EfuseKeyFrom, tc.keyFrom) || (tc.keyFrom == "") != (i.EfuseKeyFrom == "") {
					t.Errorf("key from %q, want %q", i.EfuseKeyFrom, tc.keyFrom)
				}
				if !strings.Contains(i.FlashSizeFrom, tc.sizeFrom) || !strings.Contains(i.Protocol, tc.protoContains) {
					t.Errorf("size from %q, protocol %q", i.FlashSizeFrom, i.Protocol)
				}
				if i.MAC != testMAC || !strings.Contains(i.MACFrom, strings.TrimPrefix(hexList([]uint32{tc.rf}), "0x")) {
					t.Errorf("MAC %s from %q, want %s at 0x%06X", i.MAC, i.MACFrom, testMAC, tc.rf)
				}
				for _, n := range tc.notes {
					if !r.saw(n) {
						t.Errorf("no event %q in %v", n, r.events)
					}
				}
				if tc.chip != "BK7231N" && tc.chip != "BK7231M" && r.f.count("ReadReg") > 2 {
					t.Errorf("%d register reads: only N/M have a readable key", r.f.count("ReadReg"))
				}
			})
		})
	}
}

// TestChipBackupWriteRestore runs backup, write and restore on each chip's
// scripted download mode: the backup equals the flash (the bootloader area
// read through the address wrap where the bootloader refuses it), a write
// lands byte-exact and leaves the rest alone, the bootloader of BASIC chips
// is never written, and the restore brings the backup back.
func TestChipBackupWriteRestore(t *testing.T) {
	for _, chip := range []string{"BK7231N", "BK7231M", "BK7238", "BK7252N", "BK7231T", "BK7231U", "BK7252"} {
		t.Run(chip, func(t *testing.T) {
			size := 2 << 20
			if chip == "BK7252" || chip == "BK7252N" {
				size = 4 << 20
			}
			row, _ := LookupChip(chip)
			f := profile(chip, size, row.RFOffsets[0])
			if f.proto == ProtoFull {
				f.sr = 0x4004 // protected, as Tuya firmware leaves it
			}
			withFake(t, f, Options{Baud: 921600}, func(t *testing.T, r *fakeRig, err error) {
				if err != nil {
					t.Fatal(err)
				}
				backupWriteRestore(t, r.dev, row, f.Flash)
			})
		})
	}
}

// backupWriteRestore is the session of TestChipBackupWriteRestore on a
// connected chip of row whose flash flash returns: the backup equals the
// flash, a write at 0x0 is refused exactly where the row says so, a write
// at 0x11000 lands byte-exact with the rest unchanged, and writing the
// backup back (from 0x11000 where the bootloader is kept) restores it.
func backupWriteRestore(t *testing.T, dev *Device, row Chip, flash func() []byte) {
	t.Helper()
	ctx := context.Background()
	var backup bytes.Buffer
	if err := dev.Read(ctx, 0, dev.FlashSize(), &backup, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(backup.Bytes(), flash()) {
		t.Fatal("backup differs from the flash")
	}
	_, err := dev.Write(ctx, 0, make([]byte, 0x2000), nil)
	if row.BootloaderWritable == errors.Is(err, flasher.ErrRefused) {
		t.Fatalf("write at 0x0: %v (bootloader writable: %v)", err, row.BootloaderWritable)
	}
	if !row.BootloaderWritable && !bytes.Equal(flash(), backup.Bytes()) {
		t.Fatal("a refused write changed the flash")
	}
	img := make([]byte, 0x23456)
	rand.New(rand.NewSource(7)).Read(img)
	res, err := dev.Write(ctx, 0x11000, img, nil)
	if err != nil || !res.Verified {
		t.Fatalf("write: %v %+v", err, res)
	}
	want := append([]byte(nil), backup.Bytes()...)
	if row.BootloaderWritable {
		copy(want, make([]byte, 0x2000))
	}
	copy(want[0x11000:], img)
	if !bytes.Equal(flash(), want) {
		t.Fatal("flash after the write is not the image with everything else unchanged")
	}
	from := uint32(0)
	if !row.BootloaderWritable {
		from = bootloaderEnd
	}
	if _, err := dev.Write(ctx, from, backup.Bytes()[from:], nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(flash(), backup.Bytes()) {
		t.Fatal("restore did not bring the backup back")
	}
}

// TestChipRefusals: identification stays safe — chips in no row, chips the
// table only names, and --chip that contradicts the chip are refused with a
// message that says what the chip is.
func TestChipRefusals(t *testing.T) {
	tests := []struct {
		name   string
		f      func() *fakeROM
		opts   Options
		is     error
		want   []string
		hint   string
		accept flasher.Family // non-empty: connects as this family
	}{
		{"BK7231Q bootloader", func() *fakeROM { return profile("BK7231Q", 2<<20, 0x1E0000) }, Options{}, flasher.ErrUnsupported, []string{"BK7231Q", "does not support it", "BK7238"}, "", ""},
		{"unknown chip id", func() *fakeROM {
			f := profile("BK7231N", 2<<20, 0x1D0000)
			f.fingerprint, f.chipID = noPrint, 0x7299
			return f
		}, Options{}, flasher.ErrUnsupported, []string{"chip id 0x7299", "in no row"}, "", ""},
		{"unknown chip id forced", func() *fakeROM {
			f := profile("BK7231N", 2<<20, 0x1D0000)
			f.chipID = 0x7299
			return f
		}, Options{Family: flasher.BK7231N}, nil, nil, "", flasher.BK7231N},
		{"BK7236 answers at 0x44010004", func() *fakeROM {
			f := profile("BK7231N", 2<<20, 0x1D0000)
			f.fingerprint, f.idReg, f.chipID = noPrint, regChipIDNew, 0x72360005
			return f
		}, Options{}, flasher.ErrUnsupported, []string{"BK7236/BK7258", "0x44010004"}, "", ""},
		{"unknown BASIC_BEKEN bootloader", func() *fakeROM {
			f := profile("BK7252", 4<<20, 0x1E0000)
			f.fingerprint = noPrint
			return f
		}, Options{}, flasher.ErrUnsupported, []string{"BK7231U or BK7252"}, "--chip bk7231u or --chip bk7252", ""},
		{"unknown BASIC_BEKEN bootloader named", func() *fakeROM {
			f := profile("BK7252", 4<<20, 0x1E0000)
			f.fingerprint = noPrint
			return f
		}, Options{Family: flasher.BK7252}, nil, nil, "", flasher.BK7252},
		{"--chip bk7231m on a Tuya-key N", func() *fakeROM { return profile("BK7231N", 2<<20, 0x1D0000) }, Options{Family: flasher.BK7231M}, flasher.ErrRefused, []string{"eFuse key is tuya"}, "", ""},
		{"--chip bk7231n on a BK7231M", func() *fakeROM { return profile("BK7231M", 2<<20, 0x1D0000) }, Options{Family: flasher.BK7231N}, nil, nil, "", flasher.BK7231N},
		{"--chip bk7231t on a BK7238", func() *fakeROM { return profile("BK7238", 2<<20, 0x1E0000) }, Options{Family: flasher.BK7231T}, flasher.ErrRefused, []string{"the chip is a BK7238"}, "", ""},
		{"--chip bk7252 on a BK7231U", func() *fakeROM { return profile("BK7231U", 2<<20, 0x1E0000) }, Options{Family: flasher.BK7252}, flasher.ErrRefused, []string{"the chip is a BK7231U"}, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			withFake(t, tc.f(), tc.opts, func(t *testing.T, r *fakeRig, err error) {
				if tc.accept != "" {
					if err != nil || r.dev.Info().Family != tc.accept {
						t.Fatalf("err = %v; want a %s", err, tc.accept)
					}
					return
				}
				if !errors.Is(err, tc.is) {
					t.Fatalf("err = %v; want %v", err, tc.is)
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if !strings.Contains(flasher.Hint(err), tc.hint) {
					t.Errorf("hint %q lacks %q", flasher.Hint(err), tc.hint)
				}
			})
		})
	}
}

// TestRetryRefusedInSession: a BASIC bootloader that ignores every write
// from some point of a session on (bk7231-protocol.md §4.3: "Retrying a
// failed write on T in the same session fails to retry everytime") still
// ends in a verified write: the retry runs in a new session.
func TestRetryRefusedInSession(t *testing.T) {
	for _, chip := range []string{"BK7231T", "BK7231U"} {
		t.Run(chip, func(t *testing.T) {
			f := profile(chip, 2<<20, 0x1E0000)
			f.refuseAfter = 3
			withFake(t, f, Options{Baud: 921600}, func(t *testing.T, r *fakeRig, err error) {
				if err != nil {
					t.Fatal(err)
				}
				before := f.Flash()
				img := make([]byte, 0x8000)
				rand.New(rand.NewSource(3)).Read(img)
				res, err := r.dev.Write(context.Background(), 0x40000, img, nil)
				if err != nil || !res.Verified {
					t.Fatalf("write: %v %+v", err, res)
				}
				copy(before[0x40000:], img)
				if !bytes.Equal(f.Flash(), before) {
					t.Fatal("flash is not the image")
				}
				if f.reboots == 0 || !r.saw("new download session") || r.dev.Info().Baud != 921600 {
					t.Errorf("reboots %d, baud %d, events %v", f.reboots, r.dev.Info().Baud, r.events)
				}
			})
		})
	}
}

// TestNegotiationFailsWhenEveryRateFails: a link on which no 4 KiB test
// read verifies, at any rate, is an error, not a connected chip at some
// rate.
func TestNegotiationFailsWhenEveryRateFails(t *testing.T) {
	f := profile("BK7231N", 2<<20, 0x1D0000)
	f.badReads = true
	withFake(t, f, Options{Baud: 921600}, func(t *testing.T, r *fakeRig, err error) {
		if err == nil || r.dev != nil {
			t.Fatalf("connected at %d baud over a link that verifies nothing", r.dev.Info().Baud)
		}
		if !strings.Contains(err.Error(), "no transfer rate works") || !errors.Is(err, flasher.ErrVerify) || flasher.Hint(err) == "" {
			t.Fatalf("err = %v (hint %q)", err, flasher.Hint(err))
		}
	})
}

// TestChipTable checks the table against the rules every row must follow
// (the sources agree on them): FULL chips count the CRC end and can be
// rewritten whole; bootloader chips exclude it, re-protect after a CRC,
// keep their bootloader and read it through the wrap; rows sharing a chip
// id differ by key.
func TestChipTable(t *testing.T) {
	seen := map[uint32]int{}
	for _, c := range Chips() {
		full := c.Proto == ProtoFull
		if c.Supported && (c.InclusiveCRC != full || c.ReprotectAfterCRC == full || c.BootloaderWritable != full || c.WrapReads == full) {
			t.Errorf("%s: protocol %v with inclusive CRC %v, re-protect %v, writable bootloader %v, wrapped reads %v", c.Model, c.Proto, c.InclusiveCRC, c.ReprotectAfterCRC, c.BootloaderWritable, c.WrapReads)
		}
		if c.Supported && (c.Family == "" || !c.Family.Beken() || len(c.RFOffsets) == 0 || c.DefaultBaud == 0 || c.Size == 0) {
			t.Errorf("%s: incomplete row %+v", c.Model, c)
		}
		if c.Size == SizeJEDEC && !full {
			t.Errorf("%s: JEDEC size without the FULL command set", c.Model)
		}
		for _, id := range c.ChipIDs {
			if seen[id]++; seen[id] > 1 && c.Key == "" {
				t.Errorf("%s: chip id 0x%X shared without a key to tell the rows apart", c.Model, id)
			}
		}
	}
	for _, b := range bootloaders {
		if _, ok := LookupChip(b.model); !ok {
			t.Errorf("bootloader %s names %s, which has no row", b.name, b.model)
		}
	}
}

// TestStepDownInfo: after a step down during a transfer, Info reports the
// rate the link runs at — lower when the chip followed, unchanged (and no
// note claiming otherwise) when it did not.
func TestStepDownInfo(t *testing.T) {
	for _, follow := range []bool{true, false} {
		t.Run(fmt.Sprintf("chip follows %v", follow), func(t *testing.T) {
			f := profile("BK7231N", 2<<20, 0x1D0000)
			withFake(t, f, Options{Baud: 921600}, func(t *testing.T, r *fakeRig, err error) {
				if err != nil {
					t.Fatal(err)
				}
				f.mu.Lock()
				f.fixedBaud = !follow
				f.mu.Unlock()
				err = r.dev.stepDown(context.Background())
				want := 460800
				if !follow {
					want = 921600
				}
				i := r.dev.Info()
				if i.Baud != want || r.dev.port.BaudRate() != want || (err == nil) != follow {
					t.Errorf("Info %d, port %d, err %v; want %d", i.Baud, r.dev.port.BaudRate(), err, want)
				}
				noted := strings.Contains(strings.Join(i.Notes, "\n"), "stepped down")
				if noted != follow {
					t.Errorf("notes %q", i.Notes)
				}
				var buf bytes.Buffer
				if err := r.dev.Read(context.Background(), 0x1D0000, 0x1000, &buf, nil); err != nil {
					t.Fatalf("read after the step: %v", err)
				}
			})
		})
	}
}

// TestSimChipsBackupWriteRestore runs TestChipBackupWriteRestore's session
// against every profile of the chip simulator, which is written
// independently of the client and enforces what the scripted ROM only
// replays: NOR rules, flash protection and the P25Q16HBK's status-register
// lock (BK7238), the CRC conventions, reads of the bootloader area through
// the address wrap, the BASIC bootloaders' re-protection after a CRC, and
// a BASIC chip that is dead after its next reset when its bootloader area
// changed. After the restore the chip is power-cycled and must link again.
// The scripted ROM stays for what the simulator cannot be: real bootloader
// fingerprints (the simulator's are its own, in no table) and 4 MiB FULL
// chips.
func TestSimChipsBackupWriteRestore(t *testing.T) {
	for _, chip := range bksim.Chips() {
		t.Run(chip.String(), func(t *testing.T) {
			opts := Options{Baud: 921600}
			if chip == bksim.BK7231U || chip == bksim.BK7252 {
				opts.Family = flasher.Family(chip.String())
			}
			synctest.Test(t, func(t *testing.T) {
				r, err := newRig(t, bksim.Config{Chip: chip, LockOnNoopSRWrite: true}, transport.LinkOptions{}, opts)
				defer r.stop()
				if err != nil {
					t.Fatal(err)
				}
				row, _ := ChipOf(r.dev.Info())
				if row.Model != chip.String() {
					t.Fatalf("identified as %s", row.Model)
				}
				backupWriteRestore(t, r.dev, row, r.sim.Flash)
				r.sim.PowerCycle()
				dev, err := Connect(context.Background(), r.host, opts)
				if err != nil {
					t.Fatalf("the chip does not link after a power cycle: %v", err)
				}
				if dev.Info().MAC != r.dev.Info().MAC {
					t.Errorf("MAC %s after the power cycle, %s before", dev.Info().MAC, r.dev.Info().MAC)
				}
			})
		})
	}
}
