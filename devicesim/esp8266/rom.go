package espsim

import (
	"bytes"
	"fmt"
	"time"
)

// request is a parsed command frame.
type request struct {
	op   byte
	chk  uint32
	data []byte
}

// parseFrame splits a command frame; bad reports a frame whose size field
// does not match its length or that was too long to receive.
func parseFrame(f rxFrame) (r request, dir byte, bad bool) {
	b := f.data
	size := int(b[2]) | int(b[3])<<8
	r = request{op: b[1], chk: getLE32(b[4:8]), data: b[8:]}
	return r, b[0], f.over || size != len(r.data)
}

// romReply sends a ROM response: value, data, then [0, 0] or [1, code].
func (c *conn) romReply(op byte, value uint32, code byte, note string) error {
	st := [2]byte{}
	result := "ok"
	if code != 0 {
		st = [2]byte{1, code}
		result = fmt.Sprintf("error 0x%02X", code)
	}
	c.logf("rom", fmt.Sprintf("%s %s -> %s", opName(op), note, result))
	return c.respond(appendSLIP(nil, response(op, value, nil, st)))
}

// romFrame handles one frame in the ROM serial loader (reference §5).
func (c *conn) romFrame(f rxFrame) error {
	if len(f.data) < 8 {
		return nil
	}
	r, dir, bad := parseFrame(f)
	if dir != 0x00 {
		return nil // not a request: the ROM waits for the next one
	}
	if bad || len(r.data) > romMaxData {
		return c.romReply(r.op, 0, romErrMsg, fmt.Sprintf("malformed frame (%d data bytes)", len(r.data)))
	}
	switch r.op {
	case opSync:
		return c.romSync(r)
	case opReadReg:
		if len(r.data) != 4 {
			return c.romReply(r.op, 0, romErrMsg, "bad length")
		}
		addr := getLE32(r.data)
		v := c.d.readReg(addr)
		return c.romReply(r.op, v, 0, fmt.Sprintf("0x%08X = 0x%08X", addr, v))
	case opWriteReg:
		if len(r.data) != 16 {
			return c.romReply(r.op, 0, romErrMsg, "bad length")
		}
		if err := c.applyWriteReg(r.data); err != nil {
			return err
		}
		return c.romReply(r.op, 0, 0, fmt.Sprintf("0x%08X", getLE32(r.data)))
	case opFlashBegin:
		return c.romFlashBegin(r)
	case opFlashData:
		return c.romFlashData(r)
	case opFlashEnd:
		return c.romFlashEnd(r)
	case opMemBegin:
		if len(r.data) != 16 {
			return c.romReply(r.op, 0, romErrMsg, "bad length")
		}
		s := &c.d.sess
		size, n, bs, addr := getLE32(r.data), getLE32(r.data[4:]), getLE32(r.data[8:]), getLE32(r.data[12:])
		s.mem = memWrite{active: true, size: size, blockSize: bs, addr: addr, remaining: size}
		s.announced = append(s.announced, span{addr, size})
		return c.romReply(r.op, 0, 0, fmt.Sprintf("size=0x%X blocks=%d block=0x%X addr=0x%08X", size, n, bs, addr))
	case opMemData:
		return c.romMemData(r)
	case opMemEnd:
		return c.romMemEnd(r)
	case opIdentify:
		if ok, err := c.identify(r, "rom"); ok || err != nil {
			return err
		}
	}
	return c.romReply(r.op, 0, romErrMsg, "not a ROM loader command")
}

func (c *conn) romSync(r request) error {
	if !bytes.Equal(r.data, syncPayload) {
		return c.romReply(r.op, 0, romErrMsg, "bad sync pattern")
	}
	c.logf("rom", "SYNC -> 8 replies")
	p := appendSLIP(nil, response(opSync, syncValueROM, nil, [2]byte{}))
	return c.respond(bytes.Repeat(p, 8))
}

// applyWriteReg runs one 16-byte WRITE_REG entry: delay_us, then the
// masked write.
func (c *conn) applyWriteReg(e []byte) error {
	addr, value, mask, delay := getLE32(e), getLE32(e[4:]), getLE32(e[8:]), getLE32(e[12:])
	if err := c.sleep(time.Duration(delay) * time.Microsecond); err != nil {
		return err
	}
	c.d.writeReg(addr, value, mask)
	return nil
}

// romEraseSectors is the ROM's SPIEraseArea with the erase-size bug of
// reference §8.1 (esptool#33): it erases the head sectors up to the next
// 64 KiB boundary one by one and then the full requested count again,
// i.e. N + head sectors from the start sector, where head = min(16 -
// start%16, N).
func romEraseSectors(offset, size uint32) (first, head, n uint32) {
	n = (size + sectorSize - 1) / sectorSize
	first = offset / sectorSize
	head = min(16-first%16, n)
	return first, head, n
}

func (c *conn) romFlashBegin(r request) error {
	if len(r.data) != 16 {
		// ESP8266 ROM takes 4 parameters; 20 bytes is error 0x05 (§5).
		return c.romReply(r.op, 0, romErrMsg, fmt.Sprintf("%d-byte FLASH_BEGIN", len(r.data)))
	}
	eraseSize, n, bs, off := getLE32(r.data), getLE32(r.data[4:]), getLE32(r.data[8:]), getLE32(r.data[12:])
	d := c.d
	d.mu.Lock()
	d.spiAttached = true
	d.wrote = d.wrote || eraseSize > 0 || n > 0
	d.mu.Unlock()
	first, head, rest := romEraseSectors(off, eraseSize)
	lim := uint32(len(d.flash) / sectorSize)
	head = min(head, lim-min(first, lim))
	rest = min(rest, lim-min(first+head, lim))
	count := head + rest
	d.sess.fw = flashWrite{active: true, numBlocks: n, blockSize: bs, offset: off}
	for i := range head {
		if err := c.eraseUnit((first+i)*sectorSize, false); err != nil {
			return err
		}
	}
	if err := c.eraseSectors(first+head, rest); err != nil {
		return err
	}
	return c.romReply(r.op, 0, 0, fmt.Sprintf("erase_size=0x%X blocks=%d block=0x%X offset=0x%X: erased %d sectors from 0x%X", eraseSize, n, bs, off, count, first*sectorSize))
}

// dataBlock checks a *_DATA payload: `len, seq, 0, 0` then len bytes.
func dataBlock(r request) (seq uint32, payload []byte, ok bool) {
	if len(r.data) < 16 {
		return 0, nil, false
	}
	n, seq := getLE32(r.data), getLE32(r.data[4:])
	payload = r.data[16:]
	return seq, payload, int(n) == len(payload)
}

func (c *conn) romFlashData(r request) error {
	seq, payload, ok := dataBlock(r)
	if !ok {
		return c.romReply(r.op, 0, romErrMsg, "length field does not match the data")
	}
	if xorChecksum(payload) != byte(r.chk) {
		return c.romReply(r.op, 0, romErrChecksum, fmt.Sprintf("seq=%d checksum 0x%02X, data gives 0x%02X", seq, byte(r.chk), xorChecksum(payload)))
	}
	fw := &c.d.sess.fw
	if !fw.active {
		return c.romReply(r.op, 0, romErrParam, "no FLASH_BEGIN")
	}
	if seq > fw.nextSeq {
		return c.romReply(r.op, 0, romErrParam, fmt.Sprintf("seq=%d, expected %d", seq, fw.nextSeq))
	}
	addr := fw.offset + seq*fw.blockSize
	if uint64(addr)+uint64(len(payload)) > maxFlashSize {
		return c.romReply(r.op, 0, romErrParam, fmt.Sprintf("seq=%d beyond 16 MiB", seq))
	}
	good, err := c.program(addr, payload)
	if err != nil {
		return err
	}
	fw.nextSeq = max(fw.nextSeq, seq+1)
	if !good {
		return c.romReply(r.op, 0, romErrWrite, fmt.Sprintf("seq=%d at 0x%X: read-back differs", seq, addr))
	}
	return c.romReply(r.op, 0, 0, fmt.Sprintf("seq=%d %d bytes at 0x%X", seq, len(payload), addr))
}

func (c *conn) romFlashEnd(r request) error {
	if len(r.data) != 4 {
		return c.romReply(r.op, 0, romErrMsg, "bad length")
	}
	flag := getLE32(r.data)
	if err := c.romReply(r.op, 0, 0, fmt.Sprintf("flag=%d", flag)); err != nil {
		return err
	}
	d := c.d
	d.mu.Lock()
	d.wrote = true
	if flag == 0 {
		// Soft reset: the boot strap latched at power-on still says
		// "download" (reference §2.2).
		d.softResetLocked()
	} else {
		d.gen++
		d.mode = modeApp
		d.boot = &bootEvent{jump: true}
	}
	d.mu.Unlock()
	return errInterrupted
}

func (c *conn) romMemData(r request) error {
	seq, payload, ok := dataBlock(r)
	if !ok {
		return c.romReply(r.op, 0, romErrMsg, "length field does not match the data")
	}
	if xorChecksum(payload) != byte(r.chk) {
		return c.romReply(r.op, 0, romErrChecksum, fmt.Sprintf("seq=%d bad checksum", seq))
	}
	m := &c.d.sess.mem
	if !m.active {
		return c.romReply(r.op, 0, romErrParam, "no MEM_BEGIN")
	}
	if seq != m.nextSeq && seq+1 != m.nextSeq {
		return c.romReply(r.op, 0, romErrParam, fmt.Sprintf("seq=%d, expected %d", seq, m.nextSeq))
	}
	c.d.sess.store(m.addr+seq*m.blockSize, payload)
	m.nextSeq = max(m.nextSeq, seq+1)
	return c.romReply(r.op, 0, 0, fmt.Sprintf("seq=%d %d bytes at 0x%08X", seq, len(payload), m.addr+seq*m.blockSize))
}

// store keeps an uploaded RAM block (overwriting an earlier copy).
func (s *session) store(addr uint32, b []byte) {
	for i := range s.uploaded {
		if s.uploaded[i].addr == addr {
			s.uploaded[i].data = append([]byte(nil), b...)
			return
		}
	}
	s.uploaded = append(s.uploaded, memSegment{addr: addr, data: append([]byte(nil), b...)})
}

func (c *conn) romMemEnd(r request) error {
	if len(r.data) != 8 {
		return c.romReply(r.op, 0, romErrMsg, "bad length")
	}
	flag, entry := getLE32(r.data), getLE32(r.data[4:])
	note := fmt.Sprintf("flag=%d entry=0x%08X", flag, entry)
	if flag == 0 && c.d.cfg.Faults.MemEndNoReply {
		c.logf("rom", "MEM_END "+note+" -> reply lost (fault)")
	} else if err := c.romReply(r.op, 0, 0, note); err != nil {
		return err
	}
	c.d.sess.mem = memWrite{}
	if flag != 0 {
		return nil
	}
	return c.runUpload(entry)
}

// runUpload jumps to the uploaded RAM code: a plausible upload runs as the
// flasher stub (Config.Stub), anything else crashes the chip, which then
// stays silent until reset (checkUpload).
func (c *conn) runUpload(entry uint32) error {
	d := c.d
	if err := checkUpload(d.sess.announced, d.sess.uploaded, entry); err != nil {
		c.logf(d.currentMode().String(), fmt.Sprintf("the uploaded code would crash (%v): silent until reset", err))
		d.mu.Lock()
		d.mode = modeCrashed
		d.gen++
		d.mu.Unlock()
		return errInterrupted
	}
	if c.isLoader(entry) {
		return c.startLoader()
	}
	return c.startStub()
}

// startStub: the uploaded code runs as the flasher stub, attaches the
// flash and greets the host.
func (c *conn) startStub() error {
	d := c.d
	d.sess.reset()
	d.sess.stubSize = maxFlashSize // tuyaflash's stub until SPI_SET_PARAMS
	if d.cfg.Stub == StubEsptool {
		d.sess.stubSize = d.stubSize
	}
	d.mu.Lock()
	d.mode = modeStub
	d.spiAttached = true
	d.mu.Unlock()
	c.logf("stub", fmt.Sprintf("flasher stub (%s model) running: OHAI", d.cfg.Stub))
	return c.sendFrame([]byte(greeting))
}

// startLoader runs tuyaflash's loader (loader.go): a stub session in which
// only the loader's commands are served.
func (c *conn) startLoader() error {
	d := c.d
	d.sess.reset()
	d.sess.loader = true
	d.mu.Lock()
	d.mode = modeStub
	d.mu.Unlock()
	c.logf("stub", "tuyaflash's loader running: OHAI")
	return c.sendFrame([]byte(greeting))
}
