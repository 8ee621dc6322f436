package tuyaconfig

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseUserParamKey(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  map[string]any
		order []string
	}{
		{"Tuya unquoted with trailing comma", "{rl1_pin:6,rl1_lv:1,module:WB2S,jv:1.2.0,crc:59,}",
			map[string]any{"rl1_pin": 6, "rl1_lv": 1, "module": "WB2S", "jv": "1.2.0", "crc": 59},
			[]string{"rl1_pin", "rl1_lv", "module", "jv", "crc"}},
		{"leading zero and letters stay text", "{category:0505,rstcor:c,2235ccur:1,jv:100,neg:-1}",
			map[string]any{"category": "0505", "rstcor": "c", "2235ccur": 1, "jv": 100, "neg": "-1"},
			[]string{"category", "rstcor", "2235ccur", "jv", "neg"}},
		{"quoted JSON is accepted", `{"bt1_pin":10,"module":"CB2S","on":true}`,
			map[string]any{"bt1_pin": 10, "module": "CB2S", "on": "true"},
			[]string{"bt1_pin", "module", "on"}},
		{"quoted numbers stay strings", `{"x":"10"}`, map[string]any{"x": "10"}, []string{"x"}},
		{"empty value and spaces", "{ a : , b:x y }", map[string]any{"a": "", "b": "x y"}, []string{"a", "b"}},
		{"old nested format", `{"sw":{"ch":[{"rl":{"pin":{"value":14}}}]}}`,
			map[string]any{"sw": map[string]any{"ch": []any{map[string]any{"rl": map[string]any{"pin": map[string]any{"value": 14}}}}}},
			[]string{"sw"}},
		{"trailing NUL padding", "{a:1}\x00\x00", map[string]any{"a": 1}, []string{"a"}},
		{"empty object", "{}", map[string]any{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := ParseUserParamKey(tt.in)
			if err != nil {
				t.Fatalf("err: %v", err)
			}
			if !reflect.DeepEqual(u.Values, tt.want) || !reflect.DeepEqual(u.Order, tt.order) {
				t.Errorf("got %#v order %v, want %#v order %v", u.Values, u.Order, tt.want, tt.order)
			}
			if u.Raw != tt.in {
				t.Errorf("Raw = %q", u.Raw)
			}
		})
	}
}

func TestParseUserParamKeyErrors(t *testing.T) {
	for _, in := range []string{"", "rl1_pin:6", "{a:1", "{a 1}", `{"a:1}`, "{a:1}junk", "{a:[1,2}", "{a:{b:1}", "{a:1 b:2}"} {
		u, err := ParseUserParamKey(in)
		if !errors.Is(err, ErrUserParamKey) {
			t.Errorf("%q: err = %v, want ErrUserParamKey", in, err)
		}
		if u == nil || u.Raw != in {
			t.Errorf("%q: Raw not kept", in)
		}
	}
}

func TestFunctionsAndLevels(t *testing.T) {
	u, err := ParseUserParamKey("{rl1_pin:26,rl1_lv:0,rl_on2_pin:7,rl_off2_pin:8,bt_pin:10,k3pin_pin:11,total_bt_pin:12," +
		"led2_pin:14,led2_lv:1,wfst:15,wfst_lv:0,onoff1:16,door1_magt_pin:17,r_pin:20,w_pin:21,ele_pin:22,vi_pin:23," +
		"sel_pin_pin:24,sel_pin_lv:1,infrr:1,infre:0,remote_io:9,iicscl:5,iicsda:4,mosi:3,samp_pin:2,samp_sw_pin:6," +
		"buzzer_io:18,one_wire_pin:19,mic:28,reset_t:5,module:CBU,bad_pin:x}")
	if err != nil {
		t.Fatal(err)
	}
	want := []Function{
		{RoleRelay, "rl1_pin", 26, 1, ActiveLow},
		{RoleRelayOn, "rl_on2_pin", 7, 2, LevelUnset},
		{RoleRelayOff, "rl_off2_pin", 8, 2, LevelUnset},
		{RoleButton, "bt_pin", 10, 1, LevelUnset},
		{RoleButton, "k3pin_pin", 11, 3, LevelUnset},
		{RoleButtonAll, "total_bt_pin", 12, 0, LevelUnset},
		{RoleLED, "led2_pin", 14, 2, ActiveHigh},
		{RoleStatusLED, "wfst", 15, 0, ActiveLow},
		{RoleSwitchInput, "onoff1", 16, 1, LevelUnset},
		{RoleDoorSensor, "door1_magt_pin", 17, 1, LevelUnset},
		{RolePWM, "r_pin", 20, 0, LevelUnset},
		{RolePWM, "w_pin", 21, 4, LevelUnset},
		{RoleEnergyCF, "ele_pin", 22, 0, LevelUnset},
		{RoleEnergyCF1, "vi_pin", 23, 0, LevelUnset},
		{RoleEnergySEL, "sel_pin_pin", 24, 0, ActiveHigh},
		{RoleIRReceiver, "infrr", 1, 0, LevelUnset},
		{RoleIRSender, "infre", 0, 0, LevelUnset},
		{RoleRFReceiver, "remote_io", 9, 0, LevelUnset},
		{RoleLEDDriverClock, "iicscl", 5, 0, LevelUnset},
		{RoleLEDDriverData, "iicsda", 4, 0, LevelUnset},
		{RoleLEDStripData, "mosi", 3, 0, LevelUnset},
		{RoleBatteryADC, "samp_pin", 2, 0, LevelUnset},
		{RoleBatteryRelay, "samp_sw_pin", 6, 0, LevelUnset},
		{RoleBuzzer, "buzzer_io", 18, 0, LevelUnset},
		{RoleUnknown, "one_wire_pin", 19, 0, LevelUnset},
		{RoleUnknown, "mic", 28, 0, LevelUnset},
	}
	got := u.Functions()
	if !reflect.DeepEqual(got, want) {
		for i := range max(len(got), len(want)) {
			var g, w Function
			if i < len(got) {
				g = got[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if g != w {
				t.Errorf("function %d = %+v, want %+v", i, g, w)
			}
		}
	}
	if !u.IsPinKey("mic") || u.IsPinKey("reset_t") || u.IsPinKey("bad_pin") {
		t.Error("IsPinKey wrong")
	}
}

func TestLightDriver(t *testing.T) {
	tests := map[string]string{
		"{dmod:7,2235ccur:1}":         "SM2235",
		"{dmod:6}":                    "BP5758D",
		"{dmod:2,iicscl:1}":           "SM2135",
		"{iicscl:1,iicsda:2,dccur:3}": "BP5758D",
		"{iicscl:1,ehccur:3}":         "SM2135",
		"{cjwcur:1}":                  "BP1658CJ",
		"{kp58wcur:1}":                "KP18058",
		"{r_pin:6,dmod:99}":           "PWM",
		"{rl1_pin:6}":                 "",
	}
	for in, want := range tests {
		u, err := ParseUserParamKey(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := u.LightDriver(); got != want {
			t.Errorf("%s: LightDriver = %q, want %q", in, got, want)
		}
	}
}
