package tuyaconfig

import (
	"strings"
	"testing"

	bksim "github.com/tuyaflash/tuyaflash/devicesim/bk7231"
)

// TestParseEveryBekenProfile reads the Tuya storage out of the stock-looking
// image of every simulated Beken chip, whose storage the simulator's own
// encoder puts where its profile says (BK7238: 0x1F5000, Tuya's T1 layout;
// a 4 MiB BK7252: 0x397000): the parser finds it wherever it sits, and
// names the chip where the platform, the module or an offset only one chip
// uses tells it.
func TestParseEveryBekenProfile(t *testing.T) {
	wantChip := map[bksim.Chip]string{
		bksim.BK7231N: "BK7231N", bksim.BK7231T: "BK7231T", bksim.BK7231M: "BK7231N",
		bksim.BK7238: "BK7238", bksim.BK7252: "BK7252",
	}
	for _, chip := range bksim.Chips() {
		t.Run(chip.String(), func(t *testing.T) {
			dump := bksim.DefaultFlash(chip, bksim.DefaultMAC)
			cfg, err := Parse(dump)
			if err != nil {
				t.Fatal(err)
			}
			want := bksim.TuyaStorageOffset(chip, len(dump))
			if cfg.KeyBlockOffset != want {
				t.Errorf("key block at 0x%06X, the simulator put it at 0x%06X", cfg.KeyBlockOffset, want)
			}
			if !cfg.Activated || cfg.DeviceID == "" || cfg.LocalKey == "" {
				t.Errorf("device id %q local key set %v activated %v", cfg.DeviceID, cfg.LocalKey != "", cfg.Activated)
			}
			if cfg.Chip != wantChip[chip] {
				t.Errorf("chip %q (from %s), want %q", cfg.Chip, cfg.ChipSource, wantChip[chip])
			}
			notes := strings.Join(cfg.Notes, "\n")
			if unique := chip == bksim.BK7238 || chip == bksim.BK7252; unique != strings.Contains(notes, "single source") {
				t.Errorf("notes %q", notes)
			}
		})
	}
}
