package serve

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestFlashLayout(t *testing.T) {
	type r struct{ name, start, end string }
	for _, tc := range []struct {
		chip string
		size int
		want []r
	}{
		{"BK7231N", 2 << 20, []r{{"bootloader", "0x000000", "0x011000"}, {"app", "0x011000", "0x1D0000"}, {"rf", "0x1D0000", "0x1D1000"},
			{"config", "0x1D1000", "0x1EE000"}, {"tuya", "0x1EE000", "0x200000"}}},
		{"bk7231t", 2 << 20, []r{{"bootloader", "0x000000", "0x011000"}, {"app", "0x011000", "0x1E0000"}, {"rf", "0x1E0000", "0x1E1000"},
			{"config", "0x1E1000", "0x1EE000"}, {"tuya", "0x1EE000", "0x200000"}}},
		{"BK7238", 2 << 20, []r{{"bootloader", "0x000000", "0x011000"}, {"app", "0x011000", "0x1E0000"}, {"rf", "0x1E0000", "0x1E1000"},
			{"config", "0x1E1000", "0x1F5000"}, {"tuya", "0x1F5000", "0x200000"}}},
		// A 1 MiB part has no room for the 2 MiB layout's sectors.
		{"BK7231N", 1 << 20, []r{{"bootloader", "0x000000", "0x011000"}, {"app", "0x011000", "0x100000"}}},
		{"ESP8266", 1 << 20, []r{{"bootloader", "0x000000", "0x001000"}, {"app", "0x001000", "0x0FB000"}, {"rf", "0x0FB000", "0x0FC000"},
			{"sdk", "0x0FC000", "0x0FD000"}, {"sdk", "0x0FD000", "0x100000"}}},
		{"esp8285", 4 << 20, []r{{"bootloader", "0x000000", "0x001000"}, {"app", "0x001000", "0x3FB000"}, {"rf", "0x3FB000", "0x3FC000"},
			{"sdk", "0x3FC000", "0x3FD000"}, {"sdk", "0x3FD000", "0x400000"}}},
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.chip, tc.size), func(t *testing.T) {
			l, err := FlashLayout(tc.chip, tc.size)
			if err != nil {
				t.Fatal(err)
			}
			var got []r
			total := 0
			for _, g := range l.Regions {
				got = append(got, r{g.Name, g.Start, g.End})
				total += g.Size
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) || total != tc.size || l.Source == "" {
				t.Errorf("got %v (%d bytes), want %v", got, total, tc.want)
			}
		})
	}
	for _, bad := range []struct {
		chip string
		size int
	}{{"BK7231Q", 2 << 20}, {"", 2 << 20}, {"BK7231N", 0}} {
		if _, err := FlashLayout(bad.chip, bad.size); err == nil {
			t.Errorf("FlashLayout(%q, %d): no error", bad.chip, bad.size)
		}
	}
}

// TestREADMEWiringIsTheModuleTable: README's Wiring section and the page
// draw the same data.
func TestREADMEWiringIsTheModuleTable(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Skip("README.md not found next to the package")
	}
	readme := string(b)
	var want []string
	for _, m := range Modules {
		if !strings.HasPrefix(m.Chip, "BK") {
			continue
		}
		cells := []string{m.Name, m.Chip}
		for _, sig := range bekenSignals {
			cell := "–"
			for _, w := range m.Wires {
				if w.Signal == sig.Signal {
					cell = w.Where()
				}
			}
			cells = append(cells, cell)
		}
		want = append(want, "| "+strings.Join(cells, " | ")+" |")
	}
	head := "| Module | Chip |"
	for _, w := range bekenSignals {
		head += " " + w.Signal + " |"
	}
	i := strings.Index(readme, head)
	if i < 0 {
		t.Fatalf("README's wiring table head is not %q", head)
	}
	var got []string
	for _, line := range strings.Split(readme[i:], "\n")[2:] {
		if !strings.HasPrefix(line, "|") {
			break
		}
		got = append(got, line)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("README's wiring table:\n%s\nthe module table (serve/modules.go):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The ESP8266 module is described in words.
	i = strings.Index(readme, "ESP8266 modules (TYWE3S")
	if i < 0 {
		t.Fatal("README has no ESP8266 wiring paragraph")
	}
	para := readme[i : i+strings.Index(readme[i:], "\n\n")]
	for _, m := range Modules {
		if m.Chip != "ESP8266" {
			continue
		}
		for _, w := range m.Wires {
			if !strings.Contains(para, w.Signal) || !strings.Contains(para, w.Where()) {
				t.Errorf("README's ESP8266 paragraph lacks %s on %s", w.Signal, w.Where())
			}
		}
	}
}

func TestWireWhere(t *testing.T) {
	for pads, want := range map[string]string{"5": "pin 5", "5|14|15|18": "pin 5 or 14 or 15 or 18", "1|TVCC": "pin 1 or pad TVCC", "TRX1": "pad TRX1"} {
		if got := (Wire{Pads: strings.Split(pads, "|")}).Where(); got != want {
			t.Errorf("%s: %q, want %q", pads, got, want)
		}
	}
	for _, m := range Modules {
		if m.Footprint == "" {
			continue
		}
		for _, w := range m.Wires {
			for _, p := range w.Pads {
				if n, err := strconv.Atoi(p); err == nil && (n < 1 || n > m.Pads) {
					t.Errorf("%s: %s on pin %d of %d", m.Name, w.Signal, n, m.Pads)
				}
			}
		}
	}
}
