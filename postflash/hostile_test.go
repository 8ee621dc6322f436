package postflash

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// escapePayload clears the screen, moves the cursor home, sets the window
// title and forges a line of output: what a hostile device could put in
// any string it reports.
const escapePayload = "plug\x1b[2J\x1b[H\x1b]0;owned\x07\nverify: OK \u009b31m\u202e"

// noControls fails when s holds a character a terminal would act on.
func noControls(t *testing.T, what, s string) {
	t.Helper()
	for _, r := range s {
		if r < 0x20 || r == 0x7F || (r >= 0x80 && r < 0xA0) || r == 0x202E {
			t.Errorf("%s holds %U: %q", what, r, s)
			return
		}
	}
}

// TestDeviceStringsAreMadeSafeToPrint: escape sequences in the fields of
// Tasmota's Status 0, in the Server header and in mDNS TXT records reach
// the Result (and its error messages) as visible escapes.
func TestDeviceStringsAreMadeSafeToPrint(t *testing.T) {
	var st map[string]any
	json.Unmarshal(readFixture(t, "tasmota-11.1.0-esp8266.json"), &st)
	st["Status"].(map[string]any)["DeviceName"] = escapePayload
	st["StatusNET"].(map[string]any)["Hostname"] = escapePayload
	st["StatusFWR"].(map[string]any)["Hardware"] = "ESP8266EX" + escapePayload
	status0, _ := json.Marshal(st)
	fn := newFakeNet()
	fn.set("10.0.0.7:80", route{serve: pipeHTTP(func(r *http.Request) []byte {
		body := `{"Command":"Unknown` + escapePayload + `"}`
		if r.URL.Query().Get("cmnd") == "Status 0" {
			body = string(status0)
		}
		return httpReply(200, map[string]string{"Content-Type": "application/json", "Server": "Tasmota/11.1.0 (ESP8266EX \u009b31m)"}, body)
	})})
	res, err := Identify(context.Background(), "10.0.0.7", Options{Dial: fn.Dial})
	if res == nil {
		t.Fatalf("no result: %v", err)
	}
	if res.Name == "" || !strings.Contains(res.Name, `\x1b[2J`) {
		t.Errorf("Name %q: the payload should show as visible escapes", res.Name)
	}
	for what, s := range map[string]string{"name": res.Name, "hostname": res.Hostname, "hardware": res.Hardware,
		"evidence": strings.Join(res.Evidence, "|"), "warnings": strings.Join(res.Warnings, "|")} {
		noControls(t, what, s)
	}
	if err != nil {
		noControls(t, "error", err.Error())
	}

	// A reply the prober does not understand is quoted in the error.
	fn.set("10.0.0.8:80", route{serve: pipeHTTP(func(r *http.Request) []byte {
		return httpReply(200, map[string]string{"Content-Type": "text/html"}, "<html>"+escapePayload+"</html>")
	})})
	if _, err := Identify(context.Background(), "10.0.0.8", Options{Dial: fn.Dial}); err != nil {
		noControls(t, "error quoting the reply", err.Error())
	}

	addr := mdnsResponder(t, "plug", "192.168.1.40", map[string]string{"mac": "a4cf12c658cc", "version": escapePayload, "friendly_name": escapePayload})
	svcs, err := BrowseMDNS(context.Background(), ESPHomeService, MDNSOptions{Addr: addr, Wait: 2 * time.Second, Match: func(MDNSService) bool { return true }})
	if err != nil || len(svcs) != 1 {
		t.Fatalf("%+v %v", svcs, err)
	}
	noControls(t, "TXT", formatTXT(svcs[0].TXT))
	if !strings.Contains(svcs[0].TXT["version"], `\x1b]0;owned\x07`) {
		t.Errorf("TXT version %q", svcs[0].TXT["version"])
	}
}

// TestHostileDeviceIsCutOff: a device that sends an endless body (1 GiB
// announced, or no end at all) or trickles a byte at a time is cut off:
// at 1 MiB read, or at the request timeout, with an error saying what
// happened. Fake time: the timeouts take no wall time.
func TestHostileDeviceIsCutOff(t *testing.T) {
	endless := func(c net.Conn) {
		defer c.Close()
		http.ReadRequest(bufio.NewReader(c))
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n")
		buf := bytes.Repeat([]byte("{"), 64<<10)
		var sent int
		for sent < 1<<30 {
			n, err := c.Write(buf)
			if err != nil {
				return
			}
			sent += n
		}
	}
	trickle := func(c net.Conn) {
		defer c.Close()
		http.ReadRequest(bufio.NewReader(c))
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
		for {
			if _, err := c.Write([]byte(" ")); err != nil {
				return
			}
			time.Sleep(time.Second)
		}
	}
	for name, serve := range map[string]func(net.Conn){"1 GiB body": endless, "trickle": trickle} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fn := newFakeNet()
				fn.set("10.0.0.9:80", route{serve: serve})
				start := time.Now()
				res, err := Identify(context.Background(), "10.0.0.9", Options{Dial: fn.Dial, Timeout: 3 * time.Second})
				if err == nil {
					t.Fatalf("a hostile device identified as %+v", res)
				}
				if el := time.Since(start); el > 30*time.Second {
					t.Errorf("took %v of fake time", el)
				}
				noControls(t, "error", err.Error())
				// The fake device notices the closed connection at its
				// next write (the trickle sleeps a second between bytes);
				// the bubble ends once it has.
				time.Sleep(2 * time.Second)
				synctest.Wait()
			})
		})
	}
}

// TestMDNSFloodIsCapped: a responder answering with thousands of
// instances, TXT strings and addresses does not make tuyaflash keep them.
func TestMDNSFloodIsCapped(t *testing.T) {
	byName, hosts := map[string]*MDNSService{}, map[string][]netip.Addr{}
	qname := "_esphomelib._tcp.local."
	msg := &dnsMsg{response: true}
	for i := range 5000 {
		inst := fmt.Sprintf("n%d.%s", i, qname)
		msg.records = append(msg.records,
			dnsRR{name: qname, typ: dnsTypePTR, target: inst},
			dnsRR{name: inst, typ: dnsTypeTXT, txt: []string{fmt.Sprintf("k%d=v", i)}},
			dnsRR{name: fmt.Sprintf("h%d.local.", i%3), typ: dnsTypeA, addr: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})})
	}
	one := fmt.Sprintf("n0.%s", qname)
	for i := range 5000 {
		msg.records = append(msg.records, dnsRR{name: one, typ: dnsTypeTXT, txt: []string{fmt.Sprintf("x%d=y", i)}})
	}
	collect(msg, qname, netip.MustParseAddr("10.0.0.1"), byName, hosts)
	svcs := services(byName, hosts)
	if len(svcs) > maxMDNSInstances {
		t.Errorf("%d instances kept", len(svcs))
	}
	for _, s := range svcs {
		if len(s.TXT) > maxMDNSTXT {
			t.Errorf("%s: %d TXT strings kept", s.Instance, len(s.TXT))
		}
	}
	for h, a := range hosts {
		if len(a) > maxMDNSAddrs {
			t.Errorf("%s: %d addresses kept", h, len(a))
		}
	}
}
