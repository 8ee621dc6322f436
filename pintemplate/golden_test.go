package pintemplate

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tuyaflash/tuyaflash/tuyaconfig"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ (review every line before committing)")

// render produces every output for one pin map, as written to the golden
// files.
func render(t *testing.T, u *tuyaconfig.UserParamKey, name string) map[string]string {
	t.Helper()
	obk, wObk := OpenBeken(u)
	js, err := obk.JSON(name)
	if err != nil {
		t.Fatal(err)
	}
	yml, wYml := ESPHome(u, name)
	tas, wTas := Tasmota(u, name)
	warn := func(ws []Warning) string {
		var b strings.Builder
		for _, w := range ws {
			b.WriteString(w.String() + "\n")
		}
		return b.String()
	}
	return map[string]string{
		".obk.txt":          obk.Text() + "\n" + obk.Backlog() + "\n",
		".obk.json":         string(js),
		".obk.warnings":     warn(wObk),
		".esphome.yaml":     yml,
		".esphome.warnings": warn(wYml),
		".tasmota.json":     tas + "\n", // empty for Beken modules
		".tasmota.warnings": warn(wTas),
	}
}

// TestGolden compares the outputs for the hand-written pin maps in
// testdata/*.upk with the golden files next to them. The golden files
// were generated with -update and then read line by line against the pin
// map and the mapping tables before being committed.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.upk")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, in := range inputs {
		base := strings.TrimSuffix(in, ".upk")
		t.Run(filepath.Base(base), func(t *testing.T) {
			raw, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			u, err := tuyaconfig.ParseUserParamKey(string(raw))
			if err != nil {
				t.Fatal(err)
			}
			for ext, got := range render(t, u, filepath.Base(base)) {
				path := base + ext
				if *update {
					if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test -update, then review the file)", err)
				}
				if got != string(want) {
					t.Errorf("%s differs from the golden file:\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
				}
			}
		})
	}
}
