package pintemplate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tuyaflash/tuyaflash/tuyaconfig"
)

// Tasmota GPIO component numbers (tasmota/docs docs/Components.md, the
// Tasmota ≥ 9.1 numbering): the Nth instance of a component is base+N-1.
const (
	tasButton    = 32   // Button1: active low, internal pull-up
	tasButtonIN  = 128  // Button_in1: inverted (active high), no pull-up
	tasSwitch    = 160  // Switch1
	tasRelay     = 224  // Relay1
	tasRelayI    = 256  // Relay_i1: inverted
	tasLed       = 288  // Led1
	tasLedI      = 320  // Led_i1: inverted
	tasPWM       = 416  // PWM1..PWM5
	tasPWMI      = 448  // PWM_i1..PWM_i5
	tasLedLink   = 544  // LedLink
	tasLedLinkI  = 576  // LedLink_i
	tasIRSend    = 1056 // IRsend
	tasIRRecv    = 1088 // IRrecv
	tasHLWSel    = 2592 // HLWBL SEL
	tasHLWSelI   = 2624 // HLWBL SEL_i
	tasHLWCF1    = 2656 // HLWBL CF1
	tasHLW8012CF = 2688 // HLW8012 CF
	tasBL0937CF  = 2720 // BL0937 CF
)

// esp8266Slots maps an ESP8266 GPIO to its index in a Tasmota template's
// 14-entry GPIO array: GPIO0-5, 9, 10, 12-16, then A0 (postflash-and-
// ecosystem.md §1.5; tasmota/docs docs/Templates.md). GPIO6-8 and 11 are
// the flash bus and absent.
var esp8266Slots = map[int]int{0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 9: 6, 10: 7, 12: 8, 13: 9, 14: 10, 15: 11, 16: 12, 17: 13}

// tasmotaTemplate is Tasmota's template JSON.
type tasmotaTemplate struct {
	Name string `json:"NAME"`
	GPIO []int  `json:"GPIO"`
	Flag int    `json:"FLAG"`
	Base int    `json:"BASE"`
}

// tasmotaCode picks the component for a Tuya pin function. Buttons with
// level 0 (or none) are Button (active low, pull-up); level 1 is
// Button_in (active high, no pull-up, as the stock firmware expects an
// external pull-down). Relays, LEDs and PWM with level 0 use the _i
// (inverted) variant; the status LED is LedLink_i unless level 1. The
// BL0937/HLW8012 SEL pin is SEL_i when sel_pin_lv is 1 (the level that
// upk2esphome inverts on).
func tasmotaCode(u *tuyaconfig.UserParamKey, f tuyaconfig.Function) int {
	low, high := f.Level == tuyaconfig.ActiveLow, f.Level == tuyaconfig.ActiveHigh
	n := f.Channel
	inRange := n >= 1 && n <= 8
	switch f.Role {
	case tuyaconfig.RoleRelay:
		if inRange {
			return pick(low, tasRelayI, tasRelay) + n - 1
		}
	case tuyaconfig.RoleButton:
		if inRange {
			return pick(high, tasButtonIN, tasButton) + n - 1
		}
	case tuyaconfig.RoleLED:
		if n >= 1 && n <= 4 {
			return pick(low, tasLedI, tasLed) + n - 1
		}
	case tuyaconfig.RoleStatusLED:
		return pick(high, tasLedLink, tasLedLinkI)
	case tuyaconfig.RoleSwitchInput:
		if inRange {
			return tasSwitch + n - 1
		}
	case tuyaconfig.RolePWM:
		return pick(low, tasPWMI, tasPWM) + f.Channel
	case tuyaconfig.RoleEnergyCF:
		switch ct, _ := u.Int("chip_type"); ct {
		case 0:
			return tasBL0937CF
		case 1:
			return tasHLW8012CF
		}
	case tuyaconfig.RoleEnergyCF1:
		return tasHLWCF1
	case tuyaconfig.RoleEnergySEL:
		return pick(high, tasHLWSelI, tasHLWSel)
	case tuyaconfig.RoleIRSender:
		return tasIRSend
	case tuyaconfig.RoleIRReceiver:
		return tasIRRecv
	}
	return 0
}

// Tasmota builds a Tasmota template (ESP8266, 14 GPIO slots, BASE 18
// Generic) from u, where pins are ESP8266 GPIO numbers. The JSON has no
// room for comments: everything not expressed comes back as warnings.
// For a pin map of a Beken module (WB…, CB…) it returns "" and a warning:
// those pin numbers mean nothing on an ESP8266.
func Tasmota(u *tuyaconfig.UserParamKey, name string) (string, []Warning) {
	if u == nil {
		u = &tuyaconfig.UserParamKey{Values: map[string]any{}}
	}
	t := newTracker(u)
	if chip := tuyaconfig.ChipFromModule(u.Module()); chip != "" {
		return "", []Warning{{Key: "module", Message: fmt.Sprintf("module %s is a %s: Tasmota does not run on it and its "+
			"pin numbers are not ESP8266 GPIOs; use the OpenBeken or ESPHome template", u.Module(), chip)}}
	}
	tpl := tasmotaTemplate{Name: name, GPIO: make([]int, 14), Base: 18}
	if tpl.Name == "" {
		tpl.Name = "Tuya " + u.Module()
	}
	if len(tpl.Name) > 60 {
		tpl.Name = tpl.Name[:60]
	}
	for _, f := range u.Functions() {
		code := tasmotaCode(u, f)
		if code == 0 {
			continue // reported as a leftover
		}
		slot, ok := esp8266Slots[f.Pin]
		if !ok {
			t.use(f.Key)
			t.warn(f.Key, "GPIO%d is not a usable ESP8266 pin in a Tasmota template", f.Pin)
			continue
		}
		if t.claim(f.Pin, f.Key) {
			tpl.GPIO[slot] = code
		}
	}
	if hz, ok := u.Int("pwmhz"); ok {
		t.use("pwmhz")
		t.warn("pwmhz", "PWM frequency %d Hz: set it with the PWMFrequency command after applying the template", hz)
	}
	commonChecks(u, t, "Tasmota")
	t.leftovers("Tasmota")
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)                // Tasmota reads the name as written
	if err := enc.Encode(tpl); err != nil { // cannot happen for this struct
		return "", append(t.warnings, Warning{Key: "", Message: err.Error()})
	}
	return strings.TrimSpace(buf.String()), t.warnings
}

// TasmotaCommands returns the console commands that store and activate a
// template (Template stores it, Module 0 activates it; tasmota/docs
// Commands.md).
func TasmotaCommands(template string) []string {
	return []string{fmt.Sprintf("Template %s", template), "Module 0"}
}
