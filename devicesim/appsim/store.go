package appsim

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
)

// settings is everything the simulated firmware keeps across a reboot. It
// lives in the firmware's own config sector (chipInfo.config), in the
// simulator's own format, not the real firmware's:
//
//	0   "TFAPPSIM"
//	8   length of the JSON, u32 little-endian
//	12  CRC-32 (IEEE) of the JSON, u32 little-endian
//	16  the JSON; the rest of the 4 KiB sector is 0xFF
//
// Each firmware reads only settings it wrote itself (Firmware), as the
// real ones check their own magic: Tasmota written over ESPHome starts
// from its defaults.
type settings struct {
	Firmware  string    `json:"firmware"`
	SSID      [2]string `json:"ssid"`
	Password  [2]string `json:"password"`
	BootCount int       `json:"boot_count"`

	// Tasmota.
	DeviceName   string   `json:"device_name,omitempty"`
	FriendlyName []string `json:"friendly_name,omitempty"`
	Hostname     string   `json:"hostname,omitempty"`
	Module       int      `json:"module,omitempty"`
	Template     string   `json:"template,omitempty"`
	WebPassword  string   `json:"web_password,omitempty"`
	// NoReferer is Tasmota's SetOption128 (HTTP API without the Referer
	// check).
	NoReferer bool   `json:"so128,omitempty"`
	Power     uint32 `json:"power,omitempty"`

	// OpenBeken.
	ShortName string `json:"short_name,omitempty"`
	LongName  string `json:"long_name,omitempty"`
	Roles     []int  `json:"roles,omitempty"`
	Channels  []int  `json:"channels,omitempty"`
	Channels2 []int  `json:"channels2,omitempty"`
	Flags     int64  `json:"flags,omitempty"`
	StartCmd  string `json:"startcmd,omitempty"`
}

const storeMagic = "TFAPPSIM"

var errNoSettings = errors.New("no settings")

// loadSettings reads the sector at off; errNoSettings when it holds none
// (erased, another firmware's data, damaged).
func loadSettings(f Flash, off int64) (*settings, error) {
	if off+sectorSize > int64(f.Size()) {
		return nil, fmt.Errorf("the config sector 0x%X lies beyond the %d KiB flash", off, f.Size()>>10)
	}
	b := make([]byte, sectorSize)
	if _, err := f.ReadAt(b, off); err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(b, []byte(storeMagic)) {
		return nil, errNoSettings
	}
	n := int(binary.LittleEndian.Uint32(b[8:]))
	if n > sectorSize-16 {
		return nil, errNoSettings
	}
	j := b[16 : 16+n]
	if crc32.ChecksumIEEE(j) != binary.LittleEndian.Uint32(b[12:]) {
		return nil, errNoSettings
	}
	var s settings
	if err := json.Unmarshal(j, &s); err != nil {
		return nil, errNoSettings
	}
	return &s, nil
}

// encodeSettings lays s out as its config sector.
func encodeSettings(s *settings) ([]byte, error) {
	j, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	if len(j) > sectorSize-16 {
		return nil, fmt.Errorf("the settings take %d bytes, more than a sector", len(j))
	}
	b := bytes.Repeat([]byte{0xFF}, sectorSize)
	copy(b, storeMagic)
	binary.LittleEndian.PutUint32(b[8:], uint32(len(j)))
	binary.LittleEndian.PutUint32(b[12:], crc32.ChecksumIEEE(j))
	copy(b[16:], j)
	return b, nil
}

// saveSettings writes s to the sector at off (Flash.WriteAt erases it
// first).
func saveSettings(f Flash, off int64, s *settings) error {
	if off+sectorSize > int64(f.Size()) {
		return fmt.Errorf("the config sector 0x%X lies beyond the %d KiB flash", off, f.Size()>>10)
	}
	b, err := encodeSettings(s)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(b, off)
	return err
}
