package postflash

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
)

// replay serves files byte for byte, chosen by request URI. The OpenBeken
// replies are not always valid net/http responses (bare-LF status line, no
// Content-Length), so they go out through a raw listener.
type replay struct {
	dir      string
	files    map[string]string // request URI → file
	fallback func(r *http.Request) string

	mu   sync.Mutex
	uris []string
}

func (p *replay) answer(r *http.Request) []byte {
	p.mu.Lock()
	p.uris = append(p.uris, r.Method+" "+r.URL.RequestURI())
	p.mu.Unlock()
	name, ok := p.files[r.URL.RequestURI()]
	if !ok && p.fallback != nil {
		name = p.fallback(r)
	}
	if name == "" {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(p.dir, name))
	if err != nil {
		panic(err)
	}
	return b
}

// recordedOBK maps requests to the recorded files of the real firmware.
func recordedOBK(dir string) *replay {
	return &replay{dir: dir, files: map[string]string{
		"/cm?cmnd=Status%200":  "01_status0.txt",
		"/cm?cmnd=Status":      "02_status.txt",
		"/api/info":            "03_api_info.txt",
		"/api/pins":            "04_api_pins.txt",
		"/cm?cmnd=Status%202":  "05_status2.txt",
		"/cm?cmnd=Status%205":  "06_status5.txt",
		"/cm?cmnd=Status%2011": "07_status11.txt",
	}, fallback: func(r *http.Request) string {
		if r.URL.Path == "/cm" {
			return "31_cm_unknown.txt" // {} for any command the JSON layer does not know
		}
		return "27_not_found.txt"
	}}
}

// TestIdentifyOpenBekenRecorded replays the byte-exact replies of the real
// OpenBeken firmware (its Linux simulator build).
func TestIdentifyOpenBekenRecorded(t *testing.T) {
	dir := sharedDir(t, "testdata/http/openbeken")
	fn := newFakeNet()
	rp := recordedOBK(dir)
	fn.rawServer(t, "127.0.0.1:80", rp.answer)
	res, err := Identify(context.Background(), "127.0.0.1", Options{Dial: fn.Dial})
	if err != nil {
		t.Fatalf("Identify: %v", err)
	}
	want := Result{Host: "127.0.0.1", Firmware: OpenBeken, Version: "Lin_Test", Build: "LinuxSim", Hardware: "LIN",
		MAC: "00:00:00:00:00:00", IP: "127.0.0.1", Hostname: "LSEECAFFEE", Name: "LSEECAFFEE",
		Uptime: 5 * time.Second, RSSI: 198, Signal: -1}
	got := *res
	got.Evidence, got.Warnings = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("result\n got %+v\nwant %+v", got, want)
	}
	if !containsLine(res.Evidence, `StatusFWR.SDK = "obk"`) || !containsLine(res.Evidence, `GET /api/info: chipset "LIN"`) {
		t.Errorf("evidence %q", res.Evidence)
	}
	// The simulator reports an all-zero MAC: the user must be told.
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "placeholder MAC 00:00:00:00:00:00") {
		t.Errorf("warnings %q", res.Warnings)
	}
	wantURIs := []string{"GET /cm?cmnd=Status%200", "GET /api/info"}
	rp.mu.Lock()
	uris := slices.Clone(rp.uris)
	rp.mu.Unlock()
	if !reflect.DeepEqual(uris, wantURIs) {
		t.Errorf("requests %q, want %q (no Tasmota-only Module command)", uris, wantURIs)
	}
	// And Check then refuses to confirm the device by that MAC.
	err = Check(res, "openbeken", "C8:47:8C:12:34:56")
	if err == nil || !strings.Contains(err.Error(), "placeholder MAC 00:00:00:00:00:00") {
		t.Errorf("Check: %v", err)
	}
}

// TestIdentifyOpenBekenWithoutTasmotaJSON: a build without the Tasmota
// JSON layer answers {} (recorded as 31_cm_unknown.txt); /api/info still
// identifies it.
func TestIdentifyOpenBekenWithoutTasmotaJSON(t *testing.T) {
	for _, tc := range []struct {
		name string
		rp   func(t *testing.T) *replay
		want Result
	}{
		{"recorded", func(t *testing.T) *replay {
			rp := recordedOBK(sharedDir(t, "testdata/http/openbeken"))
			delete(rp.files, "/cm?cmnd=Status%200")
			delete(rp.files, "/cm?cmnd=Status%202")
			delete(rp.files, "/cm?cmnd=Status%205")
			delete(rp.files, "/cm?cmnd=Status%2011")
			delete(rp.files, "/cm?cmnd=Status")
			return rp
		}, Result{Firmware: OpenBeken, Version: "Lin_Test", Hardware: "LIN", MAC: "00:00:00:00:00:00", IP: "127.0.0.1",
			Hostname: "LSEECAFFEE", Name: "LSEECAFFEE", Uptime: 5 * time.Second}},
		{"own fixture", func(t *testing.T) *replay {
			return &replay{dir: "testdata/openbeken-bk7231n", files: map[string]string{"/api/info": "api_info.txt"},
				fallback: func(r *http.Request) string { return "empty_object.txt" }}
		}, Result{Firmware: OpenBeken, Version: "1.17.670", Hardware: "BK7231N", Chip: "BK7231N", MAC: "7C:87:55:C6:14:B0",
			IP: "192.168.1.77", Hostname: "obk55C614B0", Name: "obk55C614B0", Uptime: 312 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fn := newFakeNet()
			fn.rawServer(t, "obk.lan:80", tc.rp(t).answer)
			res, err := Identify(context.Background(), "obk.lan", Options{Dial: fn.Dial})
			if err != nil {
				t.Fatal(err)
			}
			got := *res
			got.Host, got.Evidence, got.Warnings = "", nil, nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("result\n got %+v\nwant %+v", got, tc.want)
			}
			if !containsLine(res.Evidence, "Status 0 answered {}") {
				t.Errorf("evidence %q", res.Evidence)
			}
		})
	}
}

// TestIdentifyOpenBekenFixture covers the recorded logic with the package's
// own BK7231N replies, including OpenBeken's password (Basic only).
func TestIdentifyOpenBekenFixture(t *testing.T) {
	const password = "s3cret"
	obk := func(r *http.Request) string {
		if u, p, ok := r.BasicAuth(); !ok || u != "admin" || p != password {
			return "unauthorized.txt"
		}
		switch r.URL.RequestURI() {
		case "/cm?user=admin&password=" + password + "&cmnd=Status%200":
			return "status0.txt"
		case "/api/info":
			return "api_info.txt"
		}
		return "empty_object.txt"
	}
	tests := []struct {
		name     string
		password string
		wantErr  string
		wantHint string
	}{
		{"no password", "", `openbeken asks for its web password (HTTP 401, Basic realm="OpenBeken HTTP Server")`, "--password"},
		{"wrong password", "guess", `openbeken rejected the user "admin" and the password`, "user is always admin"},
		{"right password", password, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fn := newFakeNet()
			fn.rawServer(t, "192.168.1.77:80", (&replay{dir: "testdata/openbeken-bk7231n", fallback: obk}).answer)
			res, err := Identify(context.Background(), "192.168.1.77", Options{Dial: fn.Dial, Password: tc.password})
			if tc.wantErr != "" {
				if KindOf(err) != KindAuth || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				if !strings.Contains(flasher.Hint(err), tc.wantHint) {
					t.Errorf("hint %q", flasher.Hint(err))
				}
				if res.Firmware != OpenBeken {
					t.Errorf("firmware %s, want openbeken from the realm", res.Firmware)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := Result{Host: "192.168.1.77", Firmware: OpenBeken, Version: "1.17.670", Build: "OpenBK7231N", Hardware: "BK7231N",
				Chip: "BK7231N", MAC: "7C:87:55:C6:14:B0", IP: "192.168.1.77", Hostname: "obk55C614B0", Name: "obk55C614B0",
				Uptime: 312 * time.Second, RSSI: 62, Signal: -69}
			got := *res
			got.Evidence = nil
			if !reflect.DeepEqual(got, want) {
				t.Errorf("result\n got %+v\nwant %+v", got, want)
			}
			if err := Check(res, "obk", "7c-87-55-c6-14-b0"); err != nil {
				t.Errorf("Check: %v", err)
			}
		})
	}
}
