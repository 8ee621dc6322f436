package esp8266

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
)

// STUB_INFO (tuyaflash's stub, stub/esp8266 README): the reply's value is
// stubInfoMagic ("TFS1"), its data six little-endian words: the window,
// the feature bits, and receive statistics.
const (
	stubInfoMagic   = 0x31534654
	stubInfoLen     = 24
	stubInfoTimeout = 500 * time.Millisecond
	// featPipeline: the stub receives while it works, answers a data
	// packet after its work with the packet's sequence number as value.
	featPipeline = 1 << 0
	// maxWindow bounds what a stub may claim.
	maxWindow = 1 << 20
)

// stubCaps is what the running stub says it can do. The zero value — any
// stub that does not answer STUB_INFO: esptool's, an older tuyaflash stub,
// most --stub files — means one request at a time, as esptool sends them.
type stubCaps struct {
	// window is how many wire bytes of requests may wait in the stub
	// beyond the one it is working on; 0: the next request goes out only
	// after the previous reply.
	window int
	// seq: the reply to a data packet carries its sequence number.
	seq bool
}

// stubCapabilities asks the running stub with STUB_INFO, once per stub
// session. The rule for a write: more than one request is in flight only
// when the stub itself announced a window (a stub that cannot receive
// while it erases and programs would lose the second request), and then
// never more wire bytes than the window beyond the request it works on.
func (d *Device) stubCapabilities() stubCaps {
	if d.caps != nil {
		return *d.caps
	}
	var c stubCaps
	var req [4]byte
	val, body, err := d.l.check(opStubInfo, req[:], 0, stubInfoLen, stubInfoTimeout)
	if err == nil && val == stubInfoMagic {
		window := binary.LittleEndian.Uint32(body)
		feat := binary.LittleEndian.Uint32(body[4:])
		if feat&featPipeline != 0 && window <= maxWindow {
			c = stubCaps{window: int(window), seq: true}
		}
	}
	d.caps = &c
	return c
}

// packetStream is one write session's packets after its BEGIN: the
// FLASH_DATA or FLASH_DEFL_DATA payloads, then the END (flag 1: stay in
// the stub).
type packetStream struct {
	op, endOp byte
	blocks    [][]byte
	// work is how many bytes of flash each packet makes the stub write;
	// its reply may wait for that (and, from a stub that answers before
	// the work, for the previous packet's).
	work []int
	// done is called when packet i is acknowledged, in order.
	done func(i int)
}

// timeout is how long packet i's reply may take once the stub has it
// (i == len(blocks): the END).
func (s *packetStream) timeout(i int) time.Duration {
	n := 0
	if i > 0 {
		n += s.work[i-1]
	}
	if i < len(s.work) {
		n += s.work[i]
	}
	return deflBlockTimeout(n)
}

// streamError is the failure of one packet of a stream.
type streamError struct {
	packet int // index in blocks; len(blocks) for the END
	err    error
}

func (e *streamError) Error() string { return e.err.Error() }
func (e *streamError) Unwrap() error { return e.err }

// sendStream sends the packets of s and checks their replies in order,
// keeping as many packets in flight as the stub's window allows (one when
// it announced none). A packet the stub rejects for its checksum (it was
// dropped unprocessed) is sent again, up to twice, with those after it;
// any other failure ends the stream as a *streamError naming the packet
// whose reply reported it.
func (d *Device) sendStream(ctx context.Context, s *packetStream) (retries int, err error) {
	caps := d.stubCapabilities()
	total := len(s.blocks) + 1
	type pending struct {
		i, wire int
		sent    time.Time // when its last byte left the wire
	}
	var q []pending
	fits := func(wire int) bool {
		if len(q) == 0 {
			return true
		}
		waiting := wire // bytes in the stub's buffer beyond the packet it works on
		for _, p := range q[1:] {
			waiting += p.wire
		}
		return caps.window > 0 && waiting <= caps.window
	}
	encoded, next := -1, 0
	var wire []byte
	tries := make([]int, len(s.blocks))
	last := time.Now() // when the previous reply arrived
	for next < total || len(q) > 0 {
		for next < total {
			if encoded != next {
				wire = d.encodePacket(s, next)
				encoded = next
			}
			if !fits(len(wire)) {
				break
			}
			if err := ctx.Err(); err != nil {
				return retries, &streamError{packet: next, err: err}
			}
			sent, err := d.l.sendWire(wire)
			if err != nil {
				return retries, &streamError{packet: next, err: err}
			}
			q = append(q, pending{next, len(wire), sent})
			next++
		}
		p := q[0]
		q = q[1:]
		op := s.op
		if p.i == len(s.blocks) {
			op = s.endOp
		}
		timeout := s.timeout(p.i)
		from := p.sent
		if last.After(from) {
			from = last // the stub started on it when it answered the previous one
		}
		val, err := d.awaitStatus(op, from.Add(timeout), timeout)
		last = time.Now()
		if err == nil && caps.seq && p.i < len(s.blocks) && val != uint32(p.i) {
			err = fmt.Errorf("%s: the reply answers packet %d, not %d (a reply was lost on the line): %w", opName(op), val, p.i, flasher.ErrProtocol)
		}
		if err == nil {
			s.done(p.i)
			continue
		}
		// The packets still in flight are answered too (the stub repeats
		// a session's error, or rejects them as out of sequence): collect
		// those replies before anything else goes out.
		for _, r := range q {
			rop := s.op
			if r.i == len(s.blocks) {
				rop = s.endOp
			}
			t := s.timeout(r.i)
			_, _ = d.awaitStatus(rop, time.Now().Add(t), t)
		}
		q = q[:0]
		if p.i < len(s.blocks) && d.retryable(err) && tries[p.i] < 2 {
			tries[p.i]++
			retries++
			d.l.flush()
			next = p.i
			continue
		}
		return retries, &streamError{packet: p.i, err: err}
	}
	return retries, nil
}

// encodePacket returns packet i of s as it goes on the wire.
func (d *Device) encodePacket(s *packetStream, i int) []byte {
	if i == len(s.blocks) {
		var end [4]byte
		return d.l.encode(s.endOp, words(end[:0], 1), 0) // 1: stay in the stub
	}
	blk := s.blocks[i]
	d.buf = words(d.buf[:0], uint32(len(blk)), uint32(i), 0, 0)
	d.buf = append(d.buf, blk...)
	return d.l.encode(s.op, d.buf, checksum(blk))
}

// awaitStatus reads the reply to op, checks its status bytes and returns
// its value word.
func (d *Device) awaitStatus(op byte, deadline time.Time, timeout time.Duration) (uint32, error) {
	val, body, err := d.l.await(op, deadline, timeout)
	if err != nil {
		return 0, err
	}
	if len(body) < statusLen {
		return 0, fmt.Errorf("%s: reply has %d data bytes, expected %d: %w", opName(op), len(body), statusLen, flasher.ErrProtocol)
	}
	if body[0] != 0 {
		return 0, statusErr(op, body[0], body[1])
	}
	return val, nil
}
