package espsim

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tuyaflash/tuyaflash/transport"
)

// TestReleaseAfterWrite: the bench user releases GPIO0 and power-cycles
// once the host has been quiet for ReleaseAfterWrite after a write; the
// firmware boots. Activity keeps the user waiting; a session without a
// write (a backup) never triggers it.
func TestReleaseAfterWrite(t *testing.T) {
	tests := []struct {
		name  string
		write bool
		boots int
	}{
		{"after a ROM write", true, 1},
		{"no write", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := &fakeApp{}
			runSim(t, Config{App: app, ReleaseAfterWrite: 2 * time.Second}, simOpts{}, func(h *host) {
				if tt.write {
					h.ok(opFlashBegin, words(0x1000, 1, 0x400, 0x40000), 0)
					h.ok(opFlashData, append(words(0x400, 0, 0, 0), filled(0x400, 0x42)...), checksum(filled(0x400, 0x42)))
				}
				// The host keeps talking for 5 s: nothing happens.
				for range 5 {
					time.Sleep(time.Second)
					h.readReg(0x40001000)
				}
				if b, _ := app.counts(); b != 0 {
					t.Fatal("the user power-cycled while the host was talking")
				}
				time.Sleep(1900 * time.Millisecond)
				if b, _ := app.counts(); b != 0 {
					t.Fatal("the user power-cycled before 2 s of quiet")
				}
				time.Sleep(200 * time.Millisecond)
				st := h.d.Stats()
				if b, _ := app.counts(); b != tt.boots || st.AppBoots != tt.boots {
					t.Fatalf("%d boots, want %d", b, tt.boots)
				}
				if tt.boots > 0 && (st.Mode != "app" || st.GPIO0Low) {
					t.Errorf("stats %+v", st)
				}
			})
		})
	}
}

// TestBenchCycle: write, release (the firmware runs, its console answers
// at 115200), then the tool syncs again and the user holds GPIO0 and
// power-cycles (AutoReset): the firmware is halted and the ROM answers.
func TestBenchCycle(t *testing.T) {
	app := &fakeApp{}
	cfg := Config{App: app, ReleaseAfterWrite: time.Second, AutoReset: 3 * time.Second, MAC: [6]byte{0x18, 0xFE, 0x34, 9, 9, 9}}
	runSim(t, cfg, simOpts{link: transport.LinkOptions{Paced: true}}, func(h *host) {
		h.ok(opFlashEnd, words(0), 0) // a reboot request: download mode again (§2.2)
		h.discardInput()
		if rs := h.sync(); len(rs) != 8 {
			t.Fatalf("after FLASH_END(0): %d ROM replies", len(rs))
		}
		time.Sleep(2 * time.Second)
		if b, _ := app.counts(); b != 1 {
			t.Fatalf("%d boots after the release", b)
		}
		app.mu.Lock()
		mac, fl := app.mac, app.flash
		app.mu.Unlock()
		if mac != cfg.MAC || fl.Size() != mib {
			t.Errorf("the firmware got MAC %X, flash %d", mac, fl.Size())
		}
		h.discardInput()
		h.write([]byte("Status 0\n"))
		time.Sleep(100 * time.Millisecond)
		h.fill(time.Second)
		if !strings.Contains(string(h.buf), `{"Status":{"Module":0}}`) {
			t.Errorf("console answer %q", h.buf)
		}
		h.buf = nil
		// The tool wants the loader again: SYNCs reach the firmware.
		if el := h.syncUntilROM(10 * time.Second); el < 3*time.Second || el > 5*time.Second {
			t.Errorf("the ROM answered %v after the first SYNC, want the user's 3 s", el)
		}
		if _, halts := app.counts(); halts != 1 {
			t.Errorf("%d halts", halts)
		}
		if st := h.d.Stats(); st.Mode != "rom" || !st.GPIO0Low {
			t.Errorf("stats %+v", st)
		}
	})
}

// TestSoftResetQuirk: a software reset (FLASH_END(0) in the ROM, the
// tuyaflash stub's reboot) lands in download mode while the strap latched
// at power-on says so, even with GPIO0 released since; an EN reset reads
// GPIO0 again and boots the firmware.
func TestSoftResetQuirk(t *testing.T) {
	for _, viaStub := range []bool{false, true} {
		app := &fakeApp{}
		runSim(t, Config{App: app}, simOpts{link: transport.LinkOptions{Paced: true}, keepBoot: true}, func(h *host) {
			h.discardInput()
			if viaStub {
				h.uploadStub()
			}
			h.d.SetGPIO0(false)
			h.ok(opFlashEnd, words(0), 0)
			if rs := h.sync(); len(rs) != 8 || rs[0].value != 0x20120707 {
				t.Fatalf("stub %v: after the soft reset %d ROM replies", viaStub, len(rs))
			}
			if b, _ := app.counts(); b != 0 {
				t.Error("the firmware booted on a soft reset after a serial download")
			}
			h.d.Reset()
			time.Sleep(200 * time.Millisecond)
			if b, _ := app.counts(); b != 1 {
				t.Errorf("stub %v: EN reset with GPIO0 released: %d boots", viaStub, b)
			}
		})
	}
}

// TestBootLogModes: the ROM's banner says why it is in the loader:
// (1,6) after power-on, (1,7) after a software or EN reset.
func TestBootLogModes(t *testing.T) {
	runSim(t, Config{Crystal: 40}, simOpts{keepBoot: true}, func(h *host) {
		time.Sleep(100 * time.Millisecond)
		h.fill(100 * time.Millisecond)
		if !bytes.Contains(h.buf, []byte("rst cause:1, boot mode:(1,6)")) {
			t.Errorf("power-on banner %q", h.buf)
		}
		h.buf = nil
		h.ok(opFlashEnd, words(0), 0)
		time.Sleep(100 * time.Millisecond)
		h.fill(100 * time.Millisecond)
		if !bytes.Contains(h.buf, []byte("rst cause:2, boot mode:(1,7)")) {
			t.Errorf("soft-reset banner %q", h.buf)
		}
	})
}

// TestAppOwnOutput: output the firmware produces by itself (its boot
// log) reaches the host without the host sending anything: the simulator
// polls Serial(nil).
func TestAppOwnOutput(t *testing.T) {
	app := &fakeApp{}
	runSim(t, Config{App: app}, simOpts{}, func(h *host) {
		h.d.PowerCycle(false)
		time.Sleep(500 * time.Millisecond)
		for h.fill(100 * time.Millisecond) {
		}
		if !bytes.Contains(h.buf, []byte("fake firmware booted")) {
			t.Errorf("host read %q", h.buf)
		}
	})
}

// TestAppConsoleRate: the firmware's console runs at AppBaud; a host at
// another rate reads garbage.
func TestAppConsoleRate(t *testing.T) {
	for _, tt := range []struct {
		appBaud  int
		readable bool
	}{{0, true}, {9600, false}} {
		app := &fakeApp{}
		runSim(t, Config{App: app, AppBaud: tt.appBaud}, simOpts{link: transport.LinkOptions{Paced: true}}, func(h *host) {
			h.d.PowerCycle(false)
			time.Sleep(500 * time.Millisecond)
			h.discardInput()
			h.write([]byte("Status 0\n"))
			time.Sleep(time.Second)
			h.fill(time.Second)
			if got := bytes.Contains(h.buf, []byte(`"Status"`)); got != tt.readable {
				t.Errorf("app at %d baud, host at 115200: readable %v (%q)", tt.appBaud, got, h.buf)
			}
		})
	}
}

// TestAppServeRestart: Serve's end halts the firmware, the next Serve
// boots it again; what it wrote to flash stays, erased sector-wise.
func TestAppServeRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		app := &fakeApp{}
		d, _ := New(Config{App: app})
		d.PowerCycle(false)
		serve := func() (stop func()) {
			_, dp := transport.Pipe(transport.LinkOptions{})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- d.Serve(ctx, dp) }()
			time.Sleep(100 * time.Millisecond)
			return func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Serve: %v", err)
				}
			}
		}
		stop := serve()
		app.mu.Lock()
		fl := app.flash
		app.mu.Unlock()
		// 0xFD000 holds the SDK's system parameters (not 0xFF).
		before := d.Flash()[0xFD000:0xFE000]
		if _, err := fl.WriteAt([]byte("cfg"), 0xFD010); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 0x1000)
		if _, err := fl.ReadAt(got, 0xFD000); err != nil || string(got[0x10:0x13]) != "cfg" ||
			!bytes.Equal(got[:0x10], before[:0x10]) || !bytes.Equal(got[0x13:], before[0x13:]) {
			t.Errorf("read back % X %v: the bytes around the write are not kept", got[:0x20], err)
		}
		if h := d.Stats().Erased[0xFD000]; h != 1 {
			t.Errorf("sector erased %d times", h)
		}
		if _, err := fl.WriteAt([]byte{1}, mib); err == nil {
			t.Error("write past the flash accepted")
		}
		stop()
		if b, halts := app.counts(); b != 1 || halts != 1 {
			t.Errorf("after Serve: %d boots, %d halts", b, halts)
		}
		stop = serve()
		if b, _ := app.counts(); b != 2 {
			t.Errorf("the next Serve did not boot the firmware again (%d boots)", b)
		}
		stop()
		if !bytes.Equal(d.Flash()[0xFD010:0xFD013], []byte("cfg")) {
			t.Error("the firmware's write is lost")
		}
	})
}

// TestFirmwareReboot: the firmware's own restart (Rebooter) is a software
// reset. After a power-on with GPIO0 released it boots the firmware again;
// when the firmware was started from the loader (FLASH_END(1), no power
// cycle) the chip lands in download mode instead (reference §2.2).
func TestFirmwareReboot(t *testing.T) {
	for _, tt := range []struct {
		name     string
		start    func(h *host)
		boots    int
		mode     string
		download bool
	}{
		{"after a power cycle", func(h *host) { h.d.PowerCycle(false) }, 2, "app", false},
		{"after a serial download", func(h *host) {
			h.d.SetGPIO0(false)
			h.ok(opFlashEnd, words(1), 0) // run the firmware without a reset
		}, 1, "rom", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			app := &fakeApp{}
			runSim(t, Config{App: app}, simOpts{}, func(h *host) {
				tt.start(h)
				time.Sleep(200 * time.Millisecond)
				app.mu.Lock()
				fl := app.flash
				app.mu.Unlock()
				if fl == nil {
					t.Fatal("the firmware did not start")
				}
				fl.(Rebooter).Reboot()
				time.Sleep(200 * time.Millisecond)
				boots, halts := app.counts()
				if boots != tt.boots || halts != 1 || h.d.Stats().Mode != tt.mode {
					t.Errorf("%d boots, %d halts, mode %s; want %d boots, mode %s", boots, halts, h.d.Stats().Mode, tt.boots, tt.mode)
				}
				if tt.download {
					h.discardInput()
					if rs := h.sync(); len(rs) != 8 {
						t.Errorf("%d ROM replies after the firmware's restart", len(rs))
					}
				}
			})
		})
	}
}
