package firmware

import (
	"fmt"
	"strings"

	"github.com/tuyaflash/tuyaflash/flasher"
)

// Choice is a catalogue entry and the build of it for one chip.
type Choice struct {
	Firmware *Firmware
	Build    *Build
}

// Chip is what catalogue lookups need to know about the target: its family
// and, on BK7231N, its eFuse key (KeyTuya, KeyZero, "other" or "" when
// unknown). flasher.Info converts with ChipOf.
type Chip struct {
	Family   flasher.Family
	EfuseKey string
}

// ChipOf takes the lookup facts from a detected chip.
func ChipOf(info flasher.Info) Chip { return Chip{info.Family, info.EfuseKey} }

// ChipFor is what the catalogue knows of a chip named by family before it
// is connected: a BK7231M is a BK7231N with the zero key.
func ChipFor(fam flasher.Family) Chip { return ChipOf(PrecheckInfo(fam)) }

// BuildFor picks the build of fw for chip, or nil when there is none. An
// ESP8285 takes an ESP8266 build when there is no ESP8285 one (same core
// and image format; Place makes the flash mode DOUT). On a BK7231N, a
// build for a key is taken only for a chip with that key; when the chip's
// key is unknown the Tuya-key build is the default, as most BK7231N
// modules carry Tuya's key.
func (fw *Firmware) BuildFor(chip Chip) *Build {
	best, bestScore := (*Build)(nil), 0
	for i := range fw.Builds {
		b := &fw.Builds[i]
		score := 0
		switch {
		case b.ChipFamily == chip.Family:
			score = 4
		case b.ChipFamily == flasher.ESP8266 && chip.Family == flasher.ESP8285:
			score = 2
		default:
			continue
		}
		switch {
		case b.EfuseKey == "":
		case b.EfuseKey == chip.EfuseKey:
			score++
		case chip.EfuseKey == "" && b.EfuseKey == KeyTuya:
		default:
			continue
		}
		if score > bestScore {
			best, bestScore = b, score
		}
	}
	return best
}

// Fits lists the entries with a build for chip, in catalogue order; with a
// zero Chip every build of every entry.
func (m *Manifest) Fits(chip Chip) []Choice {
	var out []Choice
	for i := range m.Firmwares {
		fw := &m.Firmwares[i]
		if chip.Family == "" {
			for j := range fw.Builds {
				out = append(out, Choice{fw, &fw.Builds[j]})
			}
			continue
		}
		if b := fw.BuildFor(chip); b != nil {
			out = append(out, Choice{fw, b})
		}
	}
	return out
}

// Lookup finds the entry --firmware NAME means for chip: the entry of that
// name, else the one pinned entry of that kind that has a build for the
// chip ("openbeken", "tasmota").
func (m *Manifest) Lookup(name string, chip Chip) (Choice, error) {
	name = strings.ToLower(strings.TrimSpace(name))
	var fw *Firmware
	for i := range m.Firmwares {
		if m.Firmwares[i].Name == name {
			fw = &m.Firmwares[i]
			break
		}
	}
	if fw == nil {
		for i := range m.Firmwares {
			f := &m.Firmwares[i]
			if string(f.Kind) == name && !f.Moving && f.BuildFor(chip) != nil {
				fw = f
				break
			}
		}
	}
	if fw == nil {
		return Choice{}, &flasher.HintError{
			Err:  fmt.Errorf("no firmware %q in the catalogue", name),
			Hint: "'tuyaflash firmware list' shows the names; pass a file path to write your own image",
		}
	}
	b := fw.BuildFor(chip)
	if b == nil {
		return Choice{}, refuse("", fmt.Sprintf("'tuyaflash firmware list %s' shows what fits this chip", ListFlags(chip)),
			"%s has no build for a %s%s", fw.Name, chip.Family, keySuffix(chip.EfuseKey))
	}
	return Choice{fw, b}, nil
}
