package appsim

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// macAddr is a station MAC.
type macAddr [6]byte

// String is the usual upper-case colon form, AA:BB:CC:DD:EE:FF.
func (m macAddr) String() string {
	return fmt.Sprintf("%02X:%02X:%02X:%02X:%02X:%02X", m[0], m[1], m[2], m[3], m[4], m[5])
}

// parseMAC reads AA:BB:CC:DD:EE:FF, aa-bb-…, or 12 hex digits.
func parseMAC(s string) (macAddr, error) {
	var m macAddr
	h := strings.NewReplacer(":", "", "-", "", ".", "").Replace(strings.TrimSpace(s))
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 6 {
		return m, fmt.Errorf("appsim: %q is not a MAC address", s)
	}
	copy(m[:], b)
	return m, nil
}

// bekenDefaultMAC is the MAC a Beken chip reports when its RF sector is
// gone: C8:47:8C:00:00:00 (OpenBK7231T_App issues #227 and #20;
// bk7231-protocol.md §9.5).
var bekenDefaultMAC = macAddr{0xC8, 0x47, 0x8C, 0, 0, 0}

// The Beken RF calibration sector is a TLV list (the layout bk7231tools,
// ltchiptool and BK7231GUIFlashTool read; checked against the real dumps
// in ../shared/testdata/bk7231): "TLV\0", a little-endian u32 with the
// length of what follows, then items of tag u32, length u32 and value. The
// item 0x11111100 groups the chip settings; inside it, 0x11111102 holds
// the 6-byte MAC (at 0x24 from the start of the sector, where
// BK7231GUIFlashTool's RF_MAC_OFS = 36 reads it).
const (
	tlvMagic    = "TLV\x00"
	tlvChipItem = 0x11111100
	tlvMACItem  = 0x11111102
	sectorSize  = 4096
)

// rfMAC reads the MAC from the first RF sector in offs that holds one.
func rfMAC(f Flash, offs []int64) (macAddr, int64, bool) {
	buf := make([]byte, sectorSize)
	for _, off := range offs {
		if off+sectorSize > int64(f.Size()) {
			continue
		}
		if _, err := f.ReadAt(buf, off); err != nil {
			continue
		}
		if m, ok := tlvMAC(buf); ok {
			return m, off, true
		}
	}
	return macAddr{}, 0, false
}

// tlvMAC walks one RF sector.
func tlvMAC(b []byte) (macAddr, bool) {
	if len(b) < 8 || string(b[:4]) != tlvMagic {
		return macAddr{}, false
	}
	end := 8 + int(binary.LittleEndian.Uint32(b[4:]))
	if end > len(b) {
		end = len(b)
	}
	for p := 8; p+8 <= end; {
		tag, n := binary.LittleEndian.Uint32(b[p:]), int(binary.LittleEndian.Uint32(b[p+4:]))
		if n < 0 || p+8+n > end {
			return macAddr{}, false
		}
		if tag == tlvChipItem {
			val := b[p+8 : p+8+n]
			for q := 0; q+8 <= len(val); {
				t, l := binary.LittleEndian.Uint32(val[q:]), int(binary.LittleEndian.Uint32(val[q+4:]))
				if l < 0 || q+8+l > len(val) {
					break
				}
				if t == tlvMACItem && l == 6 {
					var m macAddr
					copy(m[:], val[q+8:])
					return m, true
				}
				q += 8 + l
			}
		}
		p += 8 + n
	}
	return macAddr{}, false
}
