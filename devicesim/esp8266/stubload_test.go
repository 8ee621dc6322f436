package espsim

import (
	"bytes"
	"testing"
	"time"
)

// ramSeg is one segment of an upload: announced size, bytes actually sent.
type ramSeg struct {
	addr      uint32
	size      int
	delivered int // bytes sent with MEM_DATA; -1 means all
}

// upload sends segs with MEM_BEGIN/MEM_DATA (esptool's 0x1800 blocks) and
// MEM_END(0, entry); it returns the frames that arrive within a second.
func (h *host) upload(segs []ramSeg, entry uint32) []string {
	h.t.Helper()
	const blk = 0x1800
	for _, s := range segs {
		text := firmware(s.size, uint64(s.addr))
		nblk := uint32((s.size + blk - 1) / blk)
		h.ok(opMemBegin, words(uint32(s.size), nblk, blk, s.addr), 0)
		send := s.size
		if s.delivered >= 0 {
			send = s.delivered
		}
		for seq := uint32(0); int(seq*blk) < send; seq++ {
			chunk := text[seq*blk : min(int(seq+1)*blk, send)]
			h.write(encode(dataPacket(opMemData, seq, chunk)))
			if r := h.reply(opMemData); r.status != [2]byte{} {
				h.t.Fatalf("MEM_DATA %d: % X", seq, r.status)
			}
		}
	}
	h.send(opMemEnd, words(0, entry), 0)
	var got []string
	for {
		f, ok := h.frame(time.Second)
		if !ok {
			return got
		}
		if r, err := parseResp(f); err == nil {
			got = append(got, opName(r.op))
		} else {
			got = append(got, string(f))
		}
	}
}

// TestUploadChecks: only an upload the ROM could run becomes a flasher
// stub that says OHAI; anything else "crashes": the MEM_END reply, then
// silence until a power cycle.
func TestUploadChecks(t *testing.T) {
	tuyaText := ramSeg{0x4010C500, 6328, -1}
	tuyaData := ramSeg{0x3FFFACAC, 280, -1}
	tests := []struct {
		name  string
		segs  []ramSeg
		entry uint32
		runs  bool
	}{
		{"tuyaflash stub layout", []ramSeg{tuyaText, tuyaData}, 0x4010DB88, true},
		{"esp-flasher-stub layout", []ramSeg{{0x4010C500, 11456, -1}, {0x3FFFAE6C, 920, -1}}, 0x4010C504, true},
		{"legacy esptool stub layout", []ramSeg{{0x4010D000, 8276, -1}, {0x3FFFACAC, 768, -1}}, 0x4010D004, true},
		{"lower IRAM", []ramSeg{{0x40100000, 0x400, -1}}, 0x40100010, true},
		{"entry past the code", []ramSeg{tuyaText, tuyaData}, 0x4010C500 + 6328 + 16, false},
		{"entry on the last two bytes", []ramSeg{tuyaText}, 0x4010C500 + 6328 - 2, false},
		{"entry in the data segment", []ramSeg{tuyaText, tuyaData}, 0x3FFFACB0, false},
		{"code in the flash map", []ramSeg{{0x40200000, 0x800, -1}}, 0x40200004, false},
		{"code across the IRAM end", []ramSeg{{0x4010F800, 0x1000, -1}}, 0x4010F804, false},
		{"data over the ROM's RAM", []ramSeg{tuyaText, {0x3FFFC000, 0x100, -1}}, 0x4010DB88, false},
		{"segment not fully sent", []ramSeg{{0x4010C500, 0x2000, 0x1800}}, 0x4010C504, false},
		{"nothing uploaded", nil, 0x4010C504, false},
		{"entry 0", []ramSeg{tuyaText}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runSim(t, Config{}, simOpts{}, func(h *host) {
				got := h.upload(tt.segs, tt.entry)
				want := []string{"MEM_END"}
				if tt.runs {
					want = append(want, "OHAI")
				}
				if len(got) != len(want) || got[0] != want[0] || got[len(got)-1] != want[len(want)-1] {
					t.Fatalf("frames after MEM_END %q, want %q", got, want)
				}
				rs := h.sync()
				switch {
				case tt.runs && (len(rs) != 8 || rs[0].value != 0):
					t.Errorf("stub: %d sync replies", len(rs))
				case !tt.runs && len(rs) != 0:
					t.Errorf("crashed chip answered %d syncs", len(rs))
				}
				if !tt.runs {
					h.send(opReadReg, words(0x40001000), 0)
					if f, ok := h.frame(time.Second); ok {
						t.Errorf("crashed chip sent % X", f)
					}
					if m := h.d.Stats().Mode; m != "crashed" {
						t.Errorf("mode %s", m)
					}
					h.d.PowerCycle(true)
					h.discardInput()
					if rs := h.sync(); len(rs) != 8 || rs[0].value != 0x20120707 {
						t.Errorf("after a power cycle: %d ROM sync replies", len(rs))
					}
				}
			})
		})
	}
}

// TestCrashedUserPowerCycles: the bench user (AutoReset) power-cycles a
// crashed chip with GPIO0 held when the tool syncs again.
func TestCrashedUserPowerCycles(t *testing.T) {
	runSim(t, Config{AutoReset: time.Second}, simOpts{}, func(h *host) {
		h.upload([]ramSeg{{0x40200000, 0x100, -1}}, 0x40200000)
		if el := h.syncUntilROM(5 * time.Second); el < time.Second {
			t.Errorf("recovered after %v, before the user's 1 s", el)
		}
	})
}

// TestEsptoolStubReupload: esp-flasher-stub serves MEM_*; a second upload
// is checked like the first.
func TestEsptoolStubReupload(t *testing.T) {
	for _, tt := range []struct {
		entry uint32
		runs  bool
	}{{0x4010C504, true}, {0x40200000, false}} {
		runSim(t, Config{Stub: StubEsptool}, simOpts{}, func(h *host) {
			h.uploadStub()
			got := h.upload([]ramSeg{{0x4010C500, 0x800, -1}}, tt.entry)
			if ohai := len(got) > 0 && got[len(got)-1] == "OHAI"; ohai != tt.runs {
				t.Errorf("entry 0x%08X: frames %q", tt.entry, got)
			}
			if rs := h.sync(); (len(rs) == 8) != tt.runs {
				t.Errorf("entry 0x%08X: %d sync replies", tt.entry, len(rs))
			}
		})
	}
}

// TestCheckUploadMessages: the reason names the unmet criterion.
func TestCheckUploadMessages(t *testing.T) {
	code := memSegment{0x4010C500, bytes.Repeat([]byte{1}, 0x100)}
	for _, tt := range []struct {
		announced []span
		uploaded  []memSegment
		entry     uint32
		want      string
	}{
		{nil, nil, 0x4010C500, "nothing was uploaded"},
		{[]span{{0x40200000, 0x100}}, []memSegment{{0x40200000, code.data}}, 0x40200000, "outside the RAM"},
		{[]span{{0x4010C500, 0x200}}, []memSegment{code}, 0x4010C500, "no MEM_DATA delivered the bytes at 0x4010C600"},
		{[]span{{0x4010C500, 0x100}}, []memSegment{code}, 0x3FFE8000, "not in instruction RAM"},
		{[]span{{0x4010C500, 0x100}}, []memSegment{code}, 0x4010D000, "outside the uploaded code"},
		{[]span{{0x4010C500, 0x100}}, []memSegment{code}, 0x4010C5FD, ""},
	} {
		err := checkUpload(tt.announced, tt.uploaded, tt.entry)
		if (err == nil) != (tt.want == "") || (err != nil && !bytes.Contains([]byte(err.Error()), []byte(tt.want))) {
			t.Errorf("entry 0x%08X: %v, want %q", tt.entry, err, tt.want)
		}
	}
}
