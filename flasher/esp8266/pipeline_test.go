package esp8266

import (
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"io"
	"testing"
	"testing/synctest"
	"time"

	espsim "github.com/tuyaflash/tuyaflash/devicesim/esp8266"
	"github.com/tuyaflash/tuyaflash/flasher"
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

// TestSimPipelinedWriteFaster: against tuyaflash's stub at 921600 the
// packets' work hides behind the transfer and the MD5 behind both: the
// write takes little more than the stream's wire time.
func TestSimPipelinedWriteFaster(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, host, stop := simLink(t, espsim.Config{Chip: espsim.ESP8266, Flash: make([]byte, 1<<20), Timing: true})
		defer stop()
		ctx := context.Background()
		d, err := Connect(ctx, host, Options{Stub: simStub(), Baud: 921600})
		if err != nil {
			t.Fatal(err)
		}
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
		dev, host, stop := simLink(t, espsim.Config{Chip: espsim.ESP8266, Flash: make([]byte, 1<<20), Timing: true})
		defer stop()
		ctx := context.Background()
		d, err := Connect(ctx, host, Options{Stub: simStub(), Baud: 921600})
		if err != nil {
			t.Fatal(err)
		}
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
		_, err = d.sendStream(ctx, s)
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
