package bk7231

import (
	"bytes"
	"context"
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

// faultRun is one write over a simulated link with faults, as the bench
// user sees it: what the flash holds afterwards and how many commands the
// chip executed.
type faultRun struct {
	err       error
	verified  bool
	before    []byte
	after     []byte
	commands  int // commands the chip executed during the write
	connectIn int64
	retries   int
	sessions  int // new download sessions the write started
}

// faultSpan is where a fault run writes, above the BK7231T bootloader.
type faultSpan struct{ addr, size uint32 }

var (
	// unaligned crosses two whole 64 KiB blocks with a partial sector at
	// both ends (read-modify-write).
	unaligned = faultSpan{0x13F800, 0x21000}
	// aligned is one whole block and a partial one, no read-modify-write:
	// the chip's replies are then those of the write path alone.
	aligned = faultSpan{0x140000, 0x16000}
)

func faultImage(seed int64, n uint32) []byte {
	img := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(img)
	return img
}

// defaultFlash caches the simulator's default flash per chip: building it
// (CRC16 framing of a synthetic app) costs more than a fault run.
var defaultFlash = map[bksim.Chip][]byte{}

func simFlash(chip bksim.Chip) []byte {
	if defaultFlash[chip] == nil {
		defaultFlash[chip] = bksim.DefaultFlash(chip, bksim.DefaultMAC)
	}
	return defaultFlash[chip]
}

// writeWithFaults connects to a simulated chip whose faults start after
// f.FaultAfter bytes from the host, and writes an image at sp. An N starts
// write-protected and locks its status register for good on a needless
// write (§7.3): a status-register write resent blindly after a lost reply
// would fail the run.
func writeWithFaults(t *testing.T, chip bksim.Chip, f bksim.Faults, sp faultSpan, seed int64) faultRun {
	t.Helper()
	var run faultRun
	opts := Options{Baud: 921600}
	if chip == bksim.BK7231U || chip == bksim.BK7252 {
		// The simulator's bootloaders are in no table: a BASIC_BEKEN
		// chip is told U from BK7252 by --chip only.
		opts.Family = flasher.Family(chip.String())
	}
	synctest.Test(t, func(t *testing.T) {
		r, err := newRig(t, bksim.Config{Chip: chip, Flash: simFlash(chip), Faults: f, Seed: seed, LockOnNoopSRWrite: true}, transport.LinkOptions{}, opts)
		defer r.stop()
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		st := r.sim.Stats()
		run.connectIn = st.BytesIn
		run.before = r.sim.Flash()
		res, err := r.dev.Write(context.Background(), sp.addr, faultImage(seed, sp.size), nil)
		run.err, run.verified, run.retries = err, res.Verified, res.Retries
		run.after = r.sim.Flash()
		for _, e := range r.events {
			if strings.Contains(e.Message, "new download session") {
				run.sessions++
			}
		}
		for name, n := range r.sim.Stats().Commands {
			run.commands += n - st.Commands[name]
		}
	})
	return run
}

// TestWriteSurvivesFaults forces the write path's retries — lost bytes on
// their way to the chip, lost or garbled bytes of its replies — over many
// seeds, on every simulated Beken chip (T and N with each fault; the
// others with the faults their protocol makes hardest: the BASIC_BEKEN
// bootloaders re-protect after every CRC, the FULL chips answer a lost
// status-register write with a locked part). Every run must end in a verified write whose flash
// holds the image with every byte outside it unchanged, and the faults
// must actually have hit the write (more commands than a clean run).
func TestWriteSurvivesFaults(t *testing.T) {
	seeds := 50
	if testing.Short() {
		seeds = 5
	}
	cases := []struct {
		name string
		chip bksim.Chip
		f    bksim.Faults
		sp   faultSpan
	}{
		{"T host bytes lost", bksim.BK7231T, bksim.Faults{RxDropRate: 2e-5}, unaligned},
		{"N host bytes lost", bksim.BK7231N, bksim.Faults{RxDropRate: 2e-5}, unaligned},
		{"T chip bytes lost", bksim.BK7231T, bksim.Faults{DropRate: 1e-3}, aligned},
		{"N chip bytes lost", bksim.BK7231N, bksim.Faults{DropRate: 1e-3}, aligned},
		{"T chip bytes garbled", bksim.BK7231T, bksim.Faults{CorruptRate: 1e-3}, aligned},
		{"N chip bytes garbled", bksim.BK7231N, bksim.Faults{CorruptRate: 1e-3}, aligned},
		{"M host bytes lost", bksim.BK7231M, bksim.Faults{RxDropRate: 2e-5}, unaligned},
		{"BK7238 host bytes lost", bksim.BK7238, bksim.Faults{RxDropRate: 2e-5}, unaligned},
		{"BK7238 chip bytes garbled", bksim.BK7238, bksim.Faults{CorruptRate: 1e-3}, aligned},
		{"U host bytes lost", bksim.BK7231U, bksim.Faults{RxDropRate: 2e-5}, unaligned},
		{"U chip bytes lost", bksim.BK7231U, bksim.Faults{DropRate: 1e-3}, aligned},
		{"BK7252 host bytes lost", bksim.BK7252, bksim.Faults{RxDropRate: 2e-5}, unaligned},
		{"BK7252 chip bytes garbled", bksim.BK7252, bksim.Faults{CorruptRate: 1e-3}, aligned},
		{"BK7252N chip bytes lost", bksim.BK7252N, bksim.Faults{DropRate: 1e-3}, aligned},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// A clean run: how many bytes link-up takes (faults start
			// after them) and how many commands a write without faults
			// needs.
			clean := writeWithFaults(t, tc.chip, bksim.Faults{}, tc.sp, 0)
			if clean.err != nil {
				t.Fatal(clean.err)
			}
			forced, retries, sessions := 0, 0, 0
			for seed := int64(1); seed <= int64(seeds); seed++ {
				f := tc.f
				f.FaultAfter = clean.connectIn
				run := writeWithFaults(t, tc.chip, f, tc.sp, seed)
				if run.err != nil || !run.verified {
					t.Errorf("seed %d: write failed: %v (verified %v)", seed, run.err, run.verified)
					continue
				}
				want := append([]byte(nil), run.before...)
				copy(want[tc.sp.addr:], faultImage(seed, tc.sp.size))
				if !bytes.Equal(run.after, want) {
					t.Errorf("seed %d: flash is not the image with the rest unchanged (%s)", seed, firstDiff(run.after, want))
				}
				if run.commands > clean.commands {
					forced++
				}
				retries += run.retries
				sessions += run.sessions
			}
			t.Logf("%d of %d runs needed retries (%d sectors rewritten, %d new sessions); a clean write takes %d commands", forced, seeds, retries, sessions, clean.commands)
			if forced < seeds/4 {
				t.Errorf("only %d of %d runs hit a fault: the test does not force the retry paths", forced, seeds)
			}
		})
	}
}

func firstDiff(a, b []byte) string {
	for i := range a {
		if a[i] != b[i] {
			return fmt.Sprintf("first difference at 0x%06X", i)
		}
	}
	return "lengths differ"
}

// TestWriteFailsNamingTheCommand: a link that loses everything the chip
// says once the write has started ends the write with a typed error that
// names the command, the address and what to do — within bounded time, not
// by hanging.
func TestWriteFailsNamingTheCommand(t *testing.T) {
	clean := writeWithFaults(t, bksim.BK7231N, bksim.Faults{}, aligned, 0)
	synctest.Test(t, func(t *testing.T) {
		r, err := newRig(t, bksim.Config{Chip: bksim.BK7231N, Faults: bksim.Faults{DropRate: 1, FaultAfter: clean.connectIn}}, transport.LinkOptions{}, Options{Baud: 921600, LinkTimeout: 2 * time.Second})
		defer r.stop()
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = r.dev.Write(context.Background(), 0x100000, make([]byte, 0x1000), nil)
		if err == nil {
			t.Fatal("write over a dead link succeeded")
		}
		var oe *flasher.OpError
		if !errors.As(err, &oe) || oe.Op == "" || flasher.Hint(err) == "" || !errors.Is(err, flasher.ErrNoLink) {
			t.Fatalf("err = %v, hint %q", err, flasher.Hint(err))
		}
		t.Logf("%v\nhint: %s", err, flasher.Hint(err))
		if el := time.Since(start); el > time.Minute {
			t.Errorf("gave up after %v", el)
		}
	})
}

// TestWriteCommandFaults hits each command of the write path, at several
// points of a write, with each kind of fault: the command lost on its way
// to the chip, its reply lost, its reply garbled. Every write must end
// verified with the flash holding the image and nothing else changed, and
// a status-register write whose reply was lost must not be sent again
// blindly (the flash's status register locks on a needless write, §7.3).
func TestWriteCommandFaults(t *testing.T) {
	paths := []struct {
		chip string
		cmds []string
	}{
		{"BK7231N", []string{"ReadSR", "WriteSR", "FlashErase", "FlashWrite4K", "CheckCRC"}},
		{"BK7231T", []string{"FlashErase", "FlashWrite4K", "CheckCRC", "LinkCheck"}},
		{"BK7231U", []string{"FlashErase", "FlashWrite4K", "CheckCRC", "LinkCheck"}},
	}
	for _, path := range paths {
		for _, cmd := range path.cmds {
			for _, kind := range []string{"lost", "drop", "garble"} {
				for _, skip := range []int{0, 2, 5} {
					if strings.HasSuffix(cmd, "SR") && skip > 0 {
						continue // once per write
					}
					t.Run(fmt.Sprintf("%s/%s/%s/after %d", path.chip, cmd, kind, skip), func(t *testing.T) {
						row, _ := LookupChip(path.chip)
						f := profile(path.chip, 2<<20, row.RFOffsets[0])
						if f.proto == ProtoFull {
							f.sr, f.srLock = 0x4004, true
						}
						withFake(t, f, Options{Baud: 921600}, func(t *testing.T, r *fakeRig, err error) {
							if err != nil {
								t.Fatal(err)
							}
							want := f.Flash()
							img := faultImage(int64(skip), 0x16000)
							copy(want[0x140000:], img)
							f.arm(cmd, kind, skip)
							res, err := r.dev.Write(context.Background(), 0x140000, img, nil)
							if err != nil || !res.Verified {
								t.Fatalf("write: %v %+v", err, res)
							}
							if !f.fired() {
								t.Fatal("the fault was never applied")
							}
							if f.srDead {
								t.Fatal("status register locked: a write of it was repeated")
							}
							if !bytes.Equal(f.Flash(), want) {
								t.Fatalf("flash is not the image with the rest unchanged (%s)", firstDiff(f.Flash(), want))
							}
						})
					})
				}
			}
		}
	}
}
