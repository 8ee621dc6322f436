package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/transport"
)

// TestAdaptersComeAndGo: the page hears of an adapter plugged in or
// unplugged, and of nothing when nothing changed; a failing system list
// still offers the virtual and given ports.
func TestAdaptersComeAndGo(t *testing.T) {
	var sys []transport.PortInfo
	var listErr error
	ts := newTestServer(t, func(c *Config) {
		c.ListPorts = func() ([]transport.PortInfo, error) { return sys, listErr }
		c.ExtraPorts = []string{"sim:esp8266"}
	})
	ts.ports.current()
	sub := ts.hub.subscribe()
	next := func() *PortsView {
		t.Helper()
		ts.ports.update()
		if len(sub.ch) == 0 {
			return nil
		}
		m := <-sub.ch
		if m.event != "ports" {
			t.Fatalf("event %s", m.event)
		}
		return decodeBytes[PortsView](t, m.data)
	}
	if v := next(); v != nil {
		t.Fatalf("nothing changed, yet the page heard %+v", v)
	}
	sys = []transport.PortInfo{{Name: "/dev/ttyUSB0", USB: true, VID: "10c4", PID: "ea60", Adapter: "Silicon Labs CP210x", Likely: true}}
	if v := next(); v == nil || len(v.Ports) != 2 || v.Ports[0].Adapter != "Silicon Labs CP210x" || v.Ports[0].VID != "0x10C4" {
		t.Fatalf("plugged in: %+v", v)
	}
	sys = nil
	if v := next(); v == nil || len(v.Ports) != 1 || v.Ports[0].Name != "sim:esp8266" {
		t.Fatalf("unplugged: %+v", v)
	}
	listErr = errors.New("no /sys")
	if v := next(); v == nil || !strings.Contains(v.Error, "no /sys") || len(v.Ports) != 1 {
		t.Fatalf("list failed: %+v", v)
	}
}

// TestPortsNeverGoBack: the list is read again from several goroutines at
// once (the poller, a device started over on the page); a list read
// earlier must not replace, or go out after, one read later — the page
// would show an adapter unplugged long ago until the next change.
func TestPortsNeverGoBack(t *testing.T) {
	var gen atomic.Int64
	ts := newTestServer(t, func(c *Config) {
		c.ExtraPorts = nil
		c.ListPorts = func() ([]transport.PortInfo, error) {
			g := gen.Load()
			time.Sleep(time.Duration(g%3) * 100 * time.Microsecond) // listing takes a while
			return []transport.PortInfo{{Name: fmt.Sprintf("/dev/ttyUSB%d", g), USB: true}}, nil
		}
	})
	ts.ports.current()
	sub := ts.hub.subscribe()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 30 {
				gen.Add(1)
				ts.ports.update()
			}
		}()
	}
	wg.Wait()
	want := fmt.Sprintf("/dev/ttyUSB%d", gen.Load())
	var last *PortsView
	for len(sub.ch) > 0 {
		last = decodeBytes[PortsView](t, (<-sub.ch).data)
	}
	if last == nil || len(last.Ports) == 0 || last.Ports[0].Name != want {
		t.Errorf("the page's last list: %+v; the adapter now is %s", last, want)
	}
	if cur := ts.ports.current(); len(cur.Ports) == 0 || cur.Ports[0].Name != want {
		t.Errorf("the server's list: %+v; the adapter now is %s", cur, want)
	}
}

// TestDevicesFollowTheInventory: a change of the inventory file (a job
// here, or a command in a terminal) reaches the page, without secrets.
func TestDevicesFollowTheInventory(t *testing.T) {
	ts := newTestServer(t)
	ts.devices.current()
	sub := ts.hub.subscribe()
	ts.devices.check()
	if len(sub.ch) != 0 {
		t.Fatal("the inventory did not change, yet the page heard of it")
	}
	inv := ts.cfg.InventoryPath
	b, _ := os.ReadFile(inv)
	changed := strings.Replace(string(b), `"module": "CB2S"`, `"module": "CB3S"`, 1) + "\n"
	if err := os.WriteFile(inv, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	ts.devices.check()
	if len(sub.ch) != 1 {
		t.Fatalf("%d events after the change", len(sub.ch))
	}
	m := <-sub.ch
	if m.event != "devices" || !strings.Contains(string(m.data), "CB3S") || strings.Contains(string(m.data), testLocalKey) {
		t.Errorf("event %s: %s", m.event, m.data)
	}
	os.WriteFile(inv, []byte("{broken"), 0o600)
	ts.devices.check()
	if v := decodeBytes[DevicesView](t, (<-sub.ch).data); !strings.Contains(v.Error, "damaged") || len(v.Devices) != 0 {
		t.Errorf("a damaged inventory: %+v", v)
	}
}

func decodeBytes[T any](t *testing.T, b []byte) *T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return &v
}
