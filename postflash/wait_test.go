package postflash

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
)

// tasmotaPipe serves the 11.1.0 fixture over in-memory connections.
func tasmotaPipe(t *testing.T) func(net.Conn) {
	status0 := string(readFixture(t, "tasmota-11.1.0-esp8266.json"))
	return pipeHTTP(func(r *http.Request) []byte {
		body := `{"Command":"Unknown"}`
		if r.URL.Query().Get("cmnd") == "Status 0" {
			body = status0
		}
		return httpReply(200, map[string]string{"Content-Type": "application/json", "Server": "Tasmota/11.1.0 (ESP8266EX)"}, body)
	})
}

// TestIdentifyNetworkFailures: dead, slow, refusing and closing hosts, each
// with the sentence and the hint the user reads. In a synctest bubble the
// timeouts take no wall time, and their length is checked exactly.
func TestIdentifyNetworkFailures(t *testing.T) {
	hang := func(c net.Conn) { io.Copy(io.Discard, c) } // reads the request, never answers
	tests := []struct {
		name     string
		routes   map[string]route
		wantKind Kind
		wantMsg  string
		wantHint string
		wantTime time.Duration
		noLink   bool
	}{
		{"dead host", map[string]route{"10.9.9.9:80": {blackhole: true}},
			KindTimeout, "10.9.9.9: no answer within 3s: the device is off, has not joined the network yet, or has another address",
			"DHCP", 3 * time.Second, true},
		{"slow host", map[string]route{"10.9.9.9:80": {serve: hang}},
			KindSlow, "10.9.9.9: accepted the connection but sent no reply within 3s",
			"power-cycle", 3 * time.Second, true},
		{"nothing listens", map[string]route{},
			KindRefused, "10.9.9.9: connection refused on port 80, and nothing answers on ESPHome's API port 6053 or Tuya's port 6668",
			"another device", 0, true},
		{"reads the request, closes without a reply", map[string]route{"10.9.9.9:80": {serve: pipeHTTP(func(*http.Request) []byte { return nil })}},
			KindEmptyReply, "10.9.9.9: the device closed the connection without a reply to the HTTP API",
			"SetOption128 1", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fn := newFakeNet()
				for a, r := range tc.routes {
					fn.set(a, r)
				}
				start := time.Now()
				res, err := Identify(context.Background(), "10.9.9.9", Options{Dial: fn.Dial, Timeout: 3 * time.Second})
				if KindOf(err) != tc.wantKind {
					t.Fatalf("error %v (kind %q), want %q", err, KindOf(err), tc.wantKind)
				}
				if !strings.HasPrefix(err.Error(), tc.wantMsg) {
					t.Errorf("message\n %q\nwant prefix\n %q", err, tc.wantMsg)
				}
				if h := flasher.Hint(err); !strings.Contains(h, tc.wantHint) {
					t.Errorf("hint %q lacks %q", h, tc.wantHint)
				}
				if el := time.Since(start); el != tc.wantTime {
					t.Errorf("took %v, want %v", el, tc.wantTime)
				}
				if errors.Is(err, flasher.ErrNoLink) != tc.noLink {
					t.Errorf("errors.Is(ErrNoLink) = %v", !tc.noLink)
				}
				if res.Firmware == StockTuya || res.Firmware == ESPHome {
					t.Errorf("firmware %s", res.Firmware)
				}
			})
		})
	}
}

// TestIdentifyStockTuya: port 80 closed and Tuya's 6668 open means the
// flash did not take; Check says so.
func TestIdentifyStockTuya(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fn := newFakeNet()
		fn.set("192.168.1.23:6668", route{serve: func(c net.Conn) { io.Copy(io.Discard, c) }})
		res, err := Identify(context.Background(), "192.168.1.23", Options{Dial: fn.Dial})
		if err != nil || res.Firmware != StockTuya {
			t.Fatalf("%+v, %v", res, err)
		}
		if !containsLine(res.Evidence, "TCP 6668 accepts connections (Tuya local protocol)") {
			t.Errorf("evidence %q", res.Evidence)
		}
		err = Check(res, "tasmota", "")
		if err == nil || err.Error() != "192.168.1.23: the device still runs the stock Tuya firmware (web port closed, Tuya's local port 6668 open), not tasmota: the new firmware is not running" {
			t.Errorf("Check: %v", err)
		}
		if !strings.Contains(flasher.Hint(err), "power-cycle") {
			t.Errorf("hint %q", flasher.Hint(err))
		}
	})
}

// timeline is a device that is off, then booting (port closed), then up.
type timeline struct {
	t     *testing.T
	start time.Time
	up    time.Duration // port 80 refuses from here
	web   time.Duration // Tasmota answers from here
	serve func(net.Conn)

	mu    sync.Mutex
	dials []string
}

func (d *timeline) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	el := time.Since(d.start)
	d.mu.Lock()
	d.dials = append(d.dials, addr)
	d.mu.Unlock()
	switch {
	case el < d.up:
		<-ctx.Done()
		return nil, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
	case el < d.web || !strings.HasSuffix(addr, ":80"):
		return nil, refused()
	}
	a, b := net.Pipe()
	go d.serve(b)
	return a, nil
}

func TestWaitOnlineReportsWhatItSaw(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dev := &timeline{t: t, start: time.Now(), up: 12 * time.Second, web: 20 * time.Second, serve: tasmotaPipe(t)}
		var seen []Attempt
		res, err := WaitOnline(context.Background(), "192.168.100.81", Options{Dial: dev.Dial, Timeout: 2 * time.Second},
			time.Now().Add(2*time.Minute), func(a Attempt) { seen = append(seen, a) })
		if err != nil || res.Firmware != Tasmota || res.MAC != "4C:11:AE:11:F8:50" {
			t.Fatalf("%+v, %v", res, err)
		}
		// 1 s, 2 s, 4 s, 8 s backoff; 2 s per timed-out attempt.
		want := []struct {
			kind    Kind
			elapsed time.Duration
			wait    time.Duration
		}{
			{KindTimeout, 2 * time.Second, time.Second},
			{KindTimeout, 5 * time.Second, 2 * time.Second},
			{KindTimeout, 9 * time.Second, 4 * time.Second},
			{KindRefused, 13 * time.Second, 8 * time.Second},
			{KindOK, 21 * time.Second, 0},
		}
		if len(seen) != len(want) {
			t.Fatalf("saw %d attempts: %v", len(seen), seen)
		}
		for i, w := range want {
			a := seen[i]
			if a.N != i+1 || a.Kind != w.kind || a.Elapsed != w.elapsed || a.Wait != w.wait {
				t.Errorf("attempt %d = {N:%d %s after %v, wait %v}, want {%s after %v, wait %v}", i+1, a.N, a.Kind, a.Elapsed, a.Wait, w.kind, w.elapsed, w.wait)
			}
		}
		if s := seen[3].String(); s != "attempt 4 after 13s: 192.168.100.81: connection refused on port 80, and nothing answers on ESPHome's API port 6053 or Tuya's port 6668: a host is at this address but it runs none of the expected firmwares; retrying in 8s" {
			t.Errorf("attempt line %q", s)
		}
		if s := seen[4].String(); s != "attempt 5 after 21s: answered" {
			t.Errorf("last line %q", s)
		}
	})
}

// TestWaitOnlineStopsOnNonTransient: a 401 means the device is online; the
// wait ends at once with the auth error.
func TestWaitOnlineStopsOnNonTransient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fn := newFakeNet()
		fn.set("10.0.0.7:80", route{serve: pipeHTTP(func(*http.Request) []byte {
			return httpReply(401, map[string]string{"Content-Type": "application/json"}, `{"WARNING":"Need user=<username>&password=<password>"}`)
		})})
		var seen []Attempt
		res, err := WaitOnline(context.Background(), "10.0.0.7", Options{Dial: fn.Dial}, time.Now().Add(time.Minute), func(a Attempt) { seen = append(seen, a) })
		if KindOf(err) != KindAuth || res.Firmware != Tasmota {
			t.Fatalf("%+v, %v", res, err)
		}
		if len(seen) != 1 || seen[0].Kind != KindAuth || seen[0].Wait != 0 {
			t.Errorf("seen %v", seen)
		}
	})
}

func TestWaitOnlineDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fn := newFakeNet()
		fn.set("10.0.0.8:80", route{blackhole: true})
		start := time.Now()
		var seen []Attempt
		_, err := WaitOnline(context.Background(), "10.0.0.8", Options{Dial: fn.Dial, Timeout: 2 * time.Second},
			start.Add(30*time.Second), func(a Attempt) { seen = append(seen, a) })
		var we *WaitError
		if !errors.As(err, &we) {
			t.Fatalf("error %v, want *WaitError", err)
		}
		if time.Since(start) != 30*time.Second {
			t.Errorf("gave up after %v, want at the deadline", time.Since(start))
		}
		if we.Attempts != len(seen) || we.Seen[KindTimeout] != we.Attempts {
			t.Errorf("WaitError %+v, seen %d", we, len(seen))
		}
		if !strings.HasPrefix(err.Error(), "10.0.0.8 did not come online within 30s (") || !strings.Contains(err.Error(), "× timeout); last: 10.0.0.8: no answer within") {
			t.Errorf("message %q", err)
		}
		if !strings.Contains(flasher.Hint(err), "3.3 V pin is often too weak") {
			t.Errorf("hint %q", flasher.Hint(err))
		}
		if last := seen[len(seen)-1]; last.Wait != 0 {
			t.Errorf("last attempt %v promises a retry", last)
		}
	})
}

func TestWaitOnlineCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fn := newFakeNet()
		fn.set("10.0.0.8:80", route{blackhole: true})
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		defer cancel()
		_, err := WaitOnline(ctx, "10.0.0.8", Options{Dial: fn.Dial, Timeout: 10 * time.Second}, time.Now().Add(time.Hour), nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v", err)
		}
	})
}
