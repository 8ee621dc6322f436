package migrate

import (
	"context"
	"time"

	"github.com/tuyaflash/tuyaflash/firmware"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/postflash"
	"github.com/tuyaflash/tuyaflash/provision"
	"github.com/tuyaflash/tuyaflash/transport"
)

// The outside world of a migration goes through three small interfaces:
// Connector (serial ports and the chip in download mode), Firmwares (the
// catalogue, the download cache and local files) and Network (the flashed
// firmware on the network). Files — the backup store, the inventory with
// its journal, template files and tinytuya files — are handled with the
// packages that own them, at the paths Options gives.

// Connector reaches chips over serial ports.
type Connector interface {
	// Connect opens port and returns the chip in download mode. It tells
	// the user when to power-cycle through notify and gives up when ctx
	// ends (closing the port, so that no read outlives ctx).
	Connect(ctx context.Context, port string, notify flasher.Notify) (Link, error)
	// Console opens port for the firmware's serial console (Tasmota on
	// an ESP8266 after the reboot), for a run that starts after the
	// reboot (--from provision or later). The caller closes the port.
	Console(ctx context.Context, port string) (transport.Port, error)
}

// Link is a connected chip. It stays open from detect to the end of the
// port's run: after the reboot the same serial line carries the firmware's
// console, and a virtual device lives as long as its link.
type Link interface {
	// Device is the chip in download mode (until the reboot step).
	Device() flasher.Device
	// Virtual describes a virtual device's network side; nil for a real
	// chip.
	Virtual() *Virtual
	// Console is the serial line for the firmware's console after the
	// reboot; nil when the link has none.
	Console() transport.Port
	// Close ends the link (and a virtual device served in this process).
	Close() error
}

// RebootFollower is implemented by a Link whose device has a simulated
// user (a virtual device served in the same process): FollowReboot
// carries out the reboot step's manual instruction (release GPIO0,
// power-cycle) the moment it is given.
type RebootFollower interface {
	FollowReboot()
}

// The virtual home network of the virtual bench (brief C3): the simulated
// firmware joins Wi-Fi only with these credentials.
const (
	VirtualSSID     = "tuyaflash-virtual"
	VirtualPassword = "virtual-bench"
)

// Virtual is the network side of a virtual device (brief C1–C3).
type Virtual struct {
	// Station is the host:port where the firmware's station HTTP API
	// appears once it has joined the virtual network.
	Station string `json:"station,omitempty"`
	// AP is where its access-point pages appear ("" = Station: `tuyaflash
	// sim --net ADDR` serves both at ADDR, one after the other).
	AP string `json:"ap,omitempty"`
	// SSID and Password are the virtual network ("" = VirtualSSID and
	// VirtualPassword).
	SSID     string `json:"ssid,omitempty"`
	Password string `json:"-"`
}

func (v *Virtual) apHost() string {
	if v.AP != "" {
		return v.AP
	}
	return v.Station
}

func (v *Virtual) wifi() provision.WiFi {
	w := provision.WiFi{SSID: v.SSID, Password: v.Password}
	if w.SSID == "" {
		w = provision.WiFi{SSID: VirtualSSID, Password: VirtualPassword}
	}
	return w
}

// DemoFirmware is the --firmware name of the virtual devices' demo images
// (brief C4); it is also the default on a virtual device.
const DemoFirmware = "demo"

// ResolveOptions tune Firmwares.Resolve.
type ResolveOptions struct {
	// NoDownload serves only what the cache holds (--dry-run, --offline);
	// a missing file is an error wrapping firmware.ErrNotCached.
	NoDownload bool
}

// Firmwares turns --firmware into an image.
type Firmwares interface {
	// Resolve returns the image spec names for chip: a file (detected by
	// its content), a catalogue name (fetched through the cache and
	// checked), or DemoFirmware. The Resolved's Choice.Firmware, when
	// set, names the firmware kind and version.
	Resolve(ctx context.Context, spec string, chip firmware.Chip, o ResolveOptions) (*firmware.Resolved, error)
}

// Network reaches the flashed firmware.
type Network interface {
	// Identify asks host once what runs there (postflash.Identify).
	Identify(ctx context.Context, host string) (*postflash.Result, error)
	// WaitOnline identifies host until it answers or the deadline
	// passes, reporting each attempt (postflash.WaitOnline).
	WaitOnline(ctx context.Context, host string, deadline time.Time, seen func(postflash.Attempt)) (*postflash.Result, error)
	// FindByMAC looks for the device on the local network
	// (provision.FindByMAC: ARP, mDNS).
	FindByMAC(ctx context.Context, mac flasher.MAC) (*provision.Found, error)
	// ProvisionAP gives the Wi-Fi network to the firmware's access point
	// at apHost (provision.ProvisionAP).
	ProvisionAP(ctx context.Context, fw postflash.Firmware, w provision.WiFi, apHost string) (*provision.APResult, error)
	// ProvisionSerial gives the Wi-Fi network to Tasmota's serial console
	// (provision.Serial).
	ProvisionSerial(ctx context.Context, p transport.Port, w provision.WiFi) (*provision.SerialResult, error)
	// ReadPins reads the pin configuration the firmware at host runs.
	ReadPins(ctx context.Context, host string, fw postflash.Firmware) (*PinConfig, error)
	// WritePins stores c in the firmware at host (and activates it).
	WritePins(ctx context.Context, host string, fw postflash.Firmware, c *PinConfig) error
}

// PinConfig is a pin configuration of OpenBeken or Tasmota.
type PinConfig struct {
	// Pins are OpenBeken's pin roles: role index and channel per pin
	// number; read back, every pin with a role.
	Pins []PinRole `json:"pins,omitempty"`
	// Startup is OpenBeken's short startup command to set with the pins
	// ("" leaves the device's own).
	Startup string `json:"startup,omitempty"`
	// Template is a Tasmota template (JSON); read back, the active one,
	// "" when the device does not run a template (Module is not 0).
	Template string `json:"template,omitempty"`
}

// PinRole is one OpenBeken pin.
type PinRole struct {
	Pin     int    `json:"pin"`
	Role    int    `json:"role"`
	Name    string `json:"name,omitempty"`
	Channel int    `json:"channel"`
}
