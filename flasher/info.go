package flasher

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// Family is a chip family tuyaflash can flash.
type Family string

// The supported families.
const (
	BK7231N Family = "BK7231N"
	BK7231T Family = "BK7231T"
	// BK7231M is a BK7231N (same chip id, same flash layout) with an
	// all-zero eFuse key, also sold as BL2028N. Detection reports such a
	// chip as Family BK7231N with EfuseKey "zero" and Model "BK7231M", so
	// that backups and catalogue entries keyed by BK7231N keep matching;
	// the value names the chip where a user or a catalogue asks for it.
	BK7231M Family = "BK7231M"
	// BK7238 is the chip of Tuya's T1 modules (T1-2S, T1-3S, T1-LC5 …).
	BK7238 Family = "BK7238"
	// BK7231U and BK7252 answer from their flash bootloader with the
	// BASIC_BEKEN command subset (cameras, displays).
	BK7231U Family = "BK7231U"
	BK7252  Family = "BK7252"
	// BK7252N (Tuya "T4") is known from BK7231GUIFlashTool only.
	BK7252N Family = "BK7252N"
	ESP8266 Family = "ESP8266"
	ESP8285 Family = "ESP8285"
)

// Families lists every family, Beken first.
var Families = []Family{BK7231N, BK7231T, BK7231M, BK7238, BK7231U, BK7252, BK7252N, ESP8266, ESP8285}

// ParseFamily accepts a family name in any case ("bk7238"); ok is false
// for a name that is none of Families.
func ParseFamily(s string) (Family, bool) {
	for _, f := range Families {
		if strings.EqualFold(strings.TrimSpace(s), string(f)) {
			return f, true
		}
	}
	return "", false
}

// Beken reports whether f is a Beken BK72xx family.
func (f Family) Beken() bool {
	switch f {
	case BK7231N, BK7231T, BK7231M, BK7238, BK7231U, BK7252, BK7252N:
		return true
	}
	return false
}

// Espressif reports whether f is an ESP8266-class family.
func (f Family) Espressif() bool { return f == ESP8266 || f == ESP8285 }

// Info describes a connected chip as detect reports it.
type Info struct {
	Family Family `json:"family"`
	// Model is the chip's own name where the chip table knows it:
	// "BK7231M" for a BK7231N with an all-zero eFuse key, "BK7238" …;
	// "" where it is Family.
	Model string `json:"model,omitempty"`
	// Protocol names the code that answers the UART and its command
	// set, e.g. "BootROM (FULL)", "bootloader BK7231S_1.0.5
	// (BASIC_TUYA)", "ROM loader", "stub".
	Protocol string `json:"protocol"`
	// Bootloader identifies the bootloader in flash where it can be told
	// (Beken: by the CRC of its first bytes), else "unknown (…)".
	Bootloader string `json:"bootloader,omitempty"`
	// ChipID is the chip's id register where it has one.
	ChipID uint32 `json:"chip_id,omitempty"`
	// FlashID is the JEDEC id as MFR, TYPE, CAP bytes; zero when the chip
	// cannot tell.
	FlashID   [3]byte `json:"-"`
	FlashName string  `json:"flash_name,omitempty"`
	FlashSize int     `json:"flash_size"`
	// FlashSizeFrom says how the size was found ("JEDEC id",
	// "bootloader table", …).
	FlashSizeFrom string `json:"flash_size_from"`
	MAC           MAC    `json:"-"`
	// MACFrom says where the MAC came from ("RF calibration sector at
	// 0x1D0000", "eFuse"); empty when no MAC was found.
	MACFrom string `json:"mac_from,omitempty"`
	// EfuseKey is "tuya", "zero" or "other" on chips whose encryption key
	// can be read, "" elsewhere.
	EfuseKey string `json:"efuse_key,omitempty"`
	// EfuseKeyFrom says how EfuseKey is known: "eFuse registers", or the
	// bootloader table when the chip cannot read its key out (the key a
	// known bootloader was built for).
	EfuseKeyFrom string `json:"efuse_key_from,omitempty"`
	// CrystalMHz is the ESP8266 crystal frequency.
	CrystalMHz int `json:"crystal_mhz,omitempty"`
	// Baud is the rate the link runs at after negotiation.
	Baud int `json:"baud"`
	// Notes are warnings for the user (placeholder MAC, unknown
	// bootloader, fallback baud …).
	Notes []string `json:"notes,omitempty"`
	// Virtual is set when the chip is one of tuyaflash's simulators: it
	// answered the virtual-identification command (contract C2). Nil for
	// a real chip, and when the question was not asked.
	Virtual *Virtual `json:"virtual,omitempty"`
}

// FlashIDString formats the JEDEC id as "EB6015", or "" when unknown.
func (i Info) FlashIDString() string {
	if i.FlashID == [3]byte{} {
		return ""
	}
	return fmt.Sprintf("%02X%02X%02X", i.FlashID[0], i.FlashID[1], i.FlashID[2])
}

// HasMAC reports whether a MAC was read.
func (i Info) HasMAC() bool { return i.MACFrom != "" }

// Device is a chip in download mode, connected and identified. Both
// families implement it; cmd/tuyaflash and the plan code use only this.
type Device interface {
	// Info describes the chip.
	Info() Info
	// Read streams size bytes of flash from addr to w, verified against
	// the chip's own checksum.
	Read(ctx context.Context, addr, size uint32, w io.Writer, p Progress) error
	// Write erases what data needs, writes it at addr and verifies it.
	Write(ctx context.Context, addr uint32, data []byte, p Progress) (WriteResult, error)
	// Verify checks that the flash at addr holds data, using the chip's
	// own checksum; ErrVerify (a *ChecksumError) when it does not.
	Verify(ctx context.Context, addr uint32, data []byte) error
	// Reboot leaves download mode and starts the firmware where the chip
	// can do that by command; Manual reports when the user must
	// power-cycle instead.
	Reboot(ctx context.Context) (manual string, err error)
}

// WriteResult reports what a write did.
type WriteResult struct {
	Addr     uint32 `json:"addr"`
	Size     int    `json:"size"`
	Erased   int    `json:"erased_bytes"`
	Skipped  int    `json:"skipped_bytes"` // blocks already holding the data
	Retries  int    `json:"retries"`
	Verified bool   `json:"verified"`
	// VerifyMethod names the check ("CRC32 on chip", "MD5 on chip",
	// "ROM block checksum only").
	VerifyMethod string `json:"verify_method"`
}
