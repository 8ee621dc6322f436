package espstub

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/flasher/esp8266"
	"github.com/tuyaflash/tuyaflash/transport"
)

// These tests drive the host-built stub with tuyaflash's own ESP8266
// client, unchanged, over a pseudo-terminal: the stub is already running
// (it greets with OHAI), so the client finds it by its SYNC value 0.

func connectClient(t *testing.T, s *hostStub, p transport.Port, baud int) *esp8266.Device {
	t.Helper()
	d, err := esp8266.Connect(context.Background(), p, esp8266.Options{Baud: baud, SyncWindow: 3 * time.Second})
	if err != nil {
		t.Fatalf("connect: %v\nhost-stub stderr:\n%s", err, s.stderr.String())
	}
	info := d.Info()
	if info.Family != flasher.ESP8266 || info.FlashSize != 1<<20 || info.Baud != baud {
		t.Fatalf("info %+v", info)
	}
	if baud != 115200 {
		if got := s.pty.PeerBaud(); got != baud {
			t.Fatalf("stub's UART at %d baud, want %d", got, baud)
		}
	}
	return d
}

func randomFlash(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// TestClientBackup1MiB: a whole-flash backup through the stub at 460800
// baud is identical to the fake flash.
func TestClientBackup1MiB(t *testing.T) {
	flash := randomFlash(1<<20, 1)
	s := startStub(t, flash, "--size", "1M")
	d := connectClient(t, s, s.pty, 460800)
	var got bytes.Buffer
	if err := d.Read(context.Background(), 0, 1<<20, &got, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), flash) {
		t.Fatal("backup differs from the fake flash")
	}
}

// slowPort reads in small pieces with pauses, as a slow host would.
type slowPort struct{ transport.Port }

func (p slowPort) Read(b []byte) (int, error) {
	time.Sleep(2 * time.Millisecond)
	return p.Port.Read(b[:min(len(b), 100)])
}

// TestClientSlowReader: READ_FLASH's acknowledged flow control keeps the
// stub from overrunning a reader that lags behind.
func TestClientSlowReader(t *testing.T) {
	flash := randomFlash(1<<20, 2)
	s := startStub(t, flash, "--size", "1M")
	d := connectClient(t, s, slowPort{s.pty}, 115200)
	var got bytes.Buffer
	if err := d.Read(context.Background(), 0x40000, 0x10000, &got, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), flash[0x40000:0x50000]) {
		t.Fatal("read through a slow reader differs")
	}
}

// TestClientWrites: a compressed write of a Tasmota-like image and an
// uncompressed one, each verified by the stub's MD5, then an erase.
func TestClientWrites(t *testing.T) {
	flash := randomFlash(1<<20, 3)
	s := startStub(t, flash, "--size", "1M")
	d := connectClient(t, s, s.pty, 460800)
	ctx := context.Background()

	img := tasmotaLike(600_000)
	res, err := d.Write(ctx, 0, img, nil)
	if err != nil || !res.Verified || res.VerifyMethod == "" {
		t.Fatalf("compressed write: %+v %v", res, err)
	}
	raw := randomFlash(0x9000, 4)
	if res, err := d.WriteUncompressed(ctx, 0xA0000, raw, nil); err != nil || !res.Verified {
		t.Fatalf("uncompressed write: %+v %v", res, err)
	}
	if err := d.Verify(ctx, 0, img); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if err := d.EraseRegion(ctx, 0xC0000, 0x3000); err != nil {
		t.Fatal(err)
	}
	got := s.flashFile()
	switch {
	case !bytes.Equal(got[:len(img)], img):
		t.Fatal("fake flash does not hold the compressed image")
	case !bytes.Equal(got[0xA0000:0xA0000+len(raw)], raw):
		t.Fatal("fake flash does not hold the uncompressed data")
	case !bytes.Equal(got[0xC0000:0xC3000], bytes.Repeat([]byte{0xFF}, 0x3000)):
		t.Fatal("erase region did not erase")
	case !bytes.Equal(got[0xC3000:], flash[0xC3000:]):
		t.Fatal("flash after the erased region changed")
	}
	// A sector that does not hold what was written is caught.
	if err := d.Verify(ctx, 0xC0000, raw[:0x1000]); err == nil {
		t.Fatal("MD5 verify passed over erased flash")
	}
}

// TestClientPipelinedWrite: against a stub whose flash is slow, the client
// keeps a second packet in flight (a whole packet waited in the stub's
// ring while it worked on the one before) and the write is verified by
// the MD5 the stub read back meanwhile; the same through a host that
// reads in small pieces with pauses.
func TestClientPipelinedWrite(t *testing.T) {
	for _, slow := range []bool{false, true} {
		t.Run(map[bool]string{false: "fast reader", true: "slow reader"}[slow], func(t *testing.T) {
			s := startStub(t, randomFlash(1<<20, 5), "--size", "1M", "--flash-timing", slowFlash)
			var port transport.Port = s.pty
			if slow {
				port = slowPort{s.pty}
			}
			d := connectClient(t, s, port, 921600)
			s.info(true)
			img := tasmotaLike(300_000)
			res, err := d.Write(context.Background(), 0x10000, img, nil)
			if err != nil || !res.Verified || res.Retries != 0 {
				t.Fatalf("write: %+v %v", res, err)
			}
			if !bytes.Equal(s.flashFile()[0x10000:0x10000+len(img)], img) {
				t.Fatal("fake flash does not hold the image")
			}
			if st := s.info(false); st.highWater < oneFrameInFlight || st.lost != 0 {
				t.Errorf("receive statistics %+v: the client did not keep two packets in flight", st)
			}
		})
	}
}

// frameEditor passes the client's frames to the stub through edit (the
// decoded frame: 8-byte request header and data).
type frameEditor struct {
	transport.Port
	edit    func(f []byte) []byte
	pending []byte
}

func (p *frameEditor) Write(b []byte) (int, error) {
	p.pending = append(p.pending, b...)
	for {
		i := bytes.IndexByte(p.pending, 0xC0)
		if i < 0 {
			p.pending = p.pending[:0]
			return len(b), nil
		}
		j := bytes.IndexByte(p.pending[i+1:], 0xC0)
		if j < 0 {
			return len(b), nil
		}
		enc := p.pending[i+1 : i+1+j]
		p.pending = p.pending[i+2+j:]
		var f []byte
		for k := 0; k < len(enc); k++ {
			c := enc[k]
			if c == 0xDB && k+1 < len(enc) {
				k++
				c = map[byte]byte{0xDC: 0xC0, 0xDD: 0xDB}[enc[k]]
			}
			f = append(f, c)
		}
		if err := transport.WriteAll(p.Port, slipEncode(p.edit(f))); err != nil {
			return 0, err
		}
	}
}

// deflPacket reports whether f is FLASH_DEFL_DATA packet seq.
func deflPacket(f []byte, seq uint32) bool {
	return len(f) >= 24 && f[1] == opDeflData && binary.LittleEndian.Uint32(f[12:]) == seq
}

// TestClientPipelinedRetry: packet 1's checksum is damaged once on the
// way while packet 2 follows it: the stub refuses packet 1 unprocessed and
// packet 2 as out of sequence; the client sends both again and the write
// is verified.
func TestClientPipelinedRetry(t *testing.T) {
	s := startStub(t, randomFlash(1<<20, 6), "--size", "1M", "--flash-timing", slowFlash)
	damaged := false
	port := &frameEditor{Port: s.pty, edit: func(f []byte) []byte {
		if !damaged && deflPacket(f, 1) {
			damaged = true
			f[4] ^= 0x01
		}
		return f
	}}
	d := connectClient(t, s, port, 460800)
	img := tasmotaLike(200_000)
	res, err := d.Write(context.Background(), 0, img, nil)
	if err != nil || !res.Verified || res.Retries != 1 || !damaged {
		t.Fatalf("write: %+v %v (damaged %v)", res, err, damaged)
	}
	if !bytes.Equal(s.flashFile()[:len(img)], img) {
		t.Fatal("fake flash does not hold the image")
	}
}

// TestClientPipelinedErrorBlock: the stub refuses packet 1 (its sequence
// number is damaged on the way) after packet 2 was sent: the error is
// reported against block 1 and its flash address, not block 2.
func TestClientPipelinedErrorBlock(t *testing.T) {
	s := startStub(t, randomFlash(1<<20, 7), "--size", "1M", "--flash-timing", slowFlash)
	port := &frameEditor{Port: s.pty, edit: func(f []byte) []byte {
		if deflPacket(f, 1) {
			binary.LittleEndian.PutUint32(f[12:], 7)
		}
		return f
	}}
	d := connectClient(t, s, port, 460800)
	img := tasmotaLike(200_000)
	_, err := d.Write(context.Background(), 0x20000, img, nil)
	var oe *flasher.OpError
	var se *flasher.StatusError
	if !errors.As(err, &oe) || !errors.As(err, &se) {
		t.Fatalf("error %v: want an OpError with the stub's status", err)
	}
	if oe.Op != "write compressed block 1" || se.Status != stBadDataLen {
		t.Fatalf("error %q (op %q, status 0x%02X): want block 1, status 0xC0", err, oe.Op, se.Status)
	}
	// Block 1 starts where block 0's inflated data ends: past 0x20000,
	// within the image.
	if oe.Addr <= 0x20000 || oe.Addr >= 0x20000+uint32(len(img)) {
		t.Fatalf("error at 0x%X: %v", oe.Addr, err)
	}
	// The link is in step again: the stub answers the next command.
	if _, err := d.MD5(context.Background(), 0, 0x1000); err != nil {
		t.Fatalf("MD5 after the failed write: %v", err)
	}
}
