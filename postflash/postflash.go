// Package postflash finds out what runs on a device after it was flashed:
// Tasmota and OpenBeken through their Tasmota-style /cm command API (and
// OpenBeken's /api/info), ESPHome through its web server, its native API on
// TCP 6053 and mDNS, and a device that still runs the stock Tuya firmware by
// its open local-protocol port 6668. It reads the state the user checks
// (version, chip, MAC, IP, hostname, module, uptime, Wi-Fi signal), waits for
// a device to come online, and compares the result with what was expected.
//
// Every probe is read-only: it sends Status commands and GET/OPTIONS
// requests, never a command that changes the device.
package postflash

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/tuyaflash/tuyaflash/internal/termsafe"
)

// Firmware names what answered.
type Firmware string

// The firmwares Identify tells apart.
const (
	Tasmota   Firmware = "tasmota"
	OpenBeken Firmware = "openbeken"
	ESPHome   Firmware = "esphome"
	// StockTuya: port 80 closed, Tuya's local-protocol port 6668 open.
	// The question mark says it is an inference from the ports.
	StockTuya Firmware = "stock-tuya?"
	Unknown   Firmware = "unknown"
)

// Result is what Identify learnt about a device. Fields the firmware did not
// report stay empty (zero).
type Result struct {
	// Host is the address as the caller gave it.
	Host     string   `json:"host"`
	Firmware Firmware `json:"firmware"`
	// Version is the firmware version number, e.g. "14.4.1", "1.17.670",
	// "2024.10.2".
	Version string `json:"version,omitempty"`
	// Build is the build variant: Tasmota's image name ("tasmota", "lite",
	// "release-tasmota"), OpenBeken's platform prefix ("OpenBK7231N").
	Build string `json:"build,omitempty"`
	// Hardware is the chip or board exactly as the firmware reports it
	// ("ESP8266EX", "ESP8285N08", "BK7231N", "generic-bk7231n-qfn32-tuya").
	Hardware string `json:"hardware,omitempty"`
	// Chip is Hardware reduced to a family name tuyaflash uses
	// ("ESP8266", "ESP8285", "BK7231N", "BK7231T", "ESP32"), or "".
	Chip string `json:"chip,omitempty"`
	// MAC is the station MAC as AA:BB:CC:DD:EE:FF, or "".
	MAC string `json:"mac,omitempty"`
	// IP is the address the device reports, else the one it answered on.
	IP       string `json:"ip,omitempty"`
	Hostname string `json:"hostname,omitempty"`
	// Name is the device or node name (Tasmota DeviceName, OpenBeken
	// short name, ESPHome friendly name or node name).
	Name string `json:"name,omitempty"`
	// Module is Tasmota's module or template ("Generic (18)", "Athom Plug
	// V2 (0)"); empty elsewhere.
	Module string `json:"module,omitempty"`
	// Uptime is how long the firmware has run (JSON: uptime_s, seconds).
	Uptime time.Duration `json:"-"`
	// RSSI is the Wi-Fi quality as the firmware reports it (Tasmota: 0-100
	// %); Signal is the Wi-Fi level in dBm (negative); 0 means not
	// reported.
	RSSI   int `json:"rssi,omitempty"`
	Signal int `json:"signal_dbm,omitempty"`
	// Encrypted reports an ESPHome native API that requires its Noise
	// encryption key.
	Encrypted bool `json:"api_encrypted,omitempty"`
	// Evidence lists what was seen, in order, for the user and for bug
	// reports ("Server: Tasmota/14.4.1 (ESP8266EX)", …). It never holds
	// passwords.
	Evidence []string `json:"evidence,omitempty"`
	// Warnings are findings the user should act on (placeholder MAC, …).
	Warnings []string `json:"warnings,omitempty"`
}

// Options tune the probes. The zero value works: no credentials, 5 s per
// request, the system dialer, no mDNS.
type Options struct {
	// User and Password are the web credentials. User defaults to
	// "admin", the only user Tasmota and OpenBeken accept.
	User, Password string
	// Client replaces the HTTP client tuyaflash builds. The default never
	// uses a proxy and never keeps connections alive (the devices serve
	// one client at a time).
	Client *http.Client
	// Timeout bounds each request or TCP probe (default 5 s).
	Timeout time.Duration
	// Dial replaces the dialer for HTTP and the TCP probes (tests map
	// addresses to in-memory or loopback servers).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// MDNS also asks mDNS for ESPHome's _esphomelib._tcp service when the
	// native API cannot be read, to fill in version and MAC.
	MDNS bool
	// MDNSAddr is where the mDNS query goes (default 224.0.0.251:5353).
	MDNSAddr string
}

const defaultTimeout = 5 * time.Second

func (o Options) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return defaultTimeout
}

func (o Options) user() string {
	if o.User != "" {
		return o.User
	}
	return "admin"
}

func (o Options) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if o.Dial != nil {
		return o.Dial(ctx, network, addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// MarshalJSON writes the uptime as whole seconds (uptime_s).
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	return json.Marshal(struct {
		plain
		UptimeS int64 `json:"uptime_s,omitempty"`
	}{plain(r), int64(r.Uptime / time.Second)})
}

// clean shows the terminal control characters of every string the device
// sent as visible escapes: the Result is printed as text, and a device
// could otherwise rewrite the user's screen (termsafe).
func (r *Result) clean() {
	for _, p := range []*string{&r.Version, &r.Build, &r.Hardware, &r.Chip, &r.MAC, &r.IP, &r.Hostname, &r.Name, &r.Module} {
		*p = termsafe.Clean(*p)
	}
	termsafe.All(r.Evidence)
	termsafe.All(r.Warnings)
}

func (r *Result) saw(format string, args ...any) {
	r.Evidence = append(r.Evidence, fmt.Sprintf(format, args...))
}
