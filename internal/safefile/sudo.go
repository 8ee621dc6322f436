package safefile

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Under sudo, tuyaflash runs as root but works for the user who typed the
// command. Files it creates inside that user's home folder (a backup store
// or inventory under ~/.local/share when sudo kept $HOME, a -o file in the
// user's folders) would otherwise be root's, mode 0600: unreadable by the
// user without sudo, and in the way of the next run without it. They are
// handed back to SUDO_UID/SUDO_GID as they are created (on the open file,
// before the file gets its final name). Files outside that home folder
// (root's own home when sudo reset $HOME, /srv, /tmp …) stay root's;
// Notice hears about the first such file once, so that the user is told.

// Invoker is the user a root process works for under sudo.
type Invoker struct {
	UID, GID int
	// Home is the user's home folder from the password database.
	Home string
}

// lookupHome finds a user's home folder (tests replace it).
var lookupHome = func(uid int) string {
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return ""
	}
	return u.HomeDir
}

var invoker = sync.OnceValue(findInvoker)

// findInvoker reads SUDO_UID/SUDO_GID when the process runs as root.
func findInvoker() *Invoker {
	if os.Geteuid() != 0 {
		return nil
	}
	uid, err1 := strconv.Atoi(os.Getenv("SUDO_UID"))
	gid, err2 := strconv.Atoi(os.Getenv("SUDO_GID"))
	if err1 != nil || err2 != nil || uid <= 0 || gid < 0 {
		return nil
	}
	home := lookupHome(uid)
	if home == "" || home == "/" {
		return nil
	}
	return &Invoker{UID: uid, GID: gid, Home: filepath.Clean(home)}
}

// SudoInvoker returns the user tuyaflash works for when it runs as root
// under sudo, or nil.
func SudoInvoker() *Invoker { return invoker() }

// Notice, when set, hears once per process about the first file or
// folder created as root under sudo outside the invoking user's home
// folder (the CLI prints it). It is called with the path.
var Notice func(path string)

var noticeOnce sync.Once

// inHome reports whether path lies inside the invoker's home folder.
func (iv *Invoker) inHome(path string) bool {
	abs, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	return strings.HasPrefix(abs, iv.Home+string(filepath.Separator))
}

// handBack decides for a created path: chown runs for files inside the
// invoker's home, Notice for the first one outside.
func handBack(path string, chown func(uid, gid int) error) {
	iv := invoker()
	if iv == nil {
		return
	}
	if iv.inHome(path) {
		_ = chown(iv.UID, iv.GID) // best effort: a file system without owners keeps root's
		return
	}
	if n := Notice; n != nil {
		noticeOnce.Do(func() { n(path) })
	}
}

func handBackFile(f *os.File) { handBack(f.Name(), f.Chown) }

func handBackPath(p string) {
	handBack(p, func(uid, gid int) error { return os.Lchown(p, uid, gid) })
}

// HandBack hands a file or folder tuyaflash created by other means (a
// pseudo-terminal link, a file written by a library) back to the invoking
// user under sudo, as the writers of this package do.
func HandBack(path string) { handBackPath(path) }
