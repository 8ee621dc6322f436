package bk7231

import (
	"bytes"
	"context"
	"errors"
	"math/rand"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	bksim "github.com/tuyaflash/tuyaflash/devicesim/bk7231"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/transport"
)

// rig runs a simulated chip on an in-memory link.
type rig struct {
	sim    *bksim.Device
	host   *transport.PipePort
	dev    *Device
	events []flasher.Event
	stop   func()
}

func newRig(t *testing.T, cfg bksim.Config, link transport.LinkOptions, opts Options) (*rig, error) {
	t.Helper()
	if cfg.AutoReset == 0 {
		cfg.AutoReset = 20 * time.Millisecond
	}
	sim, err := bksim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	host, devEnd := transport.Pipe(link)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { sim.Serve(ctx, devEnd); close(done) }()
	r := &rig{sim: sim, host: host}
	r.stop = func() { cancel(); host.Close(); <-done }
	opts.Events = func(e flasher.Event) { r.events = append(r.events, e) }
	if opts.LinkTimeout == 0 {
		opts.LinkTimeout = 5 * time.Second
	}
	dev, err := Connect(context.Background(), host, opts)
	r.dev = dev
	return r, err
}

func (r *rig) saw(sub string) bool {
	for _, e := range r.events {
		if strings.Contains(e.Message, sub) {
			return true
		}
	}
	return false
}

func TestIdentify(t *testing.T) {
	zeroSR := uint16(0)
	tests := []struct {
		name     string
		cfg      bksim.Config
		family   flasher.Family
		proto    Protocol
		efuse    string
		flashID  string
		warnings []string
	}{
		{"N default", bksim.Config{Chip: bksim.BK7231N}, flasher.BK7231N, ProtoFull, "tuya", "EB6015", []string{"bootloader not in tuyaflash's table"}},
		{"N zero key", bksim.Config{Chip: bksim.BK7231N, ZeroEfuseKey: true, StatusReg: &zeroSR}, flasher.BK7231N, ProtoFull, "zero", "EB6015", []string{"eFuse encryption key is zero"}},
		{"N other flash", bksim.Config{Chip: bksim.BK7231N, FlashID: [3]byte{0x1C, 0x70, 0x15}}, flasher.BK7231N, ProtoFull, "tuya", "1C7015", nil},
		{"T default", bksim.Config{Chip: bksim.BK7231T}, flasher.BK7231T, ProtoBasicTuya, "", "", []string{"bootloader not in tuyaflash's table"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r, err := newRig(t, tc.cfg, transport.LinkOptions{}, Options{})
				defer r.stop()
				if err != nil {
					t.Fatal(err)
				}
				info := r.dev.Info()
				if info.Family != tc.family || r.dev.Protocol() != tc.proto || info.EfuseKey != tc.efuse || info.FlashIDString() != tc.flashID {
					t.Errorf("info %+v proto %v", info, r.dev.Protocol())
				}
				if info.MAC != flasher.MAC(bksim.DefaultMAC) {
					t.Errorf("MAC %s, want %s", info.MAC, flasher.MAC(bksim.DefaultMAC))
				}
				for _, w := range tc.warnings {
					if !r.saw(w) {
						t.Errorf("no event %q in %v", w, r.events)
					}
				}
			})
		})
	}
}

// TestUnprotect: a protected N flash is cleared once; an unprotected one is
// never written (a needless WRSR locks some parts, §7.3).
func TestUnprotect(t *testing.T) {
	protected, clear := uint16(0x4004), uint16(0)
	tests := []struct {
		name    string
		sr      *uint16
		wantSRW int
	}{
		{"protected", &protected, 1},
		{"already clear", &clear, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r, err := newRig(t, bksim.Config{Chip: bksim.BK7231N, StatusReg: tc.sr, LockOnNoopSRWrite: true}, transport.LinkOptions{}, Options{})
				defer r.stop()
				if err != nil {
					t.Fatal(err)
				}
				img := bytes.Repeat([]byte{0x12, 0x34}, 4096)
				res, err := r.dev.Write(context.Background(), 0x100000, img, nil)
				if err != nil || !res.Verified {
					t.Fatalf("write: %v %+v", err, res)
				}
				st := r.sim.Stats()
				if st.SRLocked {
					t.Fatal("status register locked by tuyaflash")
				}
				if got := st.Commands["FlashWriteSR"]; got != tc.wantSRW {
					t.Errorf("status register written %d times, want %d", got, tc.wantSRW)
				}
				if !bytes.Equal(r.sim.Flash()[0x100000:0x100000+len(img)], img) {
					t.Fatal("flash does not hold the image")
				}
			})
		})
	}
}

// TestWriteOnTAfterCRC: the T bootloader re-protects the flash after every
// CheckCRC; writes after a backup must still land (§4.3).
func TestWriteOnTAfterCRC(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, err := newRig(t, bksim.Config{Chip: bksim.BK7231T}, transport.LinkOptions{}, Options{})
		defer r.stop()
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := r.dev.Read(context.Background(), 0x11000, 0x10000, &buf, nil); err != nil {
			t.Fatal(err)
		}
		before := r.sim.Flash()
		img := make([]byte, 0x12345)
		rand.New(rand.NewSource(1)).Read(img)
		if _, err := r.dev.Write(context.Background(), 0x20000, img, nil); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(r.sim.Flash()[0x20000:0x20000+len(img)], img) {
			t.Fatal("write after CRC did not land")
		}
		// Unaligned tail: the rest of the last sector is kept.
		end := 0x20000 + len(img)
		if after := r.sim.Flash(); !bytes.Equal(after[end:end+0x1000], before[end:end+0x1000]) {
			t.Fatal("the bytes after an unaligned image changed")
		}
	})
}

// TestWriteKeepsNeighbours: an unaligned write leaves the bytes around it
// in the same sectors untouched (read-modify-write).
func TestWriteKeepsNeighbours(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, err := newRig(t, bksim.Config{Chip: bksim.BK7231N}, transport.LinkOptions{}, Options{})
		defer r.stop()
		if err != nil {
			t.Fatal(err)
		}
		before := r.sim.Flash()
		img := bytes.Repeat([]byte{0xA5}, 5000)
		addr := uint32(0x150123)
		if _, err := r.dev.Write(context.Background(), addr, img, nil); err != nil {
			t.Fatal(err)
		}
		after := r.sim.Flash()
		want := append([]byte(nil), before...)
		copy(want[addr:], img)
		if !bytes.Equal(after, want) {
			t.Fatal("bytes outside the image changed")
		}
	})
}

func TestRefusals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, err := newRig(t, bksim.Config{Chip: bksim.BK7231T}, transport.LinkOptions{}, Options{})
		defer r.stop()
		if err != nil {
			t.Fatal(err)
		}
		before := r.sim.Flash()
		for _, tc := range []struct {
			addr uint32
			size int
			msg  string
		}{
			{0, 4096, "bootloader"},
			{0x10FFF, 2, "bootloader"},
			{0x1FF000, 8192, "does not fit"},
		} {
			_, err := r.dev.Write(context.Background(), tc.addr, make([]byte, tc.size), nil)
			if !errors.Is(err, flasher.ErrRefused) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("write %d at 0x%X: %v", tc.size, tc.addr, err)
			}
		}
		if !bytes.Equal(before, r.sim.Flash()) {
			t.Fatal("refused writes changed the flash")
		}
	})
}

func TestWrongFamilyRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, err := newRig(t, bksim.Config{Chip: bksim.BK7231N}, transport.LinkOptions{}, Options{Family: flasher.BK7231T})
		defer r.stop()
		if !errors.Is(err, flasher.ErrRefused) || !strings.Contains(err.Error(), "the chip is a BK7231N") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestNoLink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		host, _ := transport.Pipe(transport.LinkOptions{})
		var events []flasher.Event
		start := time.Now()
		_, err := Connect(context.Background(), host, Options{LinkTimeout: 3 * time.Second, Events: func(e flasher.Event) { events = append(events, e) }})
		if !errors.Is(err, flasher.ErrNoLink) || !strings.Contains(flasher.Hint(err), "RX/TX are crossed") {
			t.Fatalf("err = %v, hint %q", err, flasher.Hint(err))
		}
		if el := time.Since(start); el < 3*time.Second || el > 4*time.Second {
			t.Errorf("gave up after %v", el)
		}
		if len(events) == 0 || events[0].Kind != flasher.Action {
			t.Errorf("no power-cycle instruction: %v", events)
		}
	})
}

// TestBaudFallback: a link that garbles everything above 230400 (an
// adapter that cannot keep up) ends at the highest rate that works.
func TestBaudFallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, err := newRig(t, bksim.Config{Chip: bksim.BK7231N}, transport.LinkOptions{Paced: true, MaxBaud: 230400}, Options{Baud: 921600})
		defer r.stop()
		if err != nil {
			t.Fatal(err)
		}
		if got := r.dev.Info().Baud; got != 230400 {
			t.Fatalf("baud %d, want 230400", got)
		}
		if !r.saw("921600 did not work") {
			t.Errorf("no fallback warning: %v", r.events)
		}
		var buf bytes.Buffer
		if err := r.dev.Read(context.Background(), 0, 0x20000, &buf, nil); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), r.sim.Flash()[:0x20000]) {
			t.Fatal("read at the fallback rate differs")
		}
	})
}
