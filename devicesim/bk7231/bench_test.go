package bksim

import (
	"context"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/transport"
)

// BenchmarkFlashRead4K measures the simulator's own cost per 4 KiB read on an
// unpaced link (wall clock, no synctest).
func BenchmarkFlashRead4K(b *testing.B) {
	d, err := New(Config{Chip: BK7231N})
	if err != nil {
		b.Fatal(err)
	}
	host, dev := transport.Pipe(transport.LinkOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx, dev) }()
	defer func() { cancel(); <-done }()
	d.PowerCycle()
	buf := make([]byte, 4111)
	if err := transport.WriteAll(host, linkCheck); err != nil {
		b.Fatal(err)
	}
	if _, err := transport.ReadFull(host, buf[:8], time.Now().Add(time.Second)); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(4096)
	for i := 0; b.Loop(); i++ {
		transport.WriteAll(host, read4KCmd(uint32(i%512)<<12))
		if _, err := transport.ReadFull(host, buf, time.Now().Add(time.Second)); err != nil {
			b.Fatal(err)
		}
	}
}
