package bk7231

// Protocol is the command subset that the code answering the UART speaks
// (bk7231-protocol.md §1, after bk7231tools' BkProtocolType).
type Protocol int

// The protocol subsets.
const (
	ProtoUnknown Protocol = iota
	// ProtoFull is the BootROM of BK7231N and newer chips: every
	// command, CheckCRC with an inclusive end.
	ProtoFull
	// ProtoBasicTuya is the BK7231T bootloader "BK7231S_1.0.x": no
	// register or status-register access, CheckCRC with an exclusive end,
	// flash re-protected after every CheckCRC until the next LinkCheck.
	ProtoBasicTuya
	// ProtoBasicBeken is the bootloader of BK7231Q/U and BK7252.
	ProtoBasicBeken
)

func (p Protocol) String() string {
	switch p {
	case ProtoFull:
		return "FULL"
	case ProtoBasicTuya:
		return "BASIC_TUYA"
	case ProtoBasicBeken:
		return "BASIC_BEKEN"
	}
	return "unknown"
}

// bootloader is a row of the bootloader fingerprint table (§6, from
// bk7231tools BkBootloaderType): the standard CRC-32 of the bytes CheckCRC(0,
// 256) covers on that chip (257 bytes on FULL chips, 256 on the others).
type bootloader struct {
	crc   uint32
	name  string
	model string // the chip table row it identifies (Chip.Model)
	proto Protocol
	key   string // eFuse key the bootloader is built for: keyTuya, keyZero
	size  uint32 // flash size bk7231tools' table gives; 0: not given
}

// eFuse key classes, as flasher.Info.EfuseKey spells them.
const (
	keyTuya  = "tuya"
	keyZero  = "zero"
	keyOther = "other"
)

var bootloaders = []bootloader{
	{0xE14191BA, "bl_bk7231n_1.0.1_34B7", "BK7231N", ProtoFull, keyTuya, 0},
	{0xC1ECA871, "bl_bk7231s_1.0.1_79A6", "BK7231T", ProtoBasicTuya, keyTuya, 2 << 20},
	{0x4B31E44D, "bl_bk7231s_1.0.3_DAAE", "BK7231T", ProtoBasicTuya, keyTuya, 2 << 20},
	{0xBA54C1B8, "bl_bk7231s_1.0.5_4FF7", "BK7231T", ProtoBasicTuya, keyTuya, 2 << 20},
	{0xE5CBC953, "bl_bk7231s_1.0.6_625D", "BK7231T", ProtoBasicTuya, keyTuya, 2 << 20},
	{0xF0231EF6, "bl_bk7231q_6AFA", "BK7231Q", ProtoBasicBeken, keyZero, 0},
	{0xFF5A3EAC, "bl_bk7231q_tysdk_03ED", "BK7231Q", ProtoBasicBeken, keyZero, 0},
	{0x2739019F, "bl_bk7231u_1.0.6_9B7F", "BK7231U", ProtoBasicBeken, keyZero, 2 << 20},
	{0x39F9B50C, "bl_bk7252_0.1.3_F4D3", "BK7252", ProtoBasicBeken, keyZero, 0},
	{0xE3A27C26, "bootloader_7252_2M_uart1_log_20190828", "BK7252", ProtoBasicBeken, keyZero, 0},
	{0xF42F8C32, "bl_t1_2.0.0_DA47", "BK7238", ProtoFull, keyZero, 0},
	{0x6BEB0924, "bootloader_bk7238_uart1_v1.0.14", "BK7238", ProtoFull, keyZero, 0},
}

// Bootloader is a row of the bootloader fingerprint table as other
// packages see it: firmware identifies the bootloader of an image file by
// it, so that one table serves the chip and the files.
type Bootloader struct {
	// CRC is the standard CRC-32 of the first 257 bytes of flash when Full,
	// else of the first 256 (what CheckCRC(0, 256) covers on the chip).
	CRC uint32
	// Name is the bootloader's name in bk7231tools' table.
	Name string
	// Model is the chip table row it identifies (Chip.Model).
	Model string
	// Full: the chip answers from its BootROM with the FULL command set.
	Full bool
	// Key is the eFuse key class its code is built for ("tuya", "zero").
	Key string
}

// Bootloaders returns a copy of the bootloader fingerprint table.
func Bootloaders() []Bootloader {
	out := make([]Bootloader, len(bootloaders))
	for i, b := range bootloaders {
		out[i] = Bootloader{CRC: b.crc, Name: b.name, Model: b.model, Full: b.proto == ProtoFull, Key: b.key}
	}
	return out
}

func lookupBootloader(crc uint32) (bootloader, bool) {
	for _, b := range bootloaders {
		if b.crc == crc {
			return b, true
		}
	}
	return bootloader{}, false
}

// crcFlashUnreadable is the CRC of 257 zero bytes: what a chip whose flash
// reads as zeros reports for its bootloader (ltchiptool #29, bk7231tools #30).
const crcFlashUnreadable = 0xB7BFA0CE

// SCTRL registers of FULL chips (§6 steps 3 and 6).
const (
	regChipID    = 0x00800000
	regEfuseCtrl = 0x00800074
	regEfuseData = 0x00800078
	// regChipIDNew is where BK7236/BK7258 answer with their chip id
	// (BK7231GUIFlashTool BKChipIdentity; zephyr bkflash REG_CHIP_ID).
	regChipIDNew = 0x44010004
)

// tuyaEfuseKey is the encryption key Tuya/Beken put in BK7231N eFuses, as
// four little-endian words 510fb093 a3cbeadc 5993a17e c7adeb03 (§6 step 6).
var tuyaEfuseKey = [16]byte{
	0x93, 0xB0, 0x0F, 0x51, 0xDC, 0xEA, 0xCB, 0xA3,
	0x7E, 0xA1, 0x93, 0x59, 0x03, 0xEB, 0xAD, 0xC7,
}

// Flash geometry shared by every BK72xx (§9.2).
const (
	bootloaderEnd = 0x11000 // first address after the bootloader
	sectorSize    = 0x1000
	blockSize     = 0x10000
)

// flashPart is a row of the SPI flash table (§8, BK7231GUIFlashTool
// BKFlashList / hid_download_py flash_list).
type flashPart struct {
	id      [3]byte // MFR, TYPE, CAP as GetMID returns them
	name    string
	vendor  string
	srBytes int    // status register width in bytes
	mask    uint16 // protect bits (cwMsk)
	sb, lb  uint8  // BFD(cwUnp, sb, lb) = 0 for unprotect
	readOps []byte // opcodes reading SR1, SR2, SR3
	wrOps   []byte // opcodes writing them
}

func fp(mfr, typ, capa byte, name, vendor string, srBytes int, mask uint16, sb, lb uint8, rd, wr []byte) flashPart {
	return flashPart{[3]byte{mfr, typ, capa}, name, vendor, srBytes, mask, sb, lb, rd, wr}
}

var (
	rd1  = []byte{0x05}
	rd2  = []byte{0x05, 0x35}
	rd3  = []byte{0x05, 0x35, 0x15}
	rd2b = []byte{0x05, 0x15}
	wr1  = []byte{0x01}
	wr2  = []byte{0x01, 0x31}
	wr3  = []byte{0x01, 0x31, 0x11}
)

var flashParts = []flashPart{
	fp(0xC4, 0x40, 0x10, "GT25Q05D", "GT", 2, 0x407C, 2, 5, rd2, wr2),
	fp(0xC4, 0x40, 0x11, "GT25Q10D", "GT", 2, 0x407C, 2, 5, rd2, wr2),
	fp(0xC4, 0x40, 0x12, "GT25Q20D", "GT", 2, 0x407C, 2, 5, rd2, wr2),
	fp(0x85, 0x44, 0x12, "PY25D22U", "PY", 1, 0x007C, 2, 5, rd1, wr1),
	fp(0x85, 0x45, 0x12, "PY25D24U", "PY", 1, 0x007C, 2, 5, rd1, wr1),
	fp(0xB3, 0x60, 0x12, "UC25HQ20", "UC", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0xEB, 0x60, 0x12, "TH25D20HA", "TH", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0xE0, 0x40, 0x13, "PN25Q40A", "BY", 1, 0x401C, 2, 3, rd1, wr1),
	fp(0x51, 0x40, 0x13, "GD25D40", "GD", 1, 0x001C, 2, 3, rd1, wr1),
	fp(0xC8, 0x64, 0x13, "GD25Q41BT", "GD", 1, 0x401C, 2, 3, rd1, wr1),
	fp(0xC8, 0x40, 0x13, "GD25Q41B", "GD", 1, 0x401C, 2, 3, rd1, wr1),
	fp(0x85, 0x60, 0x13, "P25Q40", "Puya", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0xCD, 0x60, 0x13, "TH25D40HB", "TH", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0x1C, 0x31, 0x13, "PN25F04B", "xtx", 1, 0x003C, 2, 4, rd1, wr1),
	fp(0xC2, 0x23, 0x13, "MX25V4035F", "MXIC", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0xC4, 0x40, 0x13, "GT25Q40D", "GT", 2, 0x407C, 2, 5, rd2, wr2),
	fp(0xB3, 0x60, 0x13, "UC25HQ40", "UC", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0xC8, 0x65, 0x13, "GD25Q41B", "GD", 2, 0x407C, 2, 5, rd2, wr2),
	fp(0xCD, 0x71, 0x13, "TH25D40UC", "TH", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0x01, 0x4B, 0x42, "BK", "BK", 0, 0x0000, 0, 0, nil, nil),
	fp(0xE0, 0x40, 0x14, "PN25Q80A", "BY", 1, 0x401C, 2, 3, rd1, wr1),
	fp(0xC8, 0x64, 0x14, "GD25WD80E", "GD", 1, 0x407C, 2, 5, rd1, wr1),
	fp(0x51, 0x40, 0x14, "GD25D80", "GD", 1, 0x001C, 2, 3, rd1, wr1),
	fp(0xC8, 0x40, 0x14, "GD25D80", "GD", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0x85, 0x60, 0x14, "P25Q80", "Puya", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0xCD, 0x60, 0x14, "TH25Q80HB", "TH", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0xC2, 0x23, 0x14, "MX25V8035F", "WH", 2, 0x103C, 2, 5, rd2b, wr1),
	fp(0x5E, 0x40, 0x14, "PN25F08B", "xtx", 1, 0x003C, 2, 4, rd1, wr1),
	fp(0xC2, 0x20, 0x14, "MX25V80066", "MXIC", 1, 0x007C, 2, 5, rd1, wr1),
	fp(0x0B, 0x40, 0x14, "XT25F08F", "XTX", 2, 0x407C, 2, 5, rd2, wr2),
	fp(0xC8, 0x65, 0x14, "GD25WQ80E", "GD", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0x1C, 0x70, 0x15, "EN25QH16B", "ESMT", 1, 0x003C, 2, 4, rd1, wr1),
	fp(0xC8, 0x40, 0x15, "GD25Q16B", "GD", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0xC8, 0x65, 0x15, "GD25WQ16E", "GD", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0xC4, 0x60, 0x15, "GT25Q16B", "GT", 3, 0x407C, 2, 5, rd3, wr3),
	fp(0x85, 0x42, 0x15, "P25Q16HB", "Puya", 1, 0x407C, 2, 5, rd1, wr2),
	fp(0x85, 0x20, 0x15, "P25Q16HBK", "Puya", 2, 0x407C, 2, 5, rd2, wr2),
	fp(0x85, 0x60, 0x15, "P25Q16SU", "Puya", 2, 0x407C, 2, 5, rd2, wr2),
	fp(0xEB, 0x60, 0x15, "TH25Q16HB", "TH", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0xC2, 0x23, 0x15, "MX25V1635F", "WH", 2, 0x103C, 2, 5, rd2b, wr1),
	fp(0x0B, 0x40, 0x15, "XT25F16B", "xtx", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0x4B, 0x40, 0x15, "XT25F16B_1", "XTX", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0xCD, 0x71, 0x15, "TH25Q16UC", "TH", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0x1C, 0x41, 0x16, "EN25QE32A", "ESMT", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0x1C, 0x61, 0x16, "EN25QW32A", "ESMT", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0xC8, 0x65, 0x16, "GD25WQ32E", "GD", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0xC8, 0x40, 0x16, "GD25Q32E", "GD", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0x85, 0x60, 0x16, "P25Q32H", "Puya", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0x85, 0x20, 0x16, "P25Q32HB", "Puya", 2, 0x407C, 2, 5, rd2, wr2),
	fp(0x0B, 0x40, 0x16, "XT25F32B", "xtx", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0x20, 0x40, 0x16, "XM25QH32D", "XM", 2, 0x407C, 2, 5, rd2, wr2),
	fp(0xCD, 0x60, 0x16, "TH25Q32UB", "TH", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0x85, 0x65, 0x16, "PY25Q32LB", "PY", 2, 0x407C, 2, 5, rd2, wr2),
	fp(0xC8, 0x65, 0x17, "GD25WQ64E", "GD", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0x85, 0x60, 0x17, "P25Q64H", "Puya", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0x0B, 0x60, 0x17, "XT25Q64B", "xtx", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0x0B, 0x40, 0x17, "XT25F64B", "xtx", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0x85, 0x20, 0x17, "PY25Q64HA", "PY", 2, 0x407C, 2, 5, rd2, wr2),
	fp(0x20, 0x40, 0x17, "XM25QH64D", "XM", 2, 0x407C, 2, 5, rd2, wr2),
	fp(0xC8, 0x40, 0x17, "GD25Q64C", "GD", 2, 0x407C, 2, 5, rd2, wr2),
	fp(0xCD, 0x60, 0x17, "TH25Q64HB", "TH", 2, 0x407C, 2, 5, rd2, wr2),
	fp(0xEB, 0x60, 0x17, "TH25Q64HA", "TH", 2, 0x407C, 2, 5, rd2, wr2),
	fp(0xC8, 0x60, 0x18, "GD25LQ128E", "GD", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0xC8, 0x65, 0x18, "GD25WQ128E", "GD", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0x85, 0x20, 0x18, "P25Q128HA", "Puya", 2, 0x407C, 2, 5, rd2, wr2),
	fp(0xEF, 0x40, 0x18, "WB25Q128JV", "WB", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0x20, 0x41, 0x18, "XM25QU128C", "XMC", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0x0B, 0x40, 0x18, "XT25F128F", "xtx", 3, 0x407C, 2, 5, rd3, wr3),
	fp(0x0B, 0x60, 0x18, "XT25Q128B", "xtx", 3, 0x407C, 2, 5, rd3, wr3),
	fp(0x5E, 0x50, 0x18, "ZB25LQ128C", "Zbit", 2, 0x407C, 2, 5, rd2, wr3),
	fp(0x20, 0x40, 0x18, "XM25QH128D", "XM", 2, 0x407C, 2, 5, rd2, wr2),
	fp(0x68, 0x40, 0x18, "BY25Q128ES", "BY", 2, 0x7C7C, 2, 5, rd2, wr1),
	fp(0xC4, 0x40, 0x18, "GT25Q128EZ", "GT", 2, 0x407C, 2, 5, rd2, wr2),
	fp(0xC8, 0x40, 0x18, "GD25Q128C", "GD", 2, 0x407C, 2, 5, rd2, wr2),
	fp(0x68, 0x60, 0x18, "BY25Q128EL", "BY", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0xA1, 0x60, 0x18, "FM25LQ128I", "FM", 2, 0x407C, 2, 5, rd2, wr2),
	fp(0xEF, 0x60, 0x18, "WB25Q128JW_IQ", "WB", 2, 0x407C, 2, 5, rd2, wr2),
	fp(0x85, 0x65, 0x18, "PY25Q128LA", "PY", 2, 0x407C, 2, 5, rd2, wr1),
	fp(0xEF, 0x80, 0x18, "WB25Q128JW_IM", "WB", 2, 0x407C, 2, 5, rd2, wr2),
	fp(0xC8, 0x68, 0x19, "GD25LX256E", "GD", 1, 0x407C, 2, 5, rd1, wr1),
	fp(0x20, 0x40, 0x19, "XM25QH256D", "XM", 2, 0x407C, 2, 5, rd2, wr2),
	fp(0xC8, 0x40, 0x19, "GD25Q256C", "GD", 2, 0x407C, 2, 5, rd2, wr2),
	fp(0xC8, 0x60, 0x19, "GD25LQ256E", "GD", 2, 0x407C, 2, 5, rd2, wr2),
	fp(0xC8, 0x47, 0x1A, "GD25Q512C", "GD", 2, 0x407C, 2, 5, rd2, wr2),
}

func lookupFlash(id [3]byte) (flashPart, bool) {
	for _, f := range flashParts {
		if f.id == id {
			return f, true
		}
	}
	return flashPart{}, false
}

// flashSizeFromID derives the size from the JEDEC capacity byte (§5.2);
// 0 when the id is invalid (00 00 00, FF FF FF) or implausible.
func flashSizeFromID(id [3]byte) int {
	if id == [3]byte{} || id == [3]byte{0xFF, 0xFF, 0xFF} {
		return 0
	}
	capa := id[2]
	if capa < 0x10 || capa > 0x1A {
		return 0
	}
	return 1 << capa
}
