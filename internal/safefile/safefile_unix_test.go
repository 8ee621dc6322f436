//go:build unix

package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

func TestWriteNewMode(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "new", "folder")
	p := filepath.Join(dir, "secret.json")
	if err := MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := WriteNew(p, []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, p).Perm(); m != 0o600 {
		t.Errorf("file mode %v, want 0600", m)
	}
	if m := mode(t, dir).Perm(); m != 0o700 {
		t.Errorf("folder mode %v, want 0700", m)
	}
	if err := Replace(p, []byte("k2"), 0o600); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, p).Perm(); m != 0o600 {
		t.Errorf("replaced file mode %v, want 0600", m)
	}
}

// withInvoker runs f as if tuyaflash ran under sudo for uid/gid 4242 with
// home folder home.
func withInvoker(t *testing.T, home string) {
	t.Helper()
	old := invoker
	invoker = func() *Invoker { return &Invoker{UID: 4242, GID: 4243, Home: home} }
	t.Cleanup(func() { invoker = old })
}

func owner(t *testing.T, p string) (int, int) {
	t.Helper()
	st, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	s := st.Sys().(*syscall.Stat_t)
	return int(s.Uid), int(s.Gid)
}

func TestSudoHandsBackFilesInTheUsersHome(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another user needs root")
	}
	root := t.TempDir()
	home := filepath.Join(root, "home", "alice")
	os.MkdirAll(home, 0o755)
	withInvoker(t, home)
	var notices []string
	oldN := Notice
	Notice = func(p string) { notices = append(notices, p) }
	t.Cleanup(func() { Notice = oldN; noticeOnce = sync.Once{} })
	noticeOnce = sync.Once{}

	dir := filepath.Join(home, ".local", "share", "tuyaflash", "backups")
	if err := MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	inHome := filepath.Join(dir, "dump.bin")
	if err := WriteNew(inHome, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	part := filepath.Join(dir, "dump.part")
	f, err := OpenFile(part, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, p := range []string{filepath.Join(home, ".local"), dir, inHome, part} {
		if u, g := owner(t, p); u != 4242 || g != 4243 {
			t.Errorf("%s belongs to %d:%d, want the invoking user 4242:4243", p, u, g)
		}
	}
	if u, _ := owner(t, home); u != 0 {
		t.Errorf("the existing home folder changed owner to %d", u)
	}
	if len(notices) != 0 {
		t.Errorf("notices for files in the home folder: %v", notices)
	}

	outside := filepath.Join(root, "srv", "a.bin")
	outside2 := filepath.Join(root, "srv", "b.bin")
	if err := WriteNew(outside, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	WriteNew(outside2, []byte("x"), 0o600)
	if u, _ := owner(t, outside); u != 0 {
		t.Errorf("%s outside the home folder was handed to %d", outside, u)
	}
	if len(notices) != 1 || !strings.HasPrefix(notices[0], filepath.Join(root, "srv")) {
		t.Errorf("notices %v, want one about the first root-owned path", notices)
	}
}

func TestFindInvoker(t *testing.T) {
	old := lookupHome
	lookupHome = func(uid int) string {
		if uid == 1000 {
			return "/home/alice"
		}
		return ""
	}
	defer func() { lookupHome = old }()
	for _, tc := range []struct {
		uid, gid string
		want     *Invoker
	}{
		{"1000", "1000", &Invoker{1000, 1000, "/home/alice"}},
		{"", "", nil},
		{"0", "0", nil},       // sudo from root
		{"1001", "1001", nil}, // no home folder known
		{"x", "1000", nil},    // garbage
		{"1000", "-1", nil},   // garbage
	} {
		t.Setenv("SUDO_UID", tc.uid)
		t.Setenv("SUDO_GID", tc.gid)
		got := findInvoker()
		if os.Geteuid() != 0 {
			if got != nil {
				t.Errorf("not root, but an invoker %+v", got)
			}
			continue
		}
		if (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want {
			t.Errorf("SUDO_UID=%q SUDO_GID=%q: %+v, want %+v", tc.uid, tc.gid, got, tc.want)
		}
	}
}

func TestOpenFileRefusesAFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Skip(err)
	}
	// O_NONBLOCK|O_RDWR does not block on a FIFO without a writer.
	if _, err := OpenFile(p, os.O_RDWR|syscall.O_NONBLOCK, 0o600); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("got %v, want ErrNotRegular", err)
	}
}

func TestCheckTrusted(t *testing.T) {
	dir := t.TempDir()
	own := filepath.Join(dir, "pins.json")
	os.WriteFile(own, []byte("{}"), 0o644)
	if err := CheckTrusted(own); err != nil {
		t.Errorf("own file: %v", err)
	}
	if err := CheckTrusted(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("missing file: %v", err)
	}
	open := filepath.Join(dir, "open")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o777)
	if err := CheckTrusted(open); !errors.Is(err, ErrShared) {
		t.Errorf("world-writable folder: %v, want ErrShared", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("files of another user need root")
	}
	other := filepath.Join(dir, "other.json")
	os.WriteFile(other, []byte("{}"), 0o644)
	os.Chown(other, 4242, 4242)
	if err := CheckTrusted(other); !errors.Is(err, ErrShared) {
		t.Errorf("another user's file: %v, want ErrShared", err)
	}
	link := filepath.Join(dir, "link.json")
	os.Symlink(own, link)
	os.Lchown(link, 4242, 4242)
	if err := CheckTrusted(link); !errors.Is(err, ErrSymlink) {
		t.Errorf("another user's link: %v, want ErrSymlink", err)
	}
}

// TestReplaceKeepsTheUsersOwnership: under sudo, a file of the invoking
// user replaced outside the home folder stays the user's; a file of any
// other user becomes root's (it is not handed content it never held).
func TestReplaceKeepsTheUsersOwnership(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another user needs root")
	}
	withInvoker(t, "/nonexistent-home")
	dir := t.TempDir()
	mine := filepath.Join(dir, "devices.json")
	os.WriteFile(mine, []byte("[]"), 0o644)
	os.Chown(mine, 4242, 4243)
	theirs := filepath.Join(dir, "inventory.json")
	os.WriteFile(theirs, []byte("{}"), 0o600)
	os.Chown(theirs, 5555, 5555)
	for _, p := range []string{mine, theirs} {
		if err := Replace(p, []byte("new"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if u, g := owner(t, mine); u != 4242 || g != 4243 {
		t.Errorf("the user's file now belongs to %d:%d", u, g)
	}
	if u, _ := owner(t, theirs); u != 0 {
		t.Errorf("another user's file was given back to %d with the new content", u)
	}
}
