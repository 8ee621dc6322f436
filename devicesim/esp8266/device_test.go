package espsim

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"math/bits"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tuyaflash/tuyaflash/transport"
)

func TestParseChip(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Chip
		ok   bool
	}{{"esp8266", ESP8266, true}, {"ESP8285", ESP8285, true}, {" esp8266 ", ESP8266, true}, {"bk7231n", 0, false}, {"", 0, false}} {
		c, err := ParseChip(tt.in)
		if (err == nil) != tt.ok || (tt.ok && c != tt.want) {
			t.Errorf("ParseChip(%q) = %v, %v", tt.in, c, err)
		}
		if tt.ok && c.String() != strings.ToLower(strings.TrimSpace(tt.in)) {
			t.Errorf("String() = %q", c.String())
		}
	}
}

func TestNewValidates(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"unknown chip", Config{Chip: 7}},
		{"flash not a power of two", Config{Flash: make([]byte, 3*mib)}},
		{"flash too small", Config{Flash: make([]byte, 64*kib)}},
		{"ESP8285 with 8 MiB", Config{Chip: ESP8285, Flash: make([]byte, 8*mib)}},
		{"crystal", Config{Crystal: 24}},
		{"fault rate", Config{Faults: Faults{DropRate: 1.5}}},
		{"duplicate rate", Config{Faults: Faults{RxDupRate: -0.1}}},
		{"power-loss fraction", Config{Faults: Faults{PowerLossFraction: 2}}},
		{"flash operation kind", Config{Faults: Faults{PowerLossOp: 7}}},
		{"negative command number", Config{Faults: Faults{ResetAtCommand: -1}}},
		{"stub model", Config{Stub: 9}},
		{"console rate", Config{AppBaud: 100}},
	} {
		if _, err := New(tt.cfg); err == nil {
			t.Errorf("%s: New accepted %+v", tt.name, tt.cfg.Faults)
		}
	}
	if _, err := New(Config{Chip: ESP8285}); err != nil {
		t.Errorf("default ESP8285: %v", err)
	}
}

// parseImage checks a V1 ESP8266 image as reference §11.1 describes it.
func parseImage(t *testing.T, b []byte) (entry uint32, segs int) {
	t.Helper()
	if b[0] != 0xE9 || b[1] == 0 || b[1] > 16 {
		t.Fatalf("header % X", b[:8])
	}
	p, sum := 8, byte(0xEF)
	for i := 0; i < int(b[1]); i++ {
		n := int(getLE32(b[p+4:]))
		for _, v := range b[p+8 : p+8+n] {
			sum ^= v
		}
		p += 8 + n
	}
	for p%16 != 15 {
		if b[p] != 0 {
			t.Fatalf("padding byte %#x at %d", b[p], p)
		}
		p++
	}
	if b[p] != sum {
		t.Fatalf("checksum %#x, computed %#x", b[p], sum)
	}
	return getLE32(b[4:]), int(b[1])
}

// faultSession runs a fixed exchange and returns every byte the host
// received.
func faultSession(t *testing.T, seed int64, faulty bool) (got []byte) {
	cfg := Config{Seed: seed}
	if faulty {
		cfg.Faults = Faults{DropRate: 0.02, CorruptRate: 0.02, DupRate: 0.02, RxDropRate: 0.01, RxDupRate: 0.005, RxCorruptRate: 0.005,
			Delay: 30 * time.Millisecond, DelayRate: 0.3, FaultAfter: 100}
	}
	runSim(t, cfg, simOpts{}, func(h *host) {
		for i := range 40 {
			h.send(opReadReg, words(0x3FF00050+4*uint32(i%4)), 0)
			time.Sleep(100 * time.Millisecond)
		}
		h.send(opSync, syncPayloadForTest(), 0)
		time.Sleep(time.Second)
		for h.fill(100 * time.Millisecond) {
		}
		got = h.buf
	})
	return got
}

// TestFaultsDeterministic: the same seed gives the same damaged stream, a
// different seed a different one, and the damage is really there.
func TestFaultsDeterministic(t *testing.T) {
	a, b, c := faultSession(t, 7, true), faultSession(t, 7, true), faultSession(t, 8, true)
	clean := faultSession(t, 7, false)
	if !bytes.Equal(a, b) {
		t.Error("same seed, different bytes")
	}
	if bytes.Equal(a, c) {
		t.Error("different seeds, same bytes")
	}
	if want := 48 * 12; len(clean) != want {
		t.Errorf("fault-free session: %d bytes, want %d", len(clean), want)
	}
	if bytes.Equal(a, clean) || !bytes.Equal(a[:12], clean[:12]) {
		t.Error("faults missing, or active before FaultAfter")
	}
}

// TestDisconnectAfter: the chip closes the line once it has received the
// configured byte count; Serve reports ErrDisconnected.
func TestDisconnectAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, _ := New(Config{Faults: Faults{DisconnectAfter: 100}})
		hp, dp := transport.Pipe(transport.LinkOptions{})
		done := make(chan error, 1)
		go func() { done <- d.Serve(context.Background(), dp) }()
		h := &host{t: t, p: hp, d: d}
		h.discardInput()
		if rs := h.sync(); len(rs) != 8 { // 46 bytes
			t.Fatalf("%d sync replies", len(rs))
		}
		h.send(opSync, syncPayloadForTest(), 0) // 92
		h.send(opSync, syncPayloadForTest(), 0) // crosses 100
		if err := <-done; !errors.Is(err, ErrDisconnected) {
			t.Fatalf("Serve: %v", err)
		}
		if n := d.Stats().BytesIn; n != 100 {
			t.Errorf("BytesIn %d", n)
		}
		if _, err := hp.Write([]byte{0xC0}); err == nil {
			t.Error("host can still write after the disconnect")
		}
	})
}

// TestCorruptFlashWriteAt: a stuck bit survives the stub's write, so the
// MD5 differs; the ROM's read-back reports it as error 0x08.
func TestCorruptFlashWriteAt(t *testing.T) {
	const off, stuck = 0x20000, 0x20123
	img := firmware(0x4000, 4)
	runSim(t, Config{Faults: Faults{CorruptFlashWriteAt: stuck}}, simOpts{}, func(h *host) {
		h.uploadStub()
		h.deflWrite(off, img)
		want := md5.Sum(img)
		if got := h.md5(off, uint32(len(img))); bytes.Equal(got, want[:]) {
			t.Error("MD5 matches despite the stuck bit")
		}
		f := h.d.Flash()
		if f[stuck] == img[stuck-off] || !bytes.Equal(f[off:stuck], img[:stuck-off]) {
			t.Errorf("flash %#x, image %#x", f[stuck], img[stuck-off])
		}
	})
	runSim(t, Config{Faults: Faults{CorruptFlashWriteAt: stuck}}, simOpts{}, func(h *host) {
		h.ok(opFlashBegin, words(0x1000, 16, 0x100, off), 0)
		for seq, want := range [][2]byte{{0, 0}, {1, 0x08}} {
			blk := img[seq*0x100 : (seq+1)*0x100]
			h.write(encode(dataPacket(opFlashData, uint32(seq), blk)))
			if r := h.reply(opFlashData); r.status != want {
				t.Errorf("ROM block %d (stuck bit at 0x%X): % X, want % X", seq, stuck, r.status, want)
			}
		}
	})
}

// TestServeRestart: Serve returns promptly when its context ends and can
// run again with the chip's state kept; a second concurrent Serve is
// refused.
func TestServeRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, _ := New(Config{})
		hp, dp := transport.Pipe(transport.LinkOptions{})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Serve(ctx, dp) }()
		h := &host{t: t, p: hp, d: d}
		h.discardInput()
		h.uploadStub()
		if err := d.Serve(context.Background(), dp); !errors.Is(err, ErrBusy) {
			t.Errorf("second Serve: %v", err)
		}
		start := time.Now()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve after cancel: %v", err)
		}
		if el := time.Since(start); el > 50*time.Millisecond {
			t.Errorf("Serve took %v to stop", el)
		}
		ctx, cancel = context.WithCancel(context.Background())
		go func() { done <- d.Serve(ctx, dp) }()
		if rs := h.sync(); len(rs) != 8 || rs[0].value != 0 {
			t.Errorf("after restart: %d replies (stub expected)", len(rs))
		}
		cancel()
		<-done
	})
}

// TestTiming: datasheet timings make the ROM's up-front erase and the
// stub's erase take the modelled time.
func TestTiming(t *testing.T) {
	runSim(t, Config{Timing: true}, simOpts{}, func(h *host) {
		// esptool#380: 236 544 bytes at 0 took 1.93 s on real hardware.
		start := time.Now()
		h.ok(opFlashBegin, words(esptoolEraseSize(0, 236544), 231, 0x400, 0), 0)
		if el := time.Since(start); el < 1400*time.Millisecond || el > 1600*time.Millisecond {
			t.Errorf("ROM erase of 58 sectors took %v, want ≈1.47 s", el)
		}
		h.uploadStub()
		start = time.Now()
		h.ok(opEraseRegion, words(0x10000, 0x10000), 0)
		if el := time.Since(start); el < 150*time.Millisecond || el > 200*time.Millisecond {
			t.Errorf("64 KiB erase took %v", el)
		}
		start = time.Now()
		h.md5(0, mib)
		if el := time.Since(start); el < 1500*time.Millisecond || el > 1700*time.Millisecond {
			t.Errorf("1 MiB MD5 took %v", el)
		}
		// Chip erase: W25Q32FV tCE 10 s for 4 MiB, 2.5 s for 1 MiB.
		start = time.Now()
		h.ok(opEraseFlash, nil, 0)
		if el := time.Since(start); el < 2500*time.Millisecond || el > 2600*time.Millisecond {
			t.Errorf("1 MiB chip erase took %v", el)
		}
	})
}

// TestReplyTiming: tuyaflash's stub answers FLASH_DATA after its work (4
// sector erases and 64 page programs: 0.2248 s); esp-flasher-stub
// answers at once and the next command waits for the work.
func TestReplyTiming(t *testing.T) {
	const work = 4*45*time.Millisecond + 64*700*time.Microsecond
	for _, tt := range []struct {
		model      StubModel
		data, next time.Duration
	}{
		{StubTuyaflash, work, 0},
		{StubEsptool, 0, work - 45*time.Millisecond}, // the first erase ran before FLASH_BEGIN's reply
	} {
		t.Run(tt.model.String(), func(t *testing.T) {
			runSim(t, Config{Timing: true, Stub: tt.model}, simOpts{}, func(h *host) {
				h.uploadStub()
				img := firmware(0x4000, 6)
				h.ok(opFlashBegin, words(0x4000, 1, 0x4000, 0x20000, 0), 0)
				start := time.Now()
				h.ok(opFlashData, append(words(0x4000, 0, 0, 0), img...), checksum(img))
				data := time.Since(start)
				start = time.Now()
				h.readReg(0x40001000)
				next := time.Since(start)
				near := func(got, want time.Duration) bool { return got >= want && got < want+30*time.Millisecond }
				if !near(data, tt.data) || !near(next, tt.next) {
					t.Errorf("FLASH_DATA answered after %v (want %v), the next command after %v (want %v)", data, tt.data, next, tt.next)
				}
			})
		})
	}
}

// TestPowerCycleDuringCommand: a power cycle 1 s into a 2.5 s chip erase
// ends the stub session, the chip comes back in the ROM, and the flash is
// left partly erased: about 40 % of its bits set, no sector blank, none
// untouched.
func TestPowerCycleDuringCommand(t *testing.T) {
	runSim(t, Config{Timing: true, Flash: filled(mib, 0)}, simOpts{}, func(h *host) {
		h.uploadStub()
		h.send(opEraseFlash, nil, 0)
		time.Sleep(time.Second)
		h.d.PowerCycle(true)
		h.discardInput()
		if rs := h.sync(); len(rs) != 8 || rs[0].value != 0x20120707 {
			t.Fatalf("after power cycle: %d replies", len(rs))
		}
		f := h.d.Flash()
		if n := len(erasedSectors(f)); n != 0 {
			t.Errorf("%d sectors blank after an interrupted chip erase", n)
		}
		if frac := setBits(f); frac < 0.35 || frac > 0.45 {
			t.Errorf("%.3f of the bits set, want about 0.4 (1 s of 2.5 s)", frac)
		}
		for i := 0; i < len(f); i += 0x1000 {
			if bytes.Count(f[i:i+0x1000], []byte{0}) == 0x1000 {
				t.Fatalf("sector 0x%X untouched", i)
			}
		}
		if st := h.d.Stats(); st.Resets != 1 || st.Mode != "rom" {
			t.Errorf("stats %+v", st)
		}
	})
}

// setBits is the fraction of 1 bits in b.
func setBits(b []byte) float64 {
	n := 0
	for _, v := range b {
		n += bits.OnesCount8(v)
	}
	return float64(n) / float64(8*len(b))
}

// TestLog: one line per command.
func TestLog(t *testing.T) {
	var log bytes.Buffer
	runSim(t, Config{Log: &log}, simOpts{}, func(h *host) {
		h.readReg(0x40001000)
		h.do(opSPIAttach, words(0), 0)
	})
	s := log.String()
	for _, want := range []string{"rom  READ_REG 0x40001000 = 0xFFF0C101 -> ok", "rom  SPI_ATTACH", "error 0x05", "rst cause 1"} {
		if !strings.Contains(s, want) {
			t.Errorf("log lacks %q:\n%s", want, s)
		}
	}
}
