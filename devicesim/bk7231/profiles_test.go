package bksim

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"
)

// TestProfilesIdentifyLikeBk7231tools walks bk7231tools' detect_chip on
// every chip (reference §6): CheckCRC(0, 256) hashes 257 bytes on FULL
// chips and 256 on the bootloaders; ReadReg(0x800000) gives the chip id on
// FULL chips and status 7 on the others; ReadBootVersion answers on the T
// only; GetMID and the status register exist on FULL chips only; the
// bootloaders refuse plain reads of their own area.
func TestProfilesIdentifyLikeBk7231tools(t *testing.T) {
	tests := []struct {
		chip    Chip
		full    bool
		chipID  uint32
		version string // ReadBootVersion; "" = status 7
		mid     string // GetMID; "" = status 7
		key     [4]uint32
	}{
		{BK7231N, true, 0x7231C, "", "EB 60 15", tuyaKey},
		{BK7231M, true, 0x7231C, "", "EB 60 15", [4]uint32{}},
		{BK7238, true, 0x7238, "", "85 20 15", [4]uint32{}},
		{BK7252N, true, 0x7252A, "", "EB 60 15", [4]uint32{}},
		{BK7231T, false, 0, "BK7231S_1.0.5", "", tuyaKey},
		{BK7231U, false, 0, "", "", [4]uint32{}},
		{BK7252, false, 0, "", "", [4]uint32{}},
	}
	for _, tc := range tests {
		t.Run(tc.chip.String(), func(t *testing.T) {
			withLinkedChip(t, Config{Chip: tc.chip}, func(t *testing.T, r *rig) {
				f := r.d.Flash()
				n := 256
				if tc.full {
					n = 257
				}
				got := r.roundTrip(crcCmd(0, 256), 11)
				if want := cat(hx("04 0E 08 01 E0 FC 10"), le(hostCRC(f[:n]))); !bytes.Equal(got, want) {
					t.Fatalf("CheckCRC(0, 256) = % X, want the CRC of %d bytes", got, n)
				}
				r.send(linkCheck) // bootloaders re-protect after a CRC (§4.3)
				r.expect(linkReply)
				if tc.full {
					if id := r.readReg(0x800000); id != tc.chipID {
						t.Errorf("SCTRL_CHIP_ID = 0x%X, want 0x%X", id, tc.chipID)
					}
					var key [16]byte
					for a := range uint32(16) {
						r.writeReg(0x00800074, a<<8|1)
						key[a] = byte(r.readReg(0x00800078))
					}
					for i, w := range tc.key {
						if got := le32(key[4*i:]); got != w {
							t.Errorf("eFuse word %d = %08x, want %08x", i, got, w)
						}
					}
				} else {
					r.send(cmdShort(0x03, le(0x800000)...))
					r.expect(hx("04 0E 05 01 E0 FC 03 07"))
				}
				r.send(hx("01 E0 FC 01 11"))
				if tc.version != "" {
					r.expect(cat(hx("04 0E"), []byte{byte(4 + len(tc.version))}, hx("01 E0 FC 11"), []byte(tc.version)))
				} else {
					r.expect(hx("04 0E 05 01 E0 FC 11 07"))
				}
				r.send(hx("01 E0 FC FF F4 05 00 0E 9F 00 00 00"))
				if tc.mid != "" {
					r.expect(cat(hx("04 0E FF 01 E0 FC F4 06 00 0E 00 00"), hx(tc.mid)))
				} else {
					r.expect(hx("04 0E FF 01 E0 FC F4 02 00 0E 07"))
				}
				r.send(read4KCmd(0))
				if tc.full {
					r.expect(read4KReply(0, f[:4096]))
				} else {
					r.expect(cat(hx("04 0E FF 01 E0 FC F4 07 00 09 06"), le(0), []byte{0}))
					size := uint32(len(f))
					if got := r.readFlash(size); !bytes.Equal(got, f[:4096]) {
						t.Error("the bootloader area does not read through the wrapped address")
					}
				}
			})
		})
	}
}

// TestProfileBootloaders: each chip has its own synthetic bootloader whose
// fingerprint is the table's and no real bootloader's.
func TestProfileBootloaders(t *testing.T) {
	seen := map[uint32]Chip{}
	for _, c := range Chips() {
		p := c.profile()
		if o, dup := seen[p.bootCRC]; dup {
			t.Errorf("%v and %v share the fingerprint %08X", o, c, p.bootCRC)
		}
		seen[p.bootCRC] = c
		if name, ok := knownBootloaders[p.bootCRC]; ok {
			t.Errorf("%v: fingerprint %08X is the real %s", c, p.bootCRC, name)
		}
		if p.bootCRC == 0xB7BFA0CE {
			t.Errorf("%v: fingerprint is that of an unreadable flash", c)
		}
		b := syntheticBootloader(p)
		n := 256
		if p.proto == protoFull {
			n = 257
		}
		if got := crc32.ChecksumIEEE(b[:n]); got != p.bootCRC {
			t.Errorf("%v: synthetic bootloader CRC %08X, table says %08X", c, got, p.bootCRC)
		}
	}
}

// TestBK7252FlashSizeByWrap finds the flash size the way bk7231tools'
// flash_detect_size and the GUI do: the first size+0x11000 that reads like
// 0x11000.
func TestBK7252FlashSizeByWrap(t *testing.T) {
	for _, size := range []int{2 << 20, 4 << 20} {
		t.Run(fmt.Sprintf("%d MiB", size>>20), func(t *testing.T) {
			withLinkedChip(t, Config{Chip: BK7252, FlashSize: size}, func(t *testing.T, r *rig) {
				base := r.readFlash(0x11000)
				found := 0
				for _, s := range []int{2 << 20, 4 << 20, 8 << 20, 16 << 20} {
					if bytes.Equal(r.readFlash(uint32(s+0x11000)), base) {
						found = s
						break
					}
				}
				if found != size {
					t.Fatalf("wrap-around says %d bytes, want %d", found, size)
				}
			})
		})
	}
}

// TestProfileTable checks the table for what adding a row must not break:
// unique names, offsets inside the default flash, sources given.
func TestProfileTable(t *testing.T) {
	names := map[string]Chip{}
	for _, c := range Chips() {
		p := c.profile()
		if p.name != c.String() || !strings.HasPrefix(p.name, "BK72") {
			t.Errorf("%v: name %q", c, p.name)
		}
		for _, n := range p.names {
			if o, dup := names[n]; dup {
				t.Errorf("name %q used by %v and %v", n, o, c)
			}
			names[n] = c
		}
		if c != BK7231N && c != BK7231T && c.Unverified() == "" {
			t.Errorf("%v: a chip without real dumps here must say what is unverified", c)
		}
		if p.rf+0x1000 > p.size || TuyaStorageOffset(c, p.size)+0x2000 > p.size || c.Sources() == "" {
			t.Errorf("%v: RF 0x%X, KV 0x%X in %d bytes, sources %q", c, p.rf, TuyaStorageOffset(c, p.size), p.size, p.sources)
		}
		if (p.proto == protoBasicTuya) != (p.bootVersion != "") {
			t.Errorf("%v: boot version %q with protocol %v", c, p.bootVersion, p.proto)
		}
		if c.BootloaderBased() != (p.proto != protoFull) {
			t.Errorf("%v: BootloaderBased disagrees with the protocol", c)
		}
	}
}
