// Package backup stores flash dumps so that they are never lost: written
// atomically (temporary file, fsync, link into place), never overwriting an
// existing file, mode 0600 (stock dumps hold Wi-Fi credentials and device
// keys), each with a JSON sidecar that records the device and checksums, in a
// folder per device so that two devices never collide.
package backup

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tuyaflash/tuyaflash/internal/safefile"
)

// Sidecar is the JSON record stored next to every dump as <dump>.json.
// In JSON, addresses and ids are "0x…" strings (flash_id "0xEB6015",
// offset "0x000000"), as everywhere in tuyaflash's output; sidecars of the
// first format (bare hex flash id, numeric offset, verified as a sentence)
// are read too.
type Sidecar struct {
	Format     string `json:"format"` // FormatV2
	Family     string `json:"family"`
	Protocol   string `json:"protocol,omitempty"`
	Bootloader string `json:"bootloader,omitempty"`
	// ChipID is "0x…".
	ChipID string `json:"chip_id,omitempty"`
	// FlashID is the JEDEC id as six hex digits, "EB6015" (written as
	// "0xEB6015").
	FlashID   string `json:"flash_id,omitempty"`
	FlashName string `json:"flash_name,omitempty"`
	FlashSize int    `json:"flash_size"`
	MAC       string `json:"mac,omitempty"`
	// MACPlaceholder explains why the MAC does not identify the device.
	MACPlaceholder string `json:"mac_placeholder,omitempty"`
	EfuseKey       string `json:"efuse_key,omitempty"`
	Offset         uint32 `json:"offset"`
	Size           int64  `json:"size"`
	SHA256         string `json:"sha256"`
	CRC32          string `json:"crc32"`
	Date           string `json:"date"`
	ToolVersion    string `json:"tool_version"`
	Port           string `json:"port,omitempty"`
	Baud           int    `json:"baud,omitempty"`
	// Verified says how the dump was checked against the chip; nil when
	// it was not (a sidecar made up for a dump without one).
	Verified *Verification `json:"verified,omitempty"`
}

// Verification says what was checked, and how, when a dump was read: only
// checks that could have failed are named.
type Verification struct {
	// Method is the checksum: "crc32" (the Beken chip's CRC-32) or
	// "md5" (the ESP8266 flasher stub's MD5).
	Method string `json:"method"`
	// By is what computed it on the device side: "chip" or "stub".
	By string `json:"by"`
	// Granularity is the largest range one checksum covered, in bytes:
	// every block of that size was read, checksummed on the device and
	// compared before it was stored (a mismatching block is read again).
	Granularity int `json:"granularity"`
	// Whole says how the stored file was checked as a whole: its CRC-32
	// is compared with that of the verified blocks ("crc32 of the file").
	Whole string `json:"whole,omitempty"`
	// Resumed is how many leading bytes came from an interrupted earlier
	// run; those were checked by one checksum of the device over the
	// whole resumed range (ResumedMethod) instead of block by block.
	Resumed       int64  `json:"resumed_bytes,omitempty"`
	ResumedMethod string `json:"resumed_method,omitempty"`
	// Note is the free text of a first-format sidecar.
	Note string `json:"note,omitempty"`
}

// Format versions of the sidecar. Load reads both.
const (
	// FormatV1: flash_id bare hex, offset a number, verified a sentence.
	FormatV1 = "tuyaflash-backup/1"
	// FormatV2: "0x…" ids and addresses, verified structured.
	FormatV2 = "tuyaflash-backup/2"
)

// MarshalJSON writes ids and addresses as "0x…" strings.
func (s Sidecar) MarshalJSON() ([]byte, error) {
	type plain Sidecar
	return json.Marshal(struct {
		plain
		FlashID string `json:"flash_id,omitempty"`
		Offset  string `json:"offset"`
	}{plain(s), HexID(s.FlashID), HexAddr(s.Offset)})
}

// UnmarshalJSON reads both formats.
func (s *Sidecar) UnmarshalJSON(b []byte) error {
	type plain Sidecar
	aux := struct {
		*plain
		FlashID  string          `json:"flash_id"`
		Offset   json.RawMessage `json:"offset"`
		Verified json.RawMessage `json:"verified"`
	}{plain: (*plain)(s)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	s.FlashID = BareHex(aux.FlashID)
	off, err := ParseHexAddr(aux.Offset)
	if err != nil {
		return fmt.Errorf("offset: %w", err)
	}
	s.Offset = off
	s.Verified = nil
	if len(aux.Verified) > 0 && string(aux.Verified) != "null" {
		var text string
		if json.Unmarshal(aux.Verified, &text) == nil {
			s.Verified = &Verification{Note: text}
		} else {
			var v Verification
			if err := json.Unmarshal(aux.Verified, &v); err != nil {
				return fmt.Errorf("verified: %w", err)
			}
			s.Verified = &v
		}
	}
	return nil
}

// HexAddr formats a flash address as tuyaflash prints them: "0x011000".
func HexAddr(a uint32) string { return fmt.Sprintf("0x%06X", a) }

// HexID formats a bare hex id ("eb6015") as "0xEB6015"; "" stays "".
func HexID(s string) string {
	if s = BareHex(s); s == "" {
		return ""
	}
	return "0x" + s
}

// BareHex strips a "0x" prefix and upper-cases: "0xeb6015" → "EB6015".
func BareHex(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X") {
		s = s[2:]
	}
	return strings.ToUpper(s)
}

// ParseHexAddr reads an address written as a JSON number or as a "0x…"
// (or decimal) string; empty input is 0.
func ParseHexAddr(raw json.RawMessage) (uint32, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var n uint32
	if err := json.Unmarshal(raw, &n); err == nil {
		return n, nil
	}
	var str string
	if err := json.Unmarshal(raw, &str); err != nil {
		return 0, fmt.Errorf("not an address: %s", raw)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(str), 0, 32)
	if err != nil {
		return 0, fmt.Errorf("not an address: %q", str)
	}
	return uint32(v), nil
}

// Errors for damaged or missing backups; the typed errors wrap them.
var (
	ErrExists     = errors.New("file exists")
	ErrCorrupt    = errors.New("backup does not match its sidecar")
	ErrNoSidecar  = errors.New("backup has no sidecar")
	ErrBadSidecar = errors.New("sidecar is not valid")
)

// DefaultRoot is where backups go unless told otherwise:
// $TUYAFLASH_BACKUP_DIR, else $XDG_DATA_HOME/tuyaflash/backups, else
// ~/.local/share/tuyaflash/backups.
func DefaultRoot() (string, error) {
	if d := os.Getenv("TUYAFLASH_BACKUP_DIR"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "tuyaflash", "backups"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no home folder for the backup store (set TUYAFLASH_BACKUP_DIR): %w", err)
	}
	return filepath.Join(home, ".local", "share", "tuyaflash", "backups"), nil
}

// DeviceDir names a device's folder: family and MAC, or, when the MAC is
// missing or a placeholder shared by many devices, family, flash id and the
// first 12 hex digits of the dump's SHA-256.
func DeviceDir(s *Sidecar) string {
	fam := strings.ToLower(s.Family)
	if s.MAC != "" && s.MACPlaceholder == "" {
		return fam + "-" + strings.ToLower(strings.ReplaceAll(s.MAC, ":", ""))
	}
	id := BareHex(s.FlashID)
	if id == "" {
		id = "noid"
	}
	return fmt.Sprintf("%s-flash%s-%s", fam, strings.ToLower(id), s.SHA256[:12])
}

// FileName names a dump inside the device folder: family, UTC time and hash
// prefix, e.g. bk7231n-20261125-174501-3fa4c2d1e0b9.bin.
func FileName(s *Sidecar, t time.Time) string {
	return fmt.Sprintf("%s-%s-%s.bin", strings.ToLower(s.Family), t.UTC().Format("20060102-150405"), s.SHA256[:12])
}

// Checksums fills Size, SHA256 and CRC32 from the data in r.
func Checksums(r io.Reader) (size int64, sha, crc string, err error) {
	h := sha256.New()
	c := crc32.NewIEEE()
	size, err = io.Copy(io.MultiWriter(h, c), r)
	if err != nil {
		return 0, "", "", err
	}
	return size, hex.EncodeToString(h.Sum(nil)), fmt.Sprintf("%08x", c.Sum32()), nil
}

// Save stores the dump held in the finished temporary file tmp (written by
// the caller in the same file system, see TempFile) with its sidecar. dest is
// the dump's path; "" puts it in root/DeviceDir/FileName. Neither the dump
// nor the sidecar may exist already: Save never overwrites. It returns the
// dump's final path.
func Save(tmp *os.File, s *Sidecar, root, dest string, now time.Time) (string, error) {
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	size, sha, crc, err := Checksums(tmp)
	if err != nil {
		return "", fmt.Errorf("checksum %s: %w", tmp.Name(), err)
	}
	s.Format, s.Size, s.SHA256, s.CRC32 = FormatV2, size, sha, crc
	if s.Date == "" {
		s.Date = now.UTC().Format(time.RFC3339)
	}
	auto := dest == ""
	if auto {
		dest = filepath.Join(root, DeviceDir(s), FileName(s, now))
	}
	if err := safefile.MkdirAll(filepath.Dir(dest), 0o700); err != nil {
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		return "", fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	meta, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return "", err
	}
	// An automatic name that is taken (two backups within a second)
	// gets a suffix; an explicit one is refused.
	base := strings.TrimSuffix(dest, ".bin")
	for n := 2; auto && taken(dest) && n < 100; n++ {
		dest = fmt.Sprintf("%s-%d.bin", base, n)
	}
	sidecar := dest + ".json"
	for _, p := range []string{dest, sidecar} {
		if _, err := os.Lstat(p); err == nil {
			return "", &os.PathError{Op: "save backup", Path: p, Err: ErrExists}
		}
	}
	// Sidecar first: a dump without a sidecar is harder to trust than a
	// sidecar without its dump.
	if err := WriteFileNew(sidecar, append(meta, '\n')); err != nil {
		return "", err
	}
	if err := linkNew(tmp.Name(), dest); err != nil {
		os.Remove(sidecar)
		return "", err
	}
	os.Remove(tmp.Name())
	syncDir(filepath.Dir(dest))
	return dest, nil
}

func taken(dest string) bool {
	for _, p := range []string{dest, dest + ".json"} {
		if _, err := os.Lstat(p); err == nil {
			return true
		}
	}
	return false
}

// TempFile creates the temporary file a dump is written to before Save, in
// the folder the dump will end up in (so that linking it is atomic), with
// mode 0600 and O_EXCL (see package safefile).
func TempFile(dir string) (*os.File, error) {
	if err := safefile.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return safefile.CreateTemp(dir, ".tuyaflash-*.tmp", 0o600)
}

// WriteFileNew writes data to path atomically with mode 0600, failing with
// ErrExists if anything exists at path (a symbolic link included: it is
// never followed).
func WriteFileNew(path string, data []byte) error {
	if err := safefile.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return existsErr(safefile.WriteNew(path, data, 0o600), path)
}

// existsErr turns safefile's fs.ErrExist into ErrExists.
func existsErr(err error, path string) error {
	if errors.Is(err, fs.ErrExist) {
		return &os.PathError{Op: "save", Path: path, Err: ErrExists}
	}
	return err
}

// linkNew puts the finished file src at dst without ever replacing dst.
func linkNew(src, dst string) error {
	if err := os.Chmod(src, 0o600); err != nil {
		return err
	}
	return existsErr(safefile.LinkNew(src, dst), dst)
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// Backup is a stored dump with its sidecar, checked on load.
type Backup struct {
	Path    string
	Sidecar Sidecar
	Data    []byte
}

// Load reads a dump and its sidecar and checks that the dump is whole and
// unchanged: its size and SHA-256 must match the sidecar. A dump without a
// sidecar is refused unless allowMissing, in which case the sidecar is
// synthesized from the data alone.
func Load(path string, allowMissing bool) (*Backup, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b := &Backup{Path: path, Data: data}
	meta, err := os.ReadFile(path + ".json")
	if errors.Is(err, os.ErrNotExist) {
		if !allowMissing {
			return nil, &os.PathError{Op: "load backup", Path: path + ".json", Err: ErrNoSidecar}
		}
		_, sha, crc, _ := Checksums(strings.NewReader(string(data)))
		b.Sidecar = Sidecar{Size: int64(len(data)), SHA256: sha, CRC32: crc}
		return b, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(meta, &b.Sidecar); err != nil {
		return nil, &os.PathError{Op: "load backup", Path: path + ".json", Err: fmt.Errorf("%w: %v", ErrBadSidecar, err)}
	}
	if b.Sidecar.SHA256 == "" || b.Sidecar.Size == 0 {
		return nil, &os.PathError{Op: "load backup", Path: path + ".json", Err: fmt.Errorf("%w: no size or sha256", ErrBadSidecar)}
	}
	if _, err := hex.DecodeString(b.Sidecar.SHA256); err != nil || len(b.Sidecar.SHA256) != 2*sha256.Size {
		return nil, &os.PathError{Op: "load backup", Path: path + ".json", Err: fmt.Errorf("%w: sha256 %q is not 64 hex digits", ErrBadSidecar, b.Sidecar.SHA256)}
	}
	if int64(len(data)) != b.Sidecar.Size {
		return nil, &os.PathError{Op: "load backup", Path: path, Err: fmt.Errorf("%w: %d bytes, sidecar says %d (truncated or appended to)", ErrCorrupt, len(data), b.Sidecar.Size)}
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != b.Sidecar.SHA256 {
		return nil, &os.PathError{Op: "load backup", Path: path, Err: fmt.Errorf("%w: sha256 %s…, sidecar says %s… (the file was changed or damaged)", ErrCorrupt, got[:12], b.Sidecar.SHA256[:12])}
	}
	return b, nil
}
