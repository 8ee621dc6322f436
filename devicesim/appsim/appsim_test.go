package appsim

import (
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tuyaflash/tuyaflash/firmware/demo"
	"github.com/tuyaflash/tuyaflash/internal/netguard"
)

func TestNewChecksConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown chip", Config{Chip: "ESP32"}, "unknown chip"},
		{"ESP without MAC", Config{Chip: "ESP8266"}, "Config.MAC is required"},
		{"bad MAC", Config{Chip: "ESP8285", MAC: "A4:CF:12"}, "not a MAC"},
		{"bad address", Config{Chip: "BK7231N", StationAddr: "127.0.0.1"}, "station address"},
		// Listeners stay on this machine unless asked (issue 14).
		{"every interface", Config{Chip: "BK7231N", StationAddr: "0.0.0.0:80"}, "not a loopback address"},
		{"no host", Config{Chip: "BK7231N", APAddr: ":0"}, "not a loopback address"},
		{"LAN address", Config{Chip: "ESP8266", MAC: "A4:CF:12:C6:58:CC", APIAddr: "192.168.1.20:6053"}, "not a loopback address"},
	}
	for _, tt := range tests {
		if _, err := New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}

// TestListenersStayOnLoopback: every listener of a default Firmware is on a
// loopback address, and another address needs AllowNonLoopback.
func TestListenersStayOnLoopback(t *testing.T) {
	mem := newMemNet()
	fw, err := New(Config{Chip: "bk7231n", Listen: mem.Listen})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{fw.APAddr(), fw.StationAddr(), fw.APIAddr(), fw.TuyaAddr()} {
		if err := netguard.CheckListen(a, false, ""); err != nil {
			t.Errorf("default listener: %v", err)
		}
	}
	if _, err := New(Config{Chip: "bk7231n", Listen: mem.Listen, StationAddr: "192.0.2.7:80", AllowNonLoopback: true}); err != nil {
		t.Errorf("asked for a LAN address: %v", err)
	}
}

// Ports are picked once: the addresses are known before the firmware runs
// (contract C2's "net"), differ from one another, and Redirect maps a real
// device's fixed ports to them.
func TestAddresses(t *testing.T) {
	mem := newMemNet()
	fw, err := New(Config{Chip: "bk7231n", Listen: mem.Listen, APIAddr: "127.0.0.2:6053"})
	if err != nil {
		t.Fatal(err)
	}
	addrs := map[string]bool{}
	for _, a := range []string{fw.APAddr(), fw.StationAddr(), fw.TuyaAddr()} {
		if !strings.HasPrefix(a, "127.0.0.1:") || strings.HasSuffix(a, ":0") || addrs[a] {
			t.Errorf("address %q", a)
		}
		addrs[a] = true
	}
	if fw.APIAddr() != "127.0.0.2:6053" {
		t.Errorf("APIAddr %q, want the configured one", fw.APIAddr())
	}
	host := strings.Split(fw.StationAddr(), ":")[0]
	for in, want := range map[string]string{
		host + ":80":     fw.StationAddr(),
		host + ":6053":   fw.APIAddr(),
		host + ":6668":   fw.TuyaAddr(),
		host + ":8080":   host + ":8080",
		"10.0.0.1:6053":  "10.0.0.1:6053",
		"not an address": "not an address",
	} {
		if got := fw.Redirect(in); got != want {
			t.Errorf("Redirect(%q) = %q, want %q", in, got, want)
		}
	}
}

// lockedFlash needs the chip's lock, as a chip simulator's flash may.
type lockedFlash struct {
	chip *sync.Mutex
	*memFlash
}

func (l lockedFlash) ReadAt(p []byte, off int64) (int, error) {
	l.chip.Lock()
	defer l.chip.Unlock()
	return l.memFlash.ReadAt(p, off)
}

func (l lockedFlash) WriteAt(p []byte, off int64) (int, error) {
	l.chip.Lock()
	defer l.chip.Unlock()
	return l.memFlash.WriteAt(p, off)
}

// A chip simulator may hold the lock its flash needs while it calls Boot,
// Serial and Halt: none of them touches the flash on the caller's
// goroutine, so none of them waits for it.
func TestChipLocksAroundCalls(t *testing.T) {
	var chipMu sync.Mutex
	fl := lockedFlash{&chipMu, espFlash(mustESPDemo(t, demo.Tasmota))}
	fw, err := New(Config{Chip: "ESP8266", MAC: espMAC, Timing: FastTiming()})
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Halt()
	fw.Boot(fl)
	waitFor(t, "the access point", 10*time.Second, func() bool { return fw.Status().AccessPoint != "" })
	done := make(chan struct{})
	go func() {
		defer close(done)
		chipMu.Lock()
		defer chipMu.Unlock()
		fw.Serial([]byte("DeviceName Porch\n")) // queues a settings write
		fw.Halt()
		fw.Boot(fl)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Boot, Serial or Halt waited for the flash while the chip held its lock")
	}
	waitFor(t, "the access point after Boot", 10*time.Second, func() bool { return fw.Status().AccessPoint != "" })
}

// Halt loses the serial output not yet collected; a restart the firmware
// decides on does not.
func TestSerialOutputAcrossResets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBench(t, "ESP8266", espFlash(mustESPDemo(t, demo.Tasmota)), Timing{})
		b.fw.Boot(b.flash)
		time.Sleep(2 * time.Second)
		b.fw.Serial(nil) // the boot log
		out := string(b.fw.Serial([]byte("Restart 1\n")))
		time.Sleep(defaultRestart + defaultBoot + time.Second)
		out += string(b.fw.Serial(nil))
		for _, want := range []string{"CMD: Restart 1", `RSL: RESULT = {"Restart":"Restarting"}`, "APP: Restarting", "HDW: ESP8266EX", "CFG: Loaded from flash at FB, Count 1"} {
			if !strings.Contains(out, want) {
				t.Errorf("console lacks %q:\n%s", want, out)
			}
		}
		b.fw.Serial([]byte("Status\n"))
		b.fw.Halt()
		if out := b.fw.Serial(nil); out != nil {
			t.Errorf("output after Halt: %q", out)
		}
	})
}
