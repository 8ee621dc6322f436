package termsafe

import (
	"strings"
	"testing"
)

func TestCleanNeutralisesTerminalControls(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Tasmota", "Tasmota"},
		{"Küche Steckdose 💡", "Küche Steckdose 💡"},
		{"plug\x1b[2J\x1b[1;1H", `plug\x1b[2J\x1b[1;1H`},
		{"\x1b]0;pwned\x07", `\x1b]0;pwned\x07`},
		{"14.4.1\nverified: OK", `14.4.1\nverified: OK`},
		{"a\rb\tc\x00d\x7f", `a\rb\tc\x00d\x7f`},
		{"c1 \u009b2J", `c1 \u009b2J`},
		{"evil\u202Egnp.exe", `evil\u202egnp.exe`},
		{"bad \xff\xfe utf8", "bad \uFFFD\uFFFD utf8"},
	} {
		got := Clean(tc.in)
		if got != tc.want {
			t.Errorf("Clean(%q) = %q, want %q", tc.in, got, tc.want)
		}
		for _, c := range got {
			if isControl(c) {
				t.Errorf("Clean(%q) still holds %U", tc.in, c)
			}
		}
	}
	ss := All([]string{"ok", "x\x1by"})
	if ss[1] != `x\x1by` || ss[0] != "ok" {
		t.Errorf("All: %q", ss)
	}
}

func TestCleanDoesNotAllocateForPlainText(t *testing.T) {
	s := strings.Repeat("OpenBK7231N 1.17.670 ", 10)
	if n := testing.AllocsPerRun(100, func() { Clean(s) }); n != 0 {
		t.Errorf("%v allocations for a plain string", n)
	}
}

func FuzzClean(f *testing.F) {
	f.Add("plug\x1b[2J")
	f.Add("\u009b\u202e\xff")
	f.Fuzz(func(t *testing.T, s string) {
		for _, r := range Clean(s) {
			if isControl(r) {
				t.Fatalf("Clean(%q) holds %U", s, r)
			}
		}
	})
}
