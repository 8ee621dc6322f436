//go:build linux

package espsim

import (
	"context"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/transport"
)

var _ Line = (*transport.PTY)(nil)

// TestOverPTY serves the chip on a pseudo-terminal and talks to it through
// go.bug.st/serial, the way `--port sim:esp8266` is used (real time).
func TestOverPTY(t *testing.T) {
	pty, err := transport.OpenPTY(115200)
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer pty.Close()
	d, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx, pty) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	port, err := transport.Open(pty.SlavePath(), 115200)
	if err != nil {
		t.Fatalf("open %s: %v", pty.SlavePath(), err)
	}
	defer port.Close()
	h := &host{t: t, p: port, d: d}
	time.Sleep(100 * time.Millisecond)
	h.discardInput()
	if rs := h.sync(); len(rs) != 8 || rs[0].value != 0x20120707 {
		t.Fatalf("%d sync replies over the pty", len(rs))
	}
	if v := h.readReg(0x40001000); v != 0xFFF0C101 {
		t.Errorf("chip magic %#x", v)
	}
	h.uploadStub()
	h.ok(opChangeBaudrate, words(460800, 115200), 0)
	if err := port.SetBaudRate(460800); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	h.discardInput()
	if rs := h.sync(); len(rs) != 8 || rs[0].value != 0 {
		t.Errorf("at 460800 over the pty: %d stub sync replies", len(rs))
	}
}
