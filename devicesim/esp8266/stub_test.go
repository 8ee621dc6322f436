package espsim

import (
	"bytes"
	"compress/zlib"
	"crypto/md5"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/transport"
)

// TestStubUpload: any uploaded code + MEM_END(0, entry) starts the stub,
// which sends OHAI and answers SYNC eight times with value 0 (reference
// §5.1, §12.2).
func TestStubUpload(t *testing.T) {
	for _, lost := range []bool{false, true} {
		runSim(t, Config{Faults: Faults{MemEndNoReply: lost}}, simOpts{}, func(h *host) {
			h.ok(opMemBegin, words(8, 1, 0x1800, 0x4010C500), 0)
			h.write(encode(dataPacket(opMemData, 0, []byte{1, 2, 3, 4, 5, 6, 7, 8})))
			h.reply(opMemData)
			h.send(opMemEnd, words(0, 0x4010C504), 0)
			var got []string
			for {
				f, ok := h.frame(time.Second)
				if !ok {
					break
				}
				if r, err := parseResp(f); err == nil {
					got = append(got, opName(r.op))
				} else {
					got = append(got, string(f))
				}
			}
			want := []string{"MEM_END", "OHAI"}
			if lost {
				want = want[1:]
			}
			if len(got) != len(want) || got[len(got)-1] != "OHAI" || got[0] != want[0] {
				t.Fatalf("MEM_END reply lost=%v: frames %q, want %q", lost, got, want)
			}
			rs := h.sync()
			if len(rs) != 8 {
				t.Fatalf("%d sync replies, want 8", len(rs))
			}
			for _, r := range rs {
				if r.value != 0 || r.status != [2]byte{} {
					t.Errorf("stub sync reply value %#x status % X", r.value, r.status)
				}
			}
			if st := h.d.Stats(); st.Mode != "stub" {
				t.Errorf("mode %s", st.Mode)
			}
		})
	}
}

// firmware returns n bytes that compress like firmware.
func firmware(n int, seed uint64) []byte {
	return codeBytes(rand.New(rand.NewPCG(seed, 1)), n)[:n]
}

func zlibBytes(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	w, err := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// deflWrite does esptool's compressed write (reference §10.3).
func (h *host) deflWrite(off uint32, img []byte) {
	h.t.Helper()
	comp := zlibBytes(h.t, img)
	nblk := uint32((len(comp) + 0x3FFF) / 0x4000)
	h.ok(opFlashDeflBegin, words(uint32(len(img)), nblk, 0x4000, off, 0), 0)
	for seq := uint32(0); seq < nblk; seq++ {
		blk := comp[seq*0x4000 : min(int(seq+1)*0x4000, len(comp))]
		h.write(encode(dataPacket(opFlashDeflData, seq, blk)))
		if r := h.reply(opFlashDeflData); r.status != [2]byte{} {
			h.t.Fatalf("DEFL_DATA %d: % X", seq, r.status)
		}
	}
	h.ok(opFlashDeflEnd, words(1), 0)
}

func (h *host) md5(off, n uint32) []byte {
	h.t.Helper()
	r := h.ok(opSPIFlashMD5, words(off, n, 0, 0), 0)
	if len(r.data) != 16 {
		h.t.Fatalf("MD5 reply has %d data bytes", len(r.data))
	}
	return r.data
}

// models runs fn once per stub model.
func models(t *testing.T, fn func(t *testing.T, m StubModel)) {
	for _, m := range []StubModel{StubTuyaflash, StubEsptool, StubTuyaflash1} {
		t.Run(m.String(), func(t *testing.T) { fn(t, m) })
	}
}

// st is a stub status: the tuyaflash models' when tf, else esptool's.
func st(m StubModel, tf, es byte) [2]byte {
	if m != StubEsptool {
		return [2]byte{tf, 0}
	}
	return [2]byte{es, 0}
}

// TestStubCompressedWrite: FLASH_DEFL_* then SPI_FLASH_MD5 equals
// crypto/md5 of the image, and only the image's sectors were erased.
func TestStubCompressedWrite(t *testing.T) {
	models(t, func(t *testing.T, m StubModel) {
		runSim(t, Config{Stub: m, Flash: filled(2*mib, 0x5A)}, simOpts{}, func(h *host) {
			h.uploadStub()
			img := firmware(300*1000, 1)
			const off = 0x10000
			h.deflWrite(off, img)
			want := md5.Sum(img)
			if got := h.md5(off, uint32(len(img))); !bytes.Equal(got, want[:]) {
				t.Errorf("MD5 %x, want %x", got, want)
			}
			f := h.d.Flash()
			if !bytes.Equal(f[off:off+len(img)], img) {
				t.Error("flash does not hold the image")
			}
			end := off + len(img)
			if f[off-1] != 0x5A || f[(end+0xFFF)&^0xFFF] != 0x5A {
				t.Error("bytes outside the image's sectors changed")
			}
			if f[end] != 0xFF {
				t.Error("tail of the last sector not erased")
			}
			// tuyaflash: nothing to finish is fine; esp-flasher-stub:
			// NOT_IN_FLASH_MODE.
			if r, want := h.do(opFlashDeflEnd, words(1), 0), st(m, 0, 0xC6); r.status != want {
				t.Errorf("END without BEGIN: % X, want % X", r.status, want)
			}
		})
	})
}

// TestStubUncompressedWrite: FLASH_BEGIN/DATA with 16 KiB blocks, last
// block padded; padding beyond the announced size is ignored; FLASH_END
// before all data is an error (NOT_ENOUGH_DATA / BAD_DATA_LEN).
func TestStubUncompressedWrite(t *testing.T) {
	models(t, func(t *testing.T, m StubModel) {
		runSim(t, Config{Stub: m}, simOpts{}, func(h *host) {
			h.uploadStub()
			img := firmware(40000, 2)
			const off = 0x80000
			h.ok(opFlashBegin, words(uint32(len(img)), 3, 0x4000, off, 0), 0)
			if r, want := h.do(opFlashEnd, words(1), 0), st(m, 0xC8, 0xC0); r.status != want {
				t.Errorf("FLASH_END before the data: % X, want % X", r.status, want)
			}
			h.ok(opFlashBegin, words(uint32(len(img)), 3, 0x4000, off, 0), 0)
			for seq := 0; seq < 3; seq++ {
				blk := append([]byte(nil), img[seq*0x4000:min((seq+1)*0x4000, len(img))]...)
				for len(blk) < 0x4000 {
					blk = append(blk, 0xFF)
				}
				h.write(encode(dataPacket(opFlashData, uint32(seq), blk)))
				if r := h.reply(opFlashData); r.status != [2]byte{} {
					t.Fatalf("block %d: % X", seq, r.status)
				}
			}
			h.ok(opFlashEnd, words(1), 0)
			want := md5.Sum(img)
			if got := h.md5(off, uint32(len(img))); !bytes.Equal(got, want[:]) {
				t.Errorf("MD5 mismatch")
			}
			if r := h.do(opFlashBegin, words(0x1000, 1, 0x8000, 0), 0); r.status != [2]byte{0xC2, 0} {
				t.Errorf("32 KiB blocks: % X, want C2 00", r.status)
			}
		})
	})
}

// TestStubErrors covers the immediate error answers of both stubs.
func TestStubErrors(t *testing.T) {
	models(t, func(t *testing.T, m StubModel) {
		runSim(t, Config{Stub: m}, simOpts{}, func(h *host) {
			h.uploadStub()
			blk := []byte("data")
			bad := dataPacket(opFlashData, 0, blk)
			bad[4] ^= 0x10
			cases := []struct {
				name string
				raw  []byte
				op   byte
				want [2]byte
			}{
				{"unknown opcode", packet(0x42, nil, 0), 0x42, st(m, 0xC3, 0xC3)},
				{"GET_SECURITY_INFO", packet(opGetSecInfo, nil, 0), opGetSecInfo, st(m, 0xC3, 0xFF)},
				{"MEM_BEGIN", packet(opMemBegin, words(4, 1, 4, 0x40100000), 0), opMemBegin, st(m, 0xC3, 0)},
				{"FLASH_DATA without FLASH_BEGIN", dataPacket(opFlashData, 0, blk), opFlashData, st(m, 0xC6, 0xC6)},
				{"ERASE_REGION misaligned", packet(opEraseRegion, words(0x800, 0x1000), 0), opEraseRegion, st(m, 0xC0, 0xC0)},
				// tuyaflash's stub assumes 16 MiB until SPI_SET_PARAMS.
				{"ERASE_REGION beyond the flash", packet(opEraseRegion, words(0xFFF000, 0x2000), 0), opEraseRegion, st(m, 0xC0, 0xC4)},
				{"MD5 beyond the flash", packet(opSPIFlashMD5, words(0xFFF000, 0x2000, 0, 0), 0), opSPIFlashMD5, st(m, 0xC0, 0xC4)},
				{"size field wrong", append(packet(opReadReg, words(0x40001000), 0), 0), opReadReg, st(m, 0xC0, 0xC0)},
				{"WRITE_REG of 12 bytes", packet(opWriteReg, words(0x60000E00, 1, 1), 0), opWriteReg, st(m, 0xC0, 0xC8)},
				{"READ_REG unaligned", packet(opReadReg, words(0x40001002), 0), opReadReg, st(m, 0xC0, 0)},
				{"encrypted FLASH_BEGIN", packet(opFlashBegin, words(4, 1, 0x4000, 0x3000, 1), 0), opFlashBegin, st(m, 0xC3, 0)},
			}
			for _, c := range cases {
				h.write(encode(c.raw))
				if r := h.reply(c.op); r.status != c.want {
					t.Errorf("%s: % X, want % X", c.name, r.status, c.want)
				}
			}
			h.ok(opFlashBegin, words(4, 1, 0x4000, 0x3000, 0), 0)
			h.write(encode(bad))
			if r := h.reply(opFlashData); r.status != [2]byte{0xC1, 0} {
				t.Errorf("bad checksum: % X, want C1 00", r.status)
			}
			h.ok(opFlashDeflBegin, words(4, 1, 0x4000, 0x3000, 0), 0)
			bad = dataPacket(opFlashDeflData, 0, zlibBytes(t, blk))
			bad[4] ^= 0x10
			h.write(encode(bad))
			if r := h.reply(opFlashDeflData); r.status != [2]byte{0xC1, 0} {
				t.Errorf("DEFL bad checksum: % X, want C1 00", r.status)
			}
			// A corrupt stream: tuyaflash's stub reports the inflate error
			// on the packet itself; esp-flasher-stub acknowledges the
			// packet and its inflate error is the answer to the next
			// command (§12.3).
			h.write(encode(dataPacket(opFlashDeflData, 0, []byte{0x78, 0xDA, 0xFF, 0xFF, 0xFF, 0xFF})))
			if r, want := h.reply(opFlashDeflData), st(m, 0xC7, 0); r.status != want {
				t.Errorf("corrupt block: % X, want % X", r.status, want)
			}
			next := h.do(opReadReg, words(0x40001000), 0)
			if m == StubEsptool && (next.status != [2]byte{0xC7, 0} || next.value != 0) {
				t.Errorf("next command: % X value %#x, want C7 00 and skipped", next.status, next.value)
			}
			if m != StubEsptool && next.value != 0xFFF0C101 {
				t.Errorf("next command answered % X value %#x: the error was not on its packet", next.status, next.value)
			}
			if v := h.readReg(0x40001000); v != 0xFFF0C101 {
				t.Errorf("command after the deferred error: %#x", v)
			}
		})
	})
}

// TestStubStickyError: in tuyaflash's stub the first error of a write
// session is the answer to its later packets and to its END; a packet out
// of sequence is 0xC0 without ending the session.
func TestStubStickyError(t *testing.T) {
	runSim(t, Config{}, simOpts{}, func(h *host) {
		h.uploadStub()
		img := firmware(0x8000, 9)
		h.ok(opFlashBegin, words(0x8000, 2, 0x4000, 0x40000, 0), 0)
		h.write(encode(dataPacket(opFlashData, 1, img[0x4000:])))
		if r := h.reply(opFlashData); r.status != [2]byte{0xC0, 0} {
			t.Errorf("seq 1 first: % X, want C0 00", r.status)
		}
		h.write(encode(dataPacket(opFlashData, 0, img[:0x4000])))
		if r := h.reply(opFlashData); r.status != [2]byte{} {
			t.Errorf("seq 0 after the refused packet: % X", r.status)
		}
		// Three blocks for a two-block session: TOO_MUCH_DATA, sticky.
		h.write(encode(dataPacket(opFlashData, 1, img[0x4000:])))
		h.reply(opFlashData)
		h.write(encode(dataPacket(opFlashData, 2, img[:0x10])))
		if r := h.reply(opFlashData); r.status != [2]byte{0xC9, 0} {
			t.Errorf("data past the announced size: % X, want C9 00", r.status)
		}
		h.write(encode(dataPacket(opFlashData, 2, img[:0x10])))
		if r := h.reply(opFlashData); r.status != [2]byte{0xC9, 0} {
			t.Errorf("after the error: % X, want C9 00 again", r.status)
		}
		if r := h.do(opFlashEnd, words(1), 0); r.status != [2]byte{0xC9, 0} {
			t.Errorf("END of the failed session: % X, want C9 00", r.status)
		}
		want := md5.Sum(img)
		if got := h.md5(0x40000, 0x8000); !bytes.Equal(got, want[:]) {
			t.Error("the two good blocks are not on the flash")
		}
	})
}

// ack sends READ_FLASH's acknowledgement frame: bytes received so far.
func (h *host) ack(n uint32) {
	h.write(encode(words(n)))
}

// TestStubReadFlash: data frames of packet_size, one in flight until the
// host acknowledges (with esptool's max_in_flight of 64 in either model),
// stall without ACK, final MD5 frame.
func TestStubReadFlash(t *testing.T) {
	models(t, func(t *testing.T, m StubModel) {
		runSim(t, Config{Stub: m}, simOpts{}, func(h *host) {
			h.uploadStub()
			const off, size, pkt = 0x0, 3*4096 + 100, 4096
			want := h.d.Flash()[off : off+size]
			for _, inFlight := range []uint32{1, 64} {
				h.ok(opReadFlash, words(off, size, pkt, inFlight), 0)
				var got []byte
				f, ok := h.frame(time.Second)
				if !ok || len(f) != pkt {
					t.Fatalf("first packet: %d bytes", len(f))
				}
				got = append(got, f...)
				if f, ok := h.frame(10 * time.Second); ok {
					t.Fatalf("max_in_flight %d: a %d-byte frame arrived without ACK", inFlight, len(f))
				}
				for len(got) < size {
					h.ack(uint32(len(got)))
					f, ok := h.frame(time.Second)
					if !ok {
						t.Fatalf("no packet after ACK %d", len(got))
					}
					if len(got)+len(f) < size && len(f) != pkt {
						t.Fatalf("short packet %d", len(f))
					}
					got = append(got, f...)
				}
				if _, ok := h.frame(2 * time.Second); ok {
					t.Fatal("MD5 sent before the last ACK")
				}
				h.ack(uint32(len(got)))
				sum, ok := h.frame(time.Second)
				wantSum := md5.Sum(want)
				if !ok || !bytes.Equal(sum, wantSum[:]) {
					t.Fatalf("MD5 frame %x, want %x", sum, wantSum)
				}
				if !bytes.Equal(got, want) {
					t.Fatal("data differs from the flash")
				}
			}
			// A command instead of an ACK ends the transfer: esp-flasher-
			// stub sends the MD5 of the one packet sent and drops the
			// command; tuyaflash's stub sends no MD5 and answers the
			// command.
			h.ok(opReadFlash, words(0x1000, 0x3000, 0x1000, 1), 0)
			first, _ := h.frame(time.Second)
			h.send(opReadReg, words(0x40001000), 0)
			next, _ := h.frame(time.Second)
			ws := md5.Sum(first)
			switch m {
			case StubEsptool:
				if len(first) != 0x1000 || !bytes.Equal(next, ws[:]) {
					t.Errorf("aborted read: MD5 %x of %d bytes", next, len(first))
				}
			default:
				if r, err := parseResp(next); err != nil || r.op != opReadReg || r.value != 0xFFF0C101 {
					t.Errorf("aborted read: the READ_REG was not answered next (% X)", next)
				}
			}
			if v := h.readReg(0x40001000); v != 0xFFF0C101 {
				t.Errorf("stub not answering after an aborted read")
			}
			// Packet sizes above 4096 fail: at once (tuyaflash) or on the
			// next command (esp-flasher-stub).
			r := h.do(opReadFlash, words(0, 0x2000, 0x2000, 1), 0)
			if m != StubEsptool && r.status != [2]byte{0xC0, 0} {
				t.Errorf("READ_FLASH with 8 KiB packets: % X, want C0 00", r.status)
			}
			if r := h.do(opSync, syncPayloadForTest(), 0); m == StubEsptool && r.status != [2]byte{0xC0, 0} {
				t.Errorf("after READ_FLASH with 8 KiB packets: % X, want C0 00", r.status)
			}
		})
	})
}

// TestStubReadWindow: tuyaflash's stub counts max_in_flight in bytes, so
// a client may keep several packets in flight; esp-flasher-stub keeps one.
func TestStubReadWindow(t *testing.T) {
	models(t, func(t *testing.T, m StubModel) {
		runSim(t, Config{Stub: m}, simOpts{}, func(h *host) {
			h.uploadStub()
			h.ok(opReadFlash, words(0, 0x4000, 0x1000, 0x3000), 0)
			n := 0
			for {
				if _, ok := h.frame(time.Second); !ok {
					break
				}
				n++
			}
			if want := map[StubModel]int{StubTuyaflash: 3, StubTuyaflash1: 3, StubEsptool: 1}[m]; n != want {
				t.Errorf("%d packets before the first ACK, want %d", n, want)
			}
		})
	})
}

// TestStubErase: ERASE_REGION erases exactly its sectors; ERASE_FLASH all.
func TestStubErase(t *testing.T) {
	runSim(t, Config{Flash: filled(mib, 0x00)}, simOpts{}, func(h *host) {
		h.uploadStub()
		h.ok(opEraseRegion, words(0x3000, 0x12000), 0)
		got := erasedSectors(h.d.Flash())
		if len(got) != 0x12 || got[0] != 3 || got[len(got)-1] != 0x14 {
			t.Errorf("erased sectors %v, want 3..20", got)
		}
		st := h.d.Stats()
		if st.Erased[0x3000] != 1 || st.Erased[0x14000] != 1 || st.Erased[0x2000] != 0 || st.Erased[0x15000] != 0 {
			t.Errorf("erase counts %v", st.Erased)
		}
		h.ok(opEraseFlash, nil, 0)
		if n := len(erasedSectors(h.d.Flash())); n != 256 {
			t.Errorf("%d sectors erased after ERASE_FLASH", n)
		}
	})
}

// TestStubChangeBaudrate over a paced link: the reply comes at the old
// rate, then the chip listens at the new one; a host that does not switch
// gets no valid reply, and the transfer is faster at the new rate.
func TestStubChangeBaudrate(t *testing.T) {
	runSim(t, Config{}, simOpts{link: transport.LinkOptions{Paced: true}}, func(h *host) {
		h.uploadStub()
		start := time.Now()
		h.ok(opSPIFlashMD5, words(0, 0x100, 0, 0), 0)
		slow := time.Since(start)
		h.ok(opChangeBaudrate, words(460800, 115200), 0)
		if b := h.d.Stats().Baud; b != 460800 {
			t.Errorf("chip baud %d", b)
		}
		if rs := h.sync(); len(rs) != 0 {
			t.Errorf("host still at 115200 got %d valid sync replies", len(rs))
		}
		h.p.SetBaudRate(460800)
		time.Sleep(50 * time.Millisecond)
		h.discardInput()
		if rs := h.sync(); len(rs) != 8 || rs[0].value != 0 {
			t.Fatalf("at 460800: %d sync replies", len(rs))
		}
		start = time.Now()
		h.ok(opSPIFlashMD5, words(0, 0x100, 0, 0), 0)
		if fast := time.Since(start); fast*3 > slow {
			t.Errorf("round trip %v at 460800 vs %v at 115200", fast, slow)
		}
		div := h.readReg(0x60000014) & 0xFFFFF
		if est := 460800 * float64(div) / 2e6; est < 25.5 || est > 26.5 {
			t.Errorf("divider %d at 460800 gives %.2f MHz", div, est)
		}
		h.d.PowerCycle(true)
		h.p.SetBaudRate(115200)
		h.discardInput()
		if rs := h.sync(); len(rs) != 8 || rs[0].value != 0x20120707 {
			t.Errorf("after power cycle: %d replies, want the ROM at 115200", len(rs))
		}
	})
}

// TestStubDuplicateBlock: esp-flasher-stub writes FLASH_DATA at its
// cursor and ignores sequence numbers, so a repeated block shifts the
// image and only the MD5 check catches it; tuyaflash's stub acknowledges
// a repeated block without writing it again.
func TestStubDuplicateBlock(t *testing.T) {
	models(t, func(t *testing.T, m StubModel) {
		runSim(t, Config{Stub: m}, simOpts{}, func(h *host) {
			h.uploadStub()
			img := firmware(0x8000, 3)
			h.ok(opFlashBegin, words(0x8000, 2, 0x4000, 0x40000, 0), 0)
			for _, seq := range []uint32{0, 0, 1} {
				h.write(encode(dataPacket(opFlashData, seq, img[seq*0x4000:(seq+1)*0x4000])))
				h.reply(opFlashData)
			}
			h.do(opFlashEnd, words(1), 0)
			want := md5.Sum(img)
			same := bytes.Equal(h.md5(0x40000, 0x8000), want[:])
			if same != (m != StubEsptool) {
				t.Errorf("image intact after a repeated block: %v", same)
			}
		})
	})
}

// TestMislabelledFlash: a JEDEC id claiming 4 MiB on a 1 MiB chip lets
// esp-flasher-stub accept high addresses, which wrap onto the start of
// the flash; tuyaflash's stub assumes 16 MiB until SPI_SET_PARAMS.
func TestMislabelledFlash(t *testing.T) {
	models(t, func(t *testing.T, m StubModel) {
		runSim(t, Config{Stub: m, FlashID: 0x1640C8}, simOpts{}, func(h *host) {
			h.uploadStub()
			img := firmware(0x2000, 5)
			h.deflWrite(0x100000, img)
			if f := h.d.Flash(); !bytes.Equal(f[:0x2000], img) {
				t.Error("write at 1 MiB did not wrap to 0x0")
			}
			if r, want := h.do(opEraseRegion, words(0x3FF000, 0x2000), 0), st(m, 0, 0xC4); r.status != want {
				t.Errorf("erase across the claimed 4 MiB: % X, want % X", r.status, want)
			}
			// esptool's SPI_SET_PARAMS with the real size closes the trap.
			h.ok(opSPISetParams, words(0, mib, 0x10000, 0x1000, 0x100, 0xFFFF), 0)
			if r, want := h.do(opFlashDeflBegin, words(0x2000, 1, 0x4000, 0x100000, 0), 0), st(m, 0xC0, 0xC4); r.status != want {
				t.Errorf("write at 1 MiB after SPI_SET_PARAMS(1 MiB): % X, want % X", r.status, want)
			}
		})
	})
}

// TestAutoResetOnGarbage: a stub left at 460800 by an earlier session sees
// a new session's 115200-baud SYNCs as garbage; the simulated user power-
// cycles the chip and the ROM answers at 115200. Without AutoReset nothing
// happens.
func TestAutoResetOnGarbage(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reset time.Duration
		want  int // valid SYNC replies at 115200 after the garbage
	}{
		{"user power-cycles", 50 * time.Millisecond, 8},
		{"no simulated user", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runSim(t, Config{AutoReset: tc.reset}, simOpts{link: transport.LinkOptions{Paced: true}}, func(h *host) {
				h.uploadStub()
				h.ok(opChangeBaudrate, words(460800, 115200), 0)
				h.discardInput()
				var rs []resp
				for i := 0; i < 10 && len(rs) == 0; i++ {
					rs = h.sync()
				}
				if len(rs) != tc.want {
					t.Fatalf("%d valid replies at 115200, want %d", len(rs), tc.want)
				}
				if tc.want > 0 && rs[0].value != 0x20120707 {
					t.Errorf("reply value %#x: want the ROM (the stub does not survive a power cycle)", rs[0].value)
				}
			})
		})
	}
}
