package espsim

import (
	"errors"
	"fmt"
)

// stubResult is a stub command's immediate answer and the work that runs
// after the answer has been sent (esp-flasher-stub's post-processing).
type stubResult struct {
	code  byte
	value uint32
	data  []byte
	note  string
	post  func() (byte, error)
}

func fail(code byte, format string, args ...any) stubResult {
	return stubResult{code: code, note: fmt.Sprintf(format, args...)}
}

// codeError carries a stub error code out of a flash-write sink.
type codeError byte

func (e codeError) Error() string { return fmt.Sprintf("stub error 0x%02X", byte(e)) }

// stubReply sends a stub response: value, data, then [code, 0].
func (c *conn) stubReply(op byte, r stubResult) error {
	result := "ok"
	data := r.data
	if r.code != stubOK {
		result = fmt.Sprintf("error 0x%02X", r.code)
		data = nil
	}
	c.logf("stub", fmt.Sprintf("%s %s -> %s", opName(op), r.note, result))
	return c.sendFrame(response(op, r.value, data, [2]byte{r.code, 0}))
}

// stubFrame handles one frame in the flasher stub (reference §5, §12.3).
func (c *conn) stubFrame(f rxFrame) error {
	if len(f.data) < 8 {
		return nil
	}
	r, dir, bad := parseFrame(f)
	c.d.count(r.op)
	s := &c.d.sess
	var res stubResult
	switch {
	case dir != 0x00:
		res = fail(stubInvalidCommand, "direction byte 0x%02X", dir)
	case bad:
		res = fail(stubBadDataLen, "size field does not match %d data bytes", len(r.data))
	case s.pendingErr != stubOK:
		res = fail(s.pendingErr, "(failure of the previous command's work)")
		s.pendingErr = stubOK
	default:
		if r.op == opRunUserCode {
			c.logf("stub", "RUN_USER_CODE -> no reply, no effect")
			return nil
		}
		var err error
		if res, err = c.stubCommand(r); err != nil {
			return err
		}
	}
	if err := c.stubReply(r.op, res); err != nil {
		return err
	}
	if res.code != stubOK || res.post == nil {
		return nil
	}
	code, err := res.post()
	if err != nil {
		return err
	}
	if code != stubOK {
		c.logf("stub", fmt.Sprintf("%s work failed: error 0x%02X reported on the next command", opName(r.op), code))
	}
	s.pendingErr = code
	return nil
}

func (c *conn) stubCommand(r request) (stubResult, error) {
	d := c.d
	s := &d.sess
	n := len(r.data)
	switch r.op {
	case opSync:
		if n != syncPayloadLen {
			return fail(stubBadDataLen, "%d bytes", n), nil
		}
		// Seven extra answers, then the normal one: eight, value 0.
		p := appendSLIP(nil, response(opSync, 0, nil, [2]byte{}))
		for range 7 {
			if err := c.write(p); err != nil {
				return stubResult{}, err
			}
		}
		return stubResult{note: "(8 replies, value 0)"}, nil
	case opReadReg:
		if n != 4 {
			return fail(stubBadDataLen, "%d bytes", n), nil
		}
		addr := getLE32(r.data)
		v := d.readReg(addr)
		return stubResult{value: v, note: fmt.Sprintf("0x%08X = 0x%08X", addr, v)}, nil
	case opWriteReg:
		if n == 0 || n%16 != 0 {
			return fail(stubNotEnoughData, "%d bytes", n), nil
		}
		for i := 0; i < n; i += 16 {
			if err := c.applyWriteReg(r.data[i : i+16]); err != nil {
				return stubResult{}, err
			}
		}
		return stubResult{note: fmt.Sprintf("%d writes", n/16)}, nil
	case opFlashBegin, opFlashDeflBegin:
		return c.stubFlashBegin(r)
	case opFlashData:
		return c.stubFlashData(r), nil
	case opFlashDeflData:
		return c.stubDeflData(r), nil
	case opFlashEnd, opFlashDeflEnd:
		if n != 4 {
			return fail(stubBadDataLen, "%d bytes", n), nil
		}
		if !s.fw.active {
			return fail(stubNotInFlashMode, "no FLASH_BEGIN"), nil
		}
		if s.fw.remaining != 0 {
			return fail(stubBadDataLen, "0x%X announced bytes not written", s.fw.remaining), nil
		}
		s.abortInflate()
		s.fw = flashWrite{}
		// esp-flasher-stub v1.1.0 does not reboot for flag 0 (a TODO).
		return stubResult{note: fmt.Sprintf("flag=%d (no reboot)", getLE32(r.data))}, nil
	case opMemBegin:
		if n != 16 {
			return fail(stubBadDataLen, "%d bytes", n), nil
		}
		size, addr := getLE32(r.data), getLE32(r.data[12:])
		s.mem = memWrite{active: true, size: size, addr: addr, remaining: size}
		return stubResult{note: fmt.Sprintf("size=0x%X addr=0x%08X", size, addr)}, nil
	case opMemData:
		if n < 16 {
			return fail(stubNotEnoughData, "%d bytes", n), nil
		}
		if !s.mem.active {
			return fail(stubNotInFlashMode, "no MEM_BEGIN"), nil
		}
		ln, payload := getLE32(r.data), r.data[16:]
		if ln > s.mem.remaining || int(ln) != len(payload) {
			return fail(stubTooMuchData, "len=%d, %d bytes left", ln, s.mem.remaining), nil
		}
		s.store(s.mem.addr, payload)
		s.mem.addr += ln
		s.mem.remaining -= ln
		return stubResult{note: fmt.Sprintf("%d bytes", ln)}, nil
	case opMemEnd:
		if n != 8 {
			return fail(stubBadDataLen, "%d bytes", n), nil
		}
		if !s.mem.active {
			return fail(stubNotInFlashMode, "no MEM_BEGIN"), nil
		}
		s.mem = memWrite{}
		flag, entry := getLE32(r.data), getLE32(r.data[4:])
		res := stubResult{note: fmt.Sprintf("flag=%d entry=0x%08X", flag, entry)}
		if flag == 0 && entry != 0 {
			res.post = func() (byte, error) { return stubOK, c.startStub() }
		}
		return res, nil
	case opSPISetParams:
		if n != 24 {
			return fail(stubBadDataLen, "%d bytes", n), nil
		}
		size := getLE32(r.data[4:])
		if size == 0 || size > maxFlashSize {
			return fail(stubFailedSPIOp, "total_size=0x%X", size), nil
		}
		s.stubSize = size
		return stubResult{note: fmt.Sprintf("id=0x%X total_size=0x%X", getLE32(r.data), size)}, nil
	case opSPIAttach:
		if n != 4 {
			return fail(stubBadDataLen, "%d bytes", n), nil
		}
		d.mu.Lock()
		d.spiAttached = true
		d.mu.Unlock()
		return stubResult{note: fmt.Sprintf("arg=%d", getLE32(r.data))}, nil
	case opChangeBaudrate:
		if n != 8 {
			return fail(stubBadDataLen, "%d bytes", n), nil
		}
		baud := getLE32(r.data)
		if baud == 0 {
			return fail(stubBadDataLen, "baud 0"), nil
		}
		return stubResult{
			note: fmt.Sprintf("new=%d old=%d", baud, getLE32(r.data[4:])),
			post: func() (byte, error) { return stubOK, c.setBaud(int(baud)) },
		}, nil
	case opSPIFlashMD5:
		if n != 16 {
			return fail(stubBadDataLen, "%d bytes", n), nil
		}
		addr, size := getLE32(r.data), getLE32(r.data[4:])
		if !s.inRange(addr, size) {
			return fail(stubFailedSPIOp, "0x%X+0x%X beyond 0x%X", addr, size, s.stubSize), nil
		}
		sum, err := c.md5Of(addr, size)
		if err != nil {
			return stubResult{}, err
		}
		return stubResult{data: sum[:], note: fmt.Sprintf("0x%X+0x%X = %x", addr, size, sum)}, nil
	case opReadFlash:
		if n != 16 {
			return fail(stubBadDataLen, "%d bytes", n), nil
		}
		addr, size, packet := getLE32(r.data), getLE32(r.data[4:]), getLE32(r.data[8:])
		return stubResult{
			note: fmt.Sprintf("0x%X+0x%X packet=%d max_in_flight=%d", addr, size, packet, getLE32(r.data[12:])),
			post: func() (byte, error) { return c.readFlash(addr, size, packet) },
		}, nil
	case opEraseFlash:
		if err := c.eraseSectors(0, uint32(len(d.flash)/sectorSize)); err != nil {
			return stubResult{}, err
		}
		return stubResult{note: "whole chip"}, nil
	case opEraseRegion:
		if n != 8 {
			return fail(stubBadDataLen, "%d bytes", n), nil
		}
		addr, size := getLE32(r.data), getLE32(r.data[4:])
		if addr%sectorSize != 0 || size%sectorSize != 0 {
			return fail(stubBadDataLen, "0x%X+0x%X not 4 KiB aligned", addr, size), nil
		}
		if !s.inRange(addr, size) {
			return fail(stubFailedSPIOp, "0x%X+0x%X beyond 0x%X", addr, size, s.stubSize), nil
		}
		if err := c.eraseSectors(addr/sectorSize, size/sectorSize); err != nil {
			return stubResult{}, err
		}
		return stubResult{note: fmt.Sprintf("0x%X+0x%X", addr, size)}, nil
	case opGetSecInfo:
		return fail(stubNotImplemented, "(ESP8266 has no security info)"), nil
	}
	return fail(stubInvalidCommand, "unknown opcode"), nil
}

// inRange reports whether [addr, addr+size) lies inside the flash size
// the stub works with.
func (s *session) inRange(addr, size uint32) bool {
	return uint64(addr)+uint64(size) <= uint64(s.stubSize)
}

// setBaud switches the chip's UART after the reply went out at the old
// rate; the divider follows (2 × crystal / baud).
func (c *conn) setBaud(baud int) error {
	if err := c.l.SetBaudRate(baud); err != nil {
		return fmt.Errorf("espsim: set baud rate: %w", err)
	}
	d := c.d
	d.mu.Lock()
	d.baud = baud
	d.clkdiv = uint32(uint64(d.xtal) * 2_000_000 / uint64(baud))
	d.mu.Unlock()
	c.logf("stub", fmt.Sprintf("UART now at %d baud", baud))
	return nil
}

func (c *conn) stubFlashBegin(r request) (stubResult, error) {
	n := len(r.data)
	if n != 16 && n != 20 {
		return fail(stubBadDataLen, "%d bytes", n), nil
	}
	total, blocks, bs, off := getLE32(r.data), getLE32(r.data[4:]), getLE32(r.data[8:]), getLE32(r.data[12:])
	if bs > stubMaxBlock {
		return fail(stubBadBlocksize, "block size 0x%X > 0x%X", bs, stubMaxBlock), nil
	}
	s := &c.d.sess
	if !s.inRange(off, total) {
		return fail(stubFailedSPIOp, "0x%X+0x%X beyond 0x%X", off, total, s.stubSize), nil
	}
	s.abortInflate()
	compressed := r.op == opFlashDeflBegin
	s.fw = flashWrite{
		active:     true,
		compressed: compressed,
		remaining:  total,
		cursor:     off,
		eraseNext:  off &^ (sectorSize - 1),
		eraseEnd:   (off + total + sectorSize - 1) &^ (sectorSize - 1),
	}
	if compressed {
		s.inf = newInflater()
	}
	// The stub starts the first erase before it answers.
	if err := c.eraseAhead(s.fw.eraseNext + 1); err != nil {
		return stubResult{}, err
	}
	return stubResult{note: fmt.Sprintf("size=0x%X blocks=%d block=0x%X offset=0x%X", total, blocks, bs, off)}, nil
}

// eraseAhead erases the write window up to (at least) addr, a 64 KiB
// block at a time where aligned, as the stubs do.
func (c *conn) eraseAhead(addr uint32) error {
	fw := &c.d.sess.fw
	for fw.eraseNext < addr && fw.eraseNext < fw.eraseEnd {
		block := fw.eraseNext%blockSize64K == 0 && fw.eraseEnd-fw.eraseNext >= blockSize64K
		if err := c.sleep(c.d.eraseUnit(fw.eraseNext, block)); err != nil {
			return err
		}
		if block {
			fw.eraseNext += blockSize64K
		} else {
			fw.eraseNext += sectorSize
		}
	}
	return nil
}

// writeStream writes the next piece of the announced data at the cursor.
func (c *conn) writeStream(b []byte) error {
	fw := &c.d.sess.fw
	over := uint32(len(b)) > fw.remaining
	if over {
		b = b[:fw.remaining]
	}
	if err := c.eraseAhead(fw.cursor + uint32(len(b))); err != nil {
		return err
	}
	if _, err := c.program(fw.cursor, b); err != nil {
		return err
	}
	fw.cursor += uint32(len(b))
	fw.remaining -= uint32(len(b))
	if over {
		return codeError(stubTooMuchData)
	}
	return nil
}

// stubDataBlock validates FLASH_DATA and FLASH_DEFL_DATA as
// esp-flasher-stub does; the two differ in their error codes and in the
// compressed stream's "already complete" check.
func (c *conn) stubDataBlock(r request, deflate bool) (seq uint32, payload []byte, bad *stubResult) {
	short, mismatch := byte(stubNotEnoughData), byte(stubTooMuchData)
	if deflate {
		short, mismatch = stubBadDataLen, stubBadDataLen
	}
	fw := &c.d.sess.fw
	var res stubResult
	seq, payload, ok := dataBlock(r)
	switch {
	case len(r.data) < 16:
		res = fail(short, "%d bytes", len(r.data))
	case !fw.active:
		res = fail(stubNotInFlashMode, "no FLASH_BEGIN")
	case deflate && fw.remaining == 0:
		res = fail(stubTooMuchData, "all announced data already written")
	case !ok:
		res = fail(mismatch, "length field does not match %d data bytes", len(payload))
	case xorChecksum(payload) != byte(r.chk):
		res = fail(stubBadChecksum, "seq=%d checksum 0x%02X, data gives 0x%02X", seq, byte(r.chk), xorChecksum(payload))
	default:
		return seq, payload, nil
	}
	return seq, payload, &res
}

func (c *conn) stubFlashData(r request) stubResult {
	seq, payload, bad := c.stubDataBlock(r, false)
	if bad != nil {
		return *bad
	}
	fw := &c.d.sess.fw
	return stubResult{
		note: fmt.Sprintf("seq=%d %d bytes at 0x%X", seq, len(payload), fw.cursor),
		post: func() (byte, error) {
			// Padding beyond the announced size is ignored.
			b := payload[:min(uint32(len(payload)), fw.remaining)]
			return sinkCode(c.writeStream(b))
		},
	}
}

func (c *conn) stubDeflData(r request) stubResult {
	seq, payload, bad := c.stubDataBlock(r, true)
	if bad != nil {
		return *bad
	}
	s := &c.d.sess
	return stubResult{
		note: fmt.Sprintf("seq=%d %d compressed bytes", seq, len(payload)),
		post: func() (byte, error) {
			if s.inf == nil {
				return stubNotInFlashMode, nil
			}
			streamErr, sinkErr := s.inf.feed(payload, c.writeStream)
			if sinkErr != nil {
				s.inf = nil
				return sinkCode(sinkErr)
			}
			if streamErr != nil {
				return stubInflateError, nil
			}
			return stubOK, nil
		},
	}
}

// sinkCode splits a flash-write error into a stub error code (reported on
// the next command) and a Serve-level error.
func sinkCode(err error) (byte, error) {
	var ce codeError
	if errors.As(err, &ce) {
		return byte(ce), nil
	}
	return stubOK, err
}

// readFlash streams flash to the host (reference §10.1): packets of
// packet bytes, each waiting for the host's 4-byte ACK of the running byte
// count (one packet in flight, as both stubs behave with esptool's
// arguments), then a 16-byte MD5 frame. A frame that is not an ACK ends
// the transfer early; the MD5 then covers what was sent.
func (c *conn) readFlash(addr, size, packet uint32) (byte, error) {
	s := &c.d.sess
	if packet == 0 || packet > maxReadPacket {
		return stubBadDataLen, nil
	}
	if !s.inRange(addr, size) {
		return stubFailedSPIOp, nil
	}
	h := newMD5()
	var sent, acked, sentPackets, ackedPackets uint32
	for sent < size || acked < size {
		if sent < size && sentPackets-ackedPackets < 1 {
			n := min(packet, size-sent)
			b := c.d.read(addr+sent, n)
			h.Write(b)
			if err := c.sendFrame(b); err != nil {
				return stubOK, err
			}
			sent += n
			sentPackets++
			continue
		}
		f, ok, err := c.nextFrame()
		if err != nil {
			return stubOK, err
		}
		if !ok {
			continue
		}
		if len(f.data) != 4 {
			c.logf("stub", fmt.Sprintf("READ_FLASH ended by a %d-byte frame after 0x%X bytes", len(f.data), sent))
			break
		}
		acked = getLE32(f.data)
		ackedPackets++
	}
	sum := h.Sum(nil)
	c.logf("stub", fmt.Sprintf("READ_FLASH sent 0x%X bytes, MD5 %x", sent, sum))
	if err := c.sendFrame(sum); err != nil {
		return stubOK, err
	}
	return stubOK, nil
}
