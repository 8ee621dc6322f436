package esp8266

import (
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	espsim "github.com/tuyaflash/tuyaflash/devicesim/esp8266"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/transport"
)

// TestSimWriteEveryStub: compressed and plain writes at 2 Mbaud with flash
// timing, against tuyaflash's stub (it announces a window: packets go out
// before the previous reply, one whole packet waits in its buffer), its
// first stub (128-byte UART FIFO: one packet at a time, or it would lose
// bytes) and esp-flasher-stub (replies before the work: one at a time).
// Every write is verified and no byte is lost.
func TestSimWriteEveryStub(t *testing.T) {
	for _, m := range []espsim.StubModel{espsim.StubTuyaflash, espsim.StubTuyaflash1, espsim.StubEsptool} {
		t.Run(m.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dev, host, stop := simLink(t, espsim.Config{Chip: espsim.ESP8266, Flash: make([]byte, 1<<20), Timing: true, Stub: m})
				defer stop()
				ctx := context.Background()
				d, err := Connect(ctx, host, Options{Stub: simStub(), Baud: 2000000})
				if err != nil {
					t.Fatal(err)
				}
				img := tasmotaLike(300_000, 4)
				res, err := d.Write(ctx, 0x1000, img, nil)
				if err != nil || !res.Verified || res.Retries != 0 {
					t.Fatalf("compressed write: %+v %v", res, err)
				}
				raw := tasmotaLike(70_000, 5)
				if res, err := d.WriteUncompressed(ctx, 0x80000, raw, nil); err != nil || !res.Verified {
					t.Fatalf("uncompressed write: %+v %v", res, err)
				}
				f := dev.Flash()
				if !bytes.Equal(f[0x1000:0x1000+len(img)], img) || !bytes.Equal(f[0x80000:0x80000+len(raw)], raw) {
					t.Fatal("flash differs")
				}
				st := dev.Stats()
				if st.RxLost != 0 {
					t.Fatalf("the stub lost %d bytes: the client sent more than it could take", st.RxLost)
				}
				pipelined := st.RxHighWater >= stubBlockSize
				if want := m == espsim.StubTuyaflash; pipelined != want {
					t.Errorf("a whole packet waited in the stub: %v (high water %d), want %v", pipelined, st.RxHighWater, want)
				}
			})
		})
	}
}

// timedStubAt921600 connects to a simulated 1 MiB module with flash timing
// through tuyaflash's stub model at 921600 baud (inside a synctest bubble).
func timedStubAt921600(t *testing.T) (*espsim.Device, *Device, func()) {
	t.Helper()
	dev, host, stop := simLink(t, espsim.Config{Chip: espsim.ESP8266, Flash: make([]byte, 1<<20), Timing: true})
	d, err := Connect(context.Background(), host, Options{Stub: simStub(), Baud: 921600})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	return dev, d, stop
}

// TestSimPipelinedWriteFaster: against tuyaflash's stub at 921600 the
// packets' work hides behind the transfer and the MD5 behind both: the
// write takes little more than the stream's wire time.
func TestSimPipelinedWriteFaster(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, d, stop := timedStubAt921600(t)
		defer stop()
		ctx := context.Background()
		img := tasmotaLike(400_000, 6)
		start := time.Now()
		if _, err := d.Write(ctx, 0, img, nil); err != nil {
			t.Fatal(err)
		}
		el := time.Since(start)
		comp, _ := d.deflate(pad4(img))
		wire := time.Duration(len(comp)) * 10 * time.Second / 921600
		// The last packet's work (a block erase at most and its programs)
		// and the read-back of what it wrote stay after the wire.
		if el > wire+400*time.Millisecond {
			t.Errorf("write took %v for %v of wire time", el, wire)
		}
	})
}

// TestSimPipelinedErrorAttribution: a stream that fails to inflate in
// packet 1 is reported on packet 1, though packet 2 was sent before its
// reply came; the link is in step afterwards.
func TestSimPipelinedErrorAttribution(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dev, d, stop := timedStubAt921600(t)
		defer stop()
		ctx := context.Background()
		img := tasmotaLike(200_000, 7)
		comp, _ := d.deflate(pad4(img))
		blocks := [][]byte{comp[:stubBlockSize], comp[stubBlockSize : 2*stubBlockSize], comp[2*stubBlockSize:]}
		bad := bytes.Clone(blocks[1])
		for i := range bad {
			bad[i] = 0xFF // checksum right, deflate data not
		}
		var hdr [20]byte
		words(hdr[:0], uint32(len(pad4(img))), 3, stubBlockSize, 0, 0)
		if _, _, err := d.l.check(opFlashDeflBegin, hdr[:], 0, 0, defaultTimeout); err != nil {
			t.Fatal(err)
		}
		s := &packetStream{op: opFlashDeflData, endOp: opFlashDeflEnd, blocks: [][]byte{blocks[0], bad, blocks[2]},
			work: []int{0x6000, 0x6000, 0x6000}, done: func(int) {}}
		_, err := d.sendStream(ctx, s)
		var se *streamError
		var st *flasher.StatusError
		if !errors.As(err, &se) || !errors.As(err, &st) || st.Status != 0xC7 {
			t.Fatalf("err %v: want an inflate error", err)
		}
		// Go's inflater finds the damage at the same packet.
		zr, _ := zlib.NewReader(io.MultiReader(bytes.NewReader(blocks[0]), bytes.NewReader(bad)))
		_, goErr := io.Copy(io.Discard, zr)
		if se.packet != 1 || goErr == nil {
			t.Errorf("error on packet %d (Go's inflater: %v), want packet 1", se.packet, goErr)
		}
		if st := dev.Stats(); st.RxLost != 0 {
			t.Errorf("lost %d", st.RxLost)
		}
		// The link is in step: the next command works.
		if _, err := d.MD5(ctx, 0, 0x1000); err != nil {
			t.Fatal(err)
		}
	})
}

// TestInflatedPerBlock: the per-block inflated sizes add up to the image
// and each is within 4 KiB of what a decompressor fed the stream up to the
// block's end has produced by then.
func TestInflatedPerBlock(t *testing.T) {
	img := tasmotaLike(300_000, 8)
	d := &Device{}
	comp, err := d.deflate(img)
	if err != nil {
		t.Fatal(err)
	}
	got, err := inflatedPerBlock(comp, stubBlockSize)
	if err != nil {
		t.Fatal(err)
	}
	total, sum := 0, 0
	for i, n := range got {
		sum += n
		end := min((i+1)*stubBlockSize, len(comp))
		zr, _ := zlib.NewReader(bytes.NewReader(comp[:end]))
		k, _ := io.Copy(io.Discard, zr) // stops at the truncation
		if i < len(got)-1 && (sum < int(k)-4096 || sum > int(k)+4096) {
			t.Errorf("block %d: %d bytes inflated by its end, a decompressor gave %d", i, sum, k)
		}
		total = sum
	}
	if total != len(img) {
		t.Fatalf("blocks inflate to %d bytes, the image has %d", total, len(img))
	}
}

// simLoader stands for tuyaflash's loader: only its place matters to the
// simulator (0x4010EA00, code only, 1.4 KB).
func simLoader() *Stub {
	return &Stub{Text: bytes.Repeat([]byte{0x12, 0x34, 0x56, 0x78}, 350), TextStart: 0x4010EA00, Entry: 0x4010EA10}
}

// ownSizedStub has tuyaflash's stub's place and size (8 KB of code below
// the loader, 280 bytes of data).
func ownSizedStub() *Stub {
	return &Stub{Text: make([]byte, 8184), TextStart: 0x4010C500, Entry: 0x4010C504, Data: make([]byte, 280), DataStart: 0x3FFFACAC}
}

// TestSimLoader: with the loader the stub goes up at the session's rate
// and the link is up sooner; a stub that would overlap the loader goes up
// directly; when the adapter cannot hold the rate, the loader returns to
// 115200 and the stub still goes up.
func TestSimLoader(t *testing.T) {
	linkUp := func(t *testing.T, link transport.LinkOptions, opts Options) (time.Duration, *Device, espsim.Stats) {
		var el time.Duration
		var d *Device
		var st espsim.Stats
		synctest.Test(t, func(t *testing.T) {
			dev, host, stop := simLinkWith(t, espsim.Config{Chip: espsim.ESP8266, Flash: make([]byte, 1<<20)}, link)
			defer stop()
			start := time.Now()
			var err error
			if d, err = Connect(context.Background(), host, opts); err != nil {
				t.Fatal(err)
			}
			el = time.Since(start)
			if _, err := d.MD5(context.Background(), 0, 0x1000); err != nil {
				t.Fatalf("the stub does not answer: %v", err)
			}
			st = dev.Stats()
		})
		return el, d, st
	}
	paced := transport.LinkOptions{Baud: 115200, Paced: true}
	direct, _, _ := linkUp(t, paced, Options{Stub: ownSizedStub(), Baud: 921600})
	via, d, st := linkUp(t, paced, Options{Stub: ownSizedStub(), Loader: simLoader(), Baud: 921600})
	if d.Info().Baud != 921600 || st.Commands["MEM_BEGIN"] != 3 {
		t.Errorf("with the loader: baud %d, %d MEM_BEGIN", d.Info().Baud, st.Commands["MEM_BEGIN"])
	}
	if via > direct-400*time.Millisecond {
		t.Errorf("link-up with the loader %v, without %v", via, direct)
	}
	// esptool's stub would cover the loader: no loader.
	_, _, st = linkUp(t, paced, Options{Stub: simStub(), Loader: simLoader(), Baud: 921600})
	if st.Commands["MEM_BEGIN"] != 2 {
		t.Errorf("a stub over the loader's place: %d MEM_BEGIN, want the stub's 2", st.Commands["MEM_BEGIN"])
	}
	// The link garbles above 460800: back to 115200, the stub goes up there.
	noisy := paced
	noisy.MaxBaud = 460800
	_, d, st = linkUp(t, noisy, Options{Stub: ownSizedStub(), Loader: simLoader(), Baud: 921600})
	notes := d.Info().Notes
	if d.Info().Baud != 115200 || st.Baud != 115200 || len(notes) != 1 || !strings.Contains(notes[0], "back to 115200") {
		t.Errorf("over a link that fails at 921600: baud %d (chip %d), notes %q", d.Info().Baud, st.Baud, notes)
	}
}
