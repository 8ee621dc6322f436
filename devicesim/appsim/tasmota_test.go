package appsim

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tuyaflash/tuyaflash/firmware/demo"
	"github.com/tuyaflash/tuyaflash/postflash"
	"github.com/tuyaflash/tuyaflash/provision"
	"github.com/tuyaflash/tuyaflash/transport"
)

// tasmotaAP is the access point of the test device's MAC.
const tasmotaAP = "tasmota-C658CC-6348"

// The Tasmota demo on an ESP8266: Wi-Fi manager, provisioning over its
// access point with tuyaflash's client, the station identified with the
// eFuse MAC, then a name and a template kept across a reset.
func TestTasmotaLifecycleAP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBench(t, "ESP8266", espFlash(mustESPDemo(t, demo.Tasmota)), Timing{})
		b.fw.Boot(b.flash)
		time.Sleep(2 * time.Second)
		st := b.fw.Status()
		if st.AccessPoint != tasmotaAP {
			t.Fatalf("access point %q, want %s", st.AccessPoint, tasmotaAP)
		}
		if fw, _ := provision.ClassifyAP(st.AccessPoint); fw != postflash.Tasmota {
			t.Errorf("ClassifyAP(%q) = %s", st.AccessPoint, fw)
		}
		res, err := provision.ProvisionAP(t.Context(), postflash.Tasmota, virtualWiFi, provision.APOptions{Host: b.fw.APAddr(), Dial: b.dial})
		if err != nil {
			t.Fatalf("ProvisionAP: %v", err)
		}
		if res.MAC != espMAC || res.Name != tasmotaAP {
			t.Errorf("read on the access point: MAC %q, name %q", res.MAC, res.Name)
		}
		time.Sleep(defaultRestart + defaultBoot + defaultJoin + time.Second) // the success page comes before the restart
		if st := b.fw.Status(); st.Station != DefaultSSID || st.AccessPoint != "" {
			t.Fatalf("after provisioning: %+v", st)
		}
		r := identify(t, b, postflash.Tasmota)
		// StatusFWR.Version is "demo-1(tasmota)": version and build.
		if r.Version != "demo-1" || r.Build != "tasmota" || r.Chip != "ESP8266" || r.Hostname != tasmotaAP || r.Module != "Sonoff Basic (1)" {
			t.Errorf("identified %q on %q, host %q, module %q", r.Version, r.Chip, r.Hostname, r.Module)
		}

		sta := b.fw.StationAddr()
		tpl := `{"NAME":"Plug X","GPIO":[0,0,0,32,2720,2656,0,0,2624,320,224,0,0,0],"FLAG":0,"BASE":18}`
		_, body := b.get(sta, "/cm?cmnd="+url.QueryEscape("Backlog DeviceName Kitchen; Template "+tpl+"; Module 0"))
		if body != "{}" {
			t.Errorf("Backlog answered %q", body)
		}
		time.Sleep(time.Second + defaultRestart) // three commands 200 ms apart, then Module's restart
		time.Sleep(defaultBoot + defaultJoin + time.Second)
		r = identify(t, b, postflash.Tasmota)
		if r.Name != "Kitchen" || r.Module != "Plug X (0)" {
			t.Errorf("after Backlog: name %q, module %q", r.Name, r.Module)
		}
		b.fw.Halt()
		b.fw.Boot(b.flash)
		time.Sleep(defaultBoot + defaultJoin + time.Second)
		_, body = b.get(sta, "/cm?cmnd=Template")
		var got tasmotaTemplate
		if err := json.Unmarshal([]byte(body), &got); err != nil || got.Name != "Plug X" || got.GPIO[10] != 224 {
			t.Errorf("Template after reset: %v %s", err, body)
		}
		if r := identify(t, b, postflash.Tasmota); r.Name != "Kitchen" {
			t.Errorf("DeviceName after reset: %q", r.Name)
		}
	})
}

// Tasmota's HTTP API gate: a request without a Referer naming the device
// gets no reply at all, the Server header names Tasmota, SetOption128
// lifts the gate, and a web password asks for credentials.
func TestTasmotaAPIGate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBench(t, "ESP8266", espFlash(mustESPDemo(t, demo.Tasmota)), Timing{})
		b.fw.Boot(b.flash)
		time.Sleep(2 * time.Second)
		b.get(b.fw.APAddr(), "/wi?s1="+DefaultSSID+"&p1="+DefaultPassword+"&save=")
		time.Sleep(defaultJoin + time.Second)
		b.get(b.fw.APAddr(), "/wi") // the success page starts the restart
		time.Sleep(defaultRestart + defaultBoot + defaultJoin + time.Second)
		sta := b.fw.StationAddr()

		do := func(referer, query string) (*http.Response, string, error) {
			req, _ := http.NewRequest(http.MethodGet, "http://"+sta+"/cm?"+query, nil)
			if referer != "" {
				req.Header.Set("Referer", referer)
			}
			resp, err := b.client().Do(req)
			if err != nil {
				return nil, "", err
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp, string(body), nil
		}
		if _, _, err := do("", "cmnd=Power"); err == nil {
			t.Error("a request without Referer got a reply")
		}
		if _, _, err := do("http://192.168.1.9/", "cmnd=Power"); err == nil {
			t.Error("a request with a foreign Referer got a reply")
		}
		resp, body, err := do("http://"+sta+"/", "cmnd=Power%20ON")
		if err != nil || body != `{"POWER":"ON"}` || resp.Header.Get("Server") != "Tasmota/demo-1 (ESP8266EX)" {
			t.Fatalf("Power ON: %v %q %v", err, body, resp.Header)
		}
		if _, body, _ := do("http://"+sta+"/", "cmnd=SetOption128%201"); body != `{"SetOption128":"ON"}` {
			t.Errorf("SetOption128 1: %q", body)
		}
		if _, body, err := do("", "cmnd=Power"); err != nil || body != `{"POWER":"ON"}` {
			t.Errorf("after SetOption128 1: %v %q", err, body)
		}
		do("", "cmnd=WebPassword%20secret9")
		if resp, body, _ := do("", "cmnd=Power"); resp.StatusCode != 401 || !strings.Contains(body, "Need user=") {
			t.Errorf("without the password: %d %q", resp.StatusCode, body)
		}
		if _, body, _ := do("", "user=admin&password=secret9&cmnd=Power"); body != `{"POWER":"ON"}` {
			t.Errorf("with the password: %q", body)
		}
		if _, body, _ := do("", "user=admin&password=secret9&cmnd=NoSuchCommand"); body != `{"Command":"Unknown"}` {
			t.Errorf("unknown command: %q", body)
		}
	})
}

// serialPort connects a transport port to the firmware's console the way a
// chip simulator does: bytes from the host go to Serial, and Serial(nil)
// is polled for what the firmware prints on its own.
func serialPort(t *testing.T, fw *Firmware) transport.Port {
	host, chip := transport.Pipe(transport.LinkOptions{Baud: 115200})
	go func() {
		buf := make([]byte, 256)
		for {
			chip.SetReadTimeout(20 * time.Millisecond)
			n, err := chip.Read(buf)
			if err != nil {
				return
			}
			if out := fw.Serial(buf[:n]); len(out) > 0 {
				if _, err := chip.Write(out); err != nil {
					return
				}
			}
		}
	}()
	t.Cleanup(func() { host.Close(); chip.Close() })
	return host
}

// Tasmota over its serial console with tuyaflash's client: Status 5 tells
// the MAC, the Backlog takes the network, the device restarts and reports
// the address of its web server.
func TestTasmotaSerialProvisioning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBench(t, "ESP8266", espFlash(mustESPDemo(t, demo.Tasmota)), Timing{})
		b.fw.Boot(b.flash)
		time.Sleep(2 * time.Second)
		p := serialPort(t, b.fw)
		res, err := provision.Serial(t.Context(), p, virtualWiFi, provision.SerialOptions{})
		if err != nil {
			t.Fatalf("provision.Serial: %v\n%s", err, strings.Join(res.Transcript, "\n"))
		}
		if res.MAC != espMAC || res.IP != b.fw.StationAddr() || res.Hostname != tasmotaAP {
			t.Errorf("serial result: MAC %q, IP %q, host %q", res.MAC, res.IP, res.Hostname)
		}
		transcript := strings.Join(res.Transcript, "\n")
		for _, want := range []string{"CMD: Status 5", `RSL: STATUS5 = {"StatusNET":`, `RSL: RESULT = {"SSId1":"tuyaflash-virtual"}`,
			`RSL: RESULT = {"Password1":"****"}`, "APP: Restarting", "WIF: Connected", "HTP: Web server active on " + tasmotaAP + " with IP address " + b.fw.StationAddr()} {
			if !strings.Contains(transcript, want) {
				t.Errorf("transcript lacks %q:\n%s", want, transcript)
			}
		}
		if strings.Contains(transcript, DefaultPassword) {
			t.Error("the transcript shows the password")
		}
		identify(t, b, postflash.Tasmota)
	})
}

// Wrong credentials: over the access point the test fails and the form
// comes back while the access point stays; over the console the device
// reports the refused password and keeps retrying, without access point.
func TestTasmotaWrongPassword(t *testing.T) {
	wrong := provision.WiFi{SSID: DefaultSSID, Password: "not-the-password"}
	t.Run("access point", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newBench(t, "ESP8266", espFlash(mustESPDemo(t, demo.Tasmota)), Timing{})
			boot := time.Now()
			b.fw.Boot(b.flash)
			time.Sleep(2 * time.Second)
			_, err := provision.ProvisionAP(t.Context(), postflash.Tasmota, wrong, provision.APOptions{Host: b.fw.APAddr(), Dial: b.dial})
			if err == nil || !strings.Contains(err.Error(), "could not join") {
				t.Fatalf("ProvisionAP = %v, want the device's refusal", err)
			}
			if st := b.fw.Status(); st.AccessPoint != tasmotaAP || st.Station != "" {
				t.Errorf("status %+v", st)
			}
			// 3 minutes after it opened Tasmota restarts and opens it again.
			opened := boot.Add(defaultBoot + tasmotaAPDelay)
			time.Sleep(time.Until(opened.Add(defaultWifiManager + 100*time.Millisecond)))
			if st := b.fw.Status(); st.AccessPoint != "" {
				t.Errorf("access point still up across the restart: %+v", st)
			}
			time.Sleep(defaultBoot + tasmotaAPDelay)
			if st := b.fw.Status(); st.AccessPoint != tasmotaAP {
				t.Errorf("access point did not come back: %+v", st)
			}
		})
	})
	t.Run("serial", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newBench(t, "ESP8266", espFlash(mustESPDemo(t, demo.Tasmota)), Timing{})
			b.fw.Boot(b.flash)
			time.Sleep(2 * time.Second)
			_, err := provision.Serial(t.Context(), serialPort(t, b.fw), wrong, provision.SerialOptions{})
			if err == nil || !strings.Contains(err.Error(), "refused the password") {
				t.Fatalf("provision.Serial = %v, want the refused password", err)
			}
			time.Sleep(10 * time.Minute)
			if st := b.fw.Status(); st.AccessPoint != "" || st.Station != "" {
				t.Errorf("status %+v", st)
			}
			if !b.refused(b.fw.StationAddr()) {
				t.Error("the station answers")
			}
		})
	})
}

// The console drops what Tasmota's SerialInput drops and answers Status 0
// section by section.
func TestTasmotaConsole(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBench(t, "ESP8266", espFlash(mustESPDemo(t, demo.Tasmota)), Timing{})
		b.fw.Boot(b.flash)
		time.Sleep(2 * time.Second)
		b.fw.Serial(nil)
		out := string(b.fw.Serial([]byte("Topic\xE9\r\nStat")))
		if out != "" {
			t.Errorf("a line with a byte above 127 was answered: %q", out)
		}
		out = string(b.fw.Serial([]byte("us 0\r\n")))
		var topics []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\r\n") {
			if _, rest, ok := strings.Cut(l, " RSL: "); ok {
				topics = append(topics, strings.SplitN(rest, " ", 2)[0])
			}
		}
		want := "STATUS STATUS1 STATUS2 STATUS3 STATUS4 STATUS5 STATUS6 STATUS7 STATUS10 STATUS11"
		if strings.Join(topics, " ") != want {
			t.Errorf("Status 0 topics %v, want %s\n%s", topics, want, out)
		}
		if !strings.Contains(out, "CMD: Status 0") {
			t.Errorf("no echo: %q", out)
		}
	})
}

// Real loopback sockets with fast timing: the firmware listens on
// 127.0.0.1, Halt closes the ports, Boot opens them again at the same
// address.
func TestLoopback(t *testing.T) {
	fw, err := New(Config{Chip: "ESP8266", MAC: espMAC, Timing: FastTiming()})
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Halt()
	flash := espFlash(mustESPDemo(t, demo.Tasmota))
	fw.Boot(flash)
	waitFor(t, "the access point", 10*time.Second, func() bool { return fw.Status().AccessPoint != "" })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := provision.ProvisionAP(ctx, postflash.Tasmota, virtualWiFi, provision.APOptions{Host: fw.APAddr(), Poll: 10 * time.Millisecond}); err != nil {
		t.Fatalf("ProvisionAP: %v", err)
	}
	waitFor(t, "the station", 10*time.Second, func() bool { return fw.Status().Station != "" })
	opts := postflash.Options{Dial: func(ctx context.Context, n, a string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, n, fw.Redirect(a))
	}}
	r, err := postflash.Identify(ctx, fw.StationAddr(), opts)
	if err != nil || r.Firmware != postflash.Tasmota || r.MAC != espMAC {
		t.Fatalf("Identify: %v %+v", err, r)
	}
	sta := fw.StationAddr()
	fw.Halt()
	if c, err := net.Dial("tcp", sta); err == nil {
		c.Close()
		t.Fatal("the station port is open after Halt")
	}
	fw.Boot(flash)
	waitFor(t, "the station after Boot", 10*time.Second, func() bool { return fw.Status().Station != "" })
	if fw.StationAddr() != sta {
		t.Errorf("the station moved from %s to %s", sta, fw.StationAddr())
	}
	if _, err := postflash.Identify(ctx, fw.StationAddr(), opts); err != nil {
		t.Errorf("Identify after Boot: %v", err)
	}
}
