//go:build linux

package transport

import (
	"bytes"
	"testing"
	"time"
)

// TestPTYWithSerialLibrary opens the slave through go.bug.st/serial, as a
// user opens /dev/ttyUSB0, and checks bytes, baud tracking and garbling.
func TestPTYWithSerialLibrary(t *testing.T) {
	dev, err := OpenPTY(115200)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	defer dev.Close()
	host, err := Open(dev.SlavePath(), 115200)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()

	if err := host.SetDTR(true); err == nil {
		t.Error("SetDTR on a pty succeeded; want ErrNoModemControl")
	}
	if err := WriteAll(host, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := ReadFull(dev, buf, time.Now().Add(2*time.Second)); err != nil || string(buf) != "ping" {
		t.Fatalf("device read %q, %v", buf, err)
	}
	if err := host.SetBaudRate(921600); err != nil {
		t.Fatal(err)
	}
	if got := dev.PeerBaud(); got != 921600 {
		t.Fatalf("PeerBaud = %d, want 921600", got)
	}
	// Device still at 115200: what it sends arrives garbled.
	WriteAll(dev, []byte("pong"))
	if _, err := ReadFull(host, buf, time.Now().Add(2*time.Second)); err != nil || bytes.Equal(buf, []byte("pong")) {
		t.Fatalf("host read %q, %v; want garbled bytes", buf, err)
	}
	dev.SetBaudRate(921600)
	WriteAll(dev, []byte("pong"))
	if _, err := ReadFull(host, buf, time.Now().Add(2*time.Second)); err != nil || string(buf) != "pong" {
		t.Fatalf("host read %q, %v after both switched", buf, err)
	}
	// Read timeout on the device side returns (0, nil).
	dev.SetReadTimeout(50 * time.Millisecond)
	start := time.Now()
	if n, err := dev.Read(buf); n != 0 || err != nil || time.Since(start) < 40*time.Millisecond {
		t.Fatalf("idle read = %d, %v after %v", n, err, time.Since(start))
	}
}
