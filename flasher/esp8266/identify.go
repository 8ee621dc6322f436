package esp8266

import (
	"errors"
	"fmt"
	"math"

	"github.com/tuyaflash/tuyaflash/flasher"
)

// eFuse words (esptool targets/esp8266.py get_efuses, read_mac).
var efuseRegs = [4]uint32{0x3FF00050, 0x3FF00054, 0x3FF00058, 0x3FF0005C}

// SPI0 user-command registers (§9.1).
const (
	spiBase    = 0x60000200
	spiCmd     = spiBase + 0x00
	spiUser    = spiBase + 0x1C
	spiUser1   = spiBase + 0x20
	spiUser2   = spiBase + 0x24
	spiW0      = spiBase + 0x40
	spiCmdUsr  = 1 << 18
	spiCmdRDID = 1 << 28
	usrCommand = 1 << 31
	usrMISO    = 1 << 28
	cmdRDID    = 0x9F
)

// identify reads the chip magic, eFuses, crystal and flash id (§7, §9).
func (d *Device) identify() error {
	magic, err := d.l.readReg(regChipMagic)
	if err != nil {
		return &flasher.OpError{Op: "detect chip", Addr: regChipMagic, Err: err}
	}
	if magic != magicESP8266 {
		return &flasher.HintError{
			Err:  &flasher.OpError{Op: "detect chip", Addr: regChipMagic, Err: fmt.Errorf("chip magic 0x%08X is not the ESP8266's 0x%08X: %w", magic, uint32(magicESP8266), flasher.ErrUnsupported)},
			Hint: "an Espressif loader answered but the chip is not an ESP8266/ESP8285 (an ESP32-family chip?); tuyaflash handles ESP8266, ESP8285 and BK7231 only",
		}
	}
	for i, a := range efuseRegs {
		if d.efuse[i], err = d.l.readReg(a); err != nil {
			return &flasher.OpError{Op: "read eFuse", Addr: a, Err: err}
		}
	}
	info := &d.info
	info.Family = flasher.ESP8266
	if isESP8285(d.efuse) {
		info.Family = flasher.ESP8285
	}
	info.ChipID = chipID(d.efuse)
	if mac, err := macFromEfuse(d.efuse); err != nil {
		d.note(err.Error())
	} else {
		info.MAC, info.MACFrom = mac, "eFuse"
		if bad, why := mac.Placeholder(); bad {
			d.note(fmt.Sprintf("the eFuse MAC %s is a placeholder (%s): blank or defective eFuses (esptool#397)", mac, why))
		}
	}
	div, err := d.l.readReg(regUARTClkDiv)
	if err != nil {
		return &flasher.OpError{Op: "read UART divider", Addr: regUARTClkDiv, Err: err}
	}
	mhz, off := crystalMHz(d.l.p.BaudRate(), div&0xFFFFF)
	info.CrystalMHz = mhz
	if off {
		d.note(fmt.Sprintf("the crystal looks unusual (UART divider %d at %d baud); assuming %d MHz", div&0xFFFFF, d.l.p.BaudRate(), mhz))
	}
	return d.identifyFlash()
}

// identifyFlash reads the JEDEC id and derives the flash size; on an
// ESP8285 the eFuses also tell the embedded flash size.
func (d *Device) identifyFlash() error {
	if !d.stub {
		// The ROM attaches the SPI flash on FLASH_BEGIN; esptool's
		// ESP8266 "attach" is FLASH_BEGIN(0, 0) (§5.1). Erase size 0
		// erases nothing.
		var p [16]byte
		words(p[:0], 0, 0, romBlockSize, 0)
		if _, _, err := d.l.check(opFlashBegin, p[:], 0, 0, defaultTimeout); err != nil {
			return fmt.Errorf("attach flash (FLASH_BEGIN 0, 0): %w", err)
		}
	}
	id, err := d.readFlashID()
	if err != nil {
		return &flasher.OpError{Op: "read flash id", Addr: spiW0, Err: err}
	}
	info := &d.info
	jedec := [3]byte{byte(id), byte(id >> 8), byte(id >> 16)}
	if id != 0 && id&0xFFFFFF != 0xFFFFFF {
		info.FlashID = jedec
	}
	size := flashSizeFromID(id)
	efuseSize := 0
	if info.Family == flasher.ESP8285 {
		efuseSize = esp8285FlashSize(d.efuse)
	}
	switch {
	case size > 0:
		info.FlashSize, info.FlashSizeFrom = size, "JEDEC id"
		if efuseSize > 0 && efuseSize != size {
			d.note(fmt.Sprintf("the JEDEC id says %d KiB of flash, the ESP8285 eFuses %d KiB; using the JEDEC id", size>>10, efuseSize>>10))
		}
	case efuseSize > 0:
		info.FlashSize, info.FlashSizeFrom = efuseSize, "eFuse (ESP8285 embedded flash)"
	default:
		d.note(fmt.Sprintf("flash size unknown (JEDEC id %02X %02X %02X): the flash may be unpowered or not answering; power-cycle the module", jedec[0], jedec[1], jedec[2]))
	}
	return nil
}

// readFlashID runs RDID (0x9F) through the SPI user-command registers as
// esptool's run_spiflash_command does, falling back to the one-shot RDID
// bit of SPI_CMD (esptool v1.0.1, the stub's own method) when that gives
// nothing.
func (d *Device) readFlashID() (uint32, error) {
	id, err := d.rdidUser()
	if err == nil && id&0xFFFFFF != 0 && id&0xFFFFFF != 0xFFFFFF {
		return id & 0xFFFFFF, nil
	}
	id2, err2 := d.rdidOneShot()
	if err2 == nil {
		return id2 & 0xFFFFFF, nil
	}
	if err != nil {
		return 0, err
	}
	return id & 0xFFFFFF, nil
}

// rdidUser: save USER/USER2, set the MISO length to 24 bits in USER1, a
// command-plus-MISO user command 0x9F of 8 bits, clear W0, start, poll
// CMD bit 18, read W0, restore (§9.1).
func (d *Device) rdidUser() (uint32, error) {
	l := d.l
	oldUser, err := l.readReg(spiUser)
	if err != nil {
		return 0, err
	}
	oldUser2, err := l.readReg(spiUser2)
	if err != nil {
		return 0, err
	}
	for _, w := range [][2]uint32{
		{spiUser1, (24 - 1) << 8}, // MISO bit length - 1 at bits 16..8
		{spiUser, usrCommand | usrMISO},
		{spiUser2, 7<<28 | cmdRDID}, // 8-bit command
		{spiW0, 0},
		{spiCmd, spiCmdUsr},
	} {
		if err := l.writeReg(w[0], w[1]); err != nil {
			return 0, err
		}
	}
	if err := d.waitSPI(spiCmdUsr); err != nil {
		return 0, err
	}
	id, err := l.readReg(spiW0)
	if err != nil {
		return 0, err
	}
	if err := l.writeReg(spiUser, oldUser); err != nil {
		return 0, err
	}
	return id, l.writeReg(spiUser2, oldUser2)
}

// rdidOneShot: W0 = 0, CMD = RDID bit, poll, read W0.
func (d *Device) rdidOneShot() (uint32, error) {
	if err := d.l.writeReg(spiW0, 0); err != nil {
		return 0, err
	}
	if err := d.l.writeReg(spiCmd, spiCmdRDID); err != nil {
		return 0, err
	}
	if err := d.waitSPI(spiCmdRDID); err != nil {
		return 0, err
	}
	return d.l.readReg(spiW0)
}

// waitSPI polls SPI_CMD until bit clears, 10 reads as esptool.
func (d *Device) waitSPI(bit uint32) error {
	for range 10 {
		v, err := d.l.readReg(spiCmd)
		if err != nil {
			return err
		}
		if v&bit == 0 {
			return nil
		}
	}
	return errors.New("SPI command did not complete in time")
}

// isESP8285 reports the ESP8285 marker bits: eFuse bit 4 or bit 80 (word 2
// bit 16) (esptool get_chip_description).
func isESP8285(e [4]uint32) bool {
	return e[0]&(1<<4) != 0 || e[2]&(1<<16) != 0
}

// esp8285FlashSize decodes the embedded flash size from eFuse bits 4 and
// 121–123 (esptool _get_flash_size); 0 when the bits give none.
func esp8285FlashSize(e [4]uint32) int {
	r0_4 := e[0]&(1<<4) != 0
	r3_25 := e[3]&(1<<25) != 0
	r3_26 := e[3]&(1<<26) != 0
	r3_27 := e[3]&(1<<27) != 0
	switch {
	case r0_4 && !r3_25 && !r3_27 && !r3_26:
		return 1 << 20
	case r0_4 && !r3_25 && !r3_27 && r3_26:
		return 2 << 20
	case !r0_4 && r3_25 && !r3_27 && !r3_26:
		return 2 << 20
	case !r0_4 && r3_25 && !r3_27 && r3_26:
		return 4 << 20
	}
	return 0
}

// macFromEfuse is esptool's read_mac: the OUI from word 3 when set, else
// 18:FE:34 or AC:D0:74 by the index in word 1; the NIC part from words 1
// and 0 (§7.3).
func macFromEfuse(e [4]uint32) (flasher.MAC, error) {
	var m flasher.MAC
	switch idx := e[1] >> 16 & 0xFF; {
	case e[3] != 0:
		m[0], m[1], m[2] = byte(e[3]>>16), byte(e[3]>>8), byte(e[3])
	case idx == 0:
		m[0], m[1], m[2] = 0x18, 0xFE, 0x34
	case idx == 1:
		m[0], m[1], m[2] = 0xAC, 0xD0, 0x74
	default:
		return m, fmt.Errorf("the eFuses name an unknown MAC OUI (index %d): no MAC read", idx)
	}
	m[3], m[4], m[5] = byte(e[1]>>8), byte(e[1]), byte(e[0]>>24)
	return m, nil
}

// chipID is the SDK's system_get_chip_id() from the eFuses.
func chipID(e [4]uint32) uint32 {
	return e[0]>>24 | (e[1]&0xFFFFFF)<<8
}

// crystalMHz estimates the crystal from the UART divider the ROM
// auto-bauded to: baud × div / 1e6 / 2, normalised to 26, 40 or 48 MHz
// (esptool get_crystal_freq). off reports an estimate more than 1 MHz from
// the normalised value.
func crystalMHz(baud int, div uint32) (mhz int, off bool) {
	est := float64(baud) * float64(div) / 1e6 / 2
	switch {
	case est > 45:
		mhz = 48
	case est > 33:
		mhz = 40
	default:
		mhz = 26
	}
	return mhz, math.Abs(est-float64(mhz)) > 1
}

// jedecSizes maps the capacity byte of a JEDEC id to the flash size, and
// adestoSizes the low 5 bits of an Adesto part's type byte (esptool cmds.py
// DETECTED_FLASH_SIZES, DETECTED_FLASH_SIZES_ADESTO).
var (
	jedecSizes = map[byte]int{
		0x12: 256 << 10, 0x32: 256 << 10,
		0x13: 512 << 10, 0x33: 512 << 10,
		0x14: 1 << 20, 0x34: 1 << 20,
		0x15: 2 << 20, 0x35: 2 << 20,
		0x16: 4 << 20, 0x36: 4 << 20,
		0x17: 8 << 20, 0x37: 8 << 20,
		0x18: 16 << 20, 0x38: 16 << 20,
		0x19: 32 << 20, 0x39: 32 << 20,
		0x1A: 64 << 20, 0x3A: 64 << 20, 0x20: 64 << 20,
		0x1B: 128 << 20, 0x21: 128 << 20,
		0x1C: 256 << 20, 0x22: 256 << 20,
	}
	adestoSizes = map[byte]int{
		0x04: 512 << 10, 0x05: 1 << 20, 0x06: 2 << 20,
		0x07: 4 << 20, 0x08: 8 << 20, 0x09: 16 << 20,
	}
)

// adestoMfr is Adesto's JEDEC manufacturer id, whose parts code the size
// in the type byte.
const adestoMfr = 0x1F

// flashSizeFromID decodes the size of a JEDEC id (MFR | TYPE<<8 | CAP<<16);
// 0 when unknown.
func flashSizeFromID(id uint32) int {
	if id&0xFF == adestoMfr {
		return adestoSizes[byte(id>>8)&0x1F]
	}
	return jedecSizes[byte(id>>16)]
}
