package migrate

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/internal/testshared"
	"github.com/tuyaflash/tuyaflash/pintemplate"
	"github.com/tuyaflash/tuyaflash/tuyaconfig"
)

// TestRealStockDumps migrates modules whose flash is a real stock dump:
// the Tuya config is read by tuyaconfig from the backup, and the pins of
// its pin map end up on the device. (The dumps hold real secrets: nothing
// of their content is printed.)
func TestRealStockDumps(t *testing.T) {
	dir := testshared.Dir(t, "testdata", "bk7231")
	for _, tc := range []struct {
		file string
		fam  flasher.Family
	}{
		{"Mirabella_Genio_I003632_Plug.bin", flasher.BK7231N},
		{"Tuya_Generic_DS-101JL_4_Gang_Smart_Switch.bin", flasher.BK7231T},
	} {
		t.Run(tc.file, func(t *testing.T) {
			dump, err := os.ReadFile(filepath.Join(dir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			cfg, _ := tuyaconfig.Parse(dump)
			want, _ := pintemplate.OpenBeken(cfg.UserParams)
			synctest.Test(t, func(t *testing.T) {
				s := newSetup(t)
				s.o.ReadConfig = nil // tuyaconfig.Parse
				s.ownPins = true
				c := newChip(t, tc.fam, "D8:1F:12:00:00:01", 1)
				c.flash = bytes.Clone(dump)
				s.bench.add("p1", c)
				p := s.run("p1").Ports[0]
				checkMigrated(t, s, "p1", c, dump, p)
				if st := p.Step(StepConfig); st.Status != StatusDone || len(p.Templates) != 3 {
					t.Errorf("config step %s, %d templates", st.Status, len(p.Templates))
				}
				if st := p.Step(StepPins); st.Status != StatusDone {
					t.Errorf("pins step %s", st.Status)
				}
				for _, pin := range want.Pins {
					if got := c.pins[pin.Pin]; got != [2]int{pin.RoleIndex, pin.Channel} {
						t.Errorf("P%d: role %d channel %d on the device, want %s;%d", pin.Pin, got[0], got[1], pin.Role, pin.Channel)
					}
				}
			})
		})
	}
}
