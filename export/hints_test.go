package export

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/inventory"
	"github.com/tuyaflash/tuyaflash/tuyaconfig"
)

// the pin map of a BL0937 plug on a CB2S (as stored in user_param_key).
const plugPinMap = "{rl1_pin:26,rl1_lv:1,bt1_pin:10,bt1_lv:0,led1_pin:8,led1_lv:0,netled1_pin:6,netled1_lv:0,netled_reuse:0,chip_type:0,ele_pin:7,vi_pin:24,sel_pin_pin:11,sel_pin_lv:1,resistor:1,reset_t:5,ch_dpid1:1,module:CB2S,jv:1.0.0,crc:17,}"

var t0 = time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)

func device(fw string, mod func(*inventory.Device)) inventory.Device {
	d := inventory.Device{Key: "d81f12aabbcc/eb6015", MAC: "D8:1F:12:AA:BB:CC", Family: "BK7231N", FlashID: "EB6015",
		Tuya: &inventory.Tuya{DeviceID: "bf7e3a2c1d0f9e8a7bxq1z", LocalKey: "a1b2c3d4e5f6a7b8", Module: "CB2S", PinMap: plugPinMap},
		IP:   "192.168.1.41"}
	if fw != "" {
		d.Firmware = fw
		d.Writes = []inventory.Write{{Date: t0, Firmware: fw}}
	}
	if mod != nil {
		mod(&d)
	}
	return d
}

func TestHomeAssistantHints(t *testing.T) {
	cases := []struct {
		name        string
		dev         inventory.Device
		integration string
		want        []string // fragments of the text the user reads
		cleanup     bool
	}{
		{"tasmota", device("tasmota", func(d *inventory.Device) { d.Family = "ESP8266" }), "tasmota",
			[]string{"Tasmota integration", "http://192.168.1.41/cs", "tasmota/discovery/D81F12AABBCC/config", "Backlog MqttHost broker.lan; MqttUser ha; MqttPassword <mqtt-password>; Topic tuya-aabbcc; DeviceName tuya-aabbcc", "topic write tasmota/discovery/#"}, true},
		{"openbeken", device("openbeken", nil), "mqtt",
			[]string{"Configure MQTT", "http://192.168.1.41/ha_discovery?prefix=homeassistant", "scheduleHADiscovery 5", "backlog MqttHost broker.lan; MqttUser ha", "qqqqqqqqqq"}, true},
		{"esphome encrypted", device("esphome", func(d *inventory.Device) {
			d.Hostname = "kitchen-plug"
			d.LastVerify = &inventory.Verification{Date: t0.Add(time.Hour), Firmware: "esphome", Version: "2024.10.2", OK: true, Encrypted: true}
		}), "esphome", []string{"zeroconf", "kitchen-plug.local", "port 6053", "encryption: key", "esphome 2024.10.2"}, true},
		{"verified firmware wins over the written name", device("OpenBK7231N_QIO.bin", func(d *inventory.Device) {
			d.LastVerify = &inventory.Verification{Date: t0.Add(time.Minute), Firmware: "openbeken", Version: "1.17.670", OK: true}
		}), "mqtt", []string{"openbeken 1.17.670", "scheduleHADiscovery"}, true},
		{"not flashed", device("", nil), "", []string{"Not flashed yet"}, false},
		{"restored to stock", device(inventory.FirmwareStock, nil), "", []string{"stock Tuya firmware again"}, false},
		{"no address", device("openbeken", func(d *inventory.Device) { d.IP = "" }), "mqtt", []string{"address is not known", "http://<device-ip>/"}, true},
		{"placeholder MAC", device("tasmota", func(d *inventory.Device) { d.MAC, d.MACPlaceholder = "C8:47:8C:00:00:00", "Beken default" }), "tasmota",
			[]string{"tasmota/discovery/<MAC>/config"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hs := HomeAssistant([]inventory.Device{c.dev}, HAOptions{MQTTHost: "broker.lan", MQTTUser: "ha"})
			if len(hs) != 1 {
				t.Fatalf("%d hints", len(hs))
			}
			h := hs[0]
			text := h.Text()
			if h.Integration != c.integration {
				t.Errorf("integration %q, want %q", h.Integration, c.integration)
			}
			for _, w := range c.want {
				if !strings.Contains(text, w) {
					t.Errorf("missing %q in:\n%s", w, text)
				}
			}
			if got := len(h.Cleanup) > 0; got != c.cleanup {
				t.Errorf("cleanup %v, want %v", h.Cleanup, c.cleanup)
			}
			if c.cleanup && c.dev.Tuya != nil && !strings.Contains(text, "local_bf7e3a2c1d0f9e8a7bxq1z") {
				t.Errorf("no localtuya clean-up step:\n%s", text)
			}
			if strings.Contains(text, "a1b2c3d4e5f6a7b8") {
				t.Error("the local key appears in the hint")
			}
		})
	}
}

func TestTemplates(t *testing.T) {
	beken := device("openbeken", nil)
	ts, err := Templates(beken, nil)
	if err != nil {
		t.Fatal(err)
	}
	var kinds, files []string
	for _, tp := range ts {
		kinds = append(kinds, tp.Kind)
		files = append(files, tp.FileName)
	}
	if !slices.Equal(kinds, []string{KindOBK, KindOBKJSON, KindESPHome}) || files[2] != "tuya-aabbcc.esphome.yaml" {
		t.Fatalf("kinds %v files %v", kinds, files)
	}
	// What a user checks: the relay, button and power-meter pins.
	for _, want := range []string{"SetPinRole 26 Rel", "SetPinRole 10 Btn", "SetPinRole 7 BL0937CF"} {
		if !strings.Contains(ts[0].Content, want) {
			t.Errorf("OpenBeken commands lack %q:\n%s", want, ts[0].Content)
		}
	}
	if !strings.Contains(ts[1].Content, `"26"`) || !strings.Contains(ts[2].Content, "name: tuya-aabbcc") || !strings.Contains(ts[2].Content, "board: cb2s") {
		t.Errorf("templates:\n%s\n%s", ts[1].Content, ts[2].Content)
	}
	if len(ts[2].Warnings) == 0 {
		t.Error("ESPHome warnings (reset_t, ch_dpid1 not carried) were dropped")
	}

	if _, err := Templates(beken, []string{KindTasmota}); !errors.Is(err, flasher.ErrUnsupported) {
		t.Errorf("Tasmota template for a Beken pin map: %v", err)
	}
	if _, err := Templates(beken, []string{"yaml"}); err == nil {
		t.Error("unknown kind accepted")
	}
	noMap := device("openbeken", func(d *inventory.Device) { d.Tuya.PinMap = "" })
	if _, err := Templates(noMap, nil); !errors.Is(err, ErrNoPinMap) || flasher.Hint(err) == "" {
		t.Errorf("no pin map: %v", err)
	}
	esp := device("tasmota", func(d *inventory.Device) {
		d.Family = "ESP8266"
		d.Tuya.PinMap = "{rl1_pin:12,rl1_lv:1,bt1_pin:0,bt1_lv:0,led1_pin:13,led1_lv:0,module:TYWE2S}"
	})
	ts, err = Templates(esp, nil)
	if err != nil || len(ts) != 1 || ts[0].Kind != KindTasmota || !strings.Contains(ts[0].Content, `"GPIO"`) {
		t.Fatalf("ESP8266: %v %+v", err, ts)
	}
}

// TestTemplatesFromRealStorage runs the inventory path on the real storage
// extract: config read from the dump, recorded, rendered.
func TestTemplatesFromRealStorage(t *testing.T) {
	dir := sharedDir(t)
	data, err := os.ReadFile(filepath.Join(dir, "BK7231T_TuyaConfig_PC44HA.bin"))
	if err != nil {
		t.Skipf("real storage extract missing: %v", err)
	}
	cfg, err := tuyaconfig.Parse(data)
	if cfg == nil {
		t.Fatal(err)
	}
	inv, err := inventory.Open(filepath.Join(t.TempDir(), "inventory.json"))
	if err != nil {
		t.Fatal(err)
	}
	info := flasher.Info{Family: flasher.BK7231T, FlashID: [3]byte{0xEB, 0x60, 0x15}, MAC: flasher.MAC{0xD8, 0x1F, 0x12, 1, 2, 3}, MACFrom: "test"}
	sc := inventoryTestSidecar(data)
	d, err := inv.RecordBackup(info, "/b/pc44ha.bin", sc)
	if err != nil {
		t.Fatal(err)
	}
	if d, err = inv.RecordTuyaConfig(d.Key, cfg); err != nil {
		t.Fatal(err)
	}
	ts, err := Templates(d, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range ts {
		if tp.Content == "" {
			t.Errorf("%s: empty", tp.Kind)
		}
		if cfg.LocalKey != "" && strings.Contains(tp.Content, cfg.LocalKey) {
			t.Errorf("%s template holds the local key", tp.Kind)
		}
	}
	if red := d.Redacted(); cfg.LocalKey != "" && red.Tuya.LocalKey != inventory.Hidden {
		t.Error("local key not hidden by Redacted")
	}
}
