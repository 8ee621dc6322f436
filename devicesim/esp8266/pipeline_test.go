package espsim

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/transport"
)

// The current tuyaflash stub as its README describes it: STUB_INFO, a
// receive buffer that holds one packet while the stub works on the one
// before, data replies naming their packet, erasing ahead and reading the
// written data back for the MD5 while it waits.

// paced is a link paced at its baud rate, without an adapter in the way.
var paced = simOpts{link: transport.LinkOptions{Baud: 115200, Paced: true}}

// stubAt uploads the stub and switches it and the host to baud.
func (h *host) stubAt(baud int) {
	h.t.Helper()
	h.uploadStub()
	h.ok(opChangeBaudrate, words(uint32(baud), 115200), 0)
	if err := h.p.SetBaudRate(baud); err != nil {
		h.t.Fatal(err)
	}
	h.discardInput()
}

// TestStubInfo: the current stub answers STUB_INFO with "TFS1", the
// window and its features; the first tuyaflash stub and esp-flasher-stub
// do not know the command.
func TestStubInfo(t *testing.T) {
	models(t, func(t *testing.T, m StubModel) {
		runSim(t, Config{Stub: m}, simOpts{}, func(h *host) {
			h.uploadStub()
			r := h.do(opStubInfo, words(1), 0)
			if m != StubTuyaflash {
				if r.status[0] != 0xC3 {
					t.Errorf("STUB_INFO: status % X, want C3 (unknown command)", r.status)
				}
				return
			}
			if r.status != [2]byte{} || r.value != 0x31534654 || len(r.data) != 24 {
				t.Fatalf("STUB_INFO: %+v", r)
			}
			w := func(i int) uint32 { return binary.LittleEndian.Uint32(r.data[4*i:]) }
			if w(0) != 20480-2048 || w(1)&1 == 0 || w(5) != 20480 {
				t.Errorf("window %d, features %#x, ring %d", w(0), w(1), w(5))
			}
			if r := h.do(opStubInfo, nil, 0); r.status[0] != 0xC0 {
				t.Errorf("STUB_INFO without its flag word: % X", r.status)
			}
		})
	})
}

// writeTwoInFlight sends a FLASH_BEGIN and the 16 KiB packets of img at
// at, each before the reply to the one before it, and returns the replies.
func writeTwoInFlight(h *host, img []byte, at uint32) []resp {
	h.t.Helper()
	n := len(img) / 0x4000
	h.ok(opFlashBegin, words(uint32(len(img)), uint32(n), 0x4000, at, 0), 0)
	var rs []resp
	for i := 0; i <= n; i++ {
		if i < n {
			h.write(encode(dataPacket(opFlashData, uint32(i), img[i*0x4000:(i+1)*0x4000])))
		}
		if i > 0 {
			rs = append(rs, h.reply(opFlashData))
		}
	}
	return rs
}

// TestStubTwoInFlight: the current stub keeps a whole packet received
// while it erases and programs the one before (at 2 Mbaud a packet takes
// 82 ms on the wire, its sector erases and programs 225 ms); every reply
// comes after its packet's work and names it. The first tuyaflash stub,
// whose UART FIFO holds 128 bytes, loses the second packet.
func TestStubTwoInFlight(t *testing.T) {
	img := firmware(6*0x4000, 4)
	const at = 0x41000
	t.Run("tuyaflash", func(t *testing.T) {
		runSim(t, Config{Timing: true}, paced, func(h *host) {
			h.stubAt(2000000)
			for i, r := range writeTwoInFlight(h, img, at) {
				if r.status != [2]byte{} || r.value != uint32(i) {
					t.Fatalf("reply %d: status % X value %d", i, r.status, r.value)
				}
			}
			h.ok(opFlashEnd, words(1), 0)
			if st := h.d.Stats(); st.RxHighWater < 0x4000 || st.RxLost != 0 {
				t.Errorf("high water %d, lost %d: want a whole packet buffered, nothing lost", st.RxHighWater, st.RxLost)
			}
			want := md5.Sum(img)
			if got := h.md5(at, uint32(len(img))); !bytes.Equal(got, want[:]) {
				t.Error("flash does not hold the packets")
			}
		})
	})
	t.Run("tuyaflash-1", func(t *testing.T) {
		runSim(t, Config{Timing: true, Stub: StubTuyaflash1}, paced, func(h *host) {
			h.stubAt(2000000)
			h.ok(opFlashBegin, words(0x8000, 2, 0x4000, at, 0), 0)
			for i := range 2 {
				h.write(encode(dataPacket(opFlashData, uint32(i), img[i*0x4000:(i+1)*0x4000])))
			}
			if r := h.reply(opFlashData); r.status != [2]byte{} || r.value != 0 {
				t.Fatalf("packet 0: % X value %d", r.status, r.value)
			}
			// Packet 1 lost all but 128 bytes: the END's delimiter closes
			// it, too short.
			h.send(opFlashEnd, words(1), 0)
			if r := h.reply(opFlashData); r.status[0] != 0xC0 {
				t.Errorf("packet 1, sent while the stub worked: % X, want C0", r.status)
			}
			if st := h.d.Stats(); st.RxLost == 0 || st.RxHighWater != 128 {
				t.Errorf("lost %d, high water %d", st.RxLost, st.RxHighWater)
			}
		})
	})
}

// TestStubRingOverflow: three packets sent at once while the stub waits
// for a 150 ms block erase: the third does not fit in the ring, is refused
// for its length, and the session ends short; STUB_INFO counts the loss.
func TestStubRingOverflow(t *testing.T) {
	runSim(t, Config{Timing: true}, paced, func(h *host) {
		h.stubAt(2000000)
		img := firmware(3*0x4000, 5)
		h.ok(opFlashBegin, words(0x10000, 4, 0x4000, 0x40000, 0), 0)
		for i := range 3 {
			h.write(encode(dataPacket(opFlashData, uint32(i), img[i*0x4000:(i+1)*0x4000])))
		}
		for i := range 2 {
			if r := h.reply(opFlashData); r.status != [2]byte{} || r.value != uint32(i) {
				t.Fatalf("packet %d: % X value %d", i, r.status, r.value)
			}
		}
		h.send(opFlashEnd, words(1), 0)
		if r := h.reply(opFlashData); r.status[0] != 0xC0 {
			t.Errorf("the truncated packet: % X, want C0", r.status)
		}
		if r := h.reply(opFlashEnd); r.status[0] != 0xC8 {
			t.Errorf("FLASH_END: % X, want C8", r.status)
		}
		r := h.ok(opStubInfo, words(0), 0)
		if lost := binary.LittleEndian.Uint32(r.data[12:]); lost == 0 {
			t.Error("STUB_INFO counts no lost bytes")
		}
	})
}

// TestStubBackgroundWork: while the stub waits for data it erases ahead,
// so a packet that arrives after the wait is answered after its programs
// alone; and the MD5 of the region just written is ready when the data
// arrived slowly enough, without the full MD5 time.
func TestStubBackgroundWork(t *testing.T) {
	runSim(t, Config{Timing: true}, simOpts{}, func(h *host) {
		h.uploadStub()
		img := firmware(0x10000, 6)
		h.ok(opFlashBegin, words(0x10000, 4, 0x4000, 0x40000, 0), 0)
		time.Sleep(200 * time.Millisecond) // the 64 KiB block erase (150 ms) runs
		var took []time.Duration
		for i := range 4 {
			start := time.Now()
			h.write(encode(dataPacket(opFlashData, uint32(i), img[i*0x4000:(i+1)*0x4000])))
			if r := h.reply(opFlashData); r.status != [2]byte{} {
				t.Fatalf("packet %d: % X", i, r.status)
			}
			took = append(took, time.Since(start))
			time.Sleep(100 * time.Millisecond) // idle: the stub reads back
		}
		h.ok(opFlashEnd, words(1), 0)
		const program = 64 * 700 * time.Microsecond
		for i, d := range took {
			if d != program {
				t.Errorf("packet %d answered after %v, want its 64 page programs (%v)", i, d, program)
			}
		}
		start := time.Now()
		want := md5.Sum(img)
		if got := h.md5(0x40000, 0x10000); !bytes.Equal(got, want[:]) {
			t.Fatal("MD5 differs")
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("MD5 of the region just written took %v, want 0 (read back meanwhile)", d)
		}
		// Another range is read now: 64 KiB at 1.5 s/MiB.
		start = time.Now()
		h.md5(0x40000, 0x8000)
		if d := time.Since(start); d != 0x8000*md5PerMiB/mib {
			t.Errorf("MD5 of another range took %v", d)
		}
	})
}

// TestLoader: an upload whose entry lies at 0x4010EA00-0x4010F1C0 runs as
// tuyaflash's loader: it answers READ_REG, raises the baud rate, refuses
// to load over itself or outside RAM, loads the stub and starts it on
// MEM_END. With esp-flasher-stub configured it is just another stub.
func TestLoader(t *testing.T) {
	loader := bytes.Repeat([]byte{0x12, 0x34, 0x56, 0x78}, 350)
	runSim(t, Config{}, paced, func(h *host) {
		h.uploadAt(loader, 0x4010EA00)
		if v := h.readReg(0x40001000); v != 0xFFF0C101 {
			t.Fatalf("magic 0x%08X", v)
		}
		if r := h.do(opSync, syncPayloadForTest(), 0); r.status[0] != 0xC3 {
			t.Errorf("SYNC to the loader: % X", r.status)
		}
		if r := h.do(opStubInfo, words(0), 0); r.status[0] != 0xC3 {
			t.Errorf("STUB_INFO to the loader: % X", r.status)
		}
		h.ok(opChangeBaudrate, words(921600, 115200), 0)
		if err := h.p.SetBaudRate(921600); err != nil {
			t.Fatal(err)
		}
		h.discardInput()
		for _, bad := range [][]uint32{
			{0x100, 1, 0x1800, 0x4010EA00}, // over the loader
			{0x100, 1, 0x1800, 0x4010C502}, // unaligned
			{0x100, 1, 0x1800, 0x3FFFC000}, // the ROM's RAM
		} {
			if r := h.do(opMemBegin, words(bad...), 0); r.status[0] != 0xC0 {
				t.Errorf("MEM_BEGIN %X: % X", bad, r.status)
			}
		}
		h.ok(opMemBegin, words(0x20, 1, 0x1800, 0x3FFFACAC), 0)
		d := bytes.Repeat([]byte{1}, 0x20)
		if r := h.do(opMemData, append(words(0x20, 0, 0, 0), d...), checksum(d)^1); r.status[0] != 0xC1 {
			t.Errorf("MEM_DATA with a bad checksum: % X", r.status)
		}
		h.ok(opMemData, append(words(0x20, 0, 0, 0), d...), checksum(d))
		h.uploadStub() // at 921600, through the loader
		if r := h.ok(opStubInfo, words(0), 0); r.value != 0x31534654 {
			t.Errorf("the stub after the loader: %+v", r)
		}
		if st := h.d.Stats(); st.Baud != 921600 {
			t.Errorf("baud %d", st.Baud)
		}
	})
	runSim(t, Config{Stub: StubEsptool}, simOpts{}, func(h *host) {
		h.uploadAt(loader, 0x4010EA00)
		h.ok(opMemBegin, words(0x20, 1, 0x1800, 0x3FFFACAC), 0) // esp-flasher-stub serves MEM_*
		if r := h.do(opReadFlash, words(0, 0x1000, 0x1000, 1), 0); r.status != [2]byte{} {
			t.Errorf("READ_FLASH: % X", r.status)
		}
	})
}
