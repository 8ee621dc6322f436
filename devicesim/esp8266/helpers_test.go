package espsim

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tuyaflash/tuyaflash/transport"
)

// The host side of the tests is written from the reference directly (frame
// layout §4, SLIP §3) and shares no code with the simulator's codec.

// host drives the simulator over the other end of a transport.Pipe.
type host struct {
	t   *testing.T
	p   transport.Port
	d   *Device
	buf []byte // bytes read but not yet consumed
	// closed is set once a read fails: the port is gone.
	closed bool
}

// simOpts configures one simulated session.
type simOpts struct {
	link     transport.LinkOptions
	keepBoot bool // leave the boot log in the host's input
}

// runSim runs fn inside a synctest bubble against a served Device and
// stops Serve afterwards; Serve must end without error.
func runSim(t *testing.T, cfg Config, o simOpts, fn func(h *host)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		d, err := New(cfg)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		hp, dp := transport.Pipe(o.link)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Serve(ctx, dp) }()
		defer func() { // also after t.Fatal in fn
			cancel()
			if err := <-done; err != nil && !errors.Is(err, ErrDisconnected) {
				t.Errorf("Serve: %v", err)
			}
			hp.Close()
		}()
		h := &host{t: t, p: hp, d: d}
		if !o.keepBoot {
			h.discardInput()
		}
		fn(h)
	})
}

// discardInput waits for the chip's pending output and throws it away.
func (h *host) discardInput() {
	time.Sleep(200 * time.Millisecond)
	if err := h.p.ResetInputBuffer(); err != nil {
		h.t.Fatal(err)
	}
	h.buf = nil
}

// encode frames payload by hand: END, escaped bytes, END.
func encode(payload []byte) []byte {
	out := []byte{0xC0}
	for _, b := range payload {
		switch b {
		case 0xDB:
			out = append(out, 0xDB, 0xDD)
		case 0xC0:
			out = append(out, 0xDB, 0xDC)
		default:
			out = append(out, b)
		}
	}
	return append(out, 0xC0)
}

// packet is a request: 00, op, size, checksum, data.
func packet(op byte, data []byte, chk uint32) []byte {
	p := []byte{0x00, op, 0, 0, 0, 0, 0, 0}
	binary.LittleEndian.PutUint16(p[2:], uint16(len(data)))
	binary.LittleEndian.PutUint32(p[4:], chk)
	return append(p, data...)
}

func words(v ...uint32) []byte {
	b := make([]byte, 4*len(v))
	for i, w := range v {
		binary.LittleEndian.PutUint32(b[4*i:], w)
	}
	return b
}

// checksum per reference §4.6, computed independently of the simulator.
func checksum(b []byte) uint32 {
	s := uint32(0xEF)
	for _, v := range b {
		s ^= uint32(v)
	}
	return s
}

// dataPacket is a *_DATA request: len, seq, 0, 0, payload; checksum over
// the payload.
func dataPacket(op byte, seq uint32, payload []byte) []byte {
	return packet(op, append(words(uint32(len(payload)), seq, 0, 0), payload...), checksum(payload))
}

func (h *host) write(b []byte) {
	h.t.Helper()
	if _, err := h.p.Write(b); err != nil {
		h.t.Fatalf("host write: %v", err)
	}
}

func (h *host) send(op byte, data []byte, chk uint32) {
	h.t.Helper()
	h.write(encode(packet(op, data, chk)))
}

// fill reads whatever arrives within timeout into h.buf.
func (h *host) fill(timeout time.Duration) bool {
	tmp := make([]byte, 8192)
	_ = h.p.SetReadTimeout(timeout)
	n, err := h.p.Read(tmp)
	if err != nil {
		h.closed = true // no more bytes will come: callers stop waiting
		return false
	}
	h.buf = append(h.buf, tmp[:n]...)
	return n > 0
}

// frame returns the next SLIP frame (decoded), skipping bytes before a
// 0xC0 and empty frames; ok is false after timeout.
func (h *host) frame(timeout time.Duration) ([]byte, bool) {
	deadline := time.Now().Add(timeout)
	for {
		if f, rest, ok := cutFrame(h.buf); ok {
			h.buf = rest
			if len(f) > 0 {
				return f, true
			}
			continue
		}
		left := time.Until(deadline)
		if left <= 0 || h.closed {
			return nil, false
		}
		h.fill(left)
	}
}

// cutFrame finds the first complete frame in b.
func cutFrame(b []byte) (frame, rest []byte, ok bool) {
	start := bytes.IndexByte(b, 0xC0)
	if start < 0 {
		return nil, nil, false
	}
	end := bytes.IndexByte(b[start+1:], 0xC0)
	if end < 0 {
		return nil, b[start:], false
	}
	raw := b[start+1 : start+1+end]
	rest = b[start+1+end:] // the closing END may open the next frame
	if end == 0 {
		return nil, rest, true
	}
	var f []byte
	for i := 0; i < len(raw); i++ {
		if raw[i] == 0xDB && i+1 < len(raw) {
			i++
			switch raw[i] {
			case 0xDC:
				f = append(f, 0xC0)
			case 0xDD:
				f = append(f, 0xDB)
			default:
				f = append(f, 0xDB, raw[i])
			}
			continue
		}
		f = append(f, raw[i])
	}
	return f, rest[1:], true
}

// resp is a parsed response.
type resp struct {
	op     byte
	value  uint32
	data   []byte // before the two status bytes
	status [2]byte
}

func parseResp(f []byte) (resp, error) {
	if len(f) < 10 || f[0] != 0x01 {
		return resp{}, fmt.Errorf("not a response: % X", f)
	}
	size := int(binary.LittleEndian.Uint16(f[2:]))
	if size != len(f)-8 || size < 2 {
		return resp{}, fmt.Errorf("size %d in a %d-byte response", size, len(f))
	}
	return resp{op: f[1], value: binary.LittleEndian.Uint32(f[4:]), data: f[8 : len(f)-2], status: [2]byte{f[len(f)-2], f[len(f)-1]}}, nil
}

// reply waits for the response to op, skipping other frames.
func (h *host) reply(op byte) resp {
	h.t.Helper()
	for range 100 {
		f, ok := h.frame(5 * time.Second)
		if !ok {
			h.t.Fatalf("no response to 0x%02X", op)
		}
		r, err := parseResp(f)
		if err == nil && r.op == op {
			return r
		}
	}
	h.t.Fatalf("no response to 0x%02X in 100 frames", op)
	return resp{}
}

// do sends a command and returns its response.
func (h *host) do(op byte, data []byte, chk uint32) resp {
	h.t.Helper()
	h.send(op, data, chk)
	return h.reply(op)
}

// ok runs a command that must succeed.
func (h *host) ok(op byte, data []byte, chk uint32) resp {
	h.t.Helper()
	r := h.do(op, data, chk)
	if r.status != [2]byte{} {
		h.t.Fatalf("command 0x%02X failed: status % X", op, r.status)
	}
	return r
}

func (h *host) readReg(addr uint32) uint32 {
	h.t.Helper()
	return h.ok(opReadReg, words(addr), 0).value
}

func (h *host) writeReg(addr, value uint32) {
	h.t.Helper()
	h.ok(opWriteReg, words(addr, value, 0xFFFFFFFF, 0), 0)
}

// sync sends SYNC and returns the responses that arrive.
func (h *host) sync() []resp {
	h.t.Helper()
	h.send(opSync, syncPayloadForTest(), 0)
	var rs []resp
	for {
		f, ok := h.frame(300 * time.Millisecond)
		if !ok {
			return rs
		}
		if r, err := parseResp(f); err == nil && r.op == opSync {
			rs = append(rs, r)
		}
	}
}

// syncUntilROM sends SYNCs until the ROM loader answers and returns how
// long that took; it fails the test after limit.
func (h *host) syncUntilROM(limit time.Duration) time.Duration {
	h.t.Helper()
	start := time.Now()
	for time.Since(start) < limit {
		if rs := h.sync(); len(rs) == 8 && rs[0].value == syncValueROM {
			return time.Since(start)
		}
	}
	h.t.Fatalf("no ROM loader within %v", limit)
	return 0
}

func syncPayloadForTest() []byte {
	return append([]byte{0x07, 0x07, 0x12, 0x20}, bytes.Repeat([]byte{0x55}, 32)...)
}

// uploadStub loads an arbitrary "stub" with MEM_BEGIN/MEM_DATA/MEM_END
// and waits for OHAI, as esptool's run_stub does (reference §12.2).
func (h *host) uploadStub() {
	h.t.Helper()
	text := bytes.Repeat([]byte{0x36, 0x41, 0x00, 0xC0, 0xDB}, 0x700) // 8960 bytes, includes SLIP specials
	h.uploadAt(text, 0x4010C500)
}

// uploadAt loads text at start with MEM_BEGIN/MEM_DATA, jumps to start+4
// with MEM_END and waits for OHAI.
func (h *host) uploadAt(text []byte, start uint32) {
	h.t.Helper()
	const blk = 0x1800
	nblk := uint32((len(text) + blk - 1) / blk)
	h.ok(opMemBegin, words(uint32(len(text)), nblk, blk, start), 0)
	for seq := uint32(0); seq < nblk; seq++ {
		chunk := text[seq*blk : min(int(seq+1)*blk, len(text))]
		h.send(opMemData, append(words(uint32(len(chunk)), seq, 0, 0), chunk...), checksum(chunk))
		if r := h.reply(opMemData); r.status != [2]byte{} {
			h.t.Fatalf("MEM_DATA %d: % X", seq, r.status)
		}
	}
	h.send(opMemEnd, words(0, start+4), 0)
	for range 3 {
		f, ok := h.frame(time.Second)
		if !ok {
			break
		}
		if string(f) == "OHAI" {
			return
		}
	}
	h.t.Fatal("no OHAI after MEM_END")
}

// filled returns a flash image of size bytes where every byte is v.
func filled(size int, v byte) []byte {
	return bytes.Repeat([]byte{v}, size)
}

// erasedSectors lists the sectors of f that are all 0xFF.
func erasedSectors(f []byte) []int {
	var s []int
	for i := 0; i < len(f); i += 0x1000 {
		if bytes.Count(f[i:i+0x1000], []byte{0xFF}) == 0x1000 {
			s = append(s, i/0x1000)
		}
	}
	return s
}
