package espstub

import (
	"bytes"
	"context"
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
