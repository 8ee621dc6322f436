package serve

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/tuyaflash/tuyaflash/backup"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/flasher/bk7231"
)

// Region is one part of a flash layout.
type Region struct {
	// Name is bootloader, app, rf, config, tuya (Beken) or sdk (the
	// ESP8266 SDK's init data and system parameters).
	Name  string `json:"name"`
	Label string `json:"label"`
	Start string `json:"start"`
	// End is exclusive.
	End  string `json:"end"`
	Size int    `json:"size"`
}

// Layout is what a chip keeps where in its flash.
type Layout struct {
	Chip      string   `json:"chip"`
	FlashSize int      `json:"flash_size"`
	Regions   []Region `json:"regions"`
	// Source says where the offsets come from.
	Source string `json:"source"`
}

// espSDKTail is the ESP8266 SDK's use of the last 20 KiB of the flash:
// RF calibration (size-0x5000), esp_init_data (size-0x4000) and the
// system parameters (the last three sectors), from Espressif's
// ESP8266 Non-OS SDK flash map (as devicesim/esp8266 documents it).
const espSDKTail = 0x5000

// FlashLayout returns the layout of chip's flash of flashSize bytes: for a
// Beken chip from the client's chip table (bootloader up to 0x11000, the
// application, the RF calibration sector, the config area and the Tuya
// key-value storage), for an ESP8266 the SDK's sectors at the end.
func FlashLayout(chip string, flashSize int) (*Layout, error) {
	if flashSize <= 0 {
		return nil, fmt.Errorf("flash size %d: want a size in bytes", flashSize)
	}
	fam := flasher.Family(strings.ToUpper(chip))
	type mark struct {
		at          int
		name, label string
	}
	var marks []mark
	l := &Layout{Chip: string(fam), FlashSize: flashSize}
	switch {
	case fam.Espressif():
		l.Source = "ESP8266 Non-OS SDK flash map; what the stock firmware keeps between the app and the SDK's sectors is not public"
		marks = []mark{{0, "bootloader", "bootloader"}, {0x1000, "app", "app and data"}}
		if flashSize > espSDKTail+0x1000 {
			marks = append(marks, mark{flashSize - espSDKTail, "rf", "RF calibration"},
				mark{flashSize - 0x4000, "sdk", "init data"}, mark{flashSize - 0x3000, "sdk", "system parameters"})
		}
	default:
		c, ok := bk7231.LookupChip(string(fam))
		if !ok || len(c.RFOffsets) == 0 {
			return nil, fmt.Errorf("chip %q: no flash layout known (BK7231N, BK7231T, BK7238, BK7231U, BK7252, BK7252N, ESP8266)", chip)
		}
		l.Chip = c.Model
		l.Source = "tuyaflash's Beken chip table (flasher/bk7231)"
		marks = []mark{{0, "bootloader", "bootloader"}, {0x11000, "app", "app"},
			{int(c.RFOffsets[0]), "rf", "RF calibration"}, {int(c.RFOffsets[0]) + 0x1000, "config", "config"},
			{int(c.TuyaKV), "tuya", "Tuya storage"}}
	}
	// Marks beyond the flash (a layout of a larger part) or out of
	// order are dropped: the bar shows what the offsets allow.
	marks = slices.DeleteFunc(marks, func(m mark) bool { return m.at >= flashSize })
	for i := 0; i < len(marks); i++ {
		if i > 0 && marks[i].at <= marks[i-1].at {
			marks = slices.Delete(marks, i, i+1)
			i--
		}
	}
	for i, m := range marks {
		end := flashSize
		if i+1 < len(marks) {
			end = marks[i+1].at
		}
		l.Regions = append(l.Regions, Region{Name: m.name, Label: m.label, Start: backup.HexAddr(uint32(m.at)), End: backup.HexAddr(uint32(end)), Size: end - m.at})
	}
	return l, nil
}

// handleLayout is GET /api/layout?chip=…&flash_size=….
func (s *Server) handleLayout(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	size, err := strconv.ParseInt(q.Get("flash_size"), 0, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, codeUsage, "flash_size: want the flash size in bytes", "")
		return
	}
	l, err := FlashLayout(q.Get("chip"), int(size))
	if err != nil {
		writeError(w, http.StatusBadRequest, codeUsage, err.Error(), "")
		return
	}
	writeJSON(w, http.StatusOK, l)
}
