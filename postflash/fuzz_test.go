package postflash

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
)

// checkResult asserts what every parser must leave in a Result: a MAC in
// canonical form (it parses back to itself), a non-negative uptime, and a
// JSON encoding.
func checkResult(t *testing.T, res *Result) {
	t.Helper()
	if res.MAC != "" {
		m, err := flasher.ParseMAC(res.MAC)
		if err != nil || m.String() != res.MAC {
			t.Fatalf("MAC %q is not canonical (%v)", res.MAC, err)
		}
	}
	if res.Uptime < 0 {
		t.Fatalf("negative uptime %v", res.Uptime)
	}
	if _, err := json.Marshal(res); err != nil {
		t.Fatalf("Result does not encode: %v", err)
	}
}

// addFiles seeds f with the files of dir matching pattern (the recorded
// firmware replies).
func addFiles(f *testing.F, pattern string) {
	paths, _ := filepath.Glob(pattern)
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
}

// FuzzStatus feeds firmware JSON to what reads Tasmota's Status 0,
// OpenBeken's /api/info and the Module reply: no panic, and the Result
// keeps its invariants (checkResult).
func FuzzStatus(f *testing.F) {
	addFiles(f, "testdata/*.json")
	addFiles(f, "testdata/openbeken-bk7231n/*.txt")
	f.Add([]byte(`{"StatusSTS":{"UptimeSec":-5,"Uptime":"-1T00:00:00"},"StatusNET":{"Mac":"00:00:00:00:00:00"}}`))
	f.Add([]byte(`{"StatusSTS":{"UptimeSec":9223372036854775807}}`))
	f.Add([]byte(`{"uptime_s":1e30,"mac":"c8:47:8c:1a:2b:3c","build":"Built on x version 1.2.3","chipset":"BK7231N"}`))
	f.Add([]byte(`{"Module":{"0":"Athom Plug V2","1":""}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := decodeObject(data)
		if err != nil {
			return
		}
		for _, obk := range []bool{false, true} {
			res := &Result{}
			applyStatus(res, st, obk)
			applyOBKInfo(res, st)
			res.Module = moduleName(st)
			_ = isOBK(st) || isStatus(st)
			checkResult(t, res)
		}
		if d, ok := parseUptime(st["Uptime"]); ok && d < 0 {
			t.Fatalf("uptime %v from %v", d, st["Uptime"])
		}
	})
}

// FuzzESPHomeEvents feeds ESPHome's /events stream to the reader of its
// first event: no panic, the event is the stream's text up to the first
// blank line, and its data lines come out joined.
func FuzzESPHomeEvents(f *testing.F) {
	f.Add([]byte("retry: 30000\r\nevent: ping\r\ndata: {\"title\":\"Plug\",\"lang\":\"en\"}\r\n\r\nevent: state\r\n"))
	f.Add([]byte("event: ping\ndata: {\"title\":\"x\",\ndata: \"lang\":\"en\"}\n\n"))
	f.Add([]byte("\n\n\n"))
	f.Add([]byte("data:" + strings.Repeat("x", 70000) + "\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := readFirstEvent(bytes.NewReader(data))
		if err != nil {
			return
		}
		if len(b) > len(data)+1 {
			t.Fatalf("event of %d bytes from %d", len(b), len(data))
		}
		event, payload := parseEvent(b)
		if strings.Contains(event, "\n") {
			t.Fatalf("event type %q spans lines", event)
		}
		if cfg, err := decodeObject([]byte(payload)); err == nil {
			res := &Result{Name: cfg.str("title")}
			checkResult(t, res)
		}
	})
}

// streamConn is a net.Conn that reads a fixed stream and swallows writes.
type streamConn struct{ r io.Reader }

func (c *streamConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *streamConn) Write(p []byte) (int, error) { return len(p), nil }
func (c *streamConn) Close() error                { return nil }
func (c *streamConn) LocalAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (c *streamConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 6053}
}
func (c *streamConn) SetDeadline(time.Time) error      { return nil }
func (c *streamConn) SetReadDeadline(time.Time) error  { return nil }
func (c *streamConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzNativeAPI plays a node's side of the ESPHome native API (first the
// answer to the plaintext hello, then to the Noise hello) to the client's
// probe: no panic, frames stay under the size cap, and the Result keeps
// its invariants. Frames and protobuf fields encoded by the client's
// helpers read back unchanged.
func FuzzNativeAPI(f *testing.F) {
	var info []byte
	info = appendString(info, 2, "plug")
	info = appendString(info, 3, "C8:47:8C:1A:2B:3C")
	info = appendString(info, 4, "2024.10.2")
	info = appendString(info, 13, "Kitchen Plug")
	plain := append([]byte("\x00\x25\x02\x08\x01\x10\x0a\x1a\x19plug (esphome v2024.10.2)\x22\x04plug\x00\x00\x07"), plainFrame(msgDeviceInfoResp, info)...)
	f.Add(plain, []byte{})
	f.Add([]byte("\x01\x00\x13\x01Bad indicator byte"), []byte("\x01\x00\x13\x01plug\x00c8478c1a2b3c\x00"))
	f.Add([]byte{0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x02}, []byte{0x01})
	f.Add([]byte{0x00, 0x05, 0x02, 0x1A, 0x80, 0x80, 0x80, 0x80, 0x10}, []byte{})
	f.Fuzz(func(t *testing.T, first, second []byte) {
		conns := [][]byte{first, second}
		p, err := newProber("192.0.2.1", Options{Timeout: time.Second, Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if len(conns) == 0 {
				return nil, io.EOF
			}
			c := &streamConn{r: bytes.NewReader(conns[0])}
			conns = conns[1:]
			return c, nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		if nInfo, err := p.probeNativeAPI(context.Background()); err == nil {
			res := &Result{}
			applyNative(res, nInfo)
			checkResult(t, res)
		}
		// Frame and field round trip on the fuzz data.
		typ := 0
		if len(first) > 0 {
			typ = int(first[0])
		}
		payload := first[:min(len(first), maxAPIFrame)]
		r := bufio.NewReader(bytes.NewReader(plainFrame(typ, payload)))
		gt, gp, err := readPlainFrame(r)
		if err != nil || gt != typ || !bytes.Equal(gp, payload) {
			t.Fatalf("frame type %d of %d bytes read back as %d, %d bytes, %v", typ, len(payload), gt, len(gp), err)
		}
		msg := appendVarintField(appendString(nil, 3, string(second)), 7, uint64(len(first)))
		var got []pbField
		for fl := range fields(msg) {
			got = append(got, fl)
		}
		if len(got) != 2 || got[0].num != 3 || string(got[0].bytes) != string(second) || got[1].num != 7 || got[1].value != uint64(len(first)) {
			t.Fatalf("fields read back as %+v", got)
		}
		for fl := range fields(first) {
			if len(fl.bytes) > len(first) {
				t.Fatal("field longer than its message")
			}
		}
	})
}

// FuzzMDNS feeds mDNS answers to the DNS reader and the service
// collector: no panic, names within DNS's 255-byte limit, valid
// addresses, and Results that keep their invariants. A one-question query
// built by the client parses.
func FuzzMDNS(f *testing.F) {
	f.Add(mdnsAnswer(7, "plug", net.ParseIP("192.168.1.40").To4(), map[string]string{"mac": "a4cf12c658cc", "version": "2024.10.2"}))
	f.Add(mdnsAnswer(0, "x", net.ParseIP("10.0.0.1").To4(), nil))
	f.Add([]byte{0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0xC0, 12})
	f.Add(buildQuery(1, "_esphomelib._tcp.local.", dnsTypePTR))
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := parseDNS(data)
		if err != nil {
			return
		}
		if len(msg.records) > len(data)/11 {
			t.Fatalf("%d records from %d bytes", len(msg.records), len(data))
		}
		for _, rr := range msg.records {
			if len(rr.name) > 255 || len(rr.target) > 255 {
				t.Fatalf("name of %d / target of %d bytes", len(rr.name), len(rr.target))
			}
		}
		byName := map[string]*MDNSService{}
		hosts := map[string][]netip.Addr{}
		collect(msg, "_esphomelib._tcp.local.", netip.MustParseAddr("192.168.1.40"), byName, hosts)
		for _, svc := range services(byName, hosts) {
			for _, a := range svc.Addrs {
				if !a.IsValid() {
					t.Fatalf("service %q lists an invalid address", svc.Instance)
				}
			}
			if svc.Port < 0 || svc.Port > 65535 {
				t.Fatalf("port %d", svc.Port)
			}
			res := &Result{}
			applyMDNS(res, svc)
			checkResult(t, res)
		}
		if q, err := parseDNS(buildQuery(msg.id, "_esphomelib._tcp.local.", dnsTypePTR)); err != nil || q.id != msg.id || q.response {
			t.Fatalf("the client's own query does not parse: %v", err)
		}
	})
}

// FuzzDigestChallenge feeds WWW-Authenticate values to the challenge
// reader and answers each challenge: no panic, scheme names in lower case
// and without separators, and an answer (or a refusal) for every
// challenge.
func FuzzDigestChallenge(f *testing.F) {
	f.Add(`Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`)
	f.Add(`Basic realm="esphome", Digest realm="x", nonce="\"q\\"`)
	f.Add(`Digest algorithm=MD5-sess, qop=auth, nonce=abc, userhash=true, realm=r`)
	f.Add(`,,= ="`)
	f.Fuzz(func(t *testing.T, header string) {
		for _, ch := range parseChallenges([]string{header}) {
			if ch.scheme == "" || ch.scheme != strings.ToLower(ch.scheme) || strings.ContainsAny(ch.scheme, " \t,=\"") {
				t.Fatalf("scheme %q", ch.scheme)
			}
			if ch.scheme == "digest" {
				a, err := digestAuthorization(ch, "GET", "/events", "admin", "pw", "0a4f113b")
				if err == nil && !strings.HasPrefix(a, "Digest ") {
					t.Fatalf("answer %q", a)
				}
			}
		}
	})
}

// TestUptimeRejectsGarbage: negative uptimes and ones that overflow
// time.Duration are ignored (they used to come out negative; found by the
// FuzzStatus seeds), and the next source is used.
func TestUptimeRejectsGarbage(t *testing.T) {
	for _, in := range []any{"-1T00:00:00", "0T-5:00:00", "99999999999T00:00:00", "0T9223372036854775807:00:00", json.Number("-5"), json.Number("9223372036854775807"), "1e30"} {
		if d, ok := parseUptime(in); ok {
			t.Errorf("parseUptime(%v) = %v, want rejected", in, d)
		}
	}
	st, err := decodeObject([]byte(`{"StatusSTS":{"UptimeSec":9223372036854775807,"Uptime":"1T00:00:05"}}`))
	if err != nil {
		t.Fatal(err)
	}
	res := &Result{}
	applyStatus(res, st, false)
	if res.Uptime != 24*time.Hour+5*time.Second {
		t.Errorf("uptime %v, want 24h0m5s from Uptime", res.Uptime)
	}
}

// TestMDNSIgnoresBadAddresses: an A record whose data is not 4 bytes adds
// no address (it used to add an invalid one; found by FuzzMDNS), and a
// name that compression pointers stretch past 255 bytes is refused.
func TestMDNSIgnoresBadAddresses(t *testing.T) {
	b := mdnsAnswer(1, "plug", net.IP{10, 0, 0, 1, 9}, nil) // a 5-byte "address"
	msg, err := parseDNS(b)
	if err != nil {
		t.Fatal(err)
	}
	byName, hosts := map[string]*MDNSService{}, map[string][]netip.Addr{}
	collect(msg, "_esphomelib._tcp.local.", netip.MustParseAddr("10.0.0.1"), byName, hosts)
	svcs := services(byName, hosts)
	if len(svcs) != 1 || len(svcs[0].Addrs) != 0 {
		t.Errorf("services %+v", svcs)
	}
	// One answer whose name is five 63-byte labels (320 bytes), and the
	// same with four (256 bytes with the root: the limit is 255).
	for _, labels := range []int{5, 4} {
		long := []byte{0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0}
		for range labels {
			long = append(append(long, 63), bytes.Repeat([]byte{'a'}, 63)...)
		}
		long = append(long, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0)
		if _, err := parseDNS(long); err == nil {
			t.Errorf("a name of %d labels of 63 bytes was accepted", labels)
		}
	}
	// Three labels (193 bytes) are fine.
	ok := []byte{0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0}
	for range 3 {
		ok = append(append(ok, 63), bytes.Repeat([]byte{'a'}, 63)...)
	}
	if _, err := parseDNS(append(ok, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0)); err != nil {
		t.Errorf("a 193-byte name was refused: %v", err)
	}
}
