package pintemplate

import (
	"fmt"
	"sort"
	"strings"

	"github.com/tuyaflash/tuyaflash/tuyaconfig"
)

// libretinyBoards are LibreTiny board ids of Beken modules whose name is
// the Tuya module name (libretiny-eu/libretiny boards/*.json).
var libretinyBoards = map[string]bool{
	"cb1s": true, "cb2l": true, "cb2s": true, "cb3l": true, "cb3s": true, "cb3se": true, "cblc5": true, "cbu": true,
	"wb1s": true, "wb2l": true, "wb2s": true, "wb3l": true, "wb3s": true, "wblc5": true,
	"t1-2s": true, "t1-3s": true, "t1-m": true, "t1-u": true,
}

// yamlOut collects the YAML sections in a fixed order.
type yamlOut struct {
	sections map[string][]string
	order    []string
}

func (y *yamlOut) add(section string, lines ...string) {
	if y.sections == nil {
		y.sections = map[string][]string{}
	}
	if _, ok := y.sections[section]; !ok {
		y.order = append(y.order, section)
	}
	y.sections[section] = append(y.sections[section], lines...)
}

// pinYAML renders a pin at indent: a bare "P6", or a mapping with
// inverted/mode.
func pinYAML(indent, key string, pin int, inverted bool, mode string) []string {
	if !inverted && mode == "" {
		return []string{fmt.Sprintf("%s%s: P%d", indent, key, pin)}
	}
	out := []string{indent + key + ":", fmt.Sprintf("%s  number: P%d", indent, pin)}
	if mode != "" {
		out = append(out, indent+"  mode: "+mode)
	}
	if inverted {
		out = append(out, indent+"  inverted: true")
	}
	return out
}

// ESPHome builds an ESPHome configuration for LibreTiny's bk72xx platform
// from u. The mapping follows libretiny-eu/upk2esphome (parts/switch.py,
// netled.py, monitor.py, bulb.py): a pin with *_lv 0 is inverted; buttons
// with level 0 are INPUT_PULLUP inverted, with level 1 INPUT_PULLDOWN;
// BL0937 CF/CF1 are inverted and SEL is inverted when sel_pin_lv is 1.
func ESPHome(u *tuyaconfig.UserParamKey, name string) (string, []Warning) {
	if u == nil {
		u = &tuyaconfig.UserParamKey{Values: map[string]any{}}
	}
	t := newTracker(u)
	warnESP(u, t, "ESPHome bk72xx")
	var y yamlOut
	node := nodeName(name)
	chip := tuyaconfig.ChipFromModule(u.Module())
	board := strings.ToLower(u.Module())
	if !libretinyBoards[board] {
		switch chip {
		case "BK7231T":
			board = "generic-bk7231t-qfn32-tuya"
		case "BK7238":
			board = "generic-bk7238-tuya" // LibreTiny boards/generic-bk7238-tuya.json
		default:
			board = "generic-bk7231n-qfn32-tuya"
			if chip == "" {
				t.warn("module", "module %q is not a known Beken module; generic BK7231N board assumed, check the chip", u.Module())
			}
		}
	}
	y.add("esphome", "  name: "+node)
	if name != "" && name != node {
		y.add("esphome", "  friendly_name: "+quote(name))
	}
	y.add("bk72xx", "  board: "+board)
	y.add("logger")
	y.add("web_server")
	y.add("captive_portal")
	y.add("api")
	y.add("ota", "  - platform: esphome")
	y.add("wifi", "  # ssid: !secret wifi_ssid", "  # password: !secret wifi_password", "  ap: {}")

	fns := u.Functions()
	relays := map[int]string{}
	var relayIDs []string
	byRole := func(r tuyaconfig.Role) []tuyaconfig.Function {
		var out []tuyaconfig.Function
		for _, f := range fns {
			if f.Role == r {
				out = append(out, f)
			}
		}
		return out
	}
	low := func(f tuyaconfig.Function) bool { return f.Level == tuyaconfig.ActiveLow }

	// Relays, plain and bistable.
	for _, f := range byRole(tuyaconfig.RoleRelay) {
		if !t.claim(f.Pin, f.Key) {
			continue
		}
		id := fmt.Sprintf("relay_%d", f.Channel)
		relays[f.Channel] = id
		relayIDs = append(relayIDs, id)
		y.add("switch", "  - platform: gpio", "    id: "+id, fmt.Sprintf("    name: Relay %d", f.Channel))
		y.add("switch", pinYAML("    ", "pin", f.Pin, low(f), "")...)
	}
	offs := map[int]tuyaconfig.Function{}
	for _, f := range byRole(tuyaconfig.RoleRelayOff) {
		offs[f.Channel] = f
	}
	for _, on := range byRole(tuyaconfig.RoleRelayOn) {
		off, ok := offs[on.Channel]
		if !ok {
			continue // reported as a leftover
		}
		if !t.claim(on.Pin, on.Key) || !t.claim(off.Pin, off.Key) {
			continue
		}
		id := fmt.Sprintf("relay_%d", on.Channel)
		relays[on.Channel] = id
		relayIDs = append(relayIDs, id)
		pulse, ok := u.Int(fmt.Sprintf("rl%d_drvtime", on.Channel))
		if ok {
			t.use(fmt.Sprintf("rl%d_drvtime", on.Channel))
		} else {
			pulse = 100
		}
		y.add("switch", "  - platform: hbridge", "    id: "+id, fmt.Sprintf("    name: Relay %d", on.Channel))
		y.add("switch", pinYAML("    ", "on_pin", on.Pin, low(on), "")...)
		y.add("switch", pinYAML("    ", "off_pin", off.Pin, low(off), "")...)
		y.add("switch", fmt.Sprintf("    pulse_length: %dms", pulse), fmt.Sprintf("    wait_time: %dms", pulse/2))
	}

	// Channel LEDs follow their relay.
	for _, f := range append(byRole(tuyaconfig.RoleLED), byRole(tuyaconfig.RoleBacklight)...) {
		if !t.claim(f.Pin, f.Key) {
			continue
		}
		id, label := fmt.Sprintf("led_%d", f.Channel), fmt.Sprintf("LED %d", f.Channel)
		if f.Role == tuyaconfig.RoleBacklight {
			id, label = "backlight", "Backlight"
		}
		y.add("output", "  - platform: gpio", "    id: output_"+id)
		y.add("output", pinYAML("    ", "pin", f.Pin, low(f), "")...)
		y.add("light", "  - platform: binary", "    id: "+id, "    name: "+label, "    output: output_"+id)
		if rid, ok := relays[f.Channel]; ok && f.Role == tuyaconfig.RoleLED {
			y.addRelayHook(rid, id)
		}
	}

	// Status LED.
	statusDone := false
	for _, f := range byRole(tuyaconfig.RoleStatusLED) {
		t.use(f.Key)
		if statusDone {
			t.warn(f.Key, "a second status LED pin; ESPHome has one status_led, P%d not used", f.Pin)
			continue
		}
		if !t.claim(f.Pin, f.Key) {
			continue
		}
		statusDone = true
		if v, ok := u.Int("netled_reuse"); ok {
			t.use("netled_reuse")
			if v == 1 {
				t.warn("netled_reuse", "the stock firmware also shows relay state on the status LED; here it only shows the network state")
			}
		}
		y.add("status_led", pinYAML("  ", "pin", f.Pin, f.Level != tuyaconfig.ActiveHigh, "")...)
	}

	// Inputs.
	input := func(f tuyaconfig.Function, id, label, devClass string) bool {
		if !t.claim(f.Pin, f.Key) {
			return false
		}
		y.add("binary_sensor", "  - platform: gpio", "    id: "+id, "    name: "+label)
		if devClass != "" {
			y.add("binary_sensor", "    device_class: "+devClass)
			if f.Level == tuyaconfig.LevelUnset {
				t.warn(f.Key, "no active level in the pin map: if the %s state reads reversed, drop inverted", devClass)
			}
		}
		if f.Level == tuyaconfig.ActiveHigh {
			y.add("binary_sensor", pinYAML("    ", "pin", f.Pin, false, "INPUT_PULLDOWN")...)
		} else {
			y.add("binary_sensor", pinYAML("    ", "pin", f.Pin, true, "INPUT_PULLUP")...)
		}
		return true
	}
	for _, f := range byRole(tuyaconfig.RoleButton) {
		id := fmt.Sprintf("button_%d", f.Channel)
		if f.Key == "reset_pin" {
			id = "button_reset"
		}
		if !input(f, id, fmt.Sprintf("Button %d", f.Channel), "") {
			continue
		}
		if rid, ok := relays[f.Channel]; ok {
			y.add("binary_sensor", "    on_press:", "      - switch.toggle: "+rid)
		}
	}
	for _, f := range byRole(tuyaconfig.RoleButtonAll) {
		if input(f, "button_all", "Button all", "") && len(relayIDs) > 0 {
			y.add("binary_sensor", "    on_press:")
			for _, rid := range relayIDs {
				y.add("binary_sensor", "      - switch.toggle: "+rid)
			}
		}
	}
	for _, f := range byRole(tuyaconfig.RoleSwitchInput) {
		ok := input(f, fmt.Sprintf("switch_input_%d", f.Channel), fmt.Sprintf("Switch input %d", f.Channel), "")
		if rid, has := relays[f.Channel]; ok && has {
			y.add("binary_sensor", "    on_state:", "      - switch.toggle: "+rid)
		}
	}
	for _, f := range byRole(tuyaconfig.RoleDoorSensor) {
		input(f, fmt.Sprintf("door_%d", f.Channel), fmt.Sprintf("Door %d", f.Channel), "door")
	}
	for i, f := range byRole(tuyaconfig.RoleMotion) {
		input(f, fmt.Sprintf("motion_%d", i+1), "Motion", "motion")
	}

	esphomePower(u, t, &y, fns)
	esphomeLight(u, t, &y, fns)
	commonChecks(u, t, "ESPHome")
	rest := t.leftovers("ESPHome")

	var b strings.Builder
	for _, h := range header(u, "ESPHome") {
		b.WriteString("# " + h + "\n")
	}
	if used := t.usedSettings(); len(used) > 0 {
		b.WriteString("# Tuya settings used:\n")
		for _, l := range wrap(used, 72) {
			b.WriteString("#   " + l + "\n")
		}
	}
	if len(rest) > 0 {
		b.WriteString("# Tuya keys with no ESPHome equivalent here (not applied):\n")
		for _, l := range wrap(rest, 72) {
			b.WriteString("#   " + l + "\n")
		}
	}
	for _, s := range y.order {
		lines := y.sections[s]
		if len(lines) == 0 {
			fmt.Fprintf(&b, "\n%s:\n", s)
			continue
		}
		fmt.Fprintf(&b, "\n%s:\n%s\n", s, strings.Join(lines, "\n"))
	}
	return b.String(), t.warnings
}

// addRelayHook makes switch relayID turn light lightID on and off.
func (y *yamlOut) addRelayHook(relayID, lightID string) {
	lines := y.sections["switch"]
	for i, l := range lines {
		if l != "    id: "+relayID {
			continue
		}
		end := i + 1
		for end < len(lines) && !strings.HasPrefix(lines[end], "  - ") {
			end++
		}
		hook := []string{"    on_turn_on:", "      - light.turn_on: " + lightID, "    on_turn_off:", "      - light.turn_off: " + lightID}
		y.sections["switch"] = append(lines[:end:end], append(hook, lines[end:]...)...)
		return
	}
}

// esphomePower adds the hlw8012 sensor for BL0937/HLW8012 meters.
func esphomePower(u *tuyaconfig.UserParamKey, t *tracker, y *yamlOut, fns []tuyaconfig.Function) {
	var cf, cf1, sel *tuyaconfig.Function
	for i := range fns {
		switch fns[i].Role {
		case tuyaconfig.RoleEnergyCF:
			cf = &fns[i]
		case tuyaconfig.RoleEnergyCF1:
			cf1 = &fns[i]
		case tuyaconfig.RoleEnergySEL:
			sel = &fns[i]
		}
	}
	if cf == nil || cf1 == nil || sel == nil {
		return // single pins are reported as leftovers
	}
	ct, ok := u.Int("chip_type")
	if !ok || (ct != 0 && ct != 1) {
		return
	}
	model := map[int]string{0: "BL0937", 1: "HLW8012"}[ct]
	if !t.claim(cf.Pin, cf.Key) || !t.claim(cf1.Pin, cf1.Key) || !t.claim(sel.Pin, sel.Key) {
		return
	}
	y.add("sensor", "  - platform: hlw8012", "    model: "+model)
	y.add("sensor", pinYAML("    ", "cf_pin", cf.Pin, ct == 0, "")...)
	y.add("sensor", pinYAML("    ", "cf1_pin", cf1.Pin, ct == 0, "")...)
	y.add("sensor", pinYAML("    ", "sel_pin", sel.Pin, sel.Level == tuyaconfig.ActiveHigh, "")...)
	for _, k := range []string{"resistor", "sample_resistor"} {
		if r, ok := u.Int(k); ok && r > 0 {
			t.use(k)
			y.add("sensor", fmt.Sprintf("    current_resistor: %.3f ohm", float64(r)/1000))
			break
		}
	}
	y.add("sensor", "    voltage_divider: 1600",
		"    current:", "      name: Current", "    voltage:", "      name: Voltage",
		"    power:", "      name: Power", "    energy:", "      name: Energy")
	t.warn(cf.Key, "power meter readings need calibration (voltage_divider, current_resistor) against a known load")
}

var colourNames = []string{"red", "green", "blue", "cold", "warm"}

// esphomeLight adds the bulb: PWM outputs or an I²C-like driver, and the
// light platform that fits the colours found (upk2esphome bulb.py).
func esphomeLight(u *tuyaconfig.UserParamKey, t *tracker, y *yamlOut, fns []tuyaconfig.Function) {
	driver := u.LightDriver()
	found := map[string]bool{}
	ct, _ := u.Int("cwtype")
	switch driver {
	case "":
		return
	case "PWM":
		for _, f := range fns {
			if f.Role != tuyaconfig.RolePWM {
				continue
			}
			if !t.claim(f.Pin, f.Key) {
				continue
			}
			c := colourNames[f.Channel]
			found[c] = true
			y.add("output", "  - platform: libretiny_pwm", "    id: output_"+c)
			y.add("output", pinYAML("    ", "pin", f.Pin, f.Level == tuyaconfig.ActiveLow, "")...)
		}
	case "SM2235", "SM2135", "BP5758D", "BP1658CJ":
		scl, ok1 := u.Int("iicscl")
		sda, ok2 := u.Int("iicsda")
		if !ok1 || !ok2 {
			t.warn("iicscl", "%s bulb without both iicscl and iicsda", driver)
			return
		}
		if !t.claim(scl, "iicscl") || !t.claim(sda, "iicsda") {
			return
		}
		comp := strings.ToLower(driver)
		y.add(comp, fmt.Sprintf("  clock_pin: P%d", scl), fmt.Sprintf("  data_pin: P%d", sda))
		num := func(keys ...string) (int, bool) {
			for _, k := range keys {
				if v, ok := u.Int(k); ok {
					t.use(k)
					return v, true
				}
			}
			return 0, false
		}
		switch driver {
		case "SM2235", "BP1658CJ":
			cKey, wKey := "2235ccur", "2235wcur"
			if driver == "BP1658CJ" {
				cKey, wKey = "cjccur", "cjwcur"
			}
			if v, ok := num(cKey); ok {
				y.add(comp, fmt.Sprintf("  max_power_color_channels: %d", v))
			}
			if v, ok := num(wKey); ok {
				y.add(comp, fmt.Sprintf("  max_power_white_channels: %d", v))
			}
		case "SM2135":
			// ehccur/iicccur are codes (10 + 5·n mA); campere/wampere mA.
			if v, ok := num("ehccur", "iicccur"); ok {
				y.add(comp, fmt.Sprintf("  rgb_current: %dmA", 10+5*v))
			} else if v, ok := num("campere"); ok {
				y.add(comp, fmt.Sprintf("  rgb_current: %dmA", v))
			}
			if v, ok := num("ehwcur", "iicwcur"); ok {
				y.add(comp, fmt.Sprintf("  cw_current: %dmA", 10+5*v))
			} else if v, ok := num("wampere"); ok {
				y.add(comp, fmt.Sprintf("  cw_current: %dmA", v))
			}
		}
		seen := map[int]bool{}
		for _, c := range colourNames {
			ch, ok := u.Int("iic" + c[:1])
			if !ok {
				continue
			}
			t.use("iic" + c[:1])
			if seen[ch] {
				t.warn("iic"+c[:1], "channel %d is already used by another colour; %s not added", ch, c)
				continue
			}
			seen[ch] = true
			found[c] = true
			y.add("output", "  - platform: "+comp, "    id: output_"+c)
			if driver == "BP5758D" {
				y.add("output", fmt.Sprintf("    channel: %d", ch+1))
				cur := map[string]string{"cold": "dccur", "warm": "dwcur"}[c]
				if cur == "" {
					cur = "drgbcur"
				}
				if v, ok := num(cur); ok && v > 0 {
					y.add("output", fmt.Sprintf("    current: %d", v))
				}
			} else {
				y.add("output", fmt.Sprintf("    channel: %d", ch))
			}
		}
	default:
		t.warn("iicscl", "LED driver %s has no ESPHome component; configure the bulb by hand", driver)
		return
	}
	t.use("cwtype", "cmod") // colour mode: the platform follows the pins found
	var mode []string
	for _, k := range []string{"cmod", "cwtype", "dmod"} {
		if v, ok := u.String(k); ok {
			mode = append(mode, k+"="+v)
		}
	}
	if len(mode) > 0 {
		y.add("light", "  # "+driver+" bulb, Tuya "+strings.Join(mode, " "))
	}
	lightPlatform(y, t, found, ct == 1 && driver == "PWM")
}

// lightPlatform picks the ESPHome light for the colours found.
func lightPlatform(y *yamlOut, t *tracker, found map[string]bool, cct bool) {
	var set []string
	for _, c := range colourNames {
		if found[c] {
			set = append(set, c[:1])
		}
	}
	key := strings.Join(set, "")
	temps := []string{"    cold_white_color_temperature: 6500 K", "    warm_white_color_temperature: 2700 K"}
	var lines []string
	switch {
	case key == "rgbcw" && cct:
		lines = append([]string{"  - platform: rgbct", "    red: output_red", "    green: output_green", "    blue: output_blue",
			"    white_brightness: output_cold", "    color_temperature: output_warm", "    color_interlock: true"}, temps...)
	case key == "rgbcw":
		lines = append([]string{"  - platform: rgbww", "    red: output_red", "    green: output_green", "    blue: output_blue",
			"    cold_white: output_cold", "    warm_white: output_warm", "    color_interlock: true"}, temps...)
	case key == "rgbw" || key == "rgbc":
		white := "output_warm"
		if key == "rgbc" {
			white = "output_cold"
		}
		lines = []string{"  - platform: rgbw", "    red: output_red", "    green: output_green", "    blue: output_blue", "    white: " + white}
	case key == "rgb":
		lines = []string{"  - platform: rgb", "    red: output_red", "    green: output_green", "    blue: output_blue"}
	case key == "cw" && cct:
		lines = append([]string{"  - platform: color_temperature", "    brightness: output_cold", "    color_temperature: output_warm"}, temps...)
	case key == "cw":
		lines = append([]string{"  - platform: cwww", "    cold_white: output_cold", "    warm_white: output_warm"}, temps...)
	case key == "c" || key == "w":
		lines = []string{"  - platform: monochromatic", "    output: output_" + map[string]string{"c": "cold", "w": "warm"}[key]}
	default:
		var names []string
		for c := range found {
			names = append(names, c)
		}
		sort.Strings(names)
		t.warn("cmod", "no ESPHome light platform for the colour set %v; outputs are defined, add the light by hand", names)
		return
	}
	y.add("light", append(lines[:1:1], append([]string{"    id: light_main", "    name: Light"}, lines[1:]...)...)...)
}

// nodeName makes an ESPHome node name: lower case letters, digits and
// hyphens.
func nodeName(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			if s := b.String(); s != "" && !strings.HasSuffix(s, "-") {
				b.WriteByte('-')
			}
		}
	}
	n := strings.Trim(b.String(), "-")
	if len(n) > 31 {
		n = strings.Trim(n[:31], "-")
	}
	if n == "" {
		n = "tuya-device"
	}
	return n
}

// quote renders s as a double-quoted YAML scalar.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
