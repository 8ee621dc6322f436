package bk7231

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	bksim "github.com/tuyaflash/tuyaflash/devicesim/bk7231"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/internal/perf"
	"github.com/tuyaflash/tuyaflash/transport"
)

// The simulator's flash timing (devicesim/bk7231 timing.go, Config.Timing):
// the busy times a row's limit counts. Kept here rather than imported: the
// simulator shares no code with the client.
const (
	simSectorErase = 45 * time.Millisecond
	simBlockErase  = 150 * time.Millisecond
	simPage        = 400 * time.Microsecond // per 256 bytes
	simCRCRate     = 400_000                // bytes/s (bk7231tools' assumption, reference §4.2)
)

func simCRC(n int64) time.Duration { return time.Duration(n * int64(time.Second) / simCRCRate) }

// simWriteBusy is the least flash time a write of [addr, addr+n) needs on
// the simulated chip: 64 KiB erases where aligned, 4 KiB ones elsewhere,
// every page programmed, one CRC over the range.
func simWriteBusy(addr, n uint32) time.Duration {
	var t time.Duration
	end := addr + n
	for a := addr &^ (sectorSize - 1); a < end; {
		if a%blockSize == 0 && a+blockSize <= end {
			t += simBlockErase
			a += blockSize
			continue
		}
		t += simSectorErase
		a += sectorSize
	}
	pages := (int64(end-addr) + 255) / 256
	return t + time.Duration(pages)*simPage + simCRC(int64(n))
}

// bkPerfCase is one BK7231 command of the suite.
type bkPerfCase struct {
	chip  bksim.Chip
	op    string
	flash func() []byte // initial flash; nil: the simulator's default
	// run performs the command on a connected device and fills in Data,
	// Wire, Busy and LimitWithLinkUp; it checks the outcome.
	run func(t testing.TB, ctx context.Context, d *Device, sim *bksim.Device) perf.Result
}

// appImage is a 1 MiB OpenBeken-sized application of incompressible bytes.
func appImage() []byte {
	b := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(13, 1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

const appAddr = 0x11000

func bkPerfCases() []bkPerfCase {
	backup := func(chip bksim.Chip) bkPerfCase {
		return bkPerfCase{chip: chip, op: "backup-2MiB", run: func(t testing.TB, ctx context.Context, d *Device, sim *bksim.Device) perf.Result {
			size := d.FlashSize()
			h := sha256.New()
			if err := d.Read(ctx, 0, size, h, nil); err != nil {
				t.Fatal(err)
			}
			if want := sha256.Sum256(sim.Flash()); !bytes.Equal(h.Sum(nil), want[:]) {
				t.Fatal("backup differs from the simulated flash")
			}
			return perf.Result{Data: int64(size), Wire: int64(size), Busy: simCRC(int64(size))}
		}}
	}
	write := func(chip bksim.Chip, op string, addr uint32, data []byte, identical bool) bkPerfCase {
		c := bkPerfCase{chip: chip, op: op, run: func(t testing.TB, ctx context.Context, d *Device, sim *bksim.Device) perf.Result {
			res, err := d.Write(ctx, addr, data, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := sim.Flash()[addr : addr+uint32(len(data))]; !res.Verified || !bytes.Equal(got, data) {
				t.Fatal("the flash does not hold the image")
			}
			n := int64(len(data))
			if identical {
				if res.Skipped != len(data) || res.Erased != 0 {
					t.Fatalf("identical write moved data: %+v", res)
				}
				return perf.Result{Data: n, Busy: simCRC(n), LimitWithLinkUp: true}
			}
			return perf.Result{Data: n, Wire: n, Busy: simWriteBusy(addr, uint32(n))}
		}}
		if identical {
			c.flash = func() []byte {
				f := bksim.DefaultFlash(chip, bksim.DefaultMAC)
				copy(f[addr:], data)
				return f
			}
		}
		return c
	}
	stock := func(chip bksim.Chip) []byte { return bksim.DefaultFlash(chip, bksim.DefaultMAC) }
	app := appImage()
	return []bkPerfCase{
		backup(bksim.BK7231N),
		backup(bksim.BK7231T),
		write(bksim.BK7231N, "write-1MiB", appAddr, app, false),
		write(bksim.BK7231N, "rewrite-identical-1MiB", appAddr, app, true),
		write(bksim.BK7231N, "restore-identical-2MiB", 0, stock(bksim.BK7231N), true),
		write(bksim.BK7231T, "restore-identical-2MiB", bootloaderEnd, stock(bksim.BK7231T)[bootloaderEnd:], true),
	}
}

// perfCI are the rows CI runs (and compares with testdata/perf.txt).
var perfCI = map[string]bool{
	"bk7231n/backup-2MiB/ch340/921600":             true,
	"bk7231t/backup-2MiB/ftdi/921600":              true,
	"bk7231n/backup-2MiB/ch340/max":                true,
	"bk7231n/write-1MiB/ftdi-lowlatency/921600":    true,
	"bk7231t/restore-identical-2MiB/ftdi/921600":   true,
	"bk7231n/rewrite-identical-1MiB/ch340/2000000": true,
}

// TestPerf is the BK7231 part of the speed suite (internal/perf): whole
// commands, link-up included, against the simulator with flash timing on,
// over paced links with USB adapter models, in fake time. By default it
// runs the CI rows and compares them with testdata/perf.txt; -perf.all
// runs every row (go test -v -run TestPerf -perf.all ./flasher/bk7231).
func TestPerf(t *testing.T) {
	perf.Suite(t, "testdata/perf.txt", bkPerfRows())
}

// BenchmarkPerf runs the same rows as benchmarks, in real time (the CI
// rows unless -bench names others or -perf.all is given; see perf.Bench):
//
//	go test -run '^$' -bench 'Perf/bk7231n/backup-2MiB/ch340/921600' -benchtime 1x ./flasher/bk7231
func BenchmarkPerf(b *testing.B) {
	perf.Bench(b, bkPerfRows())
}

// bkPerfRows are the BK7231 rows of the speed suite.
func bkPerfRows() []perf.Row {
	var rows []perf.Row
	for _, c := range bkPerfCases() {
		for _, a := range perf.Adapters {
			for _, baud := range append(perf.Rates, BaudMax) {
				rate := fmt.Sprint(baud)
				if baud == BaudMax {
					rate = "max"
				}
				name := fmt.Sprintf("%s/%s/%s/%s", chipName(c.chip), c.op, a, rate)
				rows = append(rows, perf.Row{Name: name, CI: perfCI[name], Run: func(t testing.TB) perf.Result {
					return bkPerfRun(t, c, a, baud)
				}})
			}
		}
	}
	return rows
}

func chipName(c bksim.Chip) string {
	if c == bksim.BK7231T {
		return "bk7231t"
	}
	return "bk7231n"
}

// bkPerfRun runs one command against a simulated chip that runs its
// application: the wall time starts when the command starts and ends when
// it returns; the simulated user power-cycles the module the moment
// tuyaflash asks (the user's own delay is not counted, what tuyaflash does
// before it asks is).
func bkPerfRun(t testing.TB, c bkPerfCase, a perf.Adapter, baud int) perf.Result {
	cfg := bksim.Config{Chip: c.chip, Timing: true}
	if c.flash != nil {
		cfg.Flash = c.flash()
	}
	sim, err := bksim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	host, stop, err := a.Serve(LinkBaud, func(ctx context.Context, dev *transport.PipePort) { sim.Serve(ctx, dev) })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ctx := context.Background()
	// The user power-cycles the module the moment tuyaflash asks.
	events := func(e flasher.Event) {
		if e.Kind == flasher.Action {
			sim.PowerCycle()
		}
	}
	cpu := perf.CPUTime() // the command's, not the setup's
	start := time.Now()
	d, err := Connect(ctx, host, Options{Baud: baud, LinkTimeout: 5 * time.Second, Events: events})
	if err != nil {
		t.Fatal(err)
	}
	linkUp := time.Since(start)
	got := d.Info().Baud
	if got != baud && baud != BaudMax {
		t.Fatalf("running at %d baud, want %d", got, baud)
	}
	res := c.run(t, ctx, d, sim)
	res.Wall = time.Since(start)
	res.CPU = perf.CPUTime() - cpu
	res.LinkUp = linkUp
	res.Baud = got
	return res
}
