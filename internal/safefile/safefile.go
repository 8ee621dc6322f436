// Package safefile writes the files tuyaflash leaves on disk (backups and
// their sidecars, partial dumps, the inventory, tinytuya files and their
// archives, outputs of -o, templates, the firmware cache and its pins,
// virtual device state) so that a symbolic link planted by another user
// never redirects a write, a crash never leaves half a file, and files that
// hold secrets are readable by their owner only.
//
// The rules, for every writer:
//   - new content goes to a temporary file created with O_EXCL in the
//     target's own folder and is put in place by link (a new file: never
//     replaces anything, a symbolic link included) or rename (a
//     replacement: a link at the target is replaced, not followed);
//   - files opened in place (partial dumps, partial downloads, lock files)
//     are opened with O_NOFOLLOW and must be regular files;
//   - a symbolic link at a file the user edits with tuyaflash (a tinytuya
//     devices.json) is followed only when the user owns it (FollowOwnLink);
//   - modes are set on the file itself, whatever the umask;
//   - under sudo, what is created inside the invoking user's home folder is
//     handed back to SUDO_UID/SUDO_GID (see HandBack).
package safefile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrSymlink: a symbolic link stands where tuyaflash writes or opens a file
// in place, or a link tuyaflash would follow belongs to another user.
var ErrSymlink = errors.New("is a symbolic link")

// ErrNotRegular: something other than a regular file (a folder, a device,
// a FIFO) stands where tuyaflash would open a file in place.
var ErrNotRegular = errors.New("is not a regular file")

// ErrBadName: a file name taken from outside data (a catalogue, an image,
// a device's configuration) is not a plain name inside its folder.
var ErrBadName = errors.New("not a plain file name")

// MkdirAll creates dir and its missing parents with mode perm (subject to
// the umask, as for os.MkdirAll); folders it creates are handed back under
// sudo (HandBack).
func MkdirAll(dir string, perm os.FileMode) error {
	if dir == "" {
		return nil
	}
	st, err := os.Stat(dir)
	if err == nil {
		if !st.IsDir() {
			return &os.PathError{Op: "mkdir", Path: dir, Err: fs.ErrExist}
		}
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := MkdirAll(parent, perm); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, perm); err != nil {
		if st, serr := os.Lstat(dir); serr == nil && st.IsDir() {
			return nil // created meanwhile
		}
		return err
	}
	handBackPath(dir)
	return nil
}

// CreateTemp creates a new temporary file in dir (created with 0700 when
// missing) with O_EXCL and mode perm, named by pattern as os.CreateTemp
// does. It is handed back under sudo.
func CreateTemp(dir, pattern string, perm os.FileMode) (*os.File, error) {
	if err := MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	handBackFile(f)
	return f, nil
}

// writeTemp writes data into a new temporary file next to path, flushed to
// disk and closed; the caller links or renames it.
// replacing, when set, is the regular file the temporary file will replace:
// its owner is kept.
func writeTemp(path string, data []byte, perm os.FileMode, replacing string) (string, error) {
	f, err := CreateTemp(filepath.Dir(path), "."+tempBase(path)+".tuyaflash-*.tmp", perm)
	if err != nil {
		return "", err
	}
	if st, err := os.Lstat(replacing); replacing != "" && err == nil && st.Mode().IsRegular() {
		KeepOwner(f, replacing)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// tempBase keeps temporary names within the 255-byte limit of a name.
func tempBase(path string) string {
	b := filepath.Base(path)
	if len(b) > 100 {
		b = b[:100]
	}
	return b
}

// WriteNew writes data to path, which must not exist: not as a file, not
// as a symbolic link (dangling or not), not as anything else. The file
// appears whole or not at all, with mode perm. An existing path gives an
// error matching fs.ErrExist.
func WriteNew(path string, data []byte, perm os.FileMode) error {
	tmp, err := writeTemp(path, data, perm, "")
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := LinkNew(tmp, path); err != nil {
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}

// LinkNew gives the finished file src (in the same folder) the name dst,
// never replacing dst, whatever dst is. Where hard links are not available
// it falls back to a copy and a rename after checking dst is absent.
func LinkNew(src, dst string) error {
	err := os.Link(src, dst)
	if err == nil {
		return nil
	}
	if exists(dst) || errors.Is(err, fs.ErrExist) {
		return &os.PathError{Op: "create", Path: dst, Err: fs.ErrExist}
	}
	// A file system without hard links: rename a private copy, after a
	// last check that the name is free.
	cp, cerr := copyTemp(src, dst)
	if cerr != nil {
		return fmt.Errorf("create %s: %w (link: %v)", dst, cerr, err)
	}
	defer os.Remove(cp)
	if exists(dst) {
		return &os.PathError{Op: "create", Path: dst, Err: fs.ErrExist}
	}
	return os.Rename(cp, dst)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func copyTemp(src, dst string) (string, error) {
	data, err := os.ReadFile(src)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(src)
	if err != nil {
		return "", err
	}
	return writeTemp(dst, data, st.Mode().Perm(), "")
}

// Replace writes data to path atomically with mode perm: readers see the
// old content or the new one, never a mix. Whatever stands at path — a
// file or a symbolic link — is replaced, never followed (callers that
// keep a user's own link resolve it first with FollowOwnLink). Run as
// root, the new file keeps the replaced file's owner (KeepOwner).
func Replace(path string, data []byte, perm os.FileMode) error {
	tmp, err := writeTemp(path, data, perm, path)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}

// OpenFile opens path in place (a partial dump or download that grows, a
// lock file) with flag, never through a symbolic link (O_NOFOLLOW) and
// only when it is a regular file. A file it creates gets mode perm and is
// handed back under sudo.
func OpenFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	_, statErr := os.Lstat(path)
	created := errors.Is(statErr, fs.ErrNotExist) && flag&os.O_CREATE != 0
	f, err := openNoFollow(path, flag, perm)
	if err != nil {
		if st, lerr := os.Lstat(path); lerr == nil && st.Mode()&fs.ModeSymlink != 0 {
			return nil, &os.PathError{Op: "open", Path: path, Err: ErrSymlink}
		}
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, &os.PathError{Op: "open", Path: path, Err: ErrNotRegular}
	}
	if created {
		if err := f.Chmod(perm); err != nil {
			f.Close()
			return nil, err
		}
		handBackFile(f)
	}
	return f, nil
}

// FollowOwnLink returns the file a user-edited path stands for: path
// itself, or the target of a symbolic link at path that the user owns
// (the effective user, or under sudo the invoking user), resolved through
// every link. A link owned by anybody else is refused with ErrSymlink: in
// a shared folder it may have been planted to make tuyaflash replace
// another file.
func FollowOwnLink(path string) (string, error) {
	st, err := os.Lstat(path)
	if err != nil || st.Mode()&fs.ModeSymlink == 0 {
		return path, nil
	}
	if !ownedByUser(st) {
		return "", &os.PathError{Op: "follow", Path: path,
			Err: fmt.Errorf("%w owned by another user (uid %d); tuyaflash follows only your own links: replace it by the file itself", ErrSymlink, ownerUID(st))}
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			// A dangling link of the user's: write where it points.
			target, rerr := os.Readlink(path)
			if rerr != nil {
				return "", rerr
			}
			if !filepath.IsAbs(target) {
				target = filepath.Join(filepath.Dir(path), target)
			}
			return target, nil
		}
		return "", err
	}
	return real, nil
}

// CheckName checks that name, taken from outside data, names a file inside
// one folder: not empty, not "." or "..", no path separator of any system
// ('/' or '\'), no drive letter or stream (':'), no NUL or other control
// character, at most 200 bytes.
func CheckName(name string) error {
	bad := func(why string) error { return fmt.Errorf("%q: %w (%s)", name, ErrBadName, why) }
	switch {
	case name == "":
		return bad("empty")
	case name == "." || name == "..":
		return bad("a folder reference")
	case len(name) > 200:
		return bad("longer than 200 bytes")
	case strings.ContainsAny(name, `/\`):
		return bad("holds a path separator")
	case strings.ContainsRune(name, ':'):
		return bad("holds ':' (a drive or stream on Windows)")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7F || (r >= 0x80 && r < 0xA0) {
			return bad("holds a control character")
		}
	}
	return nil
}

// Join returns dir/name after CheckName, so that a name from outside data
// can never point outside dir.
func Join(dir, name string) (string, error) {
	if err := CheckName(name); err != nil {
		return "", err
	}
	return filepath.Join(dir, name), nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// ErrShared: a file or folder whose content tuyaflash trusts can be
// changed by other users.
var ErrShared = errors.New("can be changed by other users")

// CheckTrusted checks that path (a file or folder whose content tuyaflash
// trusts, such as the firmware cache and its pins) can be changed only by
// the user: not a symbolic link, owned by the user or root, not writable
// by everybody. A missing path is fine (tuyaflash creates it).
func CheckTrusted(path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	switch {
	case st.Mode()&fs.ModeSymlink != 0 && !ownedByUser(st):
		return &os.PathError{Op: "trust", Path: path, Err: fmt.Errorf("%w owned by another user (uid %d)", ErrSymlink, ownerUID(st))}
	case st.Mode()&fs.ModeSymlink != 0:
		if st, err = os.Stat(path); err != nil {
			return err
		}
	}
	if uid := ownerUID(st); uid != -1 && uid != 0 && !ownedByUser(st) {
		return &os.PathError{Op: "trust", Path: path, Err: fmt.Errorf("%w: it belongs to uid %d", ErrShared, uid)}
	}
	if st.Mode().Perm()&0o002 != 0 {
		return &os.PathError{Op: "trust", Path: path, Err: fmt.Errorf("%w: everybody may write to it (mode %04o)", ErrShared, st.Mode().Perm())}
	}
	return nil
}
