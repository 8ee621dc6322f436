package export

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tuyaflash/tuyaflash/internal/safefile"
	"github.com/tuyaflash/tuyaflash/internal/safefile/safefiletest"
)

// TestTinyTuyaPlantedLinks: the files export tinytuya writes next to the
// user's devices.json (the archive, the copy of the original, the lock)
// never follow a link planted there by another user, and the devices file
// itself is followed only through the user's own link.
func TestTinyTuyaPlantedLinks(t *testing.T) {
	foreign := func(t *testing.T, link string) {
		t.Helper()
		if os.Geteuid() != 0 {
			t.Skip("a link owned by another user needs root to plant")
		}
		if err := os.Lchown(link, 4242, 4242); err != nil {
			t.Skip(err)
		}
	}
	t.Run("devices file is the user's own link", func(t *testing.T) {
		real := copyFixture(t, "devices_list.json", 0o644)
		link := filepath.Join(t.TempDir(), "devices.json")
		safefiletest.PlantTo(t, link, real)
		res, err := MigrateTinyTuya(link, migrated, Options{Now: fixedNow})
		if err != nil || len(res.Moved) != 2 {
			t.Fatalf("%+v %v", res, err)
		}
		if !safefiletest.IsLink(t, link) {
			t.Error("the user's link was replaced by a file")
		}
	})
	t.Run("devices file is another user's link", func(t *testing.T) {
		victim := copyFixture(t, "devices_list.json", 0o644)
		before, _ := os.ReadFile(victim)
		link := filepath.Join(t.TempDir(), "devices.json")
		safefiletest.PlantTo(t, link, victim)
		foreign(t, link)
		if _, err := MigrateTinyTuya(link, migrated, Options{Now: fixedNow}); !errors.Is(err, safefile.ErrSymlink) {
			t.Fatalf("got %v, want safefile.ErrSymlink", err)
		}
		if after, _ := os.ReadFile(victim); !bytes.Equal(before, after) {
			t.Error("the file behind another user's link was changed")
		}
	})
	t.Run("archive", func(t *testing.T) {
		path := copyFixture(t, "devices_list.json", 0o644)
		orig, _ := os.ReadFile(path)
		victim := safefiletest.PlantDangling(t, ArchivePath(path))
		foreign(t, ArchivePath(path))
		if _, err := MigrateTinyTuya(path, migrated, Options{Now: fixedNow}); !errors.Is(err, safefile.ErrSymlink) {
			t.Fatalf("got %v, want safefile.ErrSymlink", err)
		}
		safefiletest.Untouched(t, victim)
		if now, _ := os.ReadFile(path); !bytes.Equal(now, orig) {
			t.Error("devices.json changed although its archive could not be written")
		}
	})
	t.Run("copy of the original", func(t *testing.T) {
		path := copyFixture(t, "devices_list.json", 0o644)
		victim := safefiletest.Plant(t, path+".orig-"+fixedNow().Format("20060102-150405"))
		res, err := MigrateTinyTuya(path, migrated, Options{Now: fixedNow})
		if err != nil {
			t.Fatal(err)
		}
		safefiletest.Untouched(t, victim)
		if res.Copy == path+".orig-20260501-100000" {
			t.Errorf("copy written at the planted link %s", res.Copy)
		}
		if m := safefiletest.Mode(t, res.Copy); m != 0o600 {
			t.Errorf("copy mode %v, want 0600", m)
		}
	})
	t.Run("lock file", func(t *testing.T) {
		path := copyFixture(t, "devices_list.json", 0o644)
		victim := safefiletest.PlantDangling(t, filepath.Join(filepath.Dir(path), ".devices_list.json.lock"))
		if _, err := MigrateTinyTuya(path, migrated, Options{Now: fixedNow}); !errors.Is(err, safefile.ErrSymlink) {
			t.Fatalf("got %v, want safefile.ErrSymlink", err)
		}
		safefiletest.Untouched(t, victim)
	})
}
