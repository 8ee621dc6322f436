package espsim

import (
	"fmt"
	"testing"
)

// decodeChip applies esptool's ESP8266 rules (reference §7.2, §7.3) to the
// four eFuse words, independently of the simulator's encoder.
func decodeChip(w [4]uint32) (mac [6]byte, desc string, chipID uint32, err error) {
	var oui [3]byte
	switch {
	case w[3] != 0:
		oui = [3]byte{byte(w[3] >> 16), byte(w[3] >> 8), byte(w[3])}
	case (w[1]>>16)&0xFF == 0:
		oui = [3]byte{0x18, 0xFE, 0x34}
	case (w[1]>>16)&0xFF == 1:
		oui = [3]byte{0xAC, 0xD0, 0x74}
	default:
		return mac, "", 0, fmt.Errorf("unknown OUI")
	}
	mac = [6]byte{oui[0], oui[1], oui[2], byte(w[1] >> 8), byte(w[1]), byte(w[0] >> 24)}
	chipID = w[0]>>24 | (w[1]&0xFFFFFF)<<8
	bit := func(n int) bool { return w[n/32]&(1<<(n%32)) != 0 }
	desc = "ESP8266EX"
	if bit(4) || bit(80) {
		size := -1
		switch {
		case bit(4) && !bit(121) && !bit(123) && !bit(122):
			size = 1
		case bit(4) && !bit(121) && !bit(123) && bit(122):
			size = 2
		case !bit(4) && bit(121) && !bit(123) && !bit(122):
			size = 2
		case !bit(4) && bit(121) && !bit(123) && bit(122):
			size = 4
		}
		desc = map[int]string{1: "ESP8285N08", 2: "ESP8285N16"}[size]
		if desc == "" {
			desc = "ESP8285"
		}
	}
	return mac, desc, chipID, nil
}

// TestEFuses reads the eFuse words over the link and decodes MAC, chip
// description and chip ID as esptool does.
func TestEFuses(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		mac    [6]byte
		desc   string
		chipID uint32
	}{
		{"ESP8266 default", Config{}, [6]byte{0x18, 0xFE, 0x34, 0x5A, 0xC3, 0xE1}, "ESP8266EX", 0x005AC3E1},
		{"ESP8266 OUI AC:D0:74", Config{MAC: [6]byte{0xAC, 0xD0, 0x74, 1, 2, 3}}, [6]byte{0xAC, 0xD0, 0x74, 1, 2, 3}, "ESP8266EX", 0x01010203},
		{"ESP8266 custom OUI", Config{MAC: [6]byte{0x68, 0xC6, 0x3A, 0xDF, 0xDD, 0x5D}}, [6]byte{0x68, 0xC6, 0x3A, 0xDF, 0xDD, 0x5D}, "ESP8266EX", 0x00DFDD5D},
		{"ESP8285 1 MiB", Config{Chip: ESP8285}, [6]byte{0xDC, 0x4F, 0x22, 0x6B, 0x21, 0x9E}, "ESP8285N08", 0x006B219E},
		{"ESP8285 2 MiB, Espressif OUI", Config{Chip: ESP8285, Flash: DefaultFlash(ESP8285, 2*mib), MAC: [6]byte{0x18, 0xFE, 0x34, 9, 8, 7}}, [6]byte{0x18, 0xFE, 0x34, 9, 8, 7}, "ESP8285N16", 0x00090807},
		{"ESP8285 4 MiB", Config{Chip: ESP8285, Flash: DefaultFlash(ESP8285, 4*mib)}, [6]byte{0xDC, 0x4F, 0x22, 0x6B, 0x21, 0x9E}, "ESP8285", 0x006B219E},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runSim(t, tt.cfg, simOpts{}, func(h *host) {
				var w [4]uint32
				for i := range w {
					w[i] = h.readReg(0x3FF00050 + 4*uint32(i))
				}
				mac, desc, id, err := decodeChip(w)
				if err != nil {
					t.Fatalf("words %08X: %v", w, err)
				}
				if h.d.MAC() != tt.mac {
					t.Errorf("Device.MAC %X, eFuses %X", h.d.MAC(), tt.mac)
				}
				if mac != tt.mac || desc != tt.desc || id != tt.chipID {
					t.Errorf("decoded %X %s chip id %06X, want %X %s %06X (words %08X)", mac, desc, id, tt.mac, tt.desc, tt.chipID, w)
				}
				h.writeReg(0x3FF00050, 0)
				if h.readReg(0x3FF00050) != w[0] {
					t.Errorf("eFuse word changed by WRITE_REG")
				}
			})
		})
	}
}

// TestCrystalDivider: esptool estimates the crystal as baud × divider /
// 2e6 and rounds to 26 or 40 (reference §7.4).
func TestCrystalDivider(t *testing.T) {
	for _, xtal := range []int{26, 40} {
		runSim(t, Config{Crystal: xtal}, simOpts{}, func(h *host) {
			div := h.readReg(0x60000014) & 0xFFFFF
			est := 115200 * float64(div) / 1e6 / 2
			if est < float64(xtal)-0.5 || est > float64(xtal)+0.5 {
				t.Errorf("crystal %d: divider %d estimates %.2f MHz", xtal, div, est)
			}
			if xtal == 26 && div != 0x1C4 {
				t.Errorf("26 MHz divider %d, real ESP8266 reported 452", div)
			}
		})
	}
}

// readFlashID runs esptool's SPI user command for RDID (reference §9.1).
func (h *host) readFlashID() uint32 {
	h.t.Helper()
	const base = 0x60000200
	usr, usr2 := h.readReg(base+0x1C), h.readReg(base+0x24)
	h.writeReg(base+0x20, 23<<8)       // MISO 24 bits
	h.writeReg(base+0x1C, 1<<31|1<<28) // command + MISO phases
	h.writeReg(base+0x24, 7<<28|0x9F)  // 8-bit command 0x9F
	h.writeReg(base+0x40, 0)           // W0
	h.writeReg(base, 1<<18)            // SPI_USR
	for i := 0; h.readReg(base)&(1<<18) != 0; i++ {
		if i == 10 {
			h.t.Fatal("SPI command did not complete")
		}
	}
	id := h.readReg(base+0x40) & 0xFFFFFF
	h.writeReg(base+0x1C, usr)
	h.writeReg(base+0x24, usr2)
	return id
}

// TestFlashID: RDID through the SPI0 user-command registers returns the
// JEDEC id in W0 once the flash is attached.
func TestFlashID(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want uint32
	}{
		{"default 1 MiB", Config{}, 0x1440C8},
		{"default 4 MiB", Config{Flash: DefaultFlash(ESP8266, 4*mib)}, 0x1640C8},
		{"configured id", Config{FlashID: 0x15405E, Flash: DefaultFlash(ESP8266, 2*mib)}, 0x15405E},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runSim(t, tt.cfg, simOpts{}, func(h *host) {
				if id := h.readFlashID(); id != 0 {
					t.Errorf("before attach: id %06X, want 0 (flash not attached)", id)
				}
				h.ok(opFlashBegin, words(0, 0, 0x400, 0), 0) // esptool's ROM "attach"
				if id := h.readFlashID(); id != tt.want {
					t.Errorf("ROM: id %06X, want %06X", id, tt.want)
				}
				// The older one-shot method: CMD bit 28 (RDID).
				h.writeReg(0x60000240, 0)
				h.writeReg(0x60000200, 1<<28)
				if h.readReg(0x60000200) != 0 || h.readReg(0x60000240) != tt.want {
					t.Errorf("one-shot RDID: W0 %06X", h.readReg(0x60000240))
				}
				h.uploadStub()
				if id := h.readFlashID(); id != tt.want {
					t.Errorf("stub: id %06X, want %06X", id, tt.want)
				}
			})
		})
	}
}

// TestWriteRegMask: WRITE_REG keeps the bits outside the mask (stub rule,
// reference §5.1) and several 16-byte entries may share one stub command.
func TestWriteRegMask(t *testing.T) {
	runSim(t, Config{}, simOpts{}, func(h *host) {
		const reg = 0x60000E00
		h.writeReg(reg, 0x12345678)
		h.ok(opWriteReg, words(reg, 0xABCD0000, 0xFFFF0000, 0), 0)
		if v := h.readReg(reg); v != 0xABCD5678 {
			t.Errorf("ROM masked write: %08X", v)
		}
		h.uploadStub()
		h.ok(opWriteReg, append(words(reg, 0x00000011, 0x000000FF, 0), words(reg+4, 7, 0xFFFFFFFF, 0)...), 0)
		if v, w := h.readReg(reg), h.readReg(reg+4); v != 0xABCD5611 || w != 7 {
			t.Errorf("stub masked writes: %08X %08X", v, w)
		}
		// NOT_ENOUGH_DATA in esp-flasher-stub, BAD_DATA_LEN in tuyaflash's.
		if r := h.do(opWriteReg, words(reg, 1, 1), 0); r.status != [2]byte{0xC0, 0} {
			t.Errorf("12-byte WRITE_REG: % X, want C0 00", r.status)
		}
	})
}
