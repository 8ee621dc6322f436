package firmware

import "github.com/tuyaflash/tuyaflash/internal/termsafe"

// clean shows the control characters of the strings an image carries
// (version, partition names, the file's name) as visible escapes: an image
// from a catalogue or a mirror is outside data, and firmware verify prints
// them (termsafe).
func (d *Detection) clean() {
	for _, p := range []*string{&d.Name, &d.Version, &d.Bootloader, &d.FlashSize, &d.Key, &d.BootKey} {
		*p = termsafe.Clean(*p)
	}
	for i := range d.Regions {
		d.Regions[i].Part = termsafe.Clean(d.Regions[i].Part)
	}
	termsafe.All(d.Notes)
}
