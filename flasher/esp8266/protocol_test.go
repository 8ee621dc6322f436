package esp8266

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/slip"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestROMEraseSize checks get_erase_size against every row of the
// reference's §8.1 table.
func TestROMEraseSize(t *testing.T) {
	tests := []struct {
		offset, size uint32
		sentSectors  uint32
	}{
		{0x0, 0x1000, 1},
		{0x0, 0x9A000, 138},
		{0x8000, 0xC000, 6},
		{0x1000, 0xF0000, 225},
		{0xFB000, 0x4000, 2},
	}
	for _, tc := range tests {
		if got := romEraseSize(tc.offset, tc.size); got != tc.sentSectors*sectorSize {
			t.Errorf("romEraseSize(0x%X, 0x%X) = 0x%X, want %d sectors", tc.offset, tc.size, got, tc.sentSectors)
		}
	}
}

// romErases is the ROM's SPIEraseArea as the reference's bug model (§8.1,
// esptool#33) describes it: head sectors extra when the range crosses a
// 64 KiB block, double otherwise.
func romErases(offset, eraseSize uint32) uint32 {
	n := (eraseSize + sectorSize - 1) / sectorSize
	start := offset / sectorSize
	head := 16 - start%16
	if n <= head {
		return 2 * n
	}
	return n + head
}

// TestROMEraseSizeModel checks that, under the bug model, the ROM erases
// exactly the sectors needed (one extra for an odd count inside a block,
// which cannot be avoided) for every sector-aligned write up to 1 MiB.
func TestROMEraseSizeModel(t *testing.T) {
	for start := uint32(0); start < 32; start++ {
		for n := uint32(1); n <= 256; n++ {
			sent := romEraseSize(start*sectorSize, n*sectorSize)
			got := romErases(start*sectorSize, sent)
			head := min(16-start%16, n)
			want := n
			if n < 2*head && n%2 == 1 {
				want = n + 1
			}
			if got != want {
				t.Fatalf("start sector %d, %d sectors: ROM erases %d, want %d", start, n, got, want)
			}
		}
	}
}

// TestWorkedExamples checks the byte sequences of the reference's §4.3.
func TestWorkedExamples(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// SYNC: 46 bytes on the wire.
		want := append(unhex(t, "C0 00 08 24 00 00 00 00 00 07 07 12 20"), bytes.Repeat([]byte{0x55}, 32)...)
		want = append(want, 0xC0)
		if got := SyncFrame(); !bytes.Equal(got, want) || len(got) != 46 {
			t.Errorf("SYNC on the wire:\n% X\nwant\n% X", got, want)
		}

		// READ_REG 0x40001000 and its reply.
		p := newFake(func(f []byte) [][]byte { return [][]byte{unhex(t, "01 0A 02 00 01 C1 F0 FF 00 00")} })
		l := newLink(p)
		v, err := l.readReg(regChipMagic)
		if err != nil || v != 0xFFF0C101 {
			t.Fatalf("READ_REG = 0x%X, %v", v, err)
		}
		if want := unhex(t, "C0 00 0A 04 00 00 00 00 00 00 10 00 40 C0"); !bytes.Equal(p.wire, want) {
			t.Errorf("READ_REG on the wire % X, want % X", p.wire, want)
		}

		// The real ESP8266 trace of esptool#397: READ_REG 0x60000014.
		p = newFake(func(f []byte) [][]byte { return [][]byte{unhex(t, "01 0a 02 00 c4 01 00 00 00 00")} })
		l = newLink(p)
		v, err = l.readReg(regUARTClkDiv)
		if err != nil || v != 452 {
			t.Fatalf("UART divider = %d, %v", v, err)
		}
		if want := unhex(t, "c0000a04000000000014000060c0"); !bytes.Equal(p.wire, want) {
			t.Errorf("READ_REG on the wire % X, want % X", p.wire, want)
		}
		if mhz, off := crystalMHz(115200, v); mhz != 26 || off {
			t.Errorf("crystal %d MHz (off %v), want 26", mhz, off)
		}
	})
}

func TestTimeouts(t *testing.T) {
	const mb = 1_000_000
	tests := []struct {
		name string
		op   byte
		stub bool
		size int
		want time.Duration
	}{
		{"sync", opSync, false, 0, 100 * time.Millisecond},
		{"ROM FLASH_BEGIN small", opFlashBegin, false, 0x1000, 3 * time.Second},
		{"ROM FLASH_BEGIN erases 1 MB up front", opFlashBegin, false, mb, 40 * time.Second},
		{"stub FLASH_BEGIN", opFlashBegin, true, mb, 3 * time.Second},
		{"ROM MEM_END", opMemEnd, false, 0, 200 * time.Millisecond},
		{"stub MEM_END", opMemEnd, true, 0, 3 * time.Second},
		{"MD5 of 2 MB", opSPIFlashMD5, true, 2 * mb, 60 * time.Second},
		{"erase region 16 MB is capped", opEraseRegion, true, 16 * mb, 240 * time.Second},
		{"READ_REG", opReadReg, false, 0, 3 * time.Second},
		{"unknown opcode", 0x77, false, 0, 3 * time.Second},
	}
	for _, tc := range tests {
		if got := timeoutFor(tc.op, tc.stub, tc.size); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// A 16 KiB compressed block that inflates to 16 KiB: 16384 + 2 × 64 KiB
	// of erase budget at 40 s/MB = 5.9 s (esptool _get_flash_defl_block_timeout).
	if got := deflBlockTimeout(16384); got < 5800*time.Millisecond || got > 6*time.Second {
		t.Errorf("deflBlockTimeout(16384) = %v", got)
	}
}

func TestStatusErrors(t *testing.T) {
	tests := []struct {
		name        string
		op          byte
		st0, st1    byte
		code        byte
		meaning     string
		unsupported bool
		protocol    bool // a garbled message: a link fault worth a retry
	}{
		{"ROM checksum", opFlashData, 0x01, 0x07, 0x07, "checksum error", false, false},
		{"ROM flash write", opFlashData, 0x01, 0x08, 0x08, "flash write error", false, false},
		{"ROM lacks a stub command", opSPIFlashMD5, 0x01, 0x05, 0x05, "a command the ROM lacks", true, false},
		// Found by the fault campaign: a FLASH_BEGIN garbled on the line
		// made detect say "not supported by this chip" (exit 6).
		{"ROM garbled message", opFlashBegin, 0x01, 0x05, 0x05, "garbled", false, true},
		{"stub checksum", opFlashData, 0xC1, 0x00, 0xC1, "bad data checksum", false, false},
		{"legacy stub order", opFlashData, 0xC4, 0x01, 0xC4, "SPI flash operation failed", false, false},
		{"stub invalid command", opFlashData, 0xC3, 0x00, 0xC3, "invalid command", true, false},
		{"unknown", opFlashData, 0x01, 0x42, 0x42, "unknown code", false, false},
	}
	for _, tc := range tests {
		err := statusErr(tc.op, tc.st0, tc.st1)
		var se *flasher.StatusError
		if !errors.As(err, &se) || se.Status != tc.code || !strings.Contains(se.Meaning, tc.meaning) || se.Command != opName(tc.op) {
			t.Errorf("%s: %v", tc.name, err)
		}
		if !errors.Is(err, flasher.ErrDevice) || errors.Is(err, flasher.ErrUnsupported) != tc.unsupported || errors.Is(err, flasher.ErrProtocol) != tc.protocol {
			t.Errorf("%s: Is(ErrDevice)=%v Is(ErrUnsupported)=%v Is(ErrProtocol)=%v", tc.name, errors.Is(err, flasher.ErrDevice), errors.Is(err, flasher.ErrUnsupported), errors.Is(err, flasher.ErrProtocol))
		}
	}
}

// TestCheckStatusPosition: the status bytes follow the expected reply data
// (esptool check_command), e.g. after the 16 MD5 bytes.
func TestCheckStatusPosition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		digest := bytes.Repeat([]byte{0xAB}, 16)
		p := newFake(func(f []byte) [][]byte { return [][]byte{reply(opSPIFlashMD5, 0, digest)} })
		_, resp, err := newLink(p).check(opSPIFlashMD5, make([]byte, 16), 0, 16, time.Second)
		if err != nil || !bytes.Equal(resp, digest) {
			t.Fatalf("% X, %v", resp, err)
		}
		p = newFake(func(f []byte) [][]byte { return [][]byte{reply(opSPIFlashMD5, 0, nil, 0xC4, 0)} })
		_, _, err = newLink(p).check(opSPIFlashMD5, make([]byte, 16), 0, 16, time.Second)
		var se *flasher.StatusError
		if !errors.As(err, &se) || se.Status != 0xC4 {
			t.Fatalf("short error reply: %v", err)
		}
	})
}

// TestCommandSkipsStrayFrames: replies of other opcodes, garbage frames
// and a boot log are skipped until the matching reply (§4.2).
func TestCommandSkipsStrayFrames(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newFake(func(f []byte) [][]byte {
			return [][]byte{reply(opSync, 0x20120707, nil), {1, 2, 3}, {0xAA, 0x0A, 0, 0, 0, 0, 0, 0}, reply(opReadReg, 42, nil)}
		})
		p.push([]byte("ets Jan  8 2013,rst cause:2, boot mode:(1,7)\r\n"))
		v, err := newLink(p).readReg(0x60000078)
		if err != nil || v != 42 {
			t.Fatalf("%d, %v", v, err)
		}
	})
}

func TestCommandTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newFake(nil)
		start := time.Now()
		_, err := newLink(p).readReg(regChipMagic)
		var re *replyError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), "READ_REG: no reply within 3s") {
			t.Fatalf("err = %v", err)
		}
		// The deadline counts from when the request has left the wire.
		if el := time.Since(start); el < 3*time.Second || el > 3*time.Second+10*time.Millisecond {
			t.Errorf("gave up after %v", el)
		}
	})
}

func TestMACFromEfuse(t *testing.T) {
	tests := []struct {
		name string
		e    [4]uint32
		want string
		err  bool
	}{
		{"OUI in word 3", efuseFor([6]byte{0xDC, 0x4F, 0x22, 0x6B, 0x21, 0x9E}, false), "DC:4F:22:6B:21:9E", false},
		{"index 0 is 18:FE:34", [4]uint32{0x5A << 24, 0x00_12_34, 0, 0}, "18:FE:34:12:34:5A", false},
		{"index 1 is AC:D0:74", [4]uint32{0x01 << 24, 0x01_AB_CD, 0, 0}, "AC:D0:74:AB:CD:01", false},
		{"unknown index", [4]uint32{0, 0x02_00_00, 0, 0}, "", true},
		{"blank eFuses", [4]uint32{}, "18:FE:34:00:00:00", false},
	}
	for _, tc := range tests {
		m, err := macFromEfuse(tc.e)
		if (err != nil) != tc.err || (!tc.err && m.String() != tc.want) {
			t.Errorf("%s: %v, %v", tc.name, m, err)
		}
	}
	if bad, _ := flasher.MAC([6]byte{0x18, 0xFE, 0x34}).Placeholder(); !bad {
		t.Error("blank eFuse MAC should be a placeholder")
	}
}

func TestChipBits(t *testing.T) {
	tests := []struct {
		name    string
		e       [4]uint32
		esp8285 bool
		size    int
	}{
		{"ESP8266EX", [4]uint32{0, 0, 0, 0x18FE34}, false, 0},
		{"ESP8285 bit 4, 1 MiB", [4]uint32{1 << 4, 0, 0, 0}, true, 1 << 20},
		{"ESP8285 bit 4 + r3_26, 2 MiB", [4]uint32{1 << 4, 0, 0, 1 << 26}, true, 2 << 20},
		{"ESP8285 bit 80 + r3_25, 2 MiB", [4]uint32{0, 0, 1 << 16, 1 << 25}, true, 2 << 20},
		{"ESP8285 r3_25 + r3_26, 4 MiB", [4]uint32{0, 0, 1 << 16, 1<<25 | 1<<26}, true, 4 << 20},
		{"ESP8285 r3_27 unknown size", [4]uint32{1 << 4, 0, 0, 1 << 27}, true, 0},
	}
	for _, tc := range tests {
		if got := isESP8285(tc.e); got != tc.esp8285 {
			t.Errorf("%s: isESP8285 = %v", tc.name, got)
		}
		if tc.esp8285 {
			if got := esp8285FlashSize(tc.e); got != tc.size {
				t.Errorf("%s: size %d, want %d", tc.name, got, tc.size)
			}
		}
	}
	// system_get_chip_id(): (w0 >> 24) | (w1 & 0xFFFFFF) << 8.
	if id := chipID([4]uint32{0x9E000000, 0x00016B21, 0, 0}); id != 0x016B219E {
		t.Errorf("chip id 0x%X", id)
	}
}

func TestCrystal(t *testing.T) {
	tests := []struct {
		baud int
		div  uint32
		mhz  int
		off  bool
	}{
		{115200, 452, 26, false},
		{115200, 694, 40, false}, // 40 MHz crystal: 80 MHz APB / 115200
		{115200, 600, 40, true},  // 34.6 MHz: unusual
		{460800, 113, 26, false},
	}
	for _, tc := range tests {
		if mhz, off := crystalMHz(tc.baud, tc.div); mhz != tc.mhz || off != tc.off {
			t.Errorf("%d baud, div %d: %d MHz off=%v", tc.baud, tc.div, mhz, off)
		}
	}
}

func TestFlashSizeFromID(t *testing.T) {
	tests := []struct {
		id   uint32
		want int
	}{
		{0x1440C8, 1 << 20}, // GigaDevice GD25Q80
		{0x1640EF, 4 << 20}, // Winbond W25Q32
		{0x15701C, 2 << 20}, // EON, capacity 0x15
		{0x35205E, 2 << 20}, // capacity 0x35
		{0x12345E, 256 << 10},
		{0x20BA20, 64 << 20}, // capacity code 0x20
		{0x00481F, 8 << 20},  // Adesto: the type byte's low 5 bits (0x08)
		{0x000000, 0},
		{0xFFFFFF, 0},
	}
	for _, tc := range tests {
		if got := flashSizeFromID(tc.id); got != tc.want {
			t.Errorf("id %06X: %d, want %d", tc.id, got, tc.want)
		}
	}
}

func TestLoadStub(t *testing.T) {
	good := `{"entry": 1074840836, "text": "AAECAwQFBgc=", "text_start": 1074840832, "data": "BAU=", "data_start": 1073720940, "bss_start": 1073643776}`
	s, err := LoadStub(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s.Text, []byte{0, 1, 2, 3, 4, 5, 6, 7}) || !bytes.Equal(s.Data, []byte{4, 5}) || s.TextStart != 0x4010C500 || s.Entry != 0x4010C504 || s.DataStart != 0x3FFFAE6C || s.BSSStart != 0x3FFE8100 {
		t.Errorf("%+v", s)
	}
	tests := []struct {
		name, json, field, msg string
	}{
		{"not json", "hello", "", "not esptool's JSON"},
		{"no text", `{"text_start": 1074840832, "entry": 1074840836}`, "text", "missing"},
		{"text not base64", `{"text": "!!", "text_start": 1074840832, "entry": 1074840836}`, "text", "not base64"},
		{"no text_start", `{"text": "AAECAw==", "entry": 1074840836}`, "text_start", "missing"},
		{"text_start a string", `{"text": "AAECAw==", "text_start": "0x4010C500", "entry": 1074840836}`, "text_start", "must be a uint32"},
		{"no entry", `{"text": "AAECAw==", "text_start": 1074840832}`, "entry", "missing"},
		{"entry outside text", `{"text": "AAECAw==", "text_start": 1074840832, "entry": 1074840900}`, "entry", "outside the code"},
		{"ESP32 addresses", `{"text": "AAECAw==", "text_start": 1074266112, "entry": 1074266112}`, "text_start", "IRAM"},
		{"data without start", `{"text": "AAECAw==", "text_start": 1074840832, "entry": 1074840832, "data": "BAU="}`, "data_start", "missing"},
		{"data outside DRAM", `{"text": "AAECAw==", "text_start": 1074840832, "entry": 1074840832, "data": "BAU=", "data_start": 1}`, "data_start", "DRAM"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadStub(strings.NewReader(tc.json))
			var se *StubError
			if !errors.As(err, &se) || se.Field != tc.field || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v (want field %q, %q)", err, tc.field, tc.msg)
			}
		})
	}
}

func TestSLIPFrameOfAck(t *testing.T) {
	// READ_FLASH acknowledgements are bare SLIP frames of a u32 (§10.1).
	synctest.Test(t, func(t *testing.T) {
		p := newFake(nil)
		if _, err := newLink(p).sendRaw([]byte{0x00, 0x10, 0, 0}); err != nil {
			t.Fatal(err)
		}
		if want := slip.Encode(nil, []byte{0x00, 0x10, 0, 0}); !bytes.Equal(p.wire, want) {
			t.Errorf("% X", p.wire)
		}
	})
}
