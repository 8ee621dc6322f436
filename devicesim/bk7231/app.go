package bksim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// App is the firmware side of a simulated chip: what runs when the chip is
// out of reset and not in download mode (contract C1 of the session brief).
type App interface {
	// Boot starts the firmware held in flash. It is called every time the
	// chip leaves reset into its application (link window closed without a
	// link, Reboot command, idle exit of a bootloader-based chip, a power
	// cycle without link checks).
	Boot(flash Flash)
	// Halt stops the firmware: reset, power-off, or entry into download mode.
	Halt()
	// Serial receives bytes the host sends on UART while the firmware runs
	// and returns the firmware's answer on UART; nil when it has nothing to
	// say.
	Serial(in []byte) []byte
}

// Flash is the chip's flash as the running firmware sees it (concurrency-
// safe; writes follow NOR rules only as far as the simulator enforces them).
type Flash = interface {
	Size() int
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error) // erases the touched 4 KiB sectors first
}

// NetAddrer is implemented by an App that knows the loopback address where
// its network side appears; the identification command reports it when
// Config.NetAddr is empty. NetAddr is called with the device locked: it
// must only return the address (not use the Flash).
type NetAddrer interface {
	NetAddr() string
}

// NetAddrs is implemented by an App whose network side has more addresses
// than its station (devicesim/appsim's Firmware): the identification
// command reports them as "ap", "api" and "tuya", so that a client in
// another process finds the access point, ESPHome's native API and the
// stock firmware's Tuya port. Called with the device locked, like NetAddr.
type NetAddrs interface {
	APAddr() string
	APIAddr() string
	TuyaAddr() string
}

// Unplugger is implemented by lines that can simulate a USB adapter pulled
// out of the host (the port then fails with EIO), as transport's PipePort
// and PTY do; Faults.UnplugAfter uses it.
type Unplugger interface {
	Unplug()
}

// Rebooter is implemented by the Flash that App.Boot receives: a running
// firmware restarts the chip with it (a software reset, as OpenBeken does
// on "reboot" and LibreTiny's auto-download-reboot on a LinkCheck,
// reference §2.2). The chip goes through its link window as after any
// reset, so link checks that follow put it into download mode.
type Rebooter interface {
	Reboot()
}

// flashView is the Flash handed to App.Boot: the device's flash under the
// device's mutex.
type flashView struct{ d *Device }

// Reboot resets the chip from its firmware (see Rebooter).
func (v flashView) Reboot() {
	v.d.mu.Lock()
	defer v.d.mu.Unlock()
	if v.d.state == stateApp {
		v.d.resetLocked("software reset by the firmware")
	}
}

var errFlashRange = errors.New("bksim: flash access outside the flash")

func (v flashView) Size() int { return int(v.d.size) }

func (v flashView) ReadAt(p []byte, off int64) (int, error) {
	d := v.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if off < 0 || off > int64(d.size) {
		return 0, errFlashRange
	}
	n := copy(p, d.flash[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// WriteAt erases every 4 KiB sector p touches, keeping the bytes around p,
// and programs p: what a firmware's flash driver does for a config save.
// The status-register protection of the download protocol does not apply
// (the firmware unprotects for itself).
func (v flashView) WriteAt(p []byte, off int64) (int, error) {
	d := v.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if off < 0 || off+int64(len(p)) > int64(d.size) {
		return 0, errFlashRange
	}
	if len(p) == 0 {
		return 0, nil
	}
	start := uint32(off) &^ (sectorSize - 1)
	end := (uint32(off) + uint32(len(p)) + sectorSize - 1) &^ (sectorSize - 1)
	keep := append([]byte(nil), d.flash[start:end]...)
	copy(keep[uint32(off)-start:], p)
	for s := start; s < end; s += sectorSize {
		d.erase(s, sectorSize)
	}
	d.program(start, keep)
	return len(p), nil
}

// identifyPayload is what the virtual identification command carries
// (contract C2): short command 0x7E with this ASCII payload.
const (
	identifyCode    = 0x7E
	identifyPayload = "tuyaflash-virtual?"
)

// identity is the JSON answer of the identification command.
type identity struct {
	Virtual bool   `json:"virtual"`
	Sim     string `json:"sim"`
	Chip    string `json:"chip"`
	Net     string `json:"net,omitempty"`
	AP      string `json:"ap,omitempty"`
	API     string `json:"api,omitempty"`
	Tuya    string `json:"tuya,omitempty"`
}

// maxIdentity bounds the JSON (contract C2: under 240 bytes).
const maxIdentity = 240

// identityJSON renders the answer: the station address ("net") is
// Config.NetAddr or the App's NetAddr, the others come from an App that
// implements NetAddrs; absent when the simulator has no network side.
// Addresses that would make the answer too long are left out, the
// extra ones first.
func (d *Device) identityJSON() []byte {
	id := identity{Virtual: true, Sim: "bksim", Chip: d.cfg.Chip.String(), Net: d.cfg.NetAddr}
	if n, ok := d.cfg.App.(NetAddrer); ok && id.Net == "" {
		id.Net = n.NetAddr()
	}
	if n, ok := d.cfg.App.(NetAddrs); ok {
		id.AP, id.API, id.Tuya = n.APAddr(), n.APIAddr(), n.TuyaAddr()
	}
	for _, drop := range []func(){func() {}, func() { id.AP, id.API, id.Tuya = "", "", "" }, func() { id.Net = "" }} {
		drop()
		b, err := json.Marshal(id)
		if err != nil {
			panic(fmt.Sprintf("bksim: identity JSON: %v", err)) // plain strings cannot fail
		}
		if len(b) < maxIdentity {
			return b
		}
	}
	panic("bksim: identity JSON too long without addresses")
}
