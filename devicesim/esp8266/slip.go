package espsim

// SLIP framing as the chip side sees it (reference §3), written for the
// simulator alone so that the client's codec is not tested against itself.

const (
	slipEnd    = 0xC0
	slipEsc    = 0xDB
	slipEscEnd = 0xDC
	slipEscEsc = 0xDD
)

// appendSLIP appends payload to dst as one SLIP frame: 0xC0, the payload
// with 0xDB → DB DD and 0xC0 → DB DC, 0xC0.
func appendSLIP(dst, payload []byte) []byte {
	dst = append(dst, slipEnd)
	for _, b := range payload {
		switch b {
		case slipEnd:
			dst = append(dst, slipEsc, slipEscEnd)
		case slipEsc:
			dst = append(dst, slipEsc, slipEscEsc)
		default:
			dst = append(dst, b)
		}
	}
	return append(dst, slipEnd)
}

// rxFrame is one frame received from the host. Oversized frames keep
// their first max bytes and have over set.
type rxFrame struct {
	data []byte
	over bool
}

// slipDecoder turns the received byte stream into frames. Outside a frame
// every byte but 0xC0 is ignored (boot noise, garbled bytes); 0xC0 opens
// a frame and the next 0xC0 closes it, so "C0 C0" between two frames is
// harmless. A frame with an invalid escape is dropped.
type slipDecoder struct {
	max    int
	junk   int // bytes seen outside any frame since the last clearJunk
	in     bool
	esc    bool
	bad    bool
	over   bool
	buf    []byte
	frames []rxFrame
}

func (d *slipDecoder) reset() {
	d.in, d.esc, d.bad, d.over = false, false, false, false
	d.buf = d.buf[:0]
	d.frames = nil
}

func (d *slipDecoder) feed(p []byte) {
	for _, b := range p {
		if b == slipEnd {
			if d.in && len(d.buf) > 0 {
				if !d.bad && !d.esc {
					d.frames = append(d.frames, rxFrame{data: append([]byte(nil), d.buf...), over: d.over})
				}
				d.in = false
			} else {
				d.in = true
			}
			d.esc, d.bad, d.over = false, false, false
			d.buf = d.buf[:0]
			continue
		}
		if !d.in {
			d.junk++
			continue
		}
		if d.esc {
			d.esc = false
			switch b {
			case slipEscEnd:
				b = slipEnd
			case slipEscEsc:
				b = slipEsc
			default:
				d.bad = true
				continue
			}
		} else if b == slipEsc {
			d.esc = true
			continue
		}
		if d.max > 0 && len(d.buf) >= d.max {
			d.over = true
			continue
		}
		d.buf = append(d.buf, b)
	}
}

// next pops the oldest complete frame.
func (d *slipDecoder) next() (rxFrame, bool) {
	if len(d.frames) == 0 {
		return rxFrame{}, false
	}
	f := d.frames[0]
	d.frames = d.frames[1:]
	return f, true
}
