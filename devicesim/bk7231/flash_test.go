package bksim

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tuyaflash/tuyaflash/transport"
)

func TestROMCRC(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 255, 256, 257, 4096, 10000} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		if got, want := romCRC(0xFFFFFFFF, data), hostCRC(data); got != want {
			t.Errorf("%d bytes: romCRC %08X, want ChecksumIEEE^FFFFFFFF %08X", n, got, want)
		}
	}
	// Constants of reference §4.2 (standard CRC = raw ^ FFFFFFFF).
	if got := romCRC(0xFFFFFFFF, bytes.Repeat([]byte{0xFF}, 4096)) ^ 0xFFFFFFFF; got != 0xF154670A {
		t.Errorf("CRC of 4 KiB of FF = %08X, want F154670A", got)
	}
	if got := romCRC(0xFFFFFFFF, make([]byte, 257)) ^ 0xFFFFFFFF; got != 0xB7BFA0CE {
		t.Errorf("CRC of 257 zero bytes = %08X, want B7BFA0CE", got)
	}
}

func TestCRC16CMS(t *testing.T) {
	if got := crc16CMS([]byte("123456789")); got != 0xAEE7 {
		t.Fatalf("CRC-16/CMS check value %04X, want AEE7", got)
	}
}

// TestCheckCRCRange: the N BootROM includes the end address, the T bootloader
// does not (reference §4.2); addresses wrap.
func TestCheckCRCRange(t *testing.T) {
	tests := []struct {
		chip       Chip
		start, end uint32
		lo, hi     int // the flash bytes the chip must hash
	}{
		{BK7231N, 0, 0x100, 0, 0x101},
		{BK7231T, 0, 0x100, 0, 0x100},
		{BK7231N, 0x11000, 0x11FFF, 0x11000, 0x12000},
		{BK7231T, 0x11000, 0x12000, 0x11000, 0x12000},
		{BK7231T, 0x211000, 0x212000, 0x11000, 0x12000},
		{BK7231N, 0x1D0000, 0x1D0000, 0x1D0000, 0x1D0001},
		{BK7231T, 0x1E0000, 0x1E0000, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.chip.String(), func(t *testing.T) {
			withLinkedChip(t, Config{Chip: tc.chip}, func(t *testing.T, r *rig) {
				f := r.d.Flash()
				got := r.roundTrip(crcCmd(tc.start, tc.end), 11)
				want := cat(hx("04 0E 08 01 E0 FC 10"), le(crc32.ChecksumIEEE(f[tc.lo:tc.hi])^0xFFFFFFFF))
				if !bytes.Equal(got, want) {
					t.Fatalf("CheckCRC 0x%X..0x%X = % X, want % X (bytes 0x%X..0x%X)", tc.start, tc.end, got, want, tc.lo, tc.hi)
				}
			})
		})
	}
}

// TestNORSemantics: erase sets 0xFF, programming only clears bits, every
// erase command erases its aligned block.
func TestNORSemantics(t *testing.T) {
	withLinkedChip(t, Config{Chip: BK7231N, StatusReg: sr(0)}, func(t *testing.T, r *rig) {

		r.send(cmdLong(0x0B, le(0x100123)...)) // FlashErase4K
		r.expect(cat(hx("04 0E FF 01 E0 FC F4 06 00 0B 00"), le(0x100123)))
		r.send(cmdLong(0x06, cat(le(0x100010), bytes.Repeat([]byte{0xF0}, 16))...))
		r.expect(cat(hx("04 0E FF 01 E0 FC F4 07 00 06 00"), le(0x100010), []byte{16}))
		r.send(cmdLong(0x06, cat(le(0x100010), bytes.Repeat([]byte{0x3C}, 16))...))
		r.read(16)
		got := r.roundTrip(cmdLong(0x08, cat(le(0x100000), []byte{48})...), 15+48) // FlashRead
		want := cat(hx("04 0E FF 01 E0 FC F4 36 00 08 00"), le(0x100000),
			bytes.Repeat([]byte{0xFF}, 16), bytes.Repeat([]byte{0x30}, 16), bytes.Repeat([]byte{0xFF}, 16))
		if !bytes.Equal(got, want) {
			t.Fatalf("FlashRead after two programs\n got % X\nwant % X", got, want)
		}

		// FlashWrite4K over unerased data ANDs too.
		old := r.d.Flash()[0x40000:0x41000]
		data := bytes.Repeat([]byte{0x0F, 0xF0, 0xAA, 0x55}, 1024)
		r.send(write4KCmd(0x40000, data))
		r.read(15)
		now := r.d.Flash()[0x40000:0x41000]
		for i := range now {
			if now[i] != old[i]&data[i] {
				t.Fatalf("byte 0x%X = %02X, want %02X & %02X", 0x40000+i, now[i], old[i], data[i])
			}
		}

		tests := []struct {
			req       []byte
			replyLen  int
			base, len uint32
		}{
			{cmdLong(0x0F, cat([]byte{0x20}, le(0x41FFF))...), 16, 0x41000, 0x1000},
			{cmdLong(0x0F, cat([]byte{0x52}, le(0x58000+0x7FFF))...), 16, 0x58000, 0x8000},
			{cmdLong(0x0F, cat([]byte{0xD8}, le(0x123456))...), 16, 0x120000, 0x10000},
		}
		for _, tc := range tests {
			before := r.d.Flash()
			r.send(tc.req)
			r.read(tc.replyLen)
			after := r.d.Flash()
			if !allFF(after[tc.base : tc.base+tc.len]) {
				t.Errorf("block 0x%X+0x%X not erased", tc.base, tc.len)
			}
			if !bytes.Equal(after[:tc.base], before[:tc.base]) || !bytes.Equal(after[tc.base+tc.len:], before[tc.base+tc.len:]) {
				t.Errorf("erase of 0x%X+0x%X touched other blocks", tc.base, tc.len)
			}
		}
		er := r.d.Stats().Erased
		for _, s := range []uint32{0x100000, 0x41000, 0x58000, 0x5F000, 0x120000, 0x12F000} {
			if er[s] != 1 {
				t.Errorf("Erased[0x%X] = %d, want 1", s, er[s])
			}
		}
		if len(er) != 1+1+8+16 {
			t.Errorf("%d sectors erased, want 26", len(er))
		}

		r.send(cmdLong(0x0A, 0x04)) // FlashEraseAll
		r.expect(hx("04 0E FF 01 E0 FC F4 03 00 0A 00 04"))
		if !allFF(r.d.Flash()) {
			t.Error("FlashEraseAll left data")
		}
	})
}

func TestAddressWrap(t *testing.T) {
	withLinkedChip(t, Config{Chip: BK7231N, StatusReg: sr(0)}, func(t *testing.T, r *rig) {
		data := bytes.Repeat([]byte{0x12, 0x34}, 2048)
		r.send(erase4KCmd(0x600000 + 0x77000)) // three flash sizes up
		r.read(16)
		r.send(write4KCmd(0x277000, data))
		r.read(15)
		if !bytes.Equal(r.d.Flash()[0x77000:0x78000], data) {
			t.Fatal("wrapped write did not land at physical 0x77000")
		}
		if got := r.readFlash(0x77000); !bytes.Equal(got, data) {
			t.Fatal("plain read does not see the wrapped write")
		}
		f := r.d.Flash()
		if got := r.readFlash(0x1FF800); !bytes.Equal(got, cat(f[0x1FF800:], f[:0x800])) {
			t.Fatal("a read across the end of the flash does not wrap to 0x0")
		}
	})
}

// TestTRefusesPlainBootloaderReads: the T bootloader answers status 6 to a
// FlashRead4K below 0x11000 (ltchiptool issue #34) but serves the same bytes
// through the wrapped address (reference §5.1).
func TestTRefusesPlainBootloaderReads(t *testing.T) {
	tests := []struct {
		chip    Chip
		addr    uint32
		refused bool
		phys    int
	}{
		{BK7231T, 0x000000, true, 0},
		{BK7231T, 0x010000, true, 0},
		{BK7231T, 0x011000, false, 0x11000},
		{BK7231T, 0x200000, false, 0},
		{BK7231T, 0x210000, false, 0x10000},
		{BK7231N, 0x000000, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.chip.String(), func(t *testing.T) {
			withLinkedChip(t, Config{Chip: tc.chip}, func(t *testing.T, r *rig) {
				if tc.refused {
					r.send(read4KCmd(tc.addr))
					r.expect(cat(hx("04 0E FF 01 E0 FC F4 07 00 09 06"), le(tc.addr), []byte{0}))
					r.silent(10 * time.Millisecond)
					return
				}
				f := r.d.Flash()
				if got := r.readFlash(tc.addr); !bytes.Equal(got, f[tc.phys:tc.phys+4096]) {
					t.Fatalf("FlashRead4K 0x%X does not return physical 0x%X", tc.addr, tc.phys)
				}
			})
		})
	}
}

// TestTReprotectAfterCRC: after a CheckCRC the T bootloader ignores erase and
// program until the next LinkCheck (reference §4.3).
func TestTReprotectAfterCRC(t *testing.T) {
	withLinkedChip(t, Config{Chip: BK7231T}, func(t *testing.T, r *rig) {
		const a = 0x20000
		data := bytes.Repeat([]byte("T-lock"), 700)[:4096]
		eraseReply := cat(hx("04 0E FF 01 E0 FC F4 07 00 0F 00 20"), le(a))
		writeReply := cat(hx("04 0E FF 01 E0 FC F4 06 00 07 00"), le(a))

		r.send(erase4KCmd(a))
		r.expect(eraseReply)
		r.send(write4KCmd(a, data))
		r.expect(writeReply)
		if !bytes.Equal(r.d.Flash()[a:a+4096], data) {
			t.Fatal("write before any CheckCRC did not program")
		}
		r.send(crcCmd(a, a+4096))
		r.expect(cat(hx("04 0E 08 01 E0 FC 10"), le(hostCRC(data))))

		// Locked: both reply OK, neither changes the flash.
		r.send(erase4KCmd(a))
		r.expect(eraseReply)
		r.send(write4KCmd(a, make([]byte, 4096)))
		r.expect(writeReply)
		r.send(cmdLong(0x06, cat(le(a), make([]byte, 16))...))
		r.read(16)
		if !bytes.Equal(r.d.Flash()[a:a+4096], data) {
			t.Fatal("erase/program after CheckCRC changed the flash; the T bootloader re-protects it")
		}
		if n := r.d.Stats().Erased[a]; n != 1 {
			t.Fatalf("Erased[0x%X] = %d, want 1 (the locked erase must not count)", a, n)
		}

		r.send(linkCheck)
		r.expect(linkReply)
		r.send(erase4KCmd(a))
		r.expect(eraseReply)
		if !allFF(r.d.Flash()[a : a+4096]) {
			t.Fatal("erase after LinkCheck did not erase")
		}
	})
}

// TestNProtection: with BP/CMP bits set the N's flash ignores erase and
// program while replying OK, until the status register is cleared (§7).
func TestNProtection(t *testing.T) {
	withLinkedChip(t, Config{Chip: BK7231N}, func(t *testing.T, r *rig) {
		const a = 0x30000
		old := r.d.Flash()[a : a+4096]
		r.send(readSRCmd(0x05))
		r.expect(hx("04 0E FF 01 E0 FC F4 04 00 0C 00 05 04"))
		r.send(readSRCmd(0x35))
		r.expect(hx("04 0E FF 01 E0 FC F4 04 00 0C 00 35 40"))

		r.send(erase4KCmd(a))
		r.expect(cat(hx("04 0E FF 01 E0 FC F4 07 00 0F 00 20"), le(a)))
		if !bytes.Equal(r.d.Flash()[a:a+4096], old) || len(r.d.Stats().Erased) != 0 {
			t.Fatal("erase on a protected flash changed it")
		}

		// One byte with opcode 01 writes SR1 only: CMP stays, still protected.
		r.send(cmdLong(0x0D, 0x01, 0x00))
		r.expect(hx("04 0E FF 01 E0 FC F4 04 00 0D 00 01 00"))
		if st := r.d.Stats(); st.StatusReg != 0x4000 {
			t.Fatalf("SR after 8-bit WRSR = %04X, want 4000", st.StatusReg)
		}
		r.send(erase4KCmd(a))
		r.read(16)
		if !bytes.Equal(r.d.Flash()[a:a+4096], old) {
			t.Fatal("erase with CMP set changed the flash")
		}

		r.send(unprotect2)
		r.expect(hx("04 0E FF 01 E0 FC F4 05 00 0D 00 01 00 00"))
		r.send(readSRCmd(0x05))
		r.expect(hx("04 0E FF 01 E0 FC F4 04 00 0C 00 05 00"))
		r.send(erase4KCmd(a))
		r.read(16)
		if !allFF(r.d.Flash()[a : a+4096]) {
			t.Fatal("erase after unprotect did not erase")
		}
		// Opcode 31 writes SR2 alone; protection comes back.
		r.send(cmdLong(0x0D, 0x31, 0x40))
		r.read(13)
		if st := r.d.Stats(); st.StatusReg != 0x4000 {
			t.Fatalf("SR after WRSR2 = %04X, want 4000", st.StatusReg)
		}
	})
}

func TestNoopWRSRLock(t *testing.T) {
	tests := []struct {
		name       string
		lock       bool
		initial    uint16
		wantSR     uint16
		wantLocked bool
	}{
		{"no-op write locks", true, 0x0000, 0x7BFC, true},
		{"real write does not lock", true, 0x4004, 0x0000, false},
		{"no-op write harmless without the quirk", false, 0x0000, 0x0000, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			withLinkedChip(t, Config{Chip: BK7231N, StatusReg: sr(tc.initial), LockOnNoopSRWrite: tc.lock}, func(t *testing.T, r *rig) {
				r.send(unprotect2)
				r.expect(hx("04 0E FF 01 E0 FC F4 05 00 0D 00 01 00 00"))
				st := r.d.Stats()
				if st.StatusReg != tc.wantSR || st.SRLocked != tc.wantLocked {
					t.Fatalf("SR %04X locked %v, want %04X %v", st.StatusReg, st.SRLocked, tc.wantSR, tc.wantLocked)
				}
				r.send(readSRCmd(0x05))
				r.expect(cat(hx("04 0E FF 01 E0 FC F4 04 00 0C 00 05"), []byte{byte(tc.wantSR)}))
				r.send(readSRCmd(0x35))
				r.expect(cat(hx("04 0E FF 01 E0 FC F4 04 00 0C 00 35"), []byte{byte(tc.wantSR >> 8)}))
				if !tc.wantLocked {
					return
				}
				r.send(unprotect2) // ignored now
				r.read(14)
				old := r.d.Flash()[0x50000:0x51000]
				r.send(erase4KCmd(0x50000))
				r.read(16)
				if st := r.d.Stats(); st.StatusReg != 0x7BFC || !bytes.Equal(old, r.d.Flash()[0x50000:0x51000]) {
					t.Fatalf("locked SR changed to %04X or erase went through", st.StatusReg)
				}
				// Locked for good, even across a power cycle.
				r.link()
				if !r.d.Stats().SRLocked {
					t.Fatal("SR lock lost on power cycle")
				}
			})
		})
	}
}

func TestWIPAfterWRSR(t *testing.T) {
	withLinkedChip(t, Config{Chip: BK7231N, Timing: true}, func(t *testing.T, r *rig) {
		r.send(unprotect2)
		r.read(14)
		r.send(readSRCmd(0x05))
		r.expect(hx("04 0E FF 01 E0 FC F4 04 00 0C 00 05 01"))
		time.Sleep(10 * time.Millisecond)
		r.send(readSRCmd(0x05))
		r.expect(hx("04 0E FF 01 E0 FC F4 04 00 0C 00 05 00"))
	})
}

// readReg is the host side of ReadReg.
func (r *rig) readReg(addr uint32) uint32 {
	r.t.Helper()
	got := r.roundTrip(cmdShort(0x03, le(addr)...), 15)
	if !bytes.Equal(got[:11], cat(hx("04 0E 0C 01 E0 FC 03"), le(addr))) {
		r.t.Fatalf("ReadReg 0x%X reply % X", addr, got)
	}
	return le32(got[11:])
}

func (r *rig) writeReg(addr, v uint32) {
	r.t.Helper()
	r.send(cmdShort(0x01, cat(le(addr), le(v))...))
	r.expect(cat(hx("04 0E 0C 01 E0 FC 01"), le(addr), le(v)))
}

// TestEfuseKey reads the eFuse key exactly as reference §6 step 6 describes
// the host side.
func TestEfuseKey(t *testing.T) {
	tests := []struct {
		name string
		zero bool
		want [4]uint32
	}{
		{"Tuya key", false, [4]uint32{0x510fb093, 0xa3cbeadc, 0x5993a17e, 0xc7adeb03}},
		{"zero key (BK7231M-like)", true, [4]uint32{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			withLinkedChip(t, Config{Chip: BK7231N, ZeroEfuseKey: tc.zero}, func(t *testing.T, r *rig) {
				var key [16]byte
				for a := range uint32(16) {
					v := r.readReg(0x00800074)
					v = v&^0x1F02 | a<<8 | 1
					r.writeReg(0x00800074, v)
					for i := 0; r.readReg(0x00800074)&1 != 0; i++ {
						if i > 10 {
							t.Fatal("eFuse read never completes")
						}
					}
					o := r.readReg(0x00800078)
					if o&0x100 == 0 {
						t.Fatalf("eFuse byte %d not valid: OPTR %08X", a, o)
					}
					key[a] = byte(o)
				}
				for i, w := range tc.want {
					if got := le32(key[4*i:]); got != w {
						t.Errorf("key word %d = %08x, want %08x", i, got, w)
					}
				}
			})
		})
	}
}

func TestChipIDRegisters(t *testing.T) {
	withLinkedChip(t, Config{Chip: BK7231N}, func(t *testing.T, r *rig) {
		if v := r.readReg(0x00800000); v != 0x7231C {
			t.Errorf("SCTRL_CHIP_ID = %X, want 7231C", v)
		}
		if v := r.readReg(0x00800004); v>>16 != 0x2052 {
			t.Errorf("SCTRL_DEVICE_ID = %08X, want a BK7231N revision 0x2052xxxx", v)
		}
		r.writeReg(0x00800000, 0x1234)
		if v := r.readReg(0x00800000); v != 0x7231C {
			t.Errorf("chip ID writable: now %X", v)
		}
		r.writeReg(0x00802000, 0xCAFEF00D)
		if v := r.readReg(0x00802000); v != 0xCAFEF00D {
			t.Errorf("plain register reads back %X", v)
		}
	})
}

func TestGetMID(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"default 2 MiB", Config{Chip: BK7231N}, "EB 60 15"},
		{"default 4 MiB", Config{Chip: BK7231N, Flash: make([]byte, 4<<20)}, "EB 60 16"},
		{"configured P25Q16HBK", Config{Chip: BK7231N, FlashID: [3]byte{0x85, 0x20, 0x15}}, "85 20 15"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			withLinkedChip(t, tc.cfg, func(t *testing.T, r *rig) {
				r.send(hx("01 E0 FC FF F4 05 00 0E 9F 00 00 00"))
				r.expect(cat(hx("04 0E FF 01 E0 FC F4 06 00 0E 00 00"), hx(tc.want)))
				// Raw SPI read (03) through the same command.
				f := r.d.Flash()
				r.send(cmdLong(0x0E, 0x03, 0x01, 0x10, 0x00, 0, 0, 0, 0))
				r.expect(cat(hx("04 0E FF 01 E0 FC F4 0A 00 0E 00 00 00 00 00"), f[0x11000:0x11004]))
			})
		})
	}
}

// TestTiming: with Config.Timing the chip takes the datasheet-typical time
// before it replies; without, no time at all.
func TestTiming(t *testing.T) {
	tests := []struct {
		name   string
		req    []byte
		n      int
		timed  time.Duration
		chip   Chip
		unprot bool
	}{
		{"4K erase", erase4KCmd(0x100000), 16, 45 * time.Millisecond, BK7231N, true},
		{"64K erase", cmdLong(0x0F, cat([]byte{0xD8}, le(0x100000))...), 16, 150 * time.Millisecond, BK7231N, true},
		{"4K write", write4KCmd(0x100000, make([]byte, 4096)), 15, 16 * 400 * time.Microsecond, BK7231N, true},
		{"CRC over 2 MiB", crcCmd(0x200000, 0x400000), 11, time.Duration(2 << 20 * int64(time.Second) / 400000), BK7231T, false},
		{"erase on protected flash is instant", erase4KCmd(0x100000), 16, 0, BK7231N, false},
	}
	for _, tc := range tests {
		for _, timing := range []bool{false, true} {
			t.Run(tc.name+map[bool]string{false: "/instant", true: "/timed"}[timing], func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					cfg := Config{Chip: tc.chip, Timing: timing}
					if tc.unprot {
						cfg.StatusReg = sr(0)
					}
					r := startRig(t, cfg, transport.LinkOptions{})
					defer r.stop()
					r.link()
					start := time.Now()
					r.roundTrip(tc.req, tc.n)
					want := time.Duration(0)
					if timing {
						want = tc.timed
					}
					if el := time.Since(start); el != want {
						t.Fatalf("reply after %v, want %v", el, want)
					}
				})
			})
		}
	}
}

// TestFlashWriteWrittenField: FlashWrite reports the byte count in 8 bits, so
// a 256-byte write reports 0 (bk_idk `len - 5` into a u8; reference §15).
func TestFlashWriteWrittenField(t *testing.T) {
	for _, n := range []int{1, 255, 256} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			withLinkedChip(t, Config{Chip: BK7231T}, func(t *testing.T, r *rig) {
				r.send(cmdLong(0x06, cat(le(0x150000), bytes.Repeat([]byte{0x42}, n))...))
				r.expect(cat(hx("04 0E FF 01 E0 FC F4 07 00 06 00"), le(0x150000), []byte{byte(n)}))
				if got := r.d.Flash()[0x150000 : 0x150000+n+1]; !bytes.Equal(got, append(bytes.Repeat([]byte{0x42}, n), 0xFF)) {
					t.Fatal("FlashWrite did not program exactly its bytes")
				}
			})
		})
	}
}

// TestRetryAfterBrokenCommand models "retrying a failed write on T in the
// same session fails every time" (reference §4.3, elektroda topic4147664
// post #93): after a flash command that arrived broken, a bootloader-based
// chip replies OK to the retried erase and write but changes nothing until
// a LinkCheck; a BootROM chip takes the retry.
func TestRetryAfterBrokenCommand(t *testing.T) {
	broken := []struct {
		name  string
		send  func(r *rig, addr uint32)
		reply func(addr uint32) []byte
	}{
		{"write cut short (status 5)", func(r *rig, addr uint32) {
			r.send(cat(hx("01 E0 FC FF F4 05 10 07"), le(addr), make([]byte, 1000)))
		}, func(addr uint32) []byte { return cat(hx("04 0E FF 01 E0 FC F4 06 00 07 05"), le(addr)) }},
		{"write of the wrong length (status 4)", func(r *rig, addr uint32) {
			r.send(write4KCmd(addr, make([]byte, 100)))
		}, func(addr uint32) []byte { return cat(hx("04 0E FF 01 E0 FC F4 06 00 07 04"), le(addr)) }},
	}
	for _, chip := range []Chip{BK7231T, BK7231U, BK7252, BK7231N, BK7238} {
		for _, b := range broken {
			t.Run(chip.String()+"/"+b.name, func(t *testing.T) {
				withLinkedChip(t, Config{Chip: chip, StatusReg: sr(0)}, func(t *testing.T, r *rig) {
					const phys = 0x20000
					addr := uint32(phys)
					if chip.BootloaderBased() {
						addr += uint32(len(r.d.Flash())) // as the tools address them (§5.1)
					}
					data := bytes.Repeat([]byte("retry!"), 700)[:4096]
					writeSector := func() {
						r.send(erase4KCmd(addr))
						r.expect(cat(hx("04 0E FF 01 E0 FC F4 07 00 0F 00 20"), le(addr)))
						r.send(write4KCmd(addr, data))
						r.expect(cat(hx("04 0E FF 01 E0 FC F4 06 00 07 00"), le(addr)))
					}
					b.send(r, addr)
					r.expect(b.reply(addr))
					writeSector() // the retry, same session
					took := bytes.Equal(r.d.Flash()[phys:phys+4096], data)
					if took == chip.BootloaderBased() {
						t.Fatalf("retry without a new link: data written = %v, want %v", took, !chip.BootloaderBased())
					}
					if r.d.Stats().FlashLocked != chip.BootloaderBased() {
						t.Error("Stats.FlashLocked wrong")
					}
					r.send(linkCheck)
					r.expect(linkReply)
					writeSector()
					if !bytes.Equal(r.d.Flash()[phys:phys+4096], data) {
						t.Fatal("the retry after a LinkCheck did not write")
					}
				})
			})
		}
	}
}

// TestCRCLockOnEveryBootloader: §4.3's re-protection after CheckCRC holds
// on every bootloader-based chip, not on the BootROM chips.
func TestCRCLockOnEveryBootloader(t *testing.T) {
	for _, chip := range Chips() {
		t.Run(chip.String(), func(t *testing.T) {
			withLinkedChip(t, Config{Chip: chip, StatusReg: sr(0)}, func(t *testing.T, r *rig) {
				const a = 0x40000
				old := r.d.Flash()[a : a+4096]
				r.send(crcCmd(a, a+4096))
				r.read(11)
				r.send(erase4KCmd(a))
				r.read(16)
				erased := allFF(r.d.Flash()[a : a+4096])
				if erased == chip.BootloaderBased() || allFF(old) {
					t.Fatalf("erase right after CheckCRC: erased = %v", erased)
				}
			})
		})
	}
}

// TestBootloaderAreaBricks: the download mode of a bootloader-based chip
// is its bootloader; once its area no longer holds what it held at
// power-up, the chip stays dead after the next reset (reference §1, §9.6).
// Writing the same bytes back is harmless; BootROM chips do not care.
func TestBootloaderAreaBricks(t *testing.T) {
	tests := []struct {
		chip    Chip
		restore bool // write the erased sector back
		dead    bool
	}{
		{BK7231T, false, true},
		{BK7231U, false, true},
		{BK7252, false, true},
		{BK7231T, true, false},
		{BK7231N, false, false},
		{BK7238, false, false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%v/restored=%v", tc.chip, tc.restore), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				app := &fakeApp{}
				r := startRig(t, Config{Chip: tc.chip, StatusReg: sr(0), App: app}, transport.LinkOptions{})
				defer r.stop()
				settle()
				r.link()
				size := uint32(len(r.d.Flash()))
				addr := uint32(0x1000)
				if tc.chip.BootloaderBased() {
					addr += size
				}
				old := r.d.Flash()[0x1000:0x2000]
				r.send(erase4KCmd(addr))
				r.read(16)
				if !allFF(r.d.Flash()[0x1000:0x2000]) {
					t.Fatal("the erase of the bootloader area did not happen")
				}
				if tc.restore {
					r.send(write4KCmd(addr, old))
					r.read(15)
				}
				r.d.PowerCycle()
				r.send(linkCheck)
				if tc.dead {
					r.silent(time.Second)
					if st := r.d.Stats(); st.State != "bricked" || app.history() != "boot halt" {
						t.Fatalf("state %q, firmware %q; want bricked and never booted again", st.State, app.history())
					}
					return
				}
				r.expect(linkReply)
			})
		})
	}
}
