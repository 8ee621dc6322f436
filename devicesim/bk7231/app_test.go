package bksim

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tuyaflash/tuyaflash/transport"
)

// TestAppLifecycle follows the firmware through every way the chip leaves
// and enters its application (contract C1).
func TestAppLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		app := &fakeApp{reply: []byte("ok\r\n")}
		r := startRig(t, Config{Chip: BK7231N, App: app}, transport.LinkOptions{})
		steps := []struct {
			name string
			do   func()
			want string // history after the step
		}{
			{"a new device runs its firmware", func() {}, "boot"},
			{"bytes go to the firmware and its answer to the host", func() {
				r.send([]byte("Status 0\r\n"))
				r.expect([]byte("ok\r\n"))
			}, "boot"},
			{"power cycle halts it; a link keeps it halted", func() {
				r.link()
			}, "boot halt"},
			{"Reboot command: the window closes into the firmware", func() {
				r.send(hx("01 E0 FC 02 0E A5"))
				time.Sleep(60 * time.Millisecond)
				r.read(len("\r\n[bksim] BK7231N application started\r\n"))
			}, "boot halt boot"},
			{"power cycle without link checks boots it again after the window", func() {
				r.d.PowerCycle()
				settle()
				time.Sleep(60 * time.Millisecond)
				r.read(len("\r\n[bksim] BK7231N application started\r\n"))
			}, "boot halt boot halt boot"},
			{"PowerCycleToApp boots it at once", func() {
				r.d.PowerCycleToApp()
			}, "boot halt boot halt boot halt boot"},
			{"PowerOff halts it", func() {
				r.d.PowerOff()
				time.Sleep(time.Second)
			}, "boot halt boot halt boot halt boot halt"},
		}
		for _, st := range steps {
			st.do()
			settle()
			if got := app.history(); got != st.want {
				t.Fatalf("%s: Boot/Halt calls %q, want %q", st.name, got, st.want)
			}
		}
		if got := app.received(); !bytes.Equal(got, []byte("Status 0\r\n")) {
			t.Errorf("firmware received %q; link checks of the link-up must not reach it", got)
		}
		if st := r.d.Stats(); st.AppBoots != 4 || st.State != "off" {
			t.Errorf("Stats: %d application starts, state %q; want 4, off", st.AppBoots, st.State)
		}
		r.d.PowerCycleToApp()
		settle()
		r.stop()
		if got := app.history(); got != "boot halt boot halt boot halt boot halt boot halt" {
			t.Errorf("after Serve returned: %q, want the firmware halted", got)
		}
		for _, n := range app.sizes {
			if n != 2<<20 {
				t.Errorf("Boot got a flash of %d bytes", n)
			}
		}
	})
}

// TestAppFlash checks the firmware's view of the flash: reads and writes
// go to the chip's flash, a write keeps the rest of its sectors.
func TestAppFlash(t *testing.T) {
	d, err := New(Config{Chip: BK7238})
	if err != nil {
		t.Fatal(err)
	}
	f := flashView{d}
	before := d.Flash()
	if _, err := f.WriteAt([]byte("CFG-sim"), 0x1E1010); err != nil {
		t.Fatal(err)
	}
	after := d.Flash()
	if !bytes.Equal(after[0x1E1010:0x1E1017], []byte("CFG-sim")) {
		t.Fatal("WriteAt did not land")
	}
	if !bytes.Equal(before[:0x1E1010], after[:0x1E1010]) || !bytes.Equal(before[0x1E1017:], after[0x1E1017:]) {
		t.Fatal("WriteAt changed bytes outside what it wrote")
	}
	buf := make([]byte, 6)
	if n, err := f.ReadAt(buf, 0x1E0024); n != 6 || err != nil || !bytes.Equal(buf, DefaultMAC[:]) {
		t.Fatalf("ReadAt of the MAC: %d, %v, % X", n, err, buf)
	}
	if _, err := f.ReadAt(buf, int64(f.Size())-3); err == nil {
		t.Error("a read past the end succeeded")
	}
	if _, err := f.WriteAt(buf, int64(f.Size())-3); err == nil {
		t.Error("a write past the end succeeded")
	}
}

// TestIdentifyCommand: every chip answers contract C2's command with its
// JSON in download mode, and the unknown-command status 7 to any other
// payload of 0x7E and to other unknown short commands.
func TestIdentifyCommand(t *testing.T) {
	for _, chip := range Chips() {
		t.Run(chip.String(), func(t *testing.T) {
			long := "127.0.0.4:" + strings.Repeat("9", 60)
			tests := []struct {
				name          string
				cfg           Config
				net           any // nil: absent
				ap, api, tuya any
			}{
				{"no network side", Config{Chip: chip}, nil, nil, nil, nil},
				{"Config.NetAddr", Config{Chip: chip, NetAddr: "127.0.0.2:8080", App: &netApp{addr: "127.9.9.9:1"}}, "127.0.0.2:8080", nil, nil, nil},
				{"App.NetAddr", Config{Chip: chip, App: &netApp{addr: "127.0.0.3:8081"}}, "127.0.0.3:8081", nil, nil, nil},
				{"App.NetAddrs", Config{Chip: chip, App: &addrsApp{netApp{addr: "127.84.1.2:40001"}, "127.84.1.2:40002", "127.84.1.2:40003", "127.84.1.2:40004"}},
					"127.84.1.2:40001", "127.84.1.2:40002", "127.84.1.2:40003", "127.84.1.2:40004"},
				{"too long for 240 bytes: the extra addresses go first", Config{Chip: chip, App: &addrsApp{netApp{addr: "127.0.0.4:1"}, long, long, long}},
					"127.0.0.4:1", nil, nil, nil},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					withLinkedChip(t, tc.cfg, func(t *testing.T, r *rig) {
						m := r.identify()
						if m["virtual"] != true || m["sim"] != "bksim" || m["chip"] != chip.String() || m["net"] != tc.net ||
							m["ap"] != tc.ap || m["api"] != tc.api || m["tuya"] != tc.tuya {
							t.Fatalf("identification %v", m)
						}
						unknown := []struct {
							req   []byte
							reply []byte
						}{
							{cat(hx("01 E0 FC 13 7E"), []byte("tuyaflash-virtual!")), hx("04 0E 05 01 E0 FC 7E 07")},
							{hx("01 E0 FC 01 7E"), hx("04 0E 05 01 E0 FC 7E 07")},
							{hx("01 E0 FC 02 55 01"), hx("04 0E 05 01 E0 FC 55 07")},
							{hx("01 E0 FC 01 02"), hx("04 0E 05 01 E0 FC 02 07")},
						}
						for _, u := range unknown {
							r.send(u.req)
							r.expect(u.reply)
						}
						r.send(linkCheck)
						r.expect(linkReply)
						if n := r.d.Stats().Commands["Identify"]; n != 1 {
							t.Errorf("%d identifications counted", n)
						}
					})
				})
			}
		})
	}
	// Outside download mode nobody answers it: the firmware gets the bytes.
	synctest.Test(t, func(t *testing.T) {
		app := &fakeApp{}
		r := startRig(t, Config{Chip: BK7231T, App: app}, transport.LinkOptions{})
		defer r.stop()
		r.send(identifyCmd)
		r.silent(100 * time.Millisecond)
		if !bytes.Equal(app.received(), identifyCmd) {
			t.Errorf("firmware got % X", app.received())
		}
	})
}

// TestServeHaltsAppOnError: a line that fails ends Serve and halts the
// firmware it had booted.
func TestServeHaltsAppOnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		app := &fakeApp{}
		d, _ := New(Config{Chip: BK7231N, App: app})
		host, dev := transport.Pipe(transport.LinkOptions{})
		done := make(chan error, 1)
		go func() { done <- d.Serve(context.Background(), dev) }()
		settle()
		host.Close()
		if err := <-done; err == nil {
			t.Fatal("Serve returned nil after the host closed the line")
		}
		if got := app.history(); got != "boot halt" {
			t.Fatalf("Boot/Halt calls %q, want boot halt", got)
		}
	})
}

// rebootApp restarts the chip when it reads "reboot", as OpenBeken's UART
// console does.
type rebootApp struct {
	fakeApp
	flash Flash
}

func (a *rebootApp) Boot(f Flash) {
	a.fakeApp.Boot(f)
	a.flash = f
}

func (a *rebootApp) Serial(in []byte) []byte {
	a.fakeApp.Serial(in)
	if bytes.Contains(in, []byte("reboot")) {
		a.flash.(Rebooter).Reboot()
	}
	return nil
}

// TestFirmwareReboot: a firmware's software reset opens the link window,
// so a tool that sends "reboot" and then link checks gets download mode
// without a power cycle (BK7231GUIFlashTool getBus, reference §2.2).
func TestFirmwareReboot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		app := &rebootApp{}
		r := startRig(t, Config{Chip: BK7231N, App: app}, transport.LinkOptions{})
		defer r.stop()
		settle()
		r.send(linkCheck) // the running firmware ignores it
		r.silent(50 * time.Millisecond)
		r.send([]byte("reboot\r\n"))
		settle()
		r.send(linkCheck)
		r.expect(linkReply)
		if st := r.d.Stats(); st.State != "download" || st.Resets != 1 || app.history() != "boot halt" {
			t.Fatalf("state %q, %d resets, firmware %q", st.State, st.Resets, app.history())
		}
	})
}
