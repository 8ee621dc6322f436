package firmware

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/tuyaflash/tuyaflash/espimage"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/flasher/bk7231"
)

// The validation is written out in Go rather than run from a JSON Schema
// library: it needs checks a schema cannot express (a versioned address
// names its version, a GitHub source matches its path, a format fits its
// chip family and offset), it keeps the binary free of a schema engine,
// and its messages name the field. firmware-manifest.schema.json at the
// repository root describes the same shape for editors; a test keeps its
// enumerations in step with this file.

var (
	nameRe   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	sha256Re = regexp.MustCompile(`^[0-9a-f]{64}$`)
	repoRe   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$`)
)

// Families are the chip families a build may name. A BK7231M is a BK7231N
// with an all-zero eFuse key: its builds are BK7231N builds with
// "efuse_key": "zero".
var Families = []flasher.Family{flasher.ESP8266, flasher.ESP8285, flasher.BK7231T, flasher.BK7231N,
	flasher.BK7238, flasher.BK7231U, flasher.BK7252, flasher.BK7252N}

// sourceTypes are the values of a part's source.type.
var sourceTypes = []string{"github-release", "url"}

// expectedPlacement is the offset and skip a catalogue part of a format
// must declare for a build of family fam: what Place does with it by
// default (a QIO image is written whole on the chips whose row says so).
func expectedPlacement(f Format, fam flasher.Family) (offset uint32, skip int) {
	switch f {
	case FormatBekenUA, FormatBekenAppRBL:
		return bekenAppOffset, 0
	case FormatBekenQIO:
		if row, ok := bk7231.LookupChip(string(fam)); ok && row.QIOWhole {
			return 0, 0
		}
		return 0, bekenAppOffset
	}
	return 0, 0
}

type validator struct{ probs []Problem }

func (v *validator) add(path, format string, args ...any) {
	v.probs = append(v.probs, Problem{path, fmt.Sprintf(format, args...)})
}

func (m *Manifest) validate() []Problem {
	v := &validator{}
	if strings.TrimSpace(m.Name) == "" {
		v.add("name", "is required")
	}
	if len(m.Firmwares) == 0 {
		v.add("firmwares", "lists no firmware")
	}
	seen := map[string]int{}
	for i := range m.Firmwares {
		fw := &m.Firmwares[i]
		path := fmt.Sprintf("firmwares[%d]", i)
		if j, dup := seen[fw.Name]; dup {
			v.add(path+".name", "%q is also the name of firmwares[%d]", fw.Name, j)
		}
		seen[fw.Name] = i
		v.firmware(fw, path)
	}
	return v.probs
}

func (v *validator) firmware(fw *Firmware, path string) {
	if !nameRe.MatchString(fw.Name) {
		v.add(path+".name", "%q must be lower-case letters, digits, '.', '_' or '-'", fw.Name)
	}
	if !slices.Contains(kinds, fw.Kind) {
		v.add(path+".kind", "%q is none of %s", fw.Kind, list(kinds))
	}
	if fw.Version == "" && !fw.UserFile {
		v.add(path+".version", "is required")
	}
	if fw.Moving && fw.UserFile {
		v.add(path+".moving", "a user_file entry has no address to move")
	}
	if len(fw.Builds) == 0 {
		v.add(path+".builds", "lists no build")
	}
	seen := map[string]int{}
	for i := range fw.Builds {
		b := &fw.Builds[i]
		bp := fmt.Sprintf("%s.builds[%d]", path, i)
		key := string(b.ChipFamily) + "/" + b.EfuseKey
		if j, dup := seen[key]; dup {
			v.add(bp+".chipFamily", "builds[%d] is already for %s%s", j, b.ChipFamily, keySuffix(b.EfuseKey))
		}
		seen[key] = i
		v.build(fw, b, bp)
	}
}

func keySuffix(k string) string {
	if k == "" {
		return ""
	}
	return " with the " + k + " key"
}

func (v *validator) build(fw *Firmware, b *Build, path string) {
	if !slices.Contains(Families, b.ChipFamily) {
		v.add(path+".chipFamily", "%q is none of %s", b.ChipFamily, list(Families))
	}
	switch b.EfuseKey {
	case "":
	case KeyTuya, KeyZero:
		if b.ChipFamily != flasher.BK7231N {
			v.add(path+".efuse_key", "only BK7231N builds depend on the eFuse key")
		}
	default:
		v.add(path+".efuse_key", "%q is none of tuya, zero", b.EfuseKey)
	}
	if b.FlashMode != "" {
		mode, err := espimage.ParseFlashMode(b.FlashMode)
		switch {
		case err != nil:
			v.add(path+".flash_mode", "%v", err)
		case !b.ChipFamily.Espressif():
			v.add(path+".flash_mode", "only ESP8266/ESP8285 images have a flash mode")
		case b.ChipFamily == flasher.ESP8285 && mode != espimage.ModeDOUT && mode != espimage.ModeKeep:
			v.add(path+".flash_mode", "the ESP8285 boots only in dout")
		}
	}
	if len(b.Parts) == 0 {
		v.add(path+".parts", "lists no part")
	}
	for i := range b.Parts {
		v.part(fw, b, &b.Parts[i], fmt.Sprintf("%s.parts[%d]", path, i))
	}
}

func (v *validator) part(fw *Firmware, b *Build, p *Part, path string) {
	if !slices.Contains(catalogueFormats, p.Format) {
		v.add(path+".format", "%q is none of %s", p.Format, list(catalogueFormats))
	} else {
		esp := p.Format == FormatESPApp
		if b.ChipFamily.Espressif() != esp && slices.Contains(Families, b.ChipFamily) {
			v.add(path+".format", "a %s part does not fit a %s build", p.Format, b.ChipFamily)
		}
		off, skip := expectedPlacement(p.Format, b.ChipFamily)
		if p.Offset != off {
			v.add(path+".offset", "must be %d (0x%X) for a %s part", off, off, p.Format)
		}
		if p.Skip != skip {
			v.add(path+".skip", "must be %d (0x%X) for a %s part", skip, skip, p.Format)
		}
	}
	if p.SHA256 != "" && !sha256Re.MatchString(p.SHA256) {
		v.add(path+".sha256", "must be 64 lower-case hex digits (or empty until pinned)")
	}
	if p.SHA256 != "" && fw.Moving {
		v.add(path+".sha256", "a moving alias changes with every release; it cannot carry a checksum")
	}
	if p.Size > MaxImageSize {
		v.add(path+".size", "%d bytes is larger than any flash (16 MiB)", p.Size)
	}
	if fw.UserFile {
		if p.Path != "" || p.Source != nil || p.SHA256 != "" {
			v.add(path+".path", "a user_file entry takes the user's file: no path, source or sha256")
		}
		return
	}
	if p.Path == "" {
		v.add(path+".path", "is required (or mark the firmware user_file)")
		return
	}
	if u, err := url.Parse(p.Path); err != nil || (u.Scheme != "" && u.Scheme != "https" && u.Scheme != "http") {
		v.add(path+".path", "%q is neither an http(s) URL nor a relative path", p.Path)
	}
	if !fw.Moving && !strings.Contains(p.Path, fw.Version) {
		v.add(path+".path", "a pinned entry needs a versioned address naming %q; a moving \"latest\" address belongs in an entry marked moving", fw.Version)
	}
	if p.Source != nil {
		v.source(p, path+".source")
	}
}

func (v *validator) source(p *Part, path string) {
	s := p.Source
	if !slices.Contains(sourceTypes, s.Type) {
		v.add(path+".type", "%q is none of %s", s.Type, strings.Join(sourceTypes, ", "))
		return
	}
	if s.AssetPattern != "" {
		re, err := regexp.Compile(s.AssetPattern)
		switch {
		case err != nil:
			v.add(path+".asset_pattern", "%v", err)
		case s.Asset != "" && !re.MatchString(s.Asset):
			v.add(path+".asset_pattern", "does not match the asset %q", s.Asset)
		}
	}
	if s.Type != "github-release" {
		return
	}
	if !repoRe.MatchString(s.Repo) {
		v.add(path+".repo", "%q is not owner/name", s.Repo)
	}
	if s.Tag == "" {
		v.add(path+".tag", "is required for a github-release")
	}
	if s.Asset == "" {
		v.add(path+".asset", "is required for a github-release")
	}
	if want := GitHubAssetURL(s.Repo, s.Tag, s.Asset); s.Repo != "" && s.Tag != "" && s.Asset != "" && p.Path != want {
		v.add(strings.TrimSuffix(path, ".source")+".path", "is %q, the release asset's address is %q", p.Path, want)
	}
}

// GitHubAssetURL is the download address GitHub gives a release asset.
func GitHubAssetURL(repo, tag, asset string) string {
	return "https://github.com/" + repo + "/releases/download/" + url.PathEscape(tag) + "/" + url.PathEscape(asset)
}

func list[T ~string](vs []T) string {
	s := make([]string, len(vs))
	for i, x := range vs {
		s[i] = string(x)
	}
	return strings.Join(s, ", ")
}
