package serve

import (
	"fmt"
	"os"
	"regexp"
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
	row := regexp.MustCompile(`(?m)^\| (\w+) \| (BK\w+) \| (.*) \|$`)
	rows := row.FindAllStringSubmatch(readme, -1)
	seen := map[string]bool{}
	pins := func(w Wire) string {
		s := make([]string, len(w.Pads))
		for i, p := range w.Pads {
			s[i] = fmt.Sprint(p)
		}
		return "pin " + strings.Join(s, " or ")
	}
	for _, m := range Modules {
		if !strings.HasPrefix(m.Chip, "BK") {
			continue
		}
		var cells []string
		for _, w := range m.Wires {
			cells = append(cells, pins(w))
		}
		want := strings.Join(cells, " | ")
		found := false
		for _, r := range rows {
			if r[1] == m.Name {
				found = true
				if r[2] != m.Chip || r[3] != want {
					t.Errorf("README's %s row: %s | %s, the table: %s | %s", m.Name, r[2], r[3], m.Chip, want)
				}
			}
		}
		if !found {
			t.Errorf("README's wiring table has no row for %s", m.Name)
		}
		seen[m.Name] = true
	}
	for _, r := range rows {
		if !seen[r[1]] {
			t.Errorf("README lists %s, the module table does not", r[1])
		}
	}
	head := "| Module | Chip | "
	for _, w := range beken2 {
		head += w.Signal + " | "
	}
	if !strings.Contains(readme, strings.TrimSpace(head)) {
		t.Errorf("README's wiring table head is not %q", head)
	}
	// The ESP8266 module is described in words.
	i := strings.Index(readme, "ESP8266 modules (TYWE3S")
	if i < 0 {
		t.Fatal("README has no ESP8266 wiring paragraph")
	}
	para := readme[i : i+strings.Index(readme[i:], "\n\n")]
	for _, m := range Modules {
		if m.Chip != "ESP8266" {
			continue
		}
		for _, w := range m.Wires {
			if !strings.Contains(para, w.Signal) || !strings.Contains(para, pins(w)) {
				t.Errorf("README's ESP8266 paragraph lacks %s on %s", w.Signal, pins(w))
			}
		}
	}
}
