// Package flasher holds what the chip families share: the progress sink,
// the typed errors and the description of a connected chip. It does no I/O.
package flasher

import (
	"errors"
	"fmt"
)

// Progress receives the progress of a long operation. It is output only:
// implementations never influence the operation. Begin starts a phase (op
// such as "read", "erase", "write", "verify"), Advance adds done bytes, End
// closes the phase.
type Progress interface {
	Begin(op string, addr uint32, total int64)
	Advance(n int64)
	End(err error)
}

// NopProgress discards progress.
type NopProgress struct{}

// Begin does nothing.
func (NopProgress) Begin(string, uint32, int64) {}

// Advance does nothing.
func (NopProgress) Advance(int64) {}

// End does nothing.
func (NopProgress) End(error) {}

// OrNop returns p, or NopProgress when p is nil.
func OrNop(p Progress) Progress {
	if p == nil {
		return NopProgress{}
	}
	return p
}

// Sentinel errors; the typed errors below wrap them so callers can branch
// with errors.Is.
var (
	// ErrNoLink: the chip never answered (not in download mode, wiring,
	// power).
	ErrNoLink = errors.New("no answer from the chip")
	// ErrVerify: data read back or checksummed on the chip differs from
	// what was expected.
	ErrVerify = errors.New("verification failed")
	// ErrDevice: the chip answered with an error status.
	ErrDevice = errors.New("chip reported an error")
	// ErrUnsupported: the chip or its protocol variant lacks the command.
	ErrUnsupported = errors.New("not supported by this chip")
	// ErrRefused: tuyaflash refuses the operation because it would damage
	// the device or lose data.
	ErrRefused = errors.New("refused")
	// ErrProtocol: a reply was malformed or out of place.
	ErrProtocol = errors.New("protocol error")
)

// OpError records the operation and flash address an error happened at.
type OpError struct {
	Op   string // e.g. "read 4K", "erase 4K", "write 4K", "check CRC"
	Addr uint32
	Err  error
}

func (e *OpError) Error() string {
	return fmt.Sprintf("%s at 0x%06X: %v", e.Op, e.Addr, e.Err)
}

func (e *OpError) Unwrap() error { return e.Err }

// StatusError is a non-zero status byte in a chip's reply.
type StatusError struct {
	Command string
	Status  byte
	Meaning string
}

func (e *StatusError) Error() string {
	if e.Meaning != "" {
		return fmt.Sprintf("%s: chip status %d (%s)", e.Command, e.Status, e.Meaning)
	}
	return fmt.Sprintf("%s: chip status %d", e.Command, e.Status)
}

// Is makes a StatusError match ErrDevice.
func (e *StatusError) Is(target error) bool { return target == ErrDevice }

// ChecksumError is a verification mismatch over a flash range.
type ChecksumError struct {
	// Algo names the checksum ("CRC32", "MD5").
	Algo      string
	Addr, Len uint32
	Want, Got string
}

func (e *ChecksumError) Error() string {
	algo := e.Algo
	if algo == "" {
		algo = "checksum"
	}
	return fmt.Sprintf("%s mismatch over 0x%06X+0x%X: chip has %s, expected %s", algo, e.Addr, e.Len, e.Got, e.Want)
}

// Is makes a ChecksumError match ErrVerify.
func (e *ChecksumError) Is(target error) bool { return target == ErrVerify }

// HintError adds what the user should do next to an error.
type HintError struct {
	Err  error
	Hint string
}

func (e *HintError) Error() string { return e.Err.Error() }

func (e *HintError) Unwrap() error { return e.Err }

// Hint returns the user hint of the first HintError in err's chain.
func Hint(err error) string {
	var h *HintError
	if errors.As(err, &h) {
		return h.Hint
	}
	return ""
}
