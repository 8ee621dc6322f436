package safefile

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/tuyaflash/tuyaflash/internal/safefile/safefiletest"
)

// plant makes dir/name a symbolic link to a file outside dir (missing when
// dangling) and returns that file.
func plant(t *testing.T, dir, name string, dangling bool) string {
	t.Helper()
	if dangling {
		return safefiletest.PlantDangling(t, filepath.Join(dir, name))
	}
	return safefiletest.Plant(t, filepath.Join(dir, name))
}

// untouched fails unless a planted link's target is as it was.
func untouched(t *testing.T, target string, _ bool) {
	t.Helper()
	safefiletest.Untouched(t, target)
}

func mode(t *testing.T, p string) fs.FileMode {
	t.Helper()
	st, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode()
}

func TestWriteNewNeverReplacesOrFollows(t *testing.T) {
	for _, tc := range []struct {
		name     string
		dangling bool
	}{{"link to a file", false}, {"dangling link", true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			target := plant(t, dir, "out.bin", tc.dangling)
			err := WriteNew(filepath.Join(dir, "out.bin"), []byte("secret"), 0o600)
			if !errors.Is(err, fs.ErrExist) {
				t.Fatalf("WriteNew over a planted link: %v, want fs.ErrExist", err)
			}
			untouched(t, target, tc.dangling)
			if m := mode(t, filepath.Join(dir, "out.bin")); m&fs.ModeSymlink == 0 {
				t.Fatalf("the link was replaced: %v", m)
			}
			if tmps, _ := filepath.Glob(filepath.Join(dir, ".*.tmp")); len(tmps) > 0 {
				t.Fatalf("temporary files left: %v", tmps)
			}
		})
	}
	t.Run("existing file", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "f")
		os.WriteFile(p, []byte("old"), 0o644)
		if err := WriteNew(p, []byte("new"), 0o600); !errors.Is(err, fs.ErrExist) {
			t.Fatalf("got %v", err)
		}
		if b, _ := os.ReadFile(p); string(b) != "old" {
			t.Fatalf("overwritten: %q", b)
		}
	})
}

func TestReplaceDoesNotFollowALink(t *testing.T) {
	dir := t.TempDir()
	target := plant(t, dir, "pins.json", false)
	p := filepath.Join(dir, "pins.json")
	if err := Replace(p, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	untouched(t, target, false)
	if m := mode(t, p); !m.IsRegular() {
		t.Fatalf("%s is %v, want the new regular file", p, m)
	}
	if b, _ := os.ReadFile(p); string(b) != "{}" {
		t.Fatalf("content %q", b)
	}
}

func TestOpenFileRefusesLinksAndSpecialFiles(t *testing.T) {
	flags := []struct {
		name string
		flag int
	}{
		{"create", os.O_RDWR | os.O_CREATE},
		{"truncate", os.O_WRONLY | os.O_CREATE | os.O_TRUNC},
		{"append", os.O_WRONLY | os.O_CREATE | os.O_APPEND},
	}
	for _, fl := range flags {
		for _, dangling := range []bool{false, true} {
			name := fl.name + " through a link"
			if dangling {
				name = fl.name + " through a dangling link"
			}
			t.Run(name, func(t *testing.T) {
				dir := t.TempDir()
				target := plant(t, dir, "x.part", dangling)
				f, err := OpenFile(filepath.Join(dir, "x.part"), fl.flag, 0o600)
				if err == nil {
					f.Write([]byte("attack"))
					f.Close()
					t.Fatal("a planted link was opened")
				}
				if !errors.Is(err, ErrSymlink) {
					t.Errorf("error %v does not say it is a link", err)
				}
				untouched(t, target, dangling)
			})
		}
	}
	t.Run("creates with the mode", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "new.part")
		f, err := OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if runtime.GOOS != "windows" && mode(t, p).Perm() != 0o600 {
			t.Fatalf("mode %v", mode(t, p))
		}
	})
}

func TestFollowOwnLink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "dotfiles", "devices.json")
	os.MkdirAll(filepath.Dir(real), 0o700)
	os.WriteFile(real, []byte("[]"), 0o600)
	link := filepath.Join(dir, "devices.json")
	if err := os.Symlink(real, link); err != nil {
		t.Skip(err)
	}
	got, err := FollowOwnLink(link)
	if err != nil || got != real {
		t.Fatalf("own link: %q %v, want %q", got, err, real)
	}
	plain := filepath.Join(dir, "plain.json")
	if got, err := FollowOwnLink(plain); err != nil || got != plain {
		t.Fatalf("no link: %q %v", got, err)
	}
	if os.Geteuid() != 0 {
		t.Skip("a link owned by another user needs root to plant")
	}
	if err := os.Lchown(link, 4242, 4242); err != nil {
		t.Skip(err)
	}
	if _, err := FollowOwnLink(link); !errors.Is(err, ErrSymlink) || !strings.Contains(err.Error(), "another user") {
		t.Fatalf("a link of uid 4242: %v, want a refusal", err)
	}
}

func TestCheckNameRefusesHostileNames(t *testing.T) {
	for _, name := range []string{
		"", ".", "..", "../x", "a/../../etc/passwd", "/etc/passwd", `..\..\boot.ini`, `C:\x`, "C:x",
		"file.bin\x00.json", "a\nb", "esc\x1b[2J", "c1\u009b", strings.Repeat("a", 201),
	} {
		if err := CheckName(name); !errors.Is(err, ErrBadName) {
			t.Errorf("CheckName(%q) = %v, want ErrBadName", name, err)
		}
		if _, err := Join("/safe", name); err == nil {
			t.Errorf("Join accepted %q", name)
		}
	}
	for _, name := range []string{"tuya-a1b2c3.esphome.yaml", "OpenBK7231N_QIO_1.18.0.bin", "..hidden", "a..b", "é.txt"} {
		p, err := Join("/safe", name)
		if err != nil || filepath.Dir(p) != "/safe" {
			t.Errorf("Join(%q) = %q, %v", name, p, err)
		}
	}
}

func TestLinkNewKeepsTheFirst(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a")
	os.WriteFile(a, []byte("first"), 0o600)
	dst := filepath.Join(dir, "dst")
	if err := LinkNew(a, dst); err != nil {
		t.Fatal(err)
	}
	b := filepath.Join(dir, "b")
	os.WriteFile(b, []byte("second"), 0o600)
	if err := LinkNew(b, dst); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second LinkNew: %v", err)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, []byte("first")) {
		t.Fatalf("dst holds %q", got)
	}
}
