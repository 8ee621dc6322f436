package espsim

import "fmt"

// tuyaflash's loader (stub/esp8266 README, "The loader"): a small first
// stage uploaded to 0x4010EA00–0x4010F1C0 that raises the baud rate and
// loads the stub at the new rate. An upload whose entry point lies there
// runs as the loader in this model (unless Config.Stub is esptool's); it
// greets with OHAI and serves:
//
//   - READ_REG (a word-aligned address), CHANGE_BAUDRATE (new, old; the
//     switch after the reply);
//   - MEM_BEGIN (size, blocks, block size, address: all word-aligned, the
//     range inside the user DRAM or the IRAM below the loader, else 0xC0);
//   - MEM_DATA (its place is set by the sequence number; a wrong checksum
//     is 0xC1, a packet that does not fit the MEM_BEGIN 0xC0);
//   - MEM_END (flag, entry): the reply, then, for flag 0, a jump to the
//     entry, which runs as the flasher stub when it would run (the
//     criteria of checkUpload, over what the loader loaded) and crashes
//     the chip otherwise.
//
// Any other opcode is 0xC3; replies end with [code, 0] as the stub's.

// loaderWindow is where tuyaflash's loader lies.
var loaderWindow = span{0x4010EA00, 0x4010F1C0 - 0x4010EA00}

// isLoader reports whether an upload starting at entry is tuyaflash's
// loader, run as such.
func (c *conn) isLoader(entry uint32) bool {
	return c.d.cfg.Stub != StubEsptool && loaderWindow.contains(span{entry, 1})
}

// loaderCommand serves one request to the loader.
func (c *conn) loaderCommand(r request) (stubResult, error) {
	s := &c.d.sess
	n := len(r.data)
	switch r.op {
	case opReadReg:
		if n != 4 || getLE32(r.data)%4 != 0 {
			return fail(stubBadDataLen, "%d bytes", n), nil
		}
		addr := getLE32(r.data)
		v := c.d.readReg(addr)
		return stubResult{value: v, note: fmt.Sprintf("0x%08X = 0x%08X", addr, v)}, nil
	case opChangeBaudrate:
		baud := uint32(0)
		if n == 8 {
			baud = getLE32(r.data)
		}
		if baud == 0 {
			return fail(stubBadDataLen, "%d bytes", n), nil
		}
		return stubResult{
			note: fmt.Sprintf("new=%d old=%d", baud, getLE32(r.data[4:])),
			post: func() (byte, error) { return stubOK, c.setBaud(int(baud)) },
		}, nil
	case opMemBegin:
		s.mem = memWrite{}
		if n != 16 {
			return fail(stubBadDataLen, "%d bytes", n), nil
		}
		size, bs, addr := getLE32(r.data), getLE32(r.data[8:]), getLE32(r.data[12:])
		in := span{addr, size}
		below := span{iramWindow.addr, loaderWindow.addr - iramWindow.addr}
		if (size|bs|addr)%4 != 0 || bs == 0 || !(dramWindow.contains(in) || below.contains(in)) {
			return fail(stubBadDataLen, "size=0x%X block=0x%X addr=0x%08X", size, bs, addr), nil
		}
		s.mem = memWrite{active: true, size: size, blockSize: bs, addr: addr}
		s.announced = append(s.announced, in)
		return stubResult{note: fmt.Sprintf("size=0x%X block=0x%X addr=0x%08X", size, bs, addr)}, nil
	case opMemData:
		seq, payload, ok := dataBlock(r)
		m := &s.mem
		off := uint64(seq) * uint64(m.blockSize)
		if !ok || !m.active || len(payload)%4 != 0 || uint32(len(payload)) > m.blockSize ||
			off+uint64(len(payload)) > uint64(m.size) {
			return fail(stubBadDataLen, "seq=%d, %d bytes", seq, len(payload)), nil
		}
		if xorChecksum(payload) != byte(r.chk) {
			return fail(stubBadChecksum, "seq=%d", seq), nil
		}
		s.store(m.addr+uint32(off), payload)
		return stubResult{note: fmt.Sprintf("seq=%d %d bytes at 0x%08X", seq, len(payload), m.addr+uint32(off))}, nil
	case opMemEnd:
		if n != 8 {
			return fail(stubBadDataLen, "%d bytes", n), nil
		}
		flag, entry := getLE32(r.data), getLE32(r.data[4:])
		res := stubResult{note: fmt.Sprintf("flag=%d entry=0x%08X", flag, entry)}
		if flag == 0 {
			res.post = func() (byte, error) { return stubOK, c.runUpload(entry) }
		}
		return res, nil
	}
	return fail(stubInvalidCommand, "(not served by the loader)"), nil
}
