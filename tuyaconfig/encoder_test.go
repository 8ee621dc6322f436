package tuyaconfig

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// This file is a test-only encoder of TuyaOS KV storage, written from the
// layout in bk7231-protocol.md §12.1. It builds key blocks, data blocks
// with index and data pages, swap copies by generation, multi-part values
// and the BK7231N protected block, so that every parsing rule is tested
// without the real dumps.

// synthBlock is one data block under construction (plaintext).
type synthBlock struct {
	id    uint16
	gen   uint32
	magic uint32
	plain []byte
	next  int   // next free page (1..31)
	index []int // index page numbers
}

func newSynthBlock(id uint16, gen uint32) *synthBlock {
	return &synthBlock{id: id, gen: gen, magic: magicData1, plain: make([]byte, sectorSize), next: 1}
}

func (b *synthBlock) free() int { return pagesPerBlock + 1 - b.next }

// seal writes the header (magic, checksum of bytes 8.., id, generation,
// page map) and returns the plaintext.
func (b *synthBlock) seal() []byte {
	p := b.plain
	binary.LittleEndian.PutUint32(p[0:], b.magic)
	binary.LittleEndian.PutUint16(p[8:], b.id)
	binary.LittleEndian.PutUint32(p[10:], b.gen)
	p[14] = 4
	for i := 15; i < 19; i++ {
		p[i] = 0
	}
	for _, n := range b.index {
		p[15+n/8] |= 1 << (n % 8)
	}
	binary.LittleEndian.PutUint32(p[4:], byteSum(p[8:]))
	return p
}

// synthStorage is a storage area under construction.
type synthStorage struct {
	deviceKey []byte
	blocks    []*synthBlock // flash order after the key block
	element   uint32
}

func newSynthStorage(nblocks int) *synthStorage {
	s := &synthStorage{deviceKey: []byte("0123456789abcdef"), element: 1000}
	for i := 0; i < nblocks; i++ {
		s.blocks = append(s.blocks, newSynthBlock(uint16(i), 0))
	}
	return s
}

// add stores name=value: an index page in the first block with room and
// the value's data pages in as many parts (blocks) as needed. It returns
// the element number used.
func (s *synthStorage) add(name string, value []byte) uint32 {
	s.element++
	return s.addElement(name, value, s.element)
}

func (s *synthStorage) addElement(name string, value []byte, element uint32) uint32 {
	idx := s.room(1)
	page := idx.next
	idx.next++
	idx.index = append(idx.index, page)
	need := (len(value) + pageSize - 1) / pageSize
	var parts [][3]int
	rest := value
	for need > 0 {
		b := s.room(1)
		n := min(b.free(), need)
		first := b.next
		for i := 0; i < n; i++ {
			chunk := rest[:min(pageSize, len(rest))]
			copy(b.plain[(first+i)*pageSize:], chunk)
			rest = rest[len(chunk):]
		}
		b.next += n
		need -= n
		parts = append(parts, [3]int{int(b.id), first, first + n - 1})
	}
	pg := idx.plain[page*pageSize : (page+1)*pageSize]
	binary.LittleEndian.PutUint32(pg[0:], byteSum(value))
	binary.LittleEndian.PutUint32(pg[4:], uint32(len(value)))
	binary.LittleEndian.PutUint16(pg[8:], idx.id)
	pg[10] = byte(page)
	binary.LittleEndian.PutUint16(pg[11:], uint16(len(parts)))
	binary.LittleEndian.PutUint32(pg[13:], element)
	pg[17] = byte(len(name) + 1)
	copy(pg[18:], name)
	q := 18 + len(name) + 1
	for _, p := range parts {
		binary.LittleEndian.PutUint16(pg[q:], uint16(p[0]))
		pg[q+2], pg[q+3] = byte(p[1]), byte(p[2])
		q += 4
	}
	return element
}

// room returns the first block (in id order) with at least n free pages.
func (s *synthStorage) room(n int) *synthBlock {
	for _, b := range s.blocks {
		if b.free() >= n {
			return b
		}
	}
	panic("synthetic storage full")
}

// block returns the block with id.
func (s *synthStorage) block(id int) *synthBlock {
	for _, b := range s.blocks {
		if int(b.id) == id {
			return b
		}
	}
	return nil
}

// keySector encodes the key block: magic, byte sum of the key, the key,
// 0xFF fill; AES with the master key.
func keySector(key []byte) []byte {
	p := bytes.Repeat([]byte{0xFF}, sectorSize)
	binary.LittleEndian.PutUint32(p[0:], magicKey)
	binary.LittleEndian.PutUint32(p[4:], byteSum(key))
	copy(p[8:], key)
	return ecb(masterKey, p, false)
}

// protectedSector encodes a BK7231N protected block holding entries.
func protectedSector(key []byte, entries [][2]string) []byte {
	var data []byte
	for _, e := range entries {
		var h [36]byte
		binary.LittleEndian.PutUint32(h[:], uint32(len(e[1])))
		copy(h[4:], e[0])
		data = append(append(data, h[:]...), e[1]...)
	}
	p := make([]byte, sectorSize)
	binary.LittleEndian.PutUint32(p[0:], magicKey)
	copy(p[8:], key)
	binary.LittleEndian.PutUint32(p[24:], uint32(len(data)))
	binary.LittleEndian.PutUint32(p[28:], 0xFFFFFFFF)
	padded := make([]byte, (len(data)+15)/16*16)
	copy(padded, data)
	copy(p[32:], ecb(dataKey(key), padded, false))
	binary.LittleEndian.PutUint32(p[4:], byteSum(p[8:]))
	return ecb(masterKey, p, false)
}

// bytes returns the encrypted storage: key block then the data blocks in
// flash order, erased sectors up to 1+dataSectors.
func (s *synthStorage) bytes() []byte {
	out := keySector(s.deviceKey)
	dk := dataKey(s.deviceKey)
	for _, b := range s.blocks {
		out = append(out, ecb(dk, b.seal(), false)...)
	}
	for len(out) < (1+dataSectors)*sectorSize {
		out = append(out, bytes.Repeat([]byte{0xFF}, sectorSize)...)
	}
	return out
}

// fullDump places storage at 0x1EE000 of a 2 MiB image, with a protected
// block at 0x1ED000 as on BK7231N; the rest is a fixed non-0xFF pattern.
func fullDump(storage []byte, protected []byte) []byte {
	img := make([]byte, 0x200000)
	for i := range img {
		img[i] = byte(i*7 + i>>9)
	}
	if protected != nil {
		copy(img[0x1ED000:], protected)
	}
	copy(img[UsualKeyBlockOffset:], storage)
	return img
}

// decryptedSector returns the plaintext of the data block at off.
func decryptedSector(s *synthStorage, img []byte, off int) []byte {
	return ecb(dataKey(s.deviceKey), img[off:off+sectorSize], true)
}

// resealSector re-encrypts plain at off after fixing its checksum.
func resealSector(s *synthStorage, img []byte, off int, plain []byte) {
	binary.LittleEndian.PutUint32(plain[4:], byteSum(plain[8:]))
	copy(img[off:], ecb(dataKey(s.deviceKey), plain, false))
}

func TestEncoderRoundTrip(t *testing.T) {
	// The encoder itself must produce what the reference describes, or the
	// parser tests below would prove nothing: check the key block and a
	// data block header by hand.
	s := newSynthStorage(2)
	s.add("k", []byte("v"))
	st := s.bytes()
	kb := ecb(masterKey, st[:sectorSize], true)
	if le32(kb) != magicKey || le32(kb[4:]) != byteSum(s.deviceKey) || !bytes.Equal(kb[8:24], s.deviceKey) {
		t.Fatalf("key block header wrong: % x", kb[:32])
	}
	if !bytes.Equal(kb[32:48], bytes.Repeat([]byte{0xFF}, 16)) {
		t.Fatal("key block bytes 32..47 must be 0xFF (bk7231tools find_storage relies on it)")
	}
	db := ecb(dataKey(s.deviceKey), st[sectorSize:2*sectorSize], true)
	if le32(db) != magicData1 || le32(db[4:]) != byteSum(db[8:]) || le16(db[8:]) != 0 || db[14] != 4 || db[15] != 0b10 {
		t.Fatalf("data block header wrong: % x", db[:20])
	}
	if got := db[2*pageSize]; got != 'v' {
		t.Fatalf("data page 2 starts with %q, want 'v'", got)
	}
}
