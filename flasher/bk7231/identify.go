package bk7231

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
)

// UnsupportedChipError reports a BK72xx that answers the protocol but that
// tuyaflash does not support yet.
type UnsupportedChipError struct {
	Chip   string
	Detail string
}

func (e *UnsupportedChipError) Error() string {
	return fmt.Sprintf("this is a %s (%s); tuyaflash supports BK7231T and BK7231N only so far", e.Chip, e.Detail)
}

// Is makes an UnsupportedChipError match flasher.ErrUnsupported.
func (e *UnsupportedChipError) Is(target error) bool { return target == flasher.ErrUnsupported }

// identify tells BK7231T from BK7231N (§6): bootloader fingerprint first,
// then protocol behaviour, then chip id / boot version.
func (d *Device) identify(ctx context.Context) error {
	// Raw CheckCRC(0, 256) before the size is known: FULL chips hash 257
	// bytes, the others 256; the table holds what each returns.
	d.proto = ProtoFull // addresses unmodified, inclusive end for now
	raw, err := d.rawCRC(0, 256)
	if err != nil {
		return fmt.Errorf("identify: %w", err)
	}
	// The T bootloader re-protects after a CRC; a LinkCheck resets that.
	if _, err := d.c.shortCmd("link check", cmdLinkCheck, nil, 500*time.Millisecond); err != nil {
		return fmt.Errorf("identify: %w", err)
	}
	crc := raw ^ 0xFFFFFFFF
	if crc == crcFlashUnreadable {
		return &flasher.HintError{
			Err:  fmt.Errorf("the chip answers but its flash reads as zeros (bootloader CRC 0x%08X): %w", crc, flasher.ErrDevice),
			Hint: "the SPI flash is not accessible; a user fixed this by pulling P24 low during reset (ltchiptool #29). Check the module's supply under load.",
		}
	}
	bl, known := lookupBootloader(crc)
	if known {
		d.proto = bl.proto
		d.info.Bootloader = bl.name
	} else {
		d.info.Bootloader = fmt.Sprintf("unknown (CRC 0x%08X)", crc)
		proto, err := d.probeProtocol()
		if err != nil {
			return err
		}
		d.proto = proto
	}
	switch d.proto {
	case ProtoFull:
		id, err := d.readReg(regChipID)
		if err != nil {
			return fmt.Errorf("identify: read chip id: %w", err)
		}
		d.info.ChipID = id
		switch {
		case id == chipIDBK7231N:
			d.info.Family = flasher.BK7231N
		case id == chipIDBK7238 || id&0xFFFF == chipIDBK7238:
			return &UnsupportedChipError{Chip: "BK7238 (T1)", Detail: fmt.Sprintf("chip id 0x%X", id)}
		case id == chipIDBK7252N:
			return &UnsupportedChipError{Chip: "BK7252N", Detail: fmt.Sprintf("chip id 0x%X", id)}
		case known && bl.chip != "BK7231N":
			return &UnsupportedChipError{Chip: bl.chip, Detail: "bootloader " + bl.name}
		case d.opts.Family == flasher.BK7231N:
			d.info.Family = flasher.BK7231N
			d.note(flasher.Warning, fmt.Sprintf("unexpected chip id 0x%X; treating it as BK7231N as asked", id))
		default:
			return &UnsupportedChipError{Chip: "BK72xx with a BootROM", Detail: fmt.Sprintf("chip id 0x%X, not BK7231N's 0x%X; --chip bk7231n forces it", id, chipIDBK7231N)}
		}
		d.info.Protocol = "BootROM (FULL)"
	case ProtoBasicTuya:
		ver, err := d.bootVersion()
		if err != nil {
			d.note(flasher.Warning, "boot version not readable: "+err.Error())
		}
		d.info.Family = flasher.BK7231T
		if ver != "" {
			d.info.Protocol = "bootloader " + ver + " (BASIC_TUYA)"
		} else {
			d.info.Protocol = "bootloader (BASIC_TUYA)"
		}
		// The T bootloader gives no flash id; its table says 2 MiB
		// (bk7231tools BkBootloaderType).
		d.size = 2 << 20
		d.info.FlashSize = int(d.size)
		d.info.FlashSizeFrom = "bootloader table (BK7231T modules carry 2 MiB)"
	case ProtoBasicBeken:
		chip := "BK7231Q/U or BK7252"
		if known {
			chip = bl.chip
		}
		return &UnsupportedChipError{Chip: chip, Detail: "bootloader " + d.info.Bootloader + ", BASIC_BEKEN protocol"}
	}
	if !known {
		d.note(flasher.Warning, "bootloader not in tuyaflash's table ("+d.info.Bootloader+"); identified by protocol behaviour")
	}
	if d.opts.Family != "" && d.opts.Family != d.info.Family {
		return fmt.Errorf("--chip %s given, but the chip is a %s (%s): %w", d.opts.Family, d.info.Family, d.info.Protocol, flasher.ErrRefused)
	}
	return nil
}

// rawCRC sends CheckCRC with unmodified start and end and returns the raw
// register value.
func (d *Device) rawCRC(start, end uint32) (uint32, error) {
	r, err := d.c.shortCmd("check CRC", cmdCheckCRC, append(le32(start), le32(end)...), 2*time.Second)
	if err != nil {
		return 0, err
	}
	if len(r.data) < 4 {
		return 0, fmt.Errorf("check CRC: short reply: %w", flasher.ErrProtocol)
	}
	return binary.LittleEndian.Uint32(r.data), nil
}

// probeProtocol tells FULL from bootloader protocols for an unknown
// bootloader (§6 step 2): CRC(0x11000, 0x11100) covers 257 bytes on FULL
// chips and 256 on the others; the T bootloader answers ReadBootVersion.
func (d *Device) probeProtocol() (Protocol, error) {
	buf := make([]byte, sectorSize)
	d.proto = ProtoFull // plain addresses while probing
	if err := d.read4K(bootloaderEnd, buf); err != nil {
		return 0, fmt.Errorf("identify: read 0x%X: %w", bootloaderEnd, err)
	}
	raw, err := d.rawCRC(bootloaderEnd, bootloaderEnd+256)
	if err != nil {
		return 0, fmt.Errorf("identify: %w", err)
	}
	if _, err := d.c.shortCmd("link check", cmdLinkCheck, nil, 500*time.Millisecond); err != nil {
		return 0, fmt.Errorf("identify: %w", err)
	}
	crc := raw ^ 0xFFFFFFFF
	switch crc {
	case crc32.ChecksumIEEE(buf[:257]):
		return ProtoFull, nil
	case crc32.ChecksumIEEE(buf[:256]):
		if ver, err := d.bootVersion(); err == nil && ver != "" {
			return ProtoBasicTuya, nil
		}
		if d.opts.Family == flasher.BK7231T {
			return ProtoBasicTuya, nil
		}
		return ProtoBasicBeken, nil
	}
	return 0, &flasher.HintError{
		Err:  fmt.Errorf("identify: the chip's CRC of 0x11000..0x11100 (0x%08X) matches neither protocol: %w", crc, flasher.ErrProtocol),
		Hint: "the link may be unreliable (check wiring and supply), or this is a chip tuyaflash does not know",
	}
}

// bootVersion asks a BASIC_TUYA bootloader for its version string; "" when
// the chip does not support the command.
func (d *Device) bootVersion() (string, error) {
	r, err := d.c.shortCmd("read boot version", cmdBootVersion, nil, 300*time.Millisecond)
	if err != nil {
		return "", err
	}
	if len(r.data) <= 1 {
		return "", nil // a lone 07: unsupported
	}
	return strings.TrimRight(string(r.data), "\x00"), nil
}

func (d *Device) readReg(addr uint32) (uint32, error) {
	r, err := d.c.shortCmd("read register", cmdReadReg, le32(addr), 500*time.Millisecond)
	if err != nil {
		return 0, err
	}
	if len(r.data) < 8 || binary.LittleEndian.Uint32(r.data) != addr {
		return 0, fmt.Errorf("read register 0x%08X: bad reply % X: %w", addr, r.data, flasher.ErrProtocol)
	}
	return binary.LittleEndian.Uint32(r.data[4:]), nil
}

func (d *Device) writeReg(addr, val uint32) error {
	r, err := d.c.shortCmd("write register", cmdWriteReg, append(le32(addr), le32(val)...), 500*time.Millisecond)
	if err != nil {
		return err
	}
	if len(r.data) < 8 || binary.LittleEndian.Uint32(r.data) != addr {
		return fmt.Errorf("write register 0x%08X: bad reply % X: %w", addr, r.data, flasher.ErrProtocol)
	}
	return nil
}

// identifyMore reads what is faster to read at the negotiated rate: flash id
// and size (FULL), MAC, eFuse key.
func (d *Device) identifyMore(ctx context.Context) error {
	if d.proto == ProtoFull {
		if err := d.readFlashID(); err != nil {
			return err
		}
		key, err := d.readEfuseKey()
		if err != nil {
			d.note(flasher.Warning, "eFuse key not readable: "+err.Error())
		} else {
			d.info.EfuseKey = key
			if key != "tuya" {
				d.note(flasher.Warning, fmt.Sprintf("the chip's eFuse encryption key is %s, not Tuya's: never write a bootloader built for the Tuya key (a QIO image from 0x0) to it, it would not boot (use the BK7231M build, keep the existing bootloader)", key))
			}
		}
	}
	return d.readMAC(ctx)
}

// readFlashID asks the BootROM for the JEDEC id (long 0x0E with 9F).
func (d *Device) readFlashID() error {
	r, err := d.c.longCmd("get flash id", opGetMID, 500*time.Millisecond, []byte{0x9F, 0x00, 0x00, 0x00})
	if err != nil {
		return fmt.Errorf("identify: %w", err)
	}
	if len(r.data) < 4 {
		return fmt.Errorf("identify: flash id reply too short (% X): %w", r.data, flasher.ErrProtocol)
	}
	id := [3]byte{r.data[1], r.data[2], r.data[3]}
	d.info.FlashID = id
	if part, ok := lookupFlash(id); ok {
		d.flash = part
		d.info.FlashName = part.vendor + " " + part.name
	}
	size := flashSizeFromID(id)
	if size == 0 {
		return &flasher.HintError{
			Err:  fmt.Errorf("identify: flash id %02X %02X %02X is not valid: %w", id[0], id[1], id[2], flasher.ErrDevice),
			Hint: "the SPI flash does not answer; check the module's supply; a user fixed 00 00 00 by pulling P24 low during reset (ltchiptool #29)",
		}
	}
	d.size = uint32(size)
	d.info.FlashSize = size
	d.info.FlashSizeFrom = "JEDEC id"
	if _, ok := lookupFlash(id); !ok {
		d.note(flasher.Warning, fmt.Sprintf("flash %02X %02X %02X is not in tuyaflash's table; its protection bits are assumed to be the common 0x407C", id[0], id[1], id[2]))
		d.flash = flashPart{id: id, name: "unknown", srBytes: 2, mask: 0x407C, readOps: rd2, wrOps: wr1}
	}
	return nil
}

// readEfuseKey reads the 16-byte eFuse encryption key through the SCTRL
// eFuse registers (§6 step 6) and classifies it.
func (d *Device) readEfuseKey() (string, error) {
	var key [16]byte
	for a := uint32(0); a < 16; a++ {
		ctrl, err := d.readReg(regEfuseCtrl)
		if err != nil {
			return "", err
		}
		ctrl = (ctrl &^ 0x1F02) | a<<8 | 1
		if err := d.writeReg(regEfuseCtrl, ctrl); err != nil {
			return "", err
		}
		done := false
		for poll := 0; poll < 20; poll++ {
			v, err := d.readReg(regEfuseCtrl)
			if err != nil {
				return "", err
			}
			if v&1 == 0 {
				done = true
				break
			}
		}
		if !done {
			return "", fmt.Errorf("eFuse read of byte %d did not complete", a)
		}
		v, err := d.readReg(regEfuseData)
		if err != nil {
			return "", err
		}
		if v&0x100 == 0 {
			return "", fmt.Errorf("eFuse byte %d not valid", a)
		}
		key[a] = byte(v)
	}
	switch key {
	case tuyaEfuseKey:
		return "tuya", nil
	case [16]byte{}:
		return "zero", nil
	}
	return "other", nil
}

// readMAC reads the RF calibration (TLV) sector and takes the MAC from its
// tag 0x11111102 (§9.2).
func (d *Device) readMAC(ctx context.Context) error {
	addr := uint32(tlvAddrN)
	if d.info.Family == flasher.BK7231T {
		addr = tlvAddrT
	}
	if addr+sectorSize > d.size {
		return nil
	}
	buf := make([]byte, sectorSize)
	if _, err := d.readSectorVerified(ctx, addr, buf); err != nil {
		return fmt.Errorf("identify: read RF sector: %w", err)
	}
	mac, ok := ParseTLVMAC(buf)
	if !ok {
		d.note(flasher.Warning, fmt.Sprintf("no RF calibration data (TLV) at 0x%06X: MAC unknown; the device may have lost its calibration", addr))
		return nil
	}
	d.info.MAC = mac
	d.info.MACFrom = fmt.Sprintf("RF calibration sector at 0x%06X", addr)
	if ph, why := mac.Placeholder(); ph {
		d.note(flasher.Warning, fmt.Sprintf("MAC %s is a placeholder (%s): it does not identify this device", mac, why))
	}
	return nil
}

// ParseTLVMAC finds the MAC in a BK7231 RF calibration sector: a "TLV\0"
// header and length, then entries of u32 tag, u32 length, value, where tag
// 0x11111100 holds the others; the MAC is tag 0x11111102 with length 6.
func ParseTLVMAC(sector []byte) (flasher.MAC, bool) {
	var mac flasher.MAC
	if len(sector) < 16 || string(sector[:4]) != "TLV\x00" {
		return mac, false
	}
	total := int(binary.LittleEndian.Uint32(sector[4:8])) + 8
	if total > len(sector) {
		total = len(sector)
	}
	for off := 8; off+8 <= total; {
		tag := binary.LittleEndian.Uint32(sector[off:])
		n := int(binary.LittleEndian.Uint32(sector[off+4:]))
		if n < 0 || off+8+n > len(sector) {
			return mac, false
		}
		switch {
		case tag == 0x11111102 && n == 6:
			copy(mac[:], sector[off+8:off+14])
			return mac, true
		case tag == 0x11111100:
			off += 8 // a container: its entries follow
		default:
			off += 8 + n
		}
	}
	return mac, false
}

// errBaud marks a failed baud switch.
var errBaud = errors.New("baud switch failed")
