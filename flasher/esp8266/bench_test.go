package esp8266

import (
	"bytes"
	"compress/zlib"
	"context"
	"io"
	"testing"
	"time"

	espsim "github.com/tuyaflash/tuyaflash/devicesim/esp8266"
	"github.com/tuyaflash/tuyaflash/transport"
)

// BenchmarkTransfer measures, over an in-memory link paced at the baud rate
// in real time, a ROM write at 115200 and stub reads and compressed writes
// at 460800 and 921600 of a 600 kB image that compresses like a Tasmota
// build. %wire is the image's wire limit (bytes × 10 / baud) over the time
// taken; compressed writes can exceed 100 % (kbit/s reports the effective
// rate of image bytes). Run with -benchtime=1x.
func BenchmarkTransfer(b *testing.B) {
	img := tasmotaLike(600_000, 9)
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, zlib.BestCompression)
	zw.Write(img)
	zw.Close()
	b.Logf("image %d bytes, zlib level 9 leaves %d (%.0f %%)", len(img), z.Len(), 100*float64(z.Len())/float64(len(img)))
	for _, bc := range []struct {
		name string
		baud int
		stub bool
		op   string
	}{
		{"rom-write/115200", 115200, false, "write"},
		{"stub-read/460800", 460800, true, "read"},
		{"stub-read/921600", 921600, true, "read"},
		{"stub-write-compressed/460800", 460800, true, "write"},
		{"stub-write-compressed/921600", 921600, true, "write"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			flash := espsim.DefaultFlash(espsim.ESP8266, 1<<20)
			copy(flash, img) // reads move the real image
			sim, err := espsim.New(espsim.Config{Chip: espsim.ESP8266, Flash: flash})
			if err != nil {
				b.Fatal(err)
			}
			host, chip := transport.Pipe(transport.LinkOptions{Baud: 115200, Paced: true})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go sim.Serve(ctx, chip)
			opts := Options{Baud: bc.baud, SyncWindow: 5 * time.Second}
			if bc.stub {
				opts.Stub = simStub()
			}
			d, err := Connect(ctx, host, opts)
			if err != nil {
				b.Fatal(err)
			}
			if got := d.Info().Baud; got != bc.baud {
				b.Fatalf("running at %d baud, want %d", got, bc.baud)
			}
			n := len(img)
			if bc.op == "read" {
				n = (len(img) + 4095) &^ 4095 // whole sectors
			}
			b.SetBytes(int64(n))
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				switch bc.op {
				case "read":
					err = d.Read(ctx, 0, uint32(n), io.Discard, nil)
				default:
					_, err = d.Write(ctx, 0, img, nil)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			per := time.Since(start) / time.Duration(b.N)
			limit := transport.WireTime(int64(n), bc.baud)
			b.ReportMetric(100*limit.Seconds()/per.Seconds(), "%wire")
			b.ReportMetric(float64(n)*8/per.Seconds()/1000, "kbit/s")
		})
	}
}
