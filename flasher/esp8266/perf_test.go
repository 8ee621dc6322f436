package esp8266

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	espsim "github.com/tuyaflash/tuyaflash/devicesim/esp8266"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/internal/perf"
	"github.com/tuyaflash/tuyaflash/transport"
)

// The simulator's flash timing (devicesim/esp8266 flash.go, Config.Timing):
// the busy times a row's limit counts. Kept here rather than imported: the
// simulator shares no code with the client.
const (
	simSectorErase = 45 * time.Millisecond
	simBlockErase  = 150 * time.Millisecond
	simPage        = 700 * time.Microsecond // per 256 bytes
	simMD5PerMiB   = 1500 * time.Millisecond
)

// simErase is how long the simulated flash takes to erase [addr, addr+n):
// 4 KiB sectors up to a 64 KiB boundary, blocks while 16 or more sectors
// remain, then sectors (the ROM's and the stubs' order).
func simErase(addr, n uint32) time.Duration {
	var t time.Duration
	first, count := addr/sectorSize, (n+sectorSize-1)/sectorSize
	for count > 0 {
		if first%16 == 0 && count >= 16 {
			t += simBlockErase
			first, count = first+16, count-16
			continue
		}
		t += simSectorErase
		first, count = first+1, count-1
	}
	return t
}

func simProgram(n int) time.Duration { return time.Duration((n+255)/256) * simPage }

func simMD5(n int) time.Duration { return time.Duration(int64(simMD5PerMiB) * int64(n) / (1 << 20)) }

// ownStub and ownLoader are tuyaflash's own stub and its loader as the CLI
// uploads them (their sizes set the upload times; the simulator models
// their behaviour, not their code).
var (
	ownStub   = sync.OnceValues(func() (*Stub, error) { return loadStubFile("../../stub/esp8266/stub.json") })
	ownLoader = sync.OnceValues(func() (*Stub, error) { return loadStubFile("../../stub/esp8266/loader.json") })
)

func loadStubFile(name string) (*Stub, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return LoadStub(f)
}

// perfImage is the 600 KB Tasmota-like image of the compressed-write rows.
var perfImage = sync.OnceValue(func() []byte { return tasmotaLike(600_000, 9) })

// perfImageZ is the image as a level-9 zlib stream, the payload of the
// compressed-write rows' limit (computed outside the measured rows).
var perfImageZ = sync.OnceValue(func() []byte { return zlib9(perfImage()) })

// zlib9 is b as a level-9 zlib stream (esptool's compression).
func zlib9(b []byte) []byte {
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, zlib.BestCompression)
	zw.Write(b)
	zw.Close()
	return z.Bytes()
}

// compressedLimit is the limit of a compressed write of the n-byte
// perfImage at baud: the level-9 stream on the wire; a stub that receives
// while the flash works overlaps erase and program with the transfer, and
// one that reads the written data back meanwhile the MD5 check too (the
// flash is busy with one of them at a time), so only what the chip's work
// takes beyond the wire time counts.
func compressedLimit(n, baud int) perf.Result {
	wire := int64(len(perfImageZ()))
	chip := simErase(0, uint32(n)) + simProgram(n) + simMD5(n)
	busy := max(0, chip-transport.WireTime(wire, baud))
	return perf.Result{Data: int64(n), Wire: wire, Busy: busy}
}

// espPerfCase is one ESP8266 command of the suite.
type espPerfCase struct {
	op        string
	flashSize int
	rom       bool // ROM loader only (no stub, 115200)
	// esptool runs the row as esptool does it: its stub's size and
	// behaviour (the simulator's StubEsptool model) and esptoolWrite.
	esptool bool
	run     func(t testing.TB, ctx context.Context, d *Device, sim *espsim.Device) perf.Result
}

// esptoolWrite is esptool's write_flash of img at 0 through its stub, as a
// model for the speed suite only (esptool cmds.py write_flash, loader.py
// flash_defl_begin/flash_defl_block, esptool v4.x/v5.x): the image padded
// to 4 bytes and compressed whole with zlib level 9, FLASH_DEFL_BEGIN
// (uncompressed size, blocks, FLASH_WRITE_SIZE 0x4000, offset), one
// FLASH_DEFL_DATA per 16 KiB of the stream — the stub acknowledges each
// before it inflates and writes it —, then a READ_REG of the chip-detect
// register that the stub answers only once the last block is in flash
// ("Stub only writes each block to flash after 'ack'ing the receive, so do
// a final dummy operation"), then SPI_FLASH_MD5 over the image to verify.
// Its connect (sync, chip detection, stub upload at 115200, CHANGE_BAUDRATE
// and a 50 ms pause, SPI_SET_PARAMS) is Connect's sequence with esptool's
// stub size; esptool's extra register reads at 115200 (MAC, eFuses, flash
// id: a few ms each) are left out, in esptool's favour.
func esptoolWrite(ctx context.Context, d *Device, img []byte) error {
	img = pad4(img)
	comp := zlib9(img)
	blocks := (len(comp) + stubBlockSize - 1) / stubBlockSize
	var hdr [16]byte
	words(hdr[:0], uint32(len(img)), uint32(blocks), stubBlockSize, 0)
	if _, _, err := d.l.check(opFlashDeflBegin, hdr[:], 0, 0, defaultTimeout); err != nil {
		return err
	}
	for seq := range blocks {
		blk := comp[seq*stubBlockSize : min((seq+1)*stubBlockSize, len(comp))]
		if _, err := d.dataBlock(opFlashDeflData, blk, seq, defaultTimeout, 1); err != nil {
			return err
		}
	}
	if _, err := d.l.readReg(regChipMagic); err != nil {
		return err
	}
	got, err := d.MD5(ctx, 0, uint32(len(img)))
	if err != nil {
		return err
	}
	if got != md5.Sum(img) {
		return fmt.Errorf("esptool model: MD5 mismatch")
	}
	return nil
}

// esptoolStub stands for esptool's ESP8266 stub: only its size matters
// here (esptool stub_flasher/2/esp8266.json: 11456 bytes of text, 920 of
// data); the simulator's StubEsptool model supplies its behaviour.
func esptoolStub() *Stub { return simStub() }

func espPerfCases() []espPerfCase {
	read := func(size int) espPerfCase {
		return espPerfCase{op: fmt.Sprintf("stub-read-%dMiB", size>>20), flashSize: size,
			run: func(t testing.TB, ctx context.Context, d *Device, sim *espsim.Device) perf.Result {
				h := sha256.New()
				if err := d.Read(ctx, 0, uint32(size), h, nil); err != nil {
					t.Fatal(err)
				}
				if want := sha256.Sum256(sim.Flash()); !bytes.Equal(h.Sum(nil), want[:]) {
					t.Fatal("the read differs from the simulated flash")
				}
				return perf.Result{Data: int64(size), Wire: int64(size)}
			}}
	}
	written := func(t testing.TB, sim *espsim.Device, img []byte) {
		if !bytes.Equal(sim.Flash()[:len(img)], img) {
			t.Fatal("the flash does not hold the image")
		}
	}
	return []espPerfCase{
		{op: "rom-write-600KB", flashSize: 1 << 20, rom: true,
			run: func(t testing.TB, ctx context.Context, d *Device, sim *espsim.Device) perf.Result {
				img := perfImage()
				if _, err := d.Write(ctx, 0, img, nil); err != nil {
					t.Fatal(err)
				}
				written(t, sim, img)
				n := len(img)
				// 1 KiB blocks padded with 0xFF, each programmed before its reply.
				blocks := (n + romBlockSize - 1) / romBlockSize
				return perf.Result{Data: int64(n), Wire: int64(n), Busy: simErase(0, uint32(n)) + simProgram(blocks*romBlockSize)}
			}},
		read(1 << 20),
		read(4 << 20),
		{op: "esptool-write-compressed-600KB", flashSize: 1 << 20, esptool: true,
			run: func(t testing.TB, ctx context.Context, d *Device, sim *espsim.Device) perf.Result {
				img := perfImage()
				if err := esptoolWrite(ctx, d, img); err != nil {
					t.Fatal(err)
				}
				written(t, sim, img)
				return compressedLimit(len(img), d.Info().Baud)
			}},
		{op: "write-compressed-600KB", flashSize: 1 << 20,
			run: func(t testing.TB, ctx context.Context, d *Device, sim *espsim.Device) perf.Result {
				img := perfImage()
				res, err := d.Write(ctx, 0, img, nil)
				if err != nil {
					t.Fatal(err)
				}
				if !res.Verified {
					t.Fatal("not verified")
				}
				written(t, sim, img)
				return compressedLimit(len(img), d.Info().Baud)
			}},
	}
}

// espPerfCI are the rows CI runs (and compares with testdata/perf.txt).
var espPerfCI = map[string]bool{
	"esp8266/stub-read-1MiB/ch340/921600":         true,
	"esp8266/write-compressed-600KB/ch340/460800": true,
	"esp8266/rom-write-600KB/ftdi/115200":         true,
}

// TestPerf is the ESP8266 part of the speed suite (internal/perf): whole
// commands, link-up and stub upload included, against the simulator with
// flash timing on, over paced links with USB adapter models, in fake time.
// By default it runs the CI rows and compares them with testdata/perf.txt;
// -perf.all runs every row (go test -v -run TestPerf -perf.all
// ./flasher/esp8266).
func TestPerf(t *testing.T) {
	perf.Suite(t, "testdata/perf.txt", espPerfRows())
}

// BenchmarkPerf runs the same rows as benchmarks, in real time (the CI
// rows unless -bench names others or -perf.all is given; see perf.Bench):
//
//	go test -run '^$' -bench 'Perf/esp8266/stub-read-1MiB/ch340/921600' -benchtime 1x ./flasher/esp8266
func BenchmarkPerf(b *testing.B) {
	perf.Bench(b, espPerfRows())
}

// espPerfRows are the ESP8266 rows of the speed suite.
func espPerfRows() []perf.Row {
	perfImageZ()
	var rows []perf.Row
	for _, c := range espPerfCases() {
		for _, a := range perf.Adapters {
			for _, baud := range perf.Rates {
				if c.rom && baud != romBaud {
					continue // the ROM loader stays at 115200
				}
				name := fmt.Sprintf("esp8266/%s/%s/%d", c.op, a, baud)
				rows = append(rows, perf.Row{Name: name, CI: espPerfCI[name], Run: func(t testing.TB) perf.Result {
					return espPerfRun(t, c, a, baud)
				}})
			}
		}
	}
	return rows
}

// espPerfRun runs one command against a simulated module whose user holds
// GPIO0 low and power-cycles it the moment tuyaflash asks (the user's own
// delay is not counted): the wall time runs from the start of the command
// to its end, sync, identification, stub upload and baud change included.
func espPerfRun(t testing.TB, c espPerfCase, a perf.Adapter, baud int) perf.Result {
	flash := espsim.DefaultFlash(espsim.ESP8266, c.flashSize)
	cfg := espsim.Config{Chip: espsim.ESP8266, Flash: flash, Timing: true}
	if c.esptool {
		cfg.Stub = espsim.StubEsptool
	}
	sim, err := espsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	host, stop, err := a.Serve(romBaud, func(ctx context.Context, dev *transport.PipePort) { sim.Serve(ctx, dev) })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ctx := context.Background()
	opts := Options{SyncWindow: 5 * time.Second, Events: func(e flasher.Event) {
		if e.Kind == flasher.Action {
			sim.PowerCycle(true)
		}
	}}
	if !c.rom {
		s, err := ownStub()
		if err != nil {
			t.Fatal(err)
		}
		ld, err := ownLoader()
		if err != nil {
			t.Fatal(err)
		}
		opts.Stub, opts.Loader, opts.Baud = s, ld, baud
		if c.esptool {
			opts.Stub, opts.Loader = esptoolStub(), nil
		}
	}
	cpu := perf.CPUTime() // the command's, not the setup's
	start := time.Now()
	d, err := Connect(ctx, host, opts)
	if err != nil {
		t.Fatal(err)
	}
	linkUp := time.Since(start)
	if got := d.Info().Baud; got != baud {
		t.Fatalf("running at %d baud, want %d", got, baud)
	}
	res := c.run(t, ctx, d, sim)
	res.Wall = time.Since(start)
	res.CPU = perf.CPUTime() - cpu
	res.LinkUp = linkUp
	res.Baud = baud
	return res
}
