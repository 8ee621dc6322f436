package tuyaconfig

import (
	"bytes"
	"crypto/aes"
	"encoding/binary"
	"fmt"
	"sort"
)

// Layout of TuyaOS "KV storage" as used on BK7231T/N (bk7231-protocol.md
// §12.1; bk7231tools analysis/kvstorage.py, BK7231GUIFlashTool
// Utils/TuyaConfig.cs; checked against the real dumps).
const (
	sectorSize    = 4096
	pageSize      = 128
	pagesPerBlock = sectorSize/pageSize - 1 // pages 1..31; page 0 is the header

	magicKey   = 0x13579753 // key block, and the "protected" block on BK7231N
	magicData1 = 0x98761234
	magicData2 = 0x135726AB // TuyaOS 3

	// dataSectors is how many sectors follow the key block in the
	// storage area (0x1EF000..0x1FFFFF on BK7231T/N).
	dataSectors = 17

	// UsualKeyBlockOffset is where the key block sits in a 2 MiB
	// BK7231T/N dump.
	UsualKeyBlockOffset = 0x1EE000
)

var (
	masterKey = []byte("qwertyuiopasdfgh")
	keyPart1  = []byte("8710_2M") // only the first four bytes are used
	keyPart2  = []byte("HHRRQbyemofrtytf")
)

// ecb runs AES-128-ECB over src block by block (the standard library has
// no ECB mode). len(src) must be a multiple of 16.
func ecb(key, src []byte, decrypt bool) []byte {
	c, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // keys are always 16 bytes here
	}
	dst := make([]byte, len(src))
	for i := 0; i+aes.BlockSize <= len(src); i += aes.BlockSize {
		if decrypt {
			c.Decrypt(dst[i:i+aes.BlockSize], src[i:i+aes.BlockSize])
		} else {
			c.Encrypt(dst[i:i+aes.BlockSize], src[i:i+aes.BlockSize])
		}
	}
	return dst
}

// dataKey derives the data-block AES key from the device key of the key
// block: key[i] = "8710"[i%4] + "HHRRQbyemofrtytf"[i] + device[i] (mod 256).
func dataKey(device []byte) []byte {
	k := make([]byte, 16)
	for i := range k {
		k[i] = keyPart1[i&3] + keyPart2[i] + device[i]
	}
	return k
}

func byteSum(b []byte) uint32 {
	var s uint32
	for _, c := range b {
		s += uint32(c)
	}
	return s
}

func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
func le16(b []byte) uint16 { return binary.LittleEndian.Uint16(b) }

// Block kinds in BlockInfo.Kind.
const (
	KindKey       = "key"       // the key block
	KindProtected = "protected" // BK7231N protected block (same magic, not the key)
	KindData      = "data"      // a data block
	KindBad       = "bad"       // a sector of the storage area that is none of these
)

// BlockInfo describes one sector of the storage area.
type BlockInfo struct {
	Offset     int    `json:"offset"`
	Kind       string `json:"kind"`
	ID         int    `json:"id"`         // data blocks: block id
	Generation uint32 `json:"generation"` // data blocks: swap generation
	OK         bool   `json:"ok"`         // checksum (and layout) valid
	InUse      bool   `json:"in_use"`     // the copy the values were read from
	Reason     string `json:"reason,omitempty"`
}

// keyBlock is a located, checksum-valid key block.
type keyBlock struct {
	off int
	key []byte
}

// findKeyBlocks looks for sectors whose first AES block decrypts (with the
// master key) to the key-block magic: first at every 4 KiB boundary, then,
// if none validates, wherever the encrypted 0xFF pattern of plaintext bytes
// 32..47 occurs (bk7231tools' find_storage; for cut extracts). It returns
// the valid key blocks, the protected blocks and errors for magic-bearing
// sectors that fail.
func findKeyBlocks(dump []byte) (keys []keyBlock, prot []BlockInfo, bad []BlockError, protData map[int][]byte) {
	protData = map[int][]byte{}
	seen := map[int]bool{}
	try := func(off int) {
		if off < 0 || off+48 > len(dump) || seen[off] {
			return
		}
		seen[off] = true
		head := ecb(masterKey, dump[off:off+48], true)
		if le32(head) != magicKey {
			return
		}
		key := head[8:24]
		if le32(head[4:]) == byteSum(key) {
			keys = append(keys, keyBlock{off: off, key: append([]byte(nil), key...)})
			return
		}
		// Same magic, other checksum: the protected block of BK7231N
		// covers its whole sector with the checksum.
		if off+sectorSize <= len(dump) {
			plain := ecb(masterKey, dump[off:off+sectorSize], true)
			if le32(plain[4:]) == byteSum(plain[8:]) {
				prot = append(prot, BlockInfo{Offset: off, Kind: KindProtected, OK: true})
				protData[off] = plain
				return
			}
		}
		bad = append(bad, BlockError{Offset: off, Reason: "key-block magic found but its checksum fails (damaged key block)"})
	}
	for off := 0; off+48 <= len(dump); off += sectorSize {
		try(off)
	}
	if len(keys) == 0 {
		ff := ecb(masterKey, bytes.Repeat([]byte{0xFF}, 16), false)
		for i := 0; ; {
			j := bytes.Index(dump[i:], ff)
			if j < 0 {
				break
			}
			try(i + j - 32)
			i += j + 1
		}
	}
	return keys, prot, bad, protData
}

// dataBlock is a decrypted data block.
type dataBlock struct {
	info  BlockInfo
	plain []byte
}

// scanDataBlocks decrypts every sector on the key block's 4 KiB grid with
// the data key and keeps those with a data-block magic. Sectors of the
// storage area (the dataSectors after the key block) that are neither a
// data block nor erased are reported as bad.
func scanDataBlocks(dump []byte, kb keyBlock, skip map[int]bool) (blocks []dataBlock, bad []BlockError) {
	dk := dataKey(kb.key)
	areaEnd := kb.off + (1+dataSectors)*sectorSize
	for off := kb.off % sectorSize; off < len(dump); off += sectorSize {
		if off == kb.off || skip[off] {
			continue
		}
		inArea := off > kb.off && off < areaEnd
		if off+sectorSize > len(dump) {
			if inArea {
				bad = append(bad, BlockError{Offset: off, Reason: fmt.Sprintf("truncated: the input ends %d bytes into this sector", len(dump)-off)})
			}
			break
		}
		raw := dump[off : off+sectorSize]
		head := ecb(dk, raw[:16], true)
		if m := le32(head); m != magicData1 && m != magicData2 {
			if inArea && !allFF(raw) {
				bad = append(bad, BlockError{Offset: off, Reason: "no data-block magic (sector overwritten or damaged)"})
			}
			continue
		}
		plain := ecb(dk, raw, true)
		info := BlockInfo{Offset: off, Kind: KindData, ID: int(le16(plain[8:])), Generation: le32(plain[10:]), OK: true}
		stored, sum := le32(plain[4:]), byteSum(plain[8:])
		switch {
		case stored != sum:
			info.OK = false
			info.Reason = fmt.Sprintf("checksum mismatch (stored 0x%08X, computed 0x%08X)", stored, sum)
		case 15+int(plain[14]) > pageSize:
			info.OK = false
			info.Reason = fmt.Sprintf("page map of %d bytes does not fit the header", plain[14])
		}
		if !info.OK {
			bad = append(bad, BlockError{Offset: off, Reason: info.Reason})
		}
		blocks = append(blocks, dataBlock{info: info, plain: plain})
	}
	return blocks, bad
}

func allFF(b []byte) bool {
	for _, c := range b {
		if c != 0xFF {
			return false
		}
	}
	return true
}

// newestBlocks picks, for every block id, the valid copy with the highest
// generation (BK7231GUIFlashTool ParseVaultKvStorage; the swap copies share
// the id). Ties keep the first one in flash order.
func newestBlocks(blocks []dataBlock) map[int]*dataBlock {
	use := map[int]*dataBlock{}
	for i := range blocks {
		b := &blocks[i]
		if !b.info.OK {
			continue
		}
		if cur, ok := use[b.info.ID]; !ok || b.info.Generation > cur.info.Generation {
			use[b.info.ID] = b
		}
	}
	return use
}

func isIndexPage(plain []byte, page int) bool {
	mapSize := int(plain[14])
	if page/8 >= mapSize {
		return false
	}
	return plain[15+page/8]&(1<<(page%8)) != 0
}

// part is one run of data pages of a value.
type part struct {
	block       int
	first, last int
}

// indexEntry is a parsed index page.
type indexEntry struct {
	name     string
	checksum uint32
	length   int
	element  uint32
	parts    []part
	off      int // offset of the index page in the input
}

// parseIndexPage decodes the index page at page number n of block b.
// Layout: u32 value checksum, u32 length, u16 block id, u8 page id,
// u16 part count, u32 element, u8 name length (with NUL), name,
// part count × {u16 block id, u8 first page, u8 last page}.
func parseIndexPage(b *dataBlock, n int) (indexEntry, error) {
	pg := b.plain[n*pageSize : (n+1)*pageSize]
	e := indexEntry{checksum: le32(pg), length: int(le32(pg[4:])), element: le32(pg[13:]), off: b.info.Offset + n*pageSize}
	if id, page := int(le16(pg[8:])), int(pg[10]); id != b.info.ID || page != n {
		return e, fmt.Errorf("index page names block %d page %d, but sits in block %d page %d", id, page, b.info.ID, n)
	}
	nparts, nameLen := int(le16(pg[11:])), int(pg[17])
	if nameLen == 0 || 18+nameLen+4*nparts > pageSize {
		return e, fmt.Errorf("name length %d and %d parts do not fit the page", nameLen, nparts)
	}
	name := bytes.TrimRight(pg[18:18+nameLen], "\x00")
	if len(name) == 0 {
		return e, fmt.Errorf("empty key name")
	}
	for _, c := range name {
		if c < 0x20 || c > 0x7E {
			return e, fmt.Errorf("key name is not printable")
		}
	}
	e.name = string(name)
	for i := 0; i < nparts; i++ {
		p := pg[18+nameLen+4*i:]
		e.parts = append(e.parts, part{block: int(le16(p)), first: int(p[2]), last: int(p[3])})
	}
	return e, nil
}

// readValue concatenates the data pages of e's parts and checks the
// value's byte sum.
func readValue(e indexEntry, use map[int]*dataBlock) ([]byte, error) {
	var v []byte
	for _, p := range e.parts {
		b, ok := use[p.block]
		if !ok {
			return nil, fmt.Errorf("its block %d is missing or damaged", p.block)
		}
		if p.first < 1 || p.last > pagesPerBlock || p.first > p.last {
			return nil, fmt.Errorf("page range %d..%d of block %d is invalid", p.first, p.last, p.block)
		}
		for n := p.first; n <= p.last; n++ {
			if isIndexPage(b.plain, n) {
				return nil, fmt.Errorf("page %d of block %d is an index page, not data", n, p.block)
			}
			v = append(v, b.plain[n*pageSize:(n+1)*pageSize]...)
		}
	}
	if len(v) < e.length {
		return nil, fmt.Errorf("value is %d bytes long but its pages hold only %d", e.length, len(v))
	}
	v = v[:e.length]
	if s := byteSum(v); s != e.checksum {
		return nil, fmt.Errorf("value checksum mismatch (stored 0x%08X, computed 0x%08X)", e.checksum, s)
	}
	return v, nil
}

// readValues reads every key of the in-use blocks. Where a name has
// several index entries the highest element wins (BK7231GUIFlashTool); an
// older entry is used only if the newer ones fail, and that is reported.
func readValues(use map[int]*dataBlock, dmg *DamageError) map[string][]byte {
	byName := map[string][]indexEntry{}
	ids := make([]int, 0, len(use))
	for id := range use {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	for _, id := range ids {
		b := use[id]
		for n := 1; n <= pagesPerBlock; n++ {
			if !isIndexPage(b.plain, n) {
				continue
			}
			e, err := parseIndexPage(b, n)
			if err != nil {
				dmg.Blocks = append(dmg.Blocks, BlockError{Offset: e.off, Reason: "index page: " + err.Error()})
				continue
			}
			byName[e.name] = append(byName[e.name], e)
		}
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	values := map[string][]byte{}
	for _, name := range names {
		cands := byName[name]
		sort.SliceStable(cands, func(i, j int) bool { return cands[i].element > cands[j].element })
		var failed []string
		for _, e := range cands {
			v, err := readValue(e, use)
			if err != nil {
				failed = append(failed, fmt.Sprintf("entry at 0x%06X: %v", e.off, err))
				continue
			}
			values[name] = v
			break
		}
		switch {
		case len(failed) == 0:
		case values[name] != nil:
			dmg.Keys = append(dmg.Keys, KeyError{Name: name, Reason: "newest copy unreadable (" + joinSemi(failed) + "); an older copy was used"})
		default:
			dmg.Keys = append(dmg.Keys, KeyError{Name: name, Reason: joinSemi(failed)})
		}
	}
	return values
}

func joinSemi(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(x)
	}
	return b.String()
}

// readProtected decodes the entries of a BK7231N protected block: after
// the master-key layer, u32 magic, u32 checksum, key[16], u32 data length,
// u32 reserved, then data encrypted with the data key derived from that
// key: entries of {u32 length, name[32], value} (bk7231tools
// ProtectedBlock; checked against the real dumps: copies of gw_bi and
// gw_wsm).
func readProtected(plain []byte) (map[string][]byte, error) {
	n := int(le32(plain[24:]))
	if n > sectorSize-32 {
		return nil, fmt.Errorf("protected data length %d exceeds the sector", n)
	}
	inner := ecb(dataKey(plain[8:24]), plain[32:32+(n+15)/16*16], true)[:n]
	out := map[string][]byte{}
	for q := 0; q < n; {
		if q+36 > n {
			return out, fmt.Errorf("entry header at %d runs past the data", q)
		}
		l := int(le32(inner[q:]))
		name := string(bytes.TrimRight(inner[q+4:q+36], "\x00"))
		if l < 0 || q+36+l > n {
			return out, fmt.Errorf("entry %q runs past the data", name)
		}
		out[name] = inner[q+36 : q+36+l]
		q += 36 + l
	}
	return out, nil
}
