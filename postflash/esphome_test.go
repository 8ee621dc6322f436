package postflash

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
)

// The client's plaintext HelloRequest, written out by hand: indicator 0,
// length 15, type 1, then client_info="tuyaflash" (field 1),
// api_version_major=1 (field 2), api_version_minor=10 (field 3).
const wantHello = "\x00\x0f\x01\x0a\x09tuyaflash\x10\x01\x18\x0a"

// plainAPI imitates an ESPHome node without encryption: HelloResponse
// (bytes by hand), a ping request the client must skip, then
// DeviceInfoResponse.
func plainAPI(t *testing.T, mac, model string) func(net.Conn) {
	return func(c net.Conn) {
		defer c.Close()
		buf := make([]byte, len(wantHello))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != wantHello {
			t.Errorf("hello %q, %v; want %q", buf, err, wantHello)
			return
		}
		// HelloResponse: 08 01 | 10 0a | 1a 19 "plug (esphome v2024.10.2)" | 22 04 "plug"
		c.Write([]byte("\x00\x25\x02\x08\x01\x10\x0a\x1a\x19plug (esphome v2024.10.2)\x22\x04plug"))
		req := make([]byte, 3)
		if _, err := io.ReadFull(c, req); err != nil || string(req) != "\x00\x00\x09" {
			t.Errorf("device info request %q, %v", req, err)
			return
		}
		c.Write([]byte{0x00, 0x00, 0x07}) // PingRequest
		var info []byte
		info = append(info, 0x08, 0x00) // uses_password=false
		info = appendString(info, 2, "plug")
		info = appendString(info, 3, mac)
		info = appendString(info, 4, "2024.10.2")
		info = appendString(info, 5, "Oct 25 2024, 11:05:25")
		info = appendString(info, 6, model)
		info = append(info, 0x15, 1, 2, 3, 4) // a fixed32 field the client must skip
		info = appendString(info, 12, "Beken")
		info = appendString(info, 13, "Kitchen Plug")
		c.Write(plainFrame(msgDeviceInfoResp, info))
		io.Copy(io.Discard, c)
	}
}

// noiseAPI imitates a node that requires encryption: it rejects a plaintext
// frame with an explicit handshake reject and answers a Noise client hello
// with its server hello (name, and the MAC when mac is not empty).
func noiseAPI(name, mac string) func(net.Conn) {
	return func(c net.Conn) {
		defer c.Close()
		hdr := make([]byte, 3)
		if _, err := io.ReadFull(c, hdr); err != nil {
			return
		}
		if hdr[0] != 0x01 {
			go io.Copy(io.Discard, c) // a TCP peer's buffer takes the rest of the frame
			msg := "\x01Bad indicator byte"
			c.Write(append([]byte{0x01, 0x00, byte(len(msg))}, msg...))
			return
		}
		io.ReadFull(c, make([]byte, binary.BigEndian.Uint16(hdr[1:])))
		hello := "\x01" + name + "\x00"
		if mac != "" {
			hello += mac + "\x00"
		}
		c.Write(append([]byte{0x01, 0x00, byte(len(hello))}, hello...))
		io.Copy(io.Discard, c)
	}
}

// esphomeWeb imitates ESPHome's web server: 404 for /cm, the private
// network access preflight, and /events whose first event is the ping with
// the config. With a password it asks for Digest auth like
// ESPAsyncWebServer and checks the answer independently.
type esphomeWebFake struct {
	t        *testing.T
	password string
	authOK   atomic.Int32
}

var digestParam = regexp.MustCompile(`(\w+)=(?:"([^"]*)"|([^,\s]*))`)

func (f *esphomeWebFake) authorized(r *http.Request) bool {
	if f.password == "" {
		return true
	}
	a := r.Header.Get("Authorization")
	if !strings.HasPrefix(a, "Digest ") {
		return false
	}
	p := map[string]string{}
	for _, m := range digestParam.FindAllStringSubmatch(a, -1) {
		p[m[1]] = m[2] + m[3]
	}
	h := func(s string) string { x := md5.Sum([]byte(s)); return hex.EncodeToString(x[:]) }
	ha1 := h("admin:asyncesp:" + f.password)
	ha2 := h(r.Method + ":" + r.URL.RequestURI())
	want := h(ha1 + ":" + p["nonce"] + ":" + p["nc"] + ":" + p["cnonce"] + ":" + p["qop"] + ":" + ha2)
	ok := p["nonce"] == "6a1b2c" && p["opaque"] == "0pq" && p["uri"] == r.URL.RequestURI() && p["response"] == want
	if ok {
		f.authOK.Add(1)
	}
	return ok
}

func (f *esphomeWebFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/cm" {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	if !f.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Digest realm="asyncesp", qop="auth", nonce="6a1b2c", opaque="0pq"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	switch {
	case r.Method == http.MethodOptions && r.URL.Path != "/" && r.Header.Get("Access-Control-Request-Private-Network") != "":
		w.Header().Set("Access-Control-Allow-Private-Network", "true")
		w.Header().Set("Private-Network-Access-Name", "plug")
		w.Header().Set("Private-Network-Access-ID", "A4:CF:12:C6:58:CC")
	case r.URL.Path == "/events":
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "retry: 30000\r\nid: 1234\r\nevent: ping\r\ndata: {\"title\":\"Kitchen Plug\",\"comment\":\"\",\"ota\":true,\"log\":true,\"lang\":\"en\"}\r\n\r\n")
		fmt.Fprint(w, "event: state\r\ndata: {\"id\":\"switch-relay\",\"state\":\"ON\",\"value\":true}\r\n\r\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done() // the stream never ends
	default:
		http.Error(w, "Not Found", http.StatusNotFound)
	}
}

func TestIdentifyESPHome(t *testing.T) {
	tests := []struct {
		name     string
		web      bool
		password string
		api      func(net.Conn)
		mdns     bool
		want     Result
		evidence []string
	}{
		{
			name: "web server and plaintext API",
			web:  true,
			api:  plainAPI(t, "A4:CF:12:C6:58:CC", "generic-bk7231n-qfn32-tuya"),
			want: Result{Firmware: ESPHome, Version: "2024.10.2", Hardware: "generic-bk7231n-qfn32-tuya", Chip: "BK7231N",
				MAC: "A4:CF:12:C6:58:CC", Hostname: "plug", Name: "Kitchen Plug"},
			evidence: []string{`name "plug", id "A4:CF:12:C6:58:CC"`, `first ping event {"title":"Kitchen Plug"`, `hello answered "plug (esphome v2024.10.2)"`},
		},
		{
			name: "web server with Digest auth, encrypted API with MAC in the Noise hello",
			web:  true, password: "s3cret",
			api:      noiseAPI("plug", "a4cf12c658cc"),
			want:     Result{Firmware: ESPHome, MAC: "A4:CF:12:C6:58:CC", Hostname: "plug", Name: "Kitchen Plug", Encrypted: true},
			evidence: []string{`rejected a plaintext hello ("Bad indicator byte")`, `Noise hello names the node "plug", MAC "a4cf12c658cc"`},
		},
		{
			name: "web server off, encrypted API of an older release, mDNS fills in",
			api:  noiseAPI("plug", ""),
			mdns: true,
			want: Result{Firmware: ESPHome, Version: "2024.10.2", Hardware: "generic-bk7231n-qfn32-tuya", Chip: "BK7231N",
				MAC: "A4:CF:12:C6:58:CC", Hostname: "plug", Name: "Kitchen Plug", Encrypted: true},
			evidence: []string{"mDNS plug._esphomelib._tcp.local: api_encryption=Noise_NNpsk0_25519_ChaChaPoly_SHA256"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fn := newFakeNet()
			var web *esphomeWebFake
			if tc.web {
				web = &esphomeWebFake{t: t, password: tc.password}
				fn.httpServer(t, "plug.local:80", web)
			}
			fn.set("plug.local:6053", route{serve: tc.api})
			opts := Options{Dial: fn.Dial, Password: tc.password, Timeout: 2 * time.Second}
			if tc.mdns {
				opts.MDNS = true
				opts.MDNSAddr = mdnsResponder(t, "plug", "192.168.1.40", map[string]string{
					"friendly_name": "Kitchen Plug", "version": "2024.10.2", "mac": "a4cf12c658cc", "platform": "BK7231N",
					"board": "generic-bk7231n-qfn32-tuya", "network": "wifi", "api_encryption": "Noise_NNpsk0_25519_ChaChaPoly_SHA256"})
			}
			res, err := Identify(context.Background(), "plug.local", opts)
			if err != nil {
				t.Fatalf("Identify: %v (%s)", err, flasher.Hint(err))
			}
			got := *res
			got.Host, got.IP, got.Evidence, got.Warnings = "", "", nil, nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("result\n got %+v\nwant %+v\nevidence %q", got, tc.want, res.Evidence)
			}
			for _, e := range tc.evidence {
				if !containsLine(res.Evidence, e) {
					t.Errorf("evidence %q lacks %q", res.Evidence, e)
				}
			}
			if tc.password != "" {
				if n := web.authOK.Load(); n < 2 {
					t.Errorf("%d requests passed Digest auth, want both probes", n)
				}
			}
		})
	}
}

// TestIdentifyESPHomeWebPassword: without the password the web probes stop
// at 401; the native API still identifies the node.
func TestIdentifyESPHomeWebPassword(t *testing.T) {
	fn := newFakeNet()
	fn.httpServer(t, "10.0.0.5:80", &esphomeWebFake{t: t, password: "s3cret"})
	res, err := Identify(context.Background(), "10.0.0.5", Options{Dial: fn.Dial})
	if KindOf(err) != KindAuth || !strings.Contains(err.Error(), "10.0.0.5: the web server asks for a password (HTTP 401)") {
		t.Fatalf("error %v", err)
	}
	if res.Firmware != Unknown {
		t.Errorf("firmware %s without any ESPHome evidence", res.Firmware)
	}
	fn.set("10.0.0.5:6053", route{serve: plainAPI(t, "A4:CF:12:C6:58:CC", "esp01_1m")})
	res, err = Identify(context.Background(), "10.0.0.5", Options{Dial: fn.Dial})
	if err != nil || res.Firmware != ESPHome || res.Version != "2024.10.2" || res.Hardware != "esp01_1m" || res.Chip != "" {
		t.Errorf("with the API: %+v, %v", res, err)
	}
}

// mdnsResponder answers one-shot mDNS queries for _esphomelib._tcp.local
// with an answer built by hand, name compression included, and returns its
// address.
func mdnsResponder(t *testing.T, node, ip string, txt map[string]string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := buf[:n]
			if n < 12 || !strings.Contains(string(q), "\x0b_esphomelib\x04_tcp\x05local\x00") {
				continue
			}
			pc.WriteTo(mdnsAnswer(binary.BigEndian.Uint16(q), node, net.ParseIP(ip).To4(), txt), from)
		}
	}()
	return pc.LocalAddr().String()
}

func mdnsAnswer(id uint16, node string, ip net.IP, txt map[string]string) []byte {
	b := []byte{byte(id >> 8), byte(id), 0x84, 0x00, 0, 1, 0, 1, 0, 0, 0, 3}
	// question at 12: _esphomelib._tcp.local PTR IN
	b = append(b, "\x0b_esphomelib\x04_tcp\x05local\x00"...)
	b = append(b, 0, 12, 0, 1)
	rr := func(name []byte, typ byte, rdata []byte) {
		b = append(b, name...)
		b = append(b, 0, typ, 0x80, 1, 0, 0, 0x11, 0x94, byte(len(rdata)>>8), byte(len(rdata)))
		b = append(b, rdata...)
	}
	// PTR: name → pointer to the question (offset 12); rdata "<node>" + pointer to 12
	instOff := len(b) + 12 // where the rdata starts: name(2) + fixed(10)
	rr([]byte{0xC0, 12}, 12, append(append([]byte{byte(len(node))}, node...), 0xC0, 12))
	// SRV: name → pointer to the instance; target "<node>" + pointer to "local" (offset 12+12+5)
	srv := []byte{0, 0, 0, 0, 0x17, 0xA5, byte(len(node))}
	srv = append(srv, node...)
	srv = append(srv, 0xC0, 12+12+5)
	targetOff := len(b) + 12 + 6
	rr([]byte{0xC0, byte(instOff)}, 33, srv)
	var t []byte
	for k, v := range txt {
		t = append(t, byte(len(k)+1+len(v)))
		t = append(t, k+"="+v...)
	}
	rr([]byte{0xC0, byte(instOff)}, 16, t)
	rr([]byte{0xC0, byte(targetOff)}, 1, ip)
	return b
}

func TestBrowseMDNS(t *testing.T) {
	addr := mdnsResponder(t, "plug", "192.168.1.40", map[string]string{"mac": "a4cf12c658cc", "version": "2024.10.2"})
	svcs, err := BrowseMDNS(context.Background(), ESPHomeService, MDNSOptions{Addr: addr, Wait: 300 * time.Millisecond})
	if err != nil || len(svcs) != 1 {
		t.Fatalf("services %+v, %v", svcs, err)
	}
	s := svcs[0]
	if s.Instance != "plug._esphomelib._tcp.local" || s.Host != "plug.local" || s.Port != 6053 ||
		len(s.Addrs) != 1 || s.Addrs[0].String() != "192.168.1.40" || s.TXT["mac"] != "a4cf12c658cc" || s.TXT["version"] != "2024.10.2" {
		t.Errorf("service %+v", s)
	}
}

func TestParseDNSRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{
		nil,
		make([]byte, 11),
		{0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0xC0, 12}, // pointer loop
		{0, 0, 0x84, 0, 0, 1, 0, 0, 0, 0, 0, 0, 5, 'a'},   // label past the end
	} {
		if _, err := parseDNS(b); err == nil {
			t.Errorf("parseDNS(%x) accepted", b)
		}
	}
}

func TestReadFirstEvent(t *testing.T) {
	r := bufio.NewReader(strings.NewReader("\r\nretry: 30000\r\nevent: ping\r\ndata: {\"title\":\"x\",\r\ndata: \"lang\":\"en\"}\r\n\r\nevent: state\r\n"))
	b, err := readFirstEvent(r)
	if err != nil {
		t.Fatal(err)
	}
	ev, data := parseEvent(b)
	if ev != "ping" || data != "{\"title\":\"x\",\n\"lang\":\"en\"}" {
		t.Errorf("event %q data %q", ev, data)
	}
}
