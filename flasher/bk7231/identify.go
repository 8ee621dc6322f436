package bk7231

import (
	"bytes"
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
	return fmt.Sprintf("this is a %s (%s); tuyaflash does not support it: it supports %s", e.Chip, e.Detail, supportedModels())
}

// Is makes an UnsupportedChipError match flasher.ErrUnsupported.
func (e *UnsupportedChipError) Is(target error) bool { return target == flasher.ErrUnsupported }

// identify finds the chip's row in the chip table (§6): the bootloader
// fingerprint first, then the protocol's behaviour, then the chip id
// register (FULL) or the boot version (BASIC_TUYA). Rows that share a chip
// id (BK7231N, BK7231M) are told apart by the eFuse key in identifyMore.
func (d *Device) identify(ctx context.Context) error {
	// Raw CheckCRC(0, 256) before the size is known: FULL chips hash 257
	// bytes, the others 256; the table holds what each returns.
	raw, err := d.rawCRC(ctx, 0, 256)
	if err != nil {
		return fmt.Errorf("identify: %w", err)
	}
	crc := raw ^ 0xFFFFFFFF
	if crc == crcFlashUnreadable {
		return &flasher.HintError{
			Err:  fmt.Errorf("the chip answers but its flash reads as zeros (bootloader CRC 0x%08X): %w", crc, flasher.ErrDevice),
			Hint: "the SPI flash is not accessible; a user fixed this by pulling P24 low during reset (ltchiptool #29). Check the module's supply under load.",
		}
	}
	d.bl, d.blKnown = lookupBootloader(crc)
	if !d.blKnown || d.opts.AskVirtual {
		d.askVirtual()
	}
	switch v := d.info.Virtual; {
	case d.blKnown:
		d.proto = d.bl.proto
		d.info.Bootloader = d.bl.name
	case v != nil:
		d.info.Bootloader = fmt.Sprintf("the simulator's own synthetic bootloader (%s, CRC 0x%08X)", v.Sim, crc)
	default:
		d.info.Bootloader = fmt.Sprintf("unknown (CRC 0x%08X)", crc)
	}
	if !d.blKnown {
		if d.proto, err = d.probeProtocol(ctx); err != nil {
			return err
		}
	}
	ver := ""
	if d.proto == ProtoBasicTuya {
		if ver, err = d.bootVersion(); err != nil {
			d.note(flasher.Warning, "boot version not readable: "+err.Error())
		}
	}
	rows, what, err := d.candidates()
	if err != nil {
		return err
	}
	if err := d.pick(rows, what); err != nil {
		return err
	}
	switch d.proto {
	case ProtoFull:
		d.info.Protocol = "BootROM (FULL)"
	case ProtoBasicTuya:
		d.info.Protocol = "bootloader (BASIC_TUYA)"
		if ver != "" {
			d.info.Protocol = "bootloader " + ver + " (BASIC_TUYA)"
		}
	default:
		d.info.Protocol = "bootloader (" + d.proto.String() + ")"
	}
	if !d.blKnown && d.info.Virtual == nil {
		d.note(flasher.Warning, "bootloader not in tuyaflash's table ("+d.info.Bootloader+"); identified by protocol behaviour")
	}
	return nil
}

// askVirtual sends the virtual-identification command (contract C2) and
// keeps the answer of a simulator in Info().Virtual. A real BootROM or
// bootloader answers the unknown-command status (7) or nothing; a LinkCheck
// follows in any case, since a bootloader may count an unknown command as
// a broken one and ignore erase and program until the next LinkCheck
// (§4.3).
func (d *Device) askVirtual() {
	r, err := d.c.shortCmd("virtual identification", flasher.VirtualCode, []byte(flasher.VirtualQuery), virtualWait)
	if err == nil {
		if v, ok := flasher.ParseVirtual(r.data); ok {
			d.info.Virtual = v
			d.events.Emit(flasher.Note, fmt.Sprintf("virtual device: %s simulating %s", v.Sim, v.Chip))
		}
	}
	d.c.drop(20 * time.Millisecond)
	_, _ = d.c.shortCmd("link check", cmdLinkCheck, nil, 200*time.Millisecond)
}

// virtualWait is how long a simulator's answer to the identification
// command may take (its JSON is under 240 bytes: 21 ms at 115200 baud,
// plus an adapter's latency timer).
const virtualWait = 300 * time.Millisecond

// candidates returns the rows the chip can be, and what identified them.
func (d *Device) candidates() ([]Chip, string, error) {
	if d.proto != ProtoFull {
		if d.blKnown {
			return rowsWhere(func(c *Chip) bool { return c.Model == d.bl.model }), "bootloader " + d.bl.name, nil
		}
		return rowsWhere(func(c *Chip) bool { return c.Proto == d.proto }), d.proto.String() + " bootloader", nil
	}
	id, err := d.readReg(regChipID)
	if err != nil {
		return nil, "", fmt.Errorf("identify: read chip id: %w", err)
	}
	d.info.ChipID = id
	what := fmt.Sprintf("chip id 0x%X", id)
	rows := rowsWhere(func(c *Chip) bool { return c.matchesID(regChipID, id) })
	if len(rows) == 0 {
		// Rows whose chip answers at another register (BK7236/BK7258).
		for _, reg := range idRegisters() {
			if reg == regChipID {
				continue
			}
			v, err := d.readReg(reg)
			if err != nil || v == 0 {
				continue
			}
			if rows = rowsWhere(func(c *Chip) bool { return c.matchesID(reg, v) }); len(rows) > 0 {
				d.info.ChipID = v
				what = fmt.Sprintf("chip id 0x%X at 0x%08X", v, reg)
				break
			}
		}
	}
	if len(rows) == 0 {
		return d.unknownChipID(what)
	}
	if d.blKnown && d.bl.model != rows[0].Model && rowOf(d.bl.model).Family != rows[0].Family {
		d.note(flasher.Warning, fmt.Sprintf("the bootloader (%s) is %s's, the chip id says %s: going by the chip id", d.bl.name, d.bl.model, rows[0].Model))
	}
	return rows, what, nil
}

// unknownChipID handles a FULL chip whose id is in no row: refused, unless
// --chip names a FULL row.
func (d *Device) unknownChipID(what string) ([]Chip, string, error) {
	if f := d.opts.Family; f != "" {
		rows := rowsWhere(func(c *Chip) bool { return c.Supported && c.Proto == ProtoFull && c.is(f) })
		if len(rows) > 0 {
			d.note(flasher.Warning, fmt.Sprintf("%s is in no row of tuyaflash's chip table; treating the chip as a %s as asked", what, f))
			return rows, what, nil
		}
	}
	chip := "BK72xx with a BootROM"
	if d.blKnown {
		chip = d.bl.model
	}
	return nil, "", &UnsupportedChipError{Chip: chip, Detail: what + ", in no row of tuyaflash's chip table; --chip NAME forces a chip you know it is"}
}

// is reports whether the row is what a --chip family names: its family, or
// its model (BK7231M).
func (c *Chip) is(f flasher.Family) bool {
	return c.Family == f || strings.EqualFold(c.Model, string(f))
}

// rowOf returns the row of a model, or an empty row.
func rowOf(model string) Chip {
	for _, c := range chips {
		if c.Model == model {
			return c
		}
	}
	return Chip{}
}

// pick settles on a row: --chip narrows the candidates (and is refused
// when it names none of them), an unsupported chip is refused, and
// candidates that only a key can tell apart stay for identifyMore.
func (d *Device) pick(rows []Chip, what string) error {
	if f := d.opts.Family; f != "" {
		var keep []Chip
		for _, c := range rows {
			if c.is(f) {
				keep = append(keep, c)
			}
		}
		if len(keep) == 0 {
			return fmt.Errorf("--chip %s given, but the chip is a %s (%s): %w", f, modelsOf(rows), what, flasher.ErrRefused)
		}
		rows = keep
	}
	if len(rows) == 0 {
		return &UnsupportedChipError{Chip: "BK72xx", Detail: what}
	}
	var supported []Chip
	for _, c := range rows {
		if c.Supported {
			supported = append(supported, c)
		}
	}
	if len(supported) == 0 {
		return &UnsupportedChipError{Chip: rows[0].Name(), Detail: what}
	}
	for _, c := range supported[1:] {
		if c.Key == "" {
			var flags []string
			for _, c := range supported {
				flags = append(flags, "--chip "+strings.ToLower(c.Model))
			}
			return &flasher.HintError{
				Err:  fmt.Errorf("the chip answers like a %s (%s); tuyaflash cannot tell which: %w", modelsOf(rows), what, flasher.ErrUnsupported),
				Hint: "say which chip it is with " + strings.Join(flags, " or "),
			}
		}
	}
	d.rows = supported
	d.setChip(supported[0])
	return nil
}

// modelsOf joins the rows' models with "or".
func modelsOf(rows []Chip) string {
	var m []string
	for _, c := range rows {
		if len(m) == 0 || m[len(m)-1] != c.Model {
			m = append(m, c.Model)
		}
	}
	return strings.Join(m, " or ")
}

// setChip makes c the chip's row.
func (d *Device) setChip(c Chip) {
	d.chip = c
	d.proto = c.Proto
	d.info.Family = c.Family
	d.info.Model = c.Model
	if c.Size == SizeTable {
		size, from := c.TableSize, fmt.Sprintf("chip table (%s modules carry %d MiB)", c.Model, c.TableSize/mib)
		if d.blKnown && d.bl.size != 0 {
			size, from = d.bl.size, fmt.Sprintf("bootloader table (%s modules carry %d MiB)", c.Model, d.bl.size/mib)
		}
		d.size = size
		d.info.FlashSize = int(size)
		d.info.FlashSizeFrom = from
	}
}

// rawCRC sends CheckCRC with unmodified start and end and returns the raw
// register value, followed by a LinkCheck (a bootloader re-protects the
// flash after a CRC until the next LinkCheck, §4.3); it is retried like
// every command whose answer decides what happens next.
func (d *Device) rawCRC(ctx context.Context, start, end uint32) (uint32, error) {
	var raw uint32
	err := d.retry(ctx, "check CRC", start, hintLink, func() error {
		r, err := d.c.shortCmd("check CRC", cmdCheckCRC, append(le32(start), le32(end)...), 2*time.Second)
		if err != nil {
			return err
		}
		if len(r.data) < 4 {
			return fmt.Errorf("check CRC: short reply: %w", flasher.ErrProtocol)
		}
		raw = binary.LittleEndian.Uint32(r.data)
		_, err = d.c.shortCmd("link check", cmdLinkCheck, nil, 500*time.Millisecond)
		return err
	})
	return raw, err
}

// probeProtocol tells FULL from bootloader protocols for an unknown
// bootloader (§6 step 2): CRC(0x11000, 0x11100) covers 257 bytes on FULL
// chips and 256 on the others; the T bootloader answers ReadBootVersion.
func (d *Device) probeProtocol(ctx context.Context) (Protocol, error) {
	buf := make([]byte, sectorSize)
	if err := d.read4K(bootloaderEnd, buf); err != nil {
		return 0, fmt.Errorf("identify: read 0x%X: %w", bootloaderEnd, err)
	}
	raw, err := d.rawCRC(ctx, bootloaderEnd, bootloaderEnd+256)
	if err != nil {
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
// and size, eFuse key (which settles BK7231N against BK7231M), MAC.
func (d *Device) identifyMore(ctx context.Context) error {
	if d.proto == ProtoFull {
		if err := d.readFlashID(); err != nil {
			return err
		}
	}
	if d.chip.Size == SizeWrap {
		if err := d.detectWrapSize(ctx); err != nil {
			return err
		}
	}
	if err := d.settleKey(); err != nil {
		return err
	}
	if d.chip.Caveat != "" {
		d.note(flasher.Warning, d.chip.Caveat)
	}
	return d.readMAC(ctx)
}

// settleKey finds the eFuse key the way the row allows and moves to the row
// of that key among those sharing the chip id.
func (d *Device) settleKey() error {
	switch d.chip.KeyFrom {
	case KeyRegisters:
		key, err := d.readEfuseKey()
		if err != nil {
			d.note(flasher.Warning, "eFuse key not readable: "+err.Error())
			break
		}
		d.info.EfuseKey, d.info.EfuseKeyFrom = key, "eFuse registers"
	case KeyBootloader:
		if d.blKnown {
			d.info.EfuseKey = d.bl.key
			d.info.EfuseKeyFrom = "bootloader " + d.bl.name + " (built for this key; the chip cannot read its key out)"
		}
	}
	if len(d.rows) > 1 && d.info.EfuseKey != "" {
		best := d.rows[0]
		for _, c := range d.rows {
			if c.Key == d.info.EfuseKey {
				best = c
				break
			}
		}
		d.setChip(best)
	}
	if d.chip.Key != "" && d.info.EfuseKey != "" && d.chip.Key != d.info.EfuseKey {
		return fmt.Errorf("--chip %s given, but the chip's eFuse key is %s, not %s (%s): %w", d.chip.Model, d.info.EfuseKey, d.chip.Key, d.info.EfuseKeyFrom, flasher.ErrRefused)
	}
	if d.chip.KeyFrom == KeyRegisters && d.info.EfuseKey != "" && d.info.EfuseKey != keyTuya {
		d.note(flasher.Warning, fmt.Sprintf("the chip's eFuse encryption key is %s, not Tuya's: never write a bootloader built for the Tuya key (a QIO image from 0x0) to it, it would not boot (use the BK7231M build, keep the existing bootloader)", d.info.EfuseKey))
	}
	return nil
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

// detectWrapSize finds the flash size of a chip without a JEDEC id by the
// address wrap (§5.2 step 3): the 4 KiB at 0x11000 are read again at
// size+0x11000 for each candidate size, smallest first, and the first
// identical copy gives the size. Every page is checked against the chip's
// CRC: a size found too large would let a write wrap onto the bootloader.
// A blank page at 0x11000 tells nothing; the bootloader's first sector,
// which is never blank, is compared through the wrap instead: its copies at
// size and 2×size are both the bootloader only when size is the flash size
// (BK7231GUIFlashTool's "bootloader mirror" probe).
func (d *Device) detectWrapSize(ctx context.Context) error {
	page := func(wire uint32) ([]byte, error) {
		buf := make([]byte, sectorSize)
		_, err := d.readVerified(ctx, wire, buf)
		return buf, err
	}
	found := func(size uint32, from string) error {
		d.size = size
		d.info.FlashSize = int(size)
		d.info.FlashSizeFrom = from
		return nil
	}
	base, err := page(bootloaderEnd)
	if err != nil {
		return fmt.Errorf("identify: flash size: %w", err)
	}
	if !blank(base) {
		for _, s := range d.chip.WrapSizes {
			p, err := page(s + bootloaderEnd)
			if err != nil {
				return fmt.Errorf("identify: flash size: %w", err)
			}
			if bytes.Equal(p, base) {
				return found(s, fmt.Sprintf("address wrap (the 4 KiB at 0x011000 repeat at 0x%06X)", s+bootloaderEnd))
			}
		}
	} else {
		for _, s := range d.chip.WrapSizes {
			a, err := page(s)
			if err != nil {
				return fmt.Errorf("identify: flash size: %w", err)
			}
			b, err := page(2 * s)
			if err != nil {
				return fmt.Errorf("identify: flash size: %w", err)
			}
			if !blank(a) && bytes.Equal(a, b) {
				return found(s, fmt.Sprintf("address wrap (the bootloader repeats at 0x%06X and 0x%06X)", s, 2*s))
			}
		}
	}
	var tried []string
	for _, s := range d.chip.WrapSizes {
		tried = append(tried, fmt.Sprintf("%d MiB", s/mib))
	}
	return &flasher.HintError{
		Err:  fmt.Errorf("identify: the flash size of this %s is none of %s (no address wrap found): %w", d.chip.Model, strings.Join(tried, ", "), flasher.ErrDevice),
		Hint: "nothing was written. Run the command again; if this persists the chip is not what its bootloader says, or its flash is not one tuyaflash can size",
	}
}

// blank reports a page of one repeated 0x00 or 0xFF byte.
func blank(p []byte) bool {
	return bytes.Count(p, p[:1]) == len(p) && (p[0] == 0x00 || p[0] == 0xFF)
}

// readEfuseKey reads the 16-byte eFuse encryption key through the SCTRL
// eFuse registers (§6 step 6) and classifies it.
func (d *Device) readEfuseKey() (string, error) {
	var key [16]byte
	// The control register is read once; after that the poll that sees a
	// byte's read complete holds its current value (one command less per
	// byte: a round trip each, 16 ms on an FTDI bridge's default timer).
	ctrl, err := d.readReg(regEfuseCtrl)
	if err != nil {
		return "", err
	}
	for a := uint32(0); a < 16; a++ {
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
				ctrl, done = v, true
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
		return keyTuya, nil
	case [16]byte{}:
		return keyZero, nil
	}
	return keyOther, nil
}

// readMAC takes the MAC from the RF calibration (TLV) sector, looked for at
// the row's RF offsets in order (§9.2).
func (d *Device) readMAC(ctx context.Context) error {
	mac, addr, err := d.ReadMAC(ctx)
	if err != nil {
		return fmt.Errorf("identify: %w", err)
	}
	if addr == noRF {
		d.note(flasher.Warning, fmt.Sprintf("no RF calibration data (TLV) at %s: MAC unknown; the device may have lost its calibration", hexList(d.chip.RFOffsets)))
		return nil
	}
	d.info.MAC = mac
	d.info.MACFrom = fmt.Sprintf("RF calibration sector at 0x%06X", addr)
	if want := d.chip.RFOffsets[0]; addr != want {
		what := "after writing OpenBeken copy it there (as BK7231GUIFlashTool does), or the device loses its MAC and calibration"
		if d.chip.RFAfterWrite {
			what = "after writing firmware tuyaflash copies it there when that sector is blank (as BK7231GUIFlashTool does), keeping this one"
		}
		d.note(flasher.Warning, fmt.Sprintf("the RF calibration sector is at 0x%06X, not at 0x%06X where OpenBeken looks for it: %s", addr, want, what))
	}
	if ph, why := mac.Placeholder(); ph {
		d.note(flasher.Warning, fmt.Sprintf("MAC %s is a placeholder (%s): it does not identify this device", mac, why))
	}
	return nil
}

// noRF is ReadMAC's address when no RF offset holds calibration data.
const noRF = ^uint32(0)

// ReadMAC reads the RF calibration sector at each of the chip's RF offsets
// (Chip.RFOffsets) and returns the MAC of the first that holds one, with
// that offset; the offset is 0xFFFFFFFF when none does. After a write, it
// tells whether the MAC is still where the new firmware looks for it.
func (d *Device) ReadMAC(ctx context.Context) (flasher.MAC, uint32, error) {
	buf := make([]byte, sectorSize)
	for _, addr := range d.chip.RFOffsets {
		if addr+sectorSize > d.size {
			continue
		}
		if _, err := d.readSectorVerified(ctx, addr, buf); err != nil {
			return flasher.MAC{}, noRF, fmt.Errorf("read RF sector: %w", err)
		}
		if mac, ok := ParseTLVMAC(buf); ok {
			return mac, addr, nil
		}
	}
	return flasher.MAC{}, noRF, nil
}

// hexList formats addresses as "0x1E0000 or 0x1E3000".
func hexList(addrs []uint32) string {
	var s []string
	for _, a := range addrs {
		s = append(s, fmt.Sprintf("0x%06X", a))
	}
	return strings.Join(s, " or ")
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
