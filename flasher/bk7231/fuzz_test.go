package bk7231

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzReplyParser feeds arbitrary chip output to the reply scanner. It
// must never panic, always make progress or ask for more bytes, and only
// return a reply of the wanted kind and code that lies inside the stream.
// A reply framed here from the protocol description (§3.2: 04 0E LL 01 E0
// FC code data; 04 0E FF 01 E0 FC F4 Ll Lh op status data) after noise
// without 0x04 bytes is always found with its exact data.
func FuzzReplyParser(f *testing.F) {
	f.Add([]byte("BK7231S_1.0.5\r\n\x04\x0e\x05\x01\xe0\xfc\x01\x00"), false, byte(replyLinkCheck))
	f.Add([]byte{0x04, 0x0E, 0x08, 0x01, 0xE0, 0xFC, 0x10, 0x47, 0x3E, 0xAB, 0x45}, false, byte(cmdCheckCRC))
	f.Add([]byte{0x04, 0x0E, 0xFF, 0x01, 0xE0, 0xFC, 0xF4, 0x05, 0x00, 0x0E, 0x00, 0x9F, 0xEB, 0x60, 0x15}, true, byte(opGetMID))
	f.Add([]byte{0x04, 0x0E, 0xFF, 0x01, 0xE0, 0xFC, 0xF4, 0x06, 0x00, 0x09, 0x06, 0x00, 0x00, 0x00, 0x00}, true, byte(opFlashRead4K))
	f.Add([]byte{0x04, 0x0E, 0x04, 0x99, 0x04, 0x0E}, false, byte(cmdCheckCRC))
	f.Add([]byte{0x04, 0x0E, 0xFF, 0x01, 0xE0, 0xFC, 0xF4, 0x02}, true, byte(opReadSR))
	f.Fuzz(func(t *testing.T, data []byte, long bool, code byte) {
		scan(t, data, long, code)

		// Round trip of a reply framed here.
		payload := data[:min(len(data), 200)]
		var frame []byte
		if long {
			if code == opGetMID && len(payload) == 3 {
				return // the ROM's GetMID length quirk: such a frame is one byte longer
			}
			frame = append([]byte{0x04, 0x0E, 0xFF, 0x01, 0xE0, 0xFC, 0xF4}, 0, 0)
			binary.LittleEndian.PutUint16(frame[7:], uint16(2+len(payload)))
			frame = append(append(frame, code, 0x00), payload...)
		} else {
			frame = append([]byte{0x04, 0x0E, byte(4 + len(payload)), 0x01, 0xE0, 0xFC, code}, payload...)
		}
		noise := bytes.ReplaceAll(data, []byte{0x04}, []byte{'.'})
		c := &conn{buf: append(noise, frame...)}
		var got reply
		for range len(c.buf) + 1 {
			r, consumed, ok := c.parse(long, code)
			if ok {
				got = r
				break
			}
			if consumed == 0 {
				t.Fatalf("reply framed after %d noise bytes not found: % X", len(noise), c.buf)
			}
			c.buf = c.buf[consumed:]
		}
		if got.long != long || got.code != code || got.status != 0 || !bytes.Equal(got.data, payload) {
			t.Fatalf("framed reply decoded as %+v, want data % X", got, payload)
		}
	})
}

// scan runs the scanner over data the way await does and checks its
// invariants.
func scan(t *testing.T, data []byte, long bool, code byte) {
	c := &conn{buf: append([]byte(nil), data...)}
	for range len(data) + 1 {
		before := len(c.buf)
		r, consumed, ok := c.parse(long, code)
		if consumed < 0 || consumed > before {
			t.Fatalf("consumed %d of %d bytes", consumed, before)
		}
		if ok {
			if consumed == 0 || r.long != long || r.code != code || len(r.data) > consumed {
				t.Fatalf("reply %+v after consuming %d bytes; wanted long=%v code 0x%02X", r, consumed, long, code)
			}
		} else if consumed == 0 {
			return // waits for more bytes
		}
		c.buf = c.buf[consumed:]
		if len(c.buf) == 0 {
			return
		}
	}
	t.Fatalf("no progress on % X", c.buf)
}

// TestLongReplyCutAfterItsLength: a read that ends right after a long
// reply's length field (a USB burst boundary) waits for the rest; the
// scanner used to read the op byte past the end and panic (found by
// FuzzReplyParser).
func TestLongReplyCutAfterItsLength(t *testing.T) {
	full := []byte{0x04, 0x0E, 0xFF, 0x01, 0xE0, 0xFC, 0xF4, 0x06, 0x00, 0x09, 0x06, 0x00, 0x00, 0x00, 0x00}
	for n := 9; n <= 10; n++ {
		c := &conn{buf: append([]byte(nil), full[:n]...)}
		if _, consumed, ok := c.parse(true, opFlashRead4K); ok || consumed != 0 {
			t.Fatalf("%d bytes: ok %v, consumed %d; want to wait for more", n, ok, consumed)
		}
		c.buf = append(c.buf, full[n:]...)
		if r, _, ok := c.parse(true, opFlashRead4K); !ok || r.status != 6 {
			t.Fatalf("%d bytes then the rest: %+v, %v", n, r, ok)
		}
	}
}
