package espstub

import (
	"bytes"
	"compress/zlib"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/transport"
)

// Opcodes and status codes as the stub uses them (esptool's stub protocol).
const (
	opFlashBegin     = 0x02
	opFlashData      = 0x03
	opFlashEnd       = 0x04
	opSync           = 0x08
	opWriteReg       = 0x09
	opReadReg        = 0x0A
	opSetParams      = 0x0B
	opSPIAttach      = 0x0D
	opChangeBaud     = 0x0F
	opDeflBegin      = 0x10
	opDeflData       = 0x11
	opDeflEnd        = 0x12
	opMD5            = 0x13
	opEraseFlash     = 0xD0
	opEraseRegion    = 0xD1
	opReadFlash      = 0xD2
	stBadDataLen     = 0xC0
	stBadChecksum    = 0xC1
	stInvalidCommand = 0xC3
	stInflateError   = 0xC7
	stNotEnoughData  = 0xC8
	stTooMuchData    = 0xC9
)

// ---- a test-only SLIP link -------------------------------------------------

type link struct {
	t   *testing.T
	p   transport.Port
	raw []byte
}

func slipEncode(payload []byte) []byte {
	out := []byte{0xC0}
	for _, b := range payload {
		switch b {
		case 0xC0:
			out = append(out, 0xDB, 0xDC)
		case 0xDB:
			out = append(out, 0xDB, 0xDD)
		default:
			out = append(out, b)
		}
	}
	return append(out, 0xC0)
}

func (l *link) send(payload []byte) {
	l.t.Helper()
	if err := transport.WriteAll(l.p, slipEncode(payload)); err != nil {
		l.t.Fatalf("write: %v", err)
	}
}

var errNoFrame = errors.New("no frame")

// frame returns the next non-empty SLIP frame, or errNoFrame after d.
func (l *link) frame(d time.Duration) ([]byte, error) {
	deadline := time.Now().Add(d)
	for {
		if i := bytes.IndexByte(l.raw, 0xC0); i >= 0 {
			if j := bytes.IndexByte(l.raw[i+1:], 0xC0); j >= 0 {
				enc := l.raw[i+1 : i+1+j]
				l.raw = l.raw[i+1+j:] // the closing END may open the next frame
				if len(enc) == 0 {
					continue
				}
				var out []byte
				for k := 0; k < len(enc); k++ {
					if enc[k] == 0xDB && k+1 < len(enc) {
						k++
						switch enc[k] {
						case 0xDC:
							out = append(out, 0xC0)
						case 0xDD:
							out = append(out, 0xDB)
						default:
							return nil, fmt.Errorf("bad SLIP escape 0xDB 0x%02X", enc[k])
						}
						continue
					}
					out = append(out, enc[k])
				}
				return out, nil
			}
		} else {
			l.raw = l.raw[:0] // noise before a frame
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, errNoFrame
		}
		l.p.SetReadTimeout(min(left, 200*time.Millisecond))
		buf := make([]byte, 8192)
		n, err := l.p.Read(buf)
		if err != nil {
			return nil, err
		}
		l.raw = append(l.raw, buf[:n]...)
	}
}

type response struct {
	value  uint32
	data   []byte // before the status bytes
	status [2]byte
}

func request(op byte, data []byte, chk uint32) []byte {
	h := []byte{0x00, op, 0, 0, 0, 0, 0, 0}
	binary.LittleEndian.PutUint16(h[2:], uint16(len(data)))
	binary.LittleEndian.PutUint32(h[4:], chk)
	return append(h, data...)
}

// reply reads frames until the response to op arrives.
func (l *link) reply(op byte, d time.Duration) (response, error) {
	for i := 0; i < 100; i++ {
		f, err := l.frame(d)
		if err != nil {
			return response{}, err
		}
		if len(f) < 10 || f[0] != 0x01 || f[1] != op {
			continue
		}
		size := int(binary.LittleEndian.Uint16(f[2:]))
		if size != len(f)-8 || size < 2 {
			return response{}, fmt.Errorf("response size field %d, frame %d bytes", size, len(f))
		}
		return response{
			value:  binary.LittleEndian.Uint32(f[4:]),
			data:   f[8 : len(f)-2],
			status: [2]byte{f[len(f)-2], f[len(f)-1]},
		}, nil
	}
	return response{}, fmt.Errorf("no response to 0x%02X", op)
}

func (l *link) cmdChk(op byte, data []byte, chk uint32) response {
	l.t.Helper()
	l.send(request(op, data, chk))
	r, err := l.reply(op, 5*time.Second)
	if err != nil {
		l.t.Fatalf("command 0x%02X: %v", op, err)
	}
	return r
}

func (l *link) cmd(op byte, data []byte) response { return l.cmdChk(op, data, 0) }

// ok runs a command that must succeed.
func (l *link) ok(op byte, data []byte) response {
	l.t.Helper()
	r := l.cmd(op, data)
	if r.status != [2]byte{} {
		l.t.Fatalf("command 0x%02X: status %02X %02X", op, r.status[0], r.status[1])
	}
	return r
}

func words(v ...uint32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, x)
	}
	return b
}

func checksum(b []byte) uint32 {
	x := byte(0xEF)
	for _, c := range b {
		x ^= c
	}
	return uint32(x)
}

// dataPacket is FLASH_DATA / FLASH_DEFL_DATA: len, seq, 0, 0, data.
func dataPacket(seq int, payload []byte) []byte {
	return append(words(uint32(len(payload)), uint32(seq), 0, 0), payload...)
}

func syncPayload() []byte {
	return append([]byte{0x07, 0x07, 0x12, 0x20}, bytes.Repeat([]byte{0x55}, 32)...)
}

// ---- the host-built stub -------------------------------------------------------

type hostStub struct {
	*link
	t      *testing.T
	pty    *transport.PTY
	proc   *exec.Cmd
	flash  string
	stderr bytes.Buffer
	exited chan error
}

// startStub runs build/host-stub on a pty whose master the test holds
// (--port mode): the stub's tty speed is visible as pty.PeerBaud() and
// bytes exchanged at different speeds arrive garbled. flash is the initial
// content of the fake flash.
func startStub(t *testing.T, flash []byte, extra ...string) *hostStub {
	t.Helper()
	bin := hostTool(t, "host-stub")
	p, err := transport.OpenPTY(115200)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	s := &hostStub{t: t, pty: p, flash: filepath.Join(t.TempDir(), "flash.bin"), exited: make(chan error, 1)}
	if err := os.WriteFile(s.flash, flash, 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--port", p.SlavePath(), "--flash", s.flash}, extra...)
	s.proc = exec.Command(bin, args...)
	s.proc.Stderr = &s.stderr
	if err := s.proc.Start(); err != nil {
		p.Close()
		t.Fatal(err)
	}
	go func() { s.exited <- s.proc.Wait() }()
	s.link = &link{t: t, p: p}
	t.Cleanup(func() {
		p.Close()
		select {
		case <-s.exited:
		case <-time.After(5 * time.Second):
			s.proc.Process.Kill()
			<-s.exited
			t.Error("host-stub did not exit after the pty closed")
		}
		if t.Failed() {
			t.Logf("host-stub stderr:\n%s", s.stderr.String())
		}
	})
	f, err := s.frame(5 * time.Second)
	if err != nil || string(f) != "OHAI" {
		t.Fatalf("greeting %q, %v; want OHAI", f, err)
	}
	return s
}

func (s *hostStub) flashFile() []byte {
	s.t.Helper()
	b, err := os.ReadFile(s.flash)
	if err != nil {
		s.t.Fatal(err)
	}
	return b
}

// checkImage checks that the stub's MD5 of img's region at at and the fake
// flash both say it holds img; it returns the flash and the MD5.
func (s *hostStub) checkImage(at int, img []byte) (flash, sum []byte) {
	s.t.Helper()
	r := s.ok(opMD5, words(uint32(at), uint32(len(img)), 0, 0))
	if want := md5.Sum(img); !bytes.Equal(r.data, want[:]) {
		s.t.Fatalf("SPI_FLASH_MD5 % X, want % X", r.data, want)
	}
	f := s.flashFile()
	if !bytes.Equal(f[at:at+len(img)], img) {
		s.t.Fatal("fake flash differs from the image")
	}
	return f, r.data
}

func patterned(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 0x5A
	}
	return b
}

// ---- tests ------------------------------------------------------------------------

func TestHostStubSync(t *testing.T) {
	s := startStub(t, patterned(64<<10))
	s.send(request(opSync, syncPayload(), 0))
	// Eight replies, value 0 (stub running), status 00 00 — byte for byte.
	want := []byte{0x01, 0x08, 0x02, 0x00, 0, 0, 0, 0, 0x00, 0x00}
	for i := 0; i < 8; i++ {
		f, err := s.frame(2 * time.Second)
		if err != nil {
			t.Fatalf("reply %d: %v", i+1, err)
		}
		if !bytes.Equal(f, want) {
			t.Fatalf("reply %d = % X, want % X", i+1, f, want)
		}
	}
	if f, err := s.frame(100 * time.Millisecond); err == nil {
		t.Fatalf("ninth frame % X", f)
	}
	if r := s.cmd(opSync, syncPayload()[:20]); r.status[0] != stBadDataLen {
		t.Fatalf("short SYNC: status % X", r.status)
	}
}

func TestHostStubRegistersAndErrors(t *testing.T) {
	s := startStub(t, patterned(1<<20), "--mac", "a4:cf:12:34:56:78")
	if r := s.ok(opReadReg, words(0x40001000)); r.value != 0xFFF0C101 {
		t.Errorf("chip magic 0x%08X", r.value)
	}
	// MAC through the eFuse words, decoded as esptool does for the ESP8266.
	w := make([]uint32, 4)
	for i := range w {
		w[i] = s.ok(opReadReg, words(0x3FF00050+4*uint32(i))).value
	}
	mac := fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", w[3]>>16&0xFF, w[3]>>8&0xFF, w[3]&0xFF, w[1]>>8&0xFF, w[1]&0xFF, w[0]>>24)
	if mac != "a4:cf:12:34:56:78" {
		t.Errorf("MAC from eFuses %s", mac)
	}
	// WRITE_REG: several entries in one command, mask keeps other bits.
	s.ok(opWriteReg, words(0x60000300, 0x12345678, 0xFFFFFFFF, 0, 0x60000300, 0x0000AB00, 0x0000FF00, 10))
	if v := s.ok(opReadReg, words(0x60000300)).value; v != 0x1234AB78 {
		t.Errorf("after masked write 0x%08X, want 0x1234AB78", v)
	}
	// JEDEC ID the way esptool reads it: SPI user command 0x9F.
	s.ok(opWriteReg, words(0x60000224, 0x7000009F, 0xFFFFFFFF, 0))
	s.ok(opWriteReg, words(0x60000200, 1<<18, 0xFFFFFFFF, 0))
	if v := s.ok(opReadReg, words(0x60000200)).value; v != 0 {
		t.Errorf("SPI_CMD still busy: 0x%08X", v)
	}
	if id := s.ok(opReadReg, words(0x60000240)).value & 0xFFFFFF; id != 0x1440EF {
		t.Errorf("flash ID 0x%06X, want 0x1440EF (1 MiB)", id)
	}
	s.ok(opSPIAttach, words(0))
	s.ok(opSetParams, words(0, 1<<20, 0x10000, 0x1000, 0x100, 0xFFFF))

	cases := []struct {
		name string
		op   byte
		data []byte
		chk  uint32
		want byte
	}{
		{"unknown opcode", 0x42, nil, 0, stInvalidCommand},
		{"MEM_BEGIN is not served", 0x05, words(0, 0, 0, 0), 0, stInvalidCommand},
		{"unaligned READ_REG", opReadReg, words(0x60000301), 0, stBadDataLen},
		{"READ_REG size", opReadReg, words(1, 2), 0, stBadDataLen},
		{"WRITE_REG partial entry", opWriteReg, words(0x60000300, 1, 2), 0, stBadDataLen},
		{"FLASH_DATA before FLASH_BEGIN", opFlashData, dataPacket(0, []byte{1, 2, 3, 4}), checksum([]byte{1, 2, 3, 4}), 0xC6},
		{"FLASH_BEGIN past the chip", opFlashBegin, words(0x2000, 1, 0x4000, 0xFF000), 0, stBadDataLen},
		{"FLASH_BEGIN unaligned offset", opFlashBegin, words(16, 1, 0x4000, 2), 0, stBadDataLen},
		{"FLASH_BEGIN block too big", opFlashBegin, words(0x8000, 1, 0x8000, 0), 0, 0xC2},
		{"encrypted write", opFlashBegin, words(16, 1, 0x4000, 0, 1), 0, stInvalidCommand},
		{"MD5 past the chip", opMD5, words(0xFF000, 0x2000, 0, 0), 0, stBadDataLen},
		{"SPI_SET_PARAMS size 0", opSetParams, words(0, 0, 0x10000, 0x1000, 0x100, 0xFFFF), 0, stBadDataLen},
		{"CHANGE_BAUDRATE to 0", opChangeBaud, words(0, 115200), 0, stBadDataLen},
		{"READ_FLASH packet 0", opReadFlash, words(0, 16, 0, 1), 0, stBadDataLen},
		{"READ_FLASH packet too big", opReadFlash, words(0, 0x2000, 0x2000, 1), 0, stBadDataLen},
	}
	for _, c := range cases {
		r := s.cmdChk(c.op, c.data, c.chk)
		if r.status != [2]byte{c.want, 0} {
			t.Errorf("%s: status % X, want %02X 00", c.name, r.status, c.want)
		}
	}
	// A frame longer than any request is refused, and the stub goes on.
	s.send(request(opFlashData, make([]byte, 0x4100), 0))
	if r, err := s.reply(opFlashData, 2*time.Second); err != nil || r.status[0] != stBadDataLen {
		t.Errorf("oversized frame: %+v, %v", r, err)
	}
	// The header's size field must match the frame.
	bad := request(opReadReg, words(0x40001000), 0)
	bad[2] = 8
	s.send(bad)
	if r, err := s.reply(opReadReg, 2*time.Second); err != nil || r.status[0] != stBadDataLen {
		t.Errorf("size mismatch: %+v, %v", r, err)
	}
	s.ok(opReadReg, words(0x40001000))
}

// readFlash runs READ_FLASH and returns the data and the stub's MD5. The
// reader is slow on purpose: for the packets in pauses it waits before
// acknowledging and checks that the stub sends nothing meanwhile.
func (s *hostStub) readFlash(addr, n, packet, inFlight uint32, pauses map[int]bool) ([]byte, []byte) {
	t := s.t
	t.Helper()
	s.ok(opReadFlash, words(addr, n, packet, inFlight))
	var got []byte
	for k := 0; uint32(len(got)) < n; k++ {
		f, err := s.frame(5 * time.Second)
		if err != nil {
			t.Fatalf("packet %d: %v (have %d of %d bytes)", k, err, len(got), n)
		}
		want := min(packet, n-uint32(len(got)))
		if uint32(len(f)) != want {
			t.Fatalf("packet %d is %d bytes, want %d", k, len(f), want)
		}
		got = append(got, f...)
		if pauses[k] {
			if extra, err := s.frame(60 * time.Millisecond); err == nil {
				t.Fatalf("stub sent %d more bytes before packet %d was acknowledged", len(extra), k)
			}
		}
		s.send(words(uint32(len(got))))
	}
	sum, err := s.frame(5 * time.Second)
	if err != nil || len(sum) != 16 {
		t.Fatalf("final MD5 frame %d bytes, %v", len(sum), err)
	}
	return got, sum
}

func TestHostStubReadFlash1MiB(t *testing.T) {
	flash := randomBytes(11, 1<<20)
	s := startStub(t, flash)
	start := time.Now()
	got, sum := s.readFlash(0, 1<<20, 0x1000, 64, map[int]bool{0: true, 100: true, 254: true})
	if !bytes.Equal(got, flash) {
		i := 0
		for i < len(got) && got[i] == flash[i] {
			i++
		}
		t.Fatalf("backup differs from the fake flash at 0x%X", i)
	}
	if want := md5.Sum(flash); !bytes.Equal(sum, want[:]) {
		t.Fatalf("stub MD5 % X, want % X", sum, want)
	}
	t.Logf("1 MiB read over the pty in %v", time.Since(start).Round(time.Millisecond))
	// The stub is ready for the next command, and its own MD5 agrees.
	r := s.ok(opMD5, words(0, 1<<20, 0, 0))
	if want := md5.Sum(flash); !bytes.Equal(r.data, want[:]) {
		t.Fatalf("SPI_FLASH_MD5 % X", r.data)
	}
}

func TestHostStubReadFlashFlowControl(t *testing.T) {
	flash := randomBytes(12, 256<<10)
	s := startStub(t, flash)
	// Unaligned start and length, small packets.
	got, sum := s.readFlash(3, 5001, 1000, 1000, map[int]bool{2: true})
	if !bytes.Equal(got, flash[3:5004]) {
		t.Fatal("unaligned read differs")
	}
	if want := md5.Sum(flash[3:5004]); !bytes.Equal(sum, want[:]) {
		t.Fatal("unaligned read MD5 differs")
	}
	// max_in_flight counts bytes: 8192 lets two 4 KiB packets go unacknowledged,
	// never a third.
	s.ok(opReadFlash, words(0x10000, 0x4000, 0x1000, 0x2000))
	for k := 0; k < 2; k++ {
		if f, err := s.frame(2 * time.Second); err != nil || len(f) != 0x1000 {
			t.Fatalf("packet %d without acknowledgement: %d bytes, %v", k, len(f), err)
		}
	}
	if f, err := s.frame(80 * time.Millisecond); err == nil {
		t.Fatalf("third packet (%d bytes) sent with two unacknowledged", len(f))
	}
	// A client that gives up sends SYNC instead of an acknowledgement: the
	// transfer ends and the SYNC is answered.
	s.send(request(opSync, syncPayload(), 0))
	for i := 0; i < 8; i++ {
		r, err := s.reply(opSync, 2*time.Second)
		if err != nil || r.value != 0 {
			t.Fatalf("SYNC reply %d after aborted read: %+v %v", i, r, err)
		}
	}
	s.ok(opReadReg, words(0x40001000))
}

// tasmotaLike is an image with the compressibility of real firmware:
// code-like bytes and strings with runs of 0x00 and 0xFF, starting with an
// ESP8266 image header (0xE9, DOUT, 1 MB / 40 MHz).
func tasmotaLike(n int) []byte {
	b := firmwareLike(42, n)
	copy(b, []byte{0xE9, 0x02, 0x03, 0x20, 0x10, 0x10, 0x20, 0x40})
	return b
}

func compress(t *testing.T, b []byte) []byte {
	return goZlib(t, b, zlib.BestCompression)
}

func split(b []byte, n int) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		k := min(n, len(b))
		out = append(out, b[:k])
		b = b[k:]
	}
	return out
}

func TestHostStubCompressedWrite(t *testing.T) {
	const flashSize = 1 << 20
	img := tasmotaLike(600_000)
	stream := compress(t, img)
	t.Logf("image %d bytes, zlib level 9 %d bytes (%.0f%%)", len(img), len(stream), 100*float64(len(stream))/float64(len(img)))
	s := startStub(t, patterned(flashSize)) // not erased: the stub must erase
	s.ok(opSetParams, words(0, flashSize, 0x10000, 0x1000, 0x100, 0xFFFF))

	packets := split(stream, 0x4000)
	s.ok(opDeflBegin, words(uint32(len(img)), uint32(len(packets)), 0x4000, 0, 0))
	for i, p := range packets {
		r := s.cmdChk(opDeflData, dataPacket(i, p), checksum(p))
		if r.status != [2]byte{} {
			t.Fatalf("packet %d: status % X", i, r.status)
		}
		if i == 3 { // the reply got lost, the client sends the packet again
			if r := s.cmdChk(opDeflData, dataPacket(i, p), checksum(p)); r.status != [2]byte{} {
				t.Fatalf("retried packet %d: status % X", i, r.status)
			}
		}
	}
	s.ok(opDeflEnd, words(1))
	f, _ := s.checkImage(0, img)
	end := (len(img) + 0xFFF) &^ 0xFFF
	if !bytes.Equal(f[len(img):end], bytes.Repeat([]byte{0xFF}, end-len(img))) {
		t.Fatal("rest of the last sector not erased")
	}
	if !bytes.Equal(f[end:], patterned(flashSize-end)) {
		t.Fatal("flash beyond the image changed")
	}
}

func TestHostStubUncompressedWrite(t *testing.T) {
	img := tasmotaLike(70_001)
	flash := patterned(256 << 10)
	s := startStub(t, flash)
	const at = 0x8000
	blocks := split(img, 0x4000)
	s.ok(opFlashBegin, words(uint32(len(img)), uint32(len(blocks)), 0x4000, at))
	for i, b := range blocks {
		if len(b) < 0x4000 { // esptool pads the last block with 0xFF
			b = append(bytes.Clone(b), bytes.Repeat([]byte{0xFF}, 0x4000-len(b))...)
		}
		if r := s.cmdChk(opFlashData, dataPacket(i, b), checksum(b)); r.status != [2]byte{} {
			t.Fatalf("block %d: % X", i, r.status)
		}
	}
	s.ok(opFlashEnd, words(1))
	r := s.ok(opMD5, words(at, uint32(len(img)), 0, 0))
	if want := md5.Sum(img); !bytes.Equal(r.data, want[:]) {
		t.Fatalf("MD5 % X", r.data)
	}
	f := s.flashFile()
	if !bytes.Equal(f[:at], flash[:at]) || !bytes.Equal(f[at:at+len(img)], img) {
		t.Fatal("flash content wrong")
	}
	// Checksum, sequence and length errors.
	s.ok(opFlashBegin, words(8, 1, 0x4000, 0x20000))
	p := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	if r := s.cmdChk(opFlashData, dataPacket(0, p), checksum(p)^1); r.status[0] != stBadChecksum {
		t.Errorf("bad checksum: % X", r.status)
	}
	if r := s.cmdChk(opFlashData, dataPacket(5, p), checksum(p)); r.status[0] != stBadDataLen {
		t.Errorf("out of sequence: % X", r.status)
	}
	if r := s.cmd(opFlashEnd, words(1)); r.status[0] != stNotEnoughData {
		t.Errorf("FLASH_END with nothing written: % X", r.status)
	}
}

func TestHostStubCompressedErrors(t *testing.T) {
	img := tasmotaLike(200_000)
	stream := compress(t, img)
	corrupt := bytes.Clone(stream)
	for i := len(corrupt) / 2; i < len(corrupt)/2+8; i++ {
		corrupt[i] ^= 0x5A
	}
	cases := []struct {
		name    string
		size    int
		packets [][]byte
		endWant byte
	}{
		// checksums are right, the deflate data is not
		{"corrupt", len(img), split(corrupt, 0x4000), stInflateError},
		// the last packet is missing: the stream ends early
		{"truncated", len(img), split(stream, 0x4000)[:len(split(stream, 0x4000))-1], stInflateError},
		// more data than FLASH_DEFL_BEGIN announced
		{"too much", len(img) - 4096, split(stream, 0x4000), stTooMuchData},
		// a complete stream of less data than announced
		{"too little", len(img) + 4096, split(stream, 0x4000), stNotEnoughData},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := startStub(t, patterned(1<<20))
			n := len(split(stream, 0x4000))
			s.ok(opDeflBegin, words(uint32(c.size), uint32(n), 0x4000, 0, 0))
			first := byte(0)
			for i, p := range c.packets {
				r := s.cmdChk(opDeflData, dataPacket(i, p), checksum(p))
				if first == 0 && r.status[0] != 0 {
					first = r.status[0]
				} else if first != 0 && r.status[0] != first {
					t.Fatalf("packet %d after error 0x%02X: status % X (errors are sticky)", i, first, r.status)
				}
			}
			r := s.cmd(opDeflEnd, words(1))
			if r.status != [2]byte{c.endWant, 0} {
				t.Fatalf("FLASH_DEFL_END: status % X, want %02X 00", r.status, c.endWant)
			}
			if first != 0 && first != c.endWant {
				t.Fatalf("first error 0x%02X, FLASH_DEFL_END 0x%02X", first, c.endWant)
			}
			if c.name == "corrupt" && first != stInflateError {
				t.Fatalf("corrupt stream: no DATA packet rejected (first error 0x%02X)", first)
			}
			s.ok(opReadReg, words(0x40001000)) // still serving
		})
	}
	// A wrong checksum is caught before the inflater sees the packet.
	s := startStub(t, patterned(64<<10))
	p := split(stream, 0x4000)[0]
	s.ok(opDeflBegin, words(uint32(len(img)), 1, 0x4000, 0, 0))
	if r := s.cmdChk(opDeflData, dataPacket(0, p), checksum(p)^0xFF); r.status[0] != stBadChecksum {
		t.Fatalf("bad checksum: % X", r.status)
	}
}

func TestHostStubEraseRegion(t *testing.T) {
	const size = 512 << 10
	s := startStub(t, patterned(size))
	s.ok(opSetParams, words(0, size, 0x10000, 0x1000, 0x100, 0xFFFF))
	s.ok(opEraseRegion, words(0x0F000, 0x22000)) // sectors, a 64 KiB block, sectors
	f := s.flashFile()
	for i, b := range f {
		erased := i >= 0x0F000 && i < 0x31000
		if (b == 0xFF) != erased {
			t.Fatalf("byte 0x%X = 0x%02X after ERASE_REGION 0xF000+0x22000", i, b)
		}
	}
	for _, c := range []struct {
		name       string
		addr, size uint32
	}{
		{"unaligned address", 0x1800, 0x1000},
		{"unaligned size", 0x1000, 0x800},
		{"past the chip", size - 0x1000, 0x2000},
	} {
		if r := s.cmd(opEraseRegion, words(c.addr, c.size)); r.status != [2]byte{stBadDataLen, 0} {
			t.Errorf("%s: % X", c.name, r.status)
		}
	}
	s.ok(opEraseFlash, nil)
	if f := s.flashFile(); !bytes.Equal(f, bytes.Repeat([]byte{0xFF}, size)) {
		t.Fatal("ERASE_FLASH left data")
	}
}

func TestHostStubChangeBaudrate(t *testing.T) {
	s := startStub(t, patterned(64<<10))
	div0 := s.divider()
	// 26 MHz crystal: the UART runs from 52 MHz, 115200 baud is divider 451.
	if div0 != 451 {
		t.Fatalf("initial divider %d, want 451", div0)
	}
	s.ok(opChangeBaud, words(460800, 115200)) // the reply comes at the old rate
	if err := waitPeerBaud(s.pty, 460800); err != nil {
		t.Fatal(err)
	}
	// Still at 115200 here: the stub cannot understand us.
	s.send(request(opSync, syncPayload(), 0))
	if r, err := s.reply(opSync, 300*time.Millisecond); err == nil {
		t.Fatalf("SYNC answered across a baud mismatch: %+v", r)
	}
	s.pty.SetBaudRate(460800)
	s.pty.ResetInputBuffer()
	s.raw = nil
	// new divider = current divider * old baud / new baud, rounded
	if d := s.divider(); d != 113 {
		t.Fatalf("divider at 460800: %d, want 451*115200/460800 = 113", d)
	}
	s.switchBaud(921600, 460800)
	if d := s.divider(); d != 57 {
		t.Fatalf("divider at 921600: %d, want 113*460800/921600 = 57", d)
	}
	got, _ := s.readFlash(0, 16<<10, 0x1000, 64, nil)
	if !bytes.Equal(got, patterned(16<<10)) {
		t.Fatal("read at 921600 differs")
	}
}

// TestHostStubChangeBaudrateOldZero: a client that sends 0 as the old rate
// (as for the ROM) gets 115200 assumed.
func TestHostStubChangeBaudrateOldZero(t *testing.T) {
	s := startStub(t, patterned(64<<10))
	s.switchBaud(230400, 0)
	if d := s.divider(); d != 226 {
		t.Fatalf("divider %d, want round(451*115200/230400) = 226", d)
	}
}

// switchBaud sends CHANGE_BAUDRATE, waits for the stub's tty to change and
// follows it.
func (s *hostStub) switchBaud(nb, ob uint32) {
	s.t.Helper()
	s.ok(opChangeBaud, words(nb, ob))
	if err := waitPeerBaud(s.pty, int(nb)); err != nil {
		s.t.Fatal(err)
	}
	s.pty.SetBaudRate(int(nb))
}

// divider reads UART0_CLKDIV through the stub.
func (s *hostStub) divider() uint32 {
	s.t.Helper()
	return s.ok(opReadReg, words(0x60000014)).value
}

func waitPeerBaud(p *transport.PTY, want int) error {
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if p.PeerBaud() == want {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("stub's tty at %d baud, want %d", p.PeerBaud(), want)
}

func TestHostStubFlashEndReboots(t *testing.T) {
	for _, op := range []struct {
		name       string
		begin, end byte
	}{{"FLASH_END", opFlashBegin, opFlashEnd}, {"FLASH_DEFL_END", opDeflBegin, opDeflEnd}} {
		t.Run(op.name, func(t *testing.T) {
			s := startStub(t, patterned(64<<10))
			s.ok(op.end, words(1)) // flag 1: stay in the stub
			s.ok(opReadReg, words(0x40001000))
			if op.begin == opDeflBegin {
				stream := compress(t, nil)
				s.ok(op.begin, words(0, 1, 0x4000, 0))
				if r := s.cmdChk(opDeflData, dataPacket(0, stream), checksum(stream)); r.status != [2]byte{} {
					t.Fatalf("empty stream: % X", r.status)
				}
			} else {
				s.ok(op.begin, words(0, 0, 0x4000, 0))
			}
			s.ok(op.end, words(0)) // flag 0: reboot after the reply
			select {
			case err := <-s.exited:
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 3 {
					t.Fatalf("host-stub exit %v, want status 3 (reboot)", err)
				}
				if !strings.Contains(s.stderr.String(), "reboot requested") {
					t.Fatalf("stderr %q", s.stderr.String())
				}
				s.exited <- err // for the cleanup
			case <-time.After(3 * time.Second):
				t.Fatal("no reboot after FLASH_END(0)")
			}
		})
	}
}

// TestHostStubPtyLink: --pty-link mode, for clients that open a port by
// name (go.bug.st/serial here, as the CLI does). The stub's UART rate is
// internal; the client's tty speed must follow CHANGE_BAUDRATE.
func TestHostStubPtyLink(t *testing.T) {
	bin := hostTool(t, "host-stub")
	dir := t.TempDir()
	path := filepath.Join(dir, "ttyESP")
	cmd := exec.Command(bin, "--pty-link", path, "--flash", filepath.Join(dir, "flash.bin"), "--size", "1M")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if _, err := os.Lstat(path); err == nil {
			t.Error("link left behind")
		}
		if t.Failed() {
			t.Logf("host-stub stderr:\n%s", stderr.String())
		}
	}()
	for i := 0; ; i++ {
		if _, err := os.Stat(path); err == nil {
			break
		}
		if i == 200 {
			t.Fatalf("%s not created", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
	p, err := transport.Open(path, 115200)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	l := &link{t: t, p: p}
	l.send(request(opSync, syncPayload(), 0))
	if r, err := l.reply(opSync, 2*time.Second); err != nil || r.value != 0 {
		t.Fatalf("SYNC: %+v %v", r, err)
	}
	transport.Discard(p, 50*time.Millisecond, time.Second)
	l.raw = nil
	if id := l.ok(opReadReg, words(0x40001000)).value; id != 0xFFF0C101 {
		t.Fatalf("magic 0x%08X", id)
	}
	l.ok(opChangeBaud, words(460800, 0))
	l.send(request(opReadReg, words(0x40001000), 0)) // still at 115200: garbled
	if r, err := l.reply(opReadReg, 300*time.Millisecond); err == nil {
		t.Fatalf("answered across a baud mismatch: %+v", r)
	}
	p.SetBaudRate(460800)
	transport.Discard(p, 50*time.Millisecond, time.Second)
	l.raw = nil
	if d := l.ok(opReadReg, words(0x60000014)).value; d != 113 {
		t.Fatalf("divider %d", d)
	}
	r := l.ok(opMD5, words(0, 1<<20, 0, 0))
	if want := md5.Sum(bytes.Repeat([]byte{0xFF}, 1<<20)); !bytes.Equal(r.data, want[:]) {
		t.Fatal("new flash file is not erased flash")
	}
}
