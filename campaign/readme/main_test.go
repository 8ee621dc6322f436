package main

import (
	"github.com/tuyaflash/tuyaflash/internal/mdblock"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeFigure: the result file becomes README's block between the
// markers, the rest of the file untouched, and a second run changes
// nothing.
func TestReadmeFigure(t *testing.T) {
	in := `campaign: 12 runs, 5 failed, 1 violations, wall 1m2s; faults (runs/failed): drop 3/1, corrupt 0/0, dup 0/0, rx-drop 0/0, rx-corrupt 0/0, rx-dup 0/0, delay 0/0, max-baud 0/0, disconnect 2/2, unplug 0/0, reset 0/0, power-loss 0/0, sigkill 0/0, full-disk 0/0, read-only-dir 0/0; operations: detect 1, backup 2, write 3, restore 4, migrate 2; targets: bk7231t 3, bk7231n 3, esp8266-stub 3, esp8266-rom 3
command: go test ./campaign -run Campaign -campaign.runs 12
machine: 4 runs at a time on a 2-core linux/amd64 machine
skipped read-only-dir: no mount namespace here
violation seed 7: re-run: something — replay: go test ./campaign -run Campaign -campaign.seed 7 -v
`
	r, err := read(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	text := render(r)
	for _, want := range []string{"**12 runs, 1 invariant violations**", "in 5 of them", "| drop | 3 | 1 |", "| disconnect | 2 | 2 |",
		"Operations: detect 1, backup 2, write 3, restore 4, migrate 2.", "Not run here: read-only-dir: no mount namespace here", "- seed 7: re-run: something"} {
		if !strings.Contains(text, want) {
			t.Errorf("figure lacks %q:\n%s", want, text)
		}
	}
	file := filepath.Join(t.TempDir(), "README.md")
	before, after := "# x\n\ntext before\n\n", "\nafter\n"
	if err := os.WriteFile(file, []byte(before+beginMarker+"\nold\n"+endMarker+after), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := mdblock.Replace(file, beginMarker, endMarker, text); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := os.ReadFile(file)
	if want := before + beginMarker + "\n\n" + text + "\n" + endMarker + after; string(got) != want {
		t.Errorf("README after two runs:\n%s\nwant\n%s", got, want)
	}
	if _, err := read(strings.NewReader("nothing here\n")); err == nil {
		t.Error("a file without a summary line was read")
	}
}
