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
	if file, err := LocalSpec(spec); err != nil {
		return nil, err
	} else if file {
		return resolveFile(spec)
	}
	if m == nil {
		return nil, errors.New("no firmware catalogue")
	}
	ch, err := m.Lookup(spec, chip)
	if err != nil {
		return nil, err
	}
	fw, b := ch.Firmware, ch.Build
	part, err := writablePart(ch)
	if err != nil {
		return nil, err
	}
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

// LocalSpec tells, without reading it, whether --firmware SPEC is a local
// file (true) or a catalogue name (false); the error is for a path that
// does not exist (SPEC has a folder or an image extension) or is not a
// regular file.
func LocalSpec(spec string) (bool, error) {
	st, err := os.Stat(spec)
	switch {
	case err == nil && st.Mode().IsRegular():
		return true, nil
	case err == nil:
		return false, fmt.Errorf("%s is not a file", spec)
	case looksLikePath(spec):
		return false, &flasher.HintError{Err: fmt.Errorf("firmware %s: %w", spec, fs.ErrNotExist),
			Hint: "check the path; catalogue names (tasmota, openbeken …) are listed by 'tuyaflash firmware list'"}
	}
	return false, nil
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

// Candidates lists the catalogue builds that --firmware NAME can mean on a
// chip of family fam, before the chip is connected: for a BK7231N the
// builds of every eFuse key (the chip tells its key once connected), and
// with fam "" those of every family the name covers. The error is Lookup's
// when nothing fits (an unknown name, or no build for fam).
func Candidates(m *Manifest, name string, fam flasher.Family) ([]Choice, error) {
	fams := []flasher.Family{fam}
	if fam == "" {
		fams = Families
	}
	var out []Choice
	for _, f := range fams {
		keys := []string{""}
		if f == flasher.BK7231N {
			keys = append(keys, KeyTuya, KeyZero)
		}
		if c := ChipFor(f); c.Family != f {
			f, keys = c.Family, []string{c.EfuseKey} // --chip bk7231m
		}
		for _, k := range keys {
			ch, err := m.Lookup(name, Chip{f, k})
			if err != nil {
				continue
			}
			dup := false
			for _, c := range out {
				dup = dup || (c.Firmware == ch.Firmware && c.Build == ch.Build)
			}
			if !dup {
				out = append(out, ch)
			}
		}
	}
	if len(out) == 0 {
		_, err := m.Lookup(name, ChipFor(fam))
		return nil, err
	}
	return out, nil
}

// Prefetch makes sure every candidate build of --firmware NAME (see
// Candidates) is in the cache and passes its checks, so that a write
// fails on a download before the user power-cycles anything; Resolve then
// finds the chip's build in the cache.
func Prefetch(ctx context.Context, m *Manifest, name string, fam flasher.Family, c *Cache) ([]*Result, error) {
	choices, err := Candidates(m, name, fam)
	if err != nil {
		return nil, err
	}
	var out []*Result
	for _, ch := range choices {
		fw, b := ch.Firmware, ch.Build
		part, err := writablePart(ch)
		if err != nil {
			return nil, err
		}
		loc := m.Location(part)
		if !isURL(loc) {
			if _, err := os.Stat(loc); err != nil {
				return nil, fmt.Errorf("firmware %s for %s: %w", fw.Name, b.ChipFamily, err)
			}
			continue
		}
		if c == nil {
			return nil, errors.New("no firmware cache")
		}
		res, err := c.Fetch(ctx, Request{URL: loc, SHA256: part.SHA256, Size: part.Size, Moving: fw.Moving, Format: part.Format, Label: fw.Name + " " + fw.Version})
		if err != nil {
			return nil, err
		}
		out = append(out, res)
	}
	return out, nil
}

// writablePart is the one file of a build tuyaflash can write: not a
// per-device ESPHome build, not a multi-part one.
func writablePart(ch Choice) (*Part, error) {
	fw, b := ch.Firmware, ch.Build
	if fw.UserFile {
		return nil, &flasher.HintError{Err: fmt.Errorf("%s is built for each device; there is no file to download", fw.Name),
			Hint: userFileHint(b)}
	}
	if len(b.Parts) != 1 {
		return nil, fmt.Errorf("%s for %s has %d parts; tuyaflash writes single-part builds: %w", fw.Name, b.ChipFamily, len(b.Parts), flasher.ErrUnsupported)
	}
	return &b.Parts[0], nil
}
