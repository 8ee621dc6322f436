package espsim

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tuyaflash/tuyaflash/transport"
)

// TestPowerLossDuringErase: the power fails halfway through a 64 KiB
// block erase: the block is left half erased (about half its bits set,
// no sector blank), nothing else changes, no reply comes, the chip is off
// for PowerOffTime and then the ROM loader is back (GPIO0 still held).
func TestPowerLossDuringErase(t *testing.T) {
	cfg := Config{Flash: filled(mib, 0), Seed: 3, Faults: Faults{PowerLossAt: 1, PowerLossOp: EraseOp, PowerLossFraction: 0.5, PowerOffTime: 2 * time.Second}}
	runSim(t, cfg, simOpts{}, func(h *host) {
		h.uploadStub()
		h.send(opEraseRegion, words(0x20000, 0x10000), 0)
		if f, ok := h.frame(time.Second); ok {
			t.Fatalf("an answer despite the power loss: % X", f)
		}
		if m := h.d.Stats().Mode; m != "off" {
			t.Fatalf("mode %s during the power loss", m)
		}
		if rs := h.sync(); len(rs) != 0 {
			t.Error("the chip answered while off")
		}
		time.Sleep(2 * time.Second)
		h.discardInput()
		if rs := h.sync(); len(rs) != 8 || rs[0].value != 0x20120707 {
			t.Fatalf("after the power returned: %d ROM replies", len(rs))
		}
		f := h.d.Flash()
		block := f[0x20000:0x30000]
		if frac := setBits(block); frac < 0.45 || frac > 0.55 {
			t.Errorf("%.3f of the block's bits set, want about half", frac)
		}
		if n := len(erasedSectors(block)); n != 0 {
			t.Errorf("%d sectors of the interrupted block read blank", n)
		}
		if bytes.ContainsFunc(f[:0x20000], func(r rune) bool { return r != 0 }) || bytes.ContainsFunc(f[0x30000:], func(r rune) bool { return r != 0 }) {
			t.Error("bytes outside the block changed")
		}
	})
}

// TestPowerLossDuringProgram: the power fails halfway through the second
// page program of a ROM FLASH_DATA: the first page holds its data, the
// second is half programmed (data bits kept, about half the bits it had
// to clear cleared), the rest never started.
func TestPowerLossDuringProgram(t *testing.T) {
	cfg := Config{Seed: 5, Faults: Faults{PowerLossAt: 2, PowerLossOp: ProgramOp, PowerLossFraction: 0.5}}
	runSim(t, cfg, simOpts{}, func(h *host) {
		img := bytes.Repeat([]byte{0x00}, 0x400)
		const off = 0x40000
		h.ok(opFlashBegin, words(0x1000, 1, 0x400, off), 0)
		h.write(encode(dataPacket(opFlashData, 0, img)))
		if f, ok := h.frame(time.Second); ok {
			t.Fatalf("an answer despite the power loss: % X", f)
		}
		f := h.d.Flash()[off : off+0x400]
		if !bytes.Equal(f[:0x100], img[:0x100]) {
			t.Error("the first page is not programmed")
		}
		if frac := setBits(f[0x100:0x200]); frac < 0.4 || frac > 0.6 {
			t.Errorf("second page: %.3f of the bits still set, want about half", frac)
		}
		if !bytes.Equal(f[0x200:], filled(0x200, 0xFF)) {
			t.Error("pages after the interrupted one changed")
		}
		h.discardInput()
		if rs := h.sync(); len(rs) != 8 {
			t.Errorf("after the power loss: %d ROM replies", len(rs))
		}
	})
}

// TestPowerLossReproducible: with a seeded random fraction, the same seed
// leaves the same flash and another seed another one.
func TestPowerLossReproducible(t *testing.T) {
	run := func(seed int64) []byte {
		var f []byte
		cfg := Config{Flash: filled(mib, 0), Seed: seed, Faults: Faults{PowerLossAt: 3}}
		runSim(t, cfg, simOpts{}, func(h *host) {
			h.uploadStub()
			h.send(opEraseRegion, words(0, 0x3000), 0)
			time.Sleep(time.Second)
			f = h.d.Flash()[:0x3000]
		})
		return f
	}
	a, b, c := run(1), run(1), run(2)
	if !bytes.Equal(a, b) || bytes.Equal(a, c) {
		t.Errorf("same seed same flash %v, other seed other flash %v", bytes.Equal(a, b), !bytes.Equal(a, c))
	}
	if !bytes.Equal(a[:0x2000], filled(0x2000, 0xFF)) || bytes.Equal(a[0x2000:], filled(0x1000, 0xFF)) {
		t.Error("want two sectors erased and the third interrupted")
	}
}

// TestTimedPowerCycleDuringWrite: a power cycle while a timed write runs
// (tuyaflash's stub: per staged 4 KiB, a 45 ms sector erase and 16 page
// programs of 0.7 ms) leaves the sectors done written and the sector in
// progress half erased.
func TestTimedPowerCycleDuringWrite(t *testing.T) {
	runSim(t, Config{Timing: true, Flash: filled(mib, 0)}, simOpts{}, func(h *host) {
		h.uploadStub()
		img := firmware(0x4000, 8)
		h.ok(opFlashBegin, words(0x4000, 1, 0x4000, 0x10000), 0)
		h.write(encode(dataPacket(opFlashData, 0, img)))
		// Three sectors take 3 × 56.2 ms; the fourth erase is half done
		// at 191 ms.
		time.Sleep(191 * time.Millisecond)
		h.d.PowerCycle(true)
		time.Sleep(100 * time.Millisecond)
		f := h.d.Flash()[0x10000:0x14000]
		if !bytes.Equal(f[:0x3000], img[:0x3000]) {
			t.Error("the sectors written before the power cycle differ")
		}
		if frac := setBits(f[0x3000:]); frac < 0.35 || frac > 0.65 {
			t.Errorf("the fourth sector: %.3f of its bits set, want about half", frac)
		}
		if st := h.d.Stats(); st.Mode != "rom" {
			t.Errorf("mode %s", st.Mode)
		}
	})
}

// TestResetDuringCommand: an EN reset while the chip works on command n:
// no reply; with GPIO0 held the ROM loader answers again; a write under
// way is left partly done.
func TestResetDuringCommand(t *testing.T) {
	t.Run("READ_REG", func(t *testing.T) {
		runSim(t, Config{Faults: Faults{ResetAtCommand: 2}}, simOpts{}, func(h *host) {
			h.readReg(0x40001000) // command 1
			h.send(opReadReg, words(0x40001000), 0)
			if f, ok := h.frame(time.Second); ok {
				t.Fatalf("an answer despite the reset: % X", f)
			}
			h.discardInput()
			if v := h.readReg(0x40001000); v != 0xFFF0C101 {
				t.Errorf("after the reset: %#x", v)
			}
			if st := h.d.Stats(); st.Resets != 1 || st.Mode != "rom" {
				t.Errorf("stats %+v", st)
			}
		})
	})
	t.Run("GPIO0 released", func(t *testing.T) {
		app := &fakeApp{}
		runSim(t, Config{App: app, Faults: Faults{ResetAtCommand: 1}}, simOpts{}, func(h *host) {
			h.d.SetGPIO0(false)
			h.send(opReadReg, words(0x40001000), 0)
			time.Sleep(time.Second)
			if b, _ := app.counts(); b != 1 || h.d.Stats().Mode != "app" {
				t.Errorf("reset with GPIO0 released: %d boots, mode %s", b, h.d.Stats().Mode)
			}
		})
	})
	t.Run("write in the stub", func(t *testing.T) {
		img := firmware(0x4000, 4)
		// Commands: MEM_BEGIN, 2 × MEM_DATA, MEM_END, FLASH_BEGIN, FLASH_DATA.
		runSim(t, Config{Seed: 9, Flash: filled(mib, 0x5A), Faults: Faults{ResetAtCommand: 6}}, simOpts{}, func(h *host) {
			h.uploadStub()
			h.ok(opFlashBegin, words(0x4000, 1, 0x4000, 0x30000), 0)
			h.write(encode(dataPacket(opFlashData, 0, img)))
			if f, ok := h.frame(time.Second); ok {
				t.Fatalf("an answer despite the reset: % X", f)
			}
			h.discardInput()
			if rs := h.sync(); len(rs) != 8 || rs[0].value != 0x20120707 {
				t.Fatalf("after the reset: %d ROM replies", len(rs))
			}
			f := h.d.Flash()[0x30000:0x34000]
			if bytes.Equal(f, img) || bytes.Equal(f, filled(0x4000, 0x5A)) || bytes.Equal(f, filled(0x4000, 0xFF)) {
				t.Error("the write was not left partly done")
			}
		})
	})
}

// TestLineFaults: each byte fault, at full rate, does what it says.
func TestLineFaults(t *testing.T) {
	syncReply := encode(packetResp(opSync, 0x20120707))
	tests := []struct {
		name   string
		faults Faults
		check  func(t *testing.T, got []byte, st Stats)
	}{
		{"chip bytes duplicated", Faults{DupRate: 1}, func(t *testing.T, got []byte, _ Stats) {
			var want []byte
			for range 8 {
				for _, b := range syncReply {
					want = append(want, b, b)
				}
			}
			if !bytes.Equal(got, want) {
				t.Errorf("got % X", got[:min(len(got), 40)])
			}
		}},
		{"host bytes duplicated", Faults{RxDupRate: 1}, func(t *testing.T, got []byte, st Stats) {
			if bytes.Contains(got, syncReply) || st.Commands["SYNC"] != 0 {
				t.Errorf("a doubled SYNC was understood: %v", st.Commands)
			}
		}},
		{"host bytes corrupted", Faults{RxCorruptRate: 1}, func(t *testing.T, got []byte, st Stats) {
			if bytes.Contains(got, syncReply) || st.Commands["SYNC"] != 0 {
				t.Errorf("a corrupted SYNC was understood: %v", st.Commands)
			}
		}},
		{"host bytes corrupted after 46", Faults{RxCorruptRate: 1, FaultAfter: 46}, func(t *testing.T, got []byte, st Stats) {
			if !bytes.Equal(got, bytes.Repeat(syncReply, 8)) || st.Commands["SYNC"] != 1 {
				t.Errorf("the first SYNC: %v", st.Commands)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runSim(t, Config{Faults: tt.faults}, simOpts{}, func(h *host) {
				h.send(opSync, syncPayloadForTest(), 0)
				h.send(opSync, syncPayloadForTest(), 0)
				time.Sleep(time.Second)
				for h.fill(100 * time.Millisecond) {
				}
				if tt.name == "host bytes corrupted after 46" {
					h.buf = h.buf[:min(len(h.buf), 8*len(syncReply))]
				} else if tt.name == "chip bytes duplicated" {
					h.buf = h.buf[:min(len(h.buf), 16*len(syncReply))]
				}
				tt.check(t, h.buf, h.d.Stats())
			})
		})
	}
}

// packetResp is an OK response with value v and no data.
func packetResp(op byte, v uint32) []byte {
	return append([]byte{0x01, op, 2, 0}, append(words(v), 0, 0)...)
}

// TestDelayedReply: the reply to command n comes Delay late (past a
// host's timeout); the others at once.
func TestDelayedReply(t *testing.T) {
	runSim(t, Config{Faults: Faults{DelayAtCommand: 2, Delay: 4 * time.Second}}, simOpts{}, func(h *host) {
		for i, want := range []time.Duration{0, 4 * time.Second, 0} {
			start := time.Now()
			h.readReg(0x40001000)
			if el := time.Since(start); el < want || el > want+time.Second {
				t.Errorf("command %d answered after %v, want %v", i+1, el, want)
			}
		}
	})
}

// unplugPort is a pipe end with the adapter-unplug hook issue 11 adds to
// transport's ports (Unplug()).
type unplugPort struct {
	*transport.PipePort
	mu    sync.Mutex
	calls int
}

func (u *unplugPort) Unplug() {
	u.mu.Lock()
	u.calls++
	u.mu.Unlock()
	u.Close()
}

// unplugErrPort has the other accepted shape, Unplug() error.
type unplugErrPort struct{ unplugPort }

func (u *unplugErrPort) Unplug() error {
	u.unplugPort.Unplug()
	return nil
}

// TestUnplug: the unplug fault (and Device.Unplug) pull the adapter: the
// line's Unplug is called, Serve returns ErrUnplugged, the module lost
// power — an erase under way is left partly done — and the next Serve
// finds it in download mode again.
func TestUnplug(t *testing.T) {
	for i, viaMethod := range []bool{false, true, false} {
		synctest.Test(t, func(t *testing.T) {
			cfg := Config{Timing: true, Flash: filled(mib, 0)}
			if !viaMethod {
				cfg.Faults.UnplugAfter = 60
			}
			d, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			hp, dp := transport.Pipe(transport.LinkOptions{})
			up := &unplugPort{PipePort: dp}
			var line Line = up
			if i == 2 {
				ue := &unplugErrPort{unplugPort{PipePort: dp}}
				line, up = ue, &ue.unplugPort
			}
			done := make(chan error, 1)
			go func() { done <- d.Serve(context.Background(), line) }()
			h := &host{t: t, p: hp, d: d}
			h.discardInput()
			if viaMethod {
				h.uploadStub()
				h.send(opEraseRegion, words(0, 0x10000), 0)
				time.Sleep(75 * time.Millisecond)
				if !d.Unplug() {
					t.Fatal("Unplug reported no Serve")
				}
			} else {
				h.sync()
				h.send(opSync, syncPayloadForTest(), 0) // crosses 60 bytes
			}
			if err := <-done; !errors.Is(err, ErrUnplugged) {
				t.Fatalf("Serve: %v", err)
			}
			if up.calls != 1 {
				t.Errorf("Unplug called %d times", up.calls)
			}
			if viaMethod {
				if frac := setBits(d.Flash()[:0x10000]); frac < 0.4 || frac > 0.6 {
					t.Errorf("block erase cut at half time: %.3f of the bits set", frac)
				}
			}
			// Plugged in again.
			hp2, dp2 := transport.Pipe(transport.LinkOptions{})
			ctx, cancel := context.WithCancel(context.Background())
			go func() { done <- d.Serve(ctx, dp2) }()
			h2 := &host{t: t, p: hp2, d: d}
			h2.discardInput()
			if rs := h2.sync(); len(rs) != 8 || rs[0].value != 0x20120707 {
				t.Errorf("after plugging in again: %d ROM replies", len(rs))
			}
			cancel()
			<-done
			hp.Close()
			hp2.Close()
		})
	}
}

// TestUnplugWithoutHook: a line without Unplug is closed instead.
func TestUnplugWithoutHook(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, _ := New(Config{Faults: Faults{UnplugAfter: 10}})
		hp, dp := transport.Pipe(transport.LinkOptions{})
		done := make(chan error, 1)
		go func() { done <- d.Serve(context.Background(), dp) }()
		h := &host{t: t, p: hp, d: d}
		h.discardInput()
		h.send(opSync, syncPayloadForTest(), 0)
		if err := <-done; !errors.Is(err, ErrUnplugged) {
			t.Fatalf("Serve: %v", err)
		}
		if _, err := hp.Write([]byte{0xC0}); err == nil {
			t.Error("the line is still open")
		}
	})
}
