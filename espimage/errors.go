package espimage

import (
	"bytes"
	"errors"
	"fmt"
)

// The kinds of image errors; every *ImageError matches one with errors.Is.
var (
	// ErrNotImage: the file is not an ESP8266 image at all (wrong first
	// byte, or another known file type).
	ErrNotImage = errors.New("not an ESP8266 firmware image")
	// ErrMalformed: the file starts like an image but its structure is
	// broken (truncated, segment outside the file, impossible values).
	ErrMalformed = errors.New("damaged ESP8266 firmware image")
	// ErrChecksum: a checksum or CRC stored in the image does not match
	// its contents.
	ErrChecksum = errors.New("ESP8266 image checksum mismatch")
	// ErrNotPatchable: PatchHeader was asked to change an image the ROM
	// does not boot from 0x0 (a V2 application).
	ErrNotPatchable = errors.New("image header cannot be patched")
)

// ImageError says why a file is not a usable ESP8266 image.
type ImageError struct {
	Kind   error // ErrNotImage, ErrMalformed, ErrChecksum or ErrNotPatchable
	Offset int   // file offset of the problem
	Reason string
}

func (e *ImageError) Error() string {
	return fmt.Sprintf("%v: %s (at file offset 0x%X)", e.Kind, e.Reason, e.Offset)
}

// Unwrap returns the kind.
func (e *ImageError) Unwrap() error { return e.Kind }

func errAt(kind error, off int, format string, args ...any) *ImageError {
	return &ImageError{Kind: kind, Offset: off, Reason: fmt.Sprintf(format, args...)}
}

// foreign are file types users hand to a flasher by mistake, by their first
// bytes: gzip (RFC 1952), ELF, zip, UF2, the Beken and Tuya formats of the
// tuya-cloudcutter firmware check (RBL, QIO, UA, UG) and the first bytes of
// the BK7231N stock dumps in ../shared/testdata/bk7231.
var foreign = []struct {
	magic []byte
	what  string
}{
	{[]byte{0x1F, 0x8B}, "a gzip file (Tasmota's .bin.gz is for OTA updates): use the uncompressed .bin"},
	{[]byte{0x7F, 'E', 'L', 'F'}, "an ELF file (linker output): use the .bin built from it"},
	{[]byte{'P', 'K', 3, 4}, "a zip archive: unpack it and pick the .bin"},
	{[]byte{'U', 'F', '2', '\n'}, "a UF2 file (LibreTiny/ESPHome builds for Beken chips)"},
	{[]byte{'R', 'B', 'L', 0}, "a Beken RBL OTA package (for BK7231 chips)"},
	{[]byte{0x43, 0x09, 0xB5, 0x96}, "a Beken BK7231 flash image (QIO)"},
	{[]byte{0x69, 0x0C, 0xB5, 0x96}, "a Beken BK7231N flash image"},
	{[]byte{0x2F, 0x07, 0xB5, 0x94}, "a Beken BK7231 application image (UA)"},
	{[]byte{0x55, 0xAA, 0x55, 0xAA}, "a Tuya UG update file"},
}

// notImage explains a first byte that is neither 0xE9 nor 0xEA.
func notImage(b []byte) *ImageError {
	for _, f := range foreign {
		if bytes.HasPrefix(b, f.magic) {
			return errAt(ErrNotImage, 0, "this is %s", f.what)
		}
	}
	if bytes.Count(b[:min(len(b), 0x1000)], []byte{0xFF}) == min(len(b), 0x1000) {
		return errAt(ErrNotImage, 0, "the file starts with erased flash (0xFF); an ESP8266 image starts with 0xE9")
	}
	return errAt(ErrNotImage, 0, "first byte is 0x%02X; an ESP8266 image starts with 0xE9", b[0])
}
