package espsim

// Register model reached through READ_REG and WRITE_REG.

// SPI_CMD bits (reference §9.1, ESP8266 RTOS SDK spi_register.h).
const (
	spiCmdUSR  = 1 << 18
	spiCmdRDSR = 1 << 27
	spiCmdRDID = 1 << 28
	// One-shot bits that complete without effect here: READ, WREN, WRDI,
	// WRSR, PP, SE, BE, CE.
	spiCmdOneShot = 1<<31 | 1<<30 | 1<<29 | 1<<26 | 1<<25 | 1<<24 | 1<<23 | 1<<22
)

// SPI_USER bits.
const (
	spiUsrCommand = 1 << 31
	spiUsrMISO    = 1 << 28
)

// readReg returns the value at addr; unmodelled addresses read what was
// last written there, or 0.
func (d *Device) readReg(addr uint32) uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case addr == chipMagicAddr:
		return chipMagicValue
	case addr >= efuseMAC0Addr && addr <= efuseMAC3Addr && addr%4 == 0:
		return d.efuse[(addr-efuseMAC0Addr)/4]
	case addr == uartClkdivAddr:
		return d.clkdiv & 0xFFFFF
	}
	return d.regs[addr]
}

// writeReg applies WRITE_REG's mask rule (reference §5.1: new = value &
// mask | old & ^mask unless mask is all ones). The chip magic, the eFuses
// and the UART divider ignore writes; a write to SPI_CMD runs the command.
func (d *Device) writeReg(addr, value, mask uint32) {
	v := value & mask
	if mask != 0xFFFFFFFF {
		v |= d.readReg(addr) &^ mask
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case addr == chipMagicAddr, addr == uartClkdivAddr,
		addr >= efuseMAC0Addr && addr <= efuseMAC3Addr:
		return
	case addr == spiBase:
		d.regs[addr] = v
		d.spiCommandLocked(v)
		return
	}
	d.regs[addr] = v
}

// spiCommandLocked executes the SPI0 command bits of cmd and clears them,
// as the controller does when the transaction ends.
func (d *Device) spiCommandLocked(cmd uint32) {
	switch {
	case cmd&spiCmdUSR != 0:
		user := d.regs[spiBase+spiUserOffs]
		user1 := d.regs[spiBase+spiUser1Offs]
		user2 := d.regs[spiBase+spiUser2Offs]
		op := byte(user2)
		if user&spiUsrCommand == 0 {
			op = 0
		}
		n := 0
		if user&spiUsrMISO != 0 {
			n = (int((user1>>8)&0x1FF) + 1 + 7) / 8
		}
		d.setSPIData(d.flashReplyLocked(op, n))
	case cmd&spiCmdRDID != 0:
		d.setSPIData(d.flashReplyLocked(0x9F, 3))
	case cmd&spiCmdRDSR != 0:
		st := d.flashReplyLocked(0x05, 1)
		d.regs[spiBase+spiRdStatusOffs] = uint32(st[0])
	}
	d.regs[spiBase] = cmd &^ (spiCmdUSR | spiCmdRDID | spiCmdRDSR | spiCmdOneShot)
}

// setSPIData stores MISO bytes in W0…W15, first byte in the low bits of W0.
func (d *Device) setSPIData(b []byte) {
	for i := 0; i < len(b) && i < 64; i += 4 {
		var w uint32
		for j := 0; j < 4 && i+j < len(b); j++ {
			w |= uint32(b[i+j]) << (8 * j)
		}
		d.regs[spiBase+spiW0Offs+uint32(i)] = w
	}
}

// flashReplyLocked is what the flash chip shifts out for command op: the
// JEDEC id for RDID, idle status registers, the SFDP signature at address
// 0, 0xFF for anything else. Before the flash is attached the data lines
// read zeros.
func (d *Device) flashReplyLocked(op byte, n int) []byte {
	b := make([]byte, n)
	if !d.spiAttached {
		return b
	}
	var src []byte
	switch op {
	case 0x9F: // RDID
		src = []byte{byte(d.flashID), byte(d.flashID >> 8), byte(d.flashID >> 16)}
	case 0x05, 0x35, 0x15: // RDSR, RDSR2, RDSR3: not busy, not write-enabled
		src = []byte{0}
	case 0x5A: // SFDP signature "SFDP"
		if d.regs[spiBase+spiAddrOffs] == 0 {
			src = []byte("SFDP")
		}
	}
	for i := range b {
		if i < len(src) {
			b[i] = src[i]
		} else {
			b[i] = 0xFF
		}
	}
	return b
}
