package bksim

import (
	"bytes"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tuyaflash/tuyaflash/transport"
)

// TestWorkedExamples feeds the captured frames of reference §4.0 in one
// piece, byte by byte and after line noise, and checks the documented replies.
func TestWorkedExamples(t *testing.T) {
	pattern := bytes.Repeat([]byte{0x5A, 0xA5, 0x00, 0xFF}, 1024)
	tests := []struct {
		name  string
		chip  Chip
		req   []byte
		reply func(flash []byte) []byte // nil: no reply
		check func(t *testing.T, d *Device)
	}{
		{
			name:  "LinkCheck",
			chip:  BK7231N,
			req:   hx("01 E0 FC 01 00"),
			reply: func([]byte) []byte { return hx("04 0E 05 01 E0 FC 01 00") },
		},
		{
			name: "FlashRead4K at 0x11000 (bkWriter on T)",
			chip: BK7231T,
			req:  hx("01 E0 FC FF F4 05 00 09 00 10 01 00"),
			reply: func(f []byte) []byte {
				return cat(hx("04 0E FF 01 E0 FC F4 06 10 09 00 00 10 01 00"), f[0x11000:0x12000])
			},
		},
		{
			name:  "FlashErase 4K at 0x11000",
			chip:  BK7231T,
			req:   hx("01 E0 FC FF F4 06 00 0F 20 00 10 01 00"),
			reply: func([]byte) []byte { return hx("04 0E FF 01 E0 FC F4 07 00 0F 00 20 00 10 01 00") },
			check: func(t *testing.T, d *Device) {
				if !allFF(d.Flash()[0x11000:0x12000]) {
					t.Error("sector 0x11000 not erased")
				}
			},
		},
		{
			name:  "FlashWrite4K at 0x11000 over erased flash",
			chip:  BK7231T,
			req:   cat(hx("01 E0 FC FF F4 05 10 07 00 10 01 00"), pattern),
			reply: func([]byte) []byte { return hx("04 0E FF 01 E0 FC F4 06 00 07 00 00 10 01 00") },
		},
		{
			name: "CheckCRC 0x11000..0x11FFF on T (exclusive end)",
			chip: BK7231T,
			req:  hx("01 E0 FC 09 10 00 10 01 00 FF 1F 01 00"),
			reply: func(f []byte) []byte {
				return cat(hx("04 0E 08 01 E0 FC 10"), le(hostCRC(f[0x11000:0x11FFF])))
			},
		},
		{
			name:  "GetMID",
			chip:  BK7231N,
			req:   hx("01 E0 FC FF F4 05 00 0E 9F 00 00 00"),
			reply: func([]byte) []byte { return hx("04 0E FF 01 E0 FC F4 06 00 0E 00 00 EB 60 15") },
		},
		{
			name:  "FlashErase 0x12000 through wrapped 0x212000",
			chip:  BK7231T,
			req:   hx("01 E0 FC FF F4 06 00 0F 20 00 20 21 00"),
			reply: func([]byte) []byte { return hx("04 0E FF 01 E0 FC F4 07 00 0F 00 20 00 20 21 00") },
			check: func(t *testing.T, d *Device) {
				if !allFF(d.Flash()[0x12000:0x13000]) {
					t.Error("physical sector 0x12000 not erased")
				}
				if n := d.Stats().Erased[0x12000]; n != 1 {
					t.Errorf("Erased[0x12000] = %d, want 1", n)
				}
			},
		},
		{
			name: "Reboot",
			chip: BK7231N,
			req:  hx("01 E0 FC 02 0E A5"),
			check: func(t *testing.T, d *Device) {
				if st := d.Stats(); st.State != "window" || st.Resets != 2 {
					t.Errorf("after Reboot: state %q, %d resets; want window, 2", st.State, st.Resets)
				}
			},
		},
	}
	feeds := []struct {
		name string
		send func(r *rig, req []byte)
	}{
		{"one piece", func(r *rig, req []byte) { r.send(req) }},
		{"byte by byte", func(r *rig, req []byte) {
			for _, b := range req {
				r.send([]byte{b})
				time.Sleep(50 * time.Microsecond)
			}
		}},
		{"after line noise", func(r *rig, req []byte) {
			r.send(hx("00 FF 01 01 E0 33 04 0E 01 E0"))
			r.send(req)
		}},
	}
	for _, tc := range tests {
		for _, fd := range feeds {
			t.Run(tc.name+"/"+fd.name, func(t *testing.T) {
				withLinkedChip(t, Config{Chip: tc.chip}, func(t *testing.T, r *rig) {
					if tc.chip == BK7231T && bytes.Contains(tc.req[:8], []byte{0xF4, 0x05, 0x10, 0x07}) {
						r.send(hx("01 E0 FC FF F4 06 00 0F 20 00 10 01 00")) // erase first
						r.read(16)
					}
					before := r.d.Flash()
					fd.send(r, tc.req)
					if tc.reply == nil {
						r.silent(20 * time.Millisecond)
					} else {
						r.expect(tc.reply(before))
					}
					if tc.check != nil {
						tc.check(t, r.d)
					}
				})
			})
		}
	}
}

func TestWriteExampleProgramsPattern(t *testing.T) {
	withLinkedChip(t, Config{Chip: BK7231T}, func(t *testing.T, r *rig) {
		data := bytes.Repeat([]byte("tuyaflash"), 456)[:4096]
		r.send(erase4KCmd(0x200000 + 0x30000))
		r.read(16)
		r.send(write4KCmd(0x200000+0x30000, data))
		r.expect(hx("04 0E FF 01 E0 FC F4 06 00 07 00 00 00 23 00"))
		if got := r.d.Flash()[0x30000:0x31000]; !bytes.Equal(got, data) {
			t.Fatal("flash at 0x30000 does not hold the written data")
		}
		if got := r.readFlash(0x230000); !bytes.Equal(got, data) {
			t.Fatal("FlashRead4K does not return the written data")
		}
	})
}

func TestUnknownAndMalformedCommands(t *testing.T) {
	tests := []struct {
		name  string
		chip  Chip
		req   []byte
		reply []byte // nil: silence
	}{
		{"N ReadBootVersion is not FULL", BK7231N, hx("01 E0 FC 01 11"), hx("04 0E 05 01 E0 FC 11 07")},
		{"N unknown long op", BK7231N, cmdLong(0x54, 1, 2, 3, 4), hx("04 0E FF 01 E0 FC F4 02 00 54 07")},
		{"N long frame with code other than F4", BK7231N, hx("01 E0 FC FF F5 01 00 09"), hx("04 0E 05 01 E0 FC F5 07")},
		{"T ReadBootVersion", BK7231T, hx("01 E0 FC 01 11"), cat(hx("04 0E 11 01 E0 FC 11"), []byte("BK7231S_1.0.5"))},
		{"T has no ReadReg", BK7231T, cmdShort(0x03, le(0x800000)...), hx("04 0E 05 01 E0 FC 03 07")},
		{"T has no WriteReg", BK7231T, cmdShort(0x01, cat(le(0x800074), le(1))...), hx("04 0E 05 01 E0 FC 01 07")},
		{"T has no Reset", BK7231T, cmdShort(0x70, []byte("SEAN")...), hx("04 0E 05 01 E0 FC 70 07")},
		{"T has no StayRom", BK7231T, hx("01 E0 FC 02 AA 55"), hx("04 0E 05 01 E0 FC AA 07")},
		{"T has no GetMID", BK7231T, hx("01 E0 FC FF F4 05 00 0E 9F 00 00 00"), hx("04 0E FF 01 E0 FC F4 02 00 0E 07")},
		{"T has no ReadSR", BK7231T, readSRCmd(0x05), hx("04 0E FF 01 E0 FC F4 02 00 0C 07")},
		{"T has no FlashRead", BK7231T, cmdLong(0x08, 0, 0, 1, 0, 16), hx("04 0E FF 01 E0 FC F4 02 00 08 07")},
		{"T has no FlashErase4K", BK7231T, cmdLong(0x0B, le(0x11000)...), hx("04 0E FF 01 E0 FC F4 02 00 0B 07")},
		{"N StayRom", BK7231N, hx("01 E0 FC 02 AA 55"), hx("04 0E 05 01 E0 FC AA 55")},
		{"Reboot with other byte is echoed", BK7231N, hx("01 E0 FC 02 0E 00"), hx("04 0E 05 01 E0 FC 0E 00")},
		{"Reset without SEAN is echoed", BK7231N, cmdShort(0x70, []byte("SEAX")...), hx("04 0E 08 01 E0 FC 70 53 45 41 58")},
		{"Reset SEAN restarts silently", BK7231N, cmdShort(0x70, []byte("SEAN")...), nil},
		{"FlashRead4K with wrong length", BK7231N, cmdLong(0x09, 0, 0x10, 1, 0, 0), hx("04 0E FF 01 E0 FC F4 06 00 09 04 00 10 01 00")},
		{"FlashWrite4K short of data", BK7231N, write4KCmd(0x11000, make([]byte, 100)), hx("04 0E FF 01 E0 FC F4 06 00 07 04 00 10 01 00")},
		{"FlashErase unknown size", BK7231N, cmdLong(0x0F, 0x21, 0, 0x10, 1, 0), hx("04 0E FF 01 E0 FC F4 07 00 0F 06 21 00 10 01 00")},
		{"SetBaudRate to 0 is ignored", BK7231N, cmdShort(0x0F, 0, 0, 0, 0, 10), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			withLinkedChip(t, Config{Chip: tc.chip}, func(t *testing.T, r *rig) {
				r.send(tc.req)
				if tc.reply == nil {
					r.silent(20 * time.Millisecond)
				} else {
					r.expect(tc.reply)
				}
				// The chip is still (or again) able to link.
				if r.d.Stats().State == "window" {
					r.send(linkCheck)
					r.expect(linkReply)
				}
				r.send(linkCheck)
				r.expect(linkReply)
			})
		})
	}
}

// TestIncompleteFrames checks the idle timeout: a long frame that stops
// arriving gets PACK_PAYLOAD_LACK, a short one is dropped, and either way the
// next frame is understood.
func TestIncompleteFrames(t *testing.T) {
	tests := []struct {
		name  string
		part  []byte
		reply []byte
	}{
		{"long FlashRead4K cut after two address bytes", hx("01 E0 FC FF F4 05 00 09 00 10"), hx("04 0E FF 01 E0 FC F4 06 00 09 05 00 10 FF FF")},
		{"long FlashWrite4K cut inside the data", cat(hx("01 E0 FC FF F4 05 10 07 00 10 01 00"), make([]byte, 1000)), hx("04 0E FF 01 E0 FC F4 06 00 07 05 00 10 01 00")},
		{"long frame cut inside its header", hx("01 E0 FC FF F4 05"), nil},
		{"short CheckCRC cut", hx("01 E0 FC 09 10 00 00"), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			withLinkedChip(t, Config{Chip: BK7231N, StatusReg: sr(0)}, func(t *testing.T, r *rig) {
				before := r.d.Flash()
				r.send(tc.part)
				start := time.Now()
				if tc.reply != nil {
					r.expect(tc.reply)
					if el := time.Since(start); el < 100*time.Millisecond || el > 150*time.Millisecond {
						t.Errorf("PACK_PAYLOAD_LACK after %v, want after the 100 ms idle timeout", el)
					}
				} else {
					r.silent(300 * time.Millisecond)
				}
				if !bytes.Equal(before, r.d.Flash()) {
					t.Error("an incomplete frame changed the flash")
				}
				r.send(linkCheck)
				r.expect(linkReply)
			})
		})
	}
}

// TestOneCommandAtATime: what arrives while the chip executes a command is
// lost, as on the ROM.
func TestOneCommandAtATime(t *testing.T) {
	for _, chip := range []Chip{BK7231N, BK7231T, BK7252} {
		for _, timing := range []bool{false, true} {
			name := map[bool]string{false: "instant", true: "timed"}[timing]
			t.Run(chip.String()+"/"+name, func(t *testing.T) {
				oneCommandAtATime(t, chip, timing)
			})
		}
	}
}

func oneCommandAtATime(t *testing.T, chip Chip, timing bool) {
	withLinkedChip(t, Config{Chip: chip, StatusReg: sr(0), Timing: timing}, func(t *testing.T, r *rig) {
		r.send(cat(cmdLong(0x0F, 0xD8, 0, 0, 0x10, 0), linkCheck))
		r.expect(hx("04 0E FF 01 E0 FC F4 07 00 0F 00 D8 00 00 10 00"))
		if timing {
			// A LinkCheck sent during the 150 ms erase is dropped.
			r.send(cmdLong(0x0F, 0xD8, 0, 0, 0x11, 0))
			time.Sleep(50 * time.Millisecond)
			r.send(linkCheck)
			r.expect(hx("04 0E FF 01 E0 FC F4 07 00 0F 00 D8 00 00 11 00"))
		}
		r.silent(200 * time.Millisecond)
		if n := r.d.Stats().Commands["LinkCheck"]; n != 1 {
			t.Errorf("%d LinkChecks executed, want only the one that linked", n)
		}
		if timing {
			// A whole write sent during a 64K erase is lost too.
			r.send(cmdLong(0x0F, 0xD8, 0, 0, 0x12, 0))
			time.Sleep(20 * time.Millisecond)
			r.send(write4KCmd(0x130000, make([]byte, 4096)))
			r.expect(hx("04 0E FF 01 E0 FC F4 07 00 0F 00 D8 00 00 12 00"))
			r.silent(200 * time.Millisecond)
			if n := r.d.Stats().Commands["FlashWrite4K"]; n != 0 || !allFF(r.d.Flash()[0x130000:0x131000]) {
				t.Errorf("the write sent during the erase was executed")
			}
		}
	})
}

func TestLogAndStats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log bytes.Buffer
		r := startRig(t, Config{Chip: BK7231N, Log: &log}, transport.LinkOptions{})
		defer r.stop()
		r.link()
		r.readFlash(0x11000)
		r.readFlash(0x12000)
		r.send(readSRCmd(0x05))
		r.read(13)
		for _, want := range []string{"power cycle", "LinkCheck ok", "FlashRead4K 0x011000 ok", "FlashReadSR 0x05 = 0x04 ok"} {
			if !bytes.Contains(log.Bytes(), []byte(want)) {
				t.Errorf("log lacks %q:\n%s", want, log.String())
			}
		}
		st := r.d.Stats()
		if st.Commands["FlashRead4K"] != 2 || st.Commands["LinkCheck"] != 1 || st.Commands["FlashReadSR"] != 1 {
			t.Errorf("Commands = %v", st.Commands)
		}
		if want := int64(5 + 12 + 12 + 9); st.BytesIn != want {
			t.Errorf("BytesIn = %d, want %d", st.BytesIn, want)
		}
		if want := int64(8 + 2*4111 + 13); st.BytesOut != want {
			t.Errorf("BytesOut = %d, want %d", st.BytesOut, want)
		}
		if st.State != "download" || st.Baud != 115200 || st.Resets != 1 || st.StatusReg != 0x4004 {
			t.Errorf("Stats = %+v", st)
		}
	})
}
