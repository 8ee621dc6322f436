package export

import (
	"fmt"
	"strings"

	"github.com/tuyaflash/tuyaflash/inventory"
)

// HAOptions fill the MQTT commands of the Home Assistant hints; empty
// fields appear as <placeholders> for the user to replace.
type HAOptions struct {
	MQTTHost, MQTTUser, MQTTPassword string
}

// HAHint says how one device gets into Home Assistant with its new
// firmware (postflash-and-ecosystem.md §5.4, from tasmota/docs
// Home-Assistant.md, OpenBeken docs/homeAssistant.md and commands.md,
// esphome-docs components/api.rst).
type HAHint struct {
	Key      string `json:"key"`
	Name     string `json:"name"`
	MAC      string `json:"mac,omitempty"`
	Address  string `json:"address,omitempty"`
	Firmware string `json:"firmware"`
	Version  string `json:"version,omitempty"`
	// Integration is the Home Assistant integration that takes the
	// device: "tasmota" (through MQTT), "mqtt" (OpenBeken's discovery),
	// "esphome", or "" when there is nothing to add yet.
	Integration string `json:"integration"`
	// Steps are what the user does, in order.
	Steps []string `json:"steps"`
	// Commands are lines for the device's console.
	Commands []string `json:"commands,omitempty"`
	// Cleanup are the traces of the stock device to remove elsewhere.
	Cleanup []string `json:"cleanup,omitempty"`
}

func orPlaceholder(v, name string) string {
	if v == "" {
		return "<" + name + ">"
	}
	return v
}

// HomeAssistant builds a hint per device of the inventory; virtual devices
// are left out.
func HomeAssistant(devs []inventory.Device, o HAOptions) []HAHint {
	out := make([]HAHint, 0, len(devs))
	host := orPlaceholder(o.MQTTHost, "mqtt-broker")
	user := orPlaceholder(o.MQTTUser, "mqtt-user")
	pass := orPlaceholder(o.MQTTPassword, "mqtt-password")
	for _, d := range devs {
		if d.Virtual {
			continue
		}
		fw, ver := d.CurrentFirmware()
		h := HAHint{Key: d.Key, Name: d.Name(), Firmware: fw, Version: ver}
		if d.MACPlaceholder == "" {
			h.MAC = d.MAC
		}
		h.Address = d.IP
		if h.Address == "" {
			h.Address = d.Hostname
		}
		addr := orPlaceholder(h.Address, "device-ip")
		if h.Address == "" && d.Migrated() {
			h.Steps = append(h.Steps, "Its address is not known yet: run 'tuyaflash verify --host <device-ip>' once it is on your network.")
		}
		switch fw {
		case "tasmota":
			h.Integration = "tasmota"
			mac := strings.ReplaceAll(orPlaceholder(h.MAC, "MAC"), ":", "")
			h.Steps = append(h.Steps,
				"Home Assistant needs an MQTT broker (e.g. the Mosquitto add-on), the MQTT integration and the Tasmota integration (Settings → Devices & services → Add integration → Tasmota).",
				fmt.Sprintf("Point the device at the broker: open http://%s/cs (Console) and enter the command below.", addr),
				fmt.Sprintf("Leave SetOption19 at 0 (the default): the device announces itself on tasmota/discovery/%s/config and appears under the Tasmota integration.", mac),
				"With the Mosquitto add-on's access control, allow 'topic write tasmota/discovery/#'. Do not change FullTopic.",
				"To remove it from Home Assistant later, disable it there first: a Tasmota device with discovery on comes back.")
			h.Commands = []string{fmt.Sprintf("Backlog MqttHost %s; MqttUser %s; MqttPassword %s; Topic %s; DeviceName %s", host, user, pass, h.Name, h.Name)}
		case "openbeken":
			h.Integration = "mqtt"
			h.Steps = append(h.Steps,
				"Home Assistant needs an MQTT broker (e.g. the Mosquitto add-on) and the MQTT integration.",
				fmt.Sprintf("Set the broker in http://%s/ → Config → Configure MQTT, or enter the first command below in the Web App's console. OpenBeken's defaults (user homeassistant, password qqqqqqqqqq) are not your broker's.", addr),
				fmt.Sprintf("Once MQTT is connected, announce the device: Config → Home Assistant Discovery, http://%s/ha_discovery?prefix=homeassistant, or the second command (it waits until MQTT is online).", addr))
			h.Commands = []string{
				fmt.Sprintf("backlog MqttHost %s; MqttUser %s; MqttPassword %s; MqttClient %s", host, user, pass, h.Name),
				"scheduleHADiscovery 5",
			}
		case "esphome":
			h.Integration = "esphome"
			target := addr
			if d.Hostname != "" {
				target = strings.TrimSuffix(d.Hostname, ".local") + ".local"
			}
			h.Steps = append(h.Steps,
				"Home Assistant finds ESPHome nodes on its own (zeroconf) within about 5 minutes: Settings → Devices & services → Discovered → ESPHome → Configure.",
				fmt.Sprintf("Or add it by hand: Add integration → ESPHome, host %s (or %s), port 6053.", target, addr))
			if d.LastVerify != nil && d.LastVerify.Encrypted {
				h.Steps = append(h.Steps, "Its native API is encrypted: Home Assistant asks for the api: encryption: key from the node's YAML.")
			}
		default:
			h.Steps = append(h.Steps, haNothingYet(d, fw))
		}
		if d.Migrated() {
			h.Cleanup = cleanup(d)
		}
		out = append(out, h)
	}
	return out
}

func haNothingYet(d inventory.Device, fw string) string {
	switch {
	case fw == inventory.FirmwareStock:
		return "Runs the stock Tuya firmware again (restored): keep or re-add it in the Tuya/localtuya integration; nothing to add for tuyaflash."
	case fw == "" && len(d.Writes) == 0:
		return "Not flashed yet: nothing to add. After flashing, run 'tuyaflash verify --host <device-ip>' so the inventory knows what runs."
	default:
		return fmt.Sprintf("tuyaflash does not know how %q joins Home Assistant: run 'tuyaflash verify --host <device-ip>' to identify the firmware.", fw)
	}
}

func cleanup(d inventory.Device) []string {
	var c []string
	if d.Tuya != nil && d.Tuya.DeviceID != "" {
		id := d.Tuya.DeviceID
		c = append(c,
			fmt.Sprintf("localtuya: delete device local_%s from its Home Assistant device page (never by editing .storage).", id),
			fmt.Sprintf("Tuya cloud: remove device %s in the Smart Life / Tuya app; the official Tuya integration then drops it.", id))
	} else {
		c = append(c, "localtuya / Tuya cloud: remove the old Tuya device (tuyaflash has no Tuya device id for it).")
	}
	return append(c, "tinytuya: tuyaflash export tinytuya --devices devices.json [--snapshot snapshot.json]")
}

// Text renders the hint for a terminal.
func (h HAHint) Text() string {
	var b strings.Builder
	fw := h.Firmware
	if fw == "" {
		fw = "not flashed"
	}
	if h.Version != "" {
		fw += " " + h.Version
	}
	fmt.Fprintf(&b, "%s  %s", h.Name, fw)
	if h.Address != "" {
		fmt.Fprintf(&b, " at %s", h.Address)
	}
	if h.MAC != "" {
		fmt.Fprintf(&b, " (MAC %s)", h.MAC)
	}
	fmt.Fprintf(&b, "\n  inventory key %s\n", h.Key)
	for i, s := range h.Steps {
		fmt.Fprintf(&b, "  %d. %s\n", i+1, s)
	}
	for _, c := range h.Commands {
		fmt.Fprintf(&b, "     %s\n", c)
	}
	if len(h.Cleanup) > 0 {
		b.WriteString("  Remove the stock device elsewhere:\n")
		for _, c := range h.Cleanup {
			fmt.Fprintf(&b, "   - %s\n", c)
		}
	}
	return b.String()
}
