package tuyaconfig

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// UserParamKey is the parsed user_param_key: the vendor's pin map and
// behaviour settings, e.g. {rl1_pin:6,rl1_lv:1,bt1_pin:10,module:WB2S,…}.
type UserParamKey struct {
	// Raw is the stored text.
	Raw string `json:"raw"`
	// Values holds each key's value: int for plain decimal integers
	// ("0" or no leading zero), string otherwise (so "0505" and "1.2.0"
	// stay text), map[string]any / []any for nested parts.
	Values map[string]any `json:"values"`
	// Order lists the top-level keys in stored order.
	Order []string `json:"order"`
}

// ParseUserParamKey parses Tuya's unquoted pseudo-JSON ({key:value,…},
// trailing commas allowed; bk7231-protocol.md §12.3). Quoted JSON is
// accepted too. The result keeps Raw even when parsing fails part-way.
func ParseUserParamKey(s string) (*UserParamKey, error) {
	u := &UserParamKey{Raw: s, Values: map[string]any{}}
	p := &upkParser{s: s}
	p.ws()
	if p.i >= len(s) || s[p.i] != '{' {
		return u, fmt.Errorf("%w: does not start with '{'", ErrUserParamKey)
	}
	_, err := p.object(func(k string, v any) {
		if _, dup := u.Values[k]; !dup {
			u.Order = append(u.Order, k)
		}
		u.Values[k] = v
	})
	if err != nil {
		return u, fmt.Errorf("%w: %v", ErrUserParamKey, err)
	}
	p.ws()
	if p.i < len(s) && strings.Trim(s[p.i:], "\x00") != "" {
		return u, fmt.Errorf("%w: unexpected text after the closing '}' at offset %d", ErrUserParamKey, p.i)
	}
	return u, nil
}

type upkParser struct {
	s     string
	i     int
	depth int
}

func (p *upkParser) ws() {
	for p.i < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *upkParser) errorf(format string, a ...any) error {
	return fmt.Errorf("offset %d: %s", p.i, fmt.Sprintf(format, a...))
}

// list parses the items of a bracketed list at p.i: item is called for
// each; items are separated by ',' and a trailing ',' is allowed.
func (p *upkParser) list(closing byte, item func() error) error {
	if p.depth++; p.depth > 32 {
		return p.errorf("nested too deeply")
	}
	defer func() { p.depth-- }()
	p.i++ // the opening bracket
	for {
		p.ws()
		if p.i >= len(p.s) {
			return p.errorf("missing '%c'", closing)
		}
		if p.s[p.i] == closing {
			p.i++
			return nil
		}
		if err := item(); err != nil {
			return err
		}
		p.ws()
		switch {
		case p.i < len(p.s) && p.s[p.i] == ',':
			p.i++
		case p.i < len(p.s) && p.s[p.i] == closing:
		default:
			return p.errorf("expected ',' or '%c'", closing)
		}
	}
}

// object parses {…} at p.i; top, when non-nil, receives the members in
// order.
func (p *upkParser) object(top func(string, any)) (map[string]any, error) {
	m := map[string]any{}
	err := p.list('}', func() error {
		k, err := p.scalarText()
		if err != nil {
			return err
		}
		p.ws()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return p.errorf("missing ':' after key %q", k)
		}
		p.i++
		v, err := p.value()
		if err != nil {
			return err
		}
		m[k] = v
		if top != nil {
			top(k, v)
		}
		return nil
	})
	return m, err
}

func (p *upkParser) array() ([]any, error) {
	var a []any
	err := p.list(']', func() error {
		v, err := p.value()
		a = append(a, v)
		return err
	})
	return a, err
}

func (p *upkParser) value() (any, error) {
	p.ws()
	if p.i < len(p.s) {
		switch p.s[p.i] {
		case '{':
			return p.object(nil)
		case '[':
			return p.array()
		}
	}
	quoted := p.i < len(p.s) && p.s[p.i] == '"'
	t, err := p.scalarText()
	if err != nil {
		return nil, err
	}
	if !quoted && isPlainInt(t) {
		if n, err := strconv.Atoi(t); err == nil {
			return n, nil
		}
	}
	return t, nil
}

// isPlainInt reports "0" or a decimal without leading zero (the rule of
// bk7231tools parse_user_param_key).
func isPlainInt(t string) bool {
	if t == "0" {
		return true
	}
	if t == "" || t[0] < '1' || t[0] > '9' || len(t) > 18 {
		return false
	}
	for i := 1; i < len(t); i++ {
		if t[i] < '0' || t[i] > '9' {
			return false
		}
	}
	return true
}

// scalarText reads a quoted JSON string or a bare token up to one of
// ",:{}[]".
func (p *upkParser) scalarText() (string, error) {
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == '"' {
		j := p.i + 1
		for j < len(p.s) && p.s[j] != '"' {
			if p.s[j] == '\\' {
				j++
			}
			j++
		}
		if j >= len(p.s) {
			return "", p.errorf("unterminated string")
		}
		var s string
		if err := json.Unmarshal([]byte(p.s[p.i:j+1]), &s); err != nil {
			return "", p.errorf("bad string: %v", err)
		}
		p.i = j + 1
		return s, nil
	}
	j := p.i
	for j < len(p.s) && strings.IndexByte(",:{}[]", p.s[j]) < 0 {
		j++
	}
	t := strings.TrimSpace(p.s[p.i:j])
	p.i = j
	return t, nil
}

// Has reports whether key is present.
func (u *UserParamKey) Has(key string) bool {
	if u == nil {
		return false
	}
	_, ok := u.Values[key]
	return ok
}

// Int returns key's value as an integer (ints, and decimal strings).
func (u *UserParamKey) Int(key string) (int, bool) {
	if u == nil {
		return 0, false
	}
	switch v := u.Values[key].(type) {
	case int:
		return v, true
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(v))
		return n, err == nil
	}
	return 0, false
}

// String returns key's value as text (scalars only).
func (u *UserParamKey) String(key string) (string, bool) {
	if u == nil {
		return "", false
	}
	switch v := u.Values[key].(type) {
	case string:
		return v, true
	case int:
		return strconv.Itoa(v), true
	}
	return "", false
}

// Module returns the Tuya module name ("" when absent).
func (u *UserParamKey) Module() string {
	s, _ := u.String("module")
	return s
}

// Level is a Tuya active level from a *_lv key.
type Level int

// Active levels: *_lv = 0 means active-low (inverted), 1 active-high
// (libretiny docs/resources/tuya-pin-config.md; upk2esphome inverts on 0).
const (
	LevelUnset Level = iota // no *_lv key
	ActiveLow
	ActiveHigh
)

// String names the level, e.g. "active low".
func (l Level) String() string {
	switch l {
	case ActiveLow:
		return "active low"
	case ActiveHigh:
		return "active high"
	}
	return "level not set"
}

// MarshalText makes Level readable in JSON.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// LevelKey returns the *_lv key that belongs to a pin key: rl1_pin →
// rl1_lv, sel_pin_pin → sel_pin_lv, wfst → wfst_lv.
func LevelKey(pinKey string) string {
	return strings.TrimSuffix(pinKey, "_pin") + "_lv"
}

// Level returns the active level of a pin key.
func (u *UserParamKey) Level(pinKey string) Level {
	n, ok := u.Int(LevelKey(pinKey))
	switch {
	case !ok:
		return LevelUnset
	case n == 0:
		return ActiveLow
	default:
		return ActiveHigh
	}
}

// Role is the function of a pin in the Tuya pin map.
type Role string

// Pin roles (libretiny docs/resources/tuya-pin-config.md; the key set that
// BK7231GUIFlashTool TuyaConfig.cs and upk2esphome recognise).
const (
	RoleRelay          Role = "relay"            // rlN_pin
	RoleRelayOn        Role = "relay-on"         // rl_onN_pin, bistable relay set coil
	RoleRelayOff       Role = "relay-off"        // rl_offN_pin, bistable relay reset coil
	RoleButton         Role = "button"           // btN_pin, bt_pin, kNpin_pin, key_pin, reset_pin
	RoleButtonAll      Role = "button-all"       // total_bt_pin: toggles every channel
	RoleLED            Role = "led"              // ledN_pin: channel state LED
	RoleBacklight      Role = "backlight"        // backlit_io_pin
	RoleStatusLED      Role = "status-led"       // netled_pin, netledN_pin, wfst(_pin), status_led_pin
	RoleSwitchInput    Role = "switch-input"     // onoffN: wall switch input toggling channel N
	RoleDoorSensor     Role = "door-sensor"      // doorN_magt_pin, gate_sensor_pin_pin
	RoleMotion         Role = "motion-sensor"    // basic_pin_pin, pirin_pin
	RolePWM            Role = "light-pwm"        // r/g/b/c/w_pin, Channel 0..4
	RoleEnergyCF       Role = "energy-cf"        // ele_pin, epin (BL0937/HLW8012 CF)
	RoleEnergyCF1      Role = "energy-cf1"       // vi_pin, ivpin
	RoleEnergySEL      Role = "energy-sel"       // sel_pin_pin, ivcpin
	RoleIRReceiver     Role = "ir-receiver"      // infrr, ir, irpin
	RoleIRSender       Role = "ir-sender"        // infre
	RoleRFReceiver     Role = "rf-receiver"      // remote_io
	RoleLEDDriverData  Role = "led-driver-data"  // iicsda (I²C-like LED driver)
	RoleLEDDriverClock Role = "led-driver-clock" // iicscl
	RoleLEDStripData   Role = "led-strip-data"   // mosi (SPI LED strip)
	RoleBatteryADC     Role = "battery-adc"      // samp_pin
	RoleBatteryRelay   Role = "battery-relay"    // samp_sw_pin
	RoleBuzzer         Role = "buzzer"           // buzzer_io, bz_pin_pin
	RoleUnknown        Role = "unknown"          // a pin key without a known function
)

// Function is one pin of the Tuya pin map.
type Function struct {
	Role    Role   `json:"role"`
	Key     string `json:"key"`
	Pin     int    `json:"pin"`
	Channel int    `json:"channel"` // relay/button/LED number; PWM colour index 0..4 (R,G,B,C,W)
	Level   Level  `json:"level"`
}

// pinRule maps a key pattern to a role; the first submatch, if any, is the
// channel, otherwise channel is used.
type pinRule struct {
	re      *regexp.Regexp
	role    Role
	channel int
}

var pinRules = func() []pinRule {
	r := func(expr string, role Role, ch int) pinRule {
		return pinRule{regexp.MustCompile("^(?:" + expr + ")$"), role, ch}
	}
	return []pinRule{
		r(`rl(\d+)_pin`, RoleRelay, 0),
		r(`rl|rl_pin`, RoleRelay, 1),
		r(`rl_on(\d+)_pin`, RoleRelayOn, 0),
		r(`rl_off(\d+)_pin`, RoleRelayOff, 0),
		r(`bt(\d+)_pin`, RoleButton, 0),
		r(`k(\d+)pin_pin`, RoleButton, 0),
		r(`bt|bt_pin|key_pin|reset_pin`, RoleButton, 1),
		r(`total_bt_pin`, RoleButtonAll, 0),
		r(`led(\d+)_pin`, RoleLED, 0),
		r(`led_pin`, RoleLED, 1),
		r(`backlit_io_pin`, RoleBacklight, 0),
		r(`netled\d*_pin|wfst|wfst_pin|status_led_pin`, RoleStatusLED, 0),
		r(`onoff(\d+)`, RoleSwitchInput, 0),
		r(`door(\d+)_magt_pin`, RoleDoorSensor, 0),
		r(`gate_sensor_pin_pin`, RoleDoorSensor, 1),
		r(`basic_pin_pin|pirin_pin`, RoleMotion, 0),
		r(`r_pin`, RolePWM, 0),
		r(`g_pin`, RolePWM, 1),
		r(`b_pin`, RolePWM, 2),
		r(`c_pin`, RolePWM, 3),
		r(`w_pin`, RolePWM, 4),
		r(`ele_pin|epin`, RoleEnergyCF, 0),
		r(`vi_pin|ivpin`, RoleEnergyCF1, 0),
		r(`sel_pin_pin|ivcpin`, RoleEnergySEL, 0),
		r(`infrr|ir|irpin|ir_pin`, RoleIRReceiver, 0),
		r(`infre`, RoleIRSender, 0),
		r(`remote_io`, RoleRFReceiver, 0),
		r(`iicsda`, RoleLEDDriverData, 0),
		r(`iicscl`, RoleLEDDriverClock, 0),
		r(`mosi`, RoleLEDStripData, 0),
		r(`samp_pin`, RoleBatteryADC, 0),
		r(`samp_sw_pin`, RoleBatteryRelay, 0),
		r(`buzzer_io|bz_pin_pin`, RoleBuzzer, 0),
		// Pins with no function here; listed so they are never dropped.
		r(`.*_pin|mic|miso|SCL|CS`, RoleUnknown, 0),
	}
}()

// Functions returns every pin of the map with its role, in stored key
// order. Keys that look like pins but hold no integer are skipped (they
// are still in Values).
func (u *UserParamKey) Functions() []Function {
	if u == nil {
		return nil
	}
	var out []Function
	for _, k := range u.Order {
		pin, ok := u.Int(k)
		if !ok || pin < 0 {
			continue
		}
		for _, r := range pinRules {
			m := r.re.FindStringSubmatch(k)
			if m == nil {
				continue
			}
			ch := r.channel
			if len(m) > 1 && m[1] != "" {
				ch, _ = strconv.Atoi(m[1])
			}
			out = append(out, Function{Role: r.role, Key: k, Pin: pin, Channel: ch, Level: u.Level(k)})
			break
		}
	}
	return out
}

// IsPinKey reports whether key names a pin in the map (it holds an
// integer and Functions lists it).
func (u *UserParamKey) IsPinKey(key string) bool {
	for _, f := range u.Functions() {
		if f.Key == key {
			return true
		}
	}
	return false
}

// Light drivers by dmod (libretiny docs/resources/tuya-pin-config.md).
var dmodDrivers = map[int]string{0: "PWM", 1: "SM16726B", 2: "SM2135", 3: "SM2135", 4: "SM2135", 5: "BP1658CJ", 6: "BP5758D", 7: "SM2235"}

// LightDriver names the bulb's LED driver: from dmod when present, else
// from the current keys as BK7231GUIFlashTool does (ehccur/wampere/
// iicccur/campere → SM2135, dccur/drgbcur → BP5758D, cjwcur/cjccur →
// BP1658CJ, 2235ccur → SM2235, kp58wcur → KP18058), else "PWM" when colour
// pins exist, else "".
func (u *UserParamKey) LightDriver() string {
	if n, ok := u.Int("dmod"); ok {
		if d, ok := dmodDrivers[n]; ok {
			return d
		}
	}
	any := func(keys ...string) bool {
		for _, k := range keys {
			if u.Has(k) {
				return true
			}
		}
		return false
	}
	switch {
	case any("ehccur", "wampere", "iicccur", "campere"):
		return "SM2135"
	case any("dccur", "drgbcur"):
		return "BP5758D"
	case any("cjwcur", "cjccur"):
		return "BP1658CJ"
	case any("2235ccur", "2335ccur"):
		return "SM2235"
	case any("kp58wcur", "kp58ccur"):
		return "KP18058"
	case any("r_pin", "g_pin", "b_pin", "c_pin", "w_pin"):
		return "PWM"
	}
	return ""
}

// SortedKeys returns the keys of Values in stored order followed by any
// not in Order (sorted).
func (u *UserParamKey) SortedKeys() []string {
	seen := map[string]bool{}
	var out []string
	for _, k := range u.Order {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	var rest []string
	for k := range u.Values {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}
