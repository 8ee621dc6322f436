package ui

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/tuyaflash/tuyaflash/flasher"
)

func TestProgressNotATerminal(t *testing.T) {
	tests := []struct {
		name    string
		verbose bool
		want    string
	}{
		{"quiet", false, ""},
		{"verbose: a line at the end", true, "read 0x011000: 8/8 KiB (100%)"},
	}
	for _, tc := range tests {
		var out bytes.Buffer
		p := NewProgress(&out, tc.verbose)
		p.Begin("read", 0x11000, 8192)
		p.Advance(4096)
		p.Advance(-4096) // a redone part
		p.Advance(8192)
		p.End(nil)
		if got := out.String(); (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	var out bytes.Buffer
	p := NewProgress(&out, true)
	p.Begin("write", 0, 4096)
	p.End(errors.New("cable pulled"))
	if out.Len() != 0 {
		t.Errorf("a failed phase printed a completion line: %q", out.String())
	}
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
