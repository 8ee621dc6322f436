package ops

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tuyaflash/tuyaflash/flasher"
)

// cutDevice is a fake chip whose first write erases the sectors it covers
// and then loses the link before programming them, as a power cut or a
// pulled cable between the erase and the write commands does.
type cutDevice struct {
	*fakeDevice
	cut bool
}

func (c *cutDevice) Write(ctx context.Context, addr uint32, data []byte, p flasher.Progress) (flasher.WriteResult, error) {
	if !c.cut {
		c.cut = true
		start := addr &^ 0xFFF
		end := (addr + uint32(len(data)) + 0xFFF) &^ 0xFFF
		for i := start; i < end; i++ {
			c.flash[i] = 0xFF
		}
		return flasher.WriteResult{Addr: addr, Size: len(data)}, errors.New("port closed")
	}
	copy(c.flash[addr:], data)
	return flasher.WriteResult{Addr: addr, Size: len(data), Verified: true}, nil
}

// TestWriteKeepingSurvivesAnInterruptedErase: an image that ends inside a
// sector is written, the write is cut after that sector was erased, and
// the re-run puts back what the sector held after the image (found by the
// fault campaign: the re-run read the erased bytes and kept them, so 3.8
// KiB of the stock flash after an OpenBeken image became 0xFF).
func TestWriteKeepingSurvivesAnInterruptedErase(t *testing.T) {
	for _, tc := range []struct {
		name string
		fam  flasher.Family
		addr uint32
		size int
		keep bool
	}{
		{"BK7231T app with a partial last sector", flasher.BK7231T, 0x11000, 4352, true},
		{"BK7231N data with partial first and last sectors", flasher.BK7231N, 0x20800, 9000, true},
		{"ESP8266: erased as esptool does", flasher.ESP8266, 0, 4352, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			dev := &cutDevice{fakeDevice: newFake(tc.fam, 1<<20)}
			before := bytes.Clone(dev.flash)
			data := bytes.Repeat([]byte{0x5A}, tc.size)
			var notes []string
			note := func(s string) { notes = append(notes, s) }
			if _, err := WriteKeeping(context.Background(), dev, root, tc.addr, data, nil, note); err == nil {
				t.Fatal("the cut write succeeded")
			}
			if got := WriteUnfinished(root, dev.Info(), tc.addr, data); got != tc.keep {
				t.Errorf("after the cut: WriteUnfinished %v, want %v", got, tc.keep)
			}
			res, err := WriteKeeping(context.Background(), dev, root, tc.addr, data, nil, note)
			if err != nil || !res.Verified || res.Addr != tc.addr || res.Size != tc.size {
				t.Fatalf("re-run: %+v, %v", res, err)
			}
			end := tc.addr + uint32(tc.size)
			if !bytes.Equal(dev.flash[tc.addr:end], data) {
				t.Fatal("the image is not in place")
			}
			kept := bytes.Equal(dev.flash[:tc.addr], before[:tc.addr]) && bytes.Equal(dev.flash[end:], before[end:])
			if kept != tc.keep {
				t.Errorf("bytes around the image kept: %v, want %v (notes %q)", kept, tc.keep, notes)
			}
			for _, n := range notes {
				if strings.Contains(n, "cannot") {
					t.Errorf("note %q", n)
				}
			}
			if WriteUnfinished(root, dev.Info(), tc.addr, data) {
				t.Error("WriteUnfinished after a verified write")
			}
			if left, _ := filepath.Glob(filepath.Join(root, ".partial", "write-*")); len(left) != 0 {
				t.Errorf("journal left after a verified write: %v", left)
			}
		})
	}
}
