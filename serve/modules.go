package serve

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/tuyaflash/tuyaflash/flasher"
)

// Module is a Tuya module and how it is wired to a USB-serial adapter for
// flashing. README's Wiring section shows the same data (a test keeps
// them in step); the page draws it.
type Module struct {
	Name string `json:"name"`
	Chip string `json:"chip"`
	// Footprint is how the pads sit, for the drawing: "row" — pads
	// 1…Pads in one row along the module's bottom edge (LibreTiny's
	// tuya2 template); "esp12" — pads 1–8 down the left edge, 9–16 up
	// the right edge and any further pads along the bottom edge (its
	// esp12e and esp12s templates); "" — no drawing, the table only.
	Footprint string   `json:"footprint,omitempty"`
	Pads      int      `json:"pads,omitempty"`
	Wires     []Wire   `json:"wires"`
	Notes     []string `json:"notes,omitempty"`
}

// Wire is one connection for flashing.
type Wire struct {
	// Signal is the pad's name as README's table heads its column.
	Signal string `json:"signal"`
	// Pads are where it can be connected (any one of them): pin numbers
	// as printed on the module's edge ("5"), or the names of test pads on
	// its back ("TRX1").
	Pads []string `json:"pads"`
	// To is what the pad connects to.
	To string `json:"to"`
	// Role is power, ground, rx (the module receives: adapter TX), tx
	// (the module sends: adapter RX), reset or boot.
	Role string `json:"role"`
}

// Where is the wire's pads as README's table writes them: "pin 1 or 4",
// "pin 6 or pad TGND", "pad TRX1".
func (w Wire) Where() string {
	var pins, pads []string
	for _, p := range w.Pads {
		if _, err := strconv.Atoi(p); err == nil {
			pins = append(pins, p)
		} else {
			pads = append(pads, "pad "+p)
		}
	}
	var out []string
	if len(pins) > 0 {
		out = append(out, "pin "+strings.Join(pins, " or "))
	}
	return strings.Join(append(out, pads...), " or ")
}

// MarshalJSON adds "where": the pads as README writes them.
func (w Wire) MarshalJSON() ([]byte, error) {
	type plain Wire
	return json.Marshal(struct {
		plain
		Where string `json:"where"`
	}{plain(w), w.Where()})
}

// bekenSignals are the Beken wires, in README's column order.
var bekenSignals = []Wire{
	{Signal: "3.3 V", To: "3.3 V supply (300 mA or more)", Role: "power"},
	{Signal: "GND", To: "GND of the supply and the adapter", Role: "ground"},
	{Signal: "RX1 (P10)", To: "adapter TX", Role: "rx"},
	{Signal: "TX1 (P11)", To: "adapter RX", Role: "tx"},
	{Signal: "CEN", To: "GND for a moment to reset, when asked", Role: "reset"},
}

var bekenNotes = []string{
	"Use 3.3 V logic, never 5 V; the adapter's own 3.3 V pin is often too weak (most failed flashes are brown-outs).",
	"TX2/RX2 are a log port only. Boards that use RX1/TX1 themselves (TuyaMCU) need the MCU isolated.",
}

// beken makes a Beken module's row: where each of bekenSignals goes, as
// "1|4" (pin 1 or 4), "6|TGND" (pin 6 or the test pad TGND), "" (no pad
// for it in the board definition).
func beken(name, chip, footprint string, pads int, where ...string) Module {
	m := Module{Name: name, Chip: chip, Footprint: footprint, Pads: pads, Notes: bekenNotes}
	for i, w := range bekenSignals {
		if where[i] != "" {
			w.Pads = strings.Split(where[i], "|")
			m.Wires = append(m.Wires, w)
		}
	}
	return m
}

// Modules is the wiring table: the Beken modules from LibreTiny's board
// definitions (v1.13.0: boards/*.json with boards/_base/pcb/*.json and
// ic/bk7231-qfn32.json or ic/bk7238-qfn32.json), the TYWE3S from the
// ESP-12 footprint's numbering.
var Modules = []Module{
	beken("CB1S", "BK7231N", "", 0, "1|4", "5|14|15|18", "3", "2", "16"),
	beken("CB2L", "BK7231N", "", 0, "7", "6|TGND", "TRX1", "TTX1", ""),
	beken("CB2S", "BK7231N", "row", 11, "1", "3", "5", "7", "10"),
	beken("CB3L", "BK7231N", "esp12", 16, "8", "9", "15", "16", "1|3"),
	beken("CB3S", "BK7231N", "esp12", 22, "8", "9", "15", "16", "1|3"),
	beken("CB3SE", "BK7231N", "esp12", 22, "8", "9|19", "15", "16", "1|3"),
	beken("CBLC5", "BK7231N", "", 0, "6", "2", "TRX1", "TTX1", "TRST"),
	beken("CBU", "BK7231N", "", 0, "14", "13", "16", "15", "18"),
	beken("WB1S", "BK7231T", "", 0, "1|4", "5|14|15|18", "3", "2", "16"),
	beken("WB2L", "BK7231T", "", 0, "7", "6|TGND", "TRX1", "TTX1", "TRST"),
	beken("WB2S", "BK7231T", "row", 11, "1|TVCC", "3|TGND", "5", "7", "10"),
	beken("WB3L", "BK7231T", "esp12", 21, "8", "9", "15", "16", "3"),
	beken("WB3S", "BK7231T", "esp12", 22, "8", "9", "15", "16", "1|3"),
	beken("WBLC5", "BK7231T", "", 0, "6", "2", "TRX1", "TTX1", "TRST"),
	beken("T1-2S", "BK7238", "row", 11, "1", "3", "5", "7", "10"),
	beken("T1-3S", "BK7238", "esp12", 22, "8", "9", "15", "16", "1|3"),
	beken("T1-M", "BK7238", "", 0, "1", "3", "5", "7", "10"),
	beken("T1-U", "BK7238", "", 0, "14", "13", "16", "15", "18"),
	beken("NiceMCU XH-WB3S", "BK7238", "esp12", 22, "8", "9", "15", "16", "1"),
	{Name: "TYWE3S", Chip: "ESP8266", Footprint: "esp12", Pads: 16, Wires: []Wire{
		{Signal: "VCC", Pads: []string{"8"}, To: "3.3 V supply (300 mA or more)", Role: "power"},
		{Signal: "GND", Pads: []string{"9"}, To: "GND of the supply and the adapter", Role: "ground"},
		{Signal: "RXD", Pads: []string{"15"}, To: "adapter TX", Role: "rx"},
		{Signal: "TXD", Pads: []string{"16"}, To: "adapter RX", Role: "tx"},
		{Signal: "GPIO0", Pads: []string{"12"}, To: "GND while the module is powered up (may stay for the whole transfer)", Role: "boot"},
		{Signal: "EN", Pads: []string{"3"}, To: "high (the module's own resistor keeps it)", Role: "reset"},
		{Signal: "GPIO15", Pads: []string{"10"}, To: "low (the module's own resistor keeps it)", Role: "boot"},
	}, Notes: []string{
		"After writing, release GPIO0 and power-cycle: the first software reset after a serial download lands in download mode again.",
		"TuyaMCU boards: hold the MCU's reset pin low while flashing.",
	}},
}

// ModulesFor returns the modules with chip family fam ("" = all): a
// BK7231M gets the BK7231N's (it sits on the same boards), an ESP8285 the
// ESP8266's; a chip with no module in the table gets none.
func ModulesFor(fam string) []Module {
	if fam == "" {
		return Modules
	}
	f := flasher.Family(strings.ToUpper(fam))
	if f == flasher.ESP8285 {
		f = flasher.ESP8266
	}
	if f == flasher.BK7231M {
		f = flasher.BK7231N
	}
	var out []Module
	for _, m := range Modules {
		if strings.EqualFold(m.Chip, string(f)) {
			out = append(out, m)
		}
	}
	return out
}

// handleModules is GET /api/modules[?chip=…].
func (s *Server) handleModules(w http.ResponseWriter, r *http.Request) {
	ms := ModulesFor(r.URL.Query().Get("chip"))
	if ms == nil {
		ms = []Module{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"modules": ms})
}
