package bk7231

import (
	"bytes"
	"context"
	"sort"
	"testing"
	"testing/synctest"

	bksim "github.com/tuyaflash/tuyaflash/devicesim/bk7231"
	"github.com/tuyaflash/tuyaflash/transport"
)

// TestWriteMovesOnlyChangedBlocks restores a whole 2 MiB image onto a
// flash that already holds it except where noted: only the 64 KiB blocks
// that differ are erased and written, and the flash ends up holding the
// image.
func TestWriteMovesOnlyChangedBlocks(t *testing.T) {
	tests := []struct {
		name    string
		changed []uint32 // sectors whose first byte differs on the chip
	}{
		{"identical", nil},
		{"one sector in the middle", []uint32{0x1A3000}},
		{"two sectors far apart", []uint32{0x012000, 0x1F0000}},
		{"a run of blocks", []uint32{0x100000, 0x110000, 0x120000, 0x130000, 0x140000, 0x150000}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				img := bksim.DefaultFlash(bksim.BK7231N, bksim.DefaultMAC)
				chipFlash := append([]byte(nil), img...)
				want := map[uint32]bool{} // blocks that must be erased
				for _, a := range tc.changed {
					chipFlash[a] ^= 0xFF
					want[a&^(blockSize-1)] = true
				}
				r, err := newRig(t, bksim.Config{Chip: bksim.BK7231N, Flash: chipFlash}, transport.LinkOptions{}, Options{Baud: 921600})
				if err != nil {
					t.Fatal(err)
				}
				defer r.stop()
				before := r.sim.Stats().Erased
				res, err := r.dev.Write(context.Background(), 0, img, nil)
				if err != nil || !res.Verified {
					t.Fatalf("write: %v %+v", err, res)
				}
				if !bytes.Equal(r.sim.Flash(), img) {
					t.Fatal("the flash does not hold the image")
				}
				erased := map[uint32]bool{}
				for sec, n := range r.sim.Stats().Erased {
					if n > before[sec] {
						erased[sec&^(blockSize-1)] = true
					}
				}
				if got, w := keys(erased), keys(want); !equalU32(got, w) {
					t.Errorf("erased blocks %X, want %X", got, w)
				}
				if res.Skipped != len(img)-len(want)*blockSize {
					t.Errorf("skipped %d bytes, want %d", res.Skipped, len(img)-len(want)*blockSize)
				}
			})
		})
	}
}

func keys(m map[uint32]bool) []uint32 {
	var out []uint32
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func equalU32(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
