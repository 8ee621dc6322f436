package firmware

import (
	"fmt"
	"strings"

	"github.com/tuyaflash/tuyaflash/firmware/demo"
	"github.com/tuyaflash/tuyaflash/flasher"
)

// markDemo names tuyaflash's demo images (package firmware/demo): Detect
// finds them by their marker, records what they say, and takes the chip
// family from them (their content otherwise looks like any UA application,
// which cannot tell T from N), so that the family gate refuses a BK7231N
// demo on a BK7231T. A demo image is for virtual devices only: DemoGate
// refuses it on a real chip.
func (d *Detection) markDemo() {
	info, ok := demo.Is(d.Data)
	if !ok {
		return
	}
	d.Demo = &info
	if fam := flasher.Family(info.Chip); d.Family == "" && d.Arch != "" && ArchOf(fam) == d.Arch {
		d.Family = fam
	}
	if d.Version == "" {
		d.Version = info.Version
	}
	d.note("tuyaflash demo image: %s %s for %s, synthetic, for virtual devices only", info.Firmware, info.Version, info.Chip)
}

// IsDemoName reports whether --firmware SPEC asks for the demo image
// ("demo", any case).
func IsDemoName(spec string) bool {
	return strings.EqualFold(strings.TrimSpace(spec), "demo")
}

// ResolveDemo returns the demo image for the chip (OpenBeken on Beken
// chips, Tasmota on ESP8266/ESP8285), detected like a file, with
// Choice.Firmware naming its kind and version (Build and Fetch are nil:
// it is built in). The caller must have established that the chip is a
// virtual device (DemoGate).
func ResolveDemo(chip Chip) (*Resolved, error) {
	data, err := demo.For(string(chip.Family))
	if err != nil {
		return nil, &flasher.HintError{Err: err, Hint: "demo images exist for BK7231T/N (and the other Beken chips) and ESP8266/ESP8285"}
	}
	info, _ := demo.Is(data)
	det, err := Detect(data, demo.FileName(info))
	if err != nil {
		return nil, fmt.Errorf("demo image for %s: %w", chip.Family, err)
	}
	fw := &Firmware{Name: info.Firmware, Kind: Kind(info.Firmware), Version: info.Version, Title: "tuyaflash demo image (virtual devices only)"}
	return &Resolved{Detection: det, Choice: Choice{Firmware: fw}}, nil
}

// DemoGate refuses a demo image for a chip that is not one of tuyaflash's
// virtual devices (virtual is the answer to the virtual-identification
// command): a real chip cannot run it.
func DemoGate(det *Detection, virtual bool) error {
	if det == nil || det.Demo == nil || virtual {
		return nil
	}
	return refuse("", "write a real firmware: 'tuyaflash firmware list' shows the builds for this chip",
		"this is tuyaflash's demo image (%s %s), which only tuyaflash's virtual devices run; the chip on this port is a real one", det.Demo.Firmware, det.Demo.Version)
}
