package ops

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/internal/safefile"
)

// sector is the erase unit the surroundings of a write are kept in.
const sector = 4096

// surroundJournal is what an interrupted write leaves behind: the bytes the
// flash held around the data in the sectors the data only partly covers.
type surroundJournal struct {
	Identity string `json:"identity"`
	Addr     uint32 `json:"addr"`
	DataSHA  string `json:"data_sha256"`
	Head     []byte `json:"head"` // [addr &^ 0xFFF, addr)
	Tail     []byte `json:"tail"` // [addr+len, next sector boundary)
}

// WriteKeeping writes data at addr as dev.Write does, on a Beken chip
// keeping what the flash holds around data in the sectors data shares with
// it — also when the write is interrupted after erasing such a sector and
// before programming it, which leaves those bytes erased on the chip. The
// bytes around data are read from the chip (verified) and saved under
// root/.partial before anything is erased; the re-run of an interrupted
// write of the same data to the same device takes them from there, and a
// verified write removes them. Where they cannot be saved, the write goes on
// as dev.Write alone would (note says why). The result names addr and data
// as given.
func WriteKeeping(ctx context.Context, dev flasher.Device, root string, addr uint32, data []byte, prog flasher.Progress, note func(string)) (flasher.WriteResult, error) {
	info := dev.Info()
	start := addr &^ (sector - 1)
	end := (addr + uint32(len(data)) + sector - 1) &^ (sector - 1)
	if root == "" || !info.Family.Beken() || len(data) == 0 || (start == addr && end == addr+uint32(len(data))) || end > uint32(info.FlashSize) {
		// ESP8266 writes erase whole sectors as esptool does (the bytes
		// after an image read back erased); aligned data has no
		// surroundings.
		return dev.Write(ctx, addr, data, prog)
	}
	j, path := surroundFor(root, info, addr, data)
	var old surroundJournal
	raw, err := os.ReadFile(path)
	kept := err == nil && json.Unmarshal(raw, &old) == nil && old.Identity == j.Identity && old.Addr == addr && old.DataSHA == j.DataSHA &&
		len(old.Head) == int(addr-start) && len(old.Tail) == int(end-addr-uint32(len(data)))
	if kept {
		j = old
		note(fmt.Sprintf("an interrupted write of this image left what surrounds it in %s; those bytes are written back around it", path))
	} else {
		var buf bytes.Buffer
		if start != addr {
			if err := dev.Read(ctx, start, sector, &buf, nil); err != nil {
				return surroundFallback(ctx, dev, addr, data, prog, note, err)
			}
			j.Head = append([]byte(nil), buf.Bytes()[:addr-start]...)
		}
		if tail := end - sector; end != addr+uint32(len(data)) {
			buf.Reset()
			if err := dev.Read(ctx, tail, sector, &buf, nil); err != nil {
				return surroundFallback(ctx, dev, addr, data, prog, note, err)
			}
			j.Tail = append([]byte(nil), buf.Bytes()[addr+uint32(len(data))-tail:]...)
		}
		raw, _ := json.Marshal(j)
		err := safefile.MkdirAll(filepath.Dir(path), 0o700)
		if err == nil {
			err = safefile.Replace(path, raw, 0o600)
		}
		if err != nil {
			note(fmt.Sprintf("cannot keep what surrounds the image (%v): an interruption between erasing and programming its first or last sector would leave the rest of that sector erased", err))
			return dev.Write(ctx, addr, data, prog)
		}
	}
	whole := make([]byte, 0, end-start)
	whole = append(append(append(whole, j.Head...), data...), j.Tail...)
	res, err := dev.Write(ctx, start, whole, prog)
	if err == nil && res.Verified {
		os.Remove(path)
	}
	res.Addr, res.Size = addr, len(data)
	return res, err
}

// surroundFor is the journal of a write of data at addr to the chip of
// info (without its surroundings) and the path it is kept at under root.
func surroundFor(root string, info flasher.Info, addr uint32, data []byte) (surroundJournal, string) {
	sum := sha256.Sum256(data)
	j := surroundJournal{Identity: IdentityKey(info), Addr: addr, DataSHA: hex.EncodeToString(sum[:])}
	return j, filepath.Join(root, ".partial", fmt.Sprintf("write-%s-%06x.json", j.Identity, addr))
}

// WriteUnfinished reports whether an earlier WriteKeeping of data at addr
// to this chip did not end verified: the data may read back in place while
// the rest of its last sector is still erased, so only writing it again
// (which skips what matches) puts the chip right.
func WriteUnfinished(root string, info flasher.Info, addr uint32, data []byte) bool {
	if root == "" {
		return false
	}
	_, path := surroundFor(root, info, addr, data)
	_, err := os.Stat(path)
	return err == nil
}

// surroundFallback writes without the journal when the surroundings cannot
// be read up front (the dev.Write that follows reads them itself).
func surroundFallback(ctx context.Context, dev flasher.Device, addr uint32, data []byte, prog flasher.Progress, note func(string), err error) (flasher.WriteResult, error) {
	if ctx.Err() != nil || !errors.Is(err, flasher.ErrUnsupported) {
		return flasher.WriteResult{Addr: addr, Size: len(data)}, err
	}
	note(fmt.Sprintf("cannot read what surrounds the image (%v)", err))
	return dev.Write(ctx, addr, data, prog)
}
