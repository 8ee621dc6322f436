package chipdetect

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	bksim "github.com/tuyaflash/tuyaflash/devicesim/bk7231"
	espsim "github.com/tuyaflash/tuyaflash/devicesim/esp8266"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/transport"
)

// TestWait runs the combined loop against each simulated family, with the
// simulated user power-cycling the chip once the tool starts calling it
// (in download mode for the ESP8266), and against silence.
func TestWait(t *testing.T) {
	tests := []struct {
		name  string
		serve func(ctx context.Context, l *transport.PipePort)
		want  Kind
	}{
		{"BK7231N", func(ctx context.Context, l *transport.PipePort) {
			d, _ := bksim.New(bksim.Config{Chip: bksim.BK7231N, AutoReset: 700 * time.Millisecond})
			d.Serve(ctx, l)
		}, Beken},
		{"BK7231T with a short window", func(ctx context.Context, l *transport.PipePort) {
			d, _ := bksim.New(bksim.Config{Chip: bksim.BK7231T, AutoReset: 300 * time.Millisecond, LinkWindow: 10 * time.Millisecond})
			d.Serve(ctx, l)
		}, Beken},
		{"ESP8266 running its app", func(ctx context.Context, l *transport.PipePort) {
			d, _ := espsim.New(espsim.Config{Chip: espsim.ESP8266, AutoReset: 500 * time.Millisecond})
			d.PowerCycle(false)
			d.Serve(ctx, l)
		}, Espressif},
		{"nothing", func(ctx context.Context, l *transport.PipePort) { <-ctx.Done() }, None},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				host, dev := transport.Pipe(transport.LinkOptions{Paced: true})
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { tc.serve(ctx, dev); close(done) }()
				defer func() { cancel(); host.Close(); dev.Close(); <-done }()
				var prompts []string
				kind, err := Wait(context.Background(), host, 5*time.Second, func(e flasher.Event) {
					if e.Kind == flasher.Action {
						prompts = append(prompts, e.Message)
					}
				})
				if kind != tc.want {
					t.Fatalf("Wait = %v, %v; want %v", kind, err, tc.want)
				}
				if len(prompts) != 1 || !strings.Contains(prompts[0], "GPIO0") || !strings.Contains(prompts[0], "CEN") {
					t.Errorf("prompts %q: want one that covers both families", prompts)
				}
				if tc.want == None && (!errors.Is(err, flasher.ErrNoLink) || !strings.Contains(flasher.Hint(err), "--chip")) {
					t.Errorf("err = %v, hint %q", err, flasher.Hint(err))
				}
			})
		})
	}
}
