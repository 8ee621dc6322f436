package serve

import (
	"net/http"
	"strings"

	"github.com/tuyaflash/tuyaflash/flasher"
)

// Module is a Tuya module and how it is wired to a USB-serial adapter for
// flashing. README's Wiring section shows the same data (a test keeps
// them in step); the page draws it.
type Module struct {
	Name string `json:"name"`
	Chip string `json:"chip"`
	// Footprint is how the pads sit: "row" — pads 1…Pads in one row
	// along the module's bottom edge; "esp12" — pads 1–8 down the left
	// edge, 9–16 up the right edge (the ESP-12 footprint) and any
	// further pads along the bottom edge.
	Footprint string   `json:"footprint"`
	Pads      int      `json:"pads"`
	Wires     []Wire   `json:"wires"`
	Notes     []string `json:"notes,omitempty"`
}

// Wire is one connection for flashing.
type Wire struct {
	// Signal is the pad's name as README's table heads its column.
	Signal string `json:"signal"`
	// Pads are the pad numbers as printed on the module (any one of
	// them).
	Pads []int `json:"pads"`
	// To is what the pad connects to.
	To string `json:"to"`
	// Role is power, ground, rx (the module receives: adapter TX), tx
	// (the module sends: adapter RX), reset or boot.
	Role string `json:"role"`
}

// Module pads from LibreTiny's board definitions (boards/_base/pcb/*.json
// with ic/bk7231-qfn32.json) for the Beken modules; the ESP-12 footprint's
// numbering for the TYWE3S.
var beken2 = []Wire{
	{Signal: "3.3 V", Pads: []int{1}, To: "3.3 V supply (300 mA or more)", Role: "power"},
	{Signal: "GND", Pads: []int{3}, To: "GND of the supply and the adapter", Role: "ground"},
	{Signal: "RX1 (P10)", Pads: []int{5}, To: "adapter TX", Role: "rx"},
	{Signal: "TX1 (P11)", Pads: []int{7}, To: "adapter RX", Role: "tx"},
	{Signal: "CEN", Pads: []int{10}, To: "GND for a moment to reset, when asked", Role: "reset"},
}

var beken3 = []Wire{
	{Signal: "3.3 V", Pads: []int{8}, To: "3.3 V supply (300 mA or more)", Role: "power"},
	{Signal: "GND", Pads: []int{9}, To: "GND of the supply and the adapter", Role: "ground"},
	{Signal: "RX1 (P10)", Pads: []int{15}, To: "adapter TX", Role: "rx"},
	{Signal: "TX1 (P11)", Pads: []int{16}, To: "adapter RX", Role: "tx"},
	{Signal: "CEN", Pads: []int{1, 3}, To: "GND for a moment to reset, when asked", Role: "reset"},
}

var bekenNotes = []string{
	"Use 3.3 V logic, never 5 V; the adapter's own 3.3 V pin is often too weak (most failed flashes are brown-outs).",
	"TX2/RX2 are a log port only. Boards that use RX1/TX1 themselves (TuyaMCU) need the MCU isolated.",
}

// Modules is the wiring table.
var Modules = []Module{
	{Name: "CB2S", Chip: "BK7231N", Footprint: "row", Pads: 11, Wires: beken2, Notes: bekenNotes},
	{Name: "WB2S", Chip: "BK7231T", Footprint: "row", Pads: 11, Wires: beken2, Notes: bekenNotes},
	{Name: "CB3S", Chip: "BK7231N", Footprint: "esp12", Pads: 22, Wires: beken3, Notes: bekenNotes},
	{Name: "WB3S", Chip: "BK7231T", Footprint: "esp12", Pads: 22, Wires: beken3, Notes: bekenNotes},
	{Name: "TYWE3S", Chip: "ESP8266", Footprint: "esp12", Pads: 16, Wires: []Wire{
		{Signal: "VCC", Pads: []int{8}, To: "3.3 V supply (300 mA or more)", Role: "power"},
		{Signal: "GND", Pads: []int{9}, To: "GND of the supply and the adapter", Role: "ground"},
		{Signal: "RXD", Pads: []int{15}, To: "adapter TX", Role: "rx"},
		{Signal: "TXD", Pads: []int{16}, To: "adapter RX", Role: "tx"},
		{Signal: "GPIO0", Pads: []int{12}, To: "GND while the module is powered up (may stay for the whole transfer)", Role: "boot"},
		{Signal: "EN", Pads: []int{3}, To: "high (the module's own resistor keeps it)", Role: "reset"},
		{Signal: "GPIO15", Pads: []int{10}, To: "low (the module's own resistor keeps it)", Role: "boot"},
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
