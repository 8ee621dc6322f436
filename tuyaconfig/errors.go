package tuyaconfig

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tuyaflash/tuyaflash/flasher"
)

// Sentinel errors; the typed errors below wrap them so callers can branch
// with errors.Is. flasher.Hint(err) gives the user's next step.
var (
	// ErrNoStorage: no Tuya storage key block was found in the input.
	ErrNoStorage = errors.New("no Tuya storage found")
	// ErrUnsupportedFormat: the input holds a Tuya configuration in a
	// layout tuyaflash cannot read (a PSM1 sector of an ESP8266 dump
	// without key=value strings).
	ErrUnsupportedFormat = errors.New("this Tuya config format is not supported")
	// ErrDamaged: the storage was found but some blocks or values failed
	// their checks; what could be read is returned alongside.
	ErrDamaged = errors.New("the Tuya storage is damaged")
	// ErrUserParamKey: a user_param_key string could not be parsed.
	ErrUserParamKey = errors.New("malformed user_param_key")
)

// UnsupportedFormatError says which chip's config format was recognised
// but cannot be read.
type UnsupportedFormatError struct {
	Chip   string // e.g. "ESP8266"
	Detail string // what was recognised, e.g. "a PSM1 sector at 0x7B000 without key=value strings"
}

// Error says which chip's config could not be read, and why.
func (e *UnsupportedFormatError) Error() string {
	msg := fmt.Sprintf("cannot read the Tuya config of this %s dump", e.Chip)
	if e.Detail != "" {
		msg += " (" + e.Detail + ")"
	}
	return msg
}

// Unwrap gives ErrUnsupportedFormat with the user's next step.
func (e *UnsupportedFormatError) Unwrap() error {
	return &flasher.HintError{Err: ErrUnsupportedFormat, Hint: "Keep the backup file: it still holds the stock firmware and its " +
		"configuration. Note the pins from the device's template (e.g. templates.blakadder.com) or by tracing the board; " +
		"the local key can be fetched from the Tuya cloud with tinytuya's wizard."}
}

// BlockError names one storage sector (or page inside it) that failed.
type BlockError struct {
	Offset int    // byte offset in the input
	Reason string // e.g. "checksum mismatch (stored 0x…, computed 0x…)"
}

// String formats the block error as "0xOFFSET: reason".
func (b BlockError) String() string { return fmt.Sprintf("0x%06X: %s", b.Offset, b.Reason) }

// KeyError names one storage value that could not be read, or that was
// read from an older copy because the newest one failed.
type KeyError struct {
	Name   string
	Reason string
}

// String formats the key error as "name: reason".
func (k KeyError) String() string { return fmt.Sprintf("%s: %s", k.Name, k.Reason) }

// DamageError lists what failed in a storage that was otherwise found.
// Parse returns it together with the partial *Config.
type DamageError struct {
	Blocks []BlockError
	Keys   []KeyError
}

// Error lists every failed block and key.
func (e *DamageError) Error() string {
	var parts []string
	for _, b := range e.Blocks {
		parts = append(parts, "block "+b.String())
	}
	for _, k := range e.Keys {
		parts = append(parts, "key "+k.String())
	}
	return fmt.Sprintf("Tuya storage is damaged: %d block(s), %d key(s) failed: %s",
		len(e.Blocks), len(e.Keys), strings.Join(parts, "; "))
}

// Unwrap gives ErrDamaged with the user's next step.
func (e *DamageError) Unwrap() error {
	return &flasher.HintError{Err: ErrDamaged, Hint: "The values shown were recovered from the blocks that passed their checks. " +
		"Keep this backup file unchanged. If it was read from a device, read the flash again (tuyaflash backup) and compare: " +
		"a second read that passes means the first read was garbled on the wire."}
}

func (e *DamageError) empty() bool { return len(e.Blocks) == 0 && len(e.Keys) == 0 }

// noStorage builds the error for input without a usable key block.
func noStorage(detail string) error {
	return &flasher.HintError{
		Err: fmt.Errorf("%w: %s", ErrNoStorage, detail),
		Hint: "Pass a full 2 MiB BK7231 backup (or the storage area starting at its key block, 0x1EE000 in the full dump), " +
			"or a full ESP8266 backup. If this is a full backup, the Tuya storage was erased or the device never ran Tuya firmware.",
	}
}
