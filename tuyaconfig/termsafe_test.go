package tuyaconfig

import (
	"strings"
	"testing"
)

// noTerminalControls fails when the summary holds a control character
// other than its own line ends: values from a dump are shown escaped.
func noTerminalControls(t *testing.T, summary string) {
	t.Helper()
	for _, r := range summary {
		if r != '\n' && (r < 0x20 || r == 0x7F || (r >= 0x80 && r < 0xA0) || r == 0x202E) {
			t.Fatalf("the summary holds %U:\n%q", r, summary)
		}
	}
}

// TestSummaryEscapesDumpStrings: a crafted dump's module name, pin keys,
// PSM values and notes cannot drive the terminal the report is read on.
func TestSummaryEscapesDumpStrings(t *testing.T) {
	const payload = "\x1b[2J\x1b]0;owned\x07\nDevice ID: forged\u009b\u202e"
	cfg := &Config{Module: "CB2S" + payload, DeviceID: "bf" + payload, Activated: true, FirmwareVersion: payload,
		Notes: []string{"note" + payload},
		PSM:   &PSMInfo{Order: []string{"ty_ws_prod_key" + payload}}}
	out := cfg.Summary(false)
	noTerminalControls(t, out)
	if !strings.Contains(out, `CB2S\x1b[2J`) {
		t.Errorf("the module name is not shown with visible escapes:\n%s", out)
	}
	if strings.Contains(out, "\nDevice ID: forged") {
		t.Errorf("a value forged a line:\n%s", out)
	}
	noTerminalControls(t, cfg.Summary(true))
}
