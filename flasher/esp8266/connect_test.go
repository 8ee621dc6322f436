package esp8266

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/transport"
)

var testMAC = [6]byte{0xDC, 0x4F, 0x22, 0x6B, 0x21, 0x9E}

// events collects what Connect tells the user.
type events []flasher.Event

func (e *events) sink() flasher.Notify { return func(ev flasher.Event) { *e = append(*e, ev) } }

func (e events) has(kind flasher.EventKind, text string) bool {
	for _, ev := range e {
		if ev.Kind == kind && strings.Contains(ev.Message, text) {
			return true
		}
	}
	return false
}

// TestConnectROMTranscript connects to a scripted ESP8266 ROM and checks
// the commands, their bytes, and what Info reports.
func TestConnectROMTranscript(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chip := newROMChip(efuseFor(testMAC, false), 0x1640EF)
		p := newFake(chip.handle)
		p.baud = 9600 // e.g. a CH341 opened at its default rate
		var ev events
		d, err := Connect(context.Background(), p, Options{Events: ev.sink()})
		if err != nil {
			t.Fatal(err)
		}
		if p.bauds[0] != 115200 {
			t.Errorf("baud set to %v, want 115200 first", p.bauds)
		}
		if !ev.has(flasher.Action, "hold GPIO0 to GND and power-cycle") {
			t.Errorf("no power-cycle instruction: %v", ev)
		}
		info := d.Info()
		if info.Family != flasher.ESP8266 || info.Protocol != "ROM loader" || info.MAC.String() != "DC:4F:22:6B:21:9E" || info.MACFrom != "eFuse" {
			t.Errorf("info %+v", info)
		}
		if info.FlashIDString() != "EF4016" || info.FlashSize != 4<<20 || info.FlashSizeFrom != "JEDEC id" || info.CrystalMHz != 26 || info.Baud != 115200 {
			t.Errorf("flash/crystal: %+v", info)
		}
		if len(info.Notes) != 0 {
			t.Errorf("notes %q", info.Notes)
		}
		// One SYNC (its 8 replies drained), the identification reads, the
		// flash attach, then RDID through the SPI user registers.
		want := []byte{opSync, opReadReg, opReadReg, opReadReg, opReadReg, opReadReg, opReadReg, opFlashBegin,
			opReadReg, opReadReg, opWriteReg, opWriteReg, opWriteReg, opWriteReg, opWriteReg, opReadReg, opReadReg, opWriteReg, opWriteReg}
		if got := p.ops(); !bytes.Equal(got, want) {
			t.Errorf("ops % X\nwant % X", got, want)
		}
		// The ESP8266 ROM gets a 16-byte FLASH_BEGIN(0, 0, 0x400, 0), never 20.
		if fb := p.requests(opFlashBegin); len(fb) != 1 || !bytes.Equal(fb[0], unhex(t, "00000000 00000000 00040000 00000000")) {
			t.Errorf("attach FLASH_BEGIN % X", fb)
		}
		// USER1, USER, USER2, W0, CMD as esptool's run_spiflash_command.
		wr := p.requests(opWriteReg)
		for i, w := range [][2]uint32{{spiUser1, 0x1700}, {spiUser, 0x90000000}, {spiUser2, 0x7000009F}, {spiW0, 0}, {spiCmd, 0x40000}, {spiUser, 0x80000064}, {spiUser2, 0x70000035}} {
			if a, v := binary.LittleEndian.Uint32(wr[i]), binary.LittleEndian.Uint32(wr[i][4:]); a != w[0] || v != w[1] || !bytes.Equal(wr[i][8:], unhex(t, "FFFFFFFF 00000000")) {
				t.Errorf("WRITE_REG %d: 0x%08X = 0x%08X (% X)", i, a, v, wr[i])
			}
		}
	})
}

func TestConnectESP8285(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chip := newROMChip(efuseFor(testMAC, true), 0) // flash id unreadable
		p, d := connectFake(t, chip.handle)
		info := d.Info()
		if info.Family != flasher.ESP8285 || info.FlashSize != 1<<20 || info.FlashSizeFrom != "eFuse (ESP8285 embedded flash)" {
			t.Errorf("%+v", info)
		}
		// The one-shot RDID fallback was tried after the user command.
		if !slices.ContainsFunc(p.requests(opWriteReg), func(r []byte) bool {
			return binary.LittleEndian.Uint32(r) == spiCmd && binary.LittleEndian.Uint32(r[4:]) == spiCmdRDID
		}) {
			t.Error("no one-shot RDID fallback")
		}
	})
}

func TestConnectNotESP8266(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chip := newROMChip(efuseFor(testMAC, false), 0x1640EF)
		chip.regs[regChipMagic] = 0x00F01D83 // ESP32
		_, err := Connect(context.Background(), newFake(chip.handle), Options{})
		if !errors.Is(err, flasher.ErrUnsupported) || !strings.Contains(flasher.Hint(err), "ESP32") {
			t.Fatalf("err = %v, hint %q", err, flasher.Hint(err))
		}
	})
}

func TestConnectNoSync(t *testing.T) {
	tests := []struct {
		name     string
		line     []byte
		wantHint string
		wantErr  string
	}{
		{"silent", nil, "RX and TX are crossed", "no SYNC reply within 2s"},
		{"boot log only", []byte("ets Jan  8 2013,rst cause:2, boot mode:(3,6)\r\nload 0x4010f000"), "bytes arrived but no loader reply", "no SYNC reply"},
		{"crash banner", []byte("\r\nFatal exception (28):\r\nepc1=0x4000228b\r\n"), "crash report", "Fatal exception"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newFake(func(f []byte) [][]byte { return nil })
				p.junk = tc.line // printed while the host tries
				start := time.Now()
				_, err := Connect(context.Background(), p, Options{SyncWindow: 2 * time.Second})
				if !errors.Is(err, flasher.ErrNoLink) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v", err)
				}
				if h := flasher.Hint(err); !strings.Contains(h, tc.wantHint) || !strings.Contains(h, "GPIO0") {
					t.Errorf("hint %q", h)
				}
				if el := time.Since(start); el < 2*time.Second || el > 2200*time.Millisecond {
					t.Errorf("gave up after %v", el)
				}
				// About one SYNC every 100 ms, input flushed before each.
				if n := len(p.requests(opSync)); n < 15 || n > 21 {
					t.Errorf("%d SYNC tries in 2 s", n)
				}
			})
		})
	}
}

func TestConnectCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		_, err := Connect(ctx, newFake(nil), Options{})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestClassicReset checks esptool's ClassicReset sequence on DTR/RTS and
// the fallback to manual reset when the port has no modem lines.
func TestClassicReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chip := newROMChip(efuseFor(testMAC, false), 0x1440C8)
		p := newFake(chip.handle)
		p.modem = true
		var ev events
		d, err := Connect(context.Background(), p, Options{Reset: ResetClassic, Events: ev.sink()})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"DTR=0", "RTS=1", "DTR=1", "RTS=0", "DTR=0"}
		if !slices.Equal(p.lines, want) {
			t.Errorf("lines %v, want %v", p.lines, want)
		}
		if ev.has(flasher.Action, "power-cycle") {
			t.Error("asked for a power-cycle although DTR/RTS work")
		}
		// Reboot pulses EN (RTS) with GPIO0 released.
		p.lines = nil
		manual, err := d.Reboot(context.Background())
		if err != nil || manual != "" || !slices.Equal(p.lines, []string{"DTR=0", "RTS=1", "RTS=0"}) {
			t.Errorf("reboot: %q %v %v", manual, err, p.lines)
		}

		// No modem lines: one manual prompt, a note, and a manual reboot.
		chip = newROMChip(efuseFor(testMAC, false), 0x1440C8)
		p = newFake(chip.handle)
		ev = nil
		d, err = Connect(context.Background(), p, Options{Reset: ResetClassic, Events: ev.sink()})
		if err != nil {
			t.Fatal(err)
		}
		if !ev.has(flasher.Action, "power-cycle") || !ev.has(flasher.Warning, "no DTR/RTS") {
			t.Errorf("events %v", ev)
		}
		manual, err = d.Reboot(context.Background())
		if err != nil || !strings.Contains(manual, "release GPIO0") || !strings.Contains(manual, "power-cycle") {
			t.Errorf("manual reboot: %q %v", manual, err)
		}
	})
}

// TestClassicResetNotWired: DTR/RTS exist but do not reach GPIO0/EN; the
// chip answers only after the user power-cycles it, so the user is
// prompted and Reboot asks for a power-cycle instead of pulsing RTS.
func TestClassicResetNotWired(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chip := newROMChip(efuseFor(testMAC, false), 0x1440C8)
		ignore := 8
		chip.override = func(f []byte) ([][]byte, bool) {
			if f[1] == opSync && ignore > 0 {
				ignore--
				return nil, true
			}
			return nil, false
		}
		p := newFake(chip.handle)
		p.modem = true
		var ev events
		d, err := Connect(context.Background(), p, Options{Reset: ResetClassic, Events: ev.sink()})
		if err != nil {
			t.Fatal(err)
		}
		if !ev.has(flasher.Action, "not wired to GPIO0/EN") {
			t.Errorf("events %v", ev)
		}
		manual, err := d.Reboot(context.Background())
		if err != nil || !strings.Contains(manual, "power-cycle") {
			t.Errorf("reboot: %q %v", manual, err)
		}
	})
}

// TestStubAlreadyRunning: SYNC replies with value 0 mean a stub is running;
// it is reused and no stub is uploaded.
func TestStubAlreadyRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chip := newROMChip(efuseFor(testMAC, false), 0x1440C8)
		chip.stub = true
		p := newFake(chip.handle)
		d, err := Connect(context.Background(), p, Options{Stub: testStub()})
		if err != nil {
			t.Fatal(err)
		}
		if d.Info().Protocol != "stub (already running)" || len(p.requests(opMemBegin)) != 0 || len(p.requests(opFlashBegin)) != 0 {
			t.Errorf("protocol %q, ops % X", d.Info().Protocol, p.ops())
		}
		if !strings.Contains(strings.Join(d.Info().Notes, "\n"), "already running") {
			t.Errorf("notes %q", d.Info().Notes)
		}
		// SPI_SET_PARAMS with the detected size (esptool's values).
		sp := p.requests(opSPISetParams)
		if len(sp) != 1 || !bytes.Equal(sp[0], words(nil, 0, 1<<20, 0x10000, 0x1000, 0x100, 0xFFFF)) {
			t.Errorf("SPI_SET_PARAMS % X", sp)
		}
	})
}

func testStub() *Stub {
	text := make([]byte, 0x1800+100) // two MEM_DATA blocks
	for i := range text {
		text[i] = byte(i)
	}
	return &Stub{Text: text, TextStart: 0x4010C500, Entry: 0x4010C504, Data: []byte{1, 2, 3}, DataStart: 0x3FFFAE6C}
}

// TestStubUpload checks MEM_BEGIN/MEM_DATA/MEM_END and the OHAI wait in
// every order the ROM may produce.
func TestStubUpload(t *testing.T) {
	tests := []struct {
		name    string
		memEnd  [][]byte // what follows MEM_END
		wantErr string
	}{
		{"reply then OHAI", [][]byte{reply(opMemEnd, 0, nil), []byte("OHAI")}, ""},
		{"no reply, only OHAI", [][]byte{[]byte("OHAI")}, ""},
		{"OHAI then a late reply", [][]byte{[]byte("OHAI"), reply(opMemEnd, 0, nil)}, ""},
		{"no greeting", [][]byte{reply(opMemEnd, 0, nil)}, "no OHAI greeting"},
		{"wrong greeting", [][]byte{[]byte("HELLO")}, "expected the OHAI greeting"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				chip := newROMChip(efuseFor(testMAC, false), 0x1440C8)
				chip.override = func(f []byte) ([][]byte, bool) {
					if f[1] == opMemEnd {
						chip.stub = true
						return tc.memEnd, true
					}
					return nil, false
				}
				p := newFake(chip.handle)
				d, err := Connect(context.Background(), p, Options{Stub: testStub()})
				if tc.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("err = %v, want %q", err, tc.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if d.Info().Protocol != "stub" {
					t.Errorf("protocol %q", d.Info().Protocol)
				}
				mb := p.requests(opMemBegin)
				if len(mb) != 2 || !bytes.Equal(mb[0], words(nil, 0x1800+100, 2, 0x1800, 0x4010C500)) || !bytes.Equal(mb[1], words(nil, 3, 1, 0x1800, 0x3FFFAE6C)) {
					t.Errorf("MEM_BEGIN % X", mb)
				}
				md := p.requests(opMemData)
				if len(md) != 3 || !bytes.Equal(md[1][:16], words(nil, 100, 1, 0, 0)) || len(md[0]) != 16+0x1800 {
					t.Errorf("MEM_DATA headers wrong")
				}
				// The checksum goes in the header of each MEM_DATA.
				for _, f := range p.frames {
					if f[1] == opMemData && binary.LittleEndian.Uint32(f[4:]) != checksum(f[8+16:]) {
						t.Errorf("MEM_DATA checksum 0x%X", binary.LittleEndian.Uint32(f[4:]))
					}
				}
				if me := p.requests(opMemEnd); len(me) != 1 || !bytes.Equal(me[0], words(nil, 0, 0x4010C504)) {
					t.Errorf("MEM_END % X", me)
				}
			})
		})
	}
}

// TestROMWriteTranscript writes the §8.1 example (0x9A000 bytes at 0) in
// ROM mode and checks FLASH_BEGIN, the FLASH_DATA blocks and that no
// FLASH_END goes to the ROM.
func TestROMWriteTranscript(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chip := newROMChip(efuseFor(testMAC, false), 0x1440C8)
		p, d := connectFake(t, chip.handle)
		// 0x9A000 - 0x103 bytes: still 154 sectors and 616 blocks; the
		// client pads to 4 bytes and the last block to 1 KiB with 0xFF.
		data := make([]byte, 0x9A000-0x103)
		for i := range data {
			data[i] = byte(i * 13)
		}
		p.frames = nil
		var prog progress
		res, err := d.Write(context.Background(), 0, data, &prog)
		if err != nil {
			t.Fatal(err)
		}
		if res.Verified || res.VerifyMethod != "ROM block checksum only" || res.Size != len(data) || res.Erased != 0x9A000 || res.Retries != 0 {
			t.Errorf("result %+v", res)
		}
		fb := p.requests(opFlashBegin)
		if len(fb) != 1 || !bytes.Equal(fb[0], unhex(t, "00A00800 68020000 00040000 00000000")) {
			t.Fatalf("FLASH_BEGIN % X", fb)
		}
		blocks := p.requests(opFlashData)
		if len(blocks) != 616 {
			t.Fatalf("%d FLASH_DATA blocks", len(blocks))
		}
		for seq, b := range blocks {
			if !bytes.Equal(b[:16], words(nil, 0x400, uint32(seq), 0, 0)) || len(b) != 16+0x400 {
				t.Fatalf("block %d header % X", seq, b[:16])
			}
		}
		last := blocks[615][16:]
		if tail := len(data) - 615*0x400; !bytes.Equal(last[:tail], data[615*0x400:]) || !bytes.Equal(last[tail:], bytes.Repeat([]byte{0xFF}, 0x400-tail)) {
			t.Error("last block not padded with 0xFF")
		}
		if len(p.requests(opFlashEnd)) != 0 {
			t.Error("FLASH_END sent to the ROM")
		}
		if prog.phases() != "erase write" || prog.done["write"] != int64(len(data)) {
			t.Errorf("progress %+v", prog)
		}
	})
}

// connectFake connects without options to a scripted chip.
func connectFake(t *testing.T, handle func([]byte) [][]byte) (*fakePort, *Device) {
	t.Helper()
	return connectFakeWith(t, handle, Options{})
}

func connectFakeWith(t *testing.T, handle func([]byte) [][]byte, o Options) (*fakePort, *Device) {
	t.Helper()
	p := newFake(handle)
	d, err := Connect(context.Background(), p, o)
	if err != nil {
		t.Fatal(err)
	}
	return p, d
}

// progress records phases and totals.
type progress struct {
	order []string
	cur   string
	done  map[string]int64
	ends  []error
}

func (p *progress) Begin(op string, addr uint32, total int64) {
	p.order = append(p.order, op)
	p.cur = op
	if p.done == nil {
		p.done = map[string]int64{}
	}
}
func (p *progress) Advance(n int64) { p.done[p.cur] += n }
func (p *progress) End(err error)   { p.ends = append(p.ends, err) }
func (p *progress) phases() string  { return strings.Join(p.order, " ") }

func TestROMWriteRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chip := newROMChip(efuseFor(testMAC, false), 0x1440C8)
		fails := map[uint32]int{2: 1, 5: 9} // block 2 fails once, block 5 always
		chip.override = func(f []byte) ([][]byte, bool) {
			if f[1] != opFlashData {
				return nil, false
			}
			seq := binary.LittleEndian.Uint32(f[12:])
			if fails[seq] > 0 {
				fails[seq]--
				return [][]byte{reply(opFlashData, 0, nil, 1, romChecksumError)}, true
			}
			return nil, false
		}
		_, d := connectFake(t, chip.handle)
		res, err := d.Write(context.Background(), 0x10000, make([]byte, 8*1024), nil)
		var oe *flasher.OpError
		var se *flasher.StatusError
		if !errors.As(err, &oe) || oe.Addr != 0x10000+5*0x400 || !errors.As(err, &se) || se.Status != romChecksumError {
			t.Fatalf("err = %v", err)
		}
		if !strings.Contains(flasher.Hint(err), "nothing is bricked") {
			t.Errorf("hint %q", flasher.Hint(err))
		}
		if res.Retries != 1+2 {
			t.Errorf("retries %d, want 3 (one for block 2, two for block 5)", res.Retries)
		}
	})
}

func TestWriteRefusals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chip := newROMChip(efuseFor(testMAC, false), 0x1440C8) // 1 MiB
		p, d := connectFake(t, chip.handle)
		p.frames = nil
		tests := []struct {
			name string
			addr uint32
			n    int
			msg  string
		}{
			{"larger than the flash", 0, 1<<20 + 4096, "end past the 1024 KiB flash"},
			{"past the end", 0xFF000, 8192, "end past"},
			{"unaligned", 0x1001, 16, "4 KiB sector boundary"},
			{"empty", 0, 0, "no data"},
		}
		for _, tc := range tests {
			_, err := d.Write(context.Background(), tc.addr, make([]byte, tc.n), nil)
			if !errors.Is(err, flasher.ErrRefused) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("%s: %v", tc.name, err)
			}
		}
		if len(p.frames) != 0 {
			t.Errorf("refused writes sent % X", p.ops())
		}
	})
}

// TestROMOnlyOperations: the ROM cannot read, hash or erase (§8.2).
func TestROMOnlyOperations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chip := newROMChip(efuseFor(testMAC, false), 0x1440C8)
		_, d := connectFake(t, chip.handle)
		ctx := context.Background()
		_, md5err := d.MD5(ctx, 0, 4096)
		for name, err := range map[string]error{
			"read":   d.Read(ctx, 0, 4096, &bytes.Buffer{}, nil),
			"md5":    md5err,
			"erase":  d.EraseRegion(ctx, 0, 4096),
			"verify": d.Verify(ctx, 0, []byte{1}),
		} {
			if !errors.Is(err, flasher.ErrUnsupported) || !strings.Contains(flasher.Hint(err), "--stub") {
				t.Errorf("%s: %v (hint %q)", name, err, flasher.Hint(err))
			}
		}
		if !strings.Contains(d.Read(ctx, 0, 1, &bytes.Buffer{}, nil).Error(), "cannot read flash") {
			t.Error("read error does not say the ROM cannot read")
		}
	})
}

// stubChip extends romChip with a stub's READ_FLASH, MD5 and compressed
// write over a flash array.
type stubChip struct {
	*romChip
	flash    []byte
	acks     []uint32
	badMD5   int // READ_FLASH digests to spoil
	pending  *readJob
	deflData bytes.Buffer
	defl     struct{ addr, size uint32 }
}

type readJob struct{ addr, n, sent uint32 }

func newStubChip() *stubChip {
	c := &stubChip{romChip: newROMChip(efuseFor(testMAC, false), 0x1440C8), flash: make([]byte, 1<<20)}
	c.stub = true
	for i := range c.flash {
		c.flash[i] = byte(i * 7 >> 3)
	}
	c.override = c.handleStub
	return c
}

func (c *stubChip) handleStub(f []byte) ([][]byte, bool) {
	if j := c.pending; j != nil && (len(f) != 4) {
		c.pending = nil // a non-ACK frame ends a read
		return nil, true
	}
	if j := c.pending; j != nil {
		c.acks = append(c.acks, binary.LittleEndian.Uint32(f))
		return c.nextRead(), true
	}
	if len(f) < 8 {
		return nil, true
	}
	op, data := f[1], f[8:]
	switch op {
	case opReadFlash:
		addr, n := binary.LittleEndian.Uint32(data), binary.LittleEndian.Uint32(data[4:])
		c.pending = &readJob{addr: addr, n: n}
		return append([][]byte{reply(op, 0, nil)}, c.nextRead()...), true
	case opSPIFlashMD5:
		addr, n := binary.LittleEndian.Uint32(data), binary.LittleEndian.Uint32(data[4:])
		sum := md5.Sum(c.flash[addr : addr+n])
		return [][]byte{reply(op, 0, sum[:])}, true
	case opFlashDeflBegin:
		c.defl.addr, c.defl.size = binary.LittleEndian.Uint32(data[12:]), binary.LittleEndian.Uint32(data)
		c.deflData.Reset()
	case opFlashDeflData:
		c.deflData.Write(data[16:])
	case opFlashDeflEnd:
		out, err := inflate(c.deflData.Bytes())
		if err != nil || uint32(len(out)) != c.defl.size {
			return [][]byte{reply(op, 0, nil, 0xC7, 0)}, true
		}
		copy(c.flash[c.defl.addr:], out)
	}
	return nil, false
}

// nextRead sends the next 4 KiB frame of a pending read, or the digest.
func (c *stubChip) nextRead() [][]byte {
	j := c.pending
	if j.sent == j.n {
		c.pending = nil
		sum := md5.Sum(c.flash[j.addr : j.addr+j.n])
		if c.badMD5 > 0 {
			c.badMD5--
			sum[0] ^= 1
		}
		return [][]byte{sum[:]}
	}
	n := min(j.n-j.sent, readPacket)
	frame := c.flash[j.addr+j.sent : j.addr+j.sent+n]
	j.sent += n
	return [][]byte{frame}
}

func TestStubReadTranscript(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chip := newStubChip()
		p, d := connectFake(t, chip.handle)
		var out bytes.Buffer
		var prog progress
		const addr, n = 0x3000, 0x1800 + maxReadChunk // two READ_FLASH chunks
		if err := d.Read(context.Background(), addr, n, &out, &prog); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), chip.flash[addr:addr+n]) {
			t.Fatal("read data differs")
		}
		rf := p.requests(opReadFlash)
		if len(rf) != 2 || !bytes.Equal(rf[0], words(nil, addr, maxReadChunk, 0x1000, readWindow)) || !bytes.Equal(rf[1], words(nil, addr+maxReadChunk, 0x1800, 0x1000, readWindow)) {
			t.Errorf("READ_FLASH % X", rf)
		}
		// ACKs carry the bytes received so far within each command.
		want := []uint32{}
		for i := uint32(1); i <= maxReadChunk/0x1000; i++ {
			want = append(want, i*0x1000)
		}
		want = append(want, 0x1000, 0x1800)
		if !slices.Equal(chip.acks, want) {
			t.Errorf("acks %X\nwant %X", chip.acks, want)
		}
		if prog.done["read"] != n {
			t.Errorf("progress %d", prog.done["read"])
		}
	})
}

func TestStubReadMD5Mismatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chip := newStubChip()
		chip.badMD5 = 1 // the first digest is wrong: retried with half the chunk
		p, d := connectFake(t, chip.handle)
		var out bytes.Buffer
		var prog progress
		const size = 2 * maxReadChunk
		if err := d.Read(context.Background(), 0, size, &out, &prog); err != nil || !bytes.Equal(out.Bytes(), chip.flash[:size]) {
			t.Fatalf("retry failed: %v", err)
		}
		if prog.done["read"] != size {
			t.Errorf("progress counted a retried chunk twice: 0x%X", prog.done["read"])
		}
		var lens []uint32
		for _, r := range p.requests(opReadFlash) {
			lens = append(lens, binary.LittleEndian.Uint32(r[4:]))
		}
		if want := []uint32{maxReadChunk, maxReadChunk / 2, maxReadChunk, maxReadChunk / 2}; !slices.Equal(lens, want) {
			t.Errorf("READ_FLASH lengths %X, want %X", lens, want)
		}
		// Between the failed chunk and its retry the client resyncs.
		if ops := p.ops(); !bytes.Contains(ops, []byte{opReadFlash, opSync, opReadFlash}) {
			t.Errorf("ops % X", ops)
		}

		chip.badMD5 = 100 // every try fails
		out.Reset()
		err := d.Read(context.Background(), 0, 8192, &out, nil)
		if !errors.Is(err, flasher.ErrVerify) || out.Len() != 0 || !strings.Contains(flasher.Hint(err), "lower --baud") {
			t.Fatalf("err = %v, %d bytes written", err, out.Len())
		}
	})
}

func TestStubCompressedWriteTranscript(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chip := newStubChip()
		p, d := connectFake(t, chip.handle)
		data := bytes.Repeat([]byte("Tasmota firmware "), 4000) // 68 000 bytes
		var prog progress
		res, err := d.Write(context.Background(), 0x20000, data, &prog)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Verified || res.VerifyMethod != "MD5 on chip" || res.Erased != 0x11000 {
			t.Errorf("result %+v", res)
		}
		if !bytes.Equal(chip.flash[0x20000:0x20000+len(data)], data) {
			t.Error("flash differs")
		}
		// FLASH_DEFL_BEGIN: uncompressed size, blocks, 0x4000, offset and
		// the encrypted word (20 bytes to a stub).
		db := p.requests(opFlashDeflBegin)
		if len(db) != 1 || len(db[0]) != 20 || !bytes.Equal(db[0][:4], words(nil, uint32(len(data)))) || !bytes.Equal(db[0][8:], words(nil, 0x4000, 0x20000, 0)) {
			t.Errorf("FLASH_DEFL_BEGIN % X", db)
		}
		if de := p.requests(opFlashDeflEnd); len(de) != 1 || !bytes.Equal(de[0], []byte{1, 0, 0, 0}) {
			t.Errorf("FLASH_DEFL_END % X", de)
		}
		if md := p.requests(opSPIFlashMD5); len(md) != 1 || !bytes.Equal(md[0], words(nil, 0x20000, uint32(len(data)), 0, 0)) {
			t.Errorf("SPI_FLASH_MD5 % X", md)
		}
		if prog.phases() != "write verify" || prog.done["write"] != int64(len(data)) {
			t.Errorf("progress %+v", prog)
		}
	})
}

func TestStubWriteRetriesOnlyChecksumRejections(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  byte
		retries int
		wantErr bool
	}{
		{"bad checksum is retried", stubBadChecksum, 1, false},
		{"SPI failure is not", 0xC4, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				chip := newStubChip()
				failed := false
				inner := chip.override
				chip.override = func(f []byte) ([][]byte, bool) {
					if len(f) >= 8 && f[1] == opFlashDeflData && !failed {
						failed = true
						return [][]byte{reply(opFlashDeflData, 0, nil, tc.status, 0)}, true
					}
					return inner(f)
				}
				_, d := connectFake(t, chip.handle)
				res, err := d.Write(context.Background(), 0, bytes.Repeat([]byte{1, 2, 3, 4}, 2000), nil)
				if (err != nil) != tc.wantErr || res.Retries != tc.retries {
					t.Fatalf("retries %d, err %v", res.Retries, err)
				}
			})
		})
	}
}

func TestChangeBaud(t *testing.T) {
	tests := []struct {
		name     string
		deafAt   int // the chip stops answering when the host reads at this rate
		wantBaud int
		wantNote string
	}{
		{"460800 works", 0, 460800, ""},
		{"link fails at the new rate", 460800, 115200, "the link failed at 460800 baud"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				chip := newStubChip()
				var p *fakePort
				inner := chip.override
				chip.override = func(f []byte) ([][]byte, bool) {
					if p.baud == tc.deafAt {
						return nil, true
					}
					return inner(f)
				}
				p = newFake(chip.handle)
				d, err := Connect(context.Background(), p, Options{Baud: 460800})
				if err != nil {
					t.Fatal(err)
				}
				if d.Info().Baud != tc.wantBaud || p.baud != tc.wantBaud {
					t.Errorf("baud %d / port %d, want %d", d.Info().Baud, p.baud, tc.wantBaud)
				}
				cb := p.requests(opChangeBaudrate)
				if !bytes.Equal(cb[0], words(nil, 460800, 115200)) {
					t.Errorf("CHANGE_BAUDRATE % X", cb[0])
				}
				if tc.wantNote != "" {
					if len(cb) != 2 || !bytes.Equal(cb[1], words(nil, 115200, 460800)) {
						t.Errorf("no switch back: % X", cb)
					}
					if !strings.Contains(strings.Join(d.Info().Notes, "\n"), tc.wantNote) {
						t.Errorf("notes %q", d.Info().Notes)
					}
				}
			})
		})
	}
}

func TestROMStaysAt115200(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chip := newROMChip(efuseFor(testMAC, false), 0x1440C8)
		p := newFake(chip.handle)
		d, err := Connect(context.Background(), p, Options{Baud: 921600})
		if err != nil {
			t.Fatal(err)
		}
		if d.Info().Baud != 115200 || len(p.requests(opChangeBaudrate)) != 0 || !strings.Contains(strings.Join(d.Info().Notes, ""), "cannot change its baud rate") {
			t.Errorf("%+v", d.Info())
		}
	})
}

func TestHasSyncReply(t *testing.T) {
	romReply := slipFrame(unhex(t, "01 08 02 00 07 07 12 20 00 00"))
	tests := []struct {
		name string
		in   []byte
		want bool
	}{
		{"ROM reply after boot noise", append([]byte(" ets Jan  8 2013,rst cause:2, boot mode:(1,6)\r\n"), romReply...), true},
		{"a Beken LinkCheck reply", []byte{0x04, 0x0E, 0x05, 0x01, 0xE0, 0xFC, 0x01, 0x00}, false},
		{"our own SYNC echoed", SyncFrame(), false},
		{"crash banner", []byte("Guru Meditation Error: Core  0 panic'ed\r\n"), false},
	}
	for _, tc := range tests {
		if got := HasSyncReply(tc.in); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func slipFrame(b []byte) []byte { return append(append([]byte{0xC0}, b...), 0xC0) }

var _ transport.Port = (*fakePort)(nil)

// TestStubGoneAfterReset: the chip reset under the session (its ROM loader
// rejects the stub's commands) is reported as a lost link, not as an
// unsupported command, with the advice to run the write again.
func TestStubGoneAfterReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chip := newStubChip()
		_, d := connectFake(t, chip.handle)
		chip.stub, chip.override = false, nil // reset: the ROM answers now
		_, err := d.Write(context.Background(), 0x20000, bytes.Repeat([]byte("Tasmota "), 4000), nil)
		if !errors.Is(err, flasher.ErrNoLink) || errors.Is(err, flasher.ErrUnsupported) || !strings.Contains(err.Error(), "the chip was reset") ||
			!strings.Contains(flasher.Hint(err), "run the write again") {
			t.Errorf("%v (hint %q)", err, flasher.Hint(err))
		}
	})
}
