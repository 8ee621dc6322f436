package espsim

import (
	"encoding/binary"
	"fmt"
	"hash"
	"time"
)

// The write session, READ_FLASH and background work of tuyaflash's stubs
// (StubTuyaflash, StubTuyaflash1), modelled on stub/esp8266/README.md:
// synchronous replies, sequence-number rules, a sticky first error. The
// first stub staged data and programmed it 4 KiB at a time. The current
// one (profile.pipelined) programs a sector's part of the data after the
// erase that covers it, keeps the last 1–3 bytes of a word for the next
// packet, names the packet in each data reply, and while it waits for a
// packet erases ahead and reads written data back into an MD5 that
// SPI_FLASH_MD5 of the same region then finishes.

// stageSize is the first stub's staging buffer: data is programmed 4 KiB
// at a time, and at FLASH_END.
const stageSize = 0x1000

// The current stub's receive ring, the window STUB_INFO announces (the
// ring less a 2 KiB margin), its reply and the read-back step.
const (
	tfRing        = 20480
	tfWindow      = tfRing - 2048
	stubInfoMagic = 0x31534654 // "TFS1"
	stubInfoLen   = 24
	tfFeatures    = 0x7 // pipelined data replies, read-back MD5, erase ahead
	tfHashStep    = 1024
	tfHashBusy    = 4096 // steps when SPI_FLASH_MD5 asks for the rest
)

// readBack is the MD5 of the last write session's region, read back from
// flash behind the data while the stub waits for packets.
type readBack struct {
	state       int // rbNone, rbRunning, rbDone
	start, size uint32
	hashed      uint32 // read back up to here
	h           hash.Hash
	sum         []byte
}

const (
	rbNone = iota
	rbRunning
	rbDone
)

// tfBegin starts a write session. A refused BEGIN still ends the previous
// session.
func (c *conn) tfBegin(r request) (stubResult, error) {
	s := &c.d.sess
	n := len(r.data)
	if n != 16 && n != 20 {
		return fail(stubBadDataLen, "%d bytes", n), nil
	}
	if n == 20 && getLE32(r.data[16:]) != 0 {
		return fail(stubInvalidCommand, "flash encryption requested"), nil
	}
	total, blocks, bs, off := getLE32(r.data), getLE32(r.data[4:]), getLE32(r.data[8:]), getLE32(r.data[12:])
	s.abortInflate()
	s.fw = flashWrite{}
	s.readBack = readBack{}
	if bs > stubMaxBlock {
		return fail(stubBadBlocksize, "block size 0x%X > 0x%X", bs, stubMaxBlock), nil
	}
	if off%4 != 0 || !s.inRange(off, total) {
		return fail(stubBadDataLen, "0x%X+0x%X (unaligned or beyond 0x%X)", off, total, s.stubSize), nil
	}
	if err := c.waitFlash(); err != nil { // the flash unlock waits for it
		return stubResult{}, err
	}
	s.startWrite(r.op == opFlashDeflBegin, total, blocks, off)
	if c.profile().pipelined {
		s.readBack = readBack{state: rbRunning, start: off, size: total, hashed: off, h: newMD5()}
	}
	return stubResult{note: fmt.Sprintf("size=0x%X blocks=%d block=0x%X offset=0x%X", total, blocks, bs, off)}, nil
}

// tfData is FLASH_DATA / FLASH_DEFL_DATA: the packet is inflated,
// staged and programmed before the reply, which the current stub gives the
// packet's sequence number as value.
func (c *conn) tfData(r request, compressed bool) (stubResult, error) {
	res, err := c.tfPacket(r, compressed)
	if len(r.data) >= 16 && c.profile().pipelined {
		res.value = getLE32(r.data[4:])
	}
	return res, err
}

func (c *conn) tfPacket(r request, compressed bool) (stubResult, error) {
	s := &c.d.sess
	fw := &s.fw
	n := len(r.data)
	if n < 16 {
		return fail(stubBadDataLen, "%d bytes", n), nil
	}
	seq, payload, ok := dataBlock(r)
	if !ok {
		return fail(stubBadDataLen, "length field does not match %d data bytes", len(payload)), nil
	}
	if xorChecksum(payload) != byte(r.chk) {
		return fail(stubBadChecksum, "seq=%d checksum 0x%02X, data gives 0x%02X", seq, byte(r.chk), xorChecksum(payload)), nil
	}
	switch {
	case !fw.active || fw.compressed != compressed:
		return fail(stubNotInFlashMode, "no matching FLASH_BEGIN"), nil
	case fw.sticky != stubOK:
		return fail(fw.sticky, "seq=%d (the session already failed)", seq), nil
	case fw.nextSeq > 0 && seq == fw.nextSeq-1:
		return stubResult{note: fmt.Sprintf("seq=%d repeated: acknowledged, not written again", seq)}, nil
	case seq != fw.nextSeq:
		return fail(stubBadDataLen, "seq=%d, expected %d", seq, fw.nextSeq), nil
	}
	code := byte(stubOK)
	if compressed {
		final := fw.numBlocks > 0 && seq+1 >= fw.numBlocks
		var err error
		if code, err = c.tfInflate(payload, final); err != nil {
			return stubResult{}, err
		}
	} else if fw.remaining == 0 && len(payload) > 0 {
		code = stubTooMuchData
	} else {
		// Bytes past the announced size are padding.
		if err := c.tfPut(payload[:min(uint32(len(payload)), fw.remaining)]); err != nil {
			return stubResult{}, err
		}
	}
	if code != stubOK {
		fw.sticky = code
		s.readBack.state = rbNone
		return fail(code, "seq=%d", seq), nil
	}
	fw.nextSeq++
	return stubResult{note: fmt.Sprintf("seq=%d %d bytes", seq, len(payload))}, nil
}

// tfInflate feeds one compressed packet. Output beyond the announced size
// is not written; the stream must end by the last announced packet.
func (c *conn) tfInflate(payload []byte, final bool) (byte, error) {
	s := &c.d.sess
	fw := &s.fw
	if !fw.done && s.inf != nil {
		streamErr, sinkErr := s.inf.feed(payload, func(b []byte) error {
			if uint32(len(b)) > fw.remaining {
				fw.overflow = true
				b = b[:fw.remaining]
			}
			return c.tfPut(b)
		})
		if sinkErr != nil {
			s.inf = nil
			return stubOK, sinkErr
		}
		if streamErr != nil {
			return stubInflateError, nil
		}
		fw.done = s.inf.done
	}
	switch {
	case fw.done && fw.overflow:
		return stubTooMuchData, nil
	case !fw.done && final:
		return stubInflateError, nil // the stream stopped early
	}
	return stubOK, nil
}

// tfPut writes b at the cursor: the current stub programs whole words at
// once and keeps the last 1–3 bytes for the next packet; the first stub
// staged 4 KiB and programmed every full stage.
func (c *conn) tfPut(b []byte) error {
	fw := &c.d.sess.fw
	fw.remaining -= uint32(len(b))
	if c.profile().pipelined {
		if len(fw.stage) > 0 {
			k := min(4-len(fw.stage), len(b))
			fw.stage = append(fw.stage, b[:k]...)
			b = b[k:]
			if len(fw.stage) < 4 {
				return nil
			}
			if err := c.tfProgram(fw.stage); err != nil {
				return err
			}
			fw.stage = fw.stage[:0]
		}
		body := len(b) &^ 3
		if err := c.tfProgram(b[:body]); err != nil {
			return err
		}
		fw.stage = append(fw.stage, b[body:]...)
		return nil
	}
	for len(b) > 0 {
		k := min(len(b), stageSize-len(fw.stage))
		fw.stage = append(fw.stage, b[:k]...)
		b = b[k:]
		if len(fw.stage) == stageSize {
			if err := c.tfCommit(); err != nil {
				return err
			}
		}
	}
	return nil
}

// tfProgram programs data at the cursor a sector's part at a time, each
// after the erase that covers it (the current stub).
func (c *conn) tfProgram(data []byte) error {
	fw := &c.d.sess.fw
	for len(data) > 0 {
		k := min(len(data), int(sectorSize-fw.cursor%sectorSize))
		if err := c.waitFlash(); err != nil {
			return err
		}
		if err := c.eraseAhead(fw.cursor + uint32(k)); err != nil {
			return err
		}
		if _, err := c.program(fw.cursor, data[:k]); err != nil {
			return err
		}
		fw.cursor += uint32(k)
		data = data[k:]
	}
	return nil
}

// tfCommit erases ahead and programs the staged bytes, padded with 0xFF to
// a multiple of 4 (the first stub's stage, the current stub's last word).
func (c *conn) tfCommit() error {
	fw := &c.d.sess.fw
	n := len(fw.stage)
	if n == 0 {
		return nil
	}
	data := fw.stage
	for len(data)%4 != 0 {
		data = append(data, 0xFF)
	}
	if c.profile().pipelined {
		fw.stage = fw.stage[:0]
		return c.tfProgram(data)
	}
	if err := c.eraseAhead(fw.cursor + uint32(len(data))); err != nil {
		return err
	}
	if _, err := c.program(fw.cursor, data); err != nil {
		return err
	}
	fw.cursor += uint32(n)
	fw.stage = fw.stage[:0]
	return nil
}

// tfEnd is FLASH_END / FLASH_DEFL_END: the rest of the stage is
// programmed; flag 0 reboots after the reply.
func (c *conn) tfEnd(r request) (stubResult, error) {
	s := &c.d.sess
	fw := &s.fw
	flag := getLE32(r.data)
	compressed := r.op == opFlashDeflEnd
	res := stubResult{note: fmt.Sprintf("flag=%d", flag)}
	if fw.active {
		w := *fw
		s.abortInflate()
		s.fw = flashWrite{}
		switch {
		case w.sticky != stubOK:
			s.readBack.state = rbNone
			return fail(w.sticky, "flag=%d (the session failed)", flag), nil
		case w.compressed != compressed:
			s.readBack.state = rbNone
			return fail(stubNotInFlashMode, "END does not match the BEGIN"), nil
		case compressed && !w.done:
			s.readBack.state = rbNone
			return fail(stubInflateError, "the compressed stream did not end"), nil
		}
		s.fw = w
		err := c.tfCommit()
		s.fw = flashWrite{}
		if err != nil {
			return stubResult{}, err
		}
		if w.remaining != 0 {
			s.readBack.state = rbNone
			return fail(stubNotEnoughData, "0x%X announced bytes not written", w.remaining), nil
		}
	}
	if flag == 0 {
		res.note += " (reboot)"
		res.post = func() (byte, error) {
			d := c.d
			c.logf("stub", "software reset")
			d.mu.Lock()
			d.softResetLocked()
			d.mu.Unlock()
			return stubOK, errInterrupted
		}
	}
	return res, nil
}

// tfReadStream is tuyaflash's READ_FLASH after its reply: packets go out
// while fewer than window bytes are unacknowledged; an ACK that counts
// backwards or past what was sent ends the transfer silently; any other
// frame ends it too and is handled as the next command; after the last
// ACK, the MD5 of the data.
func (c *conn) tfReadStream(addr, size, packet, window uint32) error {
	if err := c.waitFlash(); err != nil {
		return err
	}
	h := newMD5()
	var sent, acked uint32
	for acked < size {
		if sent < size && sent-acked < window {
			n := min(packet, size-sent)
			b := c.d.read(addr+sent, n)
			h.Write(b)
			if err := c.sendFrame(b); err != nil {
				return err
			}
			sent += n
			continue
		}
		f, ok, err := c.nextFrame()
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if len(f.data) != 4 || f.over {
			c.logf("stub", fmt.Sprintf("READ_FLASH ended by a %d-byte frame after 0x%X bytes; it is the next command", len(f.data), sent))
			c.pending = &f
			return nil
		}
		got := getLE32(f.data)
		if got < acked || got > sent {
			c.logf("stub", fmt.Sprintf("READ_FLASH: ACK of 0x%X bytes after 0x%X sent: transfer ends", got, sent))
			return nil
		}
		acked = got
	}
	sum := h.Sum(nil)
	c.logf("stub", fmt.Sprintf("READ_FLASH sent 0x%X bytes, MD5 %x", sent, sum))
	return c.sendFrame(sum)
}

// tfBackground is one step of the current stub's work while it waits for
// a packet: start the session's next erase, else read back up to 1 KiB of
// what it has programmed. wait > 0: work is there but the flash is busy
// for that long.
func (c *conn) tfBackground() (worked bool, wait time.Duration, err error) {
	if !c.profile().pipelined {
		return false, 0, nil
	}
	s := &c.d.sess
	fw := &s.fw
	busy := time.Until(s.busyUntil)
	if fw.active && fw.sticky == stubOK && fw.eraseNext < fw.eraseEnd {
		if busy > 0 {
			return false, busy, nil
		}
		return true, 0, c.eraseStart()
	}
	if rb := &s.readBack; rb.state == rbRunning && rb.hashed < c.readBackLimit() {
		if busy > 0 {
			return false, busy, nil
		}
		return true, 0, c.hashStep(c.readBackLimit(), tfHashStep)
	}
	return false, 0, nil
}

// eraseStart starts the session's next erase (a 64 KiB block where
// aligned and wholly inside, else a sector) and lets it run: the flash is
// busy until its time is up, and the next flash operation waits. Its
// effect is applied at once (nothing reads the cells before it ends); a
// reset meanwhile leaves it complete in this model.
func (c *conn) eraseStart() error {
	fw := &c.d.sess.fw
	n := uint32(sectorSize)
	if fw.eraseNext%blockSize64K == 0 && fw.eraseEnd-fw.eraseNext >= blockSize64K {
		n = blockSize64K
	}
	start := c.d.phys(fw.eraseNext)
	if err := c.runOps(opErase, 1, 0, func(_ int, frac float64) {
		c.d.eraseCells(start, start+int(n), frac)
	}); err != nil {
		return err
	}
	c.d.sess.busyUntil = time.Now().Add(c.d.eraseTime(n))
	fw.eraseNext += n
	return nil
}

// readBackLimit is how far the read-back may go: what is programmed,
// within the region.
func (c *conn) readBackLimit() uint32 {
	s := &c.d.sess
	end := s.readBack.start + s.readBack.size
	if s.fw.active && s.fw.cursor < end {
		return s.fw.cursor
	}
	return end
}

// hashStep reads up to n bytes back into the session's MD5, taking the
// MD5 time.
func (c *conn) hashStep(limit, n uint32) error {
	if err := c.waitFlash(); err != nil {
		return err
	}
	rb := &c.d.sess.readBack
	n = min(n, limit-rb.hashed)
	rb.h.Write(c.d.read(rb.hashed, n))
	rb.hashed += n
	if c.d.cfg.Timing {
		return c.sleep(time.Duration(int64(md5PerMiB) * int64(n) / mib))
	}
	return nil
}

// readBackSum is SPI_FLASH_MD5 of exactly the last session's region,
// closed without error and not touched since: the read-back, finished.
func (c *conn) readBackSum(addr, size uint32) ([]byte, bool, error) {
	s := &c.d.sess
	rb := &s.readBack
	if s.fw.active || rb.state == rbNone || addr != rb.start || size != rb.size {
		return nil, false, nil
	}
	for rb.state == rbRunning && rb.hashed < rb.start+rb.size {
		if err := c.hashStep(rb.start+rb.size, tfHashBusy); err != nil {
			return nil, false, err
		}
	}
	if rb.state == rbRunning {
		rb.sum = rb.h.Sum(nil)
		rb.state = rbDone
	}
	return rb.sum, true, nil
}

// tfStubInfo is STUB_INFO (the current stub only): magic, window,
// features and the receive statistics, reset when the flag's bit 0 is
// set.
func (c *conn) tfStubInfo(r request) stubResult {
	if len(r.data) != 4 {
		return fail(stubBadDataLen, "%d bytes", len(r.data))
	}
	data := binary.LittleEndian.AppendUint32(nil, tfWindow)
	for _, w := range []int{tfFeatures, c.rxHighWater, c.rxLost, 0, tfRing} {
		data = binary.LittleEndian.AppendUint32(data, uint32(w))
	}
	if getLE32(r.data)&1 != 0 {
		c.rxHighWater, c.rxLost = 0, 0
	}
	return stubResult{value: stubInfoMagic, data: data, note: fmt.Sprintf("window %d", tfWindow)}
}
