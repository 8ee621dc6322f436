package bk7231

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"sync"
	"time"

	"github.com/tuyaflash/tuyaflash/transport"
)

// fakeROM is a scripted BK72xx download mode for the chips the simulator
// (devicesim/bk7231) has no profile for yet: a FULL BootROM, or a
// BASIC_BEKEN / BASIC_TUYA bootloader, on a flash that wraps modulo its
// size. It decodes frames with its own few lines and follows the protocol
// reference, not the client:
//   - CheckCRC(0, 256) answers the bootloader fingerprint; every other
//     range the reflected CRC-32 without final inversion, end inclusive on
//     FULL (§4.2);
//   - BASIC bootloaders refuse FlashRead4K below 0x11000 at a plain
//     address (status 6) and re-protect the flash after every CheckCRC:
//     an erase unprotects it only after a LinkCheck, a write to a protected
//     flash is answered OK and does nothing (bk7231tools
//     crc_flash_protect_lock, §4.3);
//   - SetBaudRate answers at the new rate after its delay (§4.1).
type fakeROM struct {
	proto       Protocol
	fingerprint uint32 // raw CheckCRC(0, 256) answer
	idReg       uint32
	chipID      uint32
	bootVersion string
	jedec       [3]byte
	key         [16]byte

	// refuseAfter, when > 0, makes the refuseAfter-th FlashWrite4K of a
	// session and every one after it in that session do nothing (answered
	// OK): a bootloader that refuses a retried write until it is reset.
	refuseAfter int
	// badReads garbles one byte of every FlashRead4K reply.
	badReads bool
	// fixedBaud ignores SetBaudRate (no reply, rate unchanged).
	fixedBaud bool
	// fault injects one fault into the next command of a name
	// ("CheckCRC", "FlashErase" …): the command lost on its way in (not
	// executed, no reply), its reply lost, or its reply garbled.
	fault map[string]string
	skip  map[string]int // commands of that name to let pass first
	// srLock models a flash whose status register locks for good on a
	// write of the value it already holds (bk7231-protocol.md §7.3).
	srLock bool

	mu      sync.Mutex
	flash   []byte
	locked  bool // BASIC: re-protected by CheckCRC
	marked  bool // BASIC: a LinkCheck came after the CheckCRC
	writes  int  // FlashWrite4K this session
	reboots int
	cmds    map[string]int
	sr      uint16
	srDead  bool   // status register locked by a needless write
	ctrl    uint32 // SCTRL_EFUSE_CTRL
	optr    uint32 // SCTRL_EFUSE_OPTR
}

func (f *fakeROM) Flash() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]byte(nil), f.flash...)
}

func (f *fakeROM) count(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cmds[name]
}

// serve answers frames on p until ctx ends or p closes.
func (f *fakeROM) serve(ctx context.Context, p *transport.PipePort) {
	f.mu.Lock()
	if f.cmds == nil {
		f.cmds = map[string]int{}
	}
	f.mu.Unlock()
	var in []byte
	buf := make([]byte, 8192)
	p.SetReadTimeout(5 * time.Millisecond)
	for ctx.Err() == nil {
		n, err := p.Read(buf)
		if err != nil {
			return
		}
		in = append(in, buf[:n]...)
		for {
			i := bytes.Index(in, []byte{0x01, 0xE0, 0xFC})
			if i < 0 || len(in) < i+4 {
				break
			}
			in = in[i:]
			if in[3] == 0xFF {
				if len(in) < 7 {
					break
				}
				l := int(binary.LittleEndian.Uint16(in[5:7]))
				if len(in) < 7+l {
					break
				}
				op, params := in[7], append([]byte(nil), in[8:7+l]...)
				in = in[7+l:]
				f.mu.Lock()
				f.long(p, op, params)
				f.mu.Unlock()
				continue
			}
			ll := int(in[3])
			if len(in) < 4+ll {
				break
			}
			code, payload := in[4], append([]byte(nil), in[5:4+ll]...)
			in = in[4+ll:]
			f.mu.Lock()
			f.short(p, code, payload)
			f.mu.Unlock()
		}
	}
}

func (f *fakeROM) full() bool { return f.proto == ProtoFull }

func (f *fakeROM) at(a uint32) int { return int(a) & (len(f.flash) - 1) }

// short executes a short command; the caller holds f.mu.
func (f *fakeROM) short(p *transport.PipePort, code byte, pl []byte) {
	le := binary.LittleEndian
	fault, ok := f.begin(shortCmdName(code))
	if !ok {
		return
	}
	reply := func(data ...byte) {
		out := append([]byte{0x04, 0x0E, byte(4 + len(data)), 0x01, 0xE0, 0xFC, code}, data...)
		f.send(p, fault, out, len(out)-1)
	}
	switch {
	case code == 0x00:
		if f.locked {
			f.marked = true
		}
		f.send(p, fault, []byte{0x04, 0x0E, 0x05, 0x01, 0xE0, 0xFC, 0x01, 0x00}, 7)
	case code == 0x03 && f.full():
		a, v := le.Uint32(pl), uint32(0)
		switch a {
		case f.idReg:
			v = f.chipID
		case 0x00800074:
			v = f.ctrl
		case 0x00800078:
			v = f.optr
		}
		reply(le.AppendUint32(pl[:4:4], v)...)
	case code == 0x01 && f.full():
		a, v := le.Uint32(pl), le.Uint32(pl[4:])
		if a == 0x00800074 && v&1 != 0 {
			// An eFuse read completes at once (bit 0 clears).
			f.optr = 0x100 | uint32(f.key[(v>>8)&0x0F])
			v &^= 1
		}
		if a == 0x00800074 {
			f.ctrl = v
		}
		reply(pl[:8]...)
	case code == 0x0E && len(pl) > 0 && pl[0] == 0xA5:
		f.locked, f.marked, f.writes = false, false, 0
		f.reboots++
		p.SetBaudRate(LinkBaud)
	case code == 0x0F && f.fixedBaud:
	case code == 0x0F:
		baud, delay := le.Uint32(pl), time.Duration(pl[4])*time.Millisecond
		time.Sleep(delay)
		p.SetBaudRate(int(baud))
		reply(pl[:5]...)
	case code == 0x10:
		start, end := le.Uint32(pl), le.Uint32(pl[4:])
		var raw uint32
		if start == 0 && end == 256 {
			raw = f.fingerprint
		} else {
			n := end - start
			if f.full() {
				n++
			}
			raw = crc32.Update(0, crc32.IEEETable, f.read(start, int(n))) ^ 0xFFFFFFFF
		}
		if !f.full() {
			f.locked, f.marked = true, false
		}
		reply(le.AppendUint32(nil, raw)...)
	case code == 0x11 && f.proto == ProtoBasicTuya:
		reply([]byte(f.bootVersion)...)
	default:
		reply(0x07)
	}
}

func (f *fakeROM) read(a uint32, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = f.flash[f.at(a+uint32(i))]
	}
	return out
}

// long executes a long command; the caller holds f.mu.
func (f *fakeROM) long(p *transport.PipePort, op byte, pl []byte) {
	le := binary.LittleEndian
	fault, ok := f.begin(longCmdName(op))
	if !ok {
		return
	}
	reply := func(status byte, data ...byte) {
		n := 2 + len(data)
		f.send(p, fault, append([]byte{0x04, 0x0E, 0xFF, 0x01, 0xE0, 0xFC, 0xF4, byte(n), byte(n >> 8), op, status}, data...), 10)
	}
	basicOps := map[byte]bool{0x06: true, 0x07: true, 0x09: true, 0x0F: true}
	if !f.full() && !basicOps[op] {
		reply(0x07)
		return
	}
	switch op {
	case 0x09:
		a := le.Uint32(pl)
		if !f.full() && a < bootloaderEnd {
			reply(0x06, append(pl[:4:4], 0)...)
			return
		}
		data := f.read(a, sectorSize)
		if f.badReads {
			data[100] ^= 0x5A
		}
		reply(0, append(pl[:4:4], data...)...)
	case 0x07:
		a := le.Uint32(pl)
		f.writes++
		refused := f.refuseAfter > 0 && f.writes >= f.refuseAfter
		if !f.locked && !refused && f.sr&0x407C == 0 {
			for i, b := range pl[4:] {
				f.flash[f.at(a+uint32(i))] &= b
			}
		}
		reply(0, pl[:4]...)
	case 0x0F:
		a, size := le.Uint32(pl[1:]), uint32(sectorSize)
		if pl[0] == 0xD8 {
			size = blockSize
		}
		if f.locked && f.marked {
			f.locked = false
		}
		if !f.locked && f.sr&0x407C == 0 {
			base := a &^ (size - 1)
			for i := uint32(0); i < size; i++ {
				f.flash[f.at(base+i)] = 0xFF
			}
		}
		reply(0, pl[:5]...)
	case 0x0E:
		reply(0, 0x00, f.jedec[0], f.jedec[1], f.jedec[2])
	case 0x0C:
		v := byte(f.sr)
		if pl[0] == 0x35 {
			v = byte(f.sr >> 8)
		}
		reply(0, pl[0], v)
	case 0x0D:
		v := uint16(pl[1])
		if len(pl) > 2 {
			v |= uint16(pl[2]) << 8
		}
		switch {
		case f.srDead:
		case f.srLock && v == f.sr:
			f.sr, f.srDead = 0x7BFC, true
		default:
			f.sr = v
		}
		reply(0, pl...)
	default:
		reply(0x07)
	}
}

// begin counts a command and takes the fault armed for it; run is false
// when the command is lost on its way in. The caller holds f.mu.
func (f *fakeROM) begin(name string) (fault string, run bool) {
	k, ok := f.fault[name]
	switch {
	case !ok:
	case f.skip[name] > 0:
		f.skip[name]--
		k = ""
	default:
		delete(f.fault, name)
	}
	if k == "lost" {
		return "", false
	}
	f.cmds[name]++
	return k, true
}

// send writes a reply, applying a fault: "drop" loses it, "garble" flips
// the byte at index i (the status of a long reply, the last data byte of
// a short one).
func (f *fakeROM) send(p *transport.PipePort, fault string, out []byte, i int) {
	switch fault {
	case "drop":
		return
	case "garble":
		out[i] ^= 0x5A
	}
	p.Write(out)
}

// arm sets a fault for the command of a name that comes after skip more
// of them.
func (f *fakeROM) arm(name, kind string, skip int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fault == nil {
		f.fault, f.skip = map[string]string{}, map[string]int{}
	}
	f.fault[name], f.skip[name] = kind, skip
}

// fired reports whether every armed fault has been applied.
func (f *fakeROM) fired() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.fault) == 0
}

func shortCmdName(c byte) string {
	return map[byte]string{0x00: "LinkCheck", 0x01: "WriteReg", 0x03: "ReadReg", 0x0E: "Reboot", 0x0F: "SetBaudRate", 0x10: "CheckCRC", 0x11: "BootVersion", 0x7E: "VirtualQuery"}[c]
}

func longCmdName(op byte) string {
	return map[byte]string{0x07: "FlashWrite4K", 0x09: "FlashRead4K", 0x0C: "ReadSR", 0x0D: "WriteSR", 0x0E: "GetMID", 0x0F: "FlashErase"}[op]
}
