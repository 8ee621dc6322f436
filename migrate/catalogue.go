package migrate

import (
	"context"
	"fmt"

	"github.com/tuyaflash/tuyaflash/firmware"
	"github.com/tuyaflash/tuyaflash/flasher"
)

// Catalogue is the Firmwares of the command line: images from the firmware
// catalogue through the download cache, local files, and the virtual
// devices' demo images.
type Catalogue struct {
	Manifest *firmware.Manifest
	Cache    *firmware.Cache
	// Demo returns the demo image for a chip (brief C4), with
	// Choice.Firmware naming its kind and version; nil when this build
	// has no demo images.
	Demo func(ctx context.Context, chip firmware.Chip) (*firmware.Resolved, error)
}

// Resolve implements Firmwares.
func (c *Catalogue) Resolve(ctx context.Context, spec string, chip firmware.Chip, o ResolveOptions) (*firmware.Resolved, error) {
	if spec == DemoFirmware {
		if c.Demo == nil {
			return nil, &flasher.HintError{Err: fmt.Errorf("this build has no demo image for %s: %w", chip.Family, flasher.ErrUnsupported),
				Hint: "demo images are for the virtual devices; name a real firmware with --firmware"}
		}
		return c.Demo(ctx, chip)
	}
	cache := c.Cache
	if o.NoDownload && cache != nil && !cache.Offline {
		cc := *cache
		cc.Offline = true
		cache = &cc
	}
	return firmware.Resolve(ctx, spec, chip, c.Manifest, cache)
}
