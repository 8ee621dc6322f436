package bk7231

import (
	"slices"
	"strings"

	"github.com/tuyaflash/tuyaflash/flasher"
)

// SizeMethod says how a chip's flash size is found (bk7231-protocol.md §5.2).
type SizeMethod int

// The flash size methods.
const (
	// SizeJEDEC takes 1 << CAP from the flash's JEDEC id (FULL chips).
	SizeJEDEC SizeMethod = iota + 1
	// SizeTable takes the size the bootloader table gives: the chip
	// cannot tell (no JEDEC id on BASIC bootloaders).
	SizeTable
	// SizeWrap finds the size by the address wrap: the 4 KiB at 0x11000
	// read again at size+0x11000 (bk7231tools flash_detect_size,
	// BK7231GUIFlashTool detectBK7252UFlashSize).
	SizeWrap
)

// KeySource says how a chip's eFuse encryption key is known.
type KeySource int

// The key sources.
const (
	// KeyUnknown: the key cannot be read and no table gives it.
	KeyUnknown KeySource = iota
	// KeyRegisters: read through SCTRL_EFUSE_CTRL/OPTR (§6 step 6).
	KeyRegisters
	// KeyBootloader: the key the identified bootloader was built for
	// (bk7231tools' bootloader table); unknown with an unknown bootloader.
	KeyBootloader
)

// Chip is one row of the Beken chip table: everything the client does
// differently from one BK72xx to the next. Adding a chip means adding a
// row (and, for a new bootloader, its fingerprint in bootloaders).
type Chip struct {
	// Model is the chip's name ("BK7238"); Family is the flasher.Family
	// detection reports (BK7231M reports as BK7231N with a zero key, see
	// flasher.BK7231M).
	Model  string
	Family flasher.Family
	// Modules names the modules or other names it comes as, for messages.
	Modules string
	// Proto is the command subset the UART answers with (§1).
	Proto Protocol

	// ChipIDReg and ChipIDs identify a FULL chip: the value ReadReg
	// returns at ChipIDReg (the 16-bit ids also match in the upper half,
	// as BK7236 answers 0x7236xxxx).
	ChipIDReg uint32
	ChipIDs   []uint32
	// Key, when set, is the eFuse key class that tells this row from
	// another one with the same chip id ("zero": BK7231M).
	Key string

	// InclusiveCRC: CheckCRC counts its end address (§4.2).
	InclusiveCRC bool
	// ReprotectAfterCRC: the bootloader protects the flash again after
	// every CheckCRC until the next LinkCheck; a write retried in the same
	// session keeps failing (§4.3).
	ReprotectAfterCRC bool
	// BootloaderWritable: 0x000000-0x010FFF may be written. False on the
	// chips whose download mode is that bootloader (nothing below 0x11000
	// is ever written there).
	BootloaderWritable bool
	// WrapReads: reads of the bootloader area go through addr + flash size
	// (the bootloader refuses its own area at plain addresses, §5.1).
	WrapReads bool
	// QIOWhole: a QIO image (bootloader and application) is written whole
	// from 0x0 by default, its bootloader replacing the chip's, as
	// BK7231GUIFlashTool does on these chips and as OpenBeken's release
	// notes name the QIO image their "UART Flash" file. False keeps the
	// chip's bootloader (the image's first 0x11000 bytes are skipped)
	// unless the user asks otherwise where BootloaderWritable allows it.
	QIOWhole bool

	// Size is how the flash size is found; TableSize for SizeTable,
	// WrapSizes (ascending) the candidates for SizeWrap.
	Size      SizeMethod
	TableSize uint32
	WrapSizes []uint32
	// KeyFrom says whether and how the eFuse key can be known.
	KeyFrom KeySource

	// RFOffsets are where the RF calibration sector (TLV, with the MAC)
	// is looked for, in order; the first is where OpenBeken expects it.
	RFOffsets []uint32
	// RFAfterWrite: after a firmware write the MAC must still be found at
	// RFOffsets[0], where the new firmware looks for it; an RF sector
	// found only at a later offset is copied there when that sector is
	// blank (BK7231GUIFlashTool does both after writing a BK7238 whose
	// Tuya layout keeps the calibration at 0x1E3000).
	RFAfterWrite bool
	// OBKConfig is OpenBeken's config sector; TuyaKV the Tuya key block
	// (the start of the encrypted KV storage).
	OBKConfig uint32
	TuyaKV    uint32
	// DefaultBaud is the transfer rate used when none is asked for.
	DefaultBaud int

	// Supported is false for rows that only name a chip to refuse it.
	Supported bool
	// Caveat says what about the row is unverified (a single source,
	// never tried on silicon); it is shown on detection.
	Caveat string
}

const mib = 1 << 20

// chips is the Beken chip table. Sources (reference more-chips.md §2 and
// bk7231-protocol.md; bkt = bk7231tools v2.1.2 serial/base/enums.py, GUI =
// BK7231GUIFlashTool 8d81f51, LT = libretiny 6514b26 boards/_base):
//   - command set, CRC end, re-protect: bkt BkProtocolType and
//     crc_flash_protect_lock; GUI calcCRC (end-1 except T/U/BK7252).
//   - chip ids: bkt BkChipType (0x7231C, 0x7238); GUI BKChipIdentity
//     (0x7252A, 0x7236 at 0x44010004).
//   - bootloader rule: GUI isSectorModificationAllowed (T/U/BK7252 refuse
//     below 0x11000), translateReadAddressForChip (reads + size on T/U/BK7252).
//   - QIO placement: GUI doReadAndWriteInternal skips the first 0x11000
//     bytes of a QIO image on T/U/BK7252 always and on N/M unless asked,
//     and writes it from 0x0 on BK7238/BK7252N; OpenBeken's release notes
//     (.releaserc.yaml) list OpenBK7238_QIO and OpenBK7252N_QIO as their
//     "UART Flash" image. After a BK7238 write GUI copies the RF sector to
//     0x1E0000 when the backup has no MAC there (RFAfterWrite).
//   - size: bkt BkBootloader.flash_size (T, U: 2 MiB), GUI
//     detectBK7252UFlashSize (BK7252: 2 or 4 MiB by wrap), JEDEC elsewhere.
//   - key: GUI doGenericSetup (reads it on N/M only), bkt bootloader table.
//   - RF: GUI RFPartitionUtil.getRFOffset; LT beken-7238-tuya.json
//     (calibration 0x1E3000), beken-7252.json (calibration 0x3FE000).
//   - OpenBeken config: GUI OBKFlashLayout; Tuya KV: GUI TuyaConfig
//     (0x1EE000, BK7238 0x1F5000, BK7252 0x397000).
//   - rate: LT upload.speed (T 921600, N/BK7238/BK7231Q 460800, BK7252
//     921600); BK7231U and BK7252N have no LT board: GUI's CLI default.
var chips = func() []Chip {
	n := Chip{
		Model: "BK7231N", Family: flasher.BK7231N,
		Modules: "CB2S, CB3S, CBU, CB2L, CBLC5 …",
		Proto:   ProtoFull, ChipIDReg: regChipID, ChipIDs: []uint32{0x7231C},
		InclusiveCRC: true, BootloaderWritable: true,
		Size: SizeJEDEC, KeyFrom: KeyRegisters,
		RFOffsets: []uint32{0x1D0000}, OBKConfig: 0x1D1000, TuyaKV: 0x1EE000,
		DefaultBaud: 460800, Supported: true,
	}
	// BK7231M: the same chip id and layout, told apart by its all-zero
	// eFuse key (GUI BKChipIdentity maps 0x7231C to both).
	m := n
	m.Model, m.Key = "BK7231M", keyZero
	m.Modules = "BK7231M/BL2028N clones of CB2S boards, Tuya T34"
	return []Chip{
		n, m,
		{
			Model: "BK7231T", Family: flasher.BK7231T,
			Modules: "WB2S, WB3S, WB2L …",
			Proto:   ProtoBasicTuya, ReprotectAfterCRC: true, WrapReads: true,
			Size: SizeTable, TableSize: 2 * mib, KeyFrom: KeyUnknown,
			RFOffsets: []uint32{0x1E0000}, OBKConfig: 0x1E1000, TuyaKV: 0x1EE000,
			DefaultBaud: 921600, Supported: true,
		},
		{
			Model: "BK7238", Family: flasher.BK7238,
			Modules: "Tuya T1-2S, T1-3S, T1-LC5, T1-M, T1-U",
			Proto:   ProtoFull, ChipIDReg: regChipID, ChipIDs: []uint32{0x7238},
			InclusiveCRC: true, BootloaderWritable: true, QIOWhole: true, RFAfterWrite: true,
			Size: SizeJEDEC, KeyFrom: KeyBootloader,
			// GUI and OpenBeken use 0x1E0000; Tuya's T1 layout (LT) keeps
			// the calibration at 0x1E3000, and GUI copies it to 0x1E0000
			// after writing when 0x1E0000 holds no MAC.
			RFOffsets: []uint32{0x1E0000, 0x1E3000}, OBKConfig: 0x1E1000, TuyaKV: 0x1F5000,
			DefaultBaud: 460800, Supported: true,
		},
		{
			Model: "BK7231U", Family: flasher.BK7231U,
			Modules: "HLK-B30, cameras and displays (not Tuya)",
			Proto:   ProtoBasicBeken, ReprotectAfterCRC: true, WrapReads: true,
			Size: SizeTable, TableSize: 2 * mib, KeyFrom: KeyBootloader,
			RFOffsets: []uint32{0x1E0000}, OBKConfig: 0x1E1000, TuyaKV: 0x1EE000,
			DefaultBaud: 921600, Supported: true,
			Caveat: "BK7231U: its offsets and rate come from BK7231GUIFlashTool alone; nothing here has been tried on one",
		},
		{
			Model: "BK7252", Family: flasher.BK7252,
			Modules: "A9 cameras, doorbells",
			Proto:   ProtoBasicBeken, ReprotectAfterCRC: true, WrapReads: true,
			Size: SizeWrap, WrapSizes: []uint32{2 * mib, 4 * mib}, KeyFrom: KeyBootloader,
			// GUI: 0x1E0000; LT's 4 MiB layout: 0x3FE000.
			RFOffsets: []uint32{0x1E0000, 0x3FE000}, OBKConfig: 0x1E1000, TuyaKV: 0x397000,
			DefaultBaud: 921600, Supported: true,
		},
		{
			Model: "BK7252N", Family: flasher.BK7252N,
			Modules: "Tuya T4",
			Proto:   ProtoFull, ChipIDReg: regChipID, ChipIDs: []uint32{0x7252A},
			InclusiveCRC: true, BootloaderWritable: true, QIOWhole: true,
			Size: SizeJEDEC, KeyFrom: KeyUnknown,
			RFOffsets: []uint32{0x1E0000}, OBKConfig: 0x1E1000, TuyaKV: 0x1EE000,
			DefaultBaud: 921600, Supported: true,
			Caveat: "BK7252N: its chip id (0x7252A) and offsets come from BK7231GUIFlashTool alone and nothing here has been tried on one; keep the backup and check it before writing",
		},
		// Named and refused.
		{Model: "BK7231Q", Proto: ProtoBasicBeken, ReprotectAfterCRC: true, WrapReads: true, DefaultBaud: 460800},
		{Model: "BK7236/BK7258", Modules: "Tuya T3, T5", Proto: ProtoFull, ChipIDReg: regChipIDNew, ChipIDs: []uint32{0x7236}},
	}
}()

// matchesID reports whether a chip id register value is one of the row's.
func (c *Chip) matchesID(reg, id uint32) bool {
	if reg != c.ChipIDReg {
		return false
	}
	for _, want := range c.ChipIDs {
		if id == want || (want <= 0xFFFF && id>>16 == want) {
			return true
		}
	}
	return false
}

// clone copies the row with its own slices, so that callers cannot change
// the table.
func (c Chip) clone() Chip {
	c.ChipIDs = append([]uint32(nil), c.ChipIDs...)
	c.WrapSizes = append([]uint32(nil), c.WrapSizes...)
	c.RFOffsets = append([]uint32(nil), c.RFOffsets...)
	return c
}

// Chips returns a copy of the chip table, supported rows first.
func Chips() []Chip {
	out := make([]Chip, len(chips))
	for i, c := range chips {
		out[i] = c.clone()
	}
	return out
}

// LookupChip finds the row of a model or family name, in any case
// ("bk7238", "BK7231M").
func LookupChip(name string) (Chip, bool) {
	for _, c := range chips {
		if strings.EqualFold(c.Model, strings.TrimSpace(name)) {
			return c.clone(), true
		}
	}
	return Chip{}, false
}

// ChipOf finds the row of a detected chip: by Model, else by Family.
func ChipOf(info flasher.Info) (Chip, bool) {
	if c, ok := LookupChip(info.Model); ok && info.Model != "" {
		return c, true
	}
	return LookupChip(string(info.Family))
}

// idRegisters lists the chip id registers of the table's rows, in order.
func idRegisters() []uint32 {
	var regs []uint32
	for _, c := range chips {
		if c.ChipIDReg != 0 && !slices.Contains(regs, c.ChipIDReg) {
			regs = append(regs, c.ChipIDReg)
		}
	}
	return regs
}

// supportedModels lists the supported rows' models, for messages.
func supportedModels() string {
	var s []string
	for _, c := range chips {
		if c.Supported {
			s = append(s, c.Model)
		}
	}
	return strings.Join(s, ", ")
}

// rowsWhere returns the rows for which keep is true.
func rowsWhere(keep func(*Chip) bool) []Chip {
	var out []Chip
	for i := range chips {
		if keep(&chips[i]) {
			out = append(out, chips[i])
		}
	}
	return out
}

// Name is the model with the modules it comes in, for messages.
func (c Chip) Name() string {
	if c.Modules == "" {
		return c.Model
	}
	return c.Model + " (" + c.Modules + ")"
}
