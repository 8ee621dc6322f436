package appsim

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// ESPHome on ESP8266, after esphome/esphome (components/wifi,
// captive_portal, web_server, api; postflash-and-ecosystem.md §3) and the
// ESPHome documentation (components/wifi, web-api, api).

// esphomeFallbackAP is the captive portal's ssid suffix: the wizard writes
// "<Name> Fallback Hotspot" (esphome/wizard.py).
const esphomeFallbackAP = " Fallback Hotspot"

type esphome struct {
	f  *Firmware
	st *settings
	// compiled is the network in the YAML the image was built from: the
	// virtual network when its name and password are in the image,
	// else one the simulator cannot know (it never joins).
	compiled Network
	relay    bool
}

func newESPHome(f *Firmware) *esphome {
	e := &esphome{f: f}
	f.st = f.loadSettings(func() *settings { return &settings{Firmware: string(KindESPHome)} })
	e.st = f.st
	e.compiled = Network{SSID: "(network in the YAML)"}
	if f.netInFW {
		e.compiled = f.cfg.Network
	}
	return e
}

// name is the node name: "esphome-" and the last three MAC bytes, as
// ESPHome's ready-made projects name theirs (name_add_mac_suffix).
func (e *esphome) name() string {
	m := e.f.mac
	return fmt.Sprintf("esphome-%02x%02x%02x", m[3], m[4], m[5])
}

func (e *esphome) version() string {
	if e.f.img.Version != "" {
		return e.f.img.Version
	}
	return "unknown"
}

// network is the saved network (captive portal), else the YAML's.
func (e *esphome) network() Network {
	if e.st.SSID[0] != "" {
		return Network{SSID: e.st.SSID[0], Password: e.st.Password[0]}
	}
	return e.compiled
}

// start connects; without a connection after ap_timeout the fallback
// hotspot with its captive portal opens, and the node keeps trying.
func (e *esphome) start() {
	e.connect()
	e.f.after(e.f.cfg.Timing.FallbackAP, func() {
		if e.f.joined == "" {
			if e.f.serveHTTP(roleAP, e.f.handler(e.portal, writeHTTP)) {
				e.f.apName = e.name() + esphomeFallbackAP
			}
		}
	})
}

func (e *esphome) connect() {
	f := e.f
	n := e.network()
	f.after(f.cfg.Timing.Join, func() {
		if f.joined != "" {
			return
		}
		if n != e.network() { // saved meanwhile: that attempt runs
			return
		}
		if !f.joins(n.SSID, n.Password) {
			f.after(f.cfg.Timing.Retry, e.connect)
			return
		}
		f.down(roleAP)
		f.apName = ""
		if f.serveHTTP(roleStation, e.webServer()) && f.serveTCP(roleAPI, e.nativeAPI) {
			f.joined = n.SSID
		}
	})
}

// The logger prints on UART0, but the console takes no commands.
func (e *esphome) serialLine([]byte) {}

// portal is the captive portal (captive_portal.cpp): /config.json with
// the MAC, the node name and the scan, /wifisave?ssid=&psk= saving the
// network (250 ms later on ESP8266) and redirecting to /?save.
func (e *esphome) portal(r *http.Request, _ []byte) reply {
	f := e.f
	switch r.URL.Path {
	case "/config.json":
		rep := jsonReply(jsonText(obj{{"mac", f.mac.String()}, {"name", e.name()}, {"aps", []any{
			obj{}, obj{{"ssid", f.cfg.Network.SSID}, {"rssi", -50}, {"lock", 1}},
		}}}))
		rep.header = http.Header{"Cache-Control": {"public, max-age=0, must-revalidate"}}
		return rep
	case "/wifisave":
		q := r.URL.Query()
		ssid, psk := q.Get("ssid"), q.Get("psk")
		f.after(250*time.Millisecond, func() {
			e.st.SSID[0], e.st.Password[0] = ssid, psk
			f.save()
			e.connect()
		})
		return reply{status: http.StatusFound, header: http.Header{"Location": {"/?save"}}}
	case "/":
		return htmlReply(200, "<!DOCTYPE html><html><head><title>"+html.EscapeString(e.name())+"</title></head><body><h1>"+html.EscapeString(e.name())+
			"</h1><form action=\"/wifisave\"><input id=\"ssid\" name=\"ssid\"><input id=\"psk\" name=\"psk\" type=\"password\"><input type=\"submit\" value=\"Save\"></form></body></html>")
	}
	return reply{status: http.StatusFound, header: http.Header{"Location": {"/"}}}
}

// webServer is web_server v2 (web_server.cpp): the index, the Private
// Network Access preflight naming the node and its MAC, the event stream
// whose first "ping" carries the config, and one switch entity "Relay"
// (REST URLs by entity name, web-api/index.mdx).
func (e *esphome) webServer() http.Handler {
	f := e.f
	rest := f.handler(e.rest, writeHTTP)
	g := f.gen
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Private-Network") != "" && r.URL.Path != "/":
			f.mu.Lock()
			ok := f.gen == g && f.running
			name, mac := e.name(), f.mac.String()
			f.mu.Unlock()
			if !ok {
				drop(w)
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Private-Network", "true")
			h.Set("Private-Network-Access-Name", name)
			h.Set("Private-Network-Access-ID", mac)
			h.Set("Access-Control-Allow-Origin", "*")
			w.WriteHeader(http.StatusOK)
		case r.URL.Path == "/events":
			e.events(w, r, g)
		default:
			rest.ServeHTTP(w, r)
		}
	})
}

func (e *esphome) config() []byte {
	return jsonText(obj{{"title", e.name()}, {"comment", ""}, {"ota", true}, {"log", true}, {"lang", "en"}})
}

func (e *esphome) relayState() obj {
	return obj{{"id", "switch/Relay"}, {"name", "Relay"}, {"state", onOff(e.relay)}, {"value", e.relay}}
}

// events is the server-sent event stream: ping with the config, the
// states, then a ping every 10 s until the client or the device goes.
func (e *esphome) events(w http.ResponseWriter, r *http.Request, g uint64) {
	f := e.f
	f.mu.Lock()
	ok := f.gen == g && f.running
	cfg, state := e.config(), jsonText(e.relayState())
	var done <-chan struct{}
	if s := f.srv[roleStation]; s != nil {
		done = s.done
	}
	f.mu.Unlock()
	if !ok || done == nil {
		drop(w)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Access-Control-Allow-Origin", "*")
	w.WriteHeader(http.StatusOK)
	start := time.Now()
	id := func() int64 { return time.Since(start).Milliseconds() + 1 }
	fmt.Fprintf(w, "retry: 30000\r\nid: %d\r\nevent: ping\r\ndata: %s\r\n\r\n", id(), cfg)
	fmt.Fprintf(w, "event: state\r\ndata: %s\r\n\r\n", state)
	fl, _ := w.(http.Flusher)
	if fl != nil {
		fl.Flush()
	}
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-done:
			return
		case <-tick.C:
			if _, err := fmt.Fprintf(w, "id: %d\r\nevent: ping\r\ndata: \r\n\r\n", id()); err != nil {
				return
			}
			if fl != nil {
				fl.Flush()
			}
		}
	}
}

// rest serves the index and the Relay switch.
func (e *esphome) rest(r *http.Request, _ []byte) reply {
	f := e.f
	switch p := strings.TrimSuffix(r.URL.Path, "/"); p {
	case "":
		return htmlReply(200, "<!DOCTYPE html><html><head><meta charset=UTF-8><title>"+html.EscapeString(e.name())+"</title></head><body><esp-app></esp-app><script src=\"https://oi.esphome.io/v2/www.js\"></script></body></html>")
	case "/switch/Relay":
		if r.Method == http.MethodGet {
			return jsonReply(jsonText(e.relayState()))
		}
	case "/switch/Relay/turn_on", "/switch/Relay/turn_off", "/switch/Relay/toggle":
		if r.Method == http.MethodPost {
			switch p[len("/switch/Relay/"):] {
			case "turn_on":
				e.relay = true
			case "turn_off":
				e.relay = false
			default:
				e.relay = !e.relay
			}
			f.logf("esphome: Relay %s", onOff(e.relay))
			return reply{status: 200}
		}
		return reply{status: http.StatusMethodNotAllowed}
	}
	return reply{status: 404, ctype: "text/plain", body: []byte("Not Found")}
}

// Native API (api.proto, api_frame_helper.cpp): plaintext frames of
// 0x00, varint length, varint message type, protobuf payload.
const (
	apiHelloRequest       = 1
	apiHelloResponse      = 2
	apiConnectRequest     = 3
	apiConnectResponse    = 4
	apiDisconnectRequest  = 5
	apiDisconnectResponse = 6
	apiPingRequest        = 7
	apiPingResponse       = 8
	apiDeviceInfoRequest  = 9
	apiDeviceInfoResponse = 10
	apiMaxFrame           = 64 << 10
)

// nativeAPI answers one connection: HelloResponse (api_version 1.10,
// server_info "<name> (esphome v<version>)", name), ConnectResponse (no
// password), DeviceInfoResponse, pings, disconnect.
func (e *esphome) nativeAPI(c net.Conn, done <-chan struct{}) {
	f := e.f
	f.mu.Lock()
	g := f.gen
	f.mu.Unlock()
	r := bufio.NewReader(c)
	for {
		typ, _, err := readAPIFrame(r)
		if err != nil {
			if err == errBadIndicator {
				// A Noise client meets a plaintext server: the server
				// closes the connection.
				return
			}
			return
		}
		f.mu.Lock()
		if f.gen != g || !f.running {
			f.mu.Unlock()
			return
		}
		var out []byte
		closeAfter := false
		switch typ {
		case apiHelloRequest:
			p := pbVarint(nil, 1, 1)
			p = pbVarint(p, 2, 10)
			p = pbString(p, 3, e.name()+" (esphome v"+e.version()+")")
			p = pbString(p, 4, e.name())
			out = apiFrame(apiHelloResponse, p)
		case apiConnectRequest:
			out = apiFrame(apiConnectResponse, nil) // invalid_password false
		case apiPingRequest:
			out = apiFrame(apiPingResponse, nil)
		case apiDisconnectRequest:
			out, closeAfter = apiFrame(apiDisconnectResponse, nil), true
		case apiDeviceInfoRequest:
			p := pbString(nil, 2, e.name())
			p = pbString(p, 3, f.mac.String())
			p = pbString(p, 4, e.version())
			p = pbString(p, 5, "Jan  1 2026, 00:00:00")
			p = pbString(p, 6, "esp01_1m")
			p = pbString(p, 12, "Espressif")
			p = pbString(p, 13, e.name())
			out = apiFrame(apiDeviceInfoResponse, p)
		}
		f.mu.Unlock()
		select {
		case <-done:
			return
		default:
		}
		if out != nil {
			if _, err := c.Write(out); err != nil {
				return
			}
		}
		if closeAfter {
			return
		}
	}
}

var errBadIndicator = fmt.Errorf("appsim: not a plaintext native API frame")

func readAPIFrame(r *bufio.Reader) (uint64, []byte, error) {
	ind, err := r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	if ind != 0x00 {
		return 0, nil, errBadIndicator
	}
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return 0, nil, err
	}
	typ, err := binary.ReadUvarint(r)
	if err != nil {
		return 0, nil, err
	}
	if n > apiMaxFrame {
		return 0, nil, fmt.Errorf("appsim: native API frame of %d bytes", n)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, err
	}
	return typ, p, nil
}

func apiFrame(typ uint64, payload []byte) []byte {
	b := []byte{0x00}
	b = binary.AppendUvarint(b, uint64(len(payload)))
	b = binary.AppendUvarint(b, typ)
	return append(b, payload...)
}

// pbVarint and pbString append protobuf fields (wire types 0 and 2).
func pbVarint(b []byte, field int, v uint64) []byte {
	b = binary.AppendUvarint(b, uint64(field)<<3)
	return binary.AppendUvarint(b, v)
}

func pbString(b []byte, field int, s string) []byte {
	b = binary.AppendUvarint(b, uint64(field)<<3|2)
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// stock is the stock Tuya firmware (or any firmware the simulator cannot
// name): it is on the network it was paired with, answers no HTTP, and
// accepts connections on Tuya's local-protocol port, where it waits for
// the encrypted protocol that only the owner's local key opens.
type stock struct{ f *Firmware }

func (s *stock) start() {
	s.f.after(s.f.cfg.Timing.Join, func() {
		s.f.serveTCP(roleTuya, func(c net.Conn, _ <-chan struct{}) {
			io.Copy(io.Discard, c) //nolint:errcheck // until the client goes or down closes it
		})
	})
}

func (s *stock) serialLine([]byte) {}
