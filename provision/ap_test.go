package provision

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/postflash"
)

// apAt serves h as the device at 192.168.4.1 and returns options whose
// dialer reaches it (and nothing else).
func apAt(t *testing.T, h http.Handler) APOptions {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return APOptions{
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr != DefaultAPHost+":80" {
				return nil, &net.OpError{Op: "dial", Net: network, Err: &net.AddrError{Err: "unreachable", Addr: addr}}
			}
			var d net.Dialer
			return d.DialContext(ctx, network, s.Listener.Addr().String())
		},
		Timeout: 2 * time.Second, Poll: 10 * time.Millisecond, Wait: 2 * time.Second,
	}
}

// fakeTasmotaAP imitates Tasmota's Wi-Fi manager (HandleWifiConfiguration):
// save starts a test during which /wi reloads itself; then the success
// page names the new address, or the form returns with the failure.
type fakeTasmotaAP struct {
	password    string // the password the user's network accepts
	restartGone bool   // the access point vanishes after the save

	mu     sync.Mutex
	s1, p1 string
	polls  int
}

func (f *fakeTasmotaAP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := r.URL.Query()
	switch {
	case r.URL.Path == "/cm" && q.Get("cmnd") == "Status 5":
		w.Write([]byte(`{"StatusNET":{"Hostname":"tasmota-C658CC-6348","IPAddress":"0.0.0.0","Gateway":"0.0.0.0","Subnetmask":"0.0.0.0","DNSServer1":"0.0.0.0","DNSServer2":"0.0.0.0","Mac":"A4:CF:12:C6:58:CC","Webserver":2,"HTTP_API":1,"WifiConfig":2,"WifiPower":17.0}}`))
	case r.URL.Path == "/wi" && q.Has("save"):
		f.s1, f.p1, f.polls = q.Get("s1"), q.Get("p1"), 0
		w.Write([]byte(`<script>setTimeout(function(){location.href='.';},10000);</script><div style='text-align:center;'><b>Trying to connect device to network</b><br><br></div>`))
	case r.URL.Path == "/wi":
		f.polls++
		switch {
		case f.restartGone:
			c, _, _ := w.(http.Hijacker).Hijack()
			c.Close()
		case f.polls < 3:
			w.Write([]byte(`<script>setTimeout(function(){location.href='.';},10000);</script><form method='get' action='wi'><input id='s1' value="` + f.s1 + `"></form><h3>Trying to connect device to network<br>` + f.s1 + `</h3></div>`))
		case f.p1 == f.password:
			w.Write([]byte(`<div style='text-align:center;color:#008000;'>Successful WiFi Connection<br><br></div><div style='text-align:center;'>Redirecting to new device's IP address<br><br><a href='http://192.168.1.112'>192.168.1.112</a><br></div>`))
		default:
			w.Write([]byte(`<form method='get' action='wi'><p><b>AP1 SSId</b><br><input id='s1' placeholder="Type or Select your WiFi Network" value="` + f.s1 + `"></p></form><div style='text-align:center;color:#ff5661;'><h3>Connect failed to ` + f.s1 + `<br>Please, check credentials</h3></div>`))
		}
	default:
		http.NotFound(w, r)
	}
}

func TestProvisionTasmotaAP(t *testing.T) {
	const ssid, pass = "Home Net", "pa ss&+word"
	tests := []struct {
		name    string
		dev     *fakeTasmotaAP
		wantIP  string
		wantErr string
		step    string
	}{
		{"joins", &fakeTasmotaAP{password: pass}, "192.168.1.112", "", "answers at http://192.168.1.112/"},
		{"wrong password", &fakeTasmotaAP{password: "other"}, "",
			`Tasmota access point: the device could not join "Home Net": Connect failed to Home Net; Please, check credentials`, ""},
		{"restarts into the network", &fakeTasmotaAP{password: pass, restartGone: true}, "", "", "finds it by its MAC A4:CF:12:C6:58:CC"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := apAt(t, tc.dev)
			res, err := ProvisionAP(context.Background(), postflash.Tasmota, WiFi{ssid, pass}, o)
			tc.dev.mu.Lock()
			s1, p1 := tc.dev.s1, tc.dev.p1
			tc.dev.mu.Unlock()
			if s1 != ssid || p1 != pass {
				t.Errorf("device got s1=%q p1=%q", s1, p1)
			}
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error\n got %v\nwant %s", err, tc.wantErr)
				}
				if !strings.Contains(flasher.Hint(err), "2.4 GHz") {
					t.Errorf("hint %q", flasher.Hint(err))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.NewIP != tc.wantIP || res.MAC != "A4:CF:12:C6:58:CC" || res.Name != "tasmota-C658CC-6348" {
				t.Errorf("result %+v", res)
			}
			if !strings.Contains(strings.Join(res.Steps, "\n"), tc.step) {
				t.Errorf("steps %q lack %q", res.Steps, tc.step)
			}
			for _, e := range res.Evidence {
				if strings.Contains(e, "pa ss") || strings.Contains(e, "pa+ss") {
					t.Errorf("evidence shows the password: %q", e)
				}
			}
		})
	}
}

// fakeOBKAP imitates OpenBeken's Basic auth and http_fn_cfg_wifi_set,
// including what happens to the web password.
type fakeOBKAP struct {
	webPassword string

	mu    sync.Mutex
	query string
	ssid  string
	pass  string
}

func (f *fakeOBKAP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.webPassword != "" {
		if u, p, ok := r.BasicAuth(); !ok || u != "admin" || p != f.webPassword {
			w.Header().Set("WWW-Authenticate", `Basic realm="OpenBeken HTTP Server"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
	}
	q := r.URL.Query()
	switch r.URL.Path {
	case "/api/info":
		w.Write([]byte(`{"uptime_s":40,"build":"Built on Jul 24 2026 10:41:55 version 1.17.670","ip":"192.168.4.1","mac":"7c:87:55:c6:14:b0","flags":"1024","mqtthost":":1883","mqtttopic":"obk55C614B0","chipset":"BK7231N","webapp":"https://openbekeniot.github.io/webapp/","shortName":"obk55C614B0","startcmd":"","supportsSSDP":0,"supportsClientDeviceDB":true}`))
	case "/cfg_wifi_set":
		f.query, f.ssid, f.pass = r.URL.RawQuery, q.Get("ssid"), q.Get("pass")
		if q.Has("web_admin_password_enabled") {
			if q.Get("web_admin_password_enabled") != "0" && len(q.Get("web_admin_password")) >= 5 {
				f.webPassword = q.Get("web_admin_password")
			}
		} else {
			f.webPassword = ""
		}
		w.Write([]byte(`<h1>Saving Wifi</h1>WiFi mode set: connect to WLAN.<p>WiFi: Please wait for module to reset...</p><br><a href="cfg_wifi">Return to WiFi settings</a><br>`))
	default:
		http.NotFound(w, r)
	}
}

func TestProvisionOpenBekenAP(t *testing.T) {
	tests := []struct {
		name        string
		devPassword string
		opt         func(*APOptions)
		wantQuery   string // the web-password part of the form
		wantAfter   string // the device's web password afterwards
		wantErr     string
	}{
		{"fresh device: the password state is left alone", "", func(*APOptions) {},
			"web_admin_password_enabled=0", "", ""},
		{"password kept", "keep-me", func(o *APOptions) { o.WebPassword = "keep-me" },
			"web_admin_password=keep-me&web_admin_password_enabled=1", "keep-me", ""},
		{"password cleared on request", "keep-me", func(o *APOptions) { o.WebPassword, o.ClearWebPassword = "keep-me", true },
			"", "", ""},
		{"password unknown", "keep-me", func(*APOptions) {}, "", "keep-me",
			"OpenBeken access point: 192.168.4.1 asks for the web password (HTTP 401)"},
		{"password too short for OpenBeken", "", func(o *APOptions) { o.WebPassword = "abc" }, "", "",
			"OpenBeken access point: OpenBeken keeps a web password only when it has 5 characters or more"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dev := &fakeOBKAP{webPassword: tc.devPassword}
			o := apAt(t, dev)
			tc.opt(&o)
			res, err := ProvisionAP(context.Background(), postflash.OpenBeken, WiFi{"HomeNet", "s3cret&pass"}, o)
			dev.mu.Lock()
			defer dev.mu.Unlock()
			if dev.webPassword != tc.wantAfter {
				t.Errorf("web password afterwards %q, want %q", dev.webPassword, tc.wantAfter)
			}
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error\n got %v\nwant %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if dev.ssid != "HomeNet" || dev.pass != "s3cret&pass" {
				t.Errorf("device got ssid=%q pass=%q", dev.ssid, dev.pass)
			}
			if !strings.Contains(dev.query, tc.wantQuery) {
				t.Errorf("query %q lacks %q", dev.query, tc.wantQuery)
			}
			if tc.wantQuery == "" && strings.Contains(dev.query, "web_admin") {
				t.Errorf("query %q mentions the web password", dev.query)
			}
			if res.MAC != "7C:87:55:C6:14:B0" || res.Name != "obk55C614B0" || res.NewIP != "" {
				t.Errorf("result %+v", res)
			}
			if !strings.Contains(strings.Join(res.Steps, " "), "finds it by its MAC 7C:87:55:C6:14:B0") {
				t.Errorf("steps %q", res.Steps)
			}
		})
	}
}

func TestProvisionESPHomeAP(t *testing.T) {
	var got []string
	var mu sync.Mutex
	o := apAt(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/config.json":
			w.Write([]byte(`{"mac":"A4:CF:12:C6:58:CC","name":"kitchen-plug","aps":[{},{"ssid":"Neighbour","rssi":-80,"lock":1}]}`))
		case "/wifisave":
			mu.Lock()
			got = append(got, r.URL.Query().Get("ssid"), r.URL.Query().Get("psk"))
			mu.Unlock()
			http.Redirect(w, r, "/?save", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	res, err := ProvisionAP(context.Background(), postflash.ESPHome, WiFi{"HomeNet", "p+w d"}, o)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, "|") != "HomeNet|p+w d" {
		t.Errorf("wifisave got %q", got)
	}
	if res.MAC != "A4:CF:12:C6:58:CC" || res.Name != "kitchen-plug" {
		t.Errorf("result %+v", res)
	}
	ev := strings.Join(res.Evidence, "\n")
	if !strings.Contains(ev, `the node's scan does not list "HomeNet"`) || !strings.Contains(ev, "/wifisave → HTTP 302 /?save") {
		t.Errorf("evidence %q", res.Evidence)
	}
}

func TestProvisionAPNotJoined(t *testing.T) {
	o := APOptions{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}, Timeout: 100 * time.Millisecond}
	_, err := ProvisionAP(context.Background(), postflash.ESPHome, WiFi{"HomeNet", "secret-pass"}, o)
	if err == nil || !strings.HasPrefix(err.Error(), "ESPHome captive portal: no answer from 192.168.4.1") ||
		!strings.Contains(flasher.Hint(err), "join the device's access point") {
		t.Errorf("error %v, hint %q", err, flasher.Hint(err))
	}
	if _, err := ProvisionAP(context.Background(), postflash.StockTuya, WiFi{"HomeNet", "x"}, o); err == nil {
		t.Error("stock firmware accepted")
	}
}

func TestClassifyAP(t *testing.T) {
	for ssid, want := range map[string]postflash.Firmware{
		"tasmota_3D5E26-7718":           postflash.Tasmota,
		"tasmota-C658CC-6348":           postflash.Tasmota,
		"OpenBK7231N_55C614B0":          postflash.OpenBeken,
		"OpenBL602_0A1B2C3D":            postflash.OpenBeken,
		"Kitchen Plug Fallback Hotspot": postflash.ESPHome,
		"SmartLife-1A2B":                postflash.StockTuya,
		"A-CBBA":                        postflash.StockTuya,
		"FRITZ!Box 7590":                postflash.Unknown,
		"tasmota":                       postflash.Unknown,
	} {
		if got, note := ClassifyAP(ssid); got != want || note == "" {
			t.Errorf("ClassifyAP(%q) = %s, %q; want %s", ssid, got, note, want)
		}
	}
}

func TestAPSteps(t *testing.T) {
	for fw, want := range map[postflash.Firmware][]string{
		postflash.Tasmota:   {"tasmota_3D5E26-7718", "3 minutes", "one client"},
		postflash.OpenBeken: {"OpenBK7231N_XXXXXXXX", "clears the web password", "192.168.169.1"},
		postflash.ESPHome:   {"wifi: ap: password"},
		postflash.StockTuya: {"flash again"},
	} {
		name := ""
		if fw == postflash.Tasmota {
			name = "tasmota_3D5E26-7718"
		}
		s := strings.Join(APSteps(fw, name), "\n")
		for _, w := range want {
			if !strings.Contains(s, w) {
				t.Errorf("%s steps lack %q:\n%s", fw, w, s)
			}
		}
	}
}

func TestParseARPAndFind(t *testing.T) {
	mac, _ := flasher.ParseMAC("A4:CF:12:C6:58:CC")
	f, err := FindByMAC(context.Background(), mac, FindOptions{ARPFile: "testdata/arp"})
	if err != nil || f.IP.String() != "192.168.1.112" || f.Via != "neighbour table (wlan0)" {
		t.Fatalf("%+v, %v", f, err)
	}
	other, _ := flasher.ParseMAC("A4:CF:12:00:00:01")
	_, err = FindByMAC(context.Background(), other, FindOptions{ARPFile: "testdata/arp"})
	if err == nil || err.Error() != "find by MAC: no device with MAC A4:CF:12:00:00:01 in the neighbour table" ||
		!strings.Contains(flasher.Hint(err), "192.168.1.0/24") {
		t.Errorf("error %v, hint %q", err, flasher.Hint(err))
	}
	zero := flasher.MAC{}
	if _, err := FindByMAC(context.Background(), zero, FindOptions{ARPFile: "testdata/arp"}); err == nil || !strings.Contains(err.Error(), "placeholder") {
		t.Errorf("placeholder: %v", err)
	}
}

func TestFindByMACMDNS(t *testing.T) {
	mac, _ := flasher.ParseMAC("A4:CF:12:C6:58:DD")
	var asked string
	f, err := FindByMAC(context.Background(), mac, FindOptions{ARPFile: "testdata/arp", MDNS: true, Wait: time.Millisecond,
		Browse: func(ctx context.Context, service string, o postflash.MDNSOptions) ([]postflash.MDNSService, error) {
			asked = service
			svcs := []postflash.MDNSService{
				{Instance: "other._esphomelib._tcp.local", TXT: map[string]string{"mac": "a4cf12000000"}, Addrs: []netip.Addr{netip.MustParseAddr("192.168.1.5")}},
				{Instance: "plug._esphomelib._tcp.local", TXT: map[string]string{"mac": "a4cf12c658dd"}, Addrs: []netip.Addr{netip.MustParseAddr("192.168.1.40")}},
			}
			if !o.Match(svcs[1]) || o.Match(svcs[0]) {
				t.Error("Match does not pick the MAC")
			}
			return svcs, nil
		}})
	if err != nil || f.IP.String() != "192.168.1.40" || f.Via != "mDNS plug._esphomelib._tcp.local" || asked != postflash.ESPHomeService {
		t.Fatalf("%+v, %v", f, err)
	}
}

func TestTouch(t *testing.T) {
	n, err := touch(context.Background(), netip.MustParsePrefix("127.0.0.0/30"))
	if err != nil || n != 2 {
		t.Errorf("touched %d, %v; want 2 host addresses", n, err)
	}
	if _, err := touch(context.Background(), netip.MustParsePrefix("10.0.0.0/16")); err == nil {
		t.Error("a /16 was accepted")
	}
}

func TestNewIP(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"<a href='http://192.168.1.112'>192.168.1.112</a>", "192.168.1.112"},
		{"<a href='http://127.84.3.4:40001'>127.84.3.4:40001</a>", "127.84.3.4:40001"}, // a virtual device
		{"<a href='http://192.168.4.1'>back</a>", ""},                                  // the access point itself
		{"<a href='http://192.168.4.1:80'>back</a><a href='http://10.0.0.5'>", "10.0.0.5"},
	} {
		if got := newIP(tc.body); got != tc.want {
			t.Errorf("newIP(%q) = %q, want %q", tc.body, got, tc.want)
		}
	}
}
