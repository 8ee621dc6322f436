package espimage

import (
	"fmt"
	"strings"
)

// FlashMode is the SPI flash mode in header byte 2 (esptool cmds.py
// FLASH_MODES), or ModeKeep in a patch request.
type FlashMode int

// The flash modes. ModeKeep is not a header value: PatchHeader leaves the
// byte alone.
const (
	ModeKeep FlashMode = -1
	ModeQIO  FlashMode = 0
	ModeQOUT FlashMode = 1
	ModeDIO  FlashMode = 2
	ModeDOUT FlashMode = 3
)

var modeNames = map[FlashMode]string{ModeKeep: "keep", ModeQIO: "qio", ModeQOUT: "qout", ModeDIO: "dio", ModeDOUT: "dout"}

// String returns the esptool name ("dout" …) or "mode(N)" for a byte the
// table does not know.
func (m FlashMode) String() string {
	if s, ok := modeNames[m]; ok {
		return s
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// ParseFlashMode accepts keep, qio, qout, dio and dout in any case.
func ParseFlashMode(s string) (FlashMode, error) {
	for m, n := range modeNames {
		if strings.EqualFold(strings.TrimSpace(s), n) {
			return m, nil
		}
	}
	return ModeKeep, fmt.Errorf("unknown flash mode %q (use keep, qio, qout, dio or dout)", s)
}

// Set implements flag.Value (and pflag's) for a --flash-mode flag.
func (m *FlashMode) Set(s string) error {
	v, err := ParseFlashMode(s)
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// Type names the value for pflag's help output.
func (m *FlashMode) Type() string { return "mode" }

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *FlashMode) UnmarshalText(b []byte) error { return m.Set(string(b)) }

// MarshalText implements encoding.TextMarshaler.
func (m FlashMode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }
