package appsim

import (
	"bufio"
	"bytes"
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tuyaflash/tuyaflash/firmware/demo"
	"github.com/tuyaflash/tuyaflash/postflash"
	"github.com/tuyaflash/tuyaflash/provision"
)

// The ESPHome demo: it cannot join the network of its YAML, opens its
// fallback hotspot after ap_timeout, takes the virtual network through the
// captive portal with tuyaflash's client, and is identified on the station
// through its web server and native API, with its MAC.
func TestESPHomeLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBench(t, "ESP8266", espFlash(mustESPDemo(t, demo.ESPHome)), Timing{})
		b.fw.Boot(b.flash)
		time.Sleep(defaultBoot + defaultFallbackAP - time.Second)
		if st := b.fw.Status(); st.AccessPoint != "" {
			t.Fatalf("fallback hotspot before ap_timeout: %+v", st)
		}
		time.Sleep(2 * time.Second)
		st := b.fw.Status()
		if st.AccessPoint != "esphome-c658cc Fallback Hotspot" {
			t.Fatalf("access point %q", st.AccessPoint)
		}
		if fw, _ := provision.ClassifyAP(st.AccessPoint); fw != postflash.ESPHome {
			t.Errorf("ClassifyAP(%q) = %s", st.AccessPoint, fw)
		}
		res, err := provision.ProvisionAP(t.Context(), postflash.ESPHome, virtualWiFi, provision.APOptions{Host: b.fw.APAddr(), Dial: b.dial})
		if err != nil {
			t.Fatalf("ProvisionAP: %v", err)
		}
		if res.MAC != espMAC || res.Name != "esphome-c658cc" {
			t.Errorf("captive portal: MAC %q, name %q", res.MAC, res.Name)
		}
		time.Sleep(defaultJoin + time.Second)
		if st := b.fw.Status(); st.Station != DefaultSSID || st.AccessPoint != "" {
			t.Fatalf("after provisioning: %+v", st)
		}
		r := identify(t, b, postflash.ESPHome)
		if r.Version != "demo-1" || r.Name != "esphome-c658cc" || r.Hardware != "esp01_1m" {
			t.Errorf("identified %q %q on %q", r.Version, r.Name, r.Hardware)
		}
		// The network is saved: a reset joins it without the hotspot.
		b.fw.Halt()
		b.fw.Boot(b.flash)
		time.Sleep(defaultBoot + defaultJoin + time.Second)
		if st := b.fw.Status(); st.Station != DefaultSSID {
			t.Errorf("after reset: %+v", st)
		}
		identify(t, b, postflash.ESPHome)
	})
}

// An ESPHome image built with the virtual network in its YAML joins at
// once; the native API answers a plaintext hello as ESPHome does.
func TestESPHomeCompiledNetwork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		img := arduinoImage([]byte("node (esphome v2025.2.1)\x00" + DefaultSSID + "\x00" + DefaultPassword + "\x00"))
		b := newBench(t, "ESP8266", espFlash(img), Timing{})
		b.fw.Boot(b.flash)
		time.Sleep(defaultBoot + defaultJoin + time.Second)
		if st := b.fw.Status(); st.Station != DefaultSSID || st.Image.Version != "2025.2.1" {
			t.Fatalf("status %+v", st)
		}
		c, err := b.mem.Dial(context.Background(), "tcp", b.fw.APIAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		hello := pbString(nil, 1, "test")
		hello = pbVarint(hello, 2, 1)
		hello = pbVarint(hello, 3, 10)
		c.Write(apiFrame(apiHelloRequest, hello))
		typ, payload, err := readAPIFrame(bufio.NewReader(c))
		if err != nil || typ != apiHelloResponse {
			t.Fatalf("hello: type %d, %v", typ, err)
		}
		if !bytes.Contains(payload, []byte("esphome-c658cc (esphome v2025.2.1)")) {
			t.Errorf("HelloResponse %q", payload)
		}
		// A Noise client is turned away: the connection closes.
		n, err := b.mem.Dial(context.Background(), "tcp", b.fw.APIAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		n.Write([]byte{0x01, 0x00, 0x00})
		if _, err := n.Read(make([]byte, 1)); err == nil {
			t.Error("the server answered a Noise hello")
		}
		if code, body := b.get(b.fw.StationAddr(), "/switch/Relay"); code != 200 || !strings.Contains(body, `"state":"OFF"`) {
			t.Errorf("GET /switch/Relay: %d %q", code, body)
		}
	})
}

// Wrong credentials through the captive portal: the node saves them, never
// joins, and its fallback hotspot stays open.
func TestESPHomeWrongPassword(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBench(t, "ESP8266", espFlash(mustESPDemo(t, demo.ESPHome)), Timing{})
		b.fw.Boot(b.flash)
		time.Sleep(defaultBoot + defaultFallbackAP + time.Second)
		_, err := provision.ProvisionAP(t.Context(), postflash.ESPHome, provision.WiFi{SSID: DefaultSSID, Password: "wrong-password"},
			provision.APOptions{Host: b.fw.APAddr(), Dial: b.dial})
		if err != nil {
			t.Fatalf("ProvisionAP: %v", err)
		}
		time.Sleep(10 * time.Minute)
		if st := b.fw.Status(); st.Station != "" || st.AccessPoint == "" {
			t.Errorf("status %+v, want the hotspot and no station", st)
		}
		if !b.refused(b.fw.StationAddr()) || !b.refused(b.fw.APIAddr()) {
			t.Error("the station answers")
		}
	})
}
