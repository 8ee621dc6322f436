package flasher

import (
	"fmt"
	"net"
	"strings"
)

// MAC is a 6-byte hardware address.
type MAC [6]byte

// String formats m as AA:BB:CC:DD:EE:FF.
func (m MAC) String() string {
	return fmt.Sprintf("%02X:%02X:%02X:%02X:%02X:%02X", m[0], m[1], m[2], m[3], m[4], m[5])
}

// Compact formats m as aabbccddeeff, for file and folder names.
func (m MAC) Compact() string {
	return strings.ToLower(strings.ReplaceAll(m.String(), ":", ""))
}

// ParseMAC accepts AA:BB:CC:DD:EE:FF, aa-bb-…, and aabbccddeeff.
func ParseMAC(s string) (MAC, error) {
	var m MAC
	s = strings.TrimSpace(s)
	if len(s) == 12 && !strings.ContainsAny(s, ":-") {
		s = s[0:2] + ":" + s[2:4] + ":" + s[4:6] + ":" + s[6:8] + ":" + s[8:10] + ":" + s[10:12]
	}
	hw, err := net.ParseMAC(strings.ReplaceAll(s, "-", ":"))
	if err != nil || len(hw) != 6 {
		return m, fmt.Errorf("invalid MAC address %q", s)
	}
	copy(m[:], hw)
	return m, nil
}

// placeholderMACs are addresses that many devices share, so they never
// identify one device: the all-zero and all-one addresses, the Beken default
// left when the RF sector is erased (OpenBeken issue #227) and the Espressif
// OUI with a zero device part.
var placeholderMACs = map[MAC]string{
	{}:                                   "all zero",
	{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}: "all ones (erased)",
	{0xC8, 0x47, 0x8C, 0x00, 0x00, 0x00}: "Beken default (RF calibration sector missing)",
	{0x18, 0xFE, 0x34, 0x00, 0x00, 0x00}: "Espressif placeholder",
}

// Placeholder reports whether m is a known shared placeholder address, and
// why.
func (m MAC) Placeholder() (bool, string) {
	why, ok := placeholderMACs[m]
	return ok, why
}
