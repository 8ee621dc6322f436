package bk7231

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/transport"
)

// Command codes (§4). Short and long commands share some codes: 0x0E short
// is Reboot, long is GetMID; 0x0F short is SetBaudRate, long is FlashErase.
const (
	cmdLinkCheck   = 0x00
	cmdWriteReg    = 0x01
	cmdReadReg     = 0x03
	cmdReboot      = 0x0E
	cmdSetBaud     = 0x0F
	cmdCheckCRC    = 0x10
	cmdBootVersion = 0x11

	opFlashWrite   = 0x06
	opFlashWrite4K = 0x07
	opFlashRead4K  = 0x09
	opFlashErase4K = 0x0B
	opReadSR       = 0x0C
	opWriteSR      = 0x0D
	opGetMID       = 0x0E
	opFlashErase   = 0x0F

	eraseCmd4K  = 0x20
	eraseCmd64K = 0xD8

	replyLinkCheck = 0x01 // LinkCheck is answered with code 0x01
)

// statusMeaning names the status byte of long replies (§3.3).
var statusMeaning = map[byte]string{
	1:  "flash busy",
	2:  "SPI timeout",
	3:  "flash operation timeout",
	4:  "packet length error",
	5:  "packet payload missing",
	6:  "parameter error",
	7:  "unknown command",
	10: "protected area",
}

// shortFrame builds 01 E0 FC LL CC payload.
func shortFrame(code byte, payload ...byte) []byte {
	b := make([]byte, 0, 5+len(payload))
	b = append(b, 0x01, 0xE0, 0xFC, byte(1+len(payload)), code)
	return append(b, payload...)
}

// longFrame builds 01 E0 FC FF F4 Ll Lh OP params.
func longFrame(op byte, params ...[]byte) []byte {
	n := 0
	for _, p := range params {
		n += len(p)
	}
	b := make([]byte, 0, 8+n)
	b = append(b, 0x01, 0xE0, 0xFC, 0xFF, 0xF4)
	b = binary.LittleEndian.AppendUint16(b, uint16(1+n))
	b = append(b, op)
	for _, p := range params {
		b = append(b, p...)
	}
	return b
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// interByteGap is how long the line may stay silent inside a reply before
// the reply is given up as incomplete. USB adapters deliver in bursts a few
// milliseconds apart (FTDI's latency timer defaults to 16 ms).
const interByteGap = 100 * time.Millisecond

// conn frames commands and finds their replies in the byte stream.
type conn struct {
	port transport.Port
	buf  []byte // received, not yet consumed
	tmp  []byte
}

func newConn(p transport.Port) *conn {
	return &conn{port: p, buf: make([]byte, 0, 16384), tmp: make([]byte, 8192)}
}

// send writes a frame.
func (c *conn) send(frame []byte) error {
	return transport.WriteAll(c.port, frame)
}

// fill reads more bytes into c.buf, waiting until deadline.
func (c *conn) fill(deadline time.Time) error {
	left := time.Until(deadline)
	if left <= 0 {
		return transport.ErrTimeout
	}
	if err := c.port.SetReadTimeout(left); err != nil {
		return err
	}
	n, err := c.port.Read(c.tmp)
	c.buf = append(c.buf, c.tmp[:n]...)
	if err != nil {
		return err
	}
	if n == 0 {
		return transport.ErrTimeout
	}
	return nil
}

// drop discards everything buffered and whatever arrives until the line is
// quiet for quiet.
func (c *conn) drop(quiet time.Duration) {
	c.buf = c.buf[:0]
	transport.Discard(c.port, quiet, 500*time.Millisecond)
}

var (
	hciPrefix  = []byte{0x04, 0x0E}
	beken      = []byte{0x01, 0xE0, 0xFC}
	longBeken  = []byte{0x01, 0xE0, 0xFC, 0xF4}
	errNoReply = fmt.Errorf("no reply: %w", transport.ErrTimeout)
)

// reply is a decoded chip reply. For long replies status holds the status
// byte and data what follows it; for short replies data follows the code.
type reply struct {
	long   bool
	code   byte
	status byte
	data   []byte
}

// await scans the stream for the reply with the given kind and code,
// discarding boot noise, stale LinkCheck replies and frames of other
// commands (§3.2). The returned data aliases an internal buffer until the
// next call.
func (c *conn) await(long bool, code byte, deadline time.Time) (reply, error) {
	return c.awaitEarly(long, code, deadline, nil)
}

// earlyTail is how close to its end a reply must be for awaitEarly to send
// the next request: less than one USB packet, the part an adapter holds
// back until its latency timer fires.
const earlyTail = 64

// awaitEarly is await for a reply that another request follows: next sends
// that request as soon as the chip has sent the reply's last byte, not when
// the adapter finally hands the reply's tail over (up to 16 ms later on an
// FTDI bridge with its default latency timer). The chip still gets one
// command at a time: the missing bytes' wire time is waited out first,
// counted from when the bytes before them had already arrived. next is
// called once, and only when the reply is on its way; nil skips it.
func (c *conn) awaitEarly(long bool, code byte, deadline time.Time, next func() error) (reply, error) {
	for {
		if missing, ok := c.partial(long, code); next != nil && ok && missing > 0 && missing <= earlyTail {
			time.Sleep(transport.WireTime(int64(missing+2), c.port.BaudRate()) + 50*time.Microsecond)
			if err := next(); err != nil {
				return reply{}, err
			}
			next = nil
		}
		r, consumed, ok := c.parse(long, code)
		if ok {
			// Keep the reply valid by copying it before compacting.
			r.data = append([]byte(nil), r.data...)
			c.buf = c.buf[:copy(c.buf, c.buf[consumed:])]
			if next != nil {
				return r, next()
			}
			return r, nil
		}
		if consumed > 0 {
			c.buf = c.buf[:copy(c.buf, c.buf[consumed:])]
		}
		c.pace(long, code)
		// Once a frame has started, a silent line means bytes were lost:
		// give up early instead of waiting for the whole timeout.
		wait := deadline
		if len(c.buf) > 0 {
			if gap := time.Now().Add(interByteGap); gap.Before(wait) {
				wait = gap
			}
		}
		if err := c.fill(wait); err != nil {
			if err == transport.ErrTimeout {
				if len(c.buf) > 0 {
					return reply{}, fmt.Errorf("incomplete or unexpected reply (%d bytes: % X): %w", len(c.buf), head(c.buf, 16), transport.ErrTimeout)
				}
				return reply{}, errNoReply
			}
			return reply{}, err
		}
	}
}

// batchMax bounds how many bytes pace lets arrive unread: half the
// smallest host receive buffer tuyaflash meets (4096 bytes, §2.4).
const batchMax = 2048

// pace waits, before the next read, while the bulk of a long reply that has
// started is still on the wire: a reader that takes every USB packet as it
// comes wakes up 130 times for a 4 KiB reply; one that waits for most of
// it wakes up a few times (CPU per MiB). The tail is read as it arrives.
func (c *conn) pace(long bool, code byte) {
	missing, ok := c.partial(long, code)
	if !ok || missing <= 2*earlyTail {
		return
	}
	n := min(missing-earlyTail, batchMax)
	time.Sleep(transport.WireTime(int64(n), c.port.BaudRate()))
}

// partial reports how many bytes are still missing from a long reply with
// opcode code that has started at the front of the buffer (after the noise
// parse would drop); ok is false when no such reply has started.
func (c *conn) partial(long bool, code byte) (missing int, ok bool) {
	if !long {
		return 0, false
	}
	b := c.buf
	i := bytes.Index(b, hciPrefix)
	if i < 0 || len(b)-i < 10 {
		return 0, false
	}
	rest := b[i:]
	if rest[2] != 0xFF || !bytes.Equal(rest[3:7], longBeken) || rest[9] != code {
		return 0, false
	}
	total := 9 + int(binary.LittleEndian.Uint16(rest[7:9]))
	return total - len(rest), true
}

func head(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// parse looks for a complete wanted frame in c.buf. consumed is how many
// leading bytes can be dropped (noise and unwanted frames).
func (c *conn) parse(long bool, code byte) (r reply, consumed int, ok bool) {
	b := c.buf
	pos := 0
	for {
		i := bytes.Index(b[pos:], hciPrefix)
		if i < 0 {
			// Keep a trailing 0x04 that may start a prefix.
			if len(b) > 0 && b[len(b)-1] == 0x04 {
				return r, len(b) - 1, false
			}
			return r, len(b), false
		}
		pos += i
		rest := b[pos:]
		if len(rest) < 3 {
			return r, pos, false
		}
		if rest[2] == 0xFF {
			if len(rest) < 9 {
				return r, pos, false
			}
			if !bytes.Equal(rest[3:7], longBeken) {
				pos += 2
				continue
			}
			l := int(binary.LittleEndian.Uint16(rest[7:9]))
			if l < 2 {
				pos += 2
				continue
			}
			if len(rest) < 10 {
				return r, pos, false // the opcode has not arrived yet
			}
			total := 9 + l
			op := rest[9]
			// Some ROMs announce 5 instead of 6 bytes for GetMID
			// while sending 6 (§4 "FIX BootROM Bug").
			if op == opGetMID && l == 5 {
				total++
			}
			if len(rest) < total {
				return r, pos, false
			}
			if long && op == code {
				return reply{long: true, code: op, status: rest[10], data: rest[11:total]}, pos + total, true
			}
			pos += total
			continue
		}
		ll := int(rest[2])
		if ll < 4 || len(rest) >= 6 && !bytes.Equal(rest[3:6], beken) {
			pos += 2
			continue
		}
		total := 3 + ll
		if len(rest) < total {
			return r, pos, false
		}
		if !long && rest[6] == code {
			return reply{code: rest[6], data: rest[7:total]}, pos + total, true
		}
		pos += total
	}
}

// shortCmd sends a short command and waits for its reply.
func (c *conn) shortCmd(name string, code byte, payload []byte, timeout time.Duration) (reply, error) {
	if err := c.send(shortFrame(code, payload...)); err != nil {
		return reply{}, fmt.Errorf("%s: %w", name, err)
	}
	want := code
	if code == cmdLinkCheck {
		want = replyLinkCheck
	}
	r, err := c.await(false, want, time.Now().Add(timeout))
	if err != nil {
		return r, fmt.Errorf("%s: %w", name, err)
	}
	return r, nil
}

// longCmd sends a long command, waits for its reply and checks the status.
func (c *conn) longCmd(name string, op byte, timeout time.Duration, params ...[]byte) (reply, error) {
	if err := c.send(longFrame(op, params...)); err != nil {
		return reply{}, fmt.Errorf("%s: %w", name, err)
	}
	r, err := c.await(true, op, time.Now().Add(timeout))
	if err != nil {
		return r, fmt.Errorf("%s: %w", name, err)
	}
	if r.status != 0 {
		return r, &flasher.StatusError{Command: name, Status: r.status, Meaning: statusMeaning[r.status]}
	}
	return r, nil
}
