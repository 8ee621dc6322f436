package flasher

import (
	"bytes"
	"encoding/json"
)

// VirtualQuery is the payload of the virtual-identification command
// (contract C2 of the virtual bench): sent with code 0x7E, as a Beken short
// command or an ESP8266 SLIP request, it makes one of tuyaflash's simulators
// answer with a Virtual; real loaders reject it as an unknown command.
const VirtualQuery = "tuyaflash-virtual?"

// VirtualCode is the command code (Beken) or opcode (ESP8266) of the
// virtual-identification command.
const VirtualCode = 0x7E

// Virtual is what a simulated chip says about itself in answer to the
// virtual-identification command: which simulator answers and where the
// simulated firmware's network side appears on this computer. Addresses
// are loopback host:port pairs; a field is empty when the simulator did
// not say.
type Virtual struct {
	// Sim names the simulator ("bksim", "espsim").
	Sim string `json:"sim"`
	// Chip is the chip it simulates ("BK7231N").
	Chip string `json:"chip,omitempty"`
	// Net is where the firmware's station HTTP API appears once it has
	// joined the virtual network (a real device's port 80).
	Net string `json:"net,omitempty"`
	// AP is where its access-point pages appear ("" = Net).
	AP string `json:"ap,omitempty"`
	// API is ESPHome's native API (a real device's TCP 6053).
	API string `json:"api,omitempty"`
	// Tuya is the stock firmware's Tuya local port (TCP 6668).
	Tuya string `json:"tuya,omitempty"`
}

// ParseVirtual reads the answer to the virtual-identification command: a
// JSON object with "virtual": true somewhere in data (a reply's data field
// may carry status bytes around it). ok is false for anything else — the
// status byte of an unknown-command reply, garbage — which means a real
// chip.
func ParseVirtual(data []byte) (*Virtual, bool) {
	i, j := bytes.IndexByte(data, '{'), bytes.LastIndexByte(data, '}')
	if i < 0 || j < i {
		return nil, false
	}
	obj := data[i : j+1]
	var flag struct {
		Virtual bool `json:"virtual"`
	}
	var v Virtual
	if json.Unmarshal(obj, &flag) != nil || !flag.Virtual || json.Unmarshal(obj, &v) != nil || v.Sim == "" {
		return nil, false
	}
	return &v, true
}

// Station is where the firmware's web server appears once online (Net).
func (v *Virtual) Station() string { return v.Net }

// APAddr is where the access-point pages appear: AP, else Net.
func (v *Virtual) APAddr() string {
	if v.AP != "" {
		return v.AP
	}
	return v.Net
}
