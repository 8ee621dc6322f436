package bksim

import (
	"encoding/json"
	"fmt"
	"sync"
)

// Layout of DefaultFlash (reference §9.1, §9.2; more-chips.md §2).
const (
	appStart = 0x11000
	// appLogical is how much (logical, before CRC framing) application
	// DefaultFlash writes: 704 KiB, a typical Tuya app size. Physically
	// it ends at 0x11000 + 0xBB000 = 0xCC000, inside every chip's app
	// partition.
	appLogical = 0xB0000
	// markerAt is where the stock-firmware marker sits in the logical
	// application, after the ARM vector area.
	markerAt = 0x200
)

// Signatures of the first 8 logical bytes of an application: the ARM code
// `b #0x40; ldr pc,[pc,#0x14]` (0xEA00000E, 0xE59FF014 little-endian) as an
// all-zero key leaves it (Beken's cipher is bypassed for that key), and the
// same code encrypted with the Tuya eFuse key (reference §6, ltchiptool
// check_app_code_crc).
var (
	appSigTuya  = [8]byte{0x2F, 0x07, 0xB5, 0x94, 0x35, 0xFF, 0x2A, 0x9B}
	appSigPlain = [8]byte{0x0E, 0x00, 0x00, 0xEA, 0x14, 0xF0, 0x9F, 0xE5}
)

// StockMarker starts the ASCII marker that the synthetic stock application
// carries so that the simulated firmware side can tell "stock Tuya
// firmware": StockMarker, a JSON object
// {"firmware":"tuya","version":StockVersion,"chip":"BK7231N"} and a NUL,
// at logical offset 0x200 of the application (after removing the CRC16
// framing: 32 data bytes of every 34). A real Tuya application is
// encrypted and carries no readable marker; this one is the simulator's.
const StockMarker = "TUYAFLASH-SIM-STOCK-FIRMWARE "

// StockVersion is the firmware version of the synthetic stock application,
// also stored as gw_di.swv in its Tuya storage.
const StockVersion = "1.1.4"

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

// macSeed folds a MAC into a generator seed.
func macSeed(chip Chip, mac [6]byte) splitmix64 {
	s := uint64(chip) << 48
	for _, b := range mac {
		s = s<<8 ^ uint64(b) ^ s>>56
	}
	g := splitmix64(s ^ 0x5455594153494D00)
	g.next()
	return g
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

// DefaultFlash returns the synthetic image of chip at its default flash
// size (see DefaultFlashSize); nil for an unknown chip.
func DefaultFlash(chip Chip, mac [6]byte) []byte {
	img, err := DefaultFlashSize(chip, mac, 0)
	if err != nil {
		return nil
	}
	return img
}

// DefaultFlashSize returns a synthetic image that is laid out like the
// flash of a stock Tuya module of chip without being anyone's code or data
// (0 size: the chip's default, 4 MiB on a BK7252, 2 MiB otherwise):
//   - 0x000000–0x010FFF: the simulator's own "bootloader", deterministic
//     pseudo-random bytes in CRC16 framing; its CRC (the profile's
//     fingerprint) matches no real bootloader, so a client has to identify
//     the protocol by probing (reference §6 step 2);
//   - from 0x011000: a 704 KiB (logical) application in CRC16 framing that
//     starts with the encrypted-app signature (Tuya key) or the plain ARM
//     vector (zero-key chips) and carries StockMarker at logical 0x200;
//     the rest is pseudo-random, as encrypted code looks;
//   - at RFOffset(chip): an RF calibration sector with the "TLV\0" header
//     and a 0x11111100 group whose 0x11111102 entry holds mac at +0x24, the
//     structure found in real dumps (other values synthetic);
//   - at TuyaStorageOffset(chip, size): Tuya's encrypted KV storage (key
//     block, data blocks with swap copies, reference §12.1) holding an
//     activated plug: gw_bi, gw_di (device id), gw_ai (local key), gw_wsm
//     (the home Wi-Fi), user_param_key (relay, button, network LED) and
//     em_sys_env, all clearly synthetic values derived from mac;
//   - everything else 0xFF.
//
// The same chip, mac and size always give the same bytes. A zero mac means
// DefaultMAC.
func DefaultFlashSize(chip Chip, mac [6]byte, size int) ([]byte, error) {
	p := chip.profile()
	if p == nil {
		return nil, fmt.Errorf("bksim: unknown chip %d", int(chip))
	}
	if size == 0 {
		size = p.size
	}
	if size < 2<<20 || size > 16<<20 || size&(size-1) != 0 {
		return nil, fmt.Errorf("bksim: synthetic flash of %d bytes: want 2, 4, 8 or 16 MiB", size)
	}
	if mac == ([6]byte{}) {
		mac = DefaultMAC
	}
	k := imageKey{chip, mac, size}
	images.mu.Lock()
	img, ok := images.m[k]
	images.mu.Unlock()
	if !ok {
		img = buildImage(chip, p, mac, size)
		images.mu.Lock()
		if len(images.m) >= 16 {
			clear(images.m)
		}
		images.m[k] = img
		images.mu.Unlock()
	}
	return append([]byte(nil), img...), nil
}

// images caches built images: tests and virtual devices build the same
// few over and over.
var images = struct {
	mu sync.Mutex
	m  map[imageKey][]byte
}{m: map[imageKey][]byte{}}

type imageKey struct {
	chip Chip
	mac  [6]byte
	size int
}

func buildImage(chip Chip, p *profile, mac [6]byte, size int) []byte {
	img := make([]byte, size)
	for i := range img {
		img[i] = 0xFF
	}
	copy(img, syntheticBootloader(p))

	rng := macSeed(chip, mac)
	app := make([]byte, appLogical)
	rng.fill(app)
	sig := appSigPlain
	if p.tuyaKey {
		sig = appSigTuya
	}
	copy(app, sig[:])
	copy(app[markerAt:], stockMarker(chip))
	copy(img[appStart:], frameCRC16(app))

	writeTLV(img[p.rf:], mac, &rng)

	kv := TuyaStorageOffset(chip, size)
	sectors := min(17, (size-kv)/sectorSize-1)
	writeTuyaStorage(img[kv:kv+(1+sectors)*sectorSize], tuyaDevice(chip, mac), sectors)
	return img
}

// syntheticBootloader is the simulator's own bootloader area of a chip:
// 0x11000 bytes, 2048 CRC16 units of pseudo-random data from the profile's
// seed (independent of the MAC, so that the fingerprint is the chip's).
func syntheticBootloader(p *profile) []byte {
	rng := splitmix64(p.seed)
	boot := make([]byte, bootloaderEnd/34*32) // 2048 units fill the area exactly
	rng.fill(boot)
	return frameCRC16(boot)
}

// stockMarker is the marker the synthetic stock application carries.
func stockMarker(chip Chip) []byte {
	js, _ := json.Marshal(map[string]string{"firmware": "tuya", "version": StockVersion, "chip": chip.String()})
	return append(append([]byte(StockMarker), js...), 0)
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
