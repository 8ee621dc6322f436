package postflash

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
)

func TestCheck(t *testing.T) {
	tasmota := &Result{Host: "192.168.1.61", Firmware: Tasmota, Version: "15.2.0", MAC: "48:3F:DA:A1:B2:C3"}
	tests := []struct {
		name       string
		r          *Result
		fw, mac    string
		wantErr    string // full message; "" for no error
		wantHint   string
		unverified bool
	}{
		{"all as expected", tasmota, "tasmota", "48:3f:da:a1:b2:c3", "", "", false},
		{"any firmware, MAC in compact form", tasmota, "", "483FDAA1B2C3", "", "", false},
		{"wrong MAC", tasmota, "tasmota", "48:3F:DA:00:11:22",
			"192.168.1.61: a different device answered: its MAC is 48:3F:DA:A1:B2:C3, the flashed device's is 48:3F:DA:00:11:22 (tasmota 15.2.0 runs there)",
			"router's client list", false},
		{"other firmware", &Result{Host: "10.0.0.5", Firmware: ESPHome, Version: "2024.10.2"}, "OpenBeken", "",
			"10.0.0.5: the device runs esphome 2024.10.2, not openbeken: a different device answered, or another firmware was written",
			"--mac", false},
		{"unknown", &Result{Host: "10.0.0.5", Firmware: Unknown}, "esphome", "",
			"10.0.0.5: the device did not identify as esphome or any other known firmware", "by MAC", false},
		{"no MAC reported", &Result{Host: "plug.local", Firmware: ESPHome, Encrypted: true}, "esphome", "A4:CF:12:C6:58:CC",
			"plug.local: the device (esphome) did not report its MAC, so tuyaflash cannot confirm it is the flashed device A4:CF:12:C6:58:CC",
			"--mdns", true},
		{"device lost its MAC", &Result{Host: "obk.lan", Firmware: OpenBeken, MAC: "C8:47:8C:00:00:00"}, "obk", "C8:47:8C:12:34:56",
			"obk.lan: the device reports the placeholder MAC C8:47:8C:00:00:00 (Beken default (RF calibration sector missing)) instead of its own C8:47:8C:12:34:56: the flash lost the RF calibration/MAC area",
			"restore the RF/MAC area", false},
		{"expected MAC is a placeholder", tasmota, "tasmota", "00:00:00:00:00:00",
			"192.168.1.61: the expected MAC 00:00:00:00:00:00 is a placeholder (all zero) shared by many devices; it cannot confirm which device answered",
			"printed on the module", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.r, tc.fw, tc.mac)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("Check:\n got %v\nwant %s", err, tc.wantErr)
			}
			var me *MismatchError
			if !errors.As(err, &me) || me.Unverified != tc.unverified || !errors.Is(err, flasher.ErrVerify) {
				t.Errorf("%#v", me)
			}
			if !strings.Contains(flasher.Hint(err), tc.wantHint) {
				t.Errorf("hint %q lacks %q", flasher.Hint(err), tc.wantHint)
			}
		})
	}
}

func TestCheckBadArguments(t *testing.T) {
	r := &Result{Firmware: Tasmota}
	if err := Check(r, "tasmotta", ""); err == nil || !strings.Contains(err.Error(), "want tasmota, openbeken or esphome") {
		t.Errorf("bad firmware: %v", err)
	}
	if err := Check(r, "", "not-a-mac"); err == nil || !strings.Contains(err.Error(), "expected MAC") {
		t.Errorf("bad MAC: %v", err)
	}
	if err := Check(nil, "", ""); err == nil {
		t.Error("nil result accepted")
	}
}

func TestCoercion(t *testing.T) {
	o, err := decodeObject([]byte(`{"a":"00","b":1,"c":17.0,"d":"x","e":["first","second"],"f":true,"g":"12"}`))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"a": "00", "b": "1", "c": "17.0", "d": "x", "e": "first", "f": "true", "z": ""} {
		if got := o.str(k); got != want {
			t.Errorf("str(%s) = %q, want %q", k, got, want)
		}
	}
	for k, want := range map[string]int64{"a": 0, "b": 1, "c": 17, "g": 12} {
		if got, ok := o.int(k); !ok || got != want {
			t.Errorf("int(%s) = %d, %v", k, got, ok)
		}
	}
	if _, ok := o.int("d"); ok {
		t.Error("int of a word")
	}
	if _, err := decodeObject([]byte(`[1,2]`)); err == nil {
		t.Error("array accepted as object")
	}
	if _, err := decodeObject([]byte(`null`)); err == nil {
		t.Error("null accepted as object")
	}
	for in, want := range map[any]time.Duration{
		"202T01:24:51": 202*24*time.Hour + time.Hour + 24*time.Minute + 51*time.Second,
		"01:02:03":     time.Hour + 2*time.Minute + 3*time.Second,
		"312":          312 * time.Second,
	} {
		if got, ok := parseUptime(in); !ok || got != want {
			t.Errorf("parseUptime(%v) = %v, %v", in, got, ok)
		}
	}
	if _, ok := parseUptime("1T2:3"); ok {
		t.Error("parseUptime accepted 1T2:3")
	}
}

func TestChipOf(t *testing.T) {
	for hw, want := range map[string]string{
		"ESP8266EX": "ESP8266", "ESP8285N08": "ESP8285", "ESP32-D0WD-V3 v3.1": "ESP32", "ESP32-C3": "ESP32-C3",
		"BK7231N": "BK7231N", "generic-bk7231t-qfn32-tuya": "BK7231T", "LIN": "", "esp01_1m": "",
	} {
		if got := chipOf(hw); got != want {
			t.Errorf("chipOf(%q) = %q, want %q", hw, got, want)
		}
	}
}

func TestParseServerHeader(t *testing.T) {
	v, hw, ok := parseServerHeader("Tasmota/14.4.1 (ESP32-D0WD-V3 v")
	if !ok || v != "14.4.1" || hw != "ESP32-D0WD-V3 v" {
		t.Errorf("%q %q %v", v, hw, ok)
	}
	if _, _, ok := parseServerHeader("nginx/1.25"); ok {
		t.Error("nginx taken for Tasmota")
	}
}

func TestResultJSON(t *testing.T) {
	b, err := json.Marshal(&Result{Host: "h", Firmware: Tasmota, Uptime: 90 * time.Second, Signal: -50})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"host":"h","firmware":"tasmota","signal_dbm":-50,"uptime_s":90}` {
		t.Errorf("JSON %s", b)
	}
}
