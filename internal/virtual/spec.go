// Package virtual runs tuyaflash's virtual devices: a chip simulator
// (devicesim/bk7231 or devicesim/esp8266) with the simulated firmware that
// runs on it (devicesim/appsim) and the bench user who power-cycles it,
// behind an in-memory serial link paced like a USB adapter (transport.Pipe),
// or behind a pseudo-terminal for `tuyaflash sim`.
//
// A virtual device named by a port spec "sim:CHIP[:FLASHFILE][#NAME]" is
// persistent like a real one: its flash and identity live under the data
// folder in virtual/<chip>[-<name>]/ (flash.bin, device.json, lock); the
// first use creates it from the chip simulator's default image or from
// FLASHFILE (copied, never modified), every later use finds the flash as
// the last one left it. Forget deletes it.
//
// Its network side appears on a loopback address of its own (a
// 127.84.x.y address per device on Linux, derived from its name; else
// 127.0.0.1) with ports recorded in device.json, so that the address the
// inventory keeps stays meaningful. Dial reaches the well-known ports of a
// real device (6053, 6668) on the virtual devices of this process.
//
// The package never prints.
package virtual

import (
	"fmt"
	"regexp"
	"strings"

	bksim "github.com/tuyaflash/tuyaflash/devicesim/bk7231"
	espsim "github.com/tuyaflash/tuyaflash/devicesim/esp8266"
	"github.com/tuyaflash/tuyaflash/flasher"
)

// Prefix starts every virtual device's port spec.
const Prefix = "sim:"

// Spec is a parsed virtual device port: sim:CHIP[:FLASHFILE][#NAME].
type Spec struct {
	// Chip is the simulated chip's canonical name, lower case
	// ("bk7231n", "esp8266"): an alias the simulator accepts (bk7231s,
	// t1) is turned into the chip it names.
	Chip string
	// Family is the chip family tuyaflash knows the chip as ("" when the
	// chip has no family of its own).
	Family flasher.Family
	// File is the flash image a new device starts from ("" = the
	// simulator's default image).
	File string
	// Name tells instances of a chip apart ("" = the default one).
	Name string
	// esp: the chip is one of the ESP simulator's.
	esp bool
}

// IsSpec reports whether port names a virtual device.
func IsSpec(port string) bool { return strings.HasPrefix(port, Prefix) }

// nameRe is what an instance name may hold: it becomes part of a folder
// name.
var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$`)

// ParseSpec parses "sim:CHIP[:FLASHFILE][#NAME]". The chip is anything
// one of the simulators accepts; NAME is an instance name (letters, digits,
// '.', '_', '-'; at most 32).
func ParseSpec(port string) (Spec, error) {
	rest, ok := strings.CutPrefix(port, Prefix)
	if !ok {
		return Spec{}, fmt.Errorf("%q is not a virtual device (they start with %s)", port, Prefix)
	}
	var s Spec
	if i := strings.LastIndexByte(rest, '#'); i >= 0 {
		rest, s.Name = rest[:i], rest[i+1:]
		if !nameRe.MatchString(s.Name) {
			return Spec{}, fmt.Errorf("%s: instance name %q: use letters, digits, '.', '_' or '-' (up to 32), e.g. %s%s#2", port, s.Name, Prefix, "bk7231n")
		}
	}
	chip, file, _ := strings.Cut(rest, ":")
	s.File = file
	if c, err := bksim.ParseChip(chip); err == nil {
		s.Chip = strings.ToLower(c.String())
	} else if c, err := espsim.ParseChip(chip); err == nil {
		s.Chip, s.esp = strings.ToLower(c.String()), true
	} else {
		return Spec{}, fmt.Errorf("%s: unknown virtual device: no simulator for chip %q (sim:%s; sim:CHIP:FILE loads the flash from FILE)", port, chip, strings.Join(Chips(), ", sim:"))
	}
	s.Family, _ = flasher.ParseFamily(s.Chip)
	return s, nil
}

// Chips lists the chips the simulators offer, as a spec names them.
func Chips() []string {
	var out []string
	for _, c := range bksim.Chips() {
		out = append(out, strings.ToLower(c.String()))
	}
	for _, c := range espsim.Chips() {
		out = append(out, strings.ToLower(c.String()))
	}
	return out
}

// ID names the device's state folder: the chip, and its instance name.
func (s Spec) ID() string {
	if s.Name == "" {
		return s.Chip
	}
	return s.Chip + "-" + s.Name
}

// String is the spec in canonical form, without the flash file:
// sim:CHIP[#NAME].
func (s Spec) String() string {
	if s.Name == "" {
		return Prefix + s.Chip
	}
	return Prefix + s.Chip + "#" + s.Name
}

// ESP reports whether the chip is an ESP8266-class one.
func (s Spec) ESP() bool { return s.esp }
