package espsim

import (
	"encoding/json"
	"fmt"
	"strings"
)

// identifyQuery is the payload of the virtual identification command
// (contract C2): opcode 0x7E, checksum 0.
const identifyQuery = "tuyaflash-virtual?"

// identity is the JSON a virtual device answers with (under 240 bytes).
type identity struct {
	Virtual bool   `json:"virtual"`
	Sim     string `json:"sim"`
	Chip    string `json:"chip"`
	Net     string `json:"net,omitempty"`
}

// identityJSON is the answer to the identification command.
func (d *Device) identityJSON() []byte {
	net := d.cfg.NetAddr
	if n, ok := d.cfg.App.(NetAddrer); ok && net == "" {
		net = n.NetAddr()
	}
	b, err := json.Marshal(identity{Virtual: true, Sim: "espsim", Chip: strings.ToUpper(d.chip.String()), Net: net})
	if err != nil || len(b) >= 240 {
		// A net address too long for the reply is left out.
		b, _ = json.Marshal(identity{Virtual: true, Sim: "espsim", Chip: strings.ToUpper(d.chip.String())})
	}
	return b
}

// identify answers the identification command in the ROM or a stub:
// opcode 0x7E, value 0, the JSON, status 0. It reports false for any other
// payload, which the caller rejects like every unknown command.
func (c *conn) identify(r request, mode string) (bool, error) {
	if string(r.data) != identifyQuery {
		return false, nil
	}
	js := c.d.identityJSON()
	c.logf(mode, fmt.Sprintf("0x7E %q -> %s", identifyQuery, js))
	return true, c.respond(appendSLIP(nil, response(opIdentify, 0, js, [2]byte{})))
}
