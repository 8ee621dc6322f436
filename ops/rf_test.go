package ops

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	bksim "github.com/tuyaflash/tuyaflash/devicesim/bk7231"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/flasher/bk7231"
	"github.com/tuyaflash/tuyaflash/transport"
)

// withSim connects the Beken client to a simulated chip holding flash, in a
// synctest bubble, and hands both to body.
func withSim(t *testing.T, chip bksim.Chip, flash []byte, body func(dev *bk7231.Device, sim *bksim.Device)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		sim, err := bksim.New(bksim.Config{Chip: chip, Flash: flash, AutoReset: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		host, devEnd := transport.Pipe(transport.LinkOptions{})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { sim.Serve(ctx, devEnd); close(done) }()
		defer func() { cancel(); host.Close(); <-done }()
		dev, err := bk7231.Connect(context.Background(), host, bk7231.Options{Baud: 921600, LinkTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		body(dev, sim)
	})
}

// t1Flash is the simulator's BK7238 image with its RF sector moved where
// Tuya's T1 layout keeps it (LibreTiny beken-7238-tuya.json: calibration
// 0x1E3000), and at 0x1E0000 what fill says (nil: erased).
func t1Flash(fill []byte) []byte {
	flash := bksim.DefaultFlash(bksim.BK7238, bksim.DefaultMAC)
	rf := bksim.RFOffset(bksim.BK7238)
	copy(flash[0x1E3000:0x1E4000], flash[rf:rf+0x1000])
	copy(flash[rf:rf+0x1000], bytes.Repeat([]byte{0xFF}, 0x1000))
	copy(flash[rf:], fill)
	return flash
}

// TestCheckRF: after a write on a BK7238 the MAC must be readable at
// 0x1E0000 where OpenBeken looks for it; an RF sector found only at Tuya's
// 0x1E3000 is copied there when 0x1E0000 is blank, and never when that
// would overwrite data or when the image covered either sector. The
// sector at 0x1E3000 is never changed.
func TestCheckRF(t *testing.T) {
	mac := flasher.MAC(bksim.DefaultMAC)
	tests := []struct {
		name    string
		flash   []byte
		written []Plan
		copied  bool
		ok      bool
		warn    string
	}{
		{"MAC where OpenBeken looks", bksim.DefaultFlash(bksim.BK7238, bksim.DefaultMAC), nil, false, true, ""},
		{"Tuya layout, 0x1E0000 blank: copied", t1Flash(nil), []Plan{{Addr: 0, Size: 0x130000}}, true, true, ""},
		{"Tuya layout, 0x1E0000 holds data: left alone", t1Flash([]byte("OTA leftovers")), nil, false, false, "holds other data"},
		{"image covered 0x1E0000", t1Flash(nil), []Plan{{Addr: 0x1D0000, Size: 0x11000}}, false, false, "covers one of these sectors"},
		{"no RF data at all", t1Flash(nil)[:0], nil, false, false, "lost its MAC"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			flash := tc.flash
			if len(flash) == 0 {
				flash = t1Flash(nil)
				copy(flash[0x1E3000:0x1E4000], bytes.Repeat([]byte{0xFF}, 0x1000))
			}
			withSim(t, bksim.BK7238, flash, func(dev *bk7231.Device, sim *bksim.Device) {
				before := sim.Flash()
				r, err := CheckRF(context.Background(), dev, tc.written)
				if err != nil {
					t.Fatal(err)
				}
				after := sim.Flash()
				if r.Copied != tc.copied || r.OK != tc.ok {
					t.Fatalf("copied %v ok %v, want %v %v (%+v)", r.Copied, r.OK, tc.copied, tc.ok, r)
				}
				if tc.ok && r.MAC != mac {
					t.Errorf("MAC %s, want %s", r.MAC, mac)
				}
				if !bytes.Equal(after[0x1E3000:0x1E4000], before[0x1E3000:0x1E4000]) {
					t.Error("the RF sector at 0x1E3000 changed")
				}
				want := before
				if tc.copied {
					want = append([]byte(nil), before...)
					copy(want[0x1E0000:0x1E1000], before[0x1E3000:0x1E4000])
				}
				if !bytes.Equal(after, want) {
					t.Error("the flash changed beyond the copied RF sector")
				}
				if got := strings.Join(r.Warnings, "\n"); (tc.warn == "") != (got == "") || !strings.Contains(got, tc.warn) {
					t.Errorf("warnings %q, want %q", got, tc.warn)
				}
			})
		})
	}
}

// TestCheckRFOnlyWhereTheRowSaysSo: the other chips are not read again.
func TestCheckRFOnlyWhereTheRowSaysSo(t *testing.T) {
	withSim(t, bksim.BK7231N, nil, func(dev *bk7231.Device, sim *bksim.Device) {
		before := sim.Stats().Commands["FlashRead4K"]
		r, err := CheckRF(context.Background(), dev, nil)
		if r != nil || err != nil || sim.Stats().Commands["FlashRead4K"] != before {
			t.Errorf("CheckRF on a BK7231N: %+v, %v", r, err)
		}
	})
}
