package esp8266

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

	espsim "github.com/tuyaflash/tuyaflash/devicesim/esp8266"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/transport"
)

// simLink runs the simulator on one end of a paced in-memory link and
// returns the host end. It must be called inside a synctest bubble; the
// returned stop function ends the simulator.
func simLink(t *testing.T, cfg espsim.Config) (*espsim.Device, *transport.PipePort, func()) {
	t.Helper()
	return simLinkWith(t, cfg, transport.LinkOptions{Baud: 115200, Paced: true})
}

// simLinkWith is simLink over a link with these options.
func simLinkWith(t *testing.T, cfg espsim.Config, link transport.LinkOptions) (*espsim.Device, *transport.PipePort, func()) {
	t.Helper()
	dev, err := espsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	host, chip := transport.Pipe(link)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dev.Serve(ctx, chip) }()
	return dev, host, func() {
		cancel()
		host.Close()
		chip.Close()
		if err := <-done; err != nil && !errors.Is(err, transport.ErrClosed) {
			t.Errorf("simulator: %v", err)
		}
	}
}

// simStub is an arbitrary upload: the simulator runs the stub protocol
// whatever bytes arrive, as long as MEM_END names an entry point.
func simStub() *Stub {
	text := make([]byte, 11456) // the size of esptool's stub_flasher/2 text
	for i := range text {
		text[i] = byte(i * 31)
	}
	return &Stub{Text: text, TextStart: 0x4010C500, Entry: 0x4010C504, Data: make([]byte, 920), DataStart: 0x3FFFAE6C}
}

// tasmotaLike returns n bytes that deflate about as well as a Tasmota
// build: zlib level 9 leaves 71 % of these, 71 % of a public
// tasmota-lite.bin, and 67–69 % of the images in reference §13 (597 664 →
// 398 357, 427 120 → 292 534).
func tasmotaLike(n int, seed int64) []byte {
	rng := rand.New(rand.NewSource(seed))
	words := []string{"mqtt", "Power", "Tasmota", "WiFi", "0x4020", "http", "status", "GPIO", "relay", "\x00\x00\x00\x00", "timer", "{\"", "\":"}
	var b bytes.Buffer
	for b.Len() < n {
		if rng.Intn(5) < 2 {
			b.WriteString(words[rng.Intn(len(words))])
		} else {
			for range 2 + rng.Intn(4) {
				b.WriteByte(byte(rng.Intn(256)))
			}
		}
	}
	return b.Bytes()[:n]
}

func TestSimDetect(t *testing.T) {
	tests := []struct {
		name    string
		cfg     espsim.Config
		family  flasher.Family
		mac     string
		flashID string
		size    int
		crystal int
	}{
		{"ESP8266 1 MiB", espsim.Config{Chip: espsim.ESP8266}, flasher.ESP8266, "18:FE:34:5A:C3:E1", "C84014", 1 << 20, 26},
		{"ESP8285", espsim.Config{Chip: espsim.ESP8285}, flasher.ESP8285, "DC:4F:22:6B:21:9E", "C84014", 1 << 20, 26},
		{"ESP8266 4 MiB, 40 MHz", espsim.Config{Chip: espsim.ESP8266, Flash: make([]byte, 4<<20), Crystal: 40, MAC: [6]byte{0xAC, 0xD0, 0x74, 1, 2, 3}}, flasher.ESP8266, "AC:D0:74:01:02:03", "C84016", 4 << 20, 40},
		{"ESP8266 Winbond 2 MiB", espsim.Config{Chip: espsim.ESP8266, Flash: make([]byte, 2<<20), FlashID: 0x1540EF}, flasher.ESP8266, "18:FE:34:5A:C3:E1", "EF4015", 2 << 20, 26},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				_, host, stop := simLink(t, tc.cfg)
				defer stop()
				d, err := Connect(context.Background(), host, Options{})
				if err != nil {
					t.Fatal(err)
				}
				i := d.Info()
				if i.Family != tc.family || i.MAC.String() != tc.mac || i.FlashIDString() != tc.flashID || i.FlashSize != tc.size || i.CrystalMHz != tc.crystal {
					t.Errorf("info %+v", i)
				}
				if len(i.Notes) != 0 {
					t.Errorf("notes %q", i.Notes)
				}
			})
		})
	}
}

// TestSimROMWriteThenStubRead writes in ROM mode, then connects again with
// a stub and reads the image back.
func TestSimROMWriteThenStubRead(t *testing.T) {
	for _, chip := range []espsim.Chip{espsim.ESP8266, espsim.ESP8285} {
		t.Run(chip.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dev, host, stop := simLink(t, espsim.Config{Chip: chip})
				defer stop()
				ctx := context.Background()
				d, err := Connect(ctx, host, Options{})
				if err != nil {
					t.Fatal(err)
				}
				img := tasmotaLike(100_000, 1)
				res, err := d.Write(ctx, 0, img, nil)
				if err != nil {
					t.Fatal(err)
				}
				if res.Verified || res.VerifyMethod != "ROM block checksum only" {
					t.Errorf("ROM write claims verification: %+v", res)
				}
				if !bytes.Equal(dev.Flash()[:len(img)], img) {
					t.Fatal("simulator flash differs after the ROM write")
				}
				// A new session on the same chip (still in the ROM loader).
				d, err = Connect(ctx, host, Options{Stub: simStub()})
				if err != nil {
					t.Fatal(err)
				}
				if d.Info().Protocol != "stub" {
					t.Fatalf("protocol %q", d.Info().Protocol)
				}
				var out bytes.Buffer
				if err := d.Read(ctx, 0, uint32(len(img)), &out, nil); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(out.Bytes(), img) {
					t.Fatal("read back differs")
				}
				if err := d.Verify(ctx, 0, img); err != nil {
					t.Errorf("Verify: %v", err)
				}
				// Verify notices a difference.
				other := bytes.Clone(img)
				other[5000] ^= 0xFF
				if err := d.Verify(ctx, 0, other); !errors.Is(err, flasher.ErrVerify) {
					t.Errorf("Verify of different data: %v", err)
				}
			})
		})
	}
}

func TestSimCompressedWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dev, host, stop := simLink(t, espsim.Config{Chip: espsim.ESP8266, Flash: make([]byte, 2<<20)})
		defer stop()
		ctx := context.Background()
		d, err := Connect(ctx, host, Options{Stub: simStub()})
		if err != nil {
			t.Fatal(err)
		}
		img := tasmotaLike(600_000, 2)
		start := time.Now()
		res, err := d.Write(ctx, 0, img, nil)
		if err != nil {
			t.Fatal(err)
		}
		el := time.Since(start)
		if !res.Verified || res.VerifyMethod != "MD5 on chip" {
			t.Errorf("%+v", res)
		}
		if !bytes.Equal(dev.Flash()[:len(img)], img) {
			t.Fatal("flash differs")
		}
		// Compression must beat the wire: 600 000 bytes take 52 s raw at
		// 115200 baud.
		if raw := transport.WireTime(int64(len(img)), 115200); el >= raw {
			t.Errorf("compressed write took %v, raw wire time %v", el, raw)
		}
		s := dev.Stats()
		if s.Commands["FLASH_DEFL_DATA"] == 0 || s.Commands["FLASH_DATA"] != 0 {
			t.Errorf("commands %v", s.Commands)
		}
		// The uncompressed stub path gives the same flash.
		img2 := tasmotaLike(40_000, 3)
		if res, err := d.WriteUncompressed(ctx, 0x100000, img2, nil); err != nil || !res.Verified {
			t.Fatalf("%+v %v", res, err)
		}
		if !bytes.Equal(dev.Flash()[0x100000:0x100000+len(img2)], img2) {
			t.Fatal("flash differs after the uncompressed write")
		}
		if err := d.EraseRegion(ctx, 0x100000, 0x2000); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(dev.Flash()[0x100000:0x102000], bytes.Repeat([]byte{0xFF}, 0x2000)) {
			t.Error("region not erased")
		}
	})
}

// TestSimCorruptSectorCaught: a stuck flash bit passes the stub's write but
// the MD5 check catches it.
func TestSimCorruptSectorCaught(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, host, stop := simLink(t, espsim.Config{Chip: espsim.ESP8266, Faults: espsim.Faults{CorruptFlashWriteAt: 0x12345}})
		defer stop()
		ctx := context.Background()
		d, err := Connect(ctx, host, Options{Stub: simStub()})
		if err != nil {
			t.Fatal(err)
		}
		res, err := d.Write(ctx, 0x10000, tasmotaLike(0x10000, 4), nil)
		var ce *flasher.ChecksumError
		if !errors.Is(err, flasher.ErrVerify) || !errors.As(err, &ce) || res.Verified {
			t.Fatalf("err = %v, result %+v", err, res)
		}
		if ce.Addr != 0x10000 || ce.Len != 0x10000 || flasher.Hint(err) == "" {
			t.Errorf("%+v, hint %q", ce, flasher.Hint(err))
		}
	})
}

// TestSimEraseWorkaroundMatters writes the same data in ROM mode with and
// without esptool's erase-size workaround: without it the ROM wipes
// sectors behind the image.
func TestSimEraseWorkaroundMatters(t *testing.T) {
	tests := []struct {
		name       string
		addr, size uint32
		wiped      uint32 // first byte the buggy erase destroys
	}{
		{"inside one 64 KiB block", 0x8000, 0x4000, 0xC000},
		{"across a block boundary", 0x8000, 0x10000, 0x18000},
	}
	for _, tc := range tests {
		for _, workaround := range []bool{true, false} {
			name := tc.name + "/without workaround"
			if workaround {
				name = tc.name + "/with workaround"
			}
			t.Run(name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					flash := bytes.Repeat([]byte{0xA5}, 1<<20) // data everywhere
					dev, host, stop := simLink(t, espsim.Config{Chip: espsim.ESP8266, Flash: flash})
					defer stop()
					ctx := context.Background()
					d, err := Connect(ctx, host, Options{})
					if err != nil {
						t.Fatal(err)
					}
					if !workaround {
						d.eraseSize = func(_, size uint32) uint32 { return size }
					}
					img := tasmotaLike(int(tc.size), 5)
					_, err = d.Write(ctx, tc.addr, img, nil)
					after := dev.Flash()
					behind := after[tc.addr+tc.size : tc.wiped+0x1000]
					survived := bytes.Equal(behind, bytes.Repeat([]byte{0xA5}, len(behind)))
					if workaround {
						if err != nil || !bytes.Equal(after[tc.addr:tc.addr+tc.size], img) || !survived {
							t.Fatalf("err %v, data behind the image survived: %v", err, survived)
						}
						if !bytes.Equal(after[:tc.addr], flash[:tc.addr]) {
							t.Error("data in front of the image changed")
						}
					} else if survived {
						t.Fatal("without the workaround the data behind the image survived: the test proves nothing")
					}
				})
			})
		}
	}
}

func TestSimBaud(t *testing.T) {
	for _, baud := range []int{460800, 921600} {
		t.Run("", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dev, host, stop := simLink(t, espsim.Config{Chip: espsim.ESP8266})
				defer stop()
				ctx := context.Background()
				d, err := Connect(ctx, host, Options{Stub: simStub(), Baud: baud})
				if err != nil {
					t.Fatal(err)
				}
				if d.Info().Baud != baud || dev.Stats().Baud != baud || host.BaudRate() != baud {
					t.Fatalf("baud %d, chip %d, port %d", d.Info().Baud, dev.Stats().Baud, host.BaudRate())
				}
				var out bytes.Buffer
				start := time.Now()
				if err := d.Read(ctx, 0, 0x40000, &out, nil); err != nil {
					t.Fatal(err)
				}
				el := time.Since(start)
				if !bytes.Equal(out.Bytes(), dev.Flash()[:0x40000]) {
					t.Fatal("read differs")
				}
				if wire := transport.WireTime(0x40000, baud); el < wire || el > 2*wire {
					t.Errorf("read of 256 KiB took %v at %d baud (wire %v)", el, baud, wire)
				}
			})
		})
	}
}

// slowAdapter garbles what the host receives above limit baud, like an
// adapter or cable that cannot keep up.
type slowAdapter struct {
	*transport.PipePort
	limit int
}

func (s *slowAdapter) Read(b []byte) (int, error) {
	n, err := s.PipePort.Read(b)
	if s.BaudRate() > s.limit {
		for i := range b[:n] {
			b[i] ^= 0x5A
		}
	}
	return n, err
}

func TestSimBaudFallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dev, host, stop := simLink(t, espsim.Config{Chip: espsim.ESP8266})
		defer stop()
		ctx := context.Background()
		var ev events
		d, err := Connect(ctx, &slowAdapter{host, 460800}, Options{Stub: simStub(), Baud: 921600, Events: ev.sink()})
		if err != nil {
			t.Fatal(err)
		}
		if d.Info().Baud != 115200 || dev.Stats().Baud != 115200 {
			t.Fatalf("baud %d, chip %d", d.Info().Baud, dev.Stats().Baud)
		}
		if !ev.has(flasher.Warning, "failed at 921600") {
			t.Errorf("events %v", ev)
		}
		var out bytes.Buffer
		if err := d.Read(ctx, 0, 0x2000, &out, nil); err != nil || !bytes.Equal(out.Bytes(), dev.Flash()[:0x2000]) {
			t.Fatalf("read after fallback: %v", err)
		}
	})
}

func TestSimStubReuse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, host, stop := simLink(t, espsim.Config{Chip: espsim.ESP8266})
		defer stop()
		ctx := context.Background()
		if _, err := Connect(ctx, host, Options{Stub: simStub()}); err != nil {
			t.Fatal(err)
		}
		d, err := Connect(ctx, host, Options{Stub: simStub()})
		if err != nil {
			t.Fatal(err)
		}
		if d.Info().Protocol != "stub (already running)" || d.Info().Family != flasher.ESP8266 {
			t.Errorf("%+v", d.Info())
		}
		var out bytes.Buffer
		if err := d.Read(ctx, 0, 4096, &out, nil); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSimMemEndNoReply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, host, stop := simLink(t, espsim.Config{Chip: espsim.ESP8266, Faults: espsim.Faults{MemEndNoReply: true}})
		defer stop()
		d, err := Connect(context.Background(), host, Options{Stub: simStub()})
		if err != nil || d.Info().Protocol != "stub" {
			t.Fatalf("%v", err)
		}
	})
}

// TestSimBench: the chip runs its firmware; the user power-cycles it with
// GPIO0 held low a while after the prompt.
func TestSimBench(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dev, host, stop := simLink(t, espsim.Config{Chip: espsim.ESP8266, AutoReset: 3 * time.Second})
		defer stop()
		dev.PowerCycle(false)
		var ev events
		d, err := Connect(context.Background(), host, Options{Events: ev.sink()})
		if err != nil {
			t.Fatal(err)
		}
		if !ev.has(flasher.Action, "power-cycle") || d.Info().Family != flasher.ESP8266 {
			t.Errorf("%v %+v", ev, d.Info())
		}
		manual, err := d.Reboot(context.Background())
		if err != nil || !strings.Contains(manual, "power-cycle") {
			t.Errorf("%q %v", manual, err)
		}
	})
}

// TestSimNotInDownloadMode: the firmware runs and nobody power-cycles.
func TestSimNotInDownloadMode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dev, host, stop := simLink(t, espsim.Config{Chip: espsim.ESP8266})
		defer stop()
		dev.PowerCycle(false)
		_, err := Connect(context.Background(), host, Options{SyncWindow: 3 * time.Second})
		if !errors.Is(err, flasher.ErrNoLink) || !strings.Contains(flasher.Hint(err), "GPIO0") {
			t.Fatalf("err = %v, hint %q", err, flasher.Hint(err))
		}
	})
}

// TestSimLineNoise: a noisy line (corrupted bytes from the chip) still
// gives correct data through retries and the per-chunk MD5 checks.
func TestSimLineNoise(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		// Measure what the chip receives while connecting, so the noise
		// starts with the read.
		_, host, stop := simLink(t, espsim.Config{Chip: espsim.ESP8266})
		if _, err := Connect(ctx, host, Options{Stub: simStub()}); err != nil {
			t.Fatal(err)
		}
		stop()
		dev0, host, stop := simLink(t, espsim.Config{Chip: espsim.ESP8266})
		if _, err := Connect(ctx, host, Options{Stub: simStub()}); err != nil {
			t.Fatal(err)
		}
		connectBytes := dev0.Stats().BytesIn
		stop()

		dev, host, stop := simLink(t, espsim.Config{Chip: espsim.ESP8266, Seed: 7,
			Faults: espsim.Faults{CorruptRate: 0.00005, FaultAfter: connectBytes}})
		defer stop()
		d, err := Connect(ctx, host, Options{Stub: simStub()})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := d.Read(ctx, 0, 0x40000, &out, nil); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), dev.Flash()[:0x40000]) {
			t.Fatal("noisy read returned wrong data")
		}
		if n := dev.Stats().Commands["READ_FLASH"]; n <= 4 {
			t.Errorf("%d READ_FLASH commands for 4 chunks: the noise caused no retry, the test proves nothing", n)
		}
	})
}

// TestVirtualIdentification: with AskVirtual the identification command
// of contract C2 goes out once the chip is identified; the simulator's
// answer fills Info().Virtual, in the ROM and under the stub; a real ROM
// or stub rejects it and the chip stays real, with nothing else changed.
// Without AskVirtual nothing is sent.
func TestVirtualIdentification(t *testing.T) {
	for _, stub := range []bool{false, true} {
		t.Run(fmt.Sprintf("simulator, stub=%v", stub), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sim, host, stop := simLink(t, espsim.Config{Chip: espsim.ESP8285, NetAddr: "127.84.0.9:4000"})
				defer stop()
				o := Options{AskVirtual: true}
				if stub {
					o.Stub = simStub()
				}
				d, err := Connect(context.Background(), host, o)
				if err != nil {
					t.Fatal(err)
				}
				if v := d.Info().Virtual; v == nil || v.Sim != "espsim" || v.Chip != "ESP8285" || v.Net != "127.84.0.9:4000" {
					t.Fatalf("virtual %+v", v)
				}
				if n := sim.Stats().Commands["0x7E"]; n != 1 {
					t.Errorf("asked %d times", n)
				}
				if len(d.Info().Notes) != 0 {
					t.Errorf("notes %q", d.Info().Notes)
				}
			})
		})
	}
	t.Run("simulator, not asked", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			sim, host, stop := simLink(t, espsim.Config{})
			defer stop()
			d, err := Connect(context.Background(), host, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if d.Info().Virtual != nil || sim.Stats().Commands["0x7E"] != 0 {
				t.Errorf("virtual %+v, %d questions", d.Info().Virtual, sim.Stats().Commands["0x7E"])
			}
		})
	})
	for _, stub := range []bool{false, true} {
		t.Run(fmt.Sprintf("real chip, stub=%v", stub), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				chip := newROMChip(efuseFor(testMAC, false), 0x1640EF)
				chip.stub = stub
				p, d := connectFakeWith(t, chip.handle, Options{AskVirtual: true})
				if d.Info().Virtual != nil {
					t.Errorf("a real chip taken for virtual: %+v", d.Info().Virtual)
				}
				if n := len(p.requests(flasher.VirtualCode)); n != 1 {
					t.Errorf("asked %d times", n)
				}
				// The link still works: a register read answers.
				if v, err := d.l.readReg(regChipMagic); err != nil || v != magicESP8266 {
					t.Errorf("after the question: 0x%08X, %v", v, err)
				}
			})
		})
	}
}
