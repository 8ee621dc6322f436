package postflash

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
)

// fakeTasmota imitates Tasmota's /cm handler (xdrv_01_9_webserver.ino):
// the Referer gate first (no reply at all when the Referer does not name
// the device at index 7, compared in upper case), then Basic auth or the
// user/password parameters (401 with the JSON warning), then the command.
type fakeTasmota struct {
	replies   map[string][]byte // command (lower case) → JSON body
	server    string            // Server header
	selfNames []string          // names the Referer must hold; nil: SetOption128 1
	password  string
	oldAuth   bool // Tasmota ≤ 9: wrong password is HTTP 200 with the warning

	mu       sync.Mutex
	commands []string
	referers []string
	auths    []string
}

func (f *fakeTasmota) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/cm" {
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte("File Not Found\n\nURI: " + r.URL.Path + "\n"))
		return
	}
	f.mu.Lock()
	f.referers = append(f.referers, r.Header.Get("Referer"))
	f.mu.Unlock()
	if f.selfNames != nil {
		ref := strings.ToUpper(r.Header.Get("Referer"))
		ok := false
		for _, n := range f.selfNames {
			if ref != "" && strings.Index(ref, strings.ToUpper(n)) == 7 {
				ok = true
			}
		}
		if !ok {
			c, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				c.Close()
			}
			return
		}
	}
	if f.server != "" {
		w.Header().Set("Server", f.server)
	}
	q := r.URL.Query()
	if f.password != "" {
		u, p, basic := r.BasicAuth()
		f.mu.Lock()
		f.auths = append(f.auths, "basic="+boolStr(basic)+" query="+boolStr(q.Has("password")))
		f.mu.Unlock()
		if !(basic && u == "admin" && p == f.password) && !(q.Get("user") == "admin" && q.Get("password") == f.password) {
			w.Header().Set("Content-Type", "application/json")
			if !f.oldAuth {
				w.WriteHeader(http.StatusUnauthorized)
			}
			w.Write([]byte(`{"WARNING":"Need user=<username>&password=<password>"}`))
			return
		}
	}
	cmnd := q.Get("cmnd")
	f.mu.Lock()
	f.commands = append(f.commands, cmnd)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	body, ok := f.replies[strings.ToLower(cmnd)]
	if !ok {
		body = []byte(`{"Command":"Unknown"}`)
	}
	w.Write(body)
}

// seen returns copies of what the fake recorded.
func (f *fakeTasmota) seen() (commands, referers, auths []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.commands), slices.Clone(f.referers), slices.Clone(f.auths)
}

func boolStr(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func tasmotaWith(t *testing.T, status0 string, extra map[string]string) *fakeTasmota {
	f := &fakeTasmota{replies: map[string][]byte{"status 0": readFixture(t, status0)}}
	for k, v := range extra {
		if strings.HasSuffix(v, ".json") {
			f.replies[k] = readFixture(t, v)
		} else {
			f.replies[k] = []byte(v)
		}
	}
	return f
}

// TestIdentifyTasmotaVersions replays Status 0 replies of several Tasmota
// versions, whose field types differ, and checks what a user reads.
func TestIdentifyTasmotaVersions(t *testing.T) {
	tests := []struct {
		name    string
		fixture string
		extra   map[string]string
		server  string
		want    Result
	}{
		{
			name: "11.1.0 ESP8266", fixture: "tasmota-11.1.0-esp8266.json",
			extra:  map[string]string{"module": `{"Module":{"1":"Sonoff Basic"}}`},
			server: "Tasmota/11.1.0 (ESP8266EX)",
			want: Result{Firmware: Tasmota, Version: "11.1.0", Build: "tasmota", Hardware: "ESP8266EX", Chip: "ESP8266",
				MAC: "4C:11:AE:11:F8:50", IP: "192.168.100.81", Hostname: "Tasmota", Name: "Tasmota", Module: "Sonoff Basic (1)",
				Uptime: 202*24*time.Hour + time.Hour + 24*time.Minute + 51*time.Second, RSSI: 100, Signal: -50},
		},
		{
			name: "12.5.0 lite ESP8285", fixture: "tasmota-12.5.0-lite-esp8285.json",
			extra: map[string]string{"module": `{"Module":{"0":"Gosund WP5"}}`},
			want: Result{Firmware: Tasmota, Version: "12.5.0", Build: "lite", Hardware: "ESP8285N08", Chip: "ESP8285",
				MAC: "C4:5B:BE:83:88:A5", IP: "192.168.178.85", Hostname: "tasmota-8388A5-2213", Name: "Plug 3", Module: "Gosund WP5 (0)",
				Uptime: 217 * time.Second, RSSI: 64, Signal: -68},
		},
		{
			name: "14.4.1 ESP32, Power as string", fixture: "tasmota-14.4.1-esp32.json",
			server: "Tasmota/14.4.1 (ESP32-D0WD-V3 v", // cut at 32 bytes as Tasmota does
			want: Result{Firmware: Tasmota, Version: "14.4.1", Build: "release-nspanel", Hardware: "ESP32-D0WD-V3 v3.1", Chip: "ESP32",
				MAC: "08:3A:F2:11:2F:1A", IP: "10.0.0.42", Hostname: "nspanel-2F1A", Name: "NSPanel", Module: "module 1",
				Uptime: 273906 * time.Second, RSSI: 82, Signal: -59},
		},
		{
			name: "15.2.0 sections lost in the log capture", fixture: "tasmota-15.2.0-status0-partial.json",
			extra: map[string]string{"status 5": "tasmota-15.2.0-status5.json", "status 11": "tasmota-15.2.0-status11.json"},
			want: Result{Firmware: Tasmota, Version: "15.2.0", Build: "release-tasmota", Hardware: "ESP8266EX", Chip: "ESP8266",
				MAC: "48:3F:DA:A1:B2:C3", IP: "192.168.1.61", Hostname: "tasmota-A1B2C3-4803", Name: "Desk lamp", Module: "module 0",
				Uptime: 62 * time.Second, RSSI: 70, Signal: -65},
		},
		{
			name: "5.11 old format", fixture: "tasmota-5.11.1d-esp8266.json",
			want: Result{Firmware: Tasmota, Version: "5.11.1d", MAC: "60:01:94:0C:D6:BD", IP: "192.168.1.97", Hostname: "sonoff-5821",
				Name: "Sonoff", Module: "module 1", Uptime: 5*time.Minute + 12*time.Second, RSSI: 78},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fn := newFakeNet()
			dev := tasmotaWith(t, tc.fixture, tc.extra)
			dev.server = tc.server
			dev.selfNames = []string{"plug.lan"} // SetOption128 0: the Referer must name the device
			fn.httpServer(t, "plug.lan:80", dev)
			res, err := Identify(context.Background(), "plug.lan", Options{Dial: fn.Dial})
			if err != nil {
				t.Fatalf("Identify: %v (hint: %s)", err, flasher.Hint(err))
			}
			got := *res
			got.Host, got.Evidence, got.Warnings = "", nil, nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("result\n got %+v\nwant %+v", got, tc.want)
			}
			_, referers, _ := dev.seen()
			for _, r := range referers {
				if r != "http://plug.lan/" {
					t.Errorf("Referer %q, want http://plug.lan/", r)
				}
			}
			if tc.server != "" && !containsLine(res.Evidence, "Server: "+tc.server) {
				t.Errorf("evidence %q lacks the Server header", res.Evidence)
			}
		})
	}
}

func containsLine(lines []string, sub string) bool {
	for _, l := range lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// TestIdentifyTasmotaFallbackCommands checks that the missing sections are
// asked for one by one, in the documented smaller commands.
func TestIdentifyTasmotaFallbackCommands(t *testing.T) {
	fn := newFakeNet()
	dev := tasmotaWith(t, "tasmota-15.2.0-status0-partial.json", map[string]string{
		"status 5": "tasmota-15.2.0-status5.json", "status 11": "tasmota-15.2.0-status11.json"})
	fn.httpServer(t, "10.0.0.9:80", dev)
	res, err := Identify(context.Background(), "10.0.0.9", Options{Dial: fn.Dial})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Status 0", "Status 5", "Status 11", "Module"}
	if commands, _, _ := dev.seen(); strings.Join(commands, "|") != strings.Join(want, "|") {
		t.Errorf("commands %q, want %q", commands, want)
	}
	if !containsLine(res.Evidence, "Status 5 filled in StatusNET") {
		t.Errorf("evidence %q does not say where StatusNET came from", res.Evidence)
	}
}

// TestIdentifyTasmotaAnswers covers the replies a user meets when the API
// does not simply work, each with the message the user reads.
func TestIdentifyTasmotaAnswers(t *testing.T) {
	status0 := "tasmota-11.1.0-esp8266.json"
	protected := func() *fakeTasmota {
		f := tasmotaWith(t, status0, nil)
		f.password = "joker"
		return f
	}
	tests := []struct {
		name     string
		host     string
		dev      func() *fakeTasmota
		password string
		wantKind Kind
		wantFW   Firmware
		wantMsg  []string
		wantHint string
	}{
		{
			name: "referer gate, device known by IP only",
			host: "plug.lan", // resolves (via the test dialer) to 127.0.0.1
			dev: func() *fakeTasmota {
				f := tasmotaWith(t, status0, nil)
				f.selfNames = []string{"192.168.100.81", "tasmota-ab12"}
				return f
			},
			wantKind: KindEmptyReply, wantFW: Tasmota,
			wantMsg:  []string{"closed the connection without a reply", "Referer (http://127.0.0.1/)", "SetOption128 0"},
			wantHint: "SetOption128 1",
		},
		{
			name:     "password needed, none given",
			dev:      protected,
			wantKind: KindAuth, wantFW: Tasmota,
			wantMsg:  []string{"asks for its web password", `HTTP 401 {"WARNING":"Need user=<username>&password=<password>"}`},
			wantHint: "--password",
		},
		{
			name:     "wrong password",
			dev:      protected,
			password: "batman",
			wantKind: KindAuth, wantFW: Tasmota,
			wantMsg:  []string{`rejected the user "admin" and the password`},
			wantHint: "WebPassword 0",
		},
		{
			name: "old Tasmota: wrong password as HTTP 200",
			dev: func() *fakeTasmota {
				f := tasmotaWith(t, status0, nil)
				f.password, f.oldAuth = "joker", true
				return f
			},
			wantKind: KindAuth, wantFW: Tasmota,
			wantMsg: []string{"asks for its web password", "HTTP 200"},
		},
		{
			name: "Command Unknown",
			dev: func() *fakeTasmota {
				return &fakeTasmota{replies: map[string][]byte{}, server: "Tasmota/15.0.1 (ESP8266EX)"}
			},
			wantKind: KindUnknownCommand, wantFW: Tasmota,
			wantMsg:  []string{`answered {"Command":"Unknown"} to Status 0`, "cannot report its status"},
			wantHint: "minimal or safe-boot",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			host := tc.host
			if host == "" {
				host = "192.168.100.81"
			}
			fn := newFakeNet()
			fn.httpServer(t, host+":80", tc.dev())
			res, err := Identify(context.Background(), host, Options{Dial: fn.Dial, Password: tc.password, Timeout: 2 * time.Second})
			if err == nil {
				t.Fatalf("Identify succeeded: %+v", res)
			}
			var pe *ProbeError
			if !errors.As(err, &pe) || pe.Kind != tc.wantKind {
				t.Fatalf("error %v (kind %q), want kind %q", err, KindOf(err), tc.wantKind)
			}
			for _, m := range tc.wantMsg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("message %q lacks %q", err, m)
				}
			}
			if !strings.HasPrefix(err.Error(), host+": ") {
				t.Errorf("message %q does not name the host first", err)
			}
			if h := flasher.Hint(err); !strings.Contains(h, tc.wantHint) {
				t.Errorf("hint %q lacks %q", h, tc.wantHint)
			}
			if res == nil || res.Firmware != tc.wantFW {
				t.Errorf("partial result %+v, want firmware %s", res, tc.wantFW)
			}
			if tc.password != "" && strings.Contains(err.Error(), tc.password) {
				t.Errorf("message %q shows the password", err)
			}
		})
	}
}

// TestIdentifyRefererRetryByIP: addressed by a name the device does not
// know, the gate is passed by naming the IP the connection went to.
func TestIdentifyRefererRetryByIP(t *testing.T) {
	fn := newFakeNet()
	dev := tasmotaWith(t, "tasmota-11.1.0-esp8266.json", nil)
	dev.selfNames = []string{"127.0.0.1"}
	fn.httpServer(t, "printer-room-plug.example:80", dev)
	res, err := Identify(context.Background(), "printer-room-plug.example", Options{Dial: fn.Dial})
	if err != nil {
		t.Fatalf("Identify: %v", err)
	}
	if res.Firmware != Tasmota || res.MAC != "4C:11:AE:11:F8:50" {
		t.Errorf("got %+v", res)
	}
	if _, referers, _ := dev.seen(); len(referers) < 2 || referers[0] != "http://printer-room-plug.example/" || referers[1] != "http://127.0.0.1/" {
		t.Errorf("referers %q: want the name first, then the IP", referers)
	}
}

// TestIdentifyPasswordBothWays: the password goes as Basic auth and as the
// user/password parameters, so that old and new Tasmota accept it, and is
// never shown.
func TestIdentifyPasswordBothWays(t *testing.T) {
	fn := newFakeNet()
	dev := tasmotaWith(t, "tasmota-11.1.0-esp8266.json", nil)
	dev.password = "jo ker&1"
	fn.httpServer(t, "192.168.100.81:80", dev)
	res, err := Identify(context.Background(), "192.168.100.81", Options{Dial: fn.Dial, Password: "jo ker&1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != "11.1.0" {
		t.Errorf("version %q", res.Version)
	}
	_, _, auths := dev.seen()
	for _, a := range auths {
		if a != "basic=yes query=yes" {
			t.Errorf("request auth %q, want both", a)
		}
	}
	for _, e := range res.Evidence {
		if strings.Contains(e, "jo ker") || strings.Contains(e, "jo%20ker") {
			t.Errorf("evidence %q shows the password", e)
		}
	}
}

// TestIdentifyNotATasmota: garbage and foreign web servers, with ESPHome's
// probes failing too.
func TestIdentifyNotATasmota(t *testing.T) {
	tests := []struct {
		name     string
		reply    []byte
		wantKind Kind
		wantMsg  string
	}{
		{"router page", httpReply(200, map[string]string{"Content-Type": "text/html"}, "<!DOCTYPE html><html><head><title>FRITZ!Box</title>"),
			KindNotJSON, `answered the status request with something that is not JSON (HTTP 200 text/html, 51 bytes: "<!DOCTYPE html><html><head><title>FRITZ!Box</title>")`},
		{"binary junk", httpReply(200, nil, "\x00\x01\xfe garbage"),
			KindNotJSON, "not JSON"},
		{"truncated JSON", httpReply(200, map[string]string{"Content-Type": "application/json"}, `{"Status":{"Module":1,"Dev`),
			KindNotJSON, "not JSON"},
		{"404 page", httpReply(404, map[string]string{"Content-Type": "text/plain"}, "Not found"),
			KindNotFirmware, `a web server answers (HTTP 404 text/plain, 9 bytes: "Not found") but it is neither Tasmota, OpenBeken nor ESPHome`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fn := newFakeNet()
			fn.rawServer(t, "10.1.1.1:80", func(*http.Request) []byte { return tc.reply })
			res, err := Identify(context.Background(), "10.1.1.1", Options{Dial: fn.Dial, Timeout: time.Second})
			if KindOf(err) != tc.wantKind {
				t.Fatalf("error %v, want kind %s", err, tc.wantKind)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("message %q lacks %q", err, tc.wantMsg)
			}
			if !strings.Contains(flasher.Hint(err), "another device") {
				t.Errorf("hint %q", flasher.Hint(err))
			}
			if res.Firmware != Unknown {
				t.Errorf("firmware %s", res.Firmware)
			}
			if tc.wantKind == KindNotJSON && !errors.Is(err, flasher.ErrProtocol) {
				t.Errorf("%v does not match flasher.ErrProtocol", err)
			}
		})
	}
}

// TestIdentifyUserMode: Tasmota with WebServer 1 serves its main page on
// every URL, the API included.
func TestIdentifyUserMode(t *testing.T) {
	fn := newFakeNet()
	fn.rawServer(t, "10.1.1.2:80", func(*http.Request) []byte {
		return httpReply(200, map[string]string{"Content-Type": "text/html", "Server": "Tasmota/13.4.0 (ESP8266EX)"}, "<!DOCTYPE html><html lang=\"en\">")
	})
	res, err := Identify(context.Background(), "10.1.1.2", Options{Dial: fn.Dial})
	if KindOf(err) != KindUserMode || !strings.Contains(flasher.Hint(err), "WebServer 2") {
		t.Fatalf("error %v, hint %q", err, flasher.Hint(err))
	}
	if res.Firmware != Tasmota || res.Hardware != "ESP8266EX" || res.Version != "13.4.0" {
		t.Errorf("partial result %+v", res)
	}
}

func TestIdentifyBadHost(t *testing.T) {
	for _, h := range []string{"", "   ", "http://", "user:pw@host"} {
		if _, err := Identify(context.Background(), h, Options{}); err == nil {
			t.Errorf("Identify(%q) accepted the address", h)
		}
	}
}

func TestSplitTasmotaVersion(t *testing.T) {
	for _, tc := range []struct{ in, version, build string }{
		{"12.5.0(tasmota)", "12.5.0", "tasmota"},
		{"14.4.1.2(release-tasmota)", "14.4.1.2", "release-tasmota"},
		{"5.11.1d", "5.11.1d", ""},
		{"demo-1(tasmota)", "demo-1", "tasmota"}, // tuyaflash's demo image
		{"something odd", "something odd", ""},
		{"", "", ""},
	} {
		if v, b := splitTasmotaVersion(tc.in); v != tc.version || b != tc.build {
			t.Errorf("%q: %q %q, want %q %q", tc.in, v, b, tc.version, tc.build)
		}
	}
}
