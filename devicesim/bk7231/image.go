package bksim

// Layout of DefaultFlash (reference §9.1, §9.2).
const (
	defaultFlashSize = 2 << 20
	bootloaderEnd    = 0x11000 // bootloader 0x000000 + 0x11000
	appStart         = 0x11000
	// appLogical is how much (logical, before CRC framing) application
	// DefaultFlash writes: 704 KiB, a typical Tuya app size. Physically
	// it ends at 0x11000 + 0xBB000 = 0xCC000, inside both chips' app
	// partitions.
	appLogical = 0xB0000
	rfT        = 0x1E0000 // RF calibration "TLV" sector on BK7231T
	rfN        = 0x1D0000 // … and on BK7231N
)

// appSignature is how an app encrypted with the Tuya eFuse key starts at
// 0x11000 (`b #0x40; ldr pc,[pc,#0x14]` encrypted; reference §6, ltchiptool
// check_app_code_crc). DefaultFlash puts it first so that tools that look
// for an app find one.
var appSignature = [8]byte{0x2F, 0x07, 0xB5, 0x94, 0x35, 0xFF, 0x2A, 0x9B}

// RFOffset is where the RF calibration (TLV) sector of a 2 MiB Tuya module
// of chip starts; the MAC address sits 0x24 bytes into it.
func RFOffset(chip Chip) int {
	if chip == BK7231T {
		return rfT
	}
	return rfN
}

// splitmix64 is a small deterministic generator for synthetic flash
// contents (same output on every platform and Go version).
type splitmix64 uint64

func (s *splitmix64) next() uint64 {
	*s += 0x9E3779B97F4A7C15
	z := uint64(*s)
	z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
	z = (z ^ z>>27) * 0x94D049BB133111EB
	return z ^ z>>31
}

func (s *splitmix64) fill(p []byte) {
	for i := 0; i < len(p); i += 8 {
		v := s.next()
		for k := 0; k < 8 && i+k < len(p); k++ {
			p[i+k] = byte(v >> (8 * k))
		}
	}
}

// frameCRC16 lays logical bytes out in 34-byte units: 32 data bytes and their
// CRC-16/CMS, big-endian (reference §9.1). len(logical) must be a multiple of
// 32; the result is len(logical)/32*34 bytes.
func frameCRC16(logical []byte) []byte {
	out := make([]byte, 0, len(logical)/32*34)
	for i := 0; i+32 <= len(logical); i += 32 {
		unit := logical[i : i+32]
		c := crc16CMS(unit)
		out = append(out, unit...)
		out = append(out, byte(c>>8), byte(c))
	}
	return out
}

// DefaultFlash returns a synthetic 2 MiB image that looks like a Tuya module
// of chip without being anyone's code:
//   - 0x000000–0x010FFF: a "bootloader" of deterministic pseudo-random bytes
//     in CRC16 framing; its CRC matches no known bootloader, so a client has
//     to identify the protocol by probing (reference §6 step 2);
//   - from 0x011000: an application of 704 KiB logical pseudo-random content
//     in CRC16 framing, starting with the encrypted-app signature;
//   - at RFOffset(chip): an RF calibration sector with the "TLV\0" header and
//     a 0x11111100 group whose 0x11111102 entry holds mac at +0x24, the
//     structure found in real dumps (values are synthetic);
//   - everything else 0xFF.
//
// A zero mac means DefaultMAC.
func DefaultFlash(chip Chip, mac [6]byte) []byte {
	if mac == ([6]byte{}) {
		mac = DefaultMAC
	}
	img := make([]byte, defaultFlashSize)
	for i := range img {
		img[i] = 0xFF
	}
	rng := splitmix64(0x42_4B_37_32_33_31_00 + uint64(chip))

	boot := make([]byte, bootloaderEnd/34*32) // 2048 units fill the area exactly
	rng.fill(boot)
	copy(img, frameCRC16(boot))

	app := make([]byte, appLogical)
	rng.fill(app)
	copy(app, appSignature[:])
	copy(img[appStart:], frameCRC16(app))

	writeTLV(img[RFOffset(chip):], mac, &rng)
	return img
}

// writeTLV writes an RF calibration sector: "TLV\0", u32 length of what
// follows, then one group 0x11111100 of seven tag/length/value entries
// (tags 0x11111101–0x11111107; 0x11111102 = MAC). Tags and lengths mirror the
// real dumps; the values other than the MAC are pseudo-random.
func writeTLV(dst []byte, mac [6]byte, rng *splitmix64) {
	var body []byte
	entry := func(tag uint32, val []byte) {
		body = append(body, put32(tag)...)
		body = append(body, put32(uint32(len(val)))...)
		body = append(body, val...)
	}
	rand := func(n int) []byte {
		b := make([]byte, n)
		rng.fill(b)
		return b
	}
	entry(0x11111101, rand(4))
	entry(0x11111102, mac[:])
	for tag := uint32(0x11111103); tag <= 0x11111106; tag++ {
		entry(tag, rand(4))
	}
	entry(0x11111107, rand(8))
	group := body
	body = nil
	entry(0x11111100, group)

	out := append([]byte("TLV\x00"), put32(uint32(len(body)))...)
	out = append(out, body...)
	copy(dst, out)
}
