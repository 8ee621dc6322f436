package postflash

import (
	"fmt"
	"strings"

	"github.com/tuyaflash/tuyaflash/flasher"
)

// MismatchError says the device that answered is not what the flash should
// have produced: another firmware, the stock firmware, or another device.
type MismatchError struct {
	Host string
	// Field is "firmware" or "mac".
	Field     string
	Want, Got string
	// Unverified is set when the comparison could not be made (no MAC
	// reported, a placeholder MAC) rather than failed.
	Unverified bool
	Msg        string
	Hint       string
}

// Error says host and mismatch.
func (e *MismatchError) Error() string { return e.Host + ": " + e.Msg }

// Is makes a MismatchError match flasher.ErrVerify.
func (e *MismatchError) Is(target error) bool { return target == flasher.ErrVerify }

// ParseFirmware accepts "tasmota", "openbeken" (or "obk"), "esphome" in any
// case.
func ParseFirmware(s string) (Firmware, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "tasmota":
		return Tasmota, nil
	case "openbeken", "obk":
		return OpenBeken, nil
	case "esphome":
		return ESPHome, nil
	}
	return "", fmt.Errorf("unknown firmware %q (want tasmota, openbeken or esphome)", s)
}

// Check compares r with what was expected. expectFirmware is "tasmota",
// "openbeken" ("obk") or "esphome", "" for any; expectMAC is the flashed
// device's MAC (e.g. from the backup's sidecar), "" to skip. The error is a
// *MismatchError wrapped with its hint (flasher.Hint).
func Check(r *Result, expectFirmware, expectMAC string) error {
	if r == nil {
		return fmt.Errorf("no result to check")
	}
	if expectFirmware != "" {
		want, err := ParseFirmware(expectFirmware)
		if err != nil {
			return err
		}
		if e := checkFirmware(r, want); e != nil {
			return mismatch(e)
		}
	}
	if expectMAC != "" {
		want, err := flasher.ParseMAC(expectMAC)
		if err != nil {
			return fmt.Errorf("expected MAC: %w", err)
		}
		if e := checkMAC(r, want); e != nil {
			return mismatch(e)
		}
	}
	return nil
}

func mismatch(e *MismatchError) error {
	return &flasher.HintError{Err: e, Hint: e.Hint}
}

func describe(r *Result) string {
	s := string(r.Firmware)
	if r.Version != "" {
		s += " " + r.Version
	}
	return s
}

func checkFirmware(r *Result, want Firmware) *MismatchError {
	if r.Firmware == want {
		return nil
	}
	e := &MismatchError{Host: r.Host, Field: "firmware", Want: string(want), Got: string(r.Firmware)}
	switch r.Firmware {
	case StockTuya:
		e.Msg = fmt.Sprintf("the device still runs the stock Tuya firmware (web port closed, Tuya's local port 6668 open), not %s: the new firmware is not running", want)
		e.Hint = "power-cycle the device (GPIO0/CEN released); if it still runs stock, the write did not take: flash again ('tuyaflash write' verifies what it writes)"
	case Unknown:
		e.Msg = fmt.Sprintf("the device did not identify as %s or any other known firmware", want)
		e.Hint = "check that the address is the flashed device's (router client list, by MAC)"
	default:
		e.Msg = fmt.Sprintf("the device runs %s, not %s: a different device answered, or another firmware was written", describe(r), want)
		e.Hint = "compare the MAC with the flashed device's (--mac); check which firmware file was written"
	}
	return e
}

func checkMAC(r *Result, want flasher.MAC) *MismatchError {
	e := &MismatchError{Host: r.Host, Field: "mac", Want: want.String(), Got: r.MAC}
	if ph, why := want.Placeholder(); ph {
		e.Unverified = true
		e.Msg = fmt.Sprintf("the expected MAC %s is a placeholder (%s) shared by many devices; it cannot confirm which device answered", want, why)
		e.Hint = "use the MAC printed on the module or shown by the Tuya app"
		return e
	}
	if r.MAC == "" {
		e.Unverified = true
		e.Msg = fmt.Sprintf("the device (%s) did not report its MAC, so tuyaflash cannot confirm it is the flashed device %s", describe(r), want)
		e.Hint = "compare the MAC on the device's web page by eye; for ESPHome allow mDNS (--mdns) or upgrade ESPHome, whose newer API hello includes the MAC"
		return e
	}
	got, err := flasher.ParseMAC(r.MAC)
	if err != nil {
		e.Unverified = true
		e.Msg = fmt.Sprintf("the device reports %q, which is not a MAC address", r.MAC)
		return e
	}
	if got == want {
		return nil
	}
	if ph, why := got.Placeholder(); ph {
		e.Msg = fmt.Sprintf("the device reports the placeholder MAC %s (%s) instead of its own %s: the flash lost the RF calibration/MAC area", got, why, want)
		e.Hint = "restore the RF/MAC area from the stock backup (on Beken the RF partition near the end of flash); the device then gets its MAC back"
		return e
	}
	e.Msg = fmt.Sprintf("a different device answered: its MAC is %s, the flashed device's is %s (%s runs there)", got, want, describe(r))
	e.Hint = "the address belongs to another device (DHCP gave it away): look up the flashed device's MAC in the router's client list"
	return e
}
