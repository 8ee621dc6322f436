package firmware

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"

	"github.com/tuyaflash/tuyaflash/flasher"
)

// UF2 block layout (microsoft/uf2 README; ltchiptool uf2tool/models/block.py
// and flags.py): 512-byte blocks, little-endian words.
const (
	uf2Block      = 512
	uf2Magic0     = 0x0A324655 // "UF2\n"
	uf2Magic1     = 0x9E5D5157
	uf2MagicEnd   = 0x0AB16F30
	uf2MaxPayload = 476

	uf2NotMainFlash  = 0x00000001
	uf2FileContainer = 0x00001000
	uf2HasFamily     = 0x00002000
	uf2HasMD5        = 0x00004000
	uf2HasTags       = 0x00008000
)

// UF2 tags LibreTiny writes (uf2tool/models/enums.py Tag).
const (
	tagVersion     = 0x9FC7BC
	tagOTAFormat1  = 0x5D57D0
	tagOTAFormat2  = 0x6C8492
	tagOTAPartInfo = 0xC0EE0C
	tagBoard       = 0xCA25C8
	tagFirmware    = 0x00DE43
	tagFALPTable   = 0x8288ED
)

// schemeFlasherSingle is uf2tool's OTAScheme.FLASHER_SINGLE: the parts a
// serial flasher writes (libretiny builder/family/beken-72xx.py puts the
// CRC-framed app and its RBL header there as "flasher:app").
const schemeFlasherSingle = 3

// uf2Families are LibreTiny's UF2 family ids for the chips tuyaflash
// flashes (libretiny families.json at v1.13.0: 0x675A40B0 "BK7231T",
// 0x7B3EF230 "BK7231N", 0x159AC324 "BK7238", 0x6A82CC42 "BK7251", described
// as "Beken 7251/7252"). LibreTiny has no BK7231U family.
var uf2Families = map[uint32]flasher.Family{
	0x675A40B0: flasher.BK7231T,
	0x7B3EF230: flasher.BK7231N,
	0x159AC324: flasher.BK7238,
	0x6A82CC42: flasher.BK7252,
}

// uf2FamilyList names the families of uf2Families for messages, in id
// order: "BK7238 (0x159AC324), …".
func uf2FamilyList() string {
	ids := make([]uint32, 0, len(uf2Families))
	for id := range uf2Families {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var s []string
	for _, id := range ids {
		s = append(s, fmt.Sprintf("%s (0x%08X)", uf2Families[id], id))
	}
	return strings.Join(s, ", ")
}

// uf2Partitions are the partition offsets of LibreTiny's BK72xx boards
// that are the same on every board (boards/_base/beken-72xx.json; the
// -tuya variants move only download, kvs and the data partitions).
var uf2Partitions = map[string][2]uint32{
	"bootloader": {0x000000, 0x11000},
	"app":        {0x011000, 0x121000},
}

type uf2Chunk struct {
	part string
	rel  uint32
	data []byte
}

// detectUF2 parses a LibreTiny UF2 package: every block, its family, the
// partition names of the flasher scheme and the parts' flash offsets.
func detectUF2(d *Detection) error {
	b := d.Data
	d.Format = FormatUF2
	bad := func(format string, args ...any) error {
		return refuse("", "the .uf2 file is damaged or not made by LibreTiny/ESPHome: build or download it again", "UF2: "+format, args...)
	}
	if len(b)%uf2Block != 0 {
		return bad("the file is %d bytes, not a multiple of 512", len(b))
	}
	var (
		family   uint32
		haveFam  bool
		tags     = map[uint32][]byte{}
		part     string
		chunks   []uf2Chunk
		nblocks  = len(b) / uf2Block
		declared uint32
	)
	for i := range nblocks {
		blk := b[i*uf2Block : (i+1)*uf2Block]
		le := func(off int) uint32 { return binary.LittleEndian.Uint32(blk[off:]) }
		if le(0) != uf2Magic0 || le(4) != uf2Magic1 || le(508) != uf2MagicEnd {
			return bad("block %d has wrong magic numbers", i)
		}
		flags, addr, size, seq, count := le(8), le(12), le(16), le(20), le(24)
		if flags&uf2FileContainer != 0 {
			return refuse("", "use the .uf2 built for flashing, not a file container", "UF2 block %d is a file container, not flash data", i)
		}
		if size > uf2MaxPayload {
			return bad("block %d claims %d payload bytes (at most 476)", i, size)
		}
		if i == 0 {
			declared = count
		}
		if count != declared || seq != uint32(i) {
			return bad("block %d is numbered %d of %d (expected %d of %d): blocks are missing or out of order", i, seq, count, i, declared)
		}
		if flags&uf2HasFamily != 0 {
			f := le(28)
			if haveFam && f != family {
				return bad("block %d has family 0x%08X, earlier blocks 0x%08X", i, f, family)
			}
			family, haveFam = f, true
		}
		end := 508
		if flags&uf2HasMD5 != 0 {
			end = 484
		}
		if 32+int(size) > end {
			return bad("block %d claims %d payload bytes, overlapping its MD5 area", i, size)
		}
		var btags map[uint32][]byte
		if flags&uf2HasTags != 0 {
			var err error
			if btags, err = parseUF2Tags(blk[32+int(size) : end]); err != nil {
				return bad("block %d: %v", i, err)
			}
			for k, v := range btags {
				tags[k] = v
			}
		}
		if info, ok := btags[tagOTAPartInfo]; ok {
			p, err := flasherPart(info)
			if err != nil {
				return bad("block %d: %v", i, err)
			}
			part = p
		}
		if flags&uf2NotMainFlash != 0 || size == 0 || part == "" {
			continue
		}
		chunks = append(chunks, uf2Chunk{part, addr, blk[32 : 32+size]})
	}
	if declared != uint32(nblocks) {
		return bad("the file has %d blocks, its blocks say %d", nblocks, declared)
	}
	if !haveFam {
		return refuse("", "use a UF2 made by LibreTiny/ESPHome for your chip", "the UF2 file names no chip family")
	}
	fam, ok := uf2Families[family]
	if !ok {
		return refuse("", "tuyaflash writes UF2 packages for "+uf2FamilyList()+" only",
			"the UF2 file is for chip family 0x%08X", family)
	}
	d.Arch, d.Family = ArchBeken, fam
	if v := tags[tagFirmware]; len(v) > 0 {
		d.note("firmware %s %s", printable(v), printable(tags[tagVersion]))
	}
	d.Version = printable(tags[tagVersion])
	if v := tags[tagBoard]; len(v) > 0 {
		d.note("board %s", printable(v))
	}
	if _, ok := tags[tagOTAFormat2]; !ok {
		if _, legacy := tags[tagOTAFormat1]; legacy {
			return refuse("", "rebuild with a current LibreTiny/ESPHome, or write it with ltchiptool v3.0.0 or older", "this UF2 uses LibreTiny's legacy format 1, whose partition layout tuyaflash does not read")
		}
		return refuse("", "use the firmware.uf2 LibreTiny/ESPHome built", "the UF2 file has no LibreTiny tags, so where its data goes cannot be told")
	}
	if len(chunks) == 0 {
		return refuse("", "this UF2 only holds an OTA update; use the full firmware.uf2 of the build", "the UF2 file has no data for serial flashing (LibreTiny's flasher scheme)")
	}
	table := uf2Partitions
	if pt, ok := tags[tagFALPTable]; ok {
		t, err := parseFALTable(pt)
		if err != nil {
			return bad("%v", err)
		}
		table = t
	}
	regions, err := uf2Regions(chunks, table)
	if err != nil {
		return err
	}
	d.Regions = regions
	d.Offset = regions[0].Addr
	if r := regions[0]; r.Addr == bekenAppOffset {
		d.Key = appKey(r.Data, 0)
		d.keyNote()
	}
	return nil
}

// uf2Regions places chunks at their partitions' offsets and joins
// adjacent ones.
func uf2Regions(chunks []uf2Chunk, table map[string][2]uint32) ([]Region, error) {
	var out []Region
	for _, c := range chunks {
		p, ok := table[c.part]
		if !ok {
			return nil, refuse("", "write it with ltchiptool, which knows the board's layout", "the UF2 file writes partition %q, whose flash offset tuyaflash does not know", c.part)
		}
		if uint64(c.rel)+uint64(len(c.data)) > uint64(p[1]) {
			return nil, refuse("", "", "UF2 data at 0x%X+%d runs past the end of partition %q (0x%X bytes)", c.rel, len(c.data), c.part, p[1])
		}
		addr := p[0] + c.rel
		if n := len(out); n > 0 && out[n-1].Addr+uint32(len(out[n-1].Data)) == addr && out[n-1].Part == c.part {
			out[n-1].Data = append(out[n-1].Data, c.data...)
			out[n-1].Size = len(out[n-1].Data)
			continue
		}
		out = append(out, Region{Addr: addr, Data: append([]byte(nil), c.data...), Part: c.part, Size: len(c.data)})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Addr < out[j].Addr })
	for i := 1; i < len(out); i++ {
		if out[i-1].Addr+uint32(len(out[i-1].Data)) > out[i].Addr {
			return nil, refuse("", "", "UF2 parts overlap at 0x%06X", out[i].Addr)
		}
	}
	return out, nil
}

// parseUF2Tags reads the tag list after a block's payload: length byte
// (including the 4-byte header), 3-byte type, data, padded to 4 bytes; a
// zero length ends the list.
func parseUF2Tags(b []byte) (map[uint32][]byte, error) {
	tags := map[uint32][]byte{}
	for i := 0; i < len(b); {
		n := int(b[i])
		if n == 0 {
			break
		}
		if n < 4 || i+n > len(b) {
			return nil, fmt.Errorf("tag at %d claims %d bytes", i, n)
		}
		typ := uint32(b[i+1]) | uint32(b[i+2])<<8 | uint32(b[i+3])<<16
		tags[typ] = b[i+4 : i+n]
		i += (n + 3) &^ 3
	}
	return tags, nil
}

// flasherPart reads an OTA_PART_INFO tag (uf2tool UploadContext
// parse_part_info): 3 bytes holding six decimal digits, one partition
// index per OTA scheme (0 = none), then NUL-separated partition names.
func flasherPart(info []byte) (string, error) {
	if len(info) < 3 {
		return "", fmt.Errorf("partition info tag too short")
	}
	digit := info[schemeFlasherSingle/2]
	if schemeFlasherSingle%2 == 0 {
		digit >>= 4
	}
	idx := int(digit & 0x0F)
	if idx > 9 {
		return "", fmt.Errorf("partition info index 0x%X is not a digit", idx)
	}
	var names []string
	for _, n := range bytes.Split(info[3:], []byte{0}) {
		if len(n) > 0 {
			names = append(names, string(n))
		}
	}
	if idx == 0 {
		return "", nil
	}
	if idx > len(names) {
		return "", fmt.Errorf("partition info names %d partitions, index %d", len(names), idx)
	}
	return names[idx-1], nil
}

// parseFALTable reads a FAL_PTABLE tag (uf2tool/models/partition.py with
// 16-byte names): per partition magic 0x45503130, name[16],
// flash_name[16], offset, length, 4 bytes padding.
func parseFALTable(b []byte) (map[string][2]uint32, error) {
	const entry = 4 + 16 + 16 + 4 + 4 + 4
	if len(b)%entry != 0 {
		return nil, fmt.Errorf("partition table of %d bytes is not a whole number of %d-byte entries", len(b), entry)
	}
	t := map[string][2]uint32{}
	for off := 0; off < len(b); off += entry {
		e := b[off : off+entry]
		if binary.LittleEndian.Uint32(e) != 0x45503130 {
			return nil, fmt.Errorf("partition table entry %d has a bad magic", off/entry)
		}
		name := strings.TrimRight(string(e[4:20]), "\x00")
		t[name] = [2]uint32{binary.LittleEndian.Uint32(e[36:]), binary.LittleEndian.Uint32(e[40:])}
	}
	return t, nil
}

// printable turns tag bytes into a string safe to print.
func printable(b []byte) string {
	s := strings.ToValidUTF8(string(bytes.TrimRight(b, "\x00")), "?")
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7F {
			return '?'
		}
		return r
	}, s)
}
