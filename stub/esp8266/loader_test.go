package espstub

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher/esp8266"
)

const (
	opMemBegin = 0x05
	opMemEnd   = 0x06
	opMemData  = 0x07
)

// TestEmbeddedLoader: the loader's image, decoded by the client's loader
// code, is code only, lies in its window clear of the stub's, and is
// small enough to go up at 115200 baud in about a tenth of a second.
func TestEmbeddedLoader(t *testing.T) {
	ld, err := esp8266.LoadStub(bytes.NewReader(LoaderJSON()))
	if err != nil {
		t.Fatal(err)
	}
	st, err := esp8266.LoadStub(bytes.NewReader(JSON()))
	if err != nil {
		t.Fatal(err)
	}
	end := ld.TextStart + uint32(len(ld.Text))
	if len(ld.Data) != 0 || ld.TextStart != 0x4010EA00 || end > 0x4010F1C0 {
		t.Errorf("loader text 0x%08X+%d, %d data bytes", ld.TextStart, len(ld.Text), len(ld.Data))
	}
	if st.TextStart+uint32(len(st.Text)) > ld.TextStart {
		t.Errorf("the stub's code (to 0x%08X) overlaps the loader's", st.TextStart+uint32(len(st.Text)))
	}
	if len(ld.Text) > 2048 {
		t.Errorf("loader of %d bytes", len(ld.Text))
	}
}

// memLoad uploads seg at addr in blocks of 0x1800 (the second block once
// with a wrong checksum first, as line noise would leave it).
func (s *hostStub) memLoad(seg []byte, addr uint32) {
	s.t.Helper()
	const blk = 0x1800
	n := (len(seg) + blk - 1) / blk
	s.ok(opMemBegin, words(uint32(len(seg)), uint32(n), blk, addr))
	for i := range n {
		b := seg[i*blk : min((i+1)*blk, len(seg))]
		if i == 1 {
			if r := s.cmdChk(opMemData, dataPacket(i, b), checksum(b)^0x40); r.status[0] != stBadChecksum {
				s.t.Fatalf("MEM_DATA with a bad checksum: % X", r.status)
			}
		}
		if r := s.cmdChk(opMemData, dataPacket(i, b), checksum(b)); r.status != [2]byte{} {
			s.t.Fatalf("MEM_DATA %d at 0x%08X: % X", i, addr, r.status)
		}
	}
}

// TestHostLoader: the loader greets, answers READ_REG, raises the baud
// rate, takes the stub's segments (refusing what it may not load), reads
// them back, and MEM_END starts the stub, which greets again at the new
// rate and serves its commands.
func TestHostLoader(t *testing.T) {
	stub, err := esp8266.LoadStub(bytes.NewReader(JSON()))
	if err != nil {
		t.Fatal(err)
	}
	s := startStub(t, patterned(64<<10), "--loader")
	if v := s.ok(opReadReg, words(0x40001000)).value; v != 0xFFF0C101 {
		t.Fatalf("chip magic 0x%08X", v)
	}
	if r := s.cmd(opSync, syncPayload()); r.status[0] != stInvalidCommand {
		t.Errorf("SYNC to the loader: % X, want C3", r.status)
	}
	s.switchBaud(921600, 115200)
	if d := s.divider(); d != 56 { // round(451 * 115200 / 921600)
		t.Errorf("divider %d at 921600", d)
	}
	for _, bad := range [][]uint32{
		{0x100, 1, 0x1800, 0x4010EA00}, // the loader itself
		{0x100, 1, 0x1800, 0x4010C502}, // unaligned
		{0x100, 1, 0x1800, 0x3FFFC000}, // the ROM's own RAM
	} {
		if r := s.cmd(opMemBegin, words(bad...)); r.status[0] != stBadDataLen {
			t.Errorf("MEM_BEGIN %X: % X, want C0", bad, r.status)
		}
	}
	s.memLoad(stub.Text, stub.TextStart)
	s.memLoad(stub.Data, stub.DataStart)
	for _, off := range []int{0, 0x1800, len(stub.Text) - 4} {
		want := binary.LittleEndian.Uint32(stub.Text[off:])
		if v := s.ok(opReadReg, words(stub.TextStart+uint32(off))).value; v != want {
			t.Errorf("word at text+0x%X reads 0x%08X, want 0x%08X", off, v, want)
		}
	}
	s.ok(opMemEnd, words(0, stub.Entry))
	if f, err := s.frame(5 * time.Second); err != nil || string(f) != "OHAI" {
		t.Fatalf("after MEM_END: %q %v, want the stub's OHAI", f, err)
	}
	if i := s.info(false); i.features&featPipeline == 0 {
		t.Errorf("the stub after the loader: %+v", i)
	}
	if d := s.divider(); d != 56 {
		t.Errorf("divider %d once the stub runs", d)
	}
}
