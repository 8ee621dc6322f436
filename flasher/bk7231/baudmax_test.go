package bk7231

import (
	"context"
	"testing"
	"testing/synctest"

	bksim "github.com/tuyaflash/tuyaflash/devicesim/bk7231"
	"github.com/tuyaflash/tuyaflash/transport"
)

// TestBaudMax: --baud max climbs from 921600 on adapters known to run
// faster, each step proven by a checksummed read, and stops at the last
// step that passed; other adapters stay at 921600.
func TestBaudMax(t *testing.T) {
	tests := []struct {
		name    string
		adapter string
		maxBaud int // the wiring corrupts bytes above this (0: no limit)
		want    int
		note    string
	}{
		{"CH340 runs 2 Mbaud", "ch340", 0, 2000000, ""},
		{"FTDI runs 2 Mbaud", "ftdi", 0, 2000000, ""},
		{"wiring fails above 1.5 Mbaud", "ftdi", 1500000, 1500000, "2000000 baud failed"},
		{"wiring fails above 1 Mbaud", "ch340", 1000000, 921600, "1500000 baud failed"},
		{"CP2102 is not probed", "cp2102", 0, 921600, "not known to run faster"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ad, err := transport.ParseAdapter(tc.adapter)
			if err != nil {
				t.Fatal(err)
			}
			synctest.Test(t, func(t *testing.T) {
				r, err := newRig(t, bksim.Config{Chip: bksim.BK7231N}, transport.LinkOptions{Paced: true, Adapter: ad, MaxBaud: tc.maxBaud}, Options{Baud: BaudMax})
				if err != nil {
					t.Fatal(err)
				}
				defer r.stop()
				if got := r.dev.Info().Baud; got != tc.want {
					t.Errorf("running at %d baud, want %d", got, tc.want)
				}
				if tc.note != "" && !r.saw(tc.note) {
					t.Errorf("no note %q", tc.note)
				}
				// The link works at the rate it settled on.
				buf := make([]byte, sectorSize)
				if _, err := r.dev.readSectorVerified(context.Background(), 0x100000, buf); err != nil {
					t.Errorf("read after --baud max: %v", err)
				}
			})
		})
	}
}
