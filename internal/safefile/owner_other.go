//go:build !unix

package safefile

import (
	"io/fs"
	"os"
)

// openNoFollow opens path after checking that its last element is not a
// symbolic link (the system has no O_NOFOLLOW; links need privileges
// there).
func openNoFollow(path string, flag int, perm os.FileMode) (*os.File, error) {
	if st, err := os.Lstat(path); err == nil && st.Mode()&fs.ModeSymlink != 0 {
		return nil, &os.PathError{Op: "open", Path: path, Err: ErrSymlink}
	}
	return os.OpenFile(path, flag, perm)
}

func ownerUID(fs.FileInfo) int { return -1 }

// ownedByUser: without owners in the file modes, a link is the user's.
func ownedByUser(fs.FileInfo) bool { return true }

// KeepOwner does nothing where files have no owners in their modes.
func KeepOwner(*os.File, string) {}
