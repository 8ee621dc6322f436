package ui

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
)

// TestProgressLinesOffATerminal: on a pipe or in a log file a line every
// few seconds (address reached, share, rate, time left) and a closing line
// with size, time and effective rate.
func TestProgressLinesOffATerminal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		p := NewProgress(&out, ProgressOptions{Every: 5 * time.Second})
		p.Begin("read", 0x11000, 400<<10)
		for range 100 { // 4 KiB a 100 ms: 40 KiB/s for 10 s
			time.Sleep(100 * time.Millisecond)
			p.Advance(4 << 10)
		}
		p.End(nil)
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		want := []string{
			"read   0x043000: 200/400 KiB (50%), 40.0 KiB/s, 5 s left",
			"read   0x075000: 400/400 KiB (100%), 40.0 KiB/s, 0 s left",
			"read: 409600 bytes (400 KiB) at 0x011000-0x074FFF in 10.0 s, 40.0 KiB/s effective",
		}
		if strings.Join(lines, "\n") != strings.Join(want, "\n") {
			t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
		}
	})
}

func TestProgressStoppedAndQuiet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		p := NewProgress(&out, ProgressOptions{})
		p.Begin("write", 0x11000, 64<<10)
		time.Sleep(2 * time.Second)
		p.Advance(8 << 10)
		p.Advance(-4 << 10) // a redone part
		p.End(errors.New("cable pulled"))
		if got := strings.TrimSpace(out.String()); got != "write stopped at 0x012000 after 4 of 64 KiB (2.0 s)" {
			t.Errorf("stopped: %q", got)
		}
		out.Reset()
		q := NewProgress(&out, ProgressOptions{Quiet: true})
		q.Begin("read", 0, 8192)
		time.Sleep(time.Minute)
		q.Advance(8192)
		q.End(nil)
		if out.Len() != 0 {
			t.Errorf("quiet progress printed %q", out.String())
		}
	})
}

func TestEvents(t *testing.T) {
	tests := []struct {
		verbose bool
		ev      flasher.Event
		want    string
	}{
		{false, flasher.Event{Kind: flasher.Action, Message: "power-cycle now"}, ">>> power-cycle now\n"},
		{false, flasher.Event{Kind: flasher.Warning, Message: "slow adapter"}, "warning: slow adapter\n"},
		{false, flasher.Event{Kind: flasher.Note, Message: "chip answered"}, ""},
		{true, flasher.Event{Kind: flasher.Note, Message: "chip answered"}, "chip answered\n"},
	}
	for _, tc := range tests {
		var out bytes.Buffer
		Events(&out, tc.verbose)(tc.ev)
		if out.String() != tc.want {
			t.Errorf("%+v verbose=%v: %q, want %q", tc.ev, tc.verbose, out.String(), tc.want)
		}
	}
}
