//go:build linux

package bksim

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/transport"
)

// TestOverPseudoTerminal serves the chip on a pty and talks to it through
// go.bug.st/serial, as tuyaflash does with a real adapter: link, read 4 KiB,
// switch to 921600 and read again. Real time, a fraction of a second.
func TestOverPseudoTerminal(t *testing.T) {
	dev, err := transport.OpenPTY(115200)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	defer dev.Close()
	d, err := New(Config{Chip: BK7231N, LinkWindow: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx, dev) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve returned %v", err)
		}
	}()
	host, err := transport.Open(dev.SlavePath(), 115200)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()

	exchange := func(req []byte, n int) []byte {
		t.Helper()
		if err := transport.WriteAll(host, req); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, n)
		if got, err := transport.ReadFull(host, buf, time.Now().Add(3*time.Second)); err != nil {
			t.Fatalf("read %d of %d bytes: %v", got, n, err)
		}
		return buf
	}
	d.PowerCycle()
	if got := exchange(linkCheck, 8); !bytes.Equal(got, linkReply) {
		t.Fatalf("LinkCheck reply % X", got)
	}
	f := d.Flash()
	if got := exchange(read4KCmd(0x11000), 4111); !bytes.Equal(got, read4KReply(0x11000, f[0x11000:0x12000])) {
		t.Fatal("FlashRead4K over the pty returned other data")
	}

	if err := transport.WriteAll(host, cmdShort(0x0F, cat(le(921600), []byte{200})...)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if err := host.SetBaudRate(921600); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 12)
	if _, err := transport.ReadFull(host, buf, time.Now().Add(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	if want := cat(hx("04 0E 09 01 E0 FC 0F"), le(921600), []byte{200}); !bytes.Equal(buf, want) {
		t.Fatalf("SetBaudRate echo % X, want % X", buf, want)
	}
	if got := exchange(read4KCmd(0x12000), 4111); !bytes.Equal(got, read4KReply(0x12000, f[0x12000:0x13000])) {
		t.Fatal("FlashRead4K at 921600 returned other data")
	}
}
