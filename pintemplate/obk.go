package pintemplate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/tuyaflash/tuyaflash/tuyaconfig"
)

// obkRoles maps the OpenBeken role names used here to their index in
// OpenBeken's role table (openshwprojects/OpenBK7231T_App
// src/httpserver/new_http.c htmlPinRoleNames[], whose order is the
// IOR_* enum of src/new_pins.h; BK7231GUIFlashTool Misc/OBKRoles.cs has
// the same order). SetPinRole accepts the names, which is what the text
// output uses; the index is for tools that write the config sector.
var obkRoles = map[string]int{
	"Rel": 1, "Rel_n": 2, "Btn": 3, "Btn_n": 4, "LED": 5, "LED_n": 6, "PWM": 7, "WifiLED": 8, "WifiLED_n": 9,
	"Btn_Tgl_All": 10, "Btn_Tgl_All_n": 11, "dInput": 12, "dInput_n": 13, "TglChanOnTgl": 14,
	"BL0937SEL": 17, "BL0937CF": 18, "BL0937CF1": 19, "SM2135DAT": 21, "SM2135CLK": 22,
	"BP5758D_DAT": 23, "BP5758D_CLK": 24, "BP1658CJ_DAT": 25, "BP1658CJ_CLK": 26, "PWM_n": 27,
	"IRRecv": 28, "IRSend": 29, "SM16703P_DIN": 37, "SM2235DAT": 52, "SM2235CLK": 53,
	"BridgeFWD": 54, "BridgeREV": 55, "BAT_ADC": 60, "BAT_Relay": 61, "BAT_Relay_n": 75,
	"KP18058_CLK": 76, "KP18058_DAT": 77, "RCRecv": 87, "Btn_pd": 89, "Btn_pd_n": 90,
}

// OBKPin is one configured pin.
type OBKPin struct {
	Pin       int    `json:"pin"`
	Role      string `json:"role"`       // OpenBeken role name, e.g. "Rel_n"
	RoleIndex int    `json:"role_index"` // index in OpenBeken's role table
	Channel   int    `json:"channel"`
	Key       string `json:"tuya_key"` // the user_param_key entry it comes from
	Reason    string `json:"reason"`   // e.g. "relay 1, rl1_lv=0 (active low)"
}

// OBKConfig is an OpenBeken pin configuration.
type OBKConfig struct {
	Chip   string   `json:"chip,omitempty"`
	Module string   `json:"module,omitempty"`
	Pins   []OBKPin `json:"pins"`
	// Commands are startup commands: PWM frequency, LED driver currents
	// and channel map.
	Commands []string `json:"commands"`
	// Notes explain choices made from settings keys (driver, currents).
	Notes []string `json:"notes,omitempty"`
	// Used lists "key=value" of the Tuya settings (non-pin keys) applied.
	Used []string `json:"used"`
	// NotCarried lists "key=value" of Tuya keys with no equivalent.
	NotCarried []string `json:"not_carried"`
	header     []string
}

// obkRole picks the OpenBeken role for a Tuya pin function. OpenBeken's
// Btn is active low with pull-up, Btn_pd_n active high with pull-down,
// Rel_n/LED_n/PWM_n/WifiLED_n drive active low (src/new_pins.c
// BTN_ShouldInvert and the pull set-up in PIN_SetPinRoleForPinIndex).
func obkRole(f tuyaconfig.Function, driver string) (role string, channel int, note string) {
	low := f.Level == tuyaconfig.ActiveLow
	high := f.Level == tuyaconfig.ActiveHigh
	switch f.Role {
	case tuyaconfig.RoleRelay:
		return pick(low, "Rel_n", "Rel"), f.Channel, ""
	case tuyaconfig.RoleRelayOn:
		return "BridgeFWD", f.Channel, "pulsed by OpenBeken's Bridge driver"
	case tuyaconfig.RoleRelayOff:
		return "BridgeREV", f.Channel, "pulsed by OpenBeken's Bridge driver"
	case tuyaconfig.RoleButton:
		return pick(high, "Btn_pd_n", "Btn"), f.Channel, ""
	case tuyaconfig.RoleButtonAll:
		if high {
			return "Btn_Tgl_All_n", 0, "active-high toggle-all button: OpenBeken has no pull-down variant, check it works"
		}
		return "Btn_Tgl_All", 0, ""
	case tuyaconfig.RoleLED, tuyaconfig.RoleBacklight:
		return pick(low, "LED_n", "LED"), f.Channel, ""
	case tuyaconfig.RoleStatusLED:
		// Level not set: BK7231GUIFlashTool always uses WifiLED_n.
		return pick(high, "WifiLED", "WifiLED_n"), 0, ""
	case tuyaconfig.RoleSwitchInput:
		return "TglChanOnTgl", f.Channel, ""
	case tuyaconfig.RoleDoorSensor, tuyaconfig.RoleMotion:
		return "dInput", f.Channel, ""
	case tuyaconfig.RolePWM:
		return pick(low, "PWM_n", "PWM"), f.Channel, ""
	case tuyaconfig.RoleEnergyCF:
		return "BL0937CF", 0, ""
	case tuyaconfig.RoleEnergyCF1:
		return "BL0937CF1", 0, ""
	case tuyaconfig.RoleEnergySEL:
		if high {
			return "BL0937SEL", 0, "SEL active high: if voltage and current come out swapped, use BL0937SEL_n instead"
		}
		return "BL0937SEL", 0, ""
	case tuyaconfig.RoleIRReceiver:
		return "IRRecv", 0, ""
	case tuyaconfig.RoleIRSender:
		return "IRSend", 0, ""
	case tuyaconfig.RoleRFReceiver:
		return "RCRecv", 0, ""
	case tuyaconfig.RoleLEDDriverData, tuyaconfig.RoleLEDDriverClock:
		dat := f.Role == tuyaconfig.RoleLEDDriverData
		switch driver {
		case "SM2135", "SM2235":
			return driver + pick(dat, "DAT", "CLK"), 0, ""
		case "BP5758D", "BP1658CJ", "KP18058":
			return driver + pick(dat, "_DAT", "_CLK"), 0, ""
		}
		return "", 0, ""
	case tuyaconfig.RoleLEDStripData:
		return "SM16703P_DIN", 0, "SPI LED strip assumed to be SM16703P/WS2812-like"
	case tuyaconfig.RoleBatteryADC:
		return "BAT_ADC", 0, ""
	case tuyaconfig.RoleBatteryRelay:
		return pick(low, "BAT_Relay_n", "BAT_Relay"), 0, ""
	}
	return "", 0, ""
}

// OpenBeken builds the OpenBeken configuration for u. Pins with no
// OpenBeken role and Tuya settings with no equivalent come back as
// warnings and in NotCarried.
func OpenBeken(u *tuyaconfig.UserParamKey) (*OBKConfig, []Warning) {
	if u == nil {
		return &OBKConfig{}, []Warning{{Key: "user_param_key", Message: "no pin map stored; the device may be TuyaMCU-based"}}
	}
	t := newTracker(u)
	c := &OBKConfig{Chip: tuyaconfig.ChipFromModule(u.Module()), Module: u.Module(), header: header(u, "OpenBeken")}
	warnESP(u, t, "OpenBeken")
	driver := u.LightDriver()
	for _, f := range u.Functions() {
		role, ch, note := obkRole(f, driver)
		if role == "" || !t.claim(f.Pin, f.Key) {
			continue // no role: reported by leftovers
		}
		reason := f.Describe()
		if f.Level != tuyaconfig.LevelUnset {
			lv, _ := u.Int(tuyaconfig.LevelKey(f.Key))
			reason += fmt.Sprintf(", %s=%d", tuyaconfig.LevelKey(f.Key), lv)
		}
		if note != "" {
			reason += "; " + note
			t.warn(f.Key, "%s", note)
		}
		c.Pins = append(c.Pins, OBKPin{Pin: f.Pin, Role: role, RoleIndex: obkRoles[role], Channel: ch, Key: f.Key, Reason: reason})
	}
	sort.SliceStable(c.Pins, func(i, j int) bool { return c.Pins[i].Pin < c.Pins[j].Pin })
	if hz, ok := u.Int("pwmhz"); ok {
		t.use("pwmhz")
		c.Commands = append(c.Commands, fmt.Sprintf("PWMFrequency %d", hz))
	}
	cmds, notes := ledDriverCommands(u, driver, t)
	c.Commands, c.Notes = append(c.Commands, cmds...), notes
	commonChecks(u, t, "OpenBeken")
	c.NotCarried = t.leftovers("OpenBeken")
	c.Used = t.usedSettings()
	return c, t.warnings
}

// ledDriverCommands gives the current and channel-map commands of an
// I²C-like LED driver, with the key-to-argument mapping of
// BK7231GUIFlashTool TuyaConfig.cs (SM2135_Current rgb cw from
// ehccur|iicccur|campere and ehwcur|iicwcur|wampere; BP5758D_Current
// drgbcur max(dwcur,dccur); BP1658CJ_Current cjccur cjwcur; SM2235_Current
// 2235ccur 2235wcur; KP18058_Current kp58wcur kp58ccur; LED_Map iicr iicg
// iicb iicc iicw).
func ledDriverCommands(u *tuyaconfig.UserParamKey, driver string, t *tracker) (cmds, notes []string) {
	if !u.Has("iicscl") && !u.Has("iicsda") {
		return nil, nil
	}
	var from []string
	first := func(keys ...string) (int, bool) {
		for _, k := range keys {
			if v, ok := u.Int(k); ok {
				t.use(k)
				from = append(from, fmt.Sprintf("%s=%d", k, v))
				return v, true
			}
		}
		return 0, false
	}
	if d, ok := u.Int("dmod"); ok {
		notes = append(notes, fmt.Sprintf("LED driver %s from dmod=%d", orUnknown(driver), d))
	} else {
		notes = append(notes, fmt.Sprintf("LED driver %s from the current keys", orUnknown(driver)))
	}
	two := func(name string, rgb, cw []string) {
		r, okR := first(rgb...)
		w, okW := first(cw...)
		if okR || okW {
			cmds = append(cmds, fmt.Sprintf("%s_Current %d %d", name, or1(r, okR), or1(w, okW)))
		}
	}
	switch driver {
	case "SM2135":
		two("SM2135", []string{"ehccur", "iicccur", "campere"}, []string{"ehwcur", "iicwcur", "wampere"})
	case "BP5758D":
		r, okR := first("drgbcur")
		w, okW := first("dwcur")
		cc, okC := first("dccur")
		if okR || okW || okC {
			cmds = append(cmds, fmt.Sprintf("BP5758D_Current %d %d", or1(r, okR), max(or1(w, okW), or1(cc, okC))))
		}
	case "BP1658CJ":
		two("BP1658CJ", []string{"cjccur"}, []string{"cjwcur"})
	case "SM2235":
		two("SM2235", []string{"2235ccur"}, []string{"2235wcur"})
	case "KP18058":
		two("KP18058", []string{"kp58wcur"}, []string{"kp58ccur"})
	default:
		t.warn("iicscl", "LED driver type unknown (no dmod or current key): set the driver's DAT/CLK roles by hand")
	}
	var m []string
	for _, k := range []string{"iicr", "iicg", "iicb", "iicc", "iicw"} {
		if v, ok := u.Int(k); ok {
			m = append(m, strconv.Itoa(v))
		}
	}
	if len(m) == 5 {
		t.use("iicr", "iicg", "iicb", "iicc", "iicw")
		cmds = append(cmds, "LED_Map "+strings.Join(m, " "))
	}
	if len(from) > 0 {
		notes = append(notes, "currents from "+strings.Join(from, ", "))
	}
	return cmds, notes
}

// or1 is v when ok, else 1 (BK7231GUIFlashTool's default for a missing
// current).
func or1(v int, ok bool) int {
	if ok {
		return v
	}
	return 1
}

// Text renders the configuration as OpenBeken console commands, one per
// line, with // comments: usable as autoexec.bat or pasted line by line.
func (c *OBKConfig) Text() string {
	var b strings.Builder
	for _, h := range c.header {
		b.WriteString("// " + h + "\n")
	}
	if c.Module != "" {
		fmt.Fprintf(&b, "// Module %s (%s)\n", c.Module, orUnknown(c.Chip))
	}
	if len(c.Pins) == 0 {
		b.WriteString("// No pins to configure.\n")
	}
	for _, p := range c.Pins {
		fmt.Fprintf(&b, "// P%d: %s (%s)\n", p.Pin, p.Reason, p.Key)
		fmt.Fprintf(&b, "SetPinRole %d %s\n", p.Pin, p.Role)
		fmt.Fprintf(&b, "SetPinChannel %d %d\n", p.Pin, p.Channel)
	}
	for _, n := range c.Notes {
		b.WriteString("// " + n + "\n")
	}
	if len(c.Commands) > 0 {
		b.WriteString("// Startup commands (also in the JSON template's \"command\")\n")
		for _, cmd := range c.Commands {
			b.WriteString(cmd + "\n")
		}
	}
	if len(c.Used) > 0 {
		b.WriteString("// Tuya settings used: " + strings.Join(c.Used, ", ") + "\n")
	}
	if len(c.NotCarried) > 0 {
		b.WriteString("// Tuya keys with no OpenBeken equivalent (not applied):\n")
		for _, l := range wrap(c.NotCarried, 70) {
			b.WriteString("//   " + l + "\n")
		}
	}
	return b.String()
}

// Backlog renders the pin roles, channels and startup commands as one
// "backlog" line for OpenBeken's web console.
func (c *OBKConfig) Backlog() string {
	var cmds []string
	for _, p := range c.Pins {
		cmds = append(cmds, fmt.Sprintf("SetPinRole %d %s", p.Pin, p.Role), fmt.Sprintf("SetPinChannel %d %d", p.Pin, p.Channel))
	}
	cmds = append(cmds, c.Commands...)
	return "backlog " + strings.Join(cmds, "; ")
}

// obkTemplate is OpenBeken's device template (OpenBekenIOT/webapp
// devices.json entries, imported through the web app's Import tab).
type obkTemplate struct {
	Vendor    string            `json:"vendor"`
	BDetailed string            `json:"bDetailed"`
	Name      string            `json:"name"`
	Model     string            `json:"model"`
	Chip      string            `json:"chip"`
	Board     string            `json:"board"`
	Keywords  []string          `json:"keywords"`
	Pins      map[string]string `json:"pins"`
	Command   string            `json:"command"`
	Image     string            `json:"image"`
	Wiki      string            `json:"wiki"`
}

// JSON renders the configuration as an OpenBeken device template:
// "pins" maps "<pin>" to "<Role>;<channel>", "command" holds the startup
// commands as a backlog line.
func (c *OBKConfig) JSON(name string) ([]byte, error) {
	t := obkTemplate{Vendor: "Tuya", BDetailed: "0", Name: name, Chip: c.Chip, Board: c.Module, Keywords: []string{}, Pins: map[string]string{}}
	for _, p := range c.Pins {
		t.Pins[strconv.Itoa(p.Pin)] = fmt.Sprintf("%s;%d", p.Role, p.Channel)
	}
	if len(c.Commands) > 0 {
		t.Command = "backlog " + strings.Join(c.Commands, "; ")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(t); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func orUnknown(s string) string {
	if s == "" {
		return "chip unknown"
	}
	return s
}
