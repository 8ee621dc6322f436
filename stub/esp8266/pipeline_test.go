package espstub

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"testing"
	"time"
)

// Pipelined writes (README "Pipelined writes"): the host-built stub
// receives on its own thread into the ring while the protocol core
// inflates, erases and programs, so packets are sent before the previous
// reply has come. --flash-timing makes the fake flash slow enough that the
// next packet is always waiting in the ring while the stub works.

const (
	opStubInfo       = 0x7D
	stubInfoMagic    = 0x31534654
	featPipeline     = 1 << 0
	featWriteMD5     = 1 << 1
	slowFlash        = "2,60,20" // sector erase 2 ms, block erase 60 ms, 20 µs per page
	oneFrameInFlight = 16 << 10
)

type stubInfo struct {
	window, features, highWater, lost, fifoOverflows, ring uint32
}

func (s *hostStub) info(reset bool) stubInfo {
	s.t.Helper()
	flag := uint32(0)
	if reset {
		flag = 1
	}
	r := s.ok(opStubInfo, words(flag))
	if r.value != stubInfoMagic || len(r.data) != 24 {
		s.t.Fatalf("STUB_INFO value 0x%08X, %d data bytes", r.value, len(r.data))
	}
	w := func(i int) uint32 { return binary.LittleEndian.Uint32(r.data[4*i:]) }
	return stubInfo{w(0), w(1), w(2), w(3), w(4), w(5)}
}

// reply is one answer of a pipelined stream.
type reply struct {
	value  uint32
	status byte
}

// stream sends packets as op with FLASH_(DEFL_)DATA framing and then
// endOp, keeping up to inFlight requests unanswered, and returns every
// reply in order (the END's last). corrupt(i, chk) may change packet i's
// checksum.
func (s *hostStub) stream(op, endOp byte, packets [][]byte, inFlight int, chk func(i int, c uint32) uint32) []reply {
	s.t.Helper()
	var out []reply
	total := len(packets) + 1
	sent := 0
	for len(out) < total {
		for sent < total && sent-len(out) < inFlight {
			if sent == len(packets) {
				s.send(request(endOp, words(1), 0))
			} else {
				c := checksum(packets[sent])
				if chk != nil {
					c = chk(sent, c)
				}
				s.send(request(op, dataPacket(sent, packets[sent]), c))
			}
			sent++
		}
		want := op
		if len(out) == len(packets) {
			want = endOp
		}
		r, err := s.reply(want, 10*time.Second)
		if err != nil {
			s.t.Fatalf("reply %d: %v", len(out), err)
		}
		out = append(out, reply{r.value, r.status[0]})
	}
	return out
}

// TestHostStubInfo: STUB_INFO names the stub, its window (the ring less
// the margin) and features; its statistics reset on request; a wrong
// length is refused.
func TestHostStubInfo(t *testing.T) {
	s := startStub(t, patterned(64<<10))
	i := s.info(true)
	if i.ring != 20480 || i.window != 20480-2048 {
		t.Errorf("ring %d, window %d", i.ring, i.window)
	}
	if i.features&featPipeline == 0 || i.features&featWriteMD5 == 0 {
		t.Errorf("features 0x%X", i.features)
	}
	s.ok(opReadReg, words(0x40001000))
	i = s.info(false)
	if i.highWater == 0 || i.highWater > 64 || i.lost != 0 {
		t.Errorf("after two short commands: %+v", i)
	}
	if i2 := s.info(true); i2.highWater < i.highWater {
		t.Errorf("statistics went back without a reset: %+v then %+v", i, i2)
	}
	if r := s.cmd(opStubInfo, nil); r.status[0] != stBadDataLen {
		t.Errorf("STUB_INFO without its flag word: status % X", r.status)
	}
}

// TestHostStubPipelinedWrite: a 600 KB compressed write with two packets
// in flight and the END sent before the last reply: every reply is OK and
// names its packet, a whole packet waited in the ring while the stub
// worked on the one before, the flash holds the image, and the MD5 the
// stub read back meanwhile is the image's.
func TestHostStubPipelinedWrite(t *testing.T) {
	img := tasmotaLike(600_000)
	packets := split(compress(t, img), 0x4000)
	s := startStub(t, patterned(1<<20), "--flash-timing", slowFlash)
	s.ok(opSetParams, words(0, 1<<20, 0x10000, 0x1000, 0x100, 0xFFFF))
	s.info(true)
	s.ok(opDeflBegin, words(uint32(len(img)), uint32(len(packets)), 0x4000, 0, 0))
	for i, r := range s.stream(opDeflData, opDeflEnd, packets, 2, nil) {
		if r.status != 0 {
			t.Fatalf("reply %d: status 0x%02X", i, r.status)
		}
		if i < len(packets) && r.value != uint32(i) {
			t.Fatalf("reply %d names packet %d", i, r.value)
		}
	}
	if st := s.info(false); st.highWater < oneFrameInFlight || st.lost != 0 || st.fifoOverflows != 0 {
		t.Errorf("receive statistics %+v: want a whole packet waiting, nothing lost", st)
	}
	f, sum := s.checkImage(0, img)
	if end := (len(img) + 0xFFF) &^ 0xFFF; !bytes.Equal(f[end:], patterned(1<<20-end)) {
		t.Fatal("flash beyond the image's sectors changed")
	}
	// The same MD5 again, and an MD5 of another range, read from flash.
	if r2 := s.ok(opMD5, words(0, uint32(len(img)), 0, 0)); !bytes.Equal(r2.data, sum) {
		t.Fatal("second MD5 differs")
	}
	if r3 := s.ok(opMD5, words(0x1000, 0x2003, 0, 0)); !bytes.Equal(r3.data, md5sum(f[0x1000:0x3003])) {
		t.Fatal("MD5 of a sub-range differs from the flash")
	}
}

func md5sum(b []byte) []byte {
	s := md5.Sum(b)
	return s[:]
}

// TestHostStubPipelinedErrors: errors of the second packet in flight are
// reported on it, not on the first.
func TestHostStubPipelinedErrors(t *testing.T) {
	img := tasmotaLike(120_000)
	stream := compress(t, img)
	packets := split(stream, 0x4000)
	begin := words(uint32(len(img)), uint32(len(packets)), 0x4000, 0, 0)

	t.Run("corrupt stream in packet 1", func(t *testing.T) {
		// Two packets; the second ends the stream with a wrong Adler-32
		// (the checksums of the packets are right), and a third follows
		// while the second is worked on.
		small := tasmotaLike(40_000)
		bad := split(bytes.Clone(compress(t, small)), 0x4000)
		if len(bad) != 2 {
			t.Fatalf("%d packets, want 2", len(bad))
		}
		bad[1][len(bad[1])-1] ^= 0x01
		bad = append(bad, bytes.Repeat([]byte{0x55}, 100))
		s := startStub(t, patterned(256<<10), "--flash-timing", slowFlash)
		s.ok(opDeflBegin, words(uint32(len(small)), 2, 0x4000, 0, 0))
		rs := s.stream(opDeflData, opDeflEnd, bad, 2, nil)
		want := []reply{{0, 0}, {1, stInflateError}, {2, stInflateError}, {0, stInflateError}}
		for i := range want {
			if rs[i] != want[i] {
				t.Fatalf("replies %+v, want %+v", rs, want)
			}
		}
		s.ok(opReadReg, words(0x40001000)) // still serving
	})

	t.Run("bad checksum, then sent again", func(t *testing.T) {
		s := startStub(t, patterned(256<<10), "--flash-timing", slowFlash)
		s.ok(opDeflBegin, begin)
		// Packet 0's checksum is wrong while packet 1 is in flight:
		// packet 0 is refused unprocessed, packet 1 is out of sequence.
		s.send(request(opDeflData, dataPacket(0, packets[0]), checksum(packets[0])^1))
		s.send(request(opDeflData, dataPacket(1, packets[1]), checksum(packets[1])))
		for i, want := range []reply{{0, stBadChecksum}, {1, stBadDataLen}} {
			r, err := s.reply(opDeflData, 5*time.Second)
			if err != nil || (reply{r.value, r.status[0]}) != want {
				t.Fatalf("reply %d: %+v %v, want %+v", i, r, err, want)
			}
		}
		// Nothing was written or counted: the whole stream again works.
		for i, r := range s.stream(opDeflData, opDeflEnd, packets, 2, nil) {
			if r.status != 0 {
				t.Fatalf("resent stream, reply %d: 0x%02X", i, r.status)
			}
		}
		r := s.ok(opMD5, words(0, uint32(len(img)), 0, 0))
		if want := md5.Sum(img); !bytes.Equal(r.data, want[:]) {
			t.Fatal("MD5 after the resent stream differs")
		}
	})

	t.Run("flash changed after the write", func(t *testing.T) {
		s := startStub(t, patterned(256<<10), "--flash-timing", slowFlash)
		s.ok(opDeflBegin, begin)
		s.stream(opDeflData, opDeflEnd, packets, 2, nil)
		s.ok(opEraseRegion, words(0x4000, 0x1000))
		r := s.ok(opMD5, words(0, uint32(len(img)), 0, 0))
		if want := md5.Sum(img); bytes.Equal(r.data, want[:]) {
			t.Fatal("MD5 after an erase inside the region still the image's: the read-back was reused")
		}
		if f := s.flashFile(); !bytes.Equal(r.data, md5sum(f[:len(img)])) {
			t.Fatal("MD5 differs from the flash")
		}
	})
}

// TestHostStubPipelinedUncompressed: plain packets of odd lengths (the
// stub realigns them with their flash address and carries the last bytes
// of a word to the next packet), two in flight, end in the middle of a
// word; flash and MD5 right.
func TestHostStubPipelinedUncompressed(t *testing.T) {
	data := randomBytes(7, 50_003)
	var packets [][]byte
	for rest, n := data, 0; len(rest) > 0; n++ {
		k := min(len(rest), []int{4097, 1, 16384, 4093, 3}[n%5])
		packets = append(packets, rest[:k])
		rest = rest[k:]
	}
	const at = 0x13000
	flash := patterned(256 << 10)
	s := startStub(t, flash, "--flash-timing", slowFlash)
	s.ok(opFlashBegin, words(uint32(len(data)), uint32(len(packets)), 0x4000, at))
	for i, r := range s.stream(opFlashData, opFlashEnd, packets, 2, nil) {
		if r.status != 0 {
			t.Fatalf("reply %d: 0x%02X", i, r.status)
		}
	}
	f := s.flashFile()
	if !bytes.Equal(f[at:at+len(data)], data) || !bytes.Equal(f[:at], flash[:at]) {
		t.Fatal("flash content wrong")
	}
	if tail := f[at+len(data) : (at+len(data)+0xFFF)&^0xFFF]; !bytes.Equal(tail, bytes.Repeat([]byte{0xFF}, len(tail))) {
		t.Fatal("rest of the last sector not erased")
	}
	r := s.ok(opMD5, words(at, uint32(len(data)), 0, 0))
	if !bytes.Equal(r.data, md5sum(data)) {
		t.Fatal("MD5 differs")
	}
}

// TestHostStubRingOverflow: a client that sends more than the window while
// the stub is busy loses bytes (--rx-drop: as the chip does). The stub
// counts them, answers the damaged packet with an error and writes nothing
// of it.
func TestHostStubRingOverflow(t *testing.T) {
	// Packet 0 is 4 bytes, decoded at once; it waits for a 64 KiB block
	// erase of 1.5 s while packets 1 and 2 arrive: packet 1 fits in the
	// ring (whether packet 0 has left it yet or not), packet 2 does not.
	data := randomBytes(9, 4+2*0x4000)
	packets := [][]byte{data[:4], data[4 : 4+0x4000], data[4+0x4000:]}
	s := startStub(t, patterned(256<<10), "--flash-timing", "1,1500,1", "--rx-drop")
	s.info(true)
	// 64 KiB announced (more than is sent): the first erase is the block.
	s.ok(opFlashBegin, words(0x10000, 3, 0x4000, 0x10000))
	for i, p := range packets {
		s.send(request(opFlashData, dataPacket(i, p), checksum(p)))
	}
	for i := range 2 {
		if r, err := s.reply(opFlashData, 10*time.Second); err != nil || r.status[0] != 0 || r.value != uint32(i) {
			t.Fatalf("packet %d: %+v %v", i, r, err)
		}
	}
	// Packet 2 lost its tail: it completes only when the next frame's
	// delimiter closes it, and then its length is wrong; the END finds
	// the session short.
	s.send(request(opFlashEnd, words(1), 0))
	if r, err := s.reply(opFlashData, 5*time.Second); err != nil || r.status[0] != stBadDataLen {
		t.Fatalf("the truncated packet 2: %+v %v, want status 0xC0", r, err)
	}
	if r, err := s.reply(opFlashEnd, 5*time.Second); err != nil || r.status[0] != stNotEnoughData {
		t.Fatalf("FLASH_END: %+v %v, want status 0xC8", r, err)
	}
	if st := s.info(false); st.lost == 0 || st.highWater < 20000 {
		t.Errorf("receive statistics %+v: want a full ring and lost bytes", st)
	}
	f := s.flashFile()
	if !bytes.Equal(f[0x10000:0x10004+0x4000], data[:4+0x4000]) {
		t.Error("packets 0 and 1 not written")
	}
	if tail := f[0x10004+0x4000 : 0x10000+len(data)]; !bytes.Equal(tail, bytes.Repeat([]byte{0xFF}, len(tail))) {
		t.Error("something of packet 2 was written (its erased block is not blank)")
	}
}
