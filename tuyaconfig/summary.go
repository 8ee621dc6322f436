package tuyaconfig

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/tuyaflash/tuyaflash/internal/termsafe"
)

// roleText describes a role for people.
var roleText = map[Role]string{
	RoleRelay: "relay", RoleRelayOn: "bistable relay ON coil", RoleRelayOff: "bistable relay OFF coil",
	RoleButton: "button", RoleButtonAll: "toggle-all button", RoleLED: "LED", RoleBacklight: "backlight LED",
	RoleStatusLED: "Wi-Fi status LED", RoleSwitchInput: "wall switch input", RoleDoorSensor: "door sensor",
	RoleMotion: "motion sensor", RoleEnergyCF: "power meter CF (power)", RoleEnergyCF1: "power meter CF1 (voltage/current)",
	RoleEnergySEL: "power meter SEL", RoleIRReceiver: "IR receiver", RoleIRSender: "IR transmitter",
	RoleRFReceiver: "RF remote receiver", RoleLEDDriverData: "LED driver data (SDA)", RoleLEDDriverClock: "LED driver clock (SCL)",
	RoleLEDStripData: "LED strip data", RoleBatteryADC: "battery voltage ADC", RoleBatteryRelay: "battery sampling switch",
	RoleBuzzer: "buzzer", RoleUnknown: "pin with no known function",
}

var pwmColours = []string{"red", "green", "blue", "cool white", "warm white"}

// Describe returns a short description, e.g. "relay 1 (active high)".
func (f Function) Describe() string {
	s := roleText[f.Role]
	switch f.Role {
	case RoleRelay, RoleRelayOn, RoleRelayOff, RoleButton, RoleLED, RoleSwitchInput, RoleDoorSensor:
		s += fmt.Sprintf(" %d", f.Channel)
	case RolePWM:
		if f.Channel >= 0 && f.Channel < len(pwmColours) {
			s = "PWM " + pwmColours[f.Channel]
		}
	}
	if f.Level != LevelUnset {
		s += " (" + f.Level.String() + ")"
	}
	return s
}

// Summary renders the readable report the CLI prints. Secrets appear only
// when showSecrets is true; otherwise they read Hidden. Values read from
// the dump show their control characters as visible escapes (termsafe): a
// crafted dump must not drive the user's terminal.
func (c *Config) Summary(showSecrets bool) string {
	v := c
	if !showSecrets {
		v = c.Redacted()
	}
	var b strings.Builder
	line := func(label, value string) {
		if value == "" {
			value = "-"
		}
		fmt.Fprintf(&b, "  %-17s %s\n", label+":", termsafe.Clean(value))
	}
	inUse, total := 0, 0
	for _, bl := range v.Blocks {
		if bl.Kind == KindData {
			total++
			if bl.InUse {
				inUse++
			}
		}
	}
	if p := v.PSM; p != nil {
		enc := "plaintext"
		if p.Encrypted {
			enc = fmt.Sprintf("AES-128-ECB, key byte 0x%02X", p.KeyByte)
		}
		secs := "sectors"
		if p.Sectors == 1 {
			secs = "sector"
		}
		fmt.Fprintf(&b, "Tuya configuration (ESP8266 PSM store at 0x%06X, %d %s, %s)\n", p.Offset, p.Sectors, secs, enc)
	} else {
		fmt.Fprintf(&b, "Tuya configuration (key block at 0x%06X, %d data blocks, %d in use)\n", v.KeyBlockOffset, total, inUse)
	}
	chip := v.Chip
	switch {
	case v.ChipSource == "psm":
		chip += " (Tuya's ESP8266 PSM store; an ESP8285 keeps the same)"
	case chip != "" && v.ChipSource == "em_sys_env":
		chip += fmt.Sprintf(" (em_sys_env %q)", v.Platform)
	case chip != "":
		chip += " (from the module name; em_sys_env not stored)"
	case v.Platform != "":
		chip = fmt.Sprintf("unknown (em_sys_env %q)", v.Platform)
	}
	line("Chip", chip)
	line("Module", v.Module)
	id := v.DeviceID
	if !v.Activated {
		id = "not activated (never paired with the Tuya app)"
	}
	line("Device ID", id)
	line("Local key", v.LocalKey)
	line("SecKey", v.SecKey)
	line("Product key", v.ProductKey)
	if v.FirmwareKey != "" && v.FirmwareKey != v.ProductKey {
		line("Firmware key", v.FirmwareKey)
	}
	line("Firmware", v.FirmwareVersion)
	if v.SchemaID != "" {
		line("Schema ID", v.SchemaID)
	}
	line("UUID", v.UUID)
	line("Auth key", v.AuthKey)
	line("Wi-Fi SSID", v.WiFiSSID)
	line("Wi-Fi password", v.WiFiPassword)
	if u := v.UserParams; u != nil {
		fns := u.Functions()
		fmt.Fprintf(&b, "Pin map (user_param_key, %d keys):\n", len(u.Values))
		if len(fns) == 0 {
			b.WriteString("  no pins: the device may be TuyaMCU-based (a second MCU drives the hardware)\n")
		}
		for _, f := range fns {
			fmt.Fprintf(&b, "  P%-3d %-40s %s\n", f.Pin, termsafe.Clean(f.Describe()), termsafe.Clean(f.Key))
		}
		if d := u.LightDriver(); d != "" && d != "PWM" {
			fmt.Fprintf(&b, "  LED driver: %s\n", d)
		}
		if baud, ok := u.String("baud"); ok {
			fmt.Fprintf(&b, "  baud %s: TuyaMCU or a serial power meter (BL0942) is likely\n", termsafe.Clean(baud))
		}
	} else {
		b.WriteString("Pin map: no user_param_key stored\n")
	}
	if p := v.PSM; p != nil {
		fmt.Fprintf(&b, "PSM entries (%d):\n", len(p.Order))
		for _, k := range p.Order {
			fmt.Fprintf(&b, "  %s = %s\n", termsafe.Clean(k), termsafe.Clean(psmShown(v.Text(k))))
		}
	}
	for _, n := range v.Notes {
		fmt.Fprintf(&b, "Note: %s\n", termsafe.Clean(n))
	}
	var bad []string
	for _, bl := range v.Blocks {
		if !bl.OK {
			bad = append(bad, fmt.Sprintf("  0x%06X %s: %s", bl.Offset, bl.Kind, bl.Reason))
		}
	}
	if len(bad) > 0 {
		b.WriteString("Damaged blocks:\n" + strings.Join(bad, "\n") + "\n")
	}
	if !showSecrets && (c.LocalKey != "" || c.SecKey != "" || c.WiFiSSID != "" || c.WiFiPassword != "" || c.AuthKey != "" || hasHiddenKey(v)) {
		b.WriteString("Secrets are hidden; run again with --show-secrets to see them.\n")
	}
	return b.String()
}

// psmShownMax is how much of a PSM value the summary shows.
const psmShownMax = 160

// psmShown shortens a long value for the summary (--json has it whole).
func psmShown(s string) string {
	if len(s) <= psmShownMax {
		return s
	}
	cut := psmShownMax
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d bytes; --json shows all)", s[:cut], len(s))
}

// hasHiddenKey reports whether the redacted r hides a top-level key.
func hasHiddenKey(r *Config) bool {
	for _, raw := range r.Keys {
		if strings.Contains(string(raw), Hidden) {
			return true
		}
	}
	return false
}
