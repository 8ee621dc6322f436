package esp8266

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/slip"
	"github.com/tuyaflash/tuyaflash/transport"
)

// link is the command layer: it frames requests, matches replies by opcode
// and checks status bytes. Its buffers are reused between commands.
type link struct {
	p    transport.Port
	r    *slip.Reader
	pkt  []byte
	wire []byte
}

func newLink(p transport.Port) *link {
	return &link{p: p, r: slip.NewReader(p)}
}

// flush drops whatever the port and the reader hold.
func (l *link) flush() {
	_ = l.p.ResetInputBuffer()
	l.r.Reset()
}

// send writes one request and returns the time its last byte leaves the
// wire (estimated from the baud rate), from which reply deadlines count.
func (l *link) send(op byte, data []byte, chk uint32) (time.Time, error) {
	return l.sendWire(l.encode(op, data, chk))
}

// encode returns a request as it goes on the wire: header, data, SLIP
// framing. The result is valid until the next encode or send.
func (l *link) encode(op byte, data []byte, chk uint32) []byte {
	l.pkt = append(l.pkt[:0], dirRequest, op)
	l.pkt = binary.LittleEndian.AppendUint16(l.pkt, uint16(len(data)))
	l.pkt = binary.LittleEndian.AppendUint32(l.pkt, chk)
	l.pkt = append(l.pkt, data...)
	l.wire = slip.Encode(l.wire[:0], l.pkt)
	return l.wire
}

// sendRaw writes payload as one SLIP frame without a command header (the
// READ_FLASH acknowledgements).
func (l *link) sendRaw(payload []byte) (time.Time, error) {
	l.wire = slip.Encode(l.wire[:0], payload)
	return l.sendWire(l.wire)
}

// sendWire writes an encoded frame and returns the time its last byte
// leaves the wire.
func (l *link) sendWire(w []byte) (time.Time, error) {
	start := time.Now()
	if err := transport.WriteAll(l.p, w); err != nil {
		return start, fmt.Errorf("write to the serial port: %w", err)
	}
	return start.Add(transport.WireTime(int64(len(w)), l.p.BaudRate())), nil
}

// replyError is a command whose reply did not come.
type replyError struct {
	op      byte
	timeout time.Duration
	err     error // the reader's error
	stray   int   // frames that did not match
}

func (e *replyError) Error() string {
	s := fmt.Sprintf("%s: no reply within %v", opName(e.op), e.timeout.Round(time.Millisecond))
	if e.stray > 0 {
		s += fmt.Sprintf(" (%d unrelated frames)", e.stray)
	}
	return s + ": " + e.err.Error()
}

func (e *replyError) Unwrap() error { return e.err }

// command sends a request and waits for the reply with the same opcode,
// skipping up to maxStrayReply other frames (the extra SYNC replies, a late
// reply) and garbled frames until the deadline. body aliases the reader's
// buffer and is valid until the next read.
func (l *link) command(op byte, data []byte, chk uint32, timeout time.Duration) (val uint32, body []byte, err error) {
	sent, err := l.send(op, data, chk)
	if err != nil {
		return 0, nil, err
	}
	return l.await(op, sent.Add(timeout), timeout)
}

// garbled reports a frame the line corrupted; the reader resynchronises on
// the next one.
func garbled(err error) bool {
	var esc *slip.EscapeError
	return errors.As(err, &esc) || errors.Is(err, slip.ErrFrameTooLong)
}

// frame reads the next intact frame, skipping garbled ones.
func (l *link) frame(deadline time.Time) ([]byte, error) {
	for {
		f, err := l.r.ReadFrame(deadline)
		if err == nil || !garbled(err) {
			return f, err
		}
	}
}

// await reads frames until the reply to op arrives.
func (l *link) await(op byte, deadline time.Time, timeout time.Duration) (uint32, []byte, error) {
	stray := 0
	var lastBad error
	for stray < maxStrayReply {
		f, err := l.r.ReadFrame(deadline)
		if err != nil {
			if garbled(err) {
				stray++
				lastBad = err
				continue
			}
			if errors.Is(err, transport.ErrTimeout) && lastBad != nil {
				err = fmt.Errorf("%w (and a garbled frame: %v)", err, lastBad)
			}
			return 0, nil, &replyError{op: op, timeout: timeout, err: err, stray: stray}
		}
		if len(f) < 8 || f[0] != dirResponse {
			stray++
			continue
		}
		size := int(binary.LittleEndian.Uint16(f[2:]))
		val := binary.LittleEndian.Uint32(f[4:])
		body := f[8:]
		if size < len(body) {
			body = body[:size]
		}
		if f[1] == op {
			return val, body, nil
		}
		if len(body) >= 2 && body[0] != 0 && body[1] == romInvalidMessage && f[1] != opSync {
			// The ROM rejects an opcode it lacks with a reply that does
			// not echo it (esptool UnsupportedCommandError); it repeats
			// the rejection, so drain those.
			l.drain(200 * time.Millisecond)
			return 0, nil, statusErr(op, body[0], body[1])
		}
		stray++
	}
	return 0, nil, &replyError{op: op, timeout: timeout, err: fmt.Errorf("%d frames without a matching reply: %w", stray, flasher.ErrProtocol)}
}

// drain reads and drops frames until the line is quiet for quiet.
func (l *link) drain(quiet time.Duration) {
	for {
		if _, err := l.r.ReadFrame(time.Now().Add(quiet)); errors.Is(err, transport.ErrTimeout) || errors.Is(err, transport.ErrClosed) {
			return
		}
	}
}

// check runs a command and checks its status bytes, which follow respLen
// bytes of reply data (esptool check_command). It returns the reply's value
// word and its respLen data bytes.
func (l *link) check(op byte, data []byte, chk uint32, respLen int, timeout time.Duration) (uint32, []byte, error) {
	val, body, err := l.command(op, data, chk, timeout)
	if err != nil {
		return 0, nil, err
	}
	if len(body) < respLen+statusLen {
		if len(body) >= 2 && body[0] != 0 {
			return 0, nil, statusErr(op, body[0], body[1])
		}
		return 0, nil, fmt.Errorf("%s: reply has %d data bytes, expected %d: %w", opName(op), len(body), respLen+statusLen, flasher.ErrProtocol)
	}
	if st := body[respLen]; st != 0 {
		return 0, nil, statusErr(op, st, body[respLen+1])
	}
	return val, body[:respLen], nil
}

// readReg reads a 32-bit register or memory word.
func (l *link) readReg(addr uint32) (uint32, error) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], addr)
	v, _, err := l.check(opReadReg, b[:], 0, 0, defaultTimeout)
	if err != nil {
		return 0, fmt.Errorf("read register 0x%08X: %w", addr, err)
	}
	return v, nil
}

// writeReg writes a 32-bit register (mask all ones, no delay, as esptool).
func (l *link) writeReg(addr, value uint32) error {
	var b [16]byte
	words(b[:0], addr, value, 0xFFFFFFFF, 0)
	if _, _, err := l.check(opWriteReg, b[:], 0, 0, defaultTimeout); err != nil {
		return fmt.Errorf("write register 0x%08X: %w", addr, err)
	}
	return nil
}
