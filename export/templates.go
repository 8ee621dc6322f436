package export

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/inventory"
	"github.com/tuyaflash/tuyaflash/pintemplate"
	"github.com/tuyaflash/tuyaflash/tuyaconfig"
)

// Template kinds.
const (
	KindOBK     = "obk"      // OpenBeken console commands (autoexec.bat)
	KindOBKJSON = "obk-json" // OpenBeken device template JSON
	KindESPHome = "esphome"  // ESPHome YAML for LibreTiny bk72xx
	KindTasmota = "tasmota"  // Tasmota template (ESP8266)
)

// ErrNoPinMap: the inventory has no Tuya pin map for the device.
var ErrNoPinMap = errors.New("no Tuya pin map for this device")

// Template is one rendered pin configuration.
type Template struct {
	Key  string `json:"key"`
	Kind string `json:"kind"`
	// FileName is a suggested name, e.g. "tuya-1a2b3c.esphome.yaml".
	FileName string                `json:"file"`
	Content  string                `json:"content"`
	Warnings []pintemplate.Warning `json:"warnings,omitempty"`
}

// KindsFor are the template kinds that fit a chip family: OpenBeken and
// ESPHome (LibreTiny) for Beken chips, Tasmota for ESP8266/ESP8285.
func KindsFor(family string) []string {
	if flasher.Family(family).Espressif() {
		return []string{KindTasmota}
	}
	return []string{KindOBK, KindOBKJSON, KindESPHome}
}

// Templates renders the pin templates of a device from the Tuya pin map
// (user_param_key) the inventory took from its stock backup. kinds nil
// means KindsFor(d.Family). A kind that cannot express this device (a
// Tasmota template for a Beken pin map) is an error wrapping
// flasher.ErrUnsupported.
func Templates(d inventory.Device, kinds []string) ([]Template, error) {
	if d.Tuya == nil || d.Tuya.PinMap == "" {
		return nil, &flasher.HintError{
			Err:  fmt.Errorf("%s: %w", d.Key, ErrNoPinMap),
			Hint: "the inventory takes it from the stock backup's Tuya config; unpaired devices sometimes lack it: 'tuyaflash tuya-config BACKUP' shows what the backup holds",
		}
	}
	u, err := tuyaconfig.ParseUserParamKey(d.Tuya.PinMap)
	if err != nil && (u == nil || len(u.Values) == 0) {
		return nil, fmt.Errorf("%s: pin map: %w", d.Key, err)
	}
	if kinds == nil {
		kinds = KindsFor(d.Family)
	}
	name := d.Name()
	var out []Template
	for _, k := range slices.Compact(slices.Clone(kinds)) {
		t := Template{Key: d.Key, Kind: k}
		switch strings.ToLower(k) {
		case KindOBK, "openbeken":
			c, w := pintemplate.OpenBeken(u)
			t.Kind, t.Content, t.Warnings, t.FileName = KindOBK, c.Text(), w, name+".obk.txt"
		case KindOBKJSON:
			c, w := pintemplate.OpenBeken(u)
			b, err := c.JSON(name)
			if err != nil {
				return nil, err
			}
			t.Content, t.Warnings, t.FileName = string(b)+"\n", w, name+".obk.json"
		case KindESPHome:
			t.Content, t.Warnings = pintemplate.ESPHome(u, name)
			t.FileName = name + ".esphome.yaml"
		case KindTasmota:
			tpl, w := pintemplate.Tasmota(u, name)
			if tpl == "" {
				return nil, fmt.Errorf("%s: no Tasmota template: this pin map is for a %s module, Tasmota runs on ESP8266: %w", d.Key, orPlaceholder(d.Tuya.Module, "Beken"), flasher.ErrUnsupported)
			}
			t.Content, t.Warnings, t.FileName = tpl+"\n", w, name+".tasmota.json"
		default:
			return nil, fmt.Errorf("template kind %q: want %s, %s, %s or %s", k, KindOBK, KindOBKJSON, KindESPHome, KindTasmota)
		}
		out = append(out, t)
	}
	return out, nil
}
