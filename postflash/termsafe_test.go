package postflash

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
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
