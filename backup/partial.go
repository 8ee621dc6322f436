package backup

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/tuyaflash/tuyaflash/internal/safefile"
)

// Partial is an unfinished dump kept under root/.partial so that an
// interrupted backup can resume: the data file holds the first Done bytes,
// each already verified against the chip, and a journal records whose they
// are.
type Partial struct {
	File    *os.File
	Journal Journal
	path    string
	crc     uint32 // CRC-32 of the first crcLen bytes
	crcLen  int64
}

// Journal describes a partial dump.
type Journal struct {
	// Identity is the device key the dump belongs to (family, flash id,
	// size and MAC).
	Identity string `json:"identity"`
	Offset   uint32 `json:"offset"`
	Size     int64  `json:"size"`
	Done     int64  `json:"done"`
	CRC32    string `json:"crc32"` // of the first Done bytes
	Updated  string `json:"updated"`
}

// OpenPartial opens or creates the partial dump for identity. When one
// exists for the same identity and size, its verified prefix is kept (the
// caller re-checks it against the chip before trusting it); a partial of
// another identity or size is moved aside, never deleted.
func OpenPartial(root, key, identity string, offset uint32, size int64) (*Partial, error) {
	dir := filepath.Join(root, ".partial")
	if err := safefile.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, key+".bin")
	p := &Partial{path: path, Journal: Journal{Identity: identity, Offset: offset, Size: size}}
	var j Journal
	if raw, err := os.ReadFile(path + ".json"); err == nil && json.Unmarshal(raw, &j) == nil {
		if j.Identity == identity && j.Size == size && j.Offset == offset && j.Done > 0 && j.Done <= size {
			p.Journal = j
		} else {
			stamp := time.Now().UTC().Format("20060102-150405")
			os.Rename(path, path+".stale-"+stamp)
			os.Rename(path+".json", path+".json.stale-"+stamp)
		}
	}
	// Opened in place, never through a link: a link planted in a shared
	// backup folder must not make the truncate below hit another file.
	f, err := safefile.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	p.File = f
	if p.Journal.Done > 0 {
		// The data file must hold the journal's prefix with its CRC;
		// otherwise start over.
		st, err := f.Stat()
		if err != nil || st.Size() < p.Journal.Done || p.prefixCRC(p.Journal.Done) != p.Journal.CRC32 {
			p.Journal.Done, p.Journal.CRC32 = 0, ""
		}
	}
	if err := f.Truncate(p.Journal.Done); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(p.Journal.Done, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return p, nil
}

// prefixCRC returns the CRC-32 of the first n bytes, reading only what
// was added since the last call.
func (p *Partial) prefixCRC(n int64) string {
	if n < p.crcLen {
		p.crc, p.crcLen = 0, 0
	}
	buf := make([]byte, 64*1024)
	r := io.NewSectionReader(p.File, p.crcLen, n-p.crcLen)
	for {
		n, err := r.Read(buf)
		p.crc = crc32.Update(p.crc, crc32.IEEETable, buf[:n])
		p.crcLen += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			p.crc, p.crcLen = 0, 0
			return ""
		}
	}
	return fmt.Sprintf("%08x", p.crc)
}

// Prefix returns the verified bytes already stored.
func (p *Partial) Prefix() ([]byte, error) {
	buf := make([]byte, p.Journal.Done)
	_, err := p.File.ReadAt(buf, 0)
	return buf, err
}

// Restart drops the stored prefix (it did not match the chip).
func (p *Partial) Restart() error {
	p.Journal.Done, p.Journal.CRC32 = 0, ""
	p.crc, p.crcLen = 0, 0
	if err := p.File.Truncate(0); err != nil {
		return err
	}
	_, err := p.File.Seek(0, io.SeekStart)
	return err
}

// Commit records that the first done bytes of the file are verified: the
// file is cut to them (a write the disk cut short may have left part of a
// sector after them; on a full disk that also makes room for the journal),
// synced, then the journal replaced atomically. When it fails, Journal
// still says what the journal on disk records: what a resume will find.
func (p *Partial) Commit(done int64) error {
	if err := p.File.Truncate(done); err != nil {
		return err
	}
	if err := p.File.Sync(); err != nil {
		return err
	}
	j := p.Journal
	j.Done = done
	j.CRC32 = p.prefixCRC(done)
	j.Updated = time.Now().UTC().Format(time.RFC3339)
	raw, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	if err := safefile.Replace(p.path+".json", raw, 0o600); err != nil {
		return err
	}
	p.Journal = j
	return nil
}

// Finish removes the journal once the dump has been saved.
func (p *Partial) Finish() {
	p.File.Close()
	os.Remove(p.path)
	os.Remove(p.path + ".json")
}

// Close closes the data file and keeps the partial for a later resume.
func (p *Partial) Close() error { return p.File.Close() }

// Path is the data file's path.
func (p *Partial) Path() string { return p.path }

// ErrResumeMismatch reports a partial whose prefix the chip does not
// confirm.
var ErrResumeMismatch = errors.New("partial backup does not match the chip")
