package esp8266

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/tuyaflash/tuyaflash/slip"
	"github.com/tuyaflash/tuyaflash/transport"
)

// fakePort is a scripted chip for transcript tests: every SLIP frame the
// host writes goes to handle, whose reply payloads are queued for the
// host's reads at once. Reads on an empty queue wait out the read timeout
// (instantly inside a synctest bubble). It records everything.
type fakePort struct {
	mu      sync.Mutex
	handle  func(f []byte) [][]byte
	in      []byte // queued for the host
	out     []byte // written by the host, not yet a whole frame
	timeout time.Duration
	baud    int
	junk    []byte   // raw bytes queued after every host frame
	modem   bool     // DTR/RTS available
	lines   []string // "DTR=1", "RTS=0", in order
	wire    []byte   // every byte the host wrote
	frames  [][]byte // every frame the host wrote
	bauds   []int    // every SetBaudRate
}

func newFake(handle func(f []byte) [][]byte) *fakePort {
	return &fakePort{handle: handle, baud: 115200, timeout: transport.NoTimeout}
}

func (p *fakePort) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wire = append(p.wire, b...)
	p.out = append(p.out, b...)
	for {
		f, n, err := slip.Decode(nil, p.out)
		if errors.Is(err, slip.ErrIncomplete) {
			break
		}
		p.out = p.out[n:]
		if err != nil {
			continue
		}
		p.frames = append(p.frames, f)
		p.in = append(p.in, p.junk...)
		if p.handle != nil {
			for _, r := range p.handle(f) {
				p.in = slip.Encode(p.in, r)
			}
		}
	}
	return len(b), nil
}

// push queues raw bytes for the host.
func (p *fakePort) push(b []byte) {
	p.mu.Lock()
	p.in = append(p.in, b...)
	p.mu.Unlock()
}

func (p *fakePort) Read(b []byte) (int, error) {
	p.mu.Lock()
	if len(p.in) > 0 {
		n := copy(b, p.in)
		p.in = p.in[n:]
		p.mu.Unlock()
		return n, nil
	}
	t := p.timeout
	p.mu.Unlock()
	if t < 0 {
		t = time.Hour
	}
	time.Sleep(t)
	return 0, nil
}

func (p *fakePort) Close() error                         { return nil }
func (p *fakePort) SetReadTimeout(d time.Duration) error { p.timeout = d; return nil }
func (p *fakePort) BaudRate() int                        { return p.baud }
func (p *fakePort) Drain() error                         { return nil }

func (p *fakePort) SetBaudRate(b int) error {
	p.baud = b
	p.bauds = append(p.bauds, b)
	return nil
}

func (p *fakePort) ResetInputBuffer() error {
	p.mu.Lock()
	p.in = p.in[:0]
	p.mu.Unlock()
	return nil
}

func (p *fakePort) line(name string, on bool) error {
	if !p.modem {
		return transport.ErrNoModemControl
	}
	v := "0"
	if on {
		v = "1"
	}
	p.lines = append(p.lines, name+"="+v)
	return nil
}

func (p *fakePort) SetDTR(on bool) error { return p.line("DTR", on) }
func (p *fakePort) SetRTS(on bool) error { return p.line("RTS", on) }

// ops lists the opcodes of the command frames the host sent.
func (p *fakePort) ops() []byte {
	var ops []byte
	for _, f := range p.frames {
		if len(f) >= 8 && f[0] == 0 {
			ops = append(ops, f[1])
		}
	}
	return ops
}

// requests returns the data of every command frame with opcode op.
func (p *fakePort) requests(op byte) [][]byte {
	var r [][]byte
	for _, f := range p.frames {
		if len(f) >= 8 && f[0] == 0 && f[1] == op {
			r = append(r, f[8:])
		}
	}
	return r
}

// reply builds a response payload: header, data, then the status bytes.
func reply(op byte, val uint32, data []byte, status ...byte) []byte {
	if len(status) == 0 {
		status = []byte{0, 0}
	}
	b := []byte{0x01, op}
	b = binary.LittleEndian.AppendUint16(b, uint16(len(data)+len(status)))
	b = binary.LittleEndian.AppendUint32(b, val)
	b = append(b, data...)
	return append(b, status...)
}

// romChip is a scripted ESP8266 ROM (or stub, with stub set) with a
// register file and a flash JEDEC id behind the SPI user command.
type romChip struct {
	stub    bool
	regs    map[uint32]uint32
	flashID uint32
	// override, when it returns ok, answers a frame first.
	override func(f []byte) (replies [][]byte, ok bool)
}

func newROMChip(efuse [4]uint32, flashID uint32) *romChip {
	c := &romChip{regs: map[uint32]uint32{
		regChipMagic:  magicESP8266,
		regUARTClkDiv: 0x1C4, // the esptool#397 trace: 452 → 26 MHz at 115200
		spiUser:       0x80000064,
		spiUser2:      0x70000035,
	}, flashID: flashID}
	for i, a := range efuseRegs {
		c.regs[a] = efuse[i]
	}
	return c
}

func (c *romChip) handle(f []byte) [][]byte {
	if c.override != nil {
		if r, ok := c.override(f); ok {
			return r
		}
	}
	if len(f) < 8 || f[0] != 0 {
		return nil
	}
	op, data := f[1], f[8:]
	switch op {
	case opSync:
		val := uint32(0x20120707)
		if c.stub {
			val = 0
		}
		r := make([][]byte, 8)
		for i := range r {
			r[i] = reply(opSync, val, nil)
		}
		return r
	case opReadReg:
		return [][]byte{reply(op, c.regs[binary.LittleEndian.Uint32(data)], nil)}
	case opWriteReg:
		addr, val := binary.LittleEndian.Uint32(data), binary.LittleEndian.Uint32(data[4:])
		c.regs[addr] = val
		if addr == spiCmd && val&spiCmdUsr != 0 && c.regs[spiUser2]&0xFF == cmdRDID {
			c.regs[spiW0] = c.flashID
			c.regs[spiCmd] = 0
		}
		return [][]byte{reply(op, 0, nil)}
	case opFlashBegin, opFlashData, opMemBegin, opMemData, opSPISetParams, opFlashDeflBegin, opFlashDeflData, opFlashDeflEnd, opFlashEnd, opChangeBaudrate, opEraseRegion:
		if !c.stub && op >= opSPISetParams {
			return [][]byte{reply(op, 0, nil, 1, romInvalidMessage)}
		}
		return [][]byte{reply(op, 0, nil)}
	case opMemEnd:
		c.stub = true
		return [][]byte{reply(op, 0, nil), []byte("OHAI")}
	}
	if c.stub {
		return [][]byte{reply(op, 0, nil, 0xC3, 0)}
	}
	return [][]byte{reply(op, 0, nil, 1, romInvalidMessage)}
}

// efuseFor builds eFuse words that carry mac the way esptool's read_mac
// decodes them (OUI in word 3), with the ESP8285 bit when asked.
func efuseFor(mac [6]byte, esp8285 bool) [4]uint32 {
	var e [4]uint32
	e[0] = uint32(mac[5]) << 24
	e[1] = uint32(mac[3])<<8 | uint32(mac[4])
	e[3] = uint32(mac[0])<<16 | uint32(mac[1])<<8 | uint32(mac[2])
	if esp8285 {
		e[0] |= 1 << 4 // plus !r3_25, !r3_26, !r3_27: 1 MiB embedded
	}
	return e
}

// inflate undoes zlib compression, as the stub does.
func inflate(b []byte) ([]byte, error) {
	zr, err := zlib.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}
