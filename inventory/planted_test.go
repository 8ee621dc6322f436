package inventory

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tuyaflash/tuyaflash/internal/safefile"
	"github.com/tuyaflash/tuyaflash/internal/safefile/safefiletest"
)

// TestInventoryPlantedLinks: in a shared data folder, a link another user
// planted at the inventory or at its lock file is refused, and the file
// it points to is left alone.
func TestInventoryPlantedLinks(t *testing.T) {
	t.Run("inventory", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("a link owned by another user needs root to plant")
		}
		path := filepath.Join(t.TempDir(), "inventory.json")
		victim := safefiletest.PlantDangling(t, path)
		if err := os.Lchown(path, 4242, 4242); err != nil {
			t.Skip(err)
		}
		inv := open(t, path)
		inv.RecordBackup(chip("D8:1F:12:AA:BB:CC", flashEB6015), "/b/stock.bin", sidecar("stock"))
		if err := inv.Save(); !errors.Is(err, safefile.ErrSymlink) {
			t.Fatalf("Save through another user's link: %v, want safefile.ErrSymlink", err)
		}
		safefiletest.Untouched(t, victim)
	})
	t.Run("lock", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "inventory.json")
		victim := safefiletest.PlantDangling(t, filepath.Join(dir, ".inventory.json.lock"))
		inv := open(t, path)
		inv.RecordBackup(chip("D8:1F:12:AA:BB:CC", flashEB6015), "/b/stock.bin", sidecar("stock"))
		if err := inv.Save(); !errors.Is(err, safefile.ErrSymlink) {
			t.Fatalf("Save with a link at the lock: %v, want safefile.ErrSymlink", err)
		}
		safefiletest.Untouched(t, victim)
	})
}

// TestDeviceNameIsAFileName: Name becomes file names (templates); the
// device id it may come from is read from a dump, outside data.
func TestDeviceNameIsAFileName(t *testing.T) {
	for _, id := range []string{"bf12345/../..", `bf1234..\..\`, "bf1234\x00/etc", "bf12\x1b[2J34", "../../../../"} {
		d := Device{Key: "placeholder/eb6015/abc", MACPlaceholder: "shared", Tuya: &Tuya{DeviceID: id}}
		if err := safefile.CheckName(d.Name() + ".esphome.yaml"); err != nil {
			t.Errorf("device id %q: Name %q is no file name: %v", id, d.Name(), err)
		}
	}
	d := Device{Key: "k", MACPlaceholder: "shared", Tuya: &Tuya{DeviceID: "bf1234567890abcdefgh"}}
	if got := d.Name(); got != "tuya-cdefgh" {
		t.Errorf("Name = %q, want tuya-cdefgh", got)
	}
}
