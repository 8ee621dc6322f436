package bksim

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tuyaflash/tuyaflash/transport"
)

func TestLinkWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRig(t, Config{Chip: BK7231N}, transport.LinkOptions{})
		defer r.stop()

		// A new device runs its application: LinkCheck is ignored.
		r.send(linkCheck)
		r.silent(200 * time.Millisecond)
		if st := r.d.Stats().State; st != "app" {
			t.Fatalf("new device in state %q, want app", st)
		}

		// In the window only LinkCheck is answered.
		r.d.PowerCycle()
		if st := r.d.Stats().State; st != "window" {
			t.Fatalf("after PowerCycle state %q, want window", st)
		}
		r.send(crcCmd(0, 0x100))
		r.silent(10 * time.Millisecond)
		r.send(readSRCmd(0x05))
		r.silent(10 * time.Millisecond)
		r.send(linkCheck)
		r.expect(linkReply)
		if st := r.d.Stats().State; st != "download" {
			t.Fatalf("after LinkCheck state %q, want download", st)
		}
		r.send(readSRCmd(0x05))
		r.expect(hx("04 0E FF 01 E0 FC F4 04 00 0C 00 05 04"))

		// The window closes after 50 ms; the app prints a line.
		r.d.PowerCycle()
		time.Sleep(49 * time.Millisecond)
		if st := r.d.Stats().State; st != "window" {
			t.Fatalf("49 ms after reset state %q, want window", st)
		}
		time.Sleep(time.Millisecond)
		banner := []byte("\r\n[bksim] BK7231N application started\r\n")
		r.expect(banner)
		r.send(linkCheck)
		r.silent(100 * time.Millisecond)
		if st := r.d.Stats().State; st != "app" {
			t.Fatalf("after the window state %q, want app", st)
		}
	})
}

func TestLinkWindowLength(t *testing.T) {
	for _, w := range []time.Duration{10 * time.Millisecond, 300 * time.Millisecond} {
		t.Run(w.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := startRig(t, Config{Chip: BK7231T, LinkWindow: w}, transport.LinkOptions{})
				defer r.stop()
				r.d.PowerCycle()
				time.Sleep(w - time.Millisecond)
				r.send(linkCheck)
				r.expect(linkReply)
				r.d.PowerCycle()
				time.Sleep(w)
				r.read(len("\r\n[bksim] BK7231T application started\r\n"))
				r.send(linkCheck)
				r.silent(50 * time.Millisecond)
			})
		})
	}
}

// TestAutoReset models the bench user who power-cycles the module while the
// host sprays LinkChecks.
func TestAutoReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const after = 300 * time.Millisecond
		r := startRig(t, Config{Chip: BK7231N, AutoReset: after}, transport.LinkOptions{})
		defer r.stop()
		start := time.Now()
		var linkedAt time.Duration
		buf := make([]byte, len(linkReply))
		for i := 0; i < 200 && linkedAt == 0; i++ {
			r.send(linkCheck)
			n, _ := transport.ReadFull(r.host, buf, time.Now().Add(10*time.Millisecond))
			if n == len(buf) && bytes.Equal(buf, linkReply) {
				linkedAt = time.Since(start)
			}
		}
		if linkedAt < after || linkedAt > after+20*time.Millisecond {
			t.Fatalf("linked %v after the first LinkCheck, want just after the %v auto reset", linkedAt, after)
		}
		if st := r.d.Stats(); st.Resets != 1 || st.State != "download" {
			t.Fatalf("Stats: %d resets, state %q; want 1, download", st.Resets, st.State)
		}
	})
}

func TestAutoResetNeedsLinkCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRig(t, Config{Chip: BK7231N, AutoReset: 100 * time.Millisecond}, transport.LinkOptions{})
		defer r.stop()
		r.send([]byte("reboot\r\n"))
		time.Sleep(time.Second)
		if n := r.d.Stats().Resets; n != 0 {
			t.Fatalf("%d resets without a LinkCheck, want 0", n)
		}
	})
}

// TestSetBaudRate runs the baud-rate dance of reference §4.1 over a paced
// link whose two ends garble each other's bytes when their rates differ.
func TestSetBaudRate(t *testing.T) {
	req := hx("01 E0 FC 06 0F 00 10 0E 00 0F") // 921600, delay 15 ms (bkWriter)
	echo := hx("04 0E 09 01 E0 FC 0F 00 10 0E 00 0F")
	tests := []struct {
		name     string
		switchAt time.Duration // after the request left the host; <0: never
		wantEcho bool
	}{
		{"host switches halfway through the delay", 7 * time.Millisecond, true},
		{"host switches right after sending", 0, true},
		{"host never switches", -1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := startRig(t, Config{Chip: BK7231N}, transport.LinkOptions{Paced: true})
				defer r.stop()
				r.link()
				r.send(req)
				time.Sleep(transport.WireTime(int64(len(req)), 115200))
				sent := time.Now()
				if tc.switchAt >= 0 {
					time.Sleep(tc.switchAt)
					r.host.SetBaudRate(921600)
				}
				got := r.read(len(echo))
				if el := time.Since(sent); el < 15*time.Millisecond {
					t.Errorf("echo complete %v after the request, want after the 15 ms delay", el)
				}
				if bytes.Equal(got, echo) != tc.wantEcho {
					t.Fatalf("echo % X, want clean echo = %v", got, tc.wantEcho)
				}
				if st := r.d.Stats(); st.Baud != 921600 {
					t.Fatalf("chip at %d baud, want 921600", st.Baud)
				}
				if tc.wantEcho {
					r.send(linkCheck)
					r.expect(linkReply)
					r.readFlash(0x11000)
				}
				// A power cycle brings the chip back to 115200.
				r.d.PowerCycle()
				r.host.SetBaudRate(115200)
				r.send(linkCheck)
				r.expect(linkReply)
				if st := r.d.Stats(); st.Baud != 115200 {
					t.Fatalf("after power cycle chip at %d baud, want 115200", st.Baud)
				}
			})
		})
	}
}

func TestServeAgainKeepsState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, err := New(Config{Chip: BK7231N, StatusReg: sr(0)})
		if err != nil {
			t.Fatal(err)
		}
		for round := range 2 {
			host, dev := transport.Pipe(transport.LinkOptions{})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- d.Serve(ctx, dev) }()
			r := &rig{t: t, d: d, host: host, cancel: cancel, done: done}
			if round == 0 {
				r.link()
				r.send(erase4KCmd(0x100000))
				r.read(16)
				r.send(cmdShort(0x0F, cat(le(460800), []byte{5})...))
				host.SetBaudRate(460800)
				r.read(12)
				if err := d.Serve(ctx, dev); err == nil {
					t.Error("a second concurrent Serve succeeded")
				}
			} else {
				// Same chip, new line: still at 460800 and in download mode.
				host.SetBaudRate(460800)
				r.send(crcCmd(0x100000, 0x100FFF))
				r.expect(cat(hx("04 0E 08 01 E0 FC 10"), le(hostCRC(bytes.Repeat([]byte{0xFF}, 4096)))))
			}
			r.stop()
			if dev.BaudRate() != 460800 {
				t.Errorf("round %d: line left at %d baud", round, dev.BaudRate())
			}
		}
	})
}

func TestServeReturnsWhenLineCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, _ := New(Config{Chip: BK7231T})
		host, dev := transport.Pipe(transport.LinkOptions{})
		done := make(chan error, 1)
		go func() { done <- d.Serve(context.Background(), dev) }()
		host.Close()
		if err := <-done; err == nil {
			t.Fatal("Serve returned nil after the host closed the line")
		}
	})
}

// TestServeReturnsPromptlyOnCancel cancels Serve in the middle of a 5 s CRC.
func TestServeReturnsPromptlyOnCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRig(t, Config{Chip: BK7231T, Timing: true}, transport.LinkOptions{})
		r.link()
		r.send(crcCmd(0x200000, 0x400000))
		time.Sleep(100 * time.Millisecond)
		start := time.Now()
		r.cancel()
		if err := <-r.done; err != nil {
			t.Fatalf("Serve returned %v", err)
		}
		if el := time.Since(start); el > readPoll {
			t.Fatalf("Serve returned %v after cancel, want within %v", el, readPoll)
		}
		r.silent(6 * time.Second) // the cancelled CRC never answers
	})
}

// TestAutoResetOnGarbageInDownloadMode: a chip left in download mode at a
// fast rate sees a new session's 115200-baud LinkChecks as garbage; the
// simulated user power-cycles it, and the new session links. Noise alone
// (a few junk bytes between good frames) does not reset it.
func TestAutoResetOnGarbageInDownloadMode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const after = 50 * time.Millisecond
		r := startRig(t, Config{Chip: BK7231N, AutoReset: after}, transport.LinkOptions{})
		defer r.stop()
		r.link()
		// A few junk bytes between frames: no reset.
		r.send([]byte{0x55, 0xAA, 0x13})
		r.expect(nil)
		r.send(linkCheck)
		r.expect(linkReply)
		time.Sleep(2 * after)
		if st := r.d.Stats(); st.Resets != 1 {
			t.Fatalf("%d resets after a little noise, want 1 (link's power cycle)", st.Resets)
		}
		// Switch the chip to 921600 and leave it there; a new session
		// talks at 115200.
		r.send(cmdShort(0x0F, cat(le(921600), []byte{20})...))
		time.Sleep(25 * time.Millisecond)
		r.host.SetBaudRate(921600)
		r.read(12)
		r.host.SetBaudRate(115200)
		buf := make([]byte, len(linkReply))
		start := time.Now()
		linked := time.Duration(0)
		for i := 0; i < 100 && linked == 0; i++ {
			r.send(linkCheck)
			n, _ := transport.ReadFull(r.host, buf, time.Now().Add(5*time.Millisecond))
			if n == len(buf) && bytes.Equal(buf, linkReply) {
				linked = time.Since(start)
			}
		}
		if linked == 0 || linked > after+100*time.Millisecond {
			t.Fatalf("new session linked after %v; want a simulated power cycle within %v", linked, after+100*time.Millisecond)
		}
		if st := r.d.Stats(); st.Resets != 2 || st.Baud != 115200 {
			t.Fatalf("Stats: %d resets at %d baud; want 2 at 115200", st.Resets, st.Baud)
		}
	})
}

// TestIdleExit: bootloader-based chips leave download mode into their
// application when the host stays silent for Config.IdleExit (LibreTiny
// README: "BK7231T (not N) will exit the download mode when it can't
// communicate with the flasher"); every command restarts the wait; BootROM
// chips stay.
func TestIdleExit(t *testing.T) {
	tests := []struct {
		chip  Chip
		idle  time.Duration // Config.IdleExit
		after time.Duration // expected exit; 0: never
	}{
		{BK7231T, 0, DefaultIdleExit},
		{BK7231U, 0, DefaultIdleExit},
		{BK7252, 0, DefaultIdleExit},
		{BK7231T, 2 * time.Second, 2 * time.Second},
		{BK7231T, -1, 0},
		{BK7231N, 0, 0},
		{BK7231M, 0, 0},
		{BK7238, 0, 0},
		{BK7252N, time.Second, 0},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%v/%v", tc.chip, tc.idle), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				app := &fakeApp{}
				r := startRig(t, Config{Chip: tc.chip, IdleExit: tc.idle, App: app}, transport.LinkOptions{})
				defer r.stop()
				settle()
				r.link()
				// A command half-way through restarts the wait.
				wait := tc.after
				if wait == 0 {
					wait = 10 * DefaultIdleExit
				}
				time.Sleep(wait / 2)
				r.send(linkCheck)
				r.expect(linkReply)
				start := time.Now()
				time.Sleep(wait - time.Millisecond)
				settle()
				if st := r.d.Stats().State; st != "download" {
					t.Fatalf("%v after the last command: state %q, want download", time.Since(start), st)
				}
				time.Sleep(time.Millisecond)
				settle()
				st := r.d.Stats()
				if tc.after == 0 {
					if st.State != "download" || app.history() != "boot halt" {
						t.Fatalf("a %v left download mode by itself: %q, firmware %q", tc.chip, st.State, app.history())
					}
					return
				}
				if st.State != "app" || app.history() != "boot halt boot" || st.Baud != 115200 {
					t.Fatalf("after %v idle: state %q at %d baud, firmware %q; want app, boot halt boot", time.Since(start), st.State, st.Baud, app.history())
				}
				r.read(len(fmt.Sprintf("\r\n[bksim] %v application started\r\n", tc.chip)))
				// The bootloader is gone: link checks reach the firmware.
				r.send(linkCheck)
				r.silent(100 * time.Millisecond)
				if !bytes.HasSuffix(app.received(), linkCheck) {
					t.Error("the firmware did not get the host's bytes")
				}
			})
		})
	}
}

// TestIdleExitWithAutoReset: the client that comes back after the idle exit
// gets the chip back through the simulated user's power cycle.
func TestIdleExitWithAutoReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRig(t, Config{Chip: BK7231T, IdleExit: time.Second, AutoReset: 300 * time.Millisecond}, transport.LinkOptions{})
		defer r.stop()
		r.link()
		time.Sleep(2 * time.Second)
		r.read(len("\r\n[bksim] BK7231T application started\r\n"))
		r.sprayLinkChecks(time.Second)
		if st := r.d.Stats(); st.State != "download" || st.Resets != 2 {
			t.Fatalf("Stats %+v", st)
		}
	})
}
