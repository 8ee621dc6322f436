package espsim

import (
	"errors"
	"fmt"
)

// stubProfile is what differs between the two modelled flasher stubs.
// Sources: esp-flasher-stub v1.1.0 src/command_handler.c (reference
// §4.5, §5.1, §10.1, §12.3) for StubEsptool; tuyaflash's stub/esp8266
// (README "Protocol as implemented", src/proto.c, src/flashw.c) for
// StubTuyaflash.
type stubProfile struct {
	// replyFirst (esp-flasher-stub): FLASH_DATA, FLASH_DEFL_DATA,
	// READ_FLASH, CHANGE_BAUDRATE and MEM_END are acknowledged before
	// their work runs and a failure of that work is the answer to the next
	// command, which is skipped; the first erase of a write session starts
	// before FLASH_BEGIN's reply; data is programmed as it comes; MEM_*
	// are served. Otherwise every command's work is done before its reply.
	replyFirst bool
	// tuyaflash: data is staged in 4 KiB before it is programmed; a
	// repeated sequence number is acknowledged without writing, any other
	// unexpected one is 0xC0; the first error of a write session is
	// repeated for its later packets and its END; FLASH_END(0) reboots;
	// READ_FLASH's max_in_flight counts bytes and a frame other than an
	// ACK ends the transfer without the MD5 and is the next command.
	tuyaflash bool
	// rxBuffer > 0: what arrives while the stub works waits in a buffer
	// of this many bytes (the receive ring, or the UART FIFO a stub that
	// polls it leaves alone meanwhile); the rest is lost. 0: not modelled
	// (esp-flasher-stub receives under interrupt).
	rxBuffer int
	// pipelined (tuyaflash's current stub, stub_tuyaflash.go): STUB_INFO,
	// data replies carry the packet's sequence number, erases ahead and
	// reads written data back for the MD5 while waiting for a packet,
	// programs each sector's part of the data after its erase, a partial
	// word waiting for the next packet.
	pipelined bool
	// Error codes that differ.
	errRange     byte // address range beyond the flash
	errWriteReg  byte // WRITE_REG length not a multiple of 16
	errEndShort  byte // FLASH_END before all announced bytes
	errSecInfo   byte // GET_SECURITY_INFO
	endNoSession byte // FLASH_END without a FLASH_BEGIN
}

var (
	profileTuyaflash = stubProfile{tuyaflash: true, pipelined: true, rxBuffer: tfRing - 1,
		errRange: stubBadDataLen, errWriteReg: stubBadDataLen,
		errEndShort: stubNotEnoughData, errSecInfo: stubInvalidCommand, endNoSession: stubOK}
	// The first tuyaflash stub polled UART0's 128-byte FIFO.
	profileTuyaflash1 = stubProfile{tuyaflash: true, rxBuffer: 128,
		errRange: stubBadDataLen, errWriteReg: stubBadDataLen,
		errEndShort: stubNotEnoughData, errSecInfo: stubInvalidCommand, endNoSession: stubOK}
	profileEsptool = stubProfile{replyFirst: true, errRange: stubFailedSPIOp,
		errWriteReg: stubNotEnoughData, errEndShort: stubBadDataLen, errSecInfo: stubNotImplemented, endNoSession: stubNotInFlashMode}
)

func (c *conn) profile() *stubProfile {
	switch c.d.cfg.Stub {
	case StubEsptool:
		return &profileEsptool
	case StubTuyaflash1:
		return &profileTuyaflash1
	}
	return &profileTuyaflash
}

// stubResult is a stub command's answer and the work that runs after the
// answer has been sent: esp-flasher-stub's post-processing, or what any
// stub does only after replying (switch the baud rate, stream READ_FLASH,
// reboot).
type stubResult struct {
	code  byte
	value uint32
	data  []byte
	note  string
	post  func() (byte, error)
	// silent: no reply at all (esp-flasher-stub's RUN_USER_CODE), or
	// the reply has been sent already (replied).
	silent, replied bool
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
	return c.respond(appendSLIP(nil, response(op, r.value, data, [2]byte{r.code, 0})))
}

// stubFrame handles one frame in the flasher stub (reference §5, §12.3).
func (c *conn) stubFrame(f rxFrame) error {
	if len(f.data) < 8 {
		return nil
	}
	p := c.profile()
	r, dir, bad := parseFrame(f)
	s := &c.d.sess
	var res stubResult
	switch {
	case dir != 0x00:
		res = fail(stubInvalidCommand, "direction byte 0x%02X", dir)
	case bad:
		res = fail(stubBadDataLen, "size field does not match %d data bytes", len(r.data))
	case p.replyFirst && s.pendingErr != stubOK:
		res = fail(s.pendingErr, "(failure of the previous command's work)")
		s.pendingErr = stubOK
	case s.loader:
		var err error
		if res, err = c.loaderCommand(r); err != nil {
			return err
		}
	default:
		var err error
		if res, err = c.stubCommand(r, p); err != nil {
			return err
		}
	}
	// What arrived while the stub worked waits in its receive buffer.
	if err := c.absorb(); err != nil {
		return err
	}
	if res.silent {
		if !res.replied {
			c.logf("stub", fmt.Sprintf("%s %s -> no reply", opName(r.op), res.note))
		}
		return nil
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
	if p.replyFirst {
		if code != stubOK {
			c.logf("stub", fmt.Sprintf("%s work failed: error 0x%02X reported on the next command", opName(r.op), code))
		}
		s.pendingErr = code
	}
	return nil
}

func (c *conn) stubCommand(r request, p *stubProfile) (stubResult, error) {
	d := c.d
	s := &d.sess
	n := len(r.data)
	tf := p.tuyaflash
	switch r.op {
	case opSync:
		if n != syncPayloadLen {
			return fail(stubBadDataLen, "%d bytes", n), nil
		}
		// Seven extra answers, then the normal one: eight, value 0.
		extra := appendSLIP(nil, response(opSync, 0, nil, [2]byte{}))
		var seven []byte
		for range 7 {
			seven = append(seven, extra...)
		}
		if err := c.respond(seven); err != nil {
			return stubResult{}, err
		}
		return stubResult{note: "(8 replies, value 0)"}, nil
	case opReadReg:
		if n != 4 || (tf && getLE32(r.data)%4 != 0) {
			return fail(stubBadDataLen, "%d bytes", n), nil
		}
		addr := getLE32(r.data)
		v := d.readReg(addr)
		return stubResult{value: v, note: fmt.Sprintf("0x%08X = 0x%08X", addr, v)}, nil
	case opWriteReg:
		s.readBack.state = rbNone // a register write can drive the SPI flash
		if n == 0 || n%16 != 0 {
			return fail(p.errWriteReg, "%d bytes", n), nil
		}
		for i := 0; tf && i < n; i += 16 {
			if getLE32(r.data[i:])%4 != 0 {
				return fail(stubBadDataLen, "unaligned address 0x%08X", getLE32(r.data[i:])), nil
			}
		}
		for i := 0; i < n; i += 16 {
			if err := c.applyWriteReg(r.data[i : i+16]); err != nil {
				return stubResult{}, err
			}
		}
		return stubResult{note: fmt.Sprintf("%d writes", n/16)}, nil
	case opFlashBegin, opFlashDeflBegin:
		d.markWrite()
		if tf {
			return c.tfBegin(r)
		}
		return c.stubFlashBegin(r)
	case opFlashData, opFlashDeflData:
		if tf {
			return c.tfData(r, r.op == opFlashDeflData)
		}
		if r.op == opFlashData {
			return c.stubFlashData(r), nil
		}
		return c.stubDeflData(r), nil
	case opFlashEnd, opFlashDeflEnd:
		if n != 4 {
			return fail(stubBadDataLen, "%d bytes", n), nil
		}
		d.markWrite()
		if tf {
			return c.tfEnd(r)
		}
		if !s.fw.active {
			return fail(p.endNoSession, "no FLASH_BEGIN"), nil
		}
		if s.fw.remaining != 0 {
			return fail(p.errEndShort, "0x%X announced bytes not written", s.fw.remaining), nil
		}
		s.abortInflate()
		s.fw = flashWrite{}
		// esp-flasher-stub v1.1.0 does not reboot for flag 0 (a TODO).
		return stubResult{note: fmt.Sprintf("flag=%d (no reboot)", getLE32(r.data))}, nil
	case opMemBegin, opMemData, opMemEnd:
		if tf {
			break // tuyaflash's stub does not serve them
		}
		return c.stubMem(r), nil
	case opRunUserCode:
		if tf {
			break
		}
		d.markWrite()
		return stubResult{silent: true, note: "(no effect)"}, nil
	case opSPISetParams:
		s.readBack.state = rbNone
		if n != 24 {
			return fail(stubBadDataLen, "%d bytes", n), nil
		}
		size := getLE32(r.data[4:])
		switch {
		case tf && size == 0:
			return fail(stubBadDataLen, "total_size=0"), nil
		case tf:
			size = min(size, maxFlashSize)
		case size == 0 || size > maxFlashSize:
			return fail(stubFailedSPIOp, "total_size=0x%X", size), nil
		}
		s.stubSize = size
		return stubResult{note: fmt.Sprintf("id=0x%X total_size=0x%X", getLE32(r.data), size)}, nil
	case opSPIAttach:
		s.readBack.state = rbNone
		if n != 4 && !(tf && n == 8) {
			return fail(stubBadDataLen, "%d bytes", n), nil
		}
		if err := c.waitFlash(); err != nil {
			return stubResult{}, err
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
		if baud == 0 || (tf && (baud < 300 || baud > 8_000_000)) {
			return fail(stubBadDataLen, "baud %d", baud), nil
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
			return fail(p.errRange, "0x%X+0x%X beyond 0x%X", addr, size, s.stubSize), nil
		}
		if sum, ok, err := c.readBackSum(addr, size); err != nil || ok {
			return stubResult{data: sum, note: fmt.Sprintf("0x%X+0x%X = %x (read back during the write)", addr, size, sum)}, err
		}
		if err := c.waitFlash(); err != nil {
			return stubResult{}, err
		}
		sum, err := c.md5Of(addr, size)
		if err != nil {
			return stubResult{}, err
		}
		return stubResult{data: sum[:], note: fmt.Sprintf("0x%X+0x%X = %x", addr, size, sum)}, nil
	case opReadFlash:
		return c.stubReadFlash(r, p), nil
	case opEraseFlash:
		s.readBack.state = rbNone
		if tf && n != 0 {
			return fail(stubBadDataLen, "%d bytes", n), nil
		}
		if err := c.waitFlash(); err != nil {
			return stubResult{}, err
		}
		if err := c.eraseChip(); err != nil {
			return stubResult{}, err
		}
		return stubResult{note: "whole chip"}, nil
	case opEraseRegion:
		s.readBack.state = rbNone
		if n != 8 {
			return fail(stubBadDataLen, "%d bytes", n), nil
		}
		if err := c.waitFlash(); err != nil {
			return stubResult{}, err
		}
		addr, size := getLE32(r.data), getLE32(r.data[4:])
		if addr%sectorSize != 0 || size%sectorSize != 0 {
			return fail(stubBadDataLen, "0x%X+0x%X not 4 KiB aligned", addr, size), nil
		}
		if !s.inRange(addr, size) {
			return fail(p.errRange, "0x%X+0x%X beyond 0x%X", addr, size, s.stubSize), nil
		}
		if err := c.eraseSectors(addr/sectorSize, size/sectorSize); err != nil {
			return stubResult{}, err
		}
		return stubResult{note: fmt.Sprintf("0x%X+0x%X", addr, size)}, nil
	case opGetSecInfo:
		return fail(p.errSecInfo, "(ESP8266 has no security info)"), nil
	case opStubInfo:
		if p.pipelined {
			return c.tfStubInfo(r), nil
		}
	case opIdentify:
		if ok, err := c.identify(r, "stub"); ok || err != nil {
			return stubResult{silent: true, replied: true}, err
		}
	}
	return fail(stubInvalidCommand, "unknown opcode"), nil
}

// stubMem serves MEM_BEGIN/MEM_DATA/MEM_END in esp-flasher-stub: another
// RAM program may be loaded and started (it is checked like the first).
func (c *conn) stubMem(r request) stubResult {
	s := &c.d.sess
	n := len(r.data)
	switch r.op {
	case opMemBegin:
		if n != 16 {
			return fail(stubBadDataLen, "%d bytes", n)
		}
		size, addr := getLE32(r.data), getLE32(r.data[12:])
		s.mem = memWrite{active: true, size: size, addr: addr, remaining: size}
		s.announced = append(s.announced, span{addr, size})
		return stubResult{note: fmt.Sprintf("size=0x%X addr=0x%08X", size, addr)}
	case opMemData:
		if n < 16 {
			return fail(stubNotEnoughData, "%d bytes", n)
		}
		if !s.mem.active {
			return fail(stubNotInFlashMode, "no MEM_BEGIN")
		}
		ln, payload := getLE32(r.data), r.data[16:]
		if ln > s.mem.remaining || int(ln) != len(payload) {
			return fail(stubTooMuchData, "len=%d, %d bytes left", ln, s.mem.remaining)
		}
		s.store(s.mem.addr, payload)
		s.mem.addr += ln
		s.mem.remaining -= ln
		return stubResult{note: fmt.Sprintf("%d bytes", ln)}
	}
	if n != 8 {
		return fail(stubBadDataLen, "%d bytes", n)
	}
	if !s.mem.active {
		return fail(stubNotInFlashMode, "no MEM_BEGIN")
	}
	s.mem = memWrite{}
	flag, entry := getLE32(r.data), getLE32(r.data[4:])
	res := stubResult{note: fmt.Sprintf("flag=%d entry=0x%08X", flag, entry)}
	if flag == 0 {
		res.post = func() (byte, error) { return stubOK, c.runUpload(entry) }
	}
	return res
}

// startWrite opens a stub write session of total bytes at off: the
// sectors it touches are erased just ahead of the data.
func (s *session) startWrite(compressed bool, total, blocks, off uint32) {
	s.fw = flashWrite{
		active:     true,
		compressed: compressed,
		numBlocks:  blocks,
		remaining:  total,
		cursor:     off,
		eraseNext:  off &^ (sectorSize - 1),
		eraseEnd:   (off + total + sectorSize - 1) &^ (sectorSize - 1),
	}
	if compressed {
		s.inf = newInflater()
	}
}

// inRange reports whether [addr, addr+size) lies inside the flash size
// the stub works with.
func (s *session) inRange(addr, size uint32) bool {
	return uint64(addr)+uint64(size) <= uint64(s.stubSize)
}

// setBaud switches the chip's UART after the reply went out at the old
// rate; the divider follows (2 × crystal / baud).
func (c *conn) setBaud(baud int) error {
	if err := c.setLineBaud(baud); err != nil {
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

// stubReadFlash checks READ_FLASH and sets up the stream that follows the
// reply: esp-flasher-stub checks the packet size and range only then
// (deferred errors), tuyaflash's stub before it answers.
func (c *conn) stubReadFlash(r request, p *stubProfile) stubResult {
	if len(r.data) != 16 {
		return fail(stubBadDataLen, "%d bytes", len(r.data))
	}
	s := &c.d.sess
	addr, size, packet, window := getLE32(r.data), getLE32(r.data[4:]), getLE32(r.data[8:]), getLE32(r.data[12:])
	note := fmt.Sprintf("0x%X+0x%X packet=%d max_in_flight=%d", addr, size, packet, window)
	if p.tuyaflash {
		if packet == 0 || packet > maxReadPacket || !s.inRange(addr, size) {
			return fail(stubBadDataLen, "%s", note)
		}
		return stubResult{note: note, post: func() (byte, error) {
			return stubOK, c.tfReadStream(addr, size, packet, max(window, 1))
		}}
	}
	return stubResult{note: note, post: func() (byte, error) { return c.readFlash(addr, size, packet) }}
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
	s.startWrite(r.op == opFlashDeflBegin, total, blocks, off)
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
		if err := c.eraseUnit(fw.eraseNext, block); err != nil {
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

// writeStream writes the next piece of the announced data at the cursor
// (esp-flasher-stub: programmed as it comes).
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

// readFlash streams flash to the host the way esp-flasher-stub does
// (reference §10.1): packets of packet bytes, each waiting for the host's
// 4-byte ACK (one packet in flight whatever max_in_flight says), then a
// 16-byte MD5 frame. A frame that is not an ACK ends the transfer early;
// the MD5 then covers what was sent.
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
