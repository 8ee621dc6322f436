package espsim

import (
	"bytes"
	"crypto/aes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"strings"
	"unicode/utf8"
)

// The stock flash: what a Tuya ESP8266 module (TYWE2S/TYWE3S class) holds
// when it leaves the factory, generated, never copied from a dump.
//
// Layout for a flash of S bytes (S ≥ 1 MiB; smaller flashes get the same
// without the PSM):
//
//	0x000000  SDK second-stage bootloader (boot_v1.x): a V1 image (0xE9),
//	          one IRAM segment at 0x4010F000, checksummed (reference §11.1)
//	0x001000  user1.bin: a V2 image (0xEA) as the Tuya SDK (Espressif's
//	          NONOS SDK with OTA) ships it: IROM segment, then a V1 header
//	          with three RAM segments, checksum, SDK CRC32 (reference §11.2)
//	0x07B000  Tuya's PSM config, one 4 KiB sector (more-chips.md §4)
//	S-0x5000  RF calibration sector
//	S-0x4000  esp_init_data (128 bytes; byte 0 = 0x05)
//	S-0x3000  SDK system parameters (three sectors)
//
// The RF/init/system positions are the NONOS SDK's: "In old SDK, we use
// (max_sec - 3) as init data sector, and (max_sec - 4) as cal data sector"
// (ESP8266_RTOS_SDK commit 3aef2e7, components/esp8266/Makefile.projbuild;
// max_sec is the last sector's index, so 0xFC000 and 0xFB000 on 1 MiB),
// the system parameters in the last three sectors, where esptool users
// write blank.bin at 0xFE000 (esp32.com forum t=44458: rf_cal_sec 251 for
// a 1 MiB ESP-01). The SDK requires byte 0 of esp_init_data to be 5 (the
// "rf_cal[0] != 0x05" hang, nodemcu-firmware app/include). All other
// contents of these sectors, and all code bytes, are synthetic: random
// bytes that compress about as well as Xtensa code does.

// StockTuyaMarker opens the ASCII marker the stock image carries in its
// application's flash-mapped (IROM) segment, 64 bytes into it (file
// offset 0x1050): the marker, a JSON object and a NUL, e.g.
//
//	TUYAFLASH-SIM-STOCK-TUYA {"firmware":"tuya-stock","sdk":"esp8266-nonos","version":"sim-1","chip":"ESP8266"}
//
// The simulated firmware side recognises stock Tuya firmware by it and
// runs it as stock firmware: no local HTTP API. Real stock images carry
// no such marker.
const StockTuyaMarker = "TUYAFLASH-SIM-STOCK-TUYA "

// PSMOffset is where Tuya's ESP8266 firmware keeps its PSM config
// (more-chips.md §4: "usually at 0x7B000").
const PSMOffset = 0x7B000

// DefaultPSMKeyByte is the X of the PSM key "Qby6" + X + "TH9bj8GiexU"
// in the default stock image. Real devices' X is unknown (more-chips.md
// §4: found by trying all 256 values); this one is arbitrary.
const DefaultPSMKeyByte = 0x5A

// PSMKey returns the AES-128 key of Tuya's ESP8266 PSM with x as its
// fifth byte (more-chips.md §4).
func PSMKey(x byte) [16]byte {
	var k [16]byte
	copy(k[:], "Qby6")
	k[4] = x
	copy(k[5:], "TH9bj8GiexU")
	return k
}

// Virtual home network credentials of contract C3: the stock device was
// set up on this network, so credentials carried over from its config
// bring the new firmware onto the virtual network.
const (
	VirtualSSID     = "tuyaflash-virtual"
	VirtualPassword = "virtual-bench"
)

// Stock describes the stock Tuya module StockFlash generates.
type Stock struct {
	Chip Chip
	// Size is the flash size; 0 means 1 MiB.
	Size int
	// MAC is the module's MAC (the PSM's identity is derived from it);
	// zero means the chip's default MAC (Config.MAC).
	MAC [6]byte
	// PlainPSM stores the PSM unencrypted (Tuya firmware does both).
	PlainPSM bool
	// PSMKeyByte is the X of the PSM key; 0 means DefaultPSMKeyByte.
	PSMKeyByte byte
	// SSID and Password are the home Wi-Fi the stock device was set up
	// with; empty means VirtualSSID / VirtualPassword.
	SSID, Password string
}

// TuyaDevice is the identity StockFlash writes into the PSM. All values
// are synthetic and say so ("tfsim", "SIM").
type TuyaDevice struct {
	DevID, LocalKey, UUID, AuthKey, ProductKey, SSID, Password string
}

func (s Stock) withDefaults() Stock {
	if s.Size == 0 {
		s.Size = defaultFlashSize
	}
	if s.MAC == ([6]byte{}) {
		s.MAC = defaultMAC(s.Chip)
	}
	if s.PSMKeyByte == 0 {
		s.PSMKeyByte = DefaultPSMKeyByte
	}
	if s.SSID == "" {
		s.SSID = VirtualSSID
	}
	if s.Password == "" {
		s.Password = VirtualPassword
	}
	return s
}

// Device returns the identity StockFlash writes for s: deterministic per
// MAC.
func (s Stock) Device() TuyaDevice {
	s = s.withDefaults()
	h := sha256.Sum256(append([]byte("espsim stock tuya device "), s.MAC[:]...))
	x := hex.EncodeToString(h[:])
	return TuyaDevice{
		DevID:      "tfsim0" + hex.EncodeToString(s.MAC[:]) + "01",
		LocalKey:   "sim" + x[:13],
		UUID:       "tfsim" + x[13:24],
		AuthKey:    "SIMAUTH" + strings.ToUpper(x[24:49]),
		ProductKey: "tfsimprod" + x[49:56],
		SSID:       s.SSID,
		Password:   s.Password,
	}
}

// PSMEntries returns the key=value strings of the PSM, in order:
//
//	gw_bi={"uuid":…,"auth_key":…,"ap_ssid":"SmartLife","prod_test":false}
//	gw_di={"id":<devId>,"local_key":…,"product_key":…}
//	gw_wsm={"ssid":…,"passwd":…,"nc_tp":2}
//	ty_ws_prod_key=<product key>
//	device_id=<devId>
//	local_key=<local key>
//	ssid=<home Wi-Fi>
//	passwd=<its password>
//
// The key names follow what more-chips.md §4 says the region contains
// (ty_ws_, device_, gw_, local_key, ssid, passwd); the values are those of
// Device.
func (s Stock) PSMEntries() [][2]string {
	t := s.Device()
	return [][2]string{
		{"gw_bi", fmt.Sprintf(`{"uuid":%q,"auth_key":%q,"ap_ssid":"SmartLife","prod_test":false}`, t.UUID, t.AuthKey)},
		{"gw_di", fmt.Sprintf(`{"id":%q,"local_key":%q,"product_key":%q}`, t.DevID, t.LocalKey, t.ProductKey)},
		{"gw_wsm", fmt.Sprintf(`{"ssid":%q,"passwd":%q,"nc_tp":2}`, t.SSID, t.Password)},
		{"ty_ws_prod_key", t.ProductKey},
		{"device_id", t.DevID},
		{"local_key", t.LocalKey},
		{"ssid", t.SSID},
		{"passwd", t.Password},
	}
}

// encodePSM lays out one PSM sector: "PSM1", NUL, then each "key=value"
// followed by a NUL, padded with 0xFF to 4 KiB; with a key, the whole
// sector is encrypted with AES-128-ECB (the "PSM1" header inside the
// encrypted data, more-chips.md §4).
func encodePSM(entries [][2]string, key *[16]byte) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("PSM1\x00")
	for _, e := range entries {
		sep := func(r rune) bool { return r == 0 || r == utf8.RuneError }
		if strings.ContainsRune(e[0], '=') || strings.ContainsFunc(e[0], sep) || strings.ContainsFunc(e[1], sep) {
			return nil, fmt.Errorf("espsim: PSM entry %q holds a separator", e[0])
		}
		b.WriteString(e[0] + "=" + e[1] + "\x00")
	}
	if b.Len() > sectorSize {
		return nil, errors.New("espsim: PSM entries do not fit in one sector")
	}
	sec := append(b.Bytes(), bytes.Repeat([]byte{0xFF}, sectorSize-b.Len())...)
	if key == nil {
		return sec, nil
	}
	blk, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	for i := 0; i < len(sec); i += aes.BlockSize {
		blk.Encrypt(sec[i:i+aes.BlockSize], sec[i:i+aes.BlockSize])
	}
	return sec, nil
}

// DefaultFlash returns the stock flash of a simulated module of size bytes
// (0 = 1 MiB) with the chip's default MAC: StockFlash(Stock{Chip: chip,
// Size: size}). A size StockFlash cannot lay out gives that many 0xFF
// bytes (which New then refuses if the size is wrong).
func DefaultFlash(chip Chip, size int) []byte {
	f, err := StockFlash(Stock{Chip: chip, Size: size})
	if err != nil {
		return bytes.Repeat([]byte{0xFF}, max(size, 0))
	}
	return f
}

// StockFlash returns the flash of a stock Tuya module (layout above). The
// contents depend only on s: code bytes on chip and size, the PSM on the
// MAC and the options.
func StockFlash(s Stock) ([]byte, error) {
	s = s.withDefaults()
	size := s.Size
	if size < 256*kib || size%sectorSize != 0 || size > maxFlashSize {
		return nil, fmt.Errorf("espsim: no stock layout for a %d-byte flash", size)
	}
	f := bytes.Repeat([]byte{0xFF}, size)
	r := rand.New(rand.NewPCG(0x8266, uint64(s.Chip)<<32|uint64(size)))
	mode := byte(2) // DIO
	if s.Chip == ESP8285 {
		mode = 3 // DOUT: the ESP8285's flash is wired for it (reference §11.5)
	}
	sizeFreq := imageSizeNibble(size) << 4 // low nibble 0: 40 MHz
	boot := buildV1(mode, sizeFreq, defaultBootEntry, []segment{
		{addr: 0x4010F000, data: codeBytes(r, 0xE20)},
	})
	copy(f, boot)

	irom := codeBytes(r, min(0x50000, size*3/10))
	marker := fmt.Sprintf(`%s{"firmware":"tuya-stock","sdk":"esp8266-nonos","version":"sim-1","chip":%q}`+"\x00", StockTuyaMarker, strings.ToUpper(s.Chip.String()))
	copy(irom[0x40:], marker)
	copy(irom[0x200:], "\x00tuya_iot_wf_soc_dev_init\x00ty_ws_\x00gw_bi\x00gw_di\x00local_key\x00"+
		"< TUYA IOT SDK (tuyaflash simulator, synthetic) >\x00")
	app := buildV2(mode, sizeFreq, defaultAppEntry, irom, []segment{
		{addr: 0x40100000, data: codeBytes(r, 0x6A00)},
		{addr: 0x3FFE8000, data: codeBytes(r, 0x520)},
		{addr: 0x3FFE8520, data: codeBytes(r, 0x1600)},
	})
	limit := size - 0x5000
	if size >= defaultFlashSize {
		limit = PSMOffset
	}
	if defaultAppOffset+len(app) > limit {
		return nil, fmt.Errorf("espsim: the stock application does not fit a %d-byte flash", size)
	}
	copy(f[defaultAppOffset:], app)

	if size >= defaultFlashSize {
		var key *[16]byte
		if !s.PlainPSM {
			k := PSMKey(s.PSMKeyByte)
			key = &k
		}
		psm, err := encodePSM(s.PSMEntries(), key)
		if err != nil {
			return nil, err
		}
		copy(f[PSMOffset:], psm)
	}

	mr := rand.New(rand.NewPCG(0x5246, uint64(s.MAC[0])<<40|uint64(s.MAC[1])<<32|uint64(s.MAC[2])<<24|uint64(s.MAC[3])<<16|uint64(s.MAC[4])<<8|uint64(s.MAC[5])))
	rfCal := f[size-0x5000:]
	for i := range 0x80 {
		rfCal[i] = byte(mr.IntN(256))
	}
	initData := f[size-0x4000:]
	initData[0] = 0x05
	for i := 1; i < 128; i++ {
		initData[i] = byte(r.IntN(16))
	}
	sys := f[size-0x3000:]
	for i := range 0x100 {
		sys[i] = byte(r.IntN(8))
	}
	f[size-0x1000] = 0x00 // system parameter flag: first copy valid
	return f, nil
}

// Layout of the stock image.
const (
	defaultBootEntry = 0x4010F000
	defaultAppOffset = 0x1000
	defaultAppEntry  = 0x40100004
)

// imageSizeNibble is the flash-size nibble of an ESP8266 image header
// (reference §11.1).
func imageSizeNibble(size int) byte {
	switch size {
	case 256 * kib:
		return 0x1
	case 512 * kib:
		return 0x0
	case 1 * mib:
		return 0x2
	case 2 * mib:
		return 0x3
	case 4 * mib:
		return 0x4
	case 8 * mib:
		return 0x8
	case 16 * mib:
		return 0x9
	}
	return 0x2
}

type segment struct {
	addr uint32
	data []byte
}

// appendSegments appends segment headers and data and returns the XOR
// checksum seed 0xEF folded over every data byte.
func appendSegments(img []byte, segs []segment) ([]byte, byte) {
	sum := byte(0xEF)
	for _, s := range segs {
		img = le32(img, s.addr)
		img = le32(img, uint32(len(s.data)))
		img = append(img, s.data...)
		for _, b := range s.data {
			sum ^= b
		}
	}
	return img, sum
}

// padChecksum pads img (an image starting at offset 0 of img) with zeros
// so that its length is 15 mod 16 and appends the checksum byte.
func padChecksum(img []byte, sum byte) []byte {
	for len(img)%16 != 15 {
		img = append(img, 0)
	}
	return append(img, sum)
}

// buildV1 lays out a V1 ESP8266 image: 8-byte header, segments (load
// address, size, data), zero padding so that the length is 15 mod 16,
// then the checksum byte 0xEF ^ every segment data byte (reference
// §11.1).
func buildV1(mode, sizeFreq byte, entry uint32, segs []segment) []byte {
	img := []byte{0xE9, byte(len(segs)), mode, sizeFreq}
	img = le32(img, entry)
	img, sum := appendSegments(img, segs)
	return padChecksum(img, sum)
}

// buildV2 lays out a V2 (SDK OTA) image (reference §11.2, esptool
// bin_image.py ESP8266V2FirmwareImage): header EA 04 mode size-freq
// entry, the IROM segment with load address 0 (padded to 16 bytes), a V1
// header and the RAM segments, padding and the checksum of the RAM
// segments, then the SDK CRC32 of everything before it.
func buildV2(mode, sizeFreq byte, entry uint32, irom []byte, segs []segment) []byte {
	for len(irom)%16 != 0 {
		irom = append(irom, 0)
	}
	img := []byte{0xEA, 0x04, mode, sizeFreq}
	img = le32(img, entry)
	img = le32(img, 0)
	img = le32(img, uint32(len(irom)))
	img = append(img, irom...)
	img = append(img, 0xE9, byte(len(segs)), mode, sizeFreq)
	img = le32(img, entry)
	img, sum := appendSegments(img, segs)
	img = padChecksum(img, sum)
	return le32(img, sdkCRC(img))
}

// sdkCRC is the CRC the SDK bootloader checks after a V2 image: the zlib
// CRC-32, inverted when its top bit is set, else plus one (reference
// §11.2).
func sdkCRC(b []byte) uint32 {
	c := crc32.ChecksumIEEE(b)
	if c&0x80000000 != 0 {
		return c ^ 0xFFFFFFFF
	}
	return c + 1
}

// codeBytes returns n (rounded up to 4) bytes that compress about as well
// as Xtensa code does: short random runs over a skewed alphabet.
func codeBytes(r *rand.Rand, n int) []byte {
	n = (n + 3) &^ 3
	b := make([]byte, n)
	for i := 0; i < n; {
		run := 1 + r.IntN(6)
		v := byte(r.IntN(256))
		if r.IntN(3) > 0 {
			v &= 0x3F
		}
		for ; run > 0 && i < n; run-- {
			b[i] = v
			i++
		}
	}
	return b
}

// romBootCheck is what the mask ROM checks before it runs the image at
// 0x0 when the chip boots from flash: a V1 header (magic 0xE9, 1 to 16
// segments), every segment inside the flash and loading into RAM (IRAM
// 0x40100000-0x40110000 or DRAM 0x3FFE8000-0x40000000, esptool's
// MEMORY_MAP for the data side), and the XOR checksum (reference §11.1).
// What the loaded code then does (a second-stage bootloader loading
// user1.bin, Arduino's eboot) is the firmware's business.
func romBootCheck(flash []byte) error {
	if len(flash) < 8 || flash[0] != 0xE9 {
		return errors.New("no image at 0x0 (magic byte is not 0xE9): nothing boots")
	}
	n := int(flash[1])
	if n == 0 || n > 16 {
		return fmt.Errorf("image at 0x0 has %d segments: nothing boots", n)
	}
	dram := span{0x3FFE8000, 0x18000}
	p, sum := 8, byte(0xEF)
	for i := range n {
		if p+8 > len(flash) {
			return fmt.Errorf("segment %d header beyond the flash", i)
		}
		addr, size := getLE32(flash[p:]), getLE32(flash[p+4:])
		if uint64(p)+8+uint64(size) > uint64(len(flash)) {
			return fmt.Errorf("segment %d (0x%08X, %d bytes) runs past the flash", i, addr, size)
		}
		s := span{addr, size}
		if !iramWindow.contains(s) && !dram.contains(s) {
			return fmt.Errorf("segment %d loads at 0x%08X+0x%X, not into RAM: nothing boots", i, addr, size)
		}
		for _, b := range flash[p+8 : p+8+int(size)] {
			sum ^= b
		}
		p += 8 + int(size)
	}
	at := p | 15
	if at >= len(flash) {
		return errors.New("checksum byte beyond the flash")
	}
	if flash[at] != sum {
		return fmt.Errorf("csum err: stored 0x%02X, the segments give 0x%02X: nothing boots", flash[at], sum)
	}
	return nil
}

func le32(b []byte, v uint32) []byte {
	return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
}

func getLE32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}
