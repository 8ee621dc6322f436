package backup

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/internal/safefile"
	"github.com/tuyaflash/tuyaflash/internal/safefile/safefiletest"
)

// TestBackupWritersIgnorePlantedLinks: a link planted where a dump, its
// sidecar, a -o file or a partial dump goes never redirects the write; the
// file it points to stays as it was.
func TestBackupWritersIgnorePlantedLinks(t *testing.T) {
	now := time.Date(2026, 11, 25, 17, 45, 1, 0, time.UTC)
	data := bytes.Repeat([]byte{0x5A}, 8192)
	sc := func() *Sidecar { return &Sidecar{Family: "BK7231N", MAC: "10:D5:61:77:4A:AC", FlashSize: 2 << 20} }
	t.Run("dump at -o", func(t *testing.T) {
		root := t.TempDir()
		dest := filepath.Join(root, "out.bin")
		victim := safefiletest.Plant(t, dest)
		if _, err := saveDump(t, root, data, sc(), dest, now); !errors.Is(err, ErrExists) {
			t.Fatalf("save through a link: %v, want ErrExists", err)
		}
		safefiletest.Untouched(t, victim)
	})
	t.Run("sidecar", func(t *testing.T) {
		root := t.TempDir()
		dest := filepath.Join(root, "out.bin")
		victim := safefiletest.PlantDangling(t, dest+".json")
		if _, err := saveDump(t, root, data, sc(), dest, now); !errors.Is(err, ErrExists) {
			t.Fatalf("save with a link at the sidecar: %v, want ErrExists", err)
		}
		safefiletest.Untouched(t, victim)
		if _, err := os.Lstat(dest); err == nil {
			t.Error("the dump was saved without its sidecar")
		}
	})
	t.Run("automatic name", func(t *testing.T) {
		// A link at the automatic name is a taken name: the dump gets the
		// next one.
		root := t.TempDir()
		s := sc()
		tmp, _ := TempFile(root)
		tmp.Write(data)
		_, sha, _, _ := Checksums(bytes.NewReader(data))
		s.SHA256 = sha
		auto := filepath.Join(root, DeviceDir(s), FileName(s, now))
		victim := safefiletest.Plant(t, auto)
		path, err := Save(tmp, s, root, "", now)
		tmp.Close()
		if err != nil || path == auto {
			t.Fatalf("saved at %s (%v), want a new name beside the link", path, err)
		}
		safefiletest.Untouched(t, victim)
	})
	t.Run("WriteFileNew", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "config.txt")
		victim := safefiletest.Plant(t, p)
		if err := WriteFileNew(p, []byte("local_key=secret")); !errors.Is(err, ErrExists) {
			t.Fatalf("got %v, want ErrExists", err)
		}
		safefiletest.Untouched(t, victim)
	})
	t.Run("partial dump", func(t *testing.T) {
		root := t.TempDir()
		victim := safefiletest.Plant(t, filepath.Join(root, ".partial", "dev.bin"))
		if _, err := OpenPartial(root, "dev", "id", 0, 16384); !errors.Is(err, safefile.ErrSymlink) {
			t.Fatalf("OpenPartial through a link: %v, want safefile.ErrSymlink", err)
		}
		safefiletest.Untouched(t, victim)
	})
	t.Run("partial journal", func(t *testing.T) {
		root := t.TempDir()
		victim := safefiletest.Plant(t, filepath.Join(root, ".partial", "dev.bin.json"))
		p, err := OpenPartial(root, "dev", "id", 0, 16384)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		p.File.Write(data[:4096])
		if err := p.Commit(4096); err != nil {
			t.Fatal(err)
		}
		safefiletest.Untouched(t, victim)
		if safefiletest.IsLink(t, p.Path()+".json") {
			t.Error("the journal was written through the link")
		}
		if m := safefiletest.Mode(t, p.Path()+".json"); m != 0o600 {
			t.Errorf("journal mode %v, want 0600", m)
		}
	})
}

// TestBackupModes: dumps, sidecars and partial dumps are 0600 in 0700
// folders, whatever the umask.
func TestBackupModes(t *testing.T) {
	withUmask(t, 0)
	root := t.TempDir()
	now := time.Date(2026, 11, 25, 17, 45, 1, 0, time.UTC)
	path, err := saveDump(t, root, []byte("dump"), &Sidecar{Family: "BK7231N", MAC: "10:D5:61:77:4A:AC"}, "", now)
	if err != nil {
		t.Fatal(err)
	}
	p, err := OpenPartial(root, "dev", "id", 0, 16)
	if err != nil {
		t.Fatal(err)
	}
	p.Commit(0)
	p.Close()
	for f, want := range map[string]os.FileMode{
		path: 0o600, path + ".json": 0o600, filepath.Dir(path): 0o700,
		p.Path(): 0o600, p.Path() + ".json": 0o600, filepath.Dir(p.Path()): 0o700,
	} {
		if m := safefiletest.Mode(t, f); m != want {
			t.Errorf("%s: mode %v, want %v", f, m, want)
		}
	}
}
