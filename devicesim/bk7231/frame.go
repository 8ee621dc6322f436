package bksim

// Framing (reference §3; device side as bk_idk bl_tra_hcit.c):
//
//	host short: 01 E0 FC LL CC payload…            LL = 1 + len(payload)
//	host long : 01 E0 FC FF F4 Ll Lh OP params…    L  = 1 + len(params)
//	chip short: 04 0E LL 01 E0 FC CC data…         LL = 4 + len(data)
//	chip long : 04 0E FF 01 E0 FC F4 Ll Lh OP ST data…   L = 2 + len(data)

const (
	longCode = 0xF4
	// maxLongBody is the largest long-frame body the device buffers: the
	// ROM's receive buffer is 4200 bytes including F4 Ll Lh (bk_idk
	// Longtrx_pdu_buf). Longer announcements are treated as line noise.
	maxLongBody = 4200 - 3
)

// frame is one decoded host command.
type frame struct {
	long   bool
	code   byte   // short: command code; long: the byte after FF (F4)
	op     byte   // long: operation code
	params []byte // short: payload after the code; long: bytes after op
	length int    // declared LL (short) or L (long)
	// partial marks a long frame cut short by the idle timeout; params
	// holds what arrived.
	partial bool
}

type parseState int

const (
	psIdle parseState = iota // hunting for 01
	psE0
	psFC
	psLen
	psShort
	psLongCode
	psLongL1
	psLongL2
	psLong
)

// parser decodes the host byte stream one byte at a time, skipping anything
// that is not a frame, as the ROM's receive state machine does.
type parser struct {
	st    parseState
	need  int
	body  []byte
	code  byte
	lenLo byte
}

func (p *parser) reset() {
	p.st = psIdle
	p.body = p.body[:0]
}

// midFrame reports whether a frame has started but not ended.
func (p *parser) midFrame() bool { return p.st != psIdle }

// feed consumes one byte and returns a frame when one is complete.
func (p *parser) feed(b byte) *frame {
	switch p.st {
	case psIdle:
		if b == 0x01 {
			p.st = psE0
		}
	case psE0:
		switch b {
		case 0xE0:
			p.st = psFC
		case 0x01: // a new start byte: stay
		default:
			p.st = psIdle
		}
	case psFC:
		switch b {
		case 0xFC:
			p.st = psLen
		case 0x01:
			p.st = psE0
		default:
			p.st = psIdle
		}
	case psLen:
		switch b {
		case 0xFF:
			p.st = psLongCode
		case 0x00: // nothing to execute
			p.reset()
		default:
			p.need = int(b)
			p.body = p.body[:0]
			p.st = psShort
		}
	case psShort:
		p.body = append(p.body, b)
		if len(p.body) == p.need {
			f := &frame{code: p.body[0], params: append([]byte(nil), p.body[1:]...), length: p.need}
			p.reset()
			return f
		}
	case psLongCode:
		p.code = b
		p.st = psLongL1
	case psLongL1:
		p.lenLo = b
		p.st = psLongL2
	case psLongL2:
		n := int(p.lenLo) | int(b)<<8
		if n == 0 || n > maxLongBody {
			p.reset()
			return nil
		}
		p.need = n
		p.body = p.body[:0]
		p.st = psLong
	case psLong:
		p.body = append(p.body, b)
		if len(p.body) == p.need {
			f := &frame{long: true, code: p.code, op: p.body[0], params: append([]byte(nil), p.body[1:]...), length: p.need}
			p.reset()
			return f
		}
	}
	return nil
}

// expire ends a frame that stopped arriving. It returns the partial frame
// when it is a long frame whose operation code arrived (the ROM answers those
// with PACK_PAYLOAD_LACK), nil otherwise.
func (p *parser) expire() *frame {
	var f *frame
	if p.st == psLong && len(p.body) > 0 && p.code == longCode {
		f = &frame{long: true, code: p.code, op: p.body[0], params: append([]byte(nil), p.body[1:]...), length: p.need, partial: true}
	}
	p.reset()
	return f
}

// shortReply encodes a short chip→host frame.
func shortReply(code byte, data ...byte) []byte {
	out := make([]byte, 0, 7+len(data))
	out = append(out, 0x04, 0x0E, byte(4+len(data)), 0x01, 0xE0, 0xFC, code)
	return append(out, data...)
}

// longReply encodes a long chip→host frame with its status byte.
func longReply(op, status byte, data ...byte) []byte {
	n := 2 + len(data)
	out := make([]byte, 0, 9+n)
	out = append(out, 0x04, 0x0E, 0xFF, 0x01, 0xE0, 0xFC, longCode, byte(n), byte(n>>8), op, status)
	return append(out, data...)
}

// arg returns n parameter bytes from offset i; bytes the host did not send
// read as 0xFF, the ROM's cleared receive buffer (bk_idk clear_uart_buffer).
func arg(p []byte, i, n int) []byte {
	out := make([]byte, n)
	for k := range out {
		if i+k < len(p) {
			out[k] = p[i+k]
		} else {
			out[k] = 0xFF
		}
	}
	return out
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func put32(v uint32) []byte {
	return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
}
