package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tuyaflash/tuyaflash/backup"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/transport"
	"github.com/tuyaflash/tuyaflash/tuyaconfig"
)

// Exit codes, one table for every command.
const (
	ExitOK          = 0
	ExitFailure     = 1
	ExitUsage       = 2
	ExitNoDevice    = 3
	ExitRefused     = 4
	ExitVerify      = 5
	ExitUnsupported = 6
	ExitInterrupted = 130
)

// exitInfo is one row of the exit code table: README.md's "Exit codes"
// section and 'tuyaflash help' print the same rows (a test compares them).
type exitInfo struct {
	Code int
	// Name is the code of the JSON error object.
	Name    string
	Meaning string
}

var exitTable = []exitInfo{
	{ExitOK, "ok", "done"},
	{ExitFailure, "failure", "anything not below: a file that cannot be read or written, an error reported by the chip, a failed download"},
	{ExitUsage, "usage", "bad command line: unknown command or flag, a missing argument, a flag that does nothing in this combination"},
	{ExitNoDevice, "no_device", "no device: the port is missing or held by another program, or the chip (or the device on the network) did not answer"},
	{ExitRefused, "refused", "a safety check refused: a file for another chip or of unknown content, no backup on record, an existing output file, a write that would brick the device"},
	{ExitVerify, "verify_failed", "verification failed: the flash, a backup or the device on the network is not what it should be"},
	{ExitUnsupported, "unsupported", "the chip, the file format or the operation is not supported"},
	{ExitInterrupted, "interrupted", "interrupted by Ctrl-C or SIGTERM; the message says what state the device and the files are in"},
}

func exitName(code int) string {
	for _, x := range exitTable {
		if x.Code == code {
			return x.Name
		}
	}
	return "failure"
}

// exitCodeText renders the table for 'tuyaflash help'.
func exitCodeText() string {
	var b strings.Builder
	for _, x := range exitTable {
		fmt.Fprintf(&b, "  %3d  %-14s %s\n", x.Code, x.Name, x.Meaning)
	}
	return b.String()
}

// exitCode maps an error to the table.
func exitCode(err error) int {
	var ue *usageError
	var oe *transport.OpenError
	var ie *interruptError
	if err == nil {
		return ExitOK
	}
	if code, ok := quietCode(err); ok {
		// Already reported (migrate's table): its code is decided.
		return code
	}
	switch {
	case errors.As(err, &ue):
		return ExitUsage
	case errors.As(err, &ie), errors.Is(err, context.Canceled):
		return ExitInterrupted
	case errors.Is(err, flasher.ErrRefused), errors.Is(err, backup.ErrExists):
		return ExitRefused
	case errors.Is(err, flasher.ErrVerify), errors.Is(err, backup.ErrCorrupt):
		return ExitVerify
	case errors.Is(err, flasher.ErrNoLink), errors.As(err, &oe):
		return ExitNoDevice
	case errors.Is(err, flasher.ErrUnsupported), errors.Is(err, tuyaconfig.ErrUnsupportedFormat):
		return ExitUnsupported
	}
	return ExitFailure
}
