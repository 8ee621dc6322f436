// Package provision puts a freshly flashed device on the user's Wi-Fi:
// Tasmota on an ESP8266 over the serial adapter that flashed it (Backlog
// SSID1 …; Password1 …, then the IP from the boot log), or any of Tasmota,
// OpenBeken and ESPHome over the access point the device opens when it has
// no network (the host has joined that access point). It also says what
// the user must do around it, and finds the device's new address by MAC.
package provision

import (
	"fmt"
	"unicode/utf8"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/internal/termsafe"
)

// WiFi is the network the device should join.
type WiFi struct {
	SSID     string
	Password string // empty for an open network
}

// Limits of the firmwares' settings (Tasmota: SSId 32 chars, Password 64
// chars; the same as the 802.11 SSID and WPA passphrase limits).
const (
	maxSSID     = 32
	maxPassword = 64
)

func (w WiFi) validate() *Error {
	switch {
	case w.SSID == "":
		return &Error{Op: "Wi-Fi settings", Msg: "no network name (SSID) given"}
	case len(w.SSID) > maxSSID:
		return &Error{Op: "Wi-Fi settings", Msg: fmt.Sprintf("the network name is %d bytes long; Wi-Fi allows %d", len(w.SSID), maxSSID)}
	case len(w.Password) > maxPassword:
		return &Error{Op: "Wi-Fi settings", Msg: fmt.Sprintf("the password is %d bytes long; Wi-Fi allows %d", len(w.Password), maxPassword)}
	case !utf8.ValidString(w.SSID) || !utf8.ValidString(w.Password):
		return &Error{Op: "Wi-Fi settings", Msg: "the network name or password is not valid UTF-8 text"}
	}
	return nil
}

// Error is a provisioning failure in words the user can act on; the
// functions return it wrapped in a flasher.HintError carrying Hint.
type Error struct {
	// Op is the step: "serial console", "Tasmota access point", …
	Op   string
	Msg  string
	Hint string
	Err  error
}

// Error is the step and the sentence for the user.
// Error is Op and Msg; what the device sent (a page's text) shows its
// terminal control characters as visible escapes (termsafe).
func (e *Error) Error() string { return termsafe.Clean(e.Op + ": " + e.Msg) }

// Unwrap returns the underlying error, if any.
func (e *Error) Unwrap() error { return e.Err }

// withHint wraps e so that flasher.Hint finds its hint.
func withHint(e *Error) error {
	if e.Hint == "" {
		return e
	}
	return &flasher.HintError{Err: e, Hint: e.Hint}
}
