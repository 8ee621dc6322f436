package pintemplate

import (
	"encoding/json"
	"github.com/tuyaflash/tuyaflash/internal/testshared"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tuyaflash/tuyaflash/tuyaconfig"
)

func upk(t *testing.T, s string) *tuyaconfig.UserParamKey {
	t.Helper()
	u, err := tuyaconfig.ParseUserParamKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func obkPin(c *OBKConfig, pin int) (OBKPin, bool) {
	for _, p := range c.Pins {
		if p.Pin == pin {
			return p, true
		}
	}
	return OBKPin{}, false
}

// TestOpenBekenLevels checks the active-level rule per role: a relay,
// LED or PWM output with *_lv 0 gets the inverted role; buttons are
// already active low, so only *_lv 1 changes them.
func TestOpenBekenLevels(t *testing.T) {
	tests := []struct {
		upk     string
		pin     int
		role    string
		channel int
	}{
		{"{rl1_pin:6,rl1_lv:1}", 6, "Rel", 1},
		{"{rl1_pin:6,rl1_lv:0}", 6, "Rel_n", 1},
		{"{rl3_pin:6}", 6, "Rel", 3},
		{"{bt2_pin:10,bt2_lv:0}", 10, "Btn", 2},
		{"{bt2_pin:10}", 10, "Btn", 2},
		{"{bt2_pin:10,bt2_lv:1}", 10, "Btn_pd_n", 2},
		{"{led1_pin:8,led1_lv:0}", 8, "LED_n", 1},
		{"{led1_pin:8,led1_lv:1}", 8, "LED", 1},
		{"{netled1_pin:26,netled1_lv:1}", 26, "WifiLED", 0},
		{"{netled1_pin:26,netled1_lv:0}", 26, "WifiLED_n", 0},
		{"{wfst:26}", 26, "WifiLED_n", 0},
		{"{c_pin:24,c_lv:0}", 24, "PWM_n", 3},
		{"{w_pin:24}", 24, "PWM", 4},
		{"{total_bt_pin:7,total_bt_lv:0}", 7, "Btn_Tgl_All", 0},
		{"{onoff2:15}", 15, "TglChanOnTgl", 2},
		{"{iicsda:24,iicscl:26,dmod:7}", 24, "SM2235DAT", 0},
		{"{iicsda:24,iicscl:26,ehccur:2}", 26, "SM2135CLK", 0},
		{"{iicsda:24,iicscl:26,cjwcur:2}", 24, "BP1658CJ_DAT", 0},
		{"{iicsda:24,iicscl:26,kp58wcur:2}", 26, "KP18058_CLK", 0},
		{"{samp_sw_pin:9,samp_sw_lv:0}", 9, "BAT_Relay_n", 0},
		{"{rl_on1_pin:6,rl_off1_pin:7}", 7, "BridgeREV", 1},
	}
	for _, tt := range tests {
		c, _ := OpenBeken(upk(t, tt.upk))
		p, ok := obkPin(c, tt.pin)
		if !ok || p.Role != tt.role || p.Channel != tt.channel || p.RoleIndex != obkRoles[tt.role] || p.RoleIndex == 0 {
			t.Errorf("%s: P%d = %+v, want %s channel %d", tt.upk, tt.pin, p, tt.role, tt.channel)
		}
	}
}

func TestOpenBekenCommands(t *testing.T) {
	tests := []struct{ upk, want string }{
		{"{r_pin:6,pwmhz:1000}", "PWMFrequency 1000"},
		{"{iicsda:1,iicscl:2,ehccur:3,ehwcur:4}", "SM2135_Current 3 4"},
		{"{iicsda:1,iicscl:2,campere:20}", "SM2135_Current 20 1"},
		{"{iicsda:1,iicscl:2,drgbcur:14,dwcur:20,dccur:30}", "BP5758D_Current 14 30"},
		{"{iicsda:1,iicscl:2,2235ccur:1,2235wcur:2,iicr:1,iicg:0,iicb:2,iicc:4,iicw:3}", "SM2235_Current 1 2; LED_Map 1 0 2 4 3"},
		{"{iicsda:1,iicscl:2,cjccur:5,cjwcur:6}", "BP1658CJ_Current 5 6"},
	}
	for _, tt := range tests {
		c, _ := OpenBeken(upk(t, tt.upk))
		if got := strings.Join(c.Commands, "; "); got != tt.want {
			t.Errorf("%s: commands %q, want %q", tt.upk, got, tt.want)
		}
		if !strings.HasSuffix(c.Backlog(), tt.want) {
			t.Errorf("%s: backlog %q does not end with the commands", tt.upk, c.Backlog())
		}
	}
}

func TestOpenBekenConflictsAndUnknown(t *testing.T) {
	c, w := OpenBeken(upk(t, "{led1_pin:22,netled_pin:22,buzzer_io:9,iicscl:1,iicsda:2,reset_t:5}"))
	if p, _ := obkPin(c, 22); p.Key != "led1_pin" {
		t.Errorf("P22 from %q, want the first key led1_pin", p.Key)
	}
	joined := ""
	for _, x := range w {
		joined += x.String() + "\n"
	}
	for _, want := range []string{"netled_pin: P22 is already used", "buzzer_io: pin P9", "iicscl: LED driver type unknown", "reset_t: Tuya setting"} {
		if !strings.Contains(joined, want) {
			t.Errorf("warnings lack %q:\n%s", want, joined)
		}
	}
	if _, ok := obkPin(c, 1); ok {
		t.Error("unknown LED driver pins got a role")
	}
}

func TestTasmotaCodes(t *testing.T) {
	tests := []struct {
		upk  string
		slot int
		code int
	}{
		{"{rl1_pin:12,rl1_lv:1}", 8, 224},
		{"{rl2_pin:12,rl2_lv:0}", 8, 257},
		{"{bt1_pin:0,bt1_lv:0}", 0, 32},
		{"{bt3_pin:0,bt3_lv:1}", 0, 130},
		{"{led1_pin:13,led1_lv:0}", 9, 320},
		{"{led2_pin:13,led2_lv:1}", 9, 289},
		{"{netled_pin:16,netled_lv:1}", 12, 544},
		{"{netled_pin:16}", 12, 576},
		{"{r_pin:14}", 10, 416},
		{"{w_pin:14,w_lv:0}", 10, 452},
		{"{ele_pin:5,chip_type:0}", 5, 2720},
		{"{ele_pin:5,chip_type:1}", 5, 2688},
		{"{vi_pin:4}", 4, 2656},
		{"{sel_pin_pin:15,sel_pin_lv:1}", 11, 2624},
		{"{sel_pin_pin:15,sel_pin_lv:0}", 11, 2592},
		{"{onoff1:10}", 7, 160},
		{"{infre:9}", 6, 1056},
		{"{infrr:17}", 13, 1088},
	}
	for _, tt := range tests {
		s, _ := Tasmota(upk(t, tt.upk), "t")
		var tpl tasmotaTemplate
		if err := json.Unmarshal([]byte(s), &tpl); err != nil {
			t.Fatalf("%s: %v in %q", tt.upk, err, s)
		}
		if len(tpl.GPIO) != 14 || tpl.GPIO[tt.slot] != tt.code || tpl.Base != 18 {
			t.Errorf("%s: GPIO %v, want %d in slot %d", tt.upk, tpl.GPIO, tt.code, tt.slot)
		}
	}
	s, w := Tasmota(upk(t, "{rl1_pin:7,bt1_pin:6,module:TYWE3S}"), "")
	if !strings.Contains(s, `"GPIO":[0,0,0,0,0,0,0,0,0,0,0,0,0,0]`) || len(w) != 2 {
		t.Errorf("flash-bus GPIOs: %s %v", s, w)
	}
	if s, w := Tasmota(upk(t, "{rl1_pin:6,module:CB2S}"), ""); s != "" || len(w) != 1 {
		t.Errorf("Beken module: %q %v, want no template and one warning", s, w)
	}
}

func TestESPHomeNodeName(t *testing.T) {
	for in, want := range map[string]string{"Kitchen Plug #2": "kitchen-plug-2", "": "tuya-device", "--A--": "a"} {
		if got := nodeName(in); got != want {
			t.Errorf("nodeName(%q) = %q, want %q", in, got, want)
		}
	}
}

// allKeysAccounted checks the no-silent-drop rule: every key of the pin
// map is used in the output or named in a warning.
func allKeysAccounted(t *testing.T, what string, u *tuyaconfig.UserParamKey, out string, ws []Warning) {
	t.Helper()
	warned := map[string]bool{}
	for _, w := range ws {
		warned[w.Key] = true
	}
	for _, k := range u.SortedKeys() {
		if metadataKeys[k] || warned[k] {
			continue
		}
		v, _ := u.String(k)
		if strings.HasSuffix(k, "_lv") || strings.Contains(out, k+"=") || (u.IsPinKey(k) && regexp.MustCompile(`\bP`+v+`\b`).MatchString(out)) {
			continue
		}
		t.Errorf("%s: key %s=%v is neither in the output nor in a warning", what, k, u.Values[k])
	}
}

// tasmotaKeysAccounted is the no-silent-drop rule for the comment-less
// template: a pin key is used when its GPIO slot got a component, other
// keys must be warned about (chip_type shows in the CF component chosen).
func tasmotaKeysAccounted(t *testing.T, what string, u *tuyaconfig.UserParamKey, out string, ws []Warning) {
	t.Helper()
	var tpl tasmotaTemplate
	if err := json.Unmarshal([]byte(out), &tpl); err != nil {
		t.Fatal(err)
	}
	warned := map[string]bool{}
	for _, w := range ws {
		warned[w.Key] = true
	}
	for _, k := range u.SortedKeys() {
		pin, _ := u.Int(k)
		slot, isSlot := esp8266Slots[pin]
		switch {
		case metadataKeys[k], warned[k], strings.HasSuffix(k, "_lv"), k == "chip_type":
		case u.IsPinKey(k) && isSlot && tpl.GPIO[slot] != 0:
		default:
			t.Errorf("%s tasmota: key %s=%v is neither in the template nor in a warning", what, k, u.Values[k])
		}
	}
}

func TestNothingSilentlyDropped(t *testing.T) {
	inputs, _ := filepath.Glob("testdata/*.upk")
	for _, in := range inputs {
		raw, _ := os.ReadFile(in)
		u := upk(t, string(raw))
		c, w := OpenBeken(u)
		js, _ := c.JSON("x")
		allKeysAccounted(t, in+" obk", u, c.Text()+string(js), w)
		y, w := ESPHome(u, "x")
		allKeysAccounted(t, in+" esphome", u, y, w)
		if s, w := Tasmota(u, "x"); s != "" {
			tasmotaKeysAccounted(t, in, u, s, w)
		}
	}
}

// TestRealDumpTemplates runs the templates on the pin maps of the real
// dumps and checks the lines an independent reading predicts (see
// tuyaconfig's realdump_test.go for where the pin maps were read).
func TestRealDumpTemplates(t *testing.T) {
	dir := sharedTestdata(t)
	tests := []struct {
		file string
		pins map[int]string // pin -> "Role;channel"
		yaml []string
	}{
		// OpenBeken's device list has this plug as 6 Rel;1, 7 Btn;1,
		// 8 LED;1, 26 WifiLED_n;0. The pin map says P7 is total_bt_pin and
		// netled1_lv is 1, hence Btn_Tgl_All and WifiLED here.
		{"Mirabella_Genio_I003632_Plug.bin", map[int]string{6: "Rel;1", 7: "Btn_Tgl_All;0", 8: "LED;1", 26: "WifiLED;0"},
			[]string{"board: cb2s", "pin: P6", "number: P7"}},
		// The device list has 9 Rel;2, 16 Btn;2, 20 Btn;1, 22 WifiLED_n;0,
		// 28 Rel;1; bt1_lv/bt2_lv are 1 (active high), hence Btn_pd_n.
		{"SmartLED_8046_2_Gang_Smart_Switch.bin", map[int]string{9: "Rel;2", 16: "Btn_pd_n;2", 20: "Btn_pd_n;1", 22: "WifiLED_n;0", 28: "Rel;1"},
			[]string{"board: cbu", "mode: INPUT_PULLDOWN"}},
		{"Kanlux_33643_S_GU10_RGBCCT_Bulb.bin", map[int]string{24: "SM2235DAT;0", 26: "SM2235CLK;0"},
			[]string{"sm2235:", "clock_pin: P26", "data_pin: P24", "platform: rgbww"}},
		{"Feit_SYW-BR30-RGBW-CA-AG_Bulb.bin", map[int]string{6: "PWM;0", 26: "PWM;1", 24: "PWM;2", 7: "PWM;3", 8: "PWM;4"},
			[]string{"board: wb2l", "platform: rgbww"}},
		{"Tuya_Generic_AP-SMT-Breaker02-1CH_Smart_Relay.bin", map[int]string{6: "Rel;1", 8: "Btn_Tgl_All;0", 24: "WifiLED_n;0", 26: "TglChanOnTgl;1"},
			[]string{"id: switch_input_1", "on_state:"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			dump, err := os.ReadFile(filepath.Join(dir, tt.file))
			if err != nil {
				t.Skipf("skipping: %v", err)
			}
			cfg, err := tuyaconfig.Parse(dump)
			if err != nil {
				t.Fatal(err)
			}
			c, w := OpenBeken(cfg.UserParams)
			got := map[int]string{}
			for _, p := range c.Pins {
				got[p.Pin] = p.Role + ";" + itoa(p.Channel)
			}
			if len(got) != len(tt.pins) {
				t.Errorf("pins %v, want %v", got, tt.pins)
			}
			for pin, want := range tt.pins {
				if got[pin] != want {
					t.Errorf("P%d = %q, want %q", pin, got[pin], want)
				}
			}
			allKeysAccounted(t, "obk", cfg.UserParams, c.Text(), w)
			y, w := ESPHome(cfg.UserParams, "x")
			for _, want := range tt.yaml {
				if !strings.Contains(y, want) {
					t.Errorf("YAML lacks %q", want)
				}
			}
			allKeysAccounted(t, "esphome", cfg.UserParams, y, w)
		})
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// sharedTestdata returns ../shared/testdata/bk7231 or skips.
func sharedTestdata(t *testing.T) string { return testshared.Dir(t, "testdata", "bk7231") }
