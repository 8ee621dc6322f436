package espsim

import "fmt"

// The write session and READ_FLASH of tuyaflash's own stub (StubTuyaflash),
// modelled on its README and src/flashw.c: synchronous replies, 4 KiB
// staging, sequence-number rules, a sticky first error.

// stageSize is the stub's staging buffer: data is programmed 4 KiB at a
// time, and at FLASH_END.
const stageSize = 0x1000

// tfBegin starts a write session. A refused BEGIN still ends the previous
// session.
func (c *conn) tfBegin(r request) stubResult {
	s := &c.d.sess
	n := len(r.data)
	if n != 16 && n != 20 {
		return fail(stubBadDataLen, "%d bytes", n)
	}
	if n == 20 && getLE32(r.data[16:]) != 0 {
		return fail(stubInvalidCommand, "flash encryption requested")
	}
	total, blocks, bs, off := getLE32(r.data), getLE32(r.data[4:]), getLE32(r.data[8:]), getLE32(r.data[12:])
	s.abortInflate()
	s.fw = flashWrite{}
	if bs > stubMaxBlock {
		return fail(stubBadBlocksize, "block size 0x%X > 0x%X", bs, stubMaxBlock)
	}
	if off%4 != 0 || !s.inRange(off, total) {
		return fail(stubBadDataLen, "0x%X+0x%X (unaligned or beyond 0x%X)", off, total, s.stubSize)
	}
	s.startWrite(r.op == opFlashDeflBegin, total, blocks, off)
	return stubResult{note: fmt.Sprintf("size=0x%X blocks=%d block=0x%X offset=0x%X", total, blocks, bs, off)}
}

// tfData is FLASH_DATA / FLASH_DEFL_DATA: the packet is inflated,
// staged and programmed before the reply.
func (c *conn) tfData(r request, compressed bool) (stubResult, error) {
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

// tfPut stages b and programs every full 4 KiB.
func (c *conn) tfPut(b []byte) error {
	fw := &c.d.sess.fw
	fw.remaining -= uint32(len(b))
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

// tfCommit erases ahead and programs the staged bytes, padded with 0xFF to
// a multiple of 4.
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
			return fail(w.sticky, "flag=%d (the session failed)", flag), nil
		case w.compressed != compressed:
			return fail(stubNotInFlashMode, "END does not match the BEGIN"), nil
		case compressed && !w.done:
			return fail(stubInflateError, "the compressed stream did not end"), nil
		}
		s.fw = w
		err := c.tfCommit()
		s.fw = flashWrite{}
		if err != nil {
			return stubResult{}, err
		}
		if w.remaining != 0 {
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
