package firmware

import (
	"errors"
	"fmt"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/internal/termsafe"
)

// ErrChecksum: a file's sha256 or size differs from what the catalogue or
// the cache's pin file expects. Errors of this kind also match
// flasher.ErrRefused.
var ErrChecksum = errors.New("checksum mismatch")

// ErrNotCached: offline, and the cache does not hold the file.
var ErrNotCached = errors.New("not in the firmware cache")

// RefusalError is a safety gate refusing an image: Reason says why, Flag
// names the command-line flag that would change the decision ("" when no
// flag does). It matches flasher.ErrRefused; refusals come wrapped in a
// *flasher.HintError that says what to do instead.
type RefusalError struct {
	Reason string
	Flag   string
}

func (e *RefusalError) Error() string {
	if e.Flag != "" {
		return fmt.Sprintf("refused: %s (%s changes this)", e.Reason, e.Flag)
	}
	return "refused: " + e.Reason
}

// Is makes a RefusalError match flasher.ErrRefused.
func (e *RefusalError) Is(target error) bool { return target == flasher.ErrRefused }

// refuse builds a refusal with its hint.
func refuse(flag, hint, format string, args ...any) error {
	// The reason may quote the image (a header's name or version):
	// shown with visible escapes.
	err := &RefusalError{Reason: termsafe.Clean(fmt.Sprintf(format, args...)), Flag: flag}
	if hint == "" {
		return err
	}
	return &flasher.HintError{Err: err, Hint: hint}
}

// checksumError is a sha256 or size mismatch; it is a refusal too.
type checksumError struct{ msg string }

func (e *checksumError) Error() string { return e.msg }

func (e *checksumError) Is(target error) bool {
	return target == ErrChecksum || target == flasher.ErrRefused
}

func checksumf(hint, format string, args ...any) error {
	return &flasher.HintError{Err: &checksumError{fmt.Sprintf(format, args...)}, Hint: hint}
}
