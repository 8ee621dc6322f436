package serve

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/internal/virtual"
	"github.com/tuyaflash/tuyaflash/migrate"
)

// TestEveryEndpoint calls every endpoint of the API the way a script does
// and checks what a user of the answer relies on.
func TestEveryEndpoint(t *testing.T) {
	ts := newTestServer(t)
	tested := map[Route]bool{}
	call := func(rt Route, target, body string, want int) *httptest.ResponseRecorder {
		t.Helper()
		tested[rt] = true
		w := ts.request(t, rt.Method, target, body)
		if w.Code != want {
			t.Fatalf("%s %s: %d, want %d: %s", rt.Method, target, w.Code, want, w.Body)
		}
		if ct := w.Header().Get("Content-Type"); rt.Path != "/api/devices/template" && rt.Path != "/api/events" && !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s %s: content type %q", rt.Method, target, ct)
		}
		return w
	}

	t.Run("info", func(t *testing.T) {
		v := decode[InfoView](t, call(Route{"GET", "/api/info"}, "/api/info", "", 200))
		if v.Version != "v9.9.9" || v.TokenRequired || !slices.Equal(v.Kinds, Kinds) || len(v.Steps) != len(migrate.Steps) || v.Steps[0] != "detect" ||
			!slices.Contains(v.Firmware, "openbeken") || v.VirtualSSID != migrate.VirtualSSID {
			t.Errorf("info: %+v", v)
		}
	})
	t.Run("ports", func(t *testing.T) {
		v := decode[PortsView](t, call(Route{"GET", "/api/ports"}, "/api/ports", "", 200))
		var names []string
		for _, p := range v.Ports {
			names = append(names, p.Name)
		}
		if want := []string{"/dev/ttyUSB0", "/dev/ttyS0", "sim:bk7231n", "/tmp/tty-given"}; !slices.Equal(names, want) {
			t.Fatalf("ports %v, want the bench adapter first, the virtual device and the given port last: %v", names, want)
		}
		usb, sim, given := v.Ports[0], v.Ports[2], v.Ports[3]
		if usb.Adapter != "WCH CH340" || usb.VID != "0x1A86" || usb.PID != "0x7523" || !usb.Likely || !sim.Virtual || sim.Given || !given.Given || given.Virtual {
			t.Errorf("ports: %+v", v.Ports)
		}
	})
	t.Run("jobs", func(t *testing.T) {
		v := decode[map[string][]JobView](t, call(Route{"GET", "/api/jobs"}, "/api/jobs", "", 200))
		if jobs, ok := v["jobs"]; !ok || len(jobs) != 0 {
			t.Errorf("no job yet: %+v", v)
		}
		j := decode[JobView](t, call(Route{"POST", "/api/jobs"}, "/api/jobs", `{"kind": "backup", "port": "sim:bk7231n"}`, 202))
		if j.ID != "1" || j.Request.Kind != KindBackup || j.Request.Port != "sim:bk7231n" {
			t.Errorf("started: %+v", j)
		}
		ts.waitJob(t, j.ID)
		got := decode[JobView](t, call(Route{"GET", "/api/jobs/{id}"}, "/api/jobs/1", "", 200))
		if got.State != StateDone || got.Error != nil || !strings.Contains(string(got.Result), `"command":"backup"`) {
			t.Errorf("finished job: %+v", got)
		}
		call(Route{"GET", "/api/jobs/{id}"}, "/api/jobs/99", "", 404)
		v = decode[map[string][]JobView](t, call(Route{"GET", "/api/jobs"}, "/api/jobs", "", 200))
		if len(v["jobs"]) != 1 {
			t.Errorf("jobs: %+v", v)
		}
	})
	t.Run("stop", func(t *testing.T) {
		ts.runner.run = blocking
		j := ts.startJob(t, `{"kind": "backup", "port": "/dev/ttyUSB0"}`)
		v := decode[JobView](t, call(Route{"POST", "/api/jobs/{id}/stop"}, "/api/jobs/"+j.ID+"/stop", "", 202))
		if v.State != StateStopping && v.State != StateStopped {
			t.Errorf("after stop: %s", v.State)
		}
		end := ts.waitJob(t, j.ID)
		if end.State != StateStopped || !end.Resumable || end.Error == nil || end.Error.Message != "interrupted by the stop button" ||
			end.Error.Hint == nil || !strings.Contains(*end.Error.Hint, "resume") || end.Prompt != "" {
			t.Errorf("stopped job: %+v", end)
		}
		call(Route{"POST", "/api/jobs/{id}/stop"}, "/api/jobs/99/stop", "", 404)
	})
	t.Run("virtual devices kept and forgotten", func(t *testing.T) {
		// A device `--port sim:bk7231n#2` made in a terminal earlier.
		spec, err := virtual.ParseSpec("sim:bk7231n#2")
		if err != nil {
			t.Fatal(err)
		}
		d, err := virtual.Open(spec, virtual.Options{DataDir: ts.cfg.VirtualDir, Unpaced: true})
		if err != nil {
			t.Fatal(err)
		}
		mac := d.MAC().String()
		d.Close()
		v := decode[PortsView](t, call(Route{"GET", "/api/ports"}, "/api/ports", "", 200))
		var names []string
		var kept *SimView
		for _, p := range v.Ports {
			names = append(names, p.Name)
			if p.Name == "sim:bk7231n#2" {
				kept = p.Sim
			}
		}
		if want := []string{"/dev/ttyUSB0", "/dev/ttyS0", "sim:bk7231n", "sim:bk7231n#2", "/tmp/tty-given"}; !slices.Equal(names, want) {
			t.Fatalf("ports %v, want the kept device beside its chip's: %v", names, want)
		}
		if kept == nil || kept.MAC != mac || kept.Spec != "sim:bk7231n#2" || kept.Origin == "" {
			t.Errorf("the kept device: %+v, want MAC %s", kept, mac)
		}

		ts.runner.run = blocking
		j := ts.startJob(t, `{"kind": "backup", "port": "sim:BK7231N#2"}`)
		w := call(Route{"POST", "/api/virtual/forget"}, "/api/virtual/forget", `{"port": "sim:bk7231n#2"}`, 409)
		if e := decode[map[string]apiError](t, w)["error"]; e.Code != codeBusy || !strings.Contains(e.Message, "job "+j.ID) {
			t.Errorf("forget while a job uses it: %+v", e)
		}
		ts.request(t, "POST", "/api/jobs/"+j.ID+"/stop", "")
		ts.waitJob(t, j.ID)
		ts.runner.run = nil

		if f := decode[ForgetView](t, call(Route{"POST", "/api/virtual/forget"}, "/api/virtual/forget", `{"port": "sim:bk7231n#2"}`, 200)); !f.Forgotten || f.Port != "sim:bk7231n#2" {
			t.Errorf("forget: %+v", f)
		}
		for _, p := range decode[PortsView](t, call(Route{"GET", "/api/ports"}, "/api/ports", "", 200)).Ports {
			if p.Name == "sim:bk7231n#2" || p.Sim != nil {
				t.Errorf("still listed after forget: %+v", p)
			}
		}
		if _, err := os.Stat(filepath.Join(ts.cfg.VirtualDir, "virtual", "bk7231n-2")); !os.IsNotExist(err) {
			t.Errorf("its folder is still there: %v", err)
		}
		if f := decode[ForgetView](t, call(Route{"POST", "/api/virtual/forget"}, "/api/virtual/forget", `{"port": "sim:bk7231n#2"}`, 200)); f.Forgotten {
			t.Errorf("forget of nothing: %+v", f)
		}
		for _, bad := range []string{`{"port": "/dev/ttyUSB0"}`, `{"port": "sim:z80"}`, `{"port": "sim:bk7231n:/tmp/dump.bin"}`, `{"port": "sim:bk7231n#a/b"}`} {
			call(Route{"POST", "/api/virtual/forget"}, "/api/virtual/forget", bad, 400)
		}
	})
	t.Run("devices", func(t *testing.T) {
		w := call(Route{"GET", "/api/devices"}, "/api/devices", "", 200)
		if body := w.Body.String(); strings.Contains(body, testLocalKey) || strings.Contains(body, testSSID) {
			t.Fatalf("a secret in the device list: %s", body)
		}
		var v struct {
			Devices []struct {
				Key       string
				Tuya      map[string]any
				Migration struct {
					WiFi map[string]any `json:"wifi"`
				}
			}
			VirtualDevices []struct{ Key string } `json:"virtual_devices"`
		}
		json.Unmarshal(w.Body.Bytes(), &v)
		if len(v.Devices) != 1 || v.Devices[0].Key != testBKKey || len(v.VirtualDevices) != 1 || v.VirtualDevices[0].Key != testESPKey {
			t.Fatalf("devices: %s", w.Body)
		}
		if _, ok := v.Devices[0].Tuya["local_key"]; ok || v.Devices[0].Tuya["device_id"] != "bf1234567890abcdef" {
			t.Errorf("tuya: %v (the local key absent, the rest there)", v.Devices[0].Tuya)
		}
		if ssid, ok := v.Devices[0].Migration.WiFi["ssid"]; !ok || ssid != nil || v.Devices[0].Migration.WiFi["via"] != "access point" {
			t.Errorf("migration wifi: %v (ssid null)", v.Devices[0].Migration.WiFi)
		}
	})
	t.Run("reveal", func(t *testing.T) {
		v := decode[RevealView](t, call(Route{"POST", "/api/devices/reveal"}, "/api/devices/reveal", `{"key": "`+testBKKey+`"}`, 200))
		if v.Key != testBKKey || v.LocalKey == nil || *v.LocalKey != testLocalKey || v.WiFiSSID == nil || *v.WiFiSSID != testSSID {
			t.Errorf("reveal: %+v", v)
		}
		w := call(Route{"POST", "/api/devices/reveal"}, "/api/devices/reveal", `{"key": "`+testESPKey+`"}`, 200)
		if got := w.Body.String(); !strings.Contains(got, `"local_key":null`) || !strings.Contains(got, `"wifi_ssid":null`) {
			t.Errorf("a device without secrets: %s", got)
		}
		call(Route{"POST", "/api/devices/reveal"}, "/api/devices/reveal", `{"key": "nothing-like-it"}`, 404)
		call(Route{"POST", "/api/devices/reveal"}, "/api/devices/reveal", `{"key": "`+testBKKey+`", "show": true}`, 400)
		if l := ts.log(); strings.Contains(l, testLocalKey) || strings.Contains(l, testSSID) || !strings.Contains(l, "secrets of "+testBKKey+" shown") {
			t.Errorf("log: %s", l)
		}
	})
	t.Run("templates", func(t *testing.T) {
		var v struct {
			Key       string
			Templates []struct{ Kind, File, Content string }
		}
		json.Unmarshal(call(Route{"GET", "/api/devices/templates"}, "/api/devices/templates?key="+testBKKey, "", 200).Body.Bytes(), &v)
		var kinds []string
		for _, tp := range v.Templates {
			kinds = append(kinds, tp.Kind)
		}
		if v.Key != testBKKey || !slices.Contains(kinds, "obk") || !slices.Contains(kinds, "esphome") {
			t.Fatalf("templates: %+v", v)
		}
		for _, tp := range v.Templates {
			if tp.Kind == "obk" && !strings.Contains(tp.Content, "SetPinRole 6 Rel") {
				t.Errorf("the OpenBeken template lacks the relay on P6:\n%s", tp.Content)
			}
		}
		w := call(Route{"GET", "/api/devices/templates"}, "/api/devices/templates?key="+testESPKey, "", 404)
		if e := decode[map[string]apiError](t, w)["error"]; !strings.Contains(e.Message, "pin map") || e.Hint == nil {
			t.Errorf("no pin map: %+v", e)
		}
		w = call(Route{"GET", "/api/devices/template"}, "/api/devices/template?key="+testBKKey+"&kind=esphome", "", 200)
		if cd := w.Header().Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment") || !strings.Contains(cd, ".esphome.yaml") ||
			!strings.Contains(w.Body.String(), "esphome:") {
			t.Errorf("download: %q\n%s", cd, w.Body)
		}
		call(Route{"GET", "/api/devices/template"}, "/api/devices/template?key="+testBKKey, "", 400)
	})
	t.Run("layout", func(t *testing.T) {
		l := decode[Layout](t, call(Route{"GET", "/api/layout"}, "/api/layout?chip=bk7231t&flash_size=2097152", "", 200))
		if l.Chip != "BK7231T" || len(l.Regions) != 5 || l.Regions[2].Start != "0x1E0000" || l.Regions[4].Start != "0x1EE000" || l.Regions[4].End != "0x200000" {
			t.Errorf("layout: %+v", l)
		}
		call(Route{"GET", "/api/layout"}, "/api/layout?chip=z80&flash_size=2097152", "", 400)
		call(Route{"GET", "/api/layout"}, "/api/layout?chip=bk7231n", "", 400)
	})
	t.Run("modules", func(t *testing.T) {
		v := decode[map[string][]Module](t, call(Route{"GET", "/api/modules"}, "/api/modules?chip=bk7231m", "", 200))
		var names []string
		for _, m := range v["modules"] {
			names = append(names, m.Name)
		}
		if want := []string{"CB1S", "CB2L", "CB2S", "CB3L", "CB3S", "CB3SE", "CBLC5", "CBU"}; !slices.Equal(names, want) {
			t.Errorf("BK7231M modules: %v, want the BK7231N's %v", names, want)
		}
		v = decode[map[string][]Module](t, call(Route{"GET", "/api/modules"}, "/api/modules", "", 200))
		if len(v["modules"]) != len(Modules) {
			t.Errorf("%d modules", len(v["modules"]))
		}
		v = decode[map[string][]Module](t, call(Route{"GET", "/api/modules"}, "/api/modules?chip=bk7252", "", 200))
		if m, ok := v["modules"]; !ok || len(m) != 0 {
			t.Errorf("a chip without modules: %+v", v)
		}
	})
	t.Run("events", func(t *testing.T) {
		tested[Route{"GET", "/api/events"}] = true
		srv := httptest.NewServer(ts.Handler())
		defer srv.Close()
		req, _ := http.NewRequest("GET", srv.URL+"/api/events", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Errorf("content type %q", ct)
		}
		evs := readEvents(t, bufio.NewReader(resp.Body), 4)
		var names []string
		for _, e := range evs {
			names = append(names, e.name)
		}
		if !slices.Equal(names, []string{"hello", "ports", "jobs", "devices"}) {
			t.Fatalf("first events %v", names)
		}
		if strings.Contains(evs[3].data, testLocalKey) {
			t.Error("the local key in the devices event")
		}
		// A new job is sent at once.
		ts.runner.run = nil
		ts.startJob(t, `{"kind": "detect", "port": "/tmp/tty-given"}`)
		e := readEvents(t, bufio.NewReader(resp.Body), 1)[0]
		if e.name != "job" || !strings.Contains(e.data, `"port":"/tmp/tty-given"`) {
			t.Errorf("event %s %s", e.name, e.data)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		w := ts.request(t, "GET", "/api/nothing", "")
		if w.Code != 404 || !strings.Contains(w.Body.String(), `"code":"not_found"`) {
			t.Errorf("unknown endpoint: %d %s", w.Code, w.Body)
		}
	})
	for _, rt := range Routes() {
		if !tested[rt] {
			t.Errorf("%s %s has no test", rt.Method, rt.Path)
		}
	}
}

type sse struct{ name, data string }

// readEvents reads n server-sent events.
func readEvents(t *testing.T, r *bufio.Reader, n int) []sse {
	t.Helper()
	var out []sse
	var cur sse
	for len(out) < n {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("event stream: %v (after %d events)", err, len(out))
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "event: "):
			cur.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			cur.data = strings.TrimPrefix(line, "data: ")
		case line == "" && cur.name != "":
			out = append(out, cur)
			cur = sse{}
		}
	}
	return out
}

// TestStartRefuses: requests that make no sense, a busy port (also under
// another name), a backup the inventory does not list.
func TestStartRefuses(t *testing.T) {
	ts := newTestServer(t)
	ts.runner.run = blocking
	dev := filepath.Join(ts.dir, "ttyUSB7")
	os.WriteFile(dev, nil, 0o600)
	link := filepath.Join(ts.dir, "by-id-link")
	os.Symlink(dev, link)
	first := ts.startJob(t, `{"kind": "migrate", "port": "`+dev+`", "ssid": "x", "wifi_password": "hunter2"}`)
	ts.startJob(t, `{"kind": "backup", "port": "sim:bk7231n#lab"}`)
	if strings.Contains(mustJSON(first), "hunter2") {
		t.Errorf("the Wi-Fi password in the job: %s", mustJSON(first))
	}
	for _, tc := range []struct {
		body string
		code int
		msg  string
	}{
		{`{"kind": "erase", "port": "/dev/ttyUSB0"}`, 400, `kind \"erase\": want detect, backup, restore or migrate`},
		{`{"kind": "backup"}`, 400, "port is required"},
		{`{"kind": "backup", "port": "/dev/ttyUSB0", "firmware": "tasmota"}`, 400, "options of migrate"},
		{`{"kind": "migrate", "port": "/dev/ttyUSB0", "backup": "x.bin"}`, 400, "options of restore"},
		{`{"kind": "migrate", "port": "/dev/ttyUSB0", "until": "flash"}`, 400, `unknown step \"flash\"`},
		{`{"kind": "restore", "port": "/dev/ttyUSB0"}`, 400, "restore needs backup"},
		{`{"kind": "restore", "port": "/dev/ttyUSB0", "backup": "/etc/passwd"}`, 400, "not in the inventory"},
		{`{"kind": "backup", "port": "/dev/ttyUSB0", "speed": 9}`, 400, "unknown field"},
		{`{"kind": "backup", "port": "` + link + `"}`, 409, "busy with job 1 (migrate)"},
		{`{"kind": "detect", "port": "` + dev + `"}`, 409, "busy with job 1"},
		// One virtual device, however its port is spelled.
		{`{"kind": "detect", "port": "sim:BK7231N#lab"}`, 409, "busy with job 2 (backup)"},
		{`{"kind": "detect", "port": "sim:bk7231n:/tmp/dump.bin#lab"}`, 409, "busy with job 2 (backup)"},
	} {
		w := ts.request(t, "POST", "/api/jobs", tc.body)
		if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.msg) {
			t.Errorf("%s: %d %s, want %d %q", tc.body, w.Code, w.Body, tc.code, tc.msg)
		}
	}
	if w := ts.request(t, "POST", "/api/jobs", `{"kind": "restore", "port": "/dev/ttyUSB0", "backup": "`+testBackup+`", "force": true}`); w.Code != 202 {
		t.Errorf("restore of a listed backup: %d %s", w.Code, w.Body)
	}
	for _, j := range ts.jobs.list() {
		j.stop()
		<-j.done
	}
	ts.runner.mu.Lock()
	got := slices.Clone(ts.runner.reqs)
	ts.runner.mu.Unlock()
	slices.SortFunc(got, func(a, b Request) int { return strings.Compare(string(a.Kind), string(b.Kind)) })
	if len(got) != 3 || got[1].WiFiPassword != "hunter2" || got[2].Kind != KindRestore || !got[2].Force {
		t.Errorf("the runner got %+v", got)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestServeStopsJobsWhenItEnds: the end of Serve's context (Ctrl-C) stops
// every running job with that cause and Serve returns them as they ended.
func TestServeStopsJobsWhenItEnds(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.PollInterval = 10 * time.Millisecond })
	ts.runner.run = blocking
	ln, err := ts.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if u := ts.URL(ln); !strings.HasPrefix(u, "http://127.0.0.1:") || strings.Contains(u, "token") || ts.Exposed() {
		t.Errorf("loopback URL %q", u)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan []JobView, 1)
	go func() {
		v, err := ts.Serve(ctx, ln)
		if err != nil {
			t.Error(err)
		}
		done <- v
	}()
	req, _ := http.NewRequest("POST", "http://"+ln.Addr().String()+"/api/jobs", strings.NewReader(`{"kind": "backup", "port": "sim:bk7231n"}`))
	req.Header.Set(TokenHeader, ts.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 202 {
		t.Fatalf("start: %v %v", err, resp)
	}
	resp.Body.Close()
	cancel(errCtrlC)
	views := <-done
	if len(views) != 1 || views[0].State != StateStopped || views[0].Error.Message != "interrupted by Ctrl-C" {
		t.Errorf("jobs after the end: %+v", views)
	}
}

type ctrlC struct{}

func (ctrlC) Error() string { return "Ctrl-C" }

var errCtrlC = ctrlC{}
