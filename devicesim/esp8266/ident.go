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
	AP      string `json:"ap,omitempty"`
	API     string `json:"api,omitempty"`
	Tuya    string `json:"tuya,omitempty"`
}

// identityJSON is the answer to the identification command: "net" is
// Config.NetAddr or the App's NetAddr(), "ap", "api" and "tuya" come from
// an App that implements NetAddrs. Addresses that would make it 240 bytes
// or longer are left out, the extra ones first.
func (d *Device) identityJSON() []byte {
	id := identity{Virtual: true, Sim: "espsim", Chip: strings.ToUpper(d.chip.String()), Net: d.cfg.NetAddr}
	if n, ok := d.cfg.App.(NetAddrer); ok && id.Net == "" {
		id.Net = n.NetAddr()
	}
	if n, ok := d.cfg.App.(NetAddrs); ok {
		id.AP, id.API, id.Tuya = n.APAddr(), n.APIAddr(), n.TuyaAddr()
	}
	var b []byte
	for _, drop := range []func(){func() {}, func() { id.AP, id.API, id.Tuya = "", "", "" }, func() { id.Net = "" }} {
		drop()
		if b, _ = json.Marshal(id); len(b) < 240 {
			break
		}
	}
	return b
}

// identify answers the identification command in the ROM or a stub:
// opcode 0x7E, value 0, the JSON, status 0. It reports false for any other
// payload, which the caller rejects like every unknown command.
func (c *conn) identify(r request, mode string) (bool, error) {
	if c.d.cfg.Unmarked || string(r.data) != identifyQuery {
		return false, nil
	}
	js := c.d.identityJSON()
	c.logf(mode, fmt.Sprintf("0x7E %q -> %s", identifyQuery, js))
	return true, c.respond(appendSLIP(nil, response(opIdentify, 0, js, [2]byte{})))
}
