package bksim

import (
	"fmt"
	"strings"
)

// Chip selects which module is simulated. Each value is a row of the
// profile table below; adding a chip means adding a row.
type Chip int

// The simulated chips (more-chips.md §1, §2; bk7231-protocol.md §1, §6).
const (
	// BK7231N answers from its BootROM with the FULL protocol.
	BK7231N Chip = iota
	// BK7231T answers from the Tuya bootloader "BK7231S_1.0.5" with the
	// BASIC_TUYA protocol subset.
	BK7231T
	// BK7231M is a BK7231N (same BootROM, same chip id) with an all-zero
	// eFuse key (BK7231M, BL2028N).
	BK7231M
	// BK7238 (Tuya T1) answers from its BootROM with the FULL protocol,
	// chip id 0x7238, eFuse key zero.
	BK7238
	// BK7231U answers from a Beken bootloader with the BASIC_BEKEN subset.
	BK7231U
	// BK7252 answers from a Beken bootloader with the BASIC_BEKEN subset;
	// 2 or 4 MiB of flash, found by the host through the address wrap.
	BK7252
	// BK7252N (Tuya T4) answers from its BootROM with the FULL protocol,
	// chip id 0x7252A (BK7231GUIFlashTool only: unverified).
	BK7252N
)

// protocol is a command subset (bk7231tools BkProtocolType).
type protocol int

const (
	protoFull       protocol = iota // BootROM: FULL
	protoBasicBeken                 // Beken flash bootloader: BASIC_BEKEN
	protoBasicTuya                  // Tuya BK7231T bootloader: BASIC_TUYA
)

func (p protocol) String() string {
	switch p {
	case protoBasicBeken:
		return "BASIC_BEKEN"
	case protoBasicTuya:
		return "BASIC_TUYA"
	}
	return "FULL"
}

// Command subsets (reference §1; bk7231tools serial/base/enums.py).
var (
	fullShort  = []byte{0x00, 0x01, 0x03, 0x0E, 0x0F, 0x10, 0x70, 0xAA}
	fullLong   = []byte{0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F}
	basicShort = []byte{0x00, 0x0E, 0x0F, 0x10}
	tuyaShort  = []byte{0x00, 0x0E, 0x0F, 0x10, 0x11}
	basicLong  = []byte{0x06, 0x07, 0x09, 0x0F}
)

// profile is one row of the chip table: everything that differs between
// the simulated chips.
type profile struct {
	name  string   // "BK7231N"
	names []string // what ParseChip accepts, lower case
	proto protocol

	// FULL (BootROM) chips.
	chipID   uint32  // SCTRL_CHIP_ID at 0x800000
	deviceID uint32  // SCTRL_DEVICE_ID at 0x800004 (0: not known)
	flashID  [3]byte // default JEDEC MFR TYPE; CAP follows the flash size
	sr       uint16  // default flash status register SR2<<8|SR1
	// srLocks: the default flash part locks its status register on a
	// no-op write (P25Q16HBK on BK7238, reference §7.3).
	srLocks bool
	// tuyaKey: the eFuse key is Tuya's (else all zero); the synthetic
	// application is encrypted for it (else plain).
	tuyaKey bool

	// BASIC_TUYA: the ReadBootVersion answer.
	bootVersion string

	// Flash and layout of the synthetic image.
	size      int // default flash size
	rf        int // RF calibration (TLV, MAC at +0x24) sector
	kv4M, kv  int // Tuya KV key block on 4 MiB and smaller flashes
	platform  string
	module    string
	seed      uint64 // of the synthetic bootloader
	bootCRC   uint32 // standard CRC-32 of its first 257 (FULL) or 256 bytes
	sources   string // where the row comes from
	uncertain string // what rests on one source or none
}

// profiles is the chip table. The synthetic bootloaders' fingerprints
// (bootCRC) are the simulator's own: TestProfileBootloaders checks that
// they match DefaultFlash and that none is in the table of real
// bootloaders (reference §6).
var profiles = map[Chip]*profile{
	BK7231N: {
		name: "BK7231N", names: []string{"bk7231n"}, proto: protoFull,
		chipID: 0x7231C, deviceID: 0x20521028, flashID: [3]byte{0xEB, 0x60}, sr: 0x4004, tuyaKey: true,
		size: 2 << 20, rf: 0x1D0000, kv: 0x1EE000, platform: "bk7231n", module: "CB2S",
		seed: 0x42_4B_37_32_33_31_00, bootCRC: 0x299FE798,
		sources: "reference §1, §6, §7, §9.2, §12; checked against the real dumps",
	},
	BK7231T: {
		name: "BK7231T", names: []string{"bk7231t", "bk7231s"}, proto: protoBasicTuya,
		bootVersion: "BK7231S_1.0.5", tuyaKey: true,
		size: 2 << 20, rf: 0x1E0000, kv: 0x1EE000, platform: "BK7231S_2M", module: "WB2S",
		seed: 0x42_4B_37_32_33_31_01, bootCRC: 0xF60AC346,
		sources: "reference §1, §4.3, §5.1, §6, §9.2, §12; checked against the real dumps",
	},
	BK7231M: {
		name: "BK7231M", names: []string{"bk7231m", "bl2028n"}, proto: protoFull,
		chipID: 0x7231C, deviceID: 0x20521028, flashID: [3]byte{0xEB, 0x60}, sr: 0x4004,
		size: 2 << 20, rf: 0x1D0000, kv: 0x1EE000, platform: "bk7231n", module: "CB2S",
		seed: 0x42_4B_37_32_33_31_02, bootCRC: 0xF69C4F3C,
		sources:   "more-chips.md §1, §2: N's BootROM and chip id, zero eFuse key (GUI doGenericSetup, LT keys.md)",
		uncertain: "SCTRL_DEVICE_ID and the flash part of M modules are taken from the N",
	},
	BK7238: {
		name: "BK7238", names: []string{"bk7238", "t1"}, proto: protoFull,
		chipID: 0x7238, flashID: [3]byte{0x85, 0x20}, sr: 0x4000, srLocks: true,
		size: 2 << 20, rf: 0x1E0000, kv: 0x1F5000, platform: "bk7238", module: "T1-2S",
		seed: 0x42_4B_37_32_33_38_00, bootCRC: 0x621ACB0F,
		sources:   "bk7231tools enums (chip id 0x7238, FULL, key zero), issue #23 trace; P25Q16HBK from PR #24/#29; GUI RFPartitionUtil (RF 0x1E0000), TuyaConfig (KV 0x1F5000)",
		uncertain: "RF sector: GUI 0x1E0000, LibreTiny beken-7238-tuya.json 0x1E3000; SCTRL_DEVICE_ID unknown (reads 0); em_sys_env value invented",
	},
	BK7231U: {
		name: "BK7231U", names: []string{"bk7231u"}, proto: protoBasicBeken,
		size: 2 << 20, rf: 0x1E0000, kv: 0x1EE000, platform: "bk7231u",
		seed: 0x42_4B_37_32_33_31_03, bootCRC: 0x7A725B94,
		sources:   "bk7231tools enums (BASIC_BEKEN, 2 MiB, CRC protect lock, key zero); GUI (reads through the wrap, RF 0x1E0000)",
		uncertain: "not a Tuya chip: the Tuya storage at 0x1EE000 and em_sys_env are the simulator's choice",
	},
	BK7252: {
		name: "BK7252", names: []string{"bk7252", "bk7251"}, proto: protoBasicBeken,
		size: 4 << 20, rf: 0x1E0000, kv4M: 0x397000, kv: 0x1EE000, platform: "bk7252",
		seed: 0x42_4B_37_32_35_32_00, bootCRC: 0xA82D01AC,
		sources:   "bk7231tools enums (BASIC_BEKEN, CRC protect lock, key zero); GUI (size by wrap-around, KV 0x397000 on 4 MiB, RF 0x1E0000); LibreTiny beken-7252.json (4 MiB)",
		uncertain: "RF sector: GUI 0x1E0000, LibreTiny 0x3FE000 on 4 MiB; KV on a 2 MiB BK7252 is the simulator's choice",
	},
	BK7252N: {
		name: "BK7252N", names: []string{"bk7252n", "t4"}, proto: protoFull,
		chipID: 0x7252A, flashID: [3]byte{0xEB, 0x60}, sr: 0x4004,
		size: 2 << 20, rf: 0x1E0000, kv: 0x1EE000, platform: "bk7252n",
		seed: 0x42_4B_37_32_35_32_01, bootCRC: 0x85564FD5,
		sources:   "BK7231GUIFlashTool only: chip id 0x7252A (BKChipIdentity.cs), FULL, RF 0x1E0000, no key check",
		uncertain: "everything: one source; flash part, size, status register and key are the simulator's choice",
	},
}

// chipOrder lists the chips in their Chip order.
var chipOrder = []Chip{BK7231N, BK7231T, BK7231M, BK7238, BK7231U, BK7252, BK7252N}

// Chips returns every simulated chip.
func Chips() []Chip { return append([]Chip(nil), chipOrder...) }

func (c Chip) profile() *profile { return profiles[c] }

// ParseChip accepts a chip name in any case: bk7231n, bk7231t (bk7231s),
// bk7231m (bl2028n), bk7238 (t1), bk7231u, bk7252 (bk7251), bk7252n (t4).
func ParseChip(s string) (Chip, error) {
	want := strings.ToLower(strings.TrimSpace(s))
	for _, c := range chipOrder {
		for _, n := range profiles[c].names {
			if n == want {
				return c, nil
			}
		}
	}
	var names []string
	for _, c := range chipOrder {
		names = append(names, profiles[c].names[0])
	}
	return 0, fmt.Errorf("bksim: unknown chip %q (want %s)", s, strings.Join(names, ", "))
}

// String returns the chip's name, e.g. "BK7231N".
func (c Chip) String() string {
	if p := c.profile(); p != nil {
		return p.name
	}
	return fmt.Sprintf("Chip(%d)", int(c))
}

// Sources names where the chip's profile comes from; Unverified says
// what in it rests on a single source or on the simulator's own choice
// ("" when nothing does). A front end can show both next to the chip.
func (c Chip) Sources() string {
	if p := c.profile(); p != nil {
		return p.sources
	}
	return ""
}

// Unverified: see Sources.
func (c Chip) Unverified() string {
	if p := c.profile(); p != nil {
		return p.uncertain
	}
	return ""
}

// BootloaderBased reports whether the chip's download mode lives in the
// flash bootloader (BK7231T, BK7231U, BK7252) rather than in a BootROM.
func (c Chip) BootloaderBased() bool {
	p := c.profile()
	return p != nil && p.proto != protoFull
}

// RFOffset is where the RF calibration (TLV) sector of a chip's synthetic
// image starts; the MAC address sits 0x24 bytes into it.
func RFOffset(chip Chip) int {
	if p := chip.profile(); p != nil {
		return p.rf
	}
	return 0
}

// TuyaStorageOffset is where the key block of the Tuya KV storage sits in
// a synthetic image of chip with a flash of size bytes.
func TuyaStorageOffset(chip Chip, size int) int {
	p := chip.profile()
	if p == nil {
		return 0
	}
	if size >= 4<<20 && p.kv4M != 0 {
		return p.kv4M
	}
	return p.kv
}

func (p *profile) supports(f *frame) bool {
	short, long := fullShort, fullLong
	switch p.proto {
	case protoBasicBeken:
		short, long = basicShort, basicLong
	case protoBasicTuya:
		short, long = tuyaShort, basicLong
	}
	if f.long {
		return f.code == longCode && indexByte(long, f.op)
	}
	return indexByte(short, f.code)
}

func indexByte(b []byte, c byte) bool {
	for _, x := range b {
		if x == c {
			return true
		}
	}
	return false
}
