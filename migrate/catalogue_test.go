package migrate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tuyaflash/tuyaflash/firmware"
	"github.com/tuyaflash/tuyaflash/flasher"
)

func TestCatalogue(t *testing.T) {
	m, err := firmware.Default()
	if err != nil {
		t.Fatal(err)
	}
	c := &Catalogue{Manifest: m, Cache: &firmware.Cache{Dir: t.TempDir()}}
	ctx := context.Background()
	chip := firmware.Chip{Family: flasher.BK7231N, EfuseKey: firmware.KeyTuya}

	// A dry run never downloads: the cache answers alone.
	if _, err := c.Resolve(ctx, "openbeken", chip, ResolveOptions{NoDownload: true}); !errors.Is(err, firmware.ErrNotCached) {
		t.Errorf("NoDownload on an empty cache: %v", err)
	}
	if c.Cache.Offline {
		t.Error("NoDownload changed the caller's cache")
	}
	if _, err := c.Resolve(ctx, DemoFirmware, chip, ResolveOptions{}); !errors.Is(err, flasher.ErrUnsupported) || flasher.Hint(err) == "" {
		t.Errorf("demo without demo images: %v", err)
	}
	var asked firmware.Chip
	c.Demo = func(ctx context.Context, ch firmware.Chip) (*firmware.Resolved, error) {
		asked = ch
		return &firmware.Resolved{}, nil
	}
	if _, err := c.Resolve(ctx, DemoFirmware, chip, ResolveOptions{}); err != nil || asked != chip {
		t.Errorf("demo: %v, asked for %+v", err, asked)
	}
	// A local file is detected by its content.
	file := filepath.Join(t.TempDir(), "app.bin")
	os.WriteFile(file, bkImage, 0o600)
	res, err := c.Resolve(ctx, file, chip, ResolveOptions{NoDownload: true})
	if err != nil || res.Detection.Offset != 0x11000 {
		t.Fatalf("local file: %v %+v", err, res)
	}
}
