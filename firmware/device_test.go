package firmware_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	bksim "github.com/tuyaflash/tuyaflash/devicesim/bk7231"
	"github.com/tuyaflash/tuyaflash/firmware"
	"github.com/tuyaflash/tuyaflash/firmware/fwtest"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/flasher/bk7231"
	"github.com/tuyaflash/tuyaflash/ops"
	"github.com/tuyaflash/tuyaflash/transport"
)

// writeFirmware is what 'write --firmware FILE' does: resolve, place, then
// plan and write each region on the chip.
func writeFirmware(ctx context.Context, dev flasher.Device, file string, o firmware.PlaceOptions) error {
	r, err := firmware.Resolve(ctx, file, firmware.ChipOf(dev.Info()), nil, nil)
	if err != nil {
		return err
	}
	o.FlashMode, o.SHA256 = r.Options.FlashMode, r.Options.SHA256
	p, err := firmware.Place(dev.Info(), r.Detection, o)
	if err != nil {
		return err
	}
	for _, reg := range p.Regions {
		if _, err := ops.PlanWrite(dev, reg.Addr, reg.Data); err != nil {
			return err
		}
	}
	for _, reg := range p.Regions {
		if _, err := dev.Write(ctx, reg.Addr, reg.Data, nil); err != nil {
			return err
		}
	}
	return nil
}

// TestGatesOnVirtualDevices writes images to the simulated chips through
// the gates: refusals leave the flash as it was, accepted images land where
// the rules say and nothing else changes.
func TestGatesOnVirtualDevices(t *testing.T) {
	dir := t.TempDir()
	file := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	qioN := fwtest.Beken(fwtest.BootCRCN, 257, fwtest.App(fwtest.SigTuya, 0x8000, 1), 0x129F70)
	qioT := fwtest.Beken(fwtest.BootCRCT, 256, fwtest.App(fwtest.SigTuya, 0x8000, 2), 0x100000)
	ua := fwtest.App(fwtest.SigTuya, 0x4000, 3)
	tests := []struct {
		name    string
		cfg     bksim.Config
		file    string
		opts    firmware.PlaceOptions
		refused bool
		at      uint32 // where the image's written part starts
		img     []byte // the written part
	}{
		{"N QIO on a T", bksim.Config{Chip: bksim.BK7231T}, file("n.bin", qioN), firmware.PlaceOptions{}, true, 0, nil},
		{"T bootloader", bksim.Config{Chip: bksim.BK7231T}, file("t.bin", qioT), firmware.PlaceOptions{IncludeBootloader: true}, true, 0, nil},
		{"N bootloader on a zero-key chip", bksim.Config{Chip: bksim.BK7231N, ZeroEfuseKey: true}, file("n.bin", qioN), firmware.PlaceOptions{IncludeBootloader: true}, true, 0, nil},
		{"Tuya app on a zero-key chip", bksim.Config{Chip: bksim.BK7231N, ZeroEfuseKey: true}, file("ua.bin", ua), firmware.PlaceOptions{}, true, 0, nil},
		{"ESP image on an N", bksim.Config{Chip: bksim.BK7231N}, file("esp.bin", fwtest.ESPImage(3, 0x20, 100)), firmware.PlaceOptions{}, true, 0, nil},
		{"QIO on T from 0x11000", bksim.Config{Chip: bksim.BK7231T}, file("t.bin", qioT), firmware.PlaceOptions{}, false, 0x11000, qioT[0x11000:]},
		{"QIO on N keeps the bootloader", bksim.Config{Chip: bksim.BK7231N}, file("n.bin", qioN), firmware.PlaceOptions{}, false, 0x11000, qioN[0x11000:]},
		{"QIO on N with its bootloader", bksim.Config{Chip: bksim.BK7231N}, file("n.bin", qioN), firmware.PlaceOptions{IncludeBootloader: true}, false, 0, qioN},
		{"UA on N", bksim.Config{Chip: bksim.BK7231N}, file("ua.bin", ua), firmware.PlaceOptions{}, false, 0x11000, ua},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tc.cfg.AutoReset = 20 * time.Millisecond
				sim, err := bksim.New(tc.cfg)
				if err != nil {
					t.Fatal(err)
				}
				host, devEnd := transport.Pipe(transport.LinkOptions{})
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { sim.Serve(ctx, devEnd); close(done) }()
				defer func() { cancel(); host.Close(); <-done }()
				dev, err := bk7231.Connect(context.Background(), host, bk7231.Options{LinkTimeout: 5 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				before := sim.Flash()
				err = writeFirmware(context.Background(), dev, tc.file, tc.opts)
				after := sim.Flash()
				if tc.refused {
					if !errors.Is(err, flasher.ErrRefused) {
						t.Fatalf("err = %v, want a refusal", err)
					}
					if !bytes.Equal(before, after) {
						t.Fatal("the flash changed after a refusal")
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				want := append([]byte(nil), before...)
				copy(want[tc.at:], tc.img)
				if !bytes.Equal(after, want) {
					t.Fatal("the flash does not hold the image where the rules put it (or bytes around it changed)")
				}
			})
		})
	}
}
