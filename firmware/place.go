package firmware

import (
	"fmt"
	"strings"

	"github.com/tuyaflash/tuyaflash/espimage"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/flasher/bk7231"
)

// PlaceOptions are the user's choices for a write or restore.
type PlaceOptions struct {
	// Addr is --addr; nil takes the address from the detection. An
	// address that contradicts the detection is refused.
	Addr *uint32
	// IncludeBootloader is --include-bootloader: write the bootloader part
	// of a Beken QIO image too (chips whose bootloader may be written, and
	// only when the chip's eFuse key matches the bootloader's; BK7238 and
	// BK7252N take their QIO images whole anyway).
	IncludeBootloader bool
	// FlashMode is the ESP flash mode from --flash-mode or the catalogue
	// build: "qio", "qout", "dio", "dout"; "" or "keep" leaves the header
	// as it is (an ESP8285 still gets dout).
	FlashMode string
	// FlashSize and FlashFreq set header byte 3 of an ESP image written at
	// 0x0 (esptool names: "1MB", "4MB", "40m", "80m" …); "" or "keep"
	// leaves it.
	FlashSize, FlashFreq string
	// Restore marks the data as the device's own backup: written back as
	// it was read (never header-patched; the dump's bootloader part is
	// written where the chip table allows it, skipped on the chips whose
	// bootloader answers the UART).
	Restore bool
	// SHA256 is the checksum the catalogue or the cache's pin file
	// expects of the file; "" when there is none. A mismatch is refused.
	SHA256 string

	// precheck: the chip is not connected yet (Precheck); gates that
	// need what only the chip can tell are left for Place.
	precheck bool
}

// Precheck applies, before connecting, every gate that does not need the
// chip: what the file is, its checksum, the flags that do not fit it, and
// when the family is known (--chip, a virtual device) the family, address
// and bootloader gates. Place runs them all again with the chip's Info.
func Precheck(fam flasher.Family, det *Detection, o PlaceOptions) error {
	if det == nil {
		return refuse("", "", "no image")
	}
	if fam == "" {
		if !det.Format.Writable() {
			return refuse("", "run 'tuyaflash firmware verify FILE' to see what the file is", "a %s is not written over serial", formatTitle[det.Format])
		}
		if err := det.CheckSHA256(o.SHA256); err != nil {
			return err
		}
		if o.IncludeBootloader && det.Format != FormatBekenQIO && det.Format != FormatBekenDump {
			return refuse("--include-bootloader", "leave --include-bootloader out: it applies to Beken QIO images, which carry a bootloader",
				"--include-bootloader: a %s has no bootloader part to write", formatTitle[det.Format])
		}
		if det.Arch == ArchESP8266 && o.FlashMode != "" {
			if _, err := espimage.ParseFlashMode(o.FlashMode); err != nil {
				return fmt.Errorf("--flash-mode: %w", err)
			}
		}
		return nil
	}
	o.precheck = true
	_, err := Place(PrecheckInfo(fam), det, o)
	return err
}

// PrecheckInfo is what is known of a chip of family fam before it is
// connected, from the chip table: a --chip bk7231m names a BK7231N with an
// all-zero eFuse key.
func PrecheckInfo(fam flasher.Family) flasher.Info {
	info := flasher.Info{Family: fam}
	if row, ok := bk7231.LookupChip(string(fam)); ok && fam.Beken() {
		info.Family, info.Model, info.EfuseKey = row.Family, row.Model, row.Key
	}
	return info
}

// Placement is what Place decided to write.
type Placement struct {
	Format Format `json:"format"`
	// Regions are written in order; each is one ops.PlanWrite/Write.
	Regions []Region `json:"regions"`
	// Skip is how many leading bytes of the image are not written.
	Skip int `json:"skip,omitempty"`
	// Patched is true when an ESP header was changed (flash mode).
	Patched bool     `json:"patched,omitempty"`
	Notes   []string `json:"notes,omitempty"`
}

// Size is the number of bytes the placement writes.
func (p *Placement) Size() int {
	n := 0
	for _, r := range p.Regions {
		n += len(r.Data)
	}
	return n
}

func (p *Placement) note(format string, args ...any) {
	p.Notes = append(p.Notes, fmt.Sprintf(format, args...))
}

func (p *Placement) add(addr uint32, data []byte) {
	p.Regions = append(p.Regions, Region{Addr: addr, Data: data, Size: len(data)})
}

// Place applies the safety gates to an image for the connected chip and
// says what goes where. It is pure: no I/O, same answer for the same
// input. Refusals wrap flasher.ErrRefused as a *RefusalError that names the
// reason and the flag that would change it, inside a *flasher.HintError
// saying what to do instead.
func Place(info flasher.Info, det *Detection, o PlaceOptions) (*Placement, error) {
	if det == nil {
		return nil, refuse("", "", "no image")
	}
	if !det.Format.Writable() {
		return nil, refuse("", "run 'tuyaflash firmware verify FILE' to see what the file is", "a %s is not written over serial", formatTitle[det.Format])
	}
	if err := det.CheckSHA256(o.SHA256); err != nil {
		return nil, err
	}
	if err := familyGate(info, det); err != nil {
		return nil, err
	}
	if o.IncludeBootloader && det.Format != FormatBekenQIO && !(det.Format == FormatBekenDump && !o.Restore) {
		return nil, refuse("--include-bootloader", "leave --include-bootloader out: it applies to Beken QIO images, which carry a bootloader",
			"--include-bootloader: a %s has no bootloader part to write", formatTitle[det.Format])
	}
	p := &Placement{Format: det.Format}
	var err error
	switch det.Arch {
	case ArchBeken:
		err = placeBeken(info, det, o, p)
	case ArchESP8266:
		err = placeESP(info, det, o, p)
	default:
		err = refuse("", "", "the image's chip architecture is unknown")
	}
	if err != nil {
		return nil, err
	}
	if err := sizeGate(info, det, p); err != nil {
		return nil, err
	}
	return p, nil
}

// CheckSHA256 refuses the file when want is set and differs from its
// sha256 (the error matches ErrChecksum and flasher.ErrRefused).
func (d *Detection) CheckSHA256(want string) error {
	if want == "" || strings.EqualFold(want, d.SHA256) {
		return nil
	}
	return checksumf("download it again ('tuyaflash firmware fetch NAME'); if it keeps differing, the published file changed and the catalogue needs an update",
		"the file's sha256 is %s, expected %s", d.SHA256, strings.ToLower(want))
}

// familyGate refuses an image for another chip.
func familyGate(info flasher.Info, det *Detection) error {
	chip := ArchOf(info.Family)
	if chip == "" {
		return refuse("--chip", "", "the chip family %q is not one tuyaflash flashes", info.Family)
	}
	if det.Arch != chip || (det.Family != "" && !fits(det.Family, info.Family)) {
		what := string(det.Family)
		if what == "" {
			what = string(det.Arch)
		}
		return refuse("", fmt.Sprintf("use the %s build of the firmware ('tuyaflash firmware list %s')", info.Family, ListFlags(ChipOf(info))),
			"wrong chip family: this %s is for %s, the chip is a %s", formatTitle[det.Format], what, info.Family)
	}
	return nil
}

// fits reports whether an image for family img runs on chip: the same
// family, or an ESP8266 image on an ESP8285 (same core and image format;
// the flash mode gate makes it DOUT).
func fits(img, chip flasher.Family) bool {
	return img == chip || (img == flasher.ESP8266 && chip == flasher.ESP8285)
}

// bekenRow is the chip table row of a Beken chip: its bootloader rule and
// QIO placement. A family the table does not know gets the strictest rule
// (bootloader never written).
func bekenRow(info flasher.Info) bk7231.Chip {
	if row, ok := bk7231.ChipOf(info); ok {
		return row
	}
	return bk7231.Chip{Model: string(info.Family), Family: info.Family}
}

func placeBeken(info flasher.Info, det *Detection, o PlaceOptions, p *Placement) error {
	row := bekenRow(info)
	switch det.Format {
	case FormatBekenUA, FormatBekenAppRBL:
		p.add(bekenAppOffset, det.Data)
	case FormatUF2:
		for _, r := range det.Regions {
			if r.Addr < bekenAppOffset {
				return bootloaderRefusal(row, "the UF2 package writes partition %q at 0x%06X, inside the bootloader", r.Part, r.Addr)
			}
			p.Regions = append(p.Regions, r)
		}
	case FormatBekenQIO, FormatBekenDump:
		if err := placeBekenFlash(info, row, det, o, p); err != nil {
			return err
		}
	}
	if err := keyGate(info, det, p); err != nil {
		return err
	}
	if err := addrGate(det, o, p); err != nil {
		return err
	}
	if !row.BootloaderWritable {
		for _, r := range p.Regions {
			if r.Addr < bekenAppOffset {
				return bootloaderRefusal(row, "a write at 0x%06X would change the %s bootloader", r.Addr, row.Model)
			}
		}
	}
	return nil
}

// placeBekenFlash places an image that starts at 0x0. Its bootloader part
// is written on a chip whose bootloader may be written (a FULL chip, whose
// BootROM still answers if it does not start) when the data is the chip's
// own backup, when the user asks for it, or when the row writes QIO
// images whole (BK7238, BK7252N); else the chip keeps its own.
func placeBekenFlash(info flasher.Info, row bk7231.Chip, det *Detection, o PlaceOptions, p *Placement) error {
	if o.IncludeBootloader && !row.BootloaderWritable {
		return bootloaderRefusal(row, "--include-bootloader asks to write the %s bootloader", row.Model)
	}
	qioWhole := row.QIOWhole && det.Format == FormatBekenQIO && !o.Restore
	whole := row.BootloaderWritable && (o.Restore || o.IncludeBootloader || qioWhole)
	if !whole {
		if len(det.Data) <= bekenAppOffset {
			return refuse("", "", "the image holds only the bootloader area (0x%X bytes), which is not written", len(det.Data))
		}
		p.Skip = bekenAppOffset
		p.add(bekenAppOffset, det.Data[bekenAppOffset:])
		if !row.BootloaderWritable {
			p.note("the %s bootloader (0x000000-0x010FFF) is kept: the first 0x%X bytes of the image are skipped", row.Model, bekenAppOffset)
		} else {
			p.note("the chip's own bootloader (0x000000-0x010FFF) is kept: the first 0x%X bytes of the image are skipped (--include-bootloader writes them too)", bekenAppOffset)
		}
		return nil
	}
	// The bootloader is written: its code must be encrypted for the key
	// in the chip's eFuses, or the chip never starts again (only its ROM
	// still answers the UART; bk7231-protocol.md §9.3).
	chipKey := info.EfuseKey
	if o.Restore {
		// The device's own backup carries the bootloader it booted with.
		if chipKey != "" && det.BootKey != "" && chipKey != det.BootKey {
			return refuse("", "this dump cannot be from this chip; restore the chip's own backup",
				"the dump's bootloader (%s) needs the %s eFuse key, the chip has the %s key: it would not start", det.Bootloader, det.BootKey, chipKey)
		}
		p.add(0, det.Data)
		p.note("restored byte-exact from 0x000000, bootloader included")
		return nil
	}
	if qioWhole {
		return placeQIOWhole(row, chipKey, det, p)
	}
	keep := "run without --include-bootloader to keep the chip's own bootloader"
	switch {
	case chipKey == "" && o.precheck:
		p.add(0, det.Data) // the key gate runs once the chip tells its key
		return nil
	case chipKey == "":
		return refuse("--include-bootloader", keep, "the chip's eFuse key is unknown, so the bootloader cannot be checked against it")
	case det.BootKey == "":
		return refuse("--include-bootloader", keep, "the image's bootloader is not in tuyaflash's table, so the key it needs is unknown")
	case det.BootKey != chipKey:
		if chipKey == KeyZero && row.Family == flasher.BK7231N {
			keep += "; chips with a zero key (BK7231M) need OpenBeken's BK7231M build ('tuyaflash firmware list --chip bk7231n --efuse-key zero' shows it)"
		}
		return refuse("--include-bootloader", keep,
			"the image's bootloader (%s) needs the %s eFuse key, the chip has the %s key: it would not start", det.Bootloader, det.BootKey, chipKey)
	}
	p.add(0, det.Data)
	p.note("bootloader %s written too (it matches the chip's %s eFuse key)", det.Bootloader, chipKey)
	return nil
}

// placeQIOWhole writes a QIO image from 0x0 on a chip whose row says so
// (BK7238, BK7252N). The image's bootloader must fit the chip's key where
// both are known; where one is not, the write goes ahead as
// BK7231GUIFlashTool's does (it checks no key on these chips): the chip
// answers from its BootROM whatever the bootloader, so the backup can
// always be restored.
func placeQIOWhole(row bk7231.Chip, chipKey string, det *Detection, p *Placement) error {
	if chipKey != "" && det.BootKey != "" && chipKey != det.BootKey {
		return refuse("", fmt.Sprintf("use the %s build of the firmware ('tuyaflash firmware list --chip %s')", row.Model, strings.ToLower(row.Model)),
			"the image's bootloader (%s) needs the %s eFuse key, the chip has the %s key: it would not start", det.Bootloader, det.BootKey, chipKey)
	}
	p.add(0, det.Data)
	p.note("written whole from 0x000000, bootloader included: a %s takes OpenBeken's QIO image from 0x0 (as BK7231GUIFlashTool writes it); its BootROM still answers if it does not start, so the backup can be restored", row.Model)
	switch {
	case chipKey != "" && det.BootKey != "":
		p.note("the image's bootloader %s matches the chip's %s eFuse key", det.Bootloader, chipKey)
	case det.BootKey == "":
		p.note("the image's bootloader is not in tuyaflash's table, so its key could not be checked against the chip's")
	default:
		p.note("the chip's eFuse key is not known (its bootloader is not in tuyaflash's table), so it could not be checked against the image's %s (built for the %s key)", det.Bootloader, det.BootKey)
	}
	return nil
}

func bootloaderRefusal(row bk7231.Chip, format string, args ...any) error {
	if !row.BootloaderWritable {
		return refuse("", fmt.Sprintf("the %s bootloader is never written over UART (it is what answers the UART: a broken one can only be repaired over SPI); write the application from 0x11000: UA images, QIO images (their first 0x11000 bytes are skipped) or the .uf2 app", row.Model),
			format+"; nothing below 0x11000 is written on a %s", append(args, row.Model)...)
	}
	return refuse("", "write LibreTiny's app image or the UF2 of a regular build, which leave the bootloader alone", format, args...)
}

// keyGate refuses an application encrypted for another eFuse key than the
// chip's: the bootloader would not start it.
func keyGate(info flasher.Info, det *Detection, p *Placement) error {
	chip := info.EfuseKey
	if det.Key == "" || (chip != KeyTuya && chip != KeyZero && chip != "other") {
		return nil
	}
	if p.Skip == 0 && det.Format.Dump() {
		return nil // a dump written whole carries its own bootloader, checked above
	}
	if det.Key == chip {
		return nil
	}
	hint := fmt.Sprintf("use the build for your chip's key ('tuyaflash firmware list %s')", ListFlags(ChipOf(info)))
	switch {
	case info.Family != flasher.BK7231N:
	case chip == KeyZero:
		hint = "chips with an all-zero eFuse key (BK7231M, some BL2028N) need OpenBeken's BK7231M build ('tuyaflash firmware list --chip bk7231n --efuse-key zero' shows it)"
	case det.Key == KeyZero:
		hint = "this is a build for zero-key chips (BK7231M); use the regular BK7231N build"
	}
	return refuse("", hint, "the application is built for the %s eFuse key, the chip has the %s key: it would not start", det.Key, chip)
}

// addrGate refuses an --addr that differs from where the image goes.
func addrGate(det *Detection, o PlaceOptions, p *Placement) error {
	if o.Addr == nil || len(p.Regions) == 0 || p.Regions[0].Addr == *o.Addr {
		return nil
	}
	flag, hint := "--addr", fmt.Sprintf("leave --addr out: tuyaflash writes this %s at 0x%06X", formatTitle[det.Format], p.Regions[0].Addr)
	if det.Format == FormatBekenQIO && *o.Addr == 0 {
		hint += "; to write its bootloader too use --include-bootloader (chips whose bootloader may be written)"
	}
	return refuse(flag, hint, "--addr 0x%06X does not match the image: a %s goes to 0x%06X", *o.Addr, formatTitle[det.Format], p.Regions[0].Addr)
}

func keepIfEmpty(s string) string {
	if s == "" {
		return "keep"
	}
	return s
}

func placeESP(info flasher.Info, det *Detection, o PlaceOptions, p *Placement) error {
	if o.Addr != nil && *o.Addr != 0 {
		return refuse("--addr", "leave --addr out: an ESP8266 image that boots is written at 0x0",
			"--addr 0x%06X does not match the image: a %s goes to 0x000000", *o.Addr, formatTitle[det.Format])
	}
	data := det.Data
	mode := espimage.ModeKeep
	if o.FlashMode != "" {
		m, err := espimage.ParseFlashMode(o.FlashMode)
		if err != nil {
			return fmt.Errorf("--flash-mode: %w", err)
		}
		mode = m
	}
	if info.Family == flasher.ESP8285 {
		if mode != espimage.ModeKeep && mode != espimage.ModeDOUT {
			return refuse("--flash-mode", "use --flash-mode dout, or leave it out",
				"the ESP8285's internal flash is wired for DOUT; flash mode %s would not boot", mode)
		}
		mode = espimage.ModeDOUT
	}
	if det.Format.Dump() || o.Restore {
		if mode != espimage.ModeKeep && det.FlashMode != nil && *det.FlashMode != mode {
			p.note("flash mode %s not applied: a dump or backup is written back byte-exact", mode)
		}
		if len(data) != info.FlashSize && info.FlashSize > 0 && len(data) < info.FlashSize {
			p.note("the dump holds %d KiB; the chip has %d KiB (the rest stays as it is)", len(data)>>10, info.FlashSize>>10)
		}
		p.add(0, data)
		return nil
	}
	size, freq := keepIfEmpty(o.FlashSize), keepIfEmpty(o.FlashFreq)
	if mode != espimage.ModeKeep || size != "keep" || freq != "keep" {
		patched, changed, err := espimage.PatchHeader(data, mode, size, freq)
		if err != nil {
			flag := "--flash-mode"
			switch {
			case size != "keep" && strings.Contains(err.Error(), "size"):
				flag = "--flash-size"
			case freq != "keep" && strings.Contains(err.Error(), "frequency"):
				flag = "--flash-freq"
			}
			return refuse(flag, "", "the image header cannot take flash mode %s, size %s, frequency %s: %v", mode, size, freq, err)
		}
		if changed {
			p.Patched = true
			data = patched
		}
	}
	if err := espHeaderGate(info, det, data, size); err != nil {
		return err
	}
	p.Notes = append(p.Notes, espHeaderNotes(det.Data, data)...)
	p.add(0, data)
	return nil
}

// espHeaderGate refuses an image whose header, as it would be written,
// claims more flash than the chip has: the SDK keeps its settings at the
// end of the flash the header names, which the chip does not have.
func espHeaderGate(info flasher.Info, det *Detection, data []byte, size string) error {
	if info.FlashSize <= 0 || len(data) < 4 || data[0] != espimage.MagicV1 {
		return nil
	}
	name, n, ok := espimage.SizeFromCode(data[3])
	if !ok || n <= info.FlashSize {
		return nil
	}
	fit := espimage.SizeName(info.FlashSize)
	hint := "leave --flash-size at keep or give the chip's size"
	if fit != "" {
		hint = "use --flash-size " + fit + ", the chip's size"
	}
	what := "the image header says"
	if size != "keep" {
		what = "--flash-size " + size + " would write"
	}
	return refuse("--flash-size", hint, "%s %s flash into the image header, but the chip has %d KiB: the firmware would look for its settings past the end of the flash", what, name, info.FlashSize>>10)
}

// espHeaderNotes describe the header as written: what changed from the
// file, in esptool's names.
func espHeaderNotes(orig, data []byte) []string {
	if len(orig) < 4 || len(data) < 4 {
		return nil
	}
	var notes []string
	if orig[2] != data[2] {
		notes = append(notes, fmt.Sprintf("flash mode set to %s in the image header (was %s)", espimage.FlashMode(data[2]), espimage.FlashMode(orig[2])))
	}
	if orig[3]&0xF0 != data[3]&0xF0 {
		was, _, _ := espimage.SizeFromCode(orig[3])
		now, _, _ := espimage.SizeFromCode(data[3])
		notes = append(notes, fmt.Sprintf("flash size set to %s in the image header (was %s)", now, was))
	}
	if orig[3]&0x0F != data[3]&0x0F {
		notes = append(notes, fmt.Sprintf("flash frequency set to %s in the image header (was %s)", freqName(data[3]), freqName(orig[3])))
	}
	return notes
}

func freqName(b byte) string {
	switch b & 0x0F {
	case 0x0:
		return "40m"
	case 0x1:
		return "26m"
	case 0x2:
		return "20m"
	case 0xF:
		return "80m"
	}
	return fmt.Sprintf("code 0x%X", b&0x0F)
}

// sizeGate refuses anything that does not fit the flash.
func sizeGate(info flasher.Info, det *Detection, p *Placement) error {
	if info.FlashSize <= 0 {
		return nil
	}
	if len(det.Data) > info.FlashSize && det.Format != FormatUF2 {
		return refuse("", "use the image built for this chip's flash size", "the image is %d KiB, larger than the chip's %d KiB flash", (len(det.Data)+1023)/1024, info.FlashSize/1024)
	}
	for _, r := range p.Regions {
		if uint64(r.Addr)+uint64(len(r.Data)) > uint64(info.FlashSize) {
			return refuse("", "use the image built for this chip's flash size", "%d bytes at 0x%06X run past the end of the chip's %d KiB flash", len(r.Data), r.Addr, info.FlashSize/1024)
		}
	}
	return nil
}

// ListFlags are the flags of 'tuyaflash firmware list' that show what fits
// chip: --chip, and on a BK7231N with a known key --efuse-key (a zero-key
// chip's builds are listed only with it).
func ListFlags(chip Chip) string {
	f := "--chip " + strings.ToLower(string(chip.Family))
	if chip.Family == flasher.BK7231N && (chip.EfuseKey == KeyTuya || chip.EfuseKey == KeyZero) {
		f += " --efuse-key " + chip.EfuseKey
	}
	return f
}
