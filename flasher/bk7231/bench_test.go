package bk7231

import (
	"context"
	"io"
	"testing"
	"time"

	bksim "github.com/tuyaflash/tuyaflash/devicesim/bk7231"
	"github.com/tuyaflash/tuyaflash/transport"
)

// BenchmarkBackup2MiB reads the whole 2 MiB flash of a simulated BK7231
// over an in-memory link paced at the baud rate, in real time, and reports
// the throughput as a share of the wire limit (bytes × 10 / baud, payload
// only): run with -benchtime=1x, one iteration takes about 23 s at 921600.
func BenchmarkBackup2MiB(b *testing.B) {
	for _, bc := range []struct {
		name   string
		chip   bksim.Chip
		baud   int
		timing bool
	}{
		{"N/921600", bksim.BK7231N, 921600, false},
		{"T/921600", bksim.BK7231T, 921600, false},
		{"N/921600/flash-timing", bksim.BK7231N, 921600, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			sim, err := bksim.New(bksim.Config{Chip: bc.chip, AutoReset: 10 * time.Millisecond, Timing: bc.timing})
			if err != nil {
				b.Fatal(err)
			}
			host, devEnd := transport.Pipe(transport.LinkOptions{Paced: true})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go sim.Serve(ctx, devEnd)
			dev, err := Connect(ctx, host, Options{Baud: bc.baud, LinkTimeout: 5 * time.Second})
			if err != nil {
				b.Fatal(err)
			}
			size := dev.FlashSize()
			b.SetBytes(int64(size))
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if err := dev.Read(ctx, 0, size, io.Discard, nil); err != nil {
					b.Fatal(err)
				}
			}
			per := time.Since(start) / time.Duration(b.N)
			limit := transport.WireTime(int64(size), bc.baud)
			b.ReportMetric(100*limit.Seconds()/per.Seconds(), "%wire")
			b.ReportMetric(per.Seconds(), "s/backup")
		})
	}
}
