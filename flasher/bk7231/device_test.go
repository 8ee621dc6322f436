package bk7231

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"slices"
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
		{"N default", bksim.Config{Chip: bksim.BK7231N}, flasher.BK7231N, ProtoFull, "tuya", "EB6015", []string{"virtual device: bksim simulating BK7231N"}},
		{"N zero key", bksim.Config{Chip: bksim.BK7231N, ZeroEfuseKey: true, StatusReg: &zeroSR}, flasher.BK7231N, ProtoFull, "zero", "EB6015", []string{"eFuse encryption key is zero"}},
		{"N other flash", bksim.Config{Chip: bksim.BK7231N, FlashID: [3]byte{0x1C, 0x70, 0x15}}, flasher.BK7231N, ProtoFull, "tuya", "1C7015", nil},
		{"T default", bksim.Config{Chip: bksim.BK7231T}, flasher.BK7231T, ProtoBasicTuya, "", "", []string{"virtual device: bksim simulating BK7231T"}},
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

// TestVirtualIdentification: the identification command of contract C2
// goes out when the bootloader is not in the table of real ones (the
// simulators' synthetic bootloaders are not) or when asked; a simulator's
// answer names it (no "unknown bootloader" warning), a real chip's
// unknown-command reply leaves it a real chip, and a BASIC bootloader still
// writes afterwards (the LinkCheck that follows clears any lock, §4.3).
func TestVirtualIdentification(t *testing.T) {
	const notInTable = "bootloader not in tuyaflash's table"
	t.Run("simulator", func(t *testing.T) {
		for _, chip := range []bksim.Chip{bksim.BK7231N, bksim.BK7231T} {
			synctest.Test(t, func(t *testing.T) {
				r, err := newRig(t, bksim.Config{Chip: chip, NetAddr: "127.84.0.9:4000"}, transport.LinkOptions{}, Options{})
				defer r.stop()
				if err != nil {
					t.Fatal(err)
				}
				i := r.dev.Info()
				if v := i.Virtual; v == nil || v.Sim != "bksim" || v.Chip != chip.String() || v.Net != "127.84.0.9:4000" {
					t.Fatalf("%s: virtual %+v", chip, v)
				}
				if !strings.Contains(i.Bootloader, "synthetic bootloader (bksim") || r.saw(notInTable) {
					t.Errorf("%s: bootloader %q, events %v", chip, i.Bootloader, r.events)
				}
				if n := r.sim.Stats().Commands["Identify"]; n != 1 {
					t.Errorf("%s: asked %d times", chip, n)
				}
			})
		}
	})
	tests := []struct {
		chip    string
		ask     bool
		sent    int
		warning bool
	}{
		{"BK7231N", false, 0, false}, // a known bootloader: not asked
		{"BK7231N", true, 1, false},  // asked (a demo image, a pty)
		{"BK7231M", false, 1, true},  // an unknown bootloader: asked, a real chip
		{"BK7231U", true, 1, false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s ask=%v", tc.chip, tc.ask), func(t *testing.T) {
			f := profile(tc.chip, 2<<20, 0x1E0000)
			if tc.chip == "BK7231M" {
				f = profile(tc.chip, 2<<20, 0x1D0000)
			}
			withFake(t, f, Options{AskVirtual: tc.ask}, func(t *testing.T, r *fakeRig, err error) {
				if err != nil {
					t.Fatal(err)
				}
				if v := r.dev.Info().Virtual; v != nil {
					t.Errorf("a real chip taken for virtual: %+v", v)
				}
				if n := f.count("VirtualQuery"); n != tc.sent {
					t.Errorf("identification sent %d times, want %d", n, tc.sent)
				}
				if r.saw(notInTable) != tc.warning {
					t.Errorf("warning %q: %v, want %v (%v)", notInTable, r.saw(notInTable), tc.warning, r.events)
				}
				data := bytes.Repeat([]byte{0x5A}, sectorSize)
				if _, err := r.dev.Write(context.Background(), 0x100000, data, nil); err != nil {
					t.Fatalf("write after the question: %v", err)
				}
				if !bytes.Equal(f.Flash()[0x100000:0x101000], data) {
					t.Error("the write did not land")
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

// baudWatch records each SetBaudRate frame (short command 0x0F:
// 01 E0 FC 06 0F baud:u32le delay:u8, reference §3) that leaves the host:
// the rate it asks for and the host's line rate it went out at.
type baudWatch struct {
	transport.Port
	asked, sentAt []int
}

func (w *baudWatch) Write(p []byte) (int, error) {
	if i := bytes.Index(p, []byte{0x01, 0xE0, 0xFC, 0x06, 0x0F}); i >= 0 && len(p) >= i+9 {
		w.asked = append(w.asked, int(binary.LittleEndian.Uint32(p[i+5:])))
		w.sentAt = append(w.sentAt, w.Port.BaudRate())
	}
	return w.Port.Write(p)
}

// TestBaudFallbackToTheLinkRate: behind a CH340 whose wiring garbles
// everything above 200000 baud only 115200 works, and the negotiation
// ends there — and every step down goes back to the link's rate first,
// so that no SetBaudRate goes out at a rate that garbles it (on a
// pseudo-terminal the fault campaign saw the step to 230400, sent at
// 460800, come back garbled and the chip lost: campaign seed 16). The
// wire is watched: the rate each SetBaudRate left the host at.
func TestBaudFallbackToTheLinkRate(t *testing.T) {
	ch340, err := transport.ParseAdapter("ch340")
	if err != nil {
		t.Fatal(err)
	}
	const garblesAbove = 200000
	synctest.Test(t, func(t *testing.T) {
		sim, err := bksim.New(bksim.Config{Chip: bksim.BK7231N, AutoReset: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		host, devEnd := transport.Pipe(transport.LinkOptions{Paced: true, Adapter: ch340, MaxBaud: garblesAbove})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { sim.Serve(ctx, devEnd); close(done) }()
		defer func() { cancel(); host.Close(); <-done }()
		w := &baudWatch{Port: host}
		dev, err := Connect(context.Background(), w, Options{Baud: 921600, LinkTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if got := dev.Info().Baud; got != LinkBaud {
			t.Fatalf("baud %d, want %d", got, LinkBaud)
		}
		// 921600, 460800 and 230400 were each asked for, and each at
		// 115200, where the chip listens. (Going back to 115200 from a
		// rate the chip took is asked at that rate: nothing else reaches
		// it.)
		var up []int
		for i, b := range w.asked {
			if b <= LinkBaud {
				continue
			}
			up = append(up, b)
			if w.sentAt[i] > garblesAbove {
				t.Errorf("the step to %d baud went out at %d baud, a rate this link garbles (asked %v at %v)", b, w.sentAt[i], w.asked, w.sentAt)
			}
		}
		if want := []int{921600, 460800, 230400}; !slices.Equal(up, want) {
			t.Errorf("rates asked for %v, want %v", up, want)
		}
		var buf bytes.Buffer
		if err := dev.Read(context.Background(), 0, 0x10000, &buf, nil); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), sim.Flash()[:0x10000]) {
			t.Fatal("read at the fallback rate differs")
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
