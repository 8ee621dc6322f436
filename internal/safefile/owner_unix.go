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
