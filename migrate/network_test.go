package migrate

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/internal/testshared"
	"github.com/tuyaflash/tuyaflash/postflash"
)

// obkServer is an OpenBeken /api/pins as the firmware documents it
// (src/httpserver/rest_interface.c: GET gives roles and channels per pin,
// POST takes them and saves), 29 pins as on BK7231.
type obkServer struct {
	mu       sync.Mutex
	roles    []int
	channels []int
	command  string
	password string
	posts    int
}

func (s *obkServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.password != "" {
		if u, p, ok := r.BasicAuth(); !ok || u != "admin" || p != s.password {
			w.Header().Set("WWW-Authenticate", `Basic realm="OpenBeken HTTP Server"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
	}
	if r.URL.Path != "/api/pins" {
		http.NotFound(w, r)
		return
	}
	switch r.Method {
	case http.MethodGet:
		json.NewEncoder(w).Encode(map[string]any{"rolenames": []string{" ", "Rel", "Rel_n", "Btn", "Btn_n", "LED", "LED_n", "PWM", "WifiLED", "WifiLED_n"},
			"roles": s.roles, "channels": s.channels})
	case http.MethodPost:
		var body struct {
			Roles, Channels []int
			DeviceCommand   string `json:"deviceCommand"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body.Roles) != len(s.roles) {
			io.WriteString(w, `{"error":400, "msg":"bad"}`)
			return
		}
		s.roles, s.channels, s.command = body.Roles, body.Channels, body.DeviceCommand
		s.posts++
		io.WriteString(w, `{"success":200, "msg":"OK"}`)
	}
}

func TestOpenBekenPins(t *testing.T) {
	srv := &obkServer{roles: make([]int, 29), channels: make([]int, 29), password: "s3cret"}
	srv.roles[10], srv.channels[10] = 5, 7 // a pin the template does not name stays
	ts := httptest.NewServer(srv)
	defer ts.Close()
	host := strings.TrimPrefix(ts.URL, "http://")
	n := LiveNetwork{Probe: postflash.Options{Password: "s3cret"}}
	ctx := context.Background()
	want := &PinConfig{Pins: []PinRole{{Pin: 6, Role: 1, Channel: 1}, {Pin: 8, Role: 4, Channel: 1}}, Startup: "startDriver BL0937"}
	if have, err := n.ReadPins(ctx, host, postflash.OpenBeken); err != nil || pinsMatch(want, have) {
		t.Fatalf("before: %v %v", have, err)
	}
	if err := n.WritePins(ctx, host, postflash.OpenBeken, want); err != nil {
		t.Fatal(err)
	}
	have, err := n.ReadPins(ctx, host, postflash.OpenBeken)
	if err != nil || !pinsMatch(want, have) {
		t.Fatalf("after: %v %v", have, err)
	}
	if srv.roles[10] != 5 || srv.channels[10] != 7 || srv.command != "startDriver BL0937" {
		t.Errorf("device state %v %v %q", srv.roles, srv.channels, srv.command)
	}
	if have.String() != "P6 Rel;1, P8 Btn_n;1, P10 LED;7" {
		t.Errorf("read back %q", have)
	}
	if err := n.WritePins(ctx, host, postflash.OpenBeken, &PinConfig{Pins: []PinRole{{Pin: 40, Role: 1}}}); !errors.Is(err, flasher.ErrRefused) {
		t.Errorf("pin outside the chip: %v", err)
	}
	bad := LiveNetwork{Probe: postflash.Options{Password: "wrong"}}
	if _, err := bad.ReadPins(ctx, host, postflash.OpenBeken); err == nil || strings.Contains(err.Error(), "wrong") {
		t.Errorf("wrong password: %v", err)
	}
}

// replay answers each connection with the next recorded reply, byte for
// byte, and closes it (as OpenBeken does: no Content-Length).
func replay(t *testing.T, files ...string) (host string, requests func() []string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	go func() {
		for _, f := range files {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if req, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
				io.Copy(io.Discard, req.Body)
				mu.Lock()
				seen = append(seen, req.Method+" "+req.URL.Path)
				mu.Unlock()
			}
			data, err := os.ReadFile(f)
			if err != nil {
				t.Error(err)
			}
			c.Write(data)
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close() })
	return l.Addr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

// TestOpenBekenRecordedReplies reads the byte-exact replies of the real
// OpenBeken (its Linux build) to GET and POST /api/pins.
func TestOpenBekenRecordedReplies(t *testing.T) {
	dir := testshared.Dir(t, "testdata", "http", "openbeken")
	rec := func(name string) string { return filepath.Join(dir, name) }
	ctx := context.Background()
	n := LiveNetwork{}

	host, _ := replay(t, rec("04_api_pins.txt"))
	have, err := n.ReadPins(ctx, host, postflash.OpenBeken)
	if err != nil || len(have.Pins) != 0 {
		t.Fatalf("fresh device: %v %v", have, err)
	}
	// The POST of the recording (22) set P6 Rel;1, P8 Btn;1, P24 Rel;2.
	want := &PinConfig{Pins: []PinRole{{Pin: 6, Role: 1, Channel: 1}, {Pin: 8, Role: 3, Channel: 1}, {Pin: 24, Role: 1, Channel: 2}}}
	host, requests := replay(t, rec("04_api_pins.txt"), rec("22_post_api_pins.txt"))
	if err := n.WritePins(ctx, host, postflash.OpenBeken, want); err != nil {
		t.Fatal(err)
	}
	if got := requests(); len(got) != 2 || !strings.HasPrefix(got[1], "POST /api/pins") {
		t.Errorf("requests %q", got)
	}
	host, _ = replay(t, rec("23_api_pins_post.txt"))
	have, err = n.ReadPins(ctx, host, postflash.OpenBeken)
	if err != nil || !pinsMatch(want, have) || have.String() != "P6 Rel;1, P8 Btn;1, P24 Rel;2" {
		t.Fatalf("after the POST: %v %v", have, err)
	}
}

// tasmotaServer keeps a template and a module as Tasmota's Template and
// Module commands do (tasmota/docs Commands.md, Templates.md).
type tasmotaServer struct {
	mu       sync.Mutex
	template string
	module   int
}

func (s *tasmotaServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := r.URL.Query().Get("cmnd")
	switch {
	case strings.HasPrefix(cmd, "Backlog Template "):
		tpl, rest, _ := strings.Cut(strings.TrimPrefix(cmd, "Backlog Template "), "; ")
		s.template = tpl
		if rest == "Module 0" {
			s.module = 0
		}
		// Backlog's replies go to the log: the HTTP reply is empty.
	case cmd == "Module" && s.module == 0:
		io.WriteString(w, `{"Module":{"0":"tuya-plug"}}`)
	case cmd == "Module":
		io.WriteString(w, `{"Module":{"1":"Sonoff Basic"}}`)
	case cmd == "Template":
		io.WriteString(w, s.template)
	default:
		io.WriteString(w, `{"Command":"Unknown"}`)
	}
}

func TestTasmotaTemplate(t *testing.T) {
	srv := &tasmotaServer{module: 1, template: `{"NAME":"Sonoff","GPIO":[32,1,1,1,1,1,0,0,224,320,1,0,0,0],"FLAG":0,"BASE":1}`}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	host := strings.TrimPrefix(ts.URL, "http://")
	n, ctx := LiveNetwork{}, context.Background()
	want := &PinConfig{Template: `{"NAME":"tuya-plug","GPIO":[0,0,0,0,0,0,0,0,224,32,0,0,0,0],"FLAG":0,"BASE":18}`}
	have, err := n.ReadPins(ctx, host, postflash.Tasmota)
	if err != nil || have.Template != "" {
		t.Fatalf("a built-in module reads as no template: %v %v", have, err)
	}
	if err := n.WritePins(ctx, host, postflash.Tasmota, want); err != nil {
		t.Fatal(err)
	}
	if have, err = n.ReadPins(ctx, host, postflash.Tasmota); err != nil || !pinsMatch(want, have) {
		t.Fatalf("after: %v %v", have, err)
	}
}
