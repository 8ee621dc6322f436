package firmware

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/tuyaflash/tuyaflash/firmware/fwtest"
	"github.com/tuyaflash/tuyaflash/flasher"
)

// FuzzUF2 feeds UF2 packages to Detect. Besides never panicking: an
// accepted package names a BK7231 family and yields non-empty regions in
// address order that neither overlap nor run past the 32-bit address
// space; refusals are flasher.ErrRefused. The tag list of a block, encoded
// here as uf2tool does, reads back to the same tags.
func FuzzUF2(f *testing.F) {
	app := fwtest.App(fwtest.SigTuya, 0x300, 1)
	f.Add(fwtest.LibreTinyUF2(0x7B3EF230, app, 0x1000, fwtest.Frame(fwtest.RBL(0, 0, "app", "1"))))
	f.Add(fwtest.LibreTinyUF2(0x675A40B0, app[:200], 0, nil))
	// A package with its own partition table (FAL_PTABLE) and an MD5 area.
	fal := make([]byte, 48)
	copy(fal, []byte{0x30, 0x31, 0x50, 0x45})
	copy(fal[4:], "app")
	copy(fal[36:], []byte{0x00, 0x10, 0x01, 0x00, 0x00, 0x00, 0x12, 0x00})
	f.Add(fwtest.UF2File([]fwtest.UF2Block{
		{Addr: 0, Data: app[:256], Family: 0x7B3EF230, Flags: 0x4000, Tags: [][2][]byte{
			fwtest.Tag(tagOTAFormat2, nil), fwtest.Tag(tagOTAPartInfo, fwtest.PartInfo(1, "app")), fwtest.Tag(tagFALPTable, fal)}},
		{Addr: 256, Data: app[256:512], Family: 0x7B3EF230},
	}))
	// Payload running into the MD5 area of a block with tags: used to
	// slice past the tag area and panic.
	md5 := fwtest.UF2File([]fwtest.UF2Block{{Data: app[:460], Family: 0x7B3EF230, Flags: 0x4000, Tags: [][2][]byte{fwtest.Tag(tagOTAFormat2, nil)}}})
	f.Add(md5)
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Detect(data, "fw.uf2")
		if err != nil {
			if !errors.Is(err, flasher.ErrRefused) {
				t.Fatalf("unclear error %v", err)
			}
		} else if d.Format == FormatUF2 {
			if d.Family != flasher.BK7231T && d.Family != flasher.BK7231N || len(d.Regions) == 0 || d.Offset != d.Regions[0].Addr {
				t.Fatalf("accepted UF2: family %v, %d regions, offset 0x%X", d.Family, len(d.Regions), d.Offset)
			}
			end := uint64(0)
			for _, r := range d.Regions {
				if len(r.Data) == 0 || r.Size != len(r.Data) || uint64(r.Addr) < end {
					t.Fatalf("region at 0x%X of %d bytes (size %d) after 0x%X", r.Addr, len(r.Data), r.Size, end)
				}
				end = uint64(r.Addr) + uint64(len(r.Data))
				if end > 1<<32 {
					t.Fatalf("region at 0x%X of %d bytes runs past the address space", r.Addr, len(r.Data))
				}
			}
		}
		// Tag round trip: up to three tags cut from the data.
		want := map[uint32][]byte{}
		var tags [][2][]byte
		rest := data
		for len(rest) >= 4 && len(tags) < 3 {
			typ := uint32(rest[0]) | uint32(rest[1])<<8 | uint32(rest[2])<<16
			n := min(int(rest[3])%64, len(rest)-4)
			v := rest[4 : 4+n]
			rest = rest[4+n:]
			tags = append(tags, fwtest.Tag(typ, v))
			want[typ] = v
		}
		if len(tags) == 0 {
			return
		}
		blk := fwtest.UF2File([]fwtest.UF2Block{{Tags: tags}})
		got, err := parseUF2Tags(blk[32:508])
		if err != nil || len(got) != len(want) {
			t.Fatalf("tags %v read back as %v, %v", want, got, err)
		}
		for k, v := range want {
			if !bytes.Equal(got[k], v) {
				t.Fatalf("tag 0x%06X: % X read back as % X", k, v, got[k])
			}
		}
	})
}

// FuzzRBL feeds RBL headers (LibreTiny's app trailer, the bootloader
// partition's header) to their readers: no panic, and a header written
// here reads back with its fields.
func FuzzRBL(f *testing.F) {
	f.Add(fwtest.RBL(0, 0, "app", "1.2.3"), byte(1), byte(2), "app", "1.2.3")
	f.Add(fwtest.Frame(fwtest.RBL(1, 1, "bootloader", "")), byte(0), byte(0), "", "")
	f.Add([]byte("RBL\x00"), byte(0), byte(0), "\xff", "v\x00x")
	f.Fuzz(func(t *testing.T, data []byte, enc, comp byte, name, version string) {
		if h, ok := parseRBL(data); ok && (len(h.Name) > 16*3 || len(h.Version) > 24*3) {
			t.Fatalf("header fields longer than their slots: %+v", h)
		}
		trailerRBL(data)
		bootRBL(data)
		h, ok := parseRBL(fwtest.RBL(enc, comp, name, version))
		if !ok {
			t.Fatal("a header written with its CRC does not read")
		}
		cut := func(s string, n int) string {
			s = s[:min(len(s), n)]
			if i := bytes.IndexByte([]byte(s), 0); i >= 0 {
				s = s[:i]
			}
			return string(bytes.ToValidUTF8([]byte(s), []byte("?")))
		}
		if h.Encryption != enc || h.Compression != comp || h.Name != cut(name, 16) || h.Version != cut(version, 24) {
			t.Fatalf("header read back as %+v", h)
		}
	})
}

// TestUF2PayloadIntoMD5Area: a block whose payload runs into its MD5 area
// is refused as damaged (it used to panic when the block also had tags).
func TestUF2PayloadIntoMD5Area(t *testing.T) {
	b := fwtest.UF2File([]fwtest.UF2Block{{Data: make([]byte, 470), Family: 0x7B3EF230, Flags: 0x4000 | 0x8000}})
	_, err := Detect(b, "x.uf2")
	if !errors.Is(err, flasher.ErrRefused) || !strings.Contains(err.Error(), "MD5 area") {
		t.Fatalf("err %v", err)
	}
}
