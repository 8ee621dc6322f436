package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tuyaflash/tuyaflash/migrate"
	"github.com/tuyaflash/tuyaflash/transport"
)

// The secrets of the test inventory: never in an answer but reveal's.
const (
	testLocalKey = "0123456789abcdef"
	testSSID     = "HomeNet-Secret"
	testBKKey    = "d81f12000042/eb6015"
	testESPKey   = "18fe345ac3e1/c84014"
	testBackup   = "/backups/bk7231n-d81f12000042/bk7231n-20260102-030405-abcdefabcdef.bin"
)

// testInventory is an inventory file as tuyaflash writes it: a stock
// BK7231N with its Tuya config and a migration journal, and a virtual
// ESP8266 without pin map.
var testInventory = `{"format": "tuyaflash-inventory/1", "devices": [
 {"key": "` + testBKKey + `", "mac": "D8:1F:12:00:00:42", "family": "BK7231N", "flash_id": "0xEB6015", "flash_size": 2097152,
  "first_seen": "2026-01-02T03:04:05Z", "last_seen": "2026-01-02T03:04:05Z",
  "backups": [{"path": "` + testBackup + `", "sha256": "` + strings.Repeat("ab", 32) + `", "size": 2097152, "offset": "0x000000", "date": "2026-01-02T03:04:05Z"}],
  "tuya": {"device_id": "bf1234567890abcdef", "local_key": "` + testLocalKey + `", "module": "CB2S", "chip": "BK7231N",
   "pin_map": "{jv:1.0.6,module:CB2S,ch_num:1,rl1_pin:6,rl1_lv:1,bt1_pin:7,bt1_lv:0,netled1_pin:8,netled1_lv:0,crc:58}", "date": "2026-01-02T03:04:05Z"},
  "migration": {"started": "2026-01-02T03:04:05Z", "updated": "2026-01-02T03:04:05Z", "steps": [{"step": "provision", "status": "done", "started": "2026-01-02T03:04:05Z"}],
   "wifi": {"ssid": "` + testSSID + `", "via": "access point", "date": "2026-01-02T03:04:05Z"}}},
 {"key": "` + testESPKey + `", "mac": "18:FE:34:5A:C3:E1", "family": "ESP8266", "flash_size": 1048576,
  "first_seen": "2026-01-02T03:04:05Z", "last_seen": "2026-01-02T03:04:05Z", "virtual": true}
]}`

// fakeRunner answers jobs with run (or at once with an ok document) and
// records the requests.
type fakeRunner struct {
	mu   sync.Mutex
	reqs []Request
	run  func(ctx context.Context, req Request, obs migrate.Observer) json.RawMessage
}

func (f *fakeRunner) Run(ctx context.Context, req Request, obs migrate.Observer) json.RawMessage {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	run := f.run
	f.mu.Unlock()
	if run == nil {
		return okDoc(req.Kind)
	}
	return run(ctx, req, obs)
}

func okDoc(k Kind) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"ok": true, "command": %q}`, k))
}

// blocking waits, after an instruction and the start of a transfer, until
// the job is stopped, and answers as an interrupted command does.
func blocking(ctx context.Context, req Request, obs migrate.Observer) json.RawMessage {
	obs.Observe(migrate.Event{Kind: migrate.KindAction, Message: "power-cycle the module now"})
	obs.Observe(migrate.Event{Kind: migrate.KindProgress, Op: "read", Total: 2 << 20})
	<-ctx.Done()
	return json.RawMessage(fmt.Sprintf(`{"ok": false, "command": %q, "error": {"code": "interrupted", "message": "interrupted by %v",
		"hint": "the partial backup is kept; run the same command again to resume", "exit_code": 130}}`, req.Kind, context.Cause(ctx)))
}

// testServer is a server with the test inventory, a fake runner, two
// system ports (a CH340 and a plain serial port), a virtual device and a
// given pseudo-terminal.
type testServer struct {
	*Server
	runner *fakeRunner
	dir    string
	logMu  sync.Mutex
	logs   []string
}

func newTestServer(t *testing.T, change ...func(*Config)) *testServer {
	t.Helper()
	dir := t.TempDir()
	inv := filepath.Join(dir, "inventory.json")
	if err := os.WriteFile(inv, []byte(testInventory), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := &testServer{runner: &fakeRunner{}, dir: dir}
	cfg := Config{Runner: ts.runner, InventoryPath: inv, VirtualDir: filepath.Join(dir, "data"), Version: "v9.9.9", Firmware: []string{"demo", "openbeken"},
		ExtraPorts: []string{"sim:bk7231n", "/tmp/tty-given"},
		ListPorts: func() ([]transport.PortInfo, error) {
			return []transport.PortInfo{{Name: "/dev/ttyS0"}, {Name: "/dev/ttyUSB0", USB: true, VID: "1a86", PID: "7523", Adapter: "WCH CH340", Likely: true}}, nil
		},
		Logf: func(format string, a ...any) {
			ts.logMu.Lock()
			ts.logs = append(ts.logs, fmt.Sprintf(format, a...))
			ts.logMu.Unlock()
		}}
	for _, c := range change {
		c(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts.Server = s
	return ts
}

func (ts *testServer) log() string {
	ts.logMu.Lock()
	defer ts.logMu.Unlock()
	return strings.Join(ts.logs, "\n")
}

// request makes a request as the page does (same origin) unless headers
// say otherwise, and returns the answer.
func (ts *testServer) request(t *testing.T, method, target, body string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	return ts.requestHost(t, "", method, target, body, headers...)
}

// requestHost is request with another Host header ("" = 127.0.0.1:8231).
func (ts *testServer) requestHost(t *testing.T, host, method, target, body string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	r.Host = "127.0.0.1:8231"
	if host != "" {
		r.Host = host
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if method != http.MethodGet {
		r.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			r.Header.Del(headers[i])
		} else {
			r.Header.Set(headers[i], headers[i+1])
		}
	}
	w := httptest.NewRecorder()
	ts.Handler().ServeHTTP(w, r)
	return w
}

// decode decodes an answer's JSON.
func decode[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("answer is not JSON (%v): %s", err, w.Body)
	}
	return v
}

// startJob starts a job through the API and returns it.
func (ts *testServer) startJob(t *testing.T, body string) JobView {
	t.Helper()
	w := ts.request(t, "POST", "/api/jobs", body)
	if w.Code != http.StatusAccepted {
		t.Fatalf("start %s: %d %s", body, w.Code, w.Body)
	}
	return decode[JobView](t, w)
}

// waitJob waits until job id has ended and returns it.
func (ts *testServer) waitJob(t *testing.T, id string) JobView {
	t.Helper()
	j := ts.jobs.get(id)
	if j == nil {
		t.Fatalf("no job %s", id)
	}
	<-j.done
	return j.view()
}
