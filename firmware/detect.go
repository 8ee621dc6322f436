package firmware

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tuyaflash/tuyaflash/espimage"
	"github.com/tuyaflash/tuyaflash/firmware/demo"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/flasher/bk7231"
)

// Format is what an image file is, found by its content.
type Format string

// The formats. The writable ones may appear in the catalogue's "format".
const (
	// FormatESPApp is an ESP8266 image that boots from 0x0 (esptool's
	// V1 image, or Arduino's eboot + application as Tasmota and ESPHome
	// ship them).
	FormatESPApp Format = "esp-app"
	// FormatESPDump is a whole ESP8266 flash (1, 2 or 4 MiB) that starts
	// with a valid image; written back byte-exact, never patched.
	FormatESPDump Format = "esp-dump"
	// FormatBekenUA is a BK7231 application, encrypted and CRC16-framed,
	// for 0x11000 (OpenBeken's *_UA_*.bin).
	FormatBekenUA Format = "beken-ua"
	// FormatBekenAppRBL is LibreTiny's app partition image for 0x11000
	// (image_bk72xx_app.0x011000.rbl): an application like UA with the
	// partition's RBL header at its end.
	FormatBekenAppRBL Format = "beken-app-rbl"
	// FormatBekenQIO is a flash image from 0x0: bootloader and
	// application (OpenBeken's *_QIO_*.bin).
	FormatBekenQIO Format = "beken-qio"
	// FormatBekenDump is a whole 2 MiB BK7231 flash.
	FormatBekenDump Format = "beken-dump"
	// FormatUF2 is a LibreTiny/ESPHome UF2 package: parts with their
	// partitions and offsets.
	FormatUF2 Format = "uf2"

	// The formats below are recognised and refused for serial writing.

	// FormatESPSDKApp is an Espressif SDK V2 application (user1.bin, magic
	// 0xEA) that only runs behind the SDK bootloader.
	FormatESPSDKApp Format = "esp-sdk-app"
	// FormatBekenOTA is a Beken RBL OTA package (OpenBeken's *.rbl).
	FormatBekenOTA Format = "beken-ota"
	// FormatTuyaUG is a Tuya UG update file (OpenBeken's *_UG_*.bin).
	FormatTuyaUG Format = "tuya-ug"
	// FormatBekenEncrypted is an encrypted BK7231 application without its
	// CRC16 framing (an intermediate build file).
	FormatBekenEncrypted Format = "beken-encrypted-app"
	// FormatRawARM is an unencrypted ARM binary without CRC16 framing.
	FormatRawARM Format = "raw-arm"
	// FormatELF is linker output.
	FormatELF Format = "elf"
	// FormatZip is a zip archive.
	FormatZip Format = "zip"
	// FormatUnknown is anything else.
	FormatUnknown Format = "unknown"
)

// Writable reports whether images of the format may be written over serial.
func (f Format) Writable() bool {
	switch f {
	case FormatESPApp, FormatESPDump, FormatBekenUA, FormatBekenAppRBL, FormatBekenQIO, FormatBekenDump, FormatUF2:
		return true
	}
	return false
}

// Dump reports whether the format is a whole-flash dump.
func (f Format) Dump() bool { return f == FormatESPDump || f == FormatBekenDump }

// catalogueFormats may appear as a part's "format" in the manifest.
var catalogueFormats = []Format{FormatESPApp, FormatBekenUA, FormatBekenAppRBL, FormatBekenQIO, FormatUF2}

// Arch is the chip architecture an image is for.
type Arch string

// The architectures.
const (
	ArchESP8266 Arch = "esp8266"
	ArchBeken   Arch = "beken"
)

// ArchOf returns the architecture of a chip family ("" when unknown).
func ArchOf(f flasher.Family) Arch {
	switch {
	case f.Espressif():
		return ArchESP8266
	case f.Beken():
		return ArchBeken
	}
	return ""
}

// Region is data for one flash address.
type Region struct {
	Addr uint32 `json:"addr"`
	Data []byte `json:"-"`
	// Part names the LibreTiny partition a UF2 part belongs to.
	Part string `json:"part,omitempty"`
	Size int    `json:"size"`
}

// Detection is what Detect found out about an image file.
type Detection struct {
	Name   string `json:"name,omitempty"`
	Format Format `json:"format"`
	Arch   Arch   `json:"arch,omitempty"`
	// Family is the chip family the content is for, "" when the content
	// cannot tell (a BK7231 UA application runs on T and N alike as far
	// as its bytes show; an ESP8266 image fits ESP8285 too).
	Family flasher.Family `json:"family,omitempty"`
	// Offset is where the written part goes; Skip is how many leading
	// bytes of Data are not written by default (the bootloader of a
	// Beken QIO image or dump).
	Offset uint32 `json:"offset"`
	Skip   int    `json:"skip"`
	// Data is the image (unpacked when the file was gzip).
	Data []byte `json:"-"`
	// Regions are the parts of a UF2 package at their flash addresses.
	Regions []Region `json:"regions,omitempty"`
	// Key is the eFuse key a Beken image's code is encrypted for
	// (KeyTuya, KeyZero, "" when unknown); BootKey that of its bootloader
	// when it has one.
	Key        string `json:"key,omitempty"`
	BootKey    string `json:"boot_key,omitempty"`
	Bootloader string `json:"bootloader,omitempty"`
	// FlashMode and FlashSize are the header values of an ESP image.
	FlashMode *espimage.FlashMode `json:"flash_mode,omitempty"`
	FlashSize string              `json:"flash_size,omitempty"`
	// Version is the version an image carries where the format has one
	// (RBL header, UF2 tags).
	Version    string `json:"version,omitempty"`
	Compressed bool   `json:"gzip,omitempty"`
	// Demo is set for tuyaflash's demo images (package firmware/demo),
	// which only its virtual devices run (DemoGate).
	Demo *demo.Info `json:"demo,omitempty"`
	// SHA256 and Size are of the file as given (before unpacking).
	SHA256 string   `json:"sha256"`
	Size   int      `json:"size"`
	Notes  []string `json:"notes,omitempty"`
}

func (d *Detection) note(format string, args ...any) {
	d.Notes = append(d.Notes, fmt.Sprintf(format, args...))
}

// Length is how many bytes a default placement writes.
func (d *Detection) Length() int {
	if d.Format == FormatUF2 {
		n := 0
		for _, r := range d.Regions {
			n += len(r.Data)
		}
		return n
	}
	return max(len(d.Data)-d.Skip, 0)
}

// Describe is a one-line summary for people.
func (d *Detection) Describe() string {
	var b strings.Builder
	b.WriteString(formatTitle[d.Format])
	if d.Family != "" {
		fmt.Fprintf(&b, " for %s", d.Family)
	}
	if d.Format.Writable() {
		if d.Format == FormatUF2 {
			for i, r := range d.Regions {
				sep := ", "
				if i == 0 {
					sep = ": "
				}
				fmt.Fprintf(&b, "%s%d bytes at 0x%06X", sep, len(r.Data), r.Addr)
			}
		} else {
			fmt.Fprintf(&b, ", %d bytes", d.Length())
			if d.Skip > 0 {
				fmt.Fprintf(&b, " at 0x%06X (first 0x%X bytes of the file skipped)", d.Offset+uint32(d.Skip), d.Skip)
			} else {
				fmt.Fprintf(&b, " at 0x%06X", d.Offset)
			}
		}
	}
	return b.String()
}

var formatTitle = map[Format]string{
	FormatESPApp:         "ESP8266 firmware image",
	FormatESPDump:        "ESP8266 full flash dump",
	FormatESPSDKApp:      "ESP8266 SDK application (user1/user2.bin)",
	FormatBekenUA:        "BK7231 application (UA)",
	FormatBekenAppRBL:    "BK7231 app partition image (LibreTiny .rbl)",
	FormatBekenQIO:       "BK7231 bootloader + application image (QIO)",
	FormatBekenDump:      "BK7231 full flash dump",
	FormatUF2:            "LibreTiny UF2 package",
	FormatBekenOTA:       "Beken RBL OTA package",
	FormatTuyaUG:         "Tuya UG update file",
	FormatBekenEncrypted: "BK7231 encrypted application without CRC16 framing",
	FormatRawARM:         "raw ARM binary",
	FormatELF:            "ELF file",
	FormatZip:            "zip archive",
	FormatUnknown:        "unknown data",
}

// MaxImageSize is the largest file Detect accepts: the largest flash an
// ESP8266 header can name.
const MaxImageSize = 16 << 20

// espDumpSizes are the flash sizes of ESP8266/ESP8285 modules a full dump
// has.
var espDumpSizes = []int{1 << 20, 2 << 20, 4 << 20}

// Detect finds out what data is by its content (name is used for messages
// only) and where it goes by default. Files that must not be written over
// serial (OTA packages, Tuya UG files, ELF, unknown bytes) come back with
// their Detection and an error that wraps flasher.ErrRefused and says what
// to use instead.
func Detect(data []byte, name string) (*Detection, error) {
	sum := sha256.Sum256(data)
	d := &Detection{Name: filepath.Base(name), SHA256: hex.EncodeToString(sum[:]), Size: len(data), Format: FormatUnknown}
	if name == "" {
		d.Name = ""
	}
	if len(data) == 0 {
		return d, refuse("", "", "the file is empty")
	}
	if len(data) > MaxImageSize {
		return d, refuse("", "", "the file is %d MiB, larger than any flash tuyaflash writes (16 MiB)", len(data)>>20)
	}
	if bytes.HasPrefix(data, []byte{0x1F, 0x8B}) {
		inner, err := gunzip(data)
		if err != nil {
			return d, refuse("", "use the uncompressed .bin", "the file starts like gzip but does not unpack: %v", err)
		}
		if bytes.HasPrefix(inner, []byte{0x1F, 0x8B}) {
			return d, refuse("", "", "the file is gzip inside gzip")
		}
		d.Compressed = true
		d.note("unpacked from gzip: %d bytes", len(inner))
		data = inner
	}
	d.Data = data
	err := detectContent(d)
	if err == nil {
		d.markDemo()
	}
	d.nameNotes(name)
	d.clean()
	return d, err
}

// gunzip unpacks at most MaxImageSize bytes.
func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(io.LimitReader(zr, MaxImageSize+1))
	if err != nil {
		return nil, err
	}
	if len(out) > MaxImageSize {
		return nil, fmt.Errorf("unpacks to more than 16 MiB")
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("unpacks to nothing")
	}
	return out, nil
}

func detectContent(d *Detection) error {
	b := d.Data
	switch {
	case bytes.HasPrefix(b, []byte{'U', 'F', '2', '\n'}):
		return detectUF2(d)
	case bytes.HasPrefix(b, []byte{0x7F, 'E', 'L', 'F'}):
		d.Format = FormatELF
		return refuse("", "write the .bin or .uf2 the build made from it", "this is an ELF file (linker output), not a flash image")
	case bytes.HasPrefix(b, []byte{'P', 'K', 3, 4}):
		d.Format = FormatZip
		return refuse("", "unpack the archive and pick the image for your chip", "this is a zip archive")
	case b[0] == espimage.MagicV1 || b[0] == espimage.MagicV2:
		return detectESP(d)
	}
	return detectBeken(d)
}

func detectESP(d *Detection) error {
	im, err := espimage.Parse(d.Data)
	if err != nil {
		hint := "the file is damaged or not an ESP8266 image: download it again"
		if errors.Is(err, espimage.ErrNotImage) {
			hint = "tuyaflash writes ESP8266/ESP8285 and Beken BK72xx images; use the build for your chip"
		}
		return refuse("", hint, "%v", err)
	}
	d.Arch, d.Family = ArchESP8266, flasher.ESP8266
	mode := im.FlashMode
	d.FlashMode = &mode
	d.FlashSize, _, _ = im.FlashSize()
	for _, w := range im.Warnings {
		d.note("%s", w)
	}
	if im.Format == espimage.FormatV2 {
		d.Format = FormatESPSDKApp
		return refuse("", "write a complete image that boots from 0x0 (Tasmota's tasmota.bin, ESPHome's firmware.bin), or restore a full backup",
			"this is an Espressif SDK application (user1.bin), which only runs behind the SDK bootloader")
	}
	d.Format = FormatESPApp
	for _, n := range espDumpSizes {
		if len(d.Data) == n {
			d.Format = FormatESPDump
			d.note("a whole %d MiB flash: written back byte-exact, its header never patched", n>>20)
		}
	}
	return nil
}

func detectBeken(d *Detection) error {
	b := d.Data
	if isTuyaUG(b) {
		d.Format, d.Arch = FormatTuyaUG, ArchBeken
		return refuse("", "UG files are for tuya-cloudcutter and Tuya OTA; over serial write the UART image: OpenBK7231T_UA_<version>.bin on BK7231T, OpenBK7231N_QIO_<version>.bin on BK7231N ('tuyaflash firmware list' shows them)",
			"this is a Tuya UG update file, not a flash image")
	}
	if h, ok := parseRBL(b); ok {
		d.Format, d.Arch, d.Version = FormatBekenOTA, ArchBeken, h.Version
		return refuse("", "upload .rbl files in the OpenBeken web page (OTA tab) of a device that already runs OpenBeken; over serial write the UART image: OpenBK7231T_UA_<version>.bin on BK7231T, OpenBK7231N_QIO_<version>.bin on BK7231N",
			"this is a Beken RBL OTA package (%q %s), which the running firmware installs, not the chip's loader", h.Name, h.Version)
	}
	d.Arch = ArchBeken
	if k := appKey(b, 0); k != "" {
		d.Format, d.Offset, d.Key = FormatBekenUA, bekenAppOffset, k
		if h, ok := trailerRBL(b); ok {
			d.Format, d.Version = FormatBekenAppRBL, h.Version
			d.note("LibreTiny app partition image %q %s", h.Name, h.Version)
		}
		d.keyNote()
		return nil
	}
	switch {
	case bytes.HasPrefix(b, appSigTuya):
		d.Format = FormatBekenEncrypted
		return refuse("", "write the CRC-framed UA image (OpenBK7231T_UA_*.bin) or LibreTiny's .uf2", "this is an encrypted BK7231 application without its CRC16 framing: the chip would not start it")
	case bytes.HasPrefix(b, appSigPlain):
		d.Format = FormatRawARM
		return refuse("", "write the CRC-framed image the build made (UA, QIO or .uf2)", "this is a raw ARM binary without CRC16 framing: the chip would not start it")
	}
	if unitOK(b, 0) && unitOK(b, bekenUnit) {
		if ok := detectBekenFlash(d); ok {
			return d.bekenChipCheck()
		}
	}
	d.Arch = ""
	return refuse("--raw", "tuyaflash writes ESP8266 images (0xE9), BK7231 UA/QIO images, LibreTiny .uf2 and full dumps; check that this is the file you meant (write --raw --addr ADDR writes a file as it is)",
		"tuyaflash does not know this file (it starts % X)", b[:min(len(b), 8)])
}

// detectBekenFlash recognises an image that starts at flash address 0:
// a CRC16-framed bootloader and, at 0x11000, an application.
func detectBekenFlash(d *Detection) bool {
	b := d.Data
	bl, known := identifyBootloader(b)
	app := appKey(b, bekenAppOffset)
	dump := slices.Contains(bekenDumpSizes, len(b))
	switch {
	case app == "" && !(known && dump):
		return false
	case dump:
		d.Format = FormatBekenDump
		d.note("a whole %d MiB flash", len(b)>>20)
	default:
		d.Format = FormatBekenQIO
		switch len(b) {
		case bekenQIOSizeT:
			d.note("1 MiB, the size of OpenBeken's BK7231T QIO image")
		case bekenQIOSizeN:
			d.note("0x%X bytes, the size of OpenBeken's BK7231N QIO image", bekenQIOSizeN)
		}
	}
	d.Offset, d.Skip, d.Key = 0, bekenAppOffset, app
	if known {
		d.Bootloader, d.BootKey = bl.Name, bl.Key
		d.Family = flasher.Family(bl.Model)
		if row, ok := bk7231.LookupChip(bl.Model); ok && row.Supported {
			d.Family = row.Family
			if row.QIOWhole && d.Format == FormatBekenQIO {
				d.Skip = 0 // written whole by default (Place)
			}
		}
		d.note("bootloader %s (%s)", bl.Name, bl.Model)
	} else {
		d.Bootloader = "unknown"
		d.note("the bootloader is not in tuyaflash's table, so the chip variant cannot be told")
	}
	if h, ok := bootRBL(b); ok {
		d.note("bootloader partition header %q %s", h.Name, h.Version)
	}
	if app == "" {
		d.note("no application found at 0x%X", bekenAppOffset)
	}
	d.keyNote()
	return true
}

// bekenChipCheck refuses images whose bootloader belongs to a Beken chip
// that the chip table only names (BK7231Q): tuyaflash knows no placement
// for it. Every supported row has one (Place).
func (d *Detection) bekenChipCheck() error {
	if d.Family == "" {
		return nil
	}
	if row, ok := bk7231.LookupChip(string(d.Family)); ok && row.Supported {
		return nil
	}
	return refuse("", "use the image built for your chip", "this image carries the bootloader of a %s, which tuyaflash does not flash", d.Family)
}

func (d *Detection) keyNote() {
	switch d.Key {
	case KeyTuya:
		d.note("application encrypted with the Tuya key (for chips with Tuya's eFuse key: BK7231T, most BK7231N)")
	case KeyZero:
		d.note("application not encrypted (for chips with an all-zero eFuse key: BK7231M and some BL2028N, BK7238)")
	}
}

// nameNotes says when the file name claims something the content does not
// show; the content decides.
func (d *Detection) nameNotes(name string) {
	up := strings.ToUpper(filepath.Base(name))
	if d.Arch == ArchBeken && d.Family == "" {
		if m := modelInName(up); m != "" {
			d.note("the name says %s; the content cannot tell which Beken chip it is for", m)
		}
	}
	if strings.HasSuffix(up, ".RBL") && (d.Format == FormatBekenUA || d.Format == FormatBekenAppRBL) {
		d.note("classified by content: an application for 0x%X despite the .rbl name", bekenAppOffset)
	}
}

// modelInName finds the longest chip table model an upper-case file name
// contains ("OPENBK7252N_QIO_1.0.BIN" names BK7252N, not BK7252).
func modelInName(up string) string {
	best := ""
	for _, c := range bk7231.Chips() {
		if c.Supported && len(c.Model) > len(best) && strings.Contains(up, c.Model) {
			best = c.Model
		}
	}
	return best
}

// ForRestore describes a whole-flash backup of a fam chip for Place with
// PlaceOptions.Restore. What Detect recognises keeps its detection (so an
// ESP image offered to a Beken chip is still refused); a dump whose content
// Detect cannot tell (erased application, unknown bootloader) is taken as
// the dump the backup says it is: a backup must stay restorable.
func ForRestore(data []byte, name string, fam flasher.Family) *Detection {
	d, err := Detect(data, name)
	if err == nil || len(data) == 0 || len(data) > MaxImageSize {
		return d
	}
	if d.Arch != "" && d.Arch != ArchOf(fam) {
		return d // a file for another architecture: Place refuses it
	}
	d.Arch, d.Family, d.Data, d.Offset, d.Skip = ArchOf(fam), "", data, 0, 0
	d.Format = FormatBekenDump
	if d.Arch == ArchESP8266 {
		d.Format = FormatESPDump
	} else {
		d.Skip = bekenAppOffset
	}
	d.note("content not recognised (%v); restored as the backup holds it", err)
	return d
}
