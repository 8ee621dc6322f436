//go:build linux

package e2e

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// tasmotaServer serves a recorded Tasmota 11.1.0 Status 0 reply behind the
// Referer gate of SetOption128 (an empty reply without the header).
func tasmotaServer(t *testing.T) *httptest.Server {
	t.Helper()
	body, err := os.ReadFile("../postflash/testdata/tasmota-11.1.0-esp8266.json")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "Tasmota/11.1.0 (ESP8266EX)")
		if r.URL.Path != "/cm" {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("Referer") == "" {
			return // the gate: 200 with an empty body
		}
		if r.URL.Query().Get("cmnd") != "Status 0" {
			w.Write([]byte(`{"Command":"Unknown"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestVerifyCommand(t *testing.T) {
	t.Parallel()
	srv := tasmotaServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	ok := mustRun(t, t.TempDir(), "verify", "--host", host, "--expect", "tasmota")
	for _, want := range []string{"Firmware:      tasmota", "Version:       11.1.0", "MAC:           4C:11:AE:11:F8:50"} {
		if !strings.Contains(ok.stdout, want) {
			t.Errorf("verify output lacks %q:\n%s", want, ok)
		}
	}
	mustRun(t, t.TempDir(), "verify", "--host", host, "--mac", "4c:11:ae:11:f8:50")
	expectFail(t, t.TempDir(), 5, []string{"MAC", "10:D5:61:00:00:01"}, "verify", "--host", host, "--mac", "10:D5:61:00:00:01")
	expectFail(t, t.TempDir(), 5, []string{"openbeken"}, "verify", "--host", host, "--expect", "openbeken")
	expectFail(t, t.TempDir(), 2, []string{"--expect"}, "verify", "--host", host, "--expect", "stock")
}
