package ops

import (
	"bytes"
	"context"
	"fmt"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/flasher/bk7231"
)

// macReader is the Beken client's RF calibration lookup
// (flasher/bk7231.Device.ReadMAC).
type macReader interface {
	ReadMAC(ctx context.Context) (flasher.MAC, uint32, error)
}

// noRF is ReadMAC's address when no RF offset holds calibration data.
const noRF = ^uint32(0)

// rfSector is the size of the RF calibration (TLV) sector.
const rfSector = 0x1000

// RFReport is what CheckRF found after a write, and what it did.
type RFReport struct {
	// MAC is the MAC the RF sector holds now; Found is false when no RF
	// offset of the chip holds calibration data.
	MAC   flasher.MAC
	Found bool
	// At is where the firmware looks for the RF sector (the row's first
	// RF offset); Copied says the sector was copied there from From.
	At     uint32
	Copied bool
	From   uint32
	// OK: the MAC is where the firmware looks for it. Notes say what was
	// found and done; Warnings what the user must see.
	OK       bool
	Notes    []string
	Warnings []string
}

func (r *RFReport) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

func (r *RFReport) warn(format string, args ...any) {
	r.Warnings = append(r.Warnings, fmt.Sprintf(format, args...))
}

// CheckRF runs after a firmware write on a chip whose row asks for it
// (bk7231.Chip.RFAfterWrite: BK7238) and returns nil for any other chip.
// It checks that the MAC is still readable where the new firmware looks
// for it (the row's first RF offset, 0x1E0000), as BK7231GUIFlashTool does
// after writing a BK7238. When the calibration sits only at a later offset
// (Tuya's T1 layout keeps it at 0x1E3000) and the first offset's sector is
// blank, the sector is copied there and the MAC read again, as GUI does
// (it moves the TLV sector of its backup to 0x1E0000 when the MAC there is
// erased). The user's RF data is never erased: the sector it came from
// stays as it is, a first-offset sector that holds other data is left
// alone (reported), and nothing is copied when the plans just written
// covered either sector (the image decided what is there).
func CheckRF(ctx context.Context, dev flasher.Device, written []Plan) (*RFReport, error) {
	info := dev.Info()
	row, ok := bk7231.ChipOf(info)
	mr, reads := dev.(macReader)
	if !ok || !row.RFAfterWrite || !reads || len(row.RFOffsets) == 0 {
		return nil, nil
	}
	r := &RFReport{At: row.RFOffsets[0]}
	mac, at, err := mr.ReadMAC(ctx)
	if err != nil {
		return r, fmt.Errorf("check the MAC after the write: %w", err)
	}
	switch {
	case at == r.At:
		return r.found(info, mac), nil
	case at == noRF:
		r.warn("no RF calibration data (TLV) at %s after the write: the device has lost its MAC and Wi-Fi calibration; restore the backup's RF sector (its 4 KiB at the address the backup's sidecar MAC came from) before using the device", rfList(row.RFOffsets))
		return r, nil
	}
	r.From = at
	if covers(written, r.At) || covers(written, at) {
		r.warn("the MAC is at 0x%06X, not at 0x%06X where the new firmware looks for it; the image just written covers one of these sectors, so tuyaflash leaves them as the image put them", at, r.At)
		return r, nil
	}
	dst, err := readSector(ctx, dev, r.At)
	if err != nil {
		return r, err
	}
	if !isUniform(dst, 0xFF) {
		r.warn("the MAC is at 0x%06X, not at 0x%06X where the new firmware looks for it, and 0x%06X holds other data, which tuyaflash does not overwrite: the firmware will not find its MAC and calibration", at, r.At, r.At)
		return r, nil
	}
	src, err := readSector(ctx, dev, at)
	if err != nil {
		return r, err
	}
	if _, err := dev.Write(ctx, r.At, src, nil); err != nil {
		return r, &flasher.HintError{Err: fmt.Errorf("copy the RF sector from 0x%06X to 0x%06X: %w", at, r.At, err),
			Hint: fmt.Sprintf("the firmware is written; the RF data at 0x%06X is untouched. Run the same command again to retry the copy", at)}
	}
	r.Copied = true
	r.note("copied the RF calibration sector from 0x%06X to 0x%06X, where the new firmware looks for it (0x%06X is kept as it was)", at, r.At, at)
	mac2, at2, err := mr.ReadMAC(ctx)
	if err != nil {
		return r, fmt.Errorf("check the MAC after copying the RF sector: %w", err)
	}
	if at2 != r.At || mac2 != mac {
		return r, fmt.Errorf("after copying the RF sector to 0x%06X the MAC reads %s at 0x%06X: %w", r.At, mac2, at2, flasher.ErrVerify)
	}
	return r.found(info, mac2), nil
}

// found records a MAC read where the firmware looks for it.
func (r *RFReport) found(info flasher.Info, mac flasher.MAC) *RFReport {
	r.MAC, r.Found, r.OK = mac, true, true
	r.note("MAC %s readable at 0x%06X after the write", mac, r.At)
	if info.HasMAC() && mac != info.MAC {
		r.warn("the MAC at 0x%06X is %s, the chip reported %s before the write", r.At, mac, info.MAC)
	}
	return r
}

// readSector reads the 4 KiB at addr, verified by the chip.
func readSector(ctx context.Context, dev flasher.Device, addr uint32) ([]byte, error) {
	var b bytes.Buffer
	if err := dev.Read(ctx, addr, rfSector, &b, nil); err != nil {
		return nil, fmt.Errorf("read the RF sector at 0x%06X: %w", addr, err)
	}
	return b.Bytes(), nil
}

// covers reports whether a plan wrote into the sector at addr.
func covers(plans []Plan, addr uint32) bool {
	for _, p := range plans {
		if uint64(p.Addr) < uint64(addr)+rfSector && uint64(addr) < uint64(p.Addr)+uint64(p.Size) {
			return true
		}
	}
	return false
}

// rfList formats addresses as "0x1E0000 or 0x1E3000".
func rfList(addrs []uint32) string {
	s := ""
	for i, a := range addrs {
		if i > 0 {
			s += " or "
		}
		s += fmt.Sprintf("0x%06X", a)
	}
	return s
}
