package firmware

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tuyaflash/tuyaflash/flasher"
)

// Resolved is an image ready for Place: what --firmware NAME|FILE named,
// fetched and detected.
type Resolved struct {
	Detection *Detection
	// Choice is the catalogue entry and build; zero for a local file.
	Choice Choice
	// Fetch says where the file came from and how it was checked; nil
	// for a local file.
	Fetch *Result
	// Options carries what the catalogue decides for Place: the flash
	// mode of the build ("" when it names none) and the sha256 the file
	// was checked against. Callers overlay the user's flags.
	Options PlaceOptions
}

// Resolve turns --firmware SPEC into an image for the chip. SPEC is a file
// (detected by content) or a catalogue name looked up in m for the chip,
// fetched through c (which may be offline) and checked against the
// catalogue: sha256 or pin, and the format the entry declares.
func Resolve(ctx context.Context, spec string, chip Chip, m *Manifest, c *Cache) (*Resolved, error) {
	if st, err := os.Stat(spec); err == nil && st.Mode().IsRegular() {
		return resolveFile(spec)
	} else if err == nil {
		return nil, fmt.Errorf("%s is not a file", spec)
	} else if looksLikePath(spec) {
		return nil, &flasher.HintError{Err: fmt.Errorf("firmware %s: %w", spec, fs.ErrNotExist),
			Hint: "check the path; catalogue names (tasmota, openbeken …) are listed by 'tuyaflash firmware list'"}
	}
	if m == nil {
		return nil, errors.New("no firmware catalogue")
	}
	ch, err := m.Lookup(spec, chip)
	if err != nil {
		return nil, err
	}
	fw, b := ch.Firmware, ch.Build
	if fw.UserFile {
		return nil, &flasher.HintError{Err: fmt.Errorf("%s is built for each device; there is no file to download", fw.Name),
			Hint: userFileHint(b)}
	}
	if len(b.Parts) != 1 {
		return nil, fmt.Errorf("%s for %s has %d parts; tuyaflash writes single-part builds: %w", fw.Name, b.ChipFamily, len(b.Parts), flasher.ErrUnsupported)
	}
	part := &b.Parts[0]
	loc := m.Location(part)
	var data []byte
	var res *Result
	if isURL(loc) {
		if c == nil {
			return nil, errors.New("no firmware cache")
		}
		res, err = c.Fetch(ctx, Request{URL: loc, SHA256: part.SHA256, Size: part.Size, Moving: fw.Moving, Format: part.Format, Label: fw.Name + " " + fw.Version})
		if err != nil {
			return nil, err
		}
		data, err = os.ReadFile(res.Path)
	} else {
		data, err = os.ReadFile(loc)
	}
	if err != nil {
		return nil, fmt.Errorf("firmware %s: %w", fw.Name, err)
	}
	det, err := Detect(data, loc)
	if err != nil {
		return nil, err
	}
	if det.Format != part.Format {
		return nil, refuse("", "the catalogue entry is wrong or the file was replaced", "%s is a %s, the catalogue says %s", loc, det.Format, part.Format)
	}
	if res == nil && part.SHA256 != "" && det.SHA256 != part.SHA256 {
		return nil, checksumf("the local file differs from the one the catalogue describes", "%s has sha256 %s, the catalogue expects %s", loc, det.SHA256, part.SHA256)
	}
	r := &Resolved{Detection: det, Choice: ch, Fetch: res, Options: PlaceOptions{FlashMode: b.FlashMode, SHA256: part.SHA256}}
	if res != nil && res.Status != StatusUnpinned {
		r.Options.SHA256 = res.SHA256
	}
	return r, nil
}

func resolveFile(path string) (*Resolved, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	det, err := Detect(data, path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &Resolved{Detection: det}, nil
}

// looksLikePath tells a mistyped file name from a catalogue name.
func looksLikePath(s string) bool {
	if strings.ContainsAny(s, `/\`) {
		return true
	}
	switch strings.ToLower(filepath.Ext(s)) {
	case ".bin", ".gz", ".uf2", ".rbl", ".img", ".elf", ".zip":
		return true
	}
	return false
}

func userFileHint(b *Build) string {
	if b.ChipFamily.Espressif() {
		return "compile your device's YAML with ESPHome and pass the result: --firmware path/to/firmware.bin"
	}
	return "compile your device's YAML with ESPHome (LibreTiny) and pass the result: --firmware path/to/firmware.uf2 (or image_" + strings.ToLower(string(b.ChipFamily)) + "_app.0x011000.rbl)"
}
