package bksim

import (
	"fmt"
	"time"
)

// Long-reply status codes (reference §3.3; bk_idk type.h).
const (
	statusOK          = 0
	statusLenError    = 4 // PACK_LEN_ERROR
	statusPayloadLack = 5 // PACK_PAYLOAD_LACK
	statusParamError  = 6 // PARAM_ERROR
	statusUnknownCmd  = 7 // UNKNOW_CMD
)

// Registers answered by ReadReg on FULL chips (reference §6; TSDK
// sys_ctrl.h).
const (
	regChipID    = 0x00800000
	regDeviceID  = 0x00800004
	regEfuseCtrl = 0x00800074
	regEfuseOptr = 0x00800078
)

var shortNames = map[byte]string{
	0x00: "LinkCheck", 0x01: "WriteReg", 0x03: "ReadReg", 0x0E: "Reboot", 0x0F: "SetBaudRate",
	0x10: "CheckCRC", 0x11: "ReadBootVersion", 0x70: "Reset", 0xAA: "StayRom",
}

var longNames = map[byte]string{
	0x06: "FlashWrite", 0x07: "FlashWrite4K", 0x08: "FlashRead", 0x09: "FlashRead4K", 0x0A: "FlashEraseAll",
	0x0B: "FlashErase4K", 0x0C: "FlashReadSR", 0x0D: "FlashWriteSR", 0x0E: "FlashGetMID", 0x0F: "FlashErase",
}

const (
	// SetBaudRate outside this range is ignored without a reply.
	minBaud = 1200
	maxBaud = 6_000_000
	// maxCRCSpan caps one CheckCRC; a ROM would grind through a reversed
	// or huge range for minutes.
	maxCRCSpan = 64 << 20
)

// cutKind is a physical fault that interrupts a command.
type cutKind int

const (
	cutNone      cutKind = iota
	cutPowerLoss         // Faults.PowerLoss*: the chip is off afterwards
	cutReset             // Faults.Reset*: the chip is back in its link window
)

// cut is a fault decided for the command being executed: it strikes frac
// of the way through.
type cut struct {
	kind cutKind
	frac float64
}

// action is what the chip does once a frame has been decoded.
type action struct {
	handled bool          // the chip executed the frame: input arriving meanwhile is dropped
	reply   []byte        // nil: no reply
	busy    time.Duration // flash busy time before the reply (only with Config.Timing)
	wait    time.Duration // protocol wait before the reply (SetBaudRate delay), always
	epoch   uint64        // reset generation the reply belongs to
	cut     cut           // a fault that strikes after busy instead of the reply
	what    string        // the command, for the fault's log line
}

// junkLimit is how many bytes without a frame, in download mode, make the
// simulated user power-cycle the chip (see Config.AutoReset).
const junkLimit = 32

// noteJunk counts a byte that made no frame; the caller holds d.mu.
func (d *Device) noteJunk(now time.Time) {
	if d.state != stateDownload || d.cfg.AutoReset <= 0 {
		return
	}
	d.junk++
	if d.junk >= junkLimit && d.autoResetAt.IsZero() {
		d.autoResetAt = now.Add(d.cfg.AutoReset)
		d.logf("%d bytes of garbage in download mode (host at another baud rate?): the user power-cycles the chip in %v", d.junk, d.cfg.AutoReset)
	}
}

func isLinkCheck(f *frame) bool { return !f.long && f.code == 0x00 }

func isIdentify(f *frame) bool {
	return !f.long && f.code == identifyCode && string(f.params) == identifyPayload
}

// onFrame reacts to a decoded frame according to the chip's state; the caller
// holds d.mu.
func (d *Device) onFrame(f *frame, now time.Time) action {
	switch d.state {
	case stateApp, stateOff:
		if isLinkCheck(f) && d.cfg.AutoReset > 0 && d.autoResetAt.IsZero() {
			d.autoResetAt = now.Add(d.cfg.AutoReset)
			d.logf("LinkCheck while the chip is %s: the user power-cycles it in %v", map[state]string{stateApp: "running its application", stateOff: "off"}[d.state], d.cfg.AutoReset)
		}
		return action{}
	case stateBricked:
		return action{}
	case stateWindow:
		if !isLinkCheck(f) {
			return action{}
		}
		d.state = stateDownload
		d.logf("linked: %s download mode (%s)", d.cfg.Chip, d.prof.proto)
	}
	d.lastCmd = now
	a := d.command(f, now)
	a.handled = true
	a.epoch = d.epoch
	if !d.cfg.Timing {
		a.busy = 0
	}
	return a
}

// command executes a frame in download mode; the caller holds d.mu.
func (d *Device) command(f *frame, now time.Time) action {
	if isIdentify(f) && !d.cfg.Unmarked {
		d.commands["Identify"]++
		js := d.identityJSON()
		d.logf("Identify: %s", js)
		return action{reply: shortReply(identifyCode, js...)}
	}
	if !d.prof.supports(f) {
		if !f.long || f.code != longCode {
			name := fmt.Sprintf("Unknown 0x%02X", f.code)
			d.commands[name]++
			d.logf("%s: unknown command, status 7", name)
			return action{reply: shortReply(f.code, statusUnknownCmd)}
		}
		name := fmt.Sprintf("Unknown long 0x%02X", f.op)
		d.commands[name]++
		d.logf("%s: unknown command, status 7", name)
		return action{reply: longReply(f.op, statusUnknownCmd)}
	}
	var name string
	if f.long {
		name = longNames[f.op]
	} else {
		name = shortNames[f.code]
	}
	d.commands[name]++
	if isLinkCheck(f) {
		return d.shortCommand(name, f)
	}
	d.cmdCount++
	d.cut = cut{}
	if fa := d.cfg.Faults; fa.ResetAt == d.cmdCount || (fa.ResetRate > 0 && d.faultActive() && d.txRand.Float64() < fa.ResetRate) {
		d.cut = cut{kind: cutReset, frac: d.cutFraction()}
	}
	epoch := d.epoch
	var a action
	switch {
	case !f.long:
		a = d.shortCommand(name, f)
	case f.partial:
		d.logf("%s incomplete frame (%d of %d bytes): status 5", name, 1+len(f.params), f.length)
		d.brokenCommand()
		a = action{reply: longReply(f.op, statusPayloadLack, errorData(f.op, f.params)...)}
	default:
		a = d.longCommand(name, f, now)
	}
	if d.cut.kind != cutNone && d.epoch == epoch {
		a.cut = d.cut
		a.what = name
		a.reply = nil
		a.busy = time.Duration(float64(a.busy) * d.cut.frac)
		a.wait = 0
	}
	d.cut = cut{}
	return a
}

// faultActive reports whether the probabilistic faults apply yet: the chip
// has taken more than FaultAfter bytes off its input, the current frame
// included; the caller holds d.mu.
func (d *Device) faultActive() bool { return d.consumed > d.cfg.Faults.FaultAfter }

// cutFraction is how far through its command a fault strikes.
func (d *Device) cutFraction() float64 { return 0.1 + 0.8*d.txRand.Float64() }

// flashOp counts an erase or program command and decides whether the power
// fails in its middle; the caller holds d.mu.
func (d *Device) flashOp() {
	d.flashOps++
	fa := d.cfg.Faults
	if fa.PowerLossAt == d.flashOps || (fa.PowerLossRate > 0 && d.faultActive() && d.txRand.Float64() < fa.PowerLossRate) {
		d.cut = cut{kind: cutPowerLoss, frac: d.cutFraction()}
	}
}

// brokenCommand notes a command that arrived broken (status 4 or 5). A
// bootloader-based chip then ignores erase and program until the next
// LinkCheck: this is the simulator's reading of "retrying a failed write
// on T in the same session fails every time" (reference §4.3, elektroda
// topic4147664 post #93, where the failures came from line interference):
// the bootloader re-protects the flash when a flash command fails, as it
// does after CheckCRC, and only a LinkCheck lets erase unprotect it again.
func (d *Device) brokenCommand() {
	if d.prof.proto != protoFull && d.lock == lockNone {
		d.lock = lockFault
		d.logf("a command arrived broken: flash re-protected until the next LinkCheck")
	}
}

func (d *Device) shortCommand(name string, f *frame) action {
	p := f.params
	switch f.code {
	case 0x00:
		if d.lock != lockNone {
			d.lock = lockNone
			d.logf("%s ok (flash unprotected again)", name)
		} else {
			d.logf("%s ok", name)
		}
		return action{reply: shortReply(0x01, 0x00)}
	case 0x01:
		addr, val := le32(arg(p, 0, 4)), le32(arg(p, 4, 4))
		d.writeReg(addr, val)
		d.logf("%s 0x%08X = 0x%08X ok", name, addr, val)
		return action{reply: shortReply(0x01, arg(p, 0, 8)...)}
	case 0x03:
		addr := le32(arg(p, 0, 4))
		v := d.readReg(addr)
		d.logf("%s 0x%08X = 0x%08X ok", name, addr, v)
		return action{reply: shortReply(0x03, append(arg(p, 0, 4), put32(v)...)...)}
	case 0x0E:
		v := arg(p, 0, 1)[0]
		if v == 0xA5 {
			d.logf("%s ok", name)
			d.resetLocked("Reboot command")
			return action{}
		}
		d.logf("%s 0x%02X: not A5, echoed", name, v)
		return action{reply: shortReply(0x0E, v)}
	case 0x0F:
		baud := le32(arg(p, 0, 4))
		delay := time.Duration(arg(p, 4, 1)[0]) * time.Millisecond
		if baud < minBaud || baud > maxBaud {
			d.logf("%s %d: rate outside %d..%d ignored, no reply", name, baud, minBaud, maxBaud)
			return action{}
		}
		d.baud = int(baud)
		d.logf("%s %d (delay %v) ok", name, baud, delay)
		// The ROM re-inits its UART at once, waits delay_ms, then
		// replies at the new rate (bk_idk CHANGE_UART_SAMPRATE_CMD);
		// this wait is not flash timing, so it applies without Timing.
		return action{reply: shortReply(0x0F, arg(p, 0, 5)...), wait: delay}
	case 0x10:
		start, end := le32(arg(p, 0, 4)), le32(arg(p, 4, 4))
		n := int64(end) - int64(start)
		if d.prof.proto == protoFull {
			n++ // the BootROM includes the end address (reference §4.2)
		}
		n = min(max(n, 0), maxCRCSpan)
		crc := d.crcFlash(start, n)
		d.logf("%s 0x%06X..0x%06X (%d bytes) = 0x%08X ok", name, start, end, n, crc)
		if d.prof.proto != protoFull {
			d.lock = lockCRC // reference §4.3
		}
		return action{reply: shortReply(0x10, put32(crc)...), busy: crcTime(n)}
	case 0x11:
		d.logf("%s %s ok", name, d.prof.bootVersion)
		return action{reply: shortReply(0x11, []byte(d.prof.bootVersion)...)}
	case 0x70:
		v := arg(p, 0, 4)
		if string(v) == "SEAN" {
			d.logf("%s ok", name)
			d.resetLocked("Reset command")
			return action{}
		}
		d.logf("%s % X: not SEAN, echoed", name, v)
		return action{reply: shortReply(0x70, v...)}
	case 0xAA:
		d.logf("%s ok", name)
		return action{reply: shortReply(0xAA, arg(p, 0, 1)...)}
	}
	return action{}
}

func (d *Device) longCommand(name string, f *frame, now time.Time) action {
	p := f.params
	lenError := func(want string) action {
		d.logf("%s: parameter length %d, want %s: status 4", name, f.length, want)
		d.brokenCommand()
		return action{reply: longReply(f.op, statusLenError, errorData(f.op, p)...)}
	}
	switch f.op {
	case 0x06, 0x07:
		if len(p) < 4 || (f.op == 0x07 && f.length != 5+sectorSize) {
			return lenError("address + data (4096 bytes for FlashWrite4K)")
		}
		addr, data := le32(p), p[4:]
		echo := p[:4:4]
		if f.op == 0x06 {
			echo = append(echo, byte(len(data))) // 8-bit "written" field
		}
		reply := longReply(f.op, statusOK, echo...)
		d.flashOp()
		if why := d.flashUnchangeable(); why != "" {
			d.logf("%s 0x%06X %d bytes ok (%s: nothing programmed)", name, addr, len(data), why)
			return action{reply: reply}
		}
		d.programCut(addr, data)
		d.logf("%s 0x%06X %d bytes ok", name, addr, len(data))
		return action{reply: reply, busy: programTime(len(data))}
	case 0x08:
		if f.length != 6 {
			return lenError("6")
		}
		addr, n := le32(p), int(p[4])
		d.logf("%s 0x%06X %d bytes ok", name, addr, n)
		return action{reply: longReply(0x08, statusOK, append(p[:4:4], d.readFlash(addr, n)...)...)}
	case 0x09:
		if f.length != 5 {
			return lenError("5")
		}
		addr := le32(p)
		if d.prof.proto != protoFull && addr < bootloaderEnd {
			d.logf("%s 0x%06X refused: status 6 (bootloader area; add the flash size to the address)", name, addr)
			return action{reply: longReply(0x09, statusParamError, append(p[:4:4], 0x00)...)}
		}
		d.logf("%s 0x%06X ok", name, addr)
		return action{reply: longReply(0x09, statusOK, append(p[:4:4], d.readFlash(addr, sectorSize)...)...)}
	case 0x0A:
		if f.length != 2 {
			return lenError("2")
		}
		return d.eraseCmd(name, f.op, p[:1], 0, d.size, timeChipErase)
	case 0x0B:
		if f.length != 5 {
			return lenError("5")
		}
		return d.eraseCmd(name, f.op, p[:4], le32(p), sectorSize, timeSectorErase)
	case 0x0C:
		if len(p) < 1 {
			return lenError("2")
		}
		v := d.readSR(p[0], now)
		d.logf("%s 0x%02X = 0x%02X ok", name, p[0], v)
		return action{reply: longReply(0x0C, statusOK, p[0], v)}
	case 0x0D:
		if len(p) < 1 {
			return lenError("2 or more")
		}
		res := d.writeSR(p[0], p[1:], now)
		d.logf("%s 0x%02X % X %s (SR now 0x%04X)", name, p[0], p[1:], res, d.sr)
		return action{reply: longReply(0x0D, statusOK, p...)}
	case 0x0E:
		if len(p) < 1 {
			return lenError("2 or more")
		}
		rx := d.spiTransfer(p, now)
		d.logf("%s % X -> % X ok", name, p, rx)
		return action{reply: longReply(0x0E, statusOK, rx...)}
	case 0x0F:
		if f.length != 6 {
			return lenError("6")
		}
		addr := le32(p[1:5])
		switch p[0] {
		case 0x20:
			return d.eraseCmd(name+" 4K", f.op, p[:5], addr, sectorSize, timeSectorErase)
		case 0x52:
			return d.eraseCmd(name+" 32K", f.op, p[:5], addr, 0x8000, timeBlock32)
		case 0xD8:
			return d.eraseCmd(name+" 64K", f.op, p[:5], addr, 0x10000, timeBlock64)
		}
		d.logf("%s size command 0x%02X unknown: status 6", name, p[0])
		return action{reply: longReply(0x0F, statusParamError, p[:5]...)}
	}
	return action{}
}

// eraseCmd erases the aligned block of n bytes holding addr unless the flash
// is protected, and replies OK either way, as the real chips do.
func (d *Device) eraseCmd(name string, op byte, echo []byte, addr, n uint32, busy time.Duration) action {
	reply := longReply(op, statusOK, echo...)
	d.flashOp()
	if why := d.flashUnchangeable(); why != "" {
		d.logf("%s 0x%06X ok (%s: nothing erased)", name, addr, why)
		return action{reply: reply}
	}
	if d.cut.kind == cutPowerLoss {
		d.erasePartial(addr, n, d.cut.frac)
	} else {
		// A reset leaves the flash chip powered: it finishes the erase.
		d.erase(addr, n)
	}
	d.logf("%s 0x%06X ok", name, addr)
	return action{reply: reply, busy: busy}
}

// flashUnchangeable says why erase and program do nothing now ("" when
// they work); the caller holds d.mu.
func (d *Device) flashUnchangeable() string {
	switch {
	case d.cfg.Faults.FlashInaccessible:
		return "flash not accessible"
	case d.prof.proto == protoFull && d.sr&protectMask != 0:
		return "flash protected"
	case d.lock == lockCRC:
		return "flash re-protected by CheckCRC until the next LinkCheck"
	case d.lock == lockFault:
		return "flash re-protected after a broken command until the next LinkCheck"
	}
	return ""
}

// errorData is what a long reply carries after its status when the command
// failed: the echoed fields of the normal reply, without data (bk_idk).
func errorData(op byte, p []byte) []byte {
	switch op {
	case 0x06:
		return append(arg(p, 0, 4), 0)
	case 0x07, 0x08, 0x09, 0x0B:
		return arg(p, 0, 4)
	case 0x0A:
		return arg(p, 0, 1)
	case 0x0F:
		return arg(p, 0, 5)
	}
	return nil
}

func (d *Device) readReg(addr uint32) uint32 {
	switch addr {
	case regChipID:
		return d.prof.chipID
	case regDeviceID:
		return d.prof.deviceID
	case regEfuseCtrl:
		return d.efuseCtrl
	case regEfuseOptr:
		return d.efuseOptr
	}
	return d.regs[addr]
}

// writeReg models the SCTRL registers the tools touch: the eFuse controller
// (bit 0 start, bit 1 direction, bits 8–12 byte address; result in OPTR bits
// 0–7 with bit 8 valid) completes a read at once; eFuse programming is not
// simulated. Identification registers are read-only.
func (d *Device) writeReg(addr, v uint32) {
	switch addr {
	case regChipID, regDeviceID, regEfuseOptr:
		return
	case regEfuseCtrl:
		if v&1 != 0 {
			if v&2 == 0 {
				d.efuseOptr = 0x100 | uint32(d.efuse[(v>>8)&0x1F])
			} else {
				d.efuseOptr = 0
				d.logf("eFuse programming requested: not simulated, eFuse unchanged")
			}
			v &^= 1
		}
		d.efuseCtrl = v
		return
	}
	d.regs[addr] = v
}
