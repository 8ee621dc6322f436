package session

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/devicesim/appsim"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/internal/virtual"
	"github.com/tuyaflash/tuyaflash/migrate"
	"github.com/tuyaflash/tuyaflash/transport"
)

// events collects a session's notifications.
type events struct {
	mu  sync.Mutex
	evs []flasher.Event
}

func (e *events) notify() flasher.Notify {
	return func(ev flasher.Event) { e.mu.Lock(); e.evs = append(e.evs, ev); e.mu.Unlock() }
}

func (e *events) saw(kind flasher.EventKind, sub string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.evs {
		if ev.Kind == kind && strings.Contains(ev.Message, sub) {
			return true
		}
	}
	return false
}

func opts(t *testing.T, port string) Options {
	return Options{Port: port, Timeout: 5 * time.Second, Virtual: virtual.Options{DataDir: t.TempDir(), Unpaced: true}}
}

// TestConnectVirtual: a sim: port gives a connected chip of its family,
// known as an in-process virtual device that also said so (contract C2).
func TestConnectVirtual(t *testing.T) {
	for _, tc := range []struct {
		port string
		fam  flasher.Family
		sim  string
	}{
		{"sim:bk7231n", flasher.BK7231N, "bksim"},
		{"sim:bk7231t#x", flasher.BK7231T, "bksim"},
		{"sim:esp8266", flasher.ESP8266, "espsim"},
	} {
		t.Run(tc.port, func(t *testing.T) {
			var ev events
			o := opts(t, tc.port)
			o.Notify = ev.notify()
			s, err := Connect(t.Context(), o)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			i := s.Device.Info()
			if s.Family != tc.fam || i.Family != tc.fam || i.Virtual == nil || i.Virtual.Sim != tc.sim {
				t.Errorf("family %s/%s, virtual %+v", s.Family, i.Family, i.Virtual)
			}
			v := s.Virtual
			if v == nil || !v.InProcess || v.Sim != tc.sim || v.Addrs.Station == "" || v.Addrs.Station != i.Virtual.Net || v.MAC() != i.MAC.String() {
				t.Errorf("virtual info %+v (chip says %+v, MAC %s)", v, i.Virtual, i.MAC)
			}
			if !ev.saw(flasher.Action, "power-cycle") {
				t.Error("no power-cycle prompt: the simulated user had nothing to do")
			}
		})
	}
}

// TestVirtualDeviceBusy: a virtual device in use fails a second session
// as a busy port does, naming the holder.
func TestVirtualDeviceBusy(t *testing.T) {
	o := opts(t, "sim:bk7231n")
	s, err := Open(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = Open(t.Context(), o)
	var oe *transport.OpenError
	if !errors.Is(err, transport.ErrBusy) || !errors.As(err, &oe) || !strings.Contains(oe.Hint, "PID") {
		t.Errorf("second session: %v", err)
	}
}

// TestBaudMax: --baud max takes a Beken chip above 921600 on a CH340
// model; an ESP8266 gets 921600 and a note saying so.
func TestBaudMax(t *testing.T) {
	o := opts(t, "sim:bk7231n")
	o.Baud = BaudMax
	s, err := Connect(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	if b := s.Device.Info().Baud; b <= 921600 {
		t.Errorf("Beken at %d baud", b)
	}
	s.Close()
	var ev events
	o = opts(t, "sim:esp8266")
	o.Baud, o.Notify = BaudMax, ev.notify()
	s, err = Connect(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if b := s.Device.Info().Baud; b != ESPMaxBaud || !ev.saw(flasher.Note, "--baud max on an ESP8266: 921600") {
		t.Errorf("ESP8266 at %d baud, events %v", b, ev.evs)
	}
}

// TestCancelled: an interruption while waiting for the chip ends Connect
// at once with the context's error, and the device is free again.
func TestCancelled(t *testing.T) {
	o := opts(t, "sim:bk7231n")
	o.Chip = flasher.ESP8266 // nothing answers SYNCs on a Beken chip
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	_, err := Connect(ctx, o)
	if !errors.Is(err, context.Canceled) || time.Since(start) > 3*time.Second {
		t.Fatalf("%v after %v", err, time.Since(start))
	}
	o.Chip = ""
	s, err := Connect(t.Context(), o)
	if err != nil {
		t.Fatalf("after the interruption: %v", err)
	}
	s.Close()
}

// TestConnectorConsole: migrate's console of a virtual device runs its
// firmware and tells where its network side is.
func TestConnectorConsole(t *testing.T) {
	c := &Connector{Options: opts(t, "")}
	p, err := c.Console(t.Context(), "sim:esp8266#c")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	v, ok := p.(interface{ Virtual() *migrate.Virtual })
	if !ok || v.Virtual() == nil || v.Virtual().Station == "" || v.Virtual().AP == v.Virtual().Station {
		t.Fatalf("console port tells no addresses: %T", p)
	}
	cs := p.(*consolePort).s
	st, err := cs.WaitApp(t.Context(), 10*time.Second, func(st appsim.Status) bool { return st.Running && st.Image.Kind != "" })
	if err != nil || !st.Running {
		t.Errorf("firmware %+v: %v", st, err)
	}
	l, err := c.Connect(t.Context(), "sim:bk7231n#c", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Virtual() == nil || l.Device() == nil || l.Console() == nil {
		t.Errorf("link %+v", l)
	}
}

func TestNoteWriter(t *testing.T) {
	var ev events
	w := NoteWriter(ev.notify())
	w.Write([]byte("-> 12 B  01 E0\n<- 8 B after 1 ms  04 0E"))
	w.Write([]byte(" 05\n\n"))
	w.Write([]byte("last words"))
	w.Flush()
	want := []string{"-> 12 B  01 E0", "<- 8 B after 1 ms  04 0E 05", "last words"}
	if len(ev.evs) != len(want) {
		t.Fatalf("events %+v", ev.evs)
	}
	for i, m := range want {
		if ev.evs[i] != (flasher.Event{Kind: flasher.Note, Message: m}) {
			t.Errorf("event %d: %+v, want note %q", i, ev.evs[i], m)
		}
	}
}

func TestLatencyNote(t *testing.T) {
	for _, tc := range []struct {
		li   transport.LatencyInfo
		kind flasher.EventKind
		want string
	}{
		{transport.LatencyInfo{Driver: "ftdi_sio", Timer: time.Millisecond, Known: true, Lowered: true}, flasher.Note, "latency timer is at 1ms for this session"},
		{transport.LatencyInfo{Driver: "ftdi_sio", Timer: 16 * time.Millisecond, Known: true, Reason: "the driver refused the low-latency flag: EPERM"}, flasher.Warning,
			"latency timer is 16ms and could not be lowered (the driver refused the low-latency flag: EPERM)"},
		{transport.LatencyInfo{Driver: "ch341", Reason: "only FTDI adapters have a latency timer the host can lower"}, flasher.Note, ""},
	} {
		var ev events
		latencyNote("/dev/ttyUSB0", tc.li, ev.notify())
		if tc.want == "" {
			if len(ev.evs) != 0 {
				t.Errorf("%+v: %v", tc.li, ev.evs)
			}
			continue
		}
		if !ev.saw(tc.kind, tc.want) {
			t.Errorf("%+v: %v", tc.li, ev.evs)
		}
	}
}
