package appsim

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/postflash"
	"github.com/tuyaflash/tuyaflash/provision"
)

var virtualWiFi = provision.WiFi{SSID: DefaultSSID, Password: DefaultPassword}

// The whole life of the OpenBeken demo on the chips it exists for, driven
// by tuyaflash's own clients: access point, provisioning, station,
// identification with the MAC of the RF sector, then names and pins kept
// across a reset.
func TestOpenBekenLifecycle(t *testing.T) {
	for _, chip := range []string{"BK7231N", "BK7231T"} {
		t.Run(chip, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBench(t, chip, obkDemoFlash(t, chip), Timing{})
				ctx := t.Context()
				b.fw.Boot(b.flash)

				// OpenBeken opens its access point 5 s after boot.
				time.Sleep(4 * time.Second)
				if st := b.fw.Status(); st.AccessPoint != "" {
					t.Fatalf("access point %q already up 4 s after boot", st.AccessPoint)
				}
				time.Sleep(2 * time.Second)
				st := b.fw.Status()
				wantAP := "Open" + chip + "_8D55C614" // MAC bytes 2…5
				if st.AccessPoint != wantAP {
					t.Fatalf("access point %q, want %q", st.AccessPoint, wantAP)
				}
				if fw, _ := provision.ClassifyAP(st.AccessPoint); fw != postflash.OpenBeken {
					t.Errorf("ClassifyAP(%q) = %s", st.AccessPoint, fw)
				}

				res, err := provision.ProvisionAP(ctx, postflash.OpenBeken, virtualWiFi, provision.APOptions{Host: b.fw.APAddr(), Dial: b.dial})
				if err != nil {
					t.Fatalf("ProvisionAP: %v", err)
				}
				if res.MAC != bekenMAC.String() {
					t.Errorf("MAC read on the access point: %q, want %s", res.MAC, bekenMAC)
				}

				// Reset 3 s later, then the station joins.
				time.Sleep(3*time.Second + defaultBoot + defaultJoin + time.Second)
				if st := b.fw.Status(); st.Station != DefaultSSID || st.AccessPoint != "" {
					t.Fatalf("after provisioning: %+v", st)
				}
				if !b.refused(b.fw.APAddr()) {
					t.Error("the access point still answers")
				}
				r := identify(t, b, postflash.OpenBeken)
				if r.Version != "demo-1" || r.Chip != chip || r.Name != "obk8D55C614" {
					t.Errorf("identified %s %s on %s named %q", r.Firmware, r.Version, r.Chip, r.Name)
				}

				// Names and pins, through /cm and POST /api/pins.
				sta := b.fw.StationAddr()
				for _, c := range []string{"ShortName%20plug1", "FriendlyName%20%22Desk%20Plug%22", "SetPinRole%2026%20Rel", "SetPinChannel%2026%201"} {
					if code, body := b.get(sta, "/cm?cmnd="+c); code != 200 || body != "{}" {
						t.Errorf("%s: %d %q", c, code, body)
					}
				}
				code, body := b.post(sta, "/api/pins", "application/json", `{"roles":[0,0,0,0,0,0,0,0,0,0,3],"channels":[0,0,0,0,0,0,0,0,0,0,1]}`)
				if code != 200 || body != `{"success":200, "msg":"OK"}` {
					t.Errorf("POST /api/pins: %d %q", code, body)
				}

				b.fw.Halt()
				if !b.refused(sta) {
					t.Fatal("the station answers after Halt")
				}
				b.fw.Boot(b.flash)
				time.Sleep(defaultBoot + defaultJoin + time.Second)
				r = identify(t, b, postflash.OpenBeken)
				if r.Name != "plug1" {
					t.Errorf("short name after reset: %q", r.Name)
				}
				_, body = b.get(sta, "/cm?cmnd=Status%200")
				if !strings.Contains(body, `"FriendlyName":["plug1_1"]`) {
					t.Errorf("Status 0 after reset does not name the relay: %s", body)
				}
				var pins struct{ Roles, Channels []int }
				_, body = b.get(sta, "/api/pins")
				if err := json.Unmarshal([]byte(body), &pins); err != nil || len(pins.Roles) != obkGPIOs || pins.Roles[26] != obkRel || pins.Roles[10] != obkBtn || pins.Channels[26] != 1 {
					t.Errorf("/api/pins after reset: %v %s", err, body)
				}
				_, body = b.get(sta, "/index")
				if !strings.Contains(body, "Desk Plug") {
					t.Error("the quoted friendly name was not kept whole")
				}
			})
		})
	}
}

// identify runs postflash.Identify and postflash.Check against the
// station, expecting fw and the device's MAC.
func identify(t *testing.T, b *bench, fw postflash.Firmware) *postflash.Result {
	t.Helper()
	r, err := postflash.Identify(t.Context(), b.fw.StationAddr(), postflash.Options{Dial: b.dial})
	if err != nil {
		t.Fatalf("Identify: %v", err)
	}
	if err := postflash.Check(r, string(fw), b.fw.Status().MAC); err != nil {
		t.Fatalf("Check: %v (result %+v)", err, r)
	}
	return r
}

// Wrong credentials: OpenBeken saves them, resets, and never comes up on
// the network; it opens no access point while it has an SSID.
func TestOpenBekenWrongPassword(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBench(t, "BK7231N", obkDemoFlash(t, "BK7231N"), Timing{})
		b.fw.Boot(b.flash)
		time.Sleep(6 * time.Second)
		_, err := provision.ProvisionAP(t.Context(), postflash.OpenBeken, provision.WiFi{SSID: DefaultSSID, Password: "wrong-password"},
			provision.APOptions{Host: b.fw.APAddr(), Dial: b.dial})
		if err != nil {
			t.Fatalf("ProvisionAP: %v", err)
		}
		time.Sleep(5 * time.Minute)
		if st := b.fw.Status(); st.Station != "" || st.AccessPoint != "" {
			t.Errorf("status %+v, want neither station nor access point", st)
		}
		if !b.refused(b.fw.StationAddr()) {
			t.Error("the station answers")
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		_, err = postflash.WaitOnline(ctx, b.fw.StationAddr(), postflash.Options{Dial: b.dial}, time.Now().Add(30*time.Second), nil)
		if err == nil {
			t.Error("WaitOnline found the device")
		}
	})
}

// A flash that holds the OpenBeken demo of another chip starts nothing;
// neither does an erased one.
func TestNothingBootable(t *testing.T) {
	for _, tt := range []struct {
		name, chip string
		flash      func(*testing.T) *memFlash
	}{
		{"N demo on T", "BK7231T", func(t *testing.T) *memFlash { return obkDemoFlash(t, "BK7231N").put(rfT, rfSector(bekenMAC)) }},
		{"erased", "ESP8266", func(*testing.T) *memFlash { return newFlash(1 << 20) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBench(t, tt.chip, tt.flash(t), Timing{})
				b.fw.Boot(b.flash)
				time.Sleep(10 * time.Minute)
				st := b.fw.Status()
				if st.Image.Kind != KindNone || st.AccessPoint != "" || st.Station != "" {
					t.Errorf("status %+v", st)
				}
				for _, a := range []string{b.fw.APAddr(), b.fw.StationAddr(), b.fw.APIAddr(), b.fw.TuyaAddr()} {
					if !b.refused(a) {
						t.Errorf("%s answers", a)
					}
				}
				if out := b.fw.Serial([]byte("Status 5\n")); out != nil {
					t.Errorf("serial output %q", out)
				}
			})
		})
	}
}

// The stock firmware has no HTTP API: identification finds Tuya's local
// port, and Check says the new firmware is not running.
func TestStockHasNoHTTPAPI(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBench(t, "BK7231N", bekenFlash(t, "BK7231N", appLike(0x30000)), Timing{})
		b.fw.Boot(b.flash)
		time.Sleep(10 * time.Second)
		if !b.refused(b.fw.StationAddr()) || b.refused(b.fw.TuyaAddr()) {
			t.Fatal("want the web port closed and the Tuya port open")
		}
		r, err := postflash.Identify(t.Context(), b.fw.StationAddr(), postflash.Options{Dial: b.dial})
		if err != nil {
			t.Fatalf("Identify: %v", err)
		}
		if r.Firmware != postflash.StockTuya {
			t.Errorf("identified %s", r.Firmware)
		}
		var me *postflash.MismatchError
		if err := postflash.Check(r, "openbeken", ""); !errors.As(err, &me) || !errors.Is(err, flasher.ErrVerify) {
			t.Errorf("Check = %v, want a firmware mismatch", err)
		}
	})
}
