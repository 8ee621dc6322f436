//go:build unix

package safefile

import (
	"io/fs"
	"os"
	"syscall"
)

// openNoFollow opens path without following a symbolic link at its last
// element (the open fails with ELOOP on a link).
func openNoFollow(path string, flag int, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(path, flag|syscall.O_NOFOLLOW, perm)
}

func ownerUID(st fs.FileInfo) int {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return int(s.Uid)
	}
	return -1
}

// ownedByUser: the effective user owns st, or under sudo the invoking
// user does.
func ownedByUser(st fs.FileInfo) bool {
	uid := ownerUID(st)
	if uid == os.Geteuid() {
		return true
	}
	iv := invoker()
	return iv != nil && uid == iv.UID
}

// KeepOwner gives f (the replacement of the file at path) the owner and
// group of that file when tuyaflash runs as root under sudo and the file
// belongs to the invoking user: a devices.json or an inventory of the user
// outside the home folder stays the user's after a sudo run. A file of any
// other user is not given back to that user (the new content may hold
// secrets it never held: the inventory gets local keys); nothing happens
// when path does not exist.
func KeepOwner(f *os.File, path string) {
	iv := invoker()
	if iv == nil {
		return
	}
	st, err := os.Stat(path)
	if err != nil {
		return
	}
	if s, ok := st.Sys().(*syscall.Stat_t); ok && int(s.Uid) == iv.UID {
		_ = f.Chown(int(s.Uid), int(s.Gid))
	}
}
