package ops

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tuyaflash/tuyaflash/backup"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/flasher/bk7231"
	"github.com/tuyaflash/tuyaflash/transport"
)

// bootloaderEnd is where a Beken bootloader ends and the app begins.
const bootloaderEnd = 0x11000

// Plan describes a write before it happens (what --dry-run prints).
type Plan struct {
	Family    flasher.Family `json:"family"`
	FlashSize int            `json:"flash_size"`
	Addr      uint32         `json:"addr"`
	Size      int            `json:"size"`
	// Skip is how many leading bytes of the file are not written (the
	// bootloader part of a restore on a chip whose bootloader answers the
	// UART: BK7231T/U, BK7252).
	Skip int `json:"skip,omitempty"`
	// Sectors is how many 4 KiB sectors the write touches at most.
	Sectors int `json:"sectors"`
	// WireSeconds estimates the transfer at the negotiated rate.
	WireSeconds float64  `json:"wire_seconds"`
	Notes       []string `json:"notes,omitempty"`
}

func (p Plan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "write %d bytes to 0x%06X-0x%06X of the %d KiB flash of a %s", p.Size, p.Addr, p.Addr+uint32(p.Size)-1, p.FlashSize/1024, p.Family)
	if p.Skip > 0 {
		fmt.Fprintf(&b, " (first 0x%X bytes of the file skipped)", p.Skip)
	}
	fmt.Fprintf(&b, "\n  up to %d sectors erased and written, each verified by the chip; sectors already holding the data are skipped", p.Sectors)
	fmt.Fprintf(&b, "\n  about %.0f s on the wire", p.WireSeconds)
	for _, n := range p.Notes {
		b.WriteString("\n  " + n)
	}
	return b.String()
}

// writeChecker is implemented by chips that know their own forbidden
// ranges (flasher/bk7231.Device).
type writeChecker interface {
	CheckWrite(addr uint32, size int) error
}

// PlanWrite checks that data may go to addr on the chip and describes the
// write. Refusals wrap flasher.ErrRefused and say why.
func PlanWrite(dev flasher.Device, addr uint32, data []byte) (Plan, error) {
	info := dev.Info()
	p := Plan{Family: info.Family, FlashSize: info.FlashSize, Addr: addr, Size: len(data)}
	if len(data) == 0 {
		return p, fmt.Errorf("the image is empty: %w", flasher.ErrRefused)
	}
	if len(data) > info.FlashSize {
		return p, fmt.Errorf("the image is %d KiB, larger than the chip's %d KiB flash: %w", (len(data)+1023)/1024, info.FlashSize/1024, flasher.ErrRefused)
	}
	if wc, ok := dev.(writeChecker); ok {
		if err := wc.CheckWrite(addr, len(data)); err != nil {
			return p, err
		}
	} else if uint64(addr)+uint64(len(data)) > uint64(info.FlashSize) {
		return p, fmt.Errorf("%d bytes at 0x%06X go past the end of the %d KiB flash: %w", len(data), addr, info.FlashSize/1024, flasher.ErrRefused)
	}
	first := addr &^ 0xFFF
	last := (addr + uint32(len(data)) + 0xFFF) &^ 0xFFF
	p.Sectors = int(last-first) / 0x1000
	// Each sector costs its 4 KiB plus framing on the wire.
	p.WireSeconds = transport.WireTime(int64(p.Sectors)*(4096+60), max(info.Baud, 1)).Seconds()
	return p, nil
}

// Write writes data at addr after PlanWrite's checks.
func Write(ctx context.Context, dev flasher.Device, addr uint32, data []byte, prog flasher.Progress) (flasher.WriteResult, error) {
	if _, err := PlanWrite(dev, addr, data); err != nil {
		return flasher.WriteResult{Addr: addr, Size: len(data)}, err
	}
	return dev.Write(ctx, addr, data, prog)
}

// MismatchError lists how a backup's sidecar differs from the chip.
type MismatchError struct {
	Diffs []string
	// Family is set when the backup is of another chip family, which no
	// flag overrides.
	Family bool
}

func (e *MismatchError) Error() string {
	return "the backup is not from this chip: " + strings.Join(e.Diffs, "; ")
}

// Is makes a MismatchError match flasher.ErrRefused.
func (e *MismatchError) Is(target error) bool { return target == flasher.ErrRefused }

// MatchSidecar checks that a backup belongs to the connected chip: family,
// flash size, flash id and MAC where both sides know them.
func MatchSidecar(info flasher.Info, sc backup.Sidecar) error {
	var d []string
	family := sc.Family != "" && !strings.EqualFold(sc.Family, string(info.Family))
	if family {
		d = append(d, fmt.Sprintf("backup is of a %s, the chip is a %s", sc.Family, info.Family))
	}
	if sc.FlashSize != 0 && sc.FlashSize != info.FlashSize {
		d = append(d, fmt.Sprintf("backup flash size %d KiB, chip %d KiB", sc.FlashSize/1024, info.FlashSize/1024))
	}
	if id := info.FlashIDString(); sc.FlashID != "" && id != "" && !strings.EqualFold(sc.FlashID, id) {
		d = append(d, fmt.Sprintf("backup flash id %s, chip %s", sc.FlashID, id))
	}
	if sc.MAC != "" && info.HasMAC() && sc.MACPlaceholder == "" {
		if ph, _ := info.MAC.Placeholder(); !ph {
			if m, err := flasher.ParseMAC(sc.MAC); err == nil && m != info.MAC {
				d = append(d, fmt.Sprintf("backup MAC %s, chip %s", sc.MAC, info.MAC))
			}
		}
	}
	if len(d) > 0 {
		return &MismatchError{Diffs: d, Family: family}
	}
	return nil
}

// PrecheckWrite applies the chip table's bootloader rule for a chip named
// by family (--chip, a virtual device) before it is connected, so that a
// write the chip would refuse is refused before the power-cycle prompt.
// Families without a Beken row pass.
func PrecheckWrite(fam flasher.Family, addr uint32, size int) error {
	if !fam.Beken() {
		return nil
	}
	row, ok := bk7231.LookupChip(string(fam))
	if !ok {
		return nil
	}
	return row.CheckWrite(addr, size, 0)
}

// keepsBootloader reports whether the chip's bootloader area is never
// written: the chip table says so (BK7231T/U, BK7252), or the chip is a
// Beken one tuyaflash has no row for.
func keepsBootloader(info flasher.Info) bool {
	if !info.Family.Beken() {
		return false
	}
	row, ok := bk7231.ChipOf(info)
	return !ok || !row.BootloaderWritable
}

// RestorePlan checks a backup against the chip and works out what to write:
// on the chips whose bootloader answers the UART (BK7231T/U, BK7252: the
// chip table's BootloaderWritable) the bootloader part is skipped and
// stays as it is. force
// overrides a mismatch of flash size, flash id or MAC, and the plan's
// notes name what it overrode; a backup of another chip family is refused
// even with force (it cannot boot on this chip).
func RestorePlan(dev flasher.Device, b *backup.Backup, force bool) (Plan, []byte, error) {
	info := dev.Info()
	var overridden []string
	if err := MatchSidecar(info, b.Sidecar); err != nil {
		var me *MismatchError
		switch {
		case errors.As(err, &me) && me.Family:
			return Plan{}, nil, &flasher.HintError{Err: err, Hint: "a dump of another chip family cannot boot on this chip, so --force does not override this; restore this chip's own backup ('tuyaflash inventory' lists them)"}
		case !force:
			return Plan{}, nil, &flasher.HintError{Err: err, Hint: "restore only a device's own backup; --force overrides a different MAC, flash id or flash size (never another chip family)"}
		case errors.As(err, &me):
			overridden = me.Diffs
		}
	}
	addr := b.Sidecar.Offset
	data := b.Data
	skip := 0
	keep := keepsBootloader(info)
	if keep && addr < bootloaderEnd {
		skip = int(bootloaderEnd - addr)
		if skip >= len(data) {
			return Plan{}, nil, fmt.Errorf("the backup holds only the %s bootloader area, which is never written: %w", info.Family, flasher.ErrRefused)
		}
		data, addr = data[skip:], bootloaderEnd
	}
	p, err := PlanWrite(dev, addr, data)
	p.Skip = skip
	if skip > 0 {
		p.Notes = append(p.Notes, fmt.Sprintf("the %s bootloader (0x000000-0x010FFF) is kept as it is", info.Family))
	}
	if len(overridden) > 0 {
		p.Notes = append(p.Notes, "--force overrides: "+strings.Join(overridden, "; "))
	}
	return p, data, err
}
