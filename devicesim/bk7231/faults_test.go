package bksim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tuyaflash/tuyaflash/transport"
)

// capture links (without checking the reply) and runs a fixed script of
// reads, returning every byte the host received.
func capture(t *testing.T, f Faults, seed int64) []byte {
	t.Helper()
	var got []byte
	synctest.Test(t, func(t *testing.T) {
		r := startRig(t, Config{Chip: BK7231N, Faults: f, Seed: seed}, transport.LinkOptions{})
		defer r.stop()
		r.d.PowerCycle()
		script := [][]byte{linkCheck, read4KCmd(0x11000), read4KCmd(0x12000), crcCmd(0, 0x100), readSRCmd(0x05)}
		buf := make([]byte, 8192)
		for _, req := range script {
			r.send(req)
			n, _ := transport.ReadFull(r.host, buf, time.Now().Add(50*time.Millisecond))
			got = append(got, buf[:n]...)
		}
	})
	return got
}

func TestFaultsDeterministic(t *testing.T) {
	f := Faults{DropRate: 0.01, CorruptRate: 0.01, DupRate: 0.01, RxDropRate: 0.002, RxCorruptRate: 0.001, RxDupRate: 0.001, FaultAfter: 5}
	a, b, c := capture(t, f, 7), capture(t, f, 7), capture(t, f, 8)
	clean := capture(t, Faults{}, 7)
	if len(clean) != 8+2*4111+11+13 {
		t.Fatalf("fault-free run received %d bytes", len(clean))
	}
	if !bytes.Equal(a, b) {
		t.Error("same seed, different faults")
	}
	if bytes.Equal(a, c) {
		t.Error("different seeds, same faults")
	}
	if bytes.Equal(a, clean) {
		t.Error("faults changed nothing")
	}
	if !bytes.Equal(a[:8], linkReply) {
		t.Errorf("LinkCheck reply % X faulted despite FaultAfter", a[:8])
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name  string
		f     Faults
		check func(t *testing.T, r *rig)
	}{
		{"DropRate 1 after link-up loses every reply", Faults{DropRate: 1, FaultAfter: 5}, func(t *testing.T, r *rig) {
			r.send(readSRCmd(0x05))
			r.silent(100 * time.Millisecond)
			if r.d.Stats().Commands["FlashReadSR"] != 1 {
				t.Error("the command was not executed")
			}
		}},
		{"CorruptRate 1 changes every byte", Faults{CorruptRate: 1, FaultAfter: 5}, func(t *testing.T, r *rig) {
			got := r.roundTrip(readSRCmd(0x05), 13)
			want := hx("04 0E FF 01 E0 FC F4 04 00 0C 00 05 04")
			for i := range got {
				if got[i] == want[i] {
					t.Fatalf("byte %d unchanged: % X", i, got)
				}
			}
		}},
		{"RxDropRate 1 after link-up: the chip hears nothing", Faults{RxDropRate: 1, FaultAfter: 5}, func(t *testing.T, r *rig) {
			r.send(readSRCmd(0x05))
			r.silent(300 * time.Millisecond)
			if st := r.d.Stats(); st.Commands["FlashReadSR"] != 0 || st.BytesIn != 5+9 {
				t.Errorf("Stats %+v", st)
			}
		}},
		{"DupRate 1 doubles every byte", Faults{DupRate: 1, FaultAfter: 5}, func(t *testing.T, r *rig) {
			got := r.roundTrip(readSRCmd(0x05), 26)
			want := hx("04 04 0E 0E FF FF 01 01 E0 E0 FC FC F4 F4 04 04 00 00 0C 0C 00 00 05 05 04 04")
			if !bytes.Equal(got, want) {
				t.Fatalf("got % X", got)
			}
		}},
		{"RxCorruptRate 1: no frame reaches the chip", Faults{RxCorruptRate: 1, FaultAfter: 5}, func(t *testing.T, r *rig) {
			r.send(readSRCmd(0x05))
			r.send(linkCheck)
			r.silent(300 * time.Millisecond)
			if st := r.d.Stats(); st.Commands["FlashReadSR"] != 0 || st.Commands["LinkCheck"] != 1 {
				t.Errorf("Commands %v", st.Commands)
			}
		}},
		{"RxDupRate 1: doubled bytes make no frame", Faults{RxDupRate: 1, FaultAfter: 5}, func(t *testing.T, r *rig) {
			r.send(linkCheck)
			r.silent(300 * time.Millisecond)
			if st := r.d.Stats(); st.Commands["LinkCheck"] != 1 || st.BytesIn != 10 {
				t.Errorf("Stats %+v", st)
			}
		}},
		{"Delay past the host's timeout", Faults{Delay: 2 * time.Second, DelayRate: 1, FaultAfter: 5}, func(t *testing.T, r *rig) {
			r.send(readSRCmd(0x05))
			r.silent(time.Second) // the host gives up …
			r.send(linkCheck)     // … and re-syncs while the chip still holds the reply
			r.expect(hx("04 0E FF 01 E0 FC F4 04 00 0C 00 05 04"))
			r.silent(time.Second)
			if n := r.d.Stats().Commands["LinkCheck"]; n != 1 {
				t.Errorf("%d LinkChecks executed: the one sent during the delay must be lost", n)
			}
		}},
		{"Delay", Faults{Delay: 300 * time.Millisecond, DelayRate: 1, FaultAfter: 5}, func(t *testing.T, r *rig) {
			start := time.Now()
			r.roundTrip(readSRCmd(0x05), 13)
			if el := time.Since(start); el != 300*time.Millisecond {
				t.Errorf("reply after %v, want 300ms", el)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			withLinkedChip(t, Config{Chip: BK7231N, Faults: tc.f}, func(t *testing.T, r *rig) {
				tc.check(t, r)
			})
		})
	}
}

func TestDisconnectAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit = 5 + 12 + 100 // link, one read, then 100 bytes into a write
		d, err := New(Config{Chip: BK7231N, StatusReg: sr(0), Faults: Faults{DisconnectAfter: limit}})
		if err != nil {
			t.Fatal(err)
		}
		host, dev := transport.Pipe(transport.LinkOptions{Paced: true})
		done := make(chan error, 1)
		go func() { done <- d.Serve(context.Background(), dev) }()
		r := &rig{t: t, d: d, host: host}
		r.link()
		r.readFlash(0x11000)
		r.send(write4KCmd(0x100000, make([]byte, 4096)))
		err = <-done
		if !errors.Is(err, ErrDisconnected) {
			t.Fatalf("Serve returned %v, want ErrDisconnected", err)
		}
		if st := d.Stats(); st.BytesIn != limit {
			t.Errorf("BytesIn = %d, want %d", st.BytesIn, limit)
		}
		if err := readToTheEnd(host); !errors.Is(err, transport.ErrClosed) {
			t.Errorf("host read after the pull: %v, want ErrClosed", err)
		}
		if !allFF(d.Flash()[0x100000:0x101000]) {
			t.Error("the cut-off write changed the flash")
		}
	})
}

// sectorAddr is how the tools address physical sector a on chip (§5.1).
func sectorAddr(chip Chip, a uint32, size int) uint32 {
	if chip.BootloaderBased() {
		return a + uint32(size)
	}
	return a
}

// TestPowerLossMidErase: the power fails in the middle of an erase; the
// sector keeps some of its old zero bits and has gained some ones, the chip
// is off (no reply, no link) until it is powered again.
func TestPowerLossMidErase(t *testing.T) {
	for _, chip := range []Chip{BK7231N, BK7231T, BK7238} {
		for _, timing := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/timing=%v", chip, timing), func(t *testing.T) {
				withLinkedChip(t, Config{Chip: chip, StatusReg: sr(0), Timing: timing, Faults: Faults{PowerLossAt: 1}}, func(t *testing.T, r *rig) {
					const a = 0x20000 // application data
					before := r.d.Flash()
					r.send(erase4KCmd(sectorAddr(chip, a, len(before))))
					r.silent(time.Second)
					after := r.d.Flash()
					sec, old := after[a:a+0x1000], before[a:a+0x1000]
					if allFF(sec) || bytes.Equal(sec, old) {
						t.Fatal("after a power loss mid-erase the sector is all 0xFF or unchanged")
					}
					for i := range sec {
						if sec[i]|old[i] != sec[i] {
							t.Fatalf("byte 0x%X went from %02X to %02X: an erase only sets bits", a+i, old[i], sec[i])
						}
					}
					if !bytes.Equal(after[:a], before[:a]) || !bytes.Equal(after[a+0x1000:], before[a+0x1000:]) {
						t.Fatal("the power loss touched other sectors")
					}
					if st := r.d.Stats(); st.State != "off" || st.PowerLosses != 1 || st.Erased[a] != 1 {
						t.Fatalf("Stats: state %q, %d power losses, sector erased %d times", st.State, st.PowerLosses, st.Erased[a])
					}
					r.send(linkCheck)
					r.silent(time.Second)
					r.link() // the user powers it again
					r.send(erase4KCmd(sectorAddr(chip, a, len(before))))
					r.read(16)
					if !allFF(r.d.Flash()[a : a+0x1000]) {
						t.Fatal("the erase after the power cycle did not finish the job")
					}
				})
			})
		}
	}
}

// TestPowerLossMidProgram: pages before the cut are programmed, the page it
// hit has only some of its bits cleared, the rest is untouched.
func TestPowerLossMidProgram(t *testing.T) {
	for _, seed := range []int64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			withLinkedChip(t, Config{Chip: BK7231N, StatusReg: sr(0), Seed: seed, Faults: Faults{PowerLossAt: 2}}, func(t *testing.T, r *rig) {
				const a = 0x100000
				r.send(erase4KCmd(a)) // flash op 1: completes
				r.read(16)
				data := bytes.Repeat([]byte{0x00, 0x5A}, 2048)
				r.send(write4KCmd(a, data)) // flash op 2: cut
				r.silent(time.Second)
				sec := r.d.Flash()[a : a+0x1000]
				k := 0
				for k < 16 && bytes.Equal(sec[k*256:(k+1)*256], data[k*256:(k+1)*256]) {
					k++
				}
				if k == 16 || bytes.Equal(sec, data) {
					t.Fatal("the whole sector was programmed despite the power loss")
				}
				if !allFF(sec[(k+1)*256:]) {
					t.Fatalf("pages after the cut page %d were programmed", k)
				}
				for i, b := range sec[k*256 : (k+1)*256] {
					if b&data[k*256+i] != data[k*256+i] {
						t.Fatalf("cut page byte %d = %02X: cleared bits the data keeps (%02X)", i, b, data[k*256+i])
					}
				}
				if st := r.d.Stats(); st.State != "off" || st.PowerLosses != 1 {
					t.Fatalf("Stats: state %q, %d power losses", st.State, st.PowerLosses)
				}
			})
		})
	}
}

// TestPowerLossThenAutoReset: the simulated user powers the module again
// when the host asks for a power cycle.
func TestPowerLossThenAutoReset(t *testing.T) {
	withLinkedChip(t, Config{Chip: BK7231T, AutoReset: 300 * time.Millisecond, Faults: Faults{PowerLossRate: 1, FaultAfter: 5}}, func(t *testing.T, r *rig) {
		r.send(erase4KCmd(0x230000))
		r.silent(500 * time.Millisecond)
		r.sprayLinkChecks(time.Second)
		if st := r.d.Stats(); st.State != "download" || st.PowerLosses != 1 || st.Resets != 2 {
			t.Fatalf("Stats %+v", st)
		}
	})
}

// TestResetMidCommand: a reset in the middle of a command loses its reply
// and brings the chip back to its link window; a program stops after the
// page it was on, an erase finishes (the flash keeps its power).
func TestResetMidCommand(t *testing.T) {
	tests := []struct {
		name  string
		chip  Chip
		cmd   func(size int) []byte
		check func(t *testing.T, sec []byte, data []byte)
	}{
		{"FlashWrite4K on N", BK7231N, func(int) []byte { return write4KCmd(0x100000, bytes.Repeat([]byte{0x11}, 4096)) },
			func(t *testing.T, sec, data []byte) {
				k := 0
				for k < 16 && bytes.Equal(sec[k*256:(k+1)*256], data[k*256:(k+1)*256]) {
					k++
				}
				if k == 0 || k == 16 || !allFF(sec[k*256:]) {
					t.Fatalf("%d whole pages programmed and the rest not erased-clean; want a page-granular partial program", k)
				}
			}},
		{"FlashErase on T", BK7231T, func(size int) []byte { return erase4KCmd(uint32(size) + 0x20000) },
			func(t *testing.T, sec, _ []byte) {
				if !allFF(sec) {
					t.Fatal("the flash did not finish the erase")
				}
			}},
		{"CheckCRC on BK7238", BK7238, func(int) []byte { return crcCmd(0, 0x100000) }, nil},
	}
	for _, tc := range tests {
		for _, timing := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/timing=%v", tc.name, timing), func(t *testing.T) {
				withLinkedChip(t, Config{Chip: tc.chip, StatusReg: sr(0), Timing: timing, Faults: Faults{ResetAt: 2}}, func(t *testing.T, r *rig) {
					size := len(r.d.Flash())
					r.send(erase4KCmd(sectorAddr(tc.chip, 0x100000, size))) // command 1
					r.read(16)
					req := tc.cmd(size)
					r.send(req) // command 2: reset, after part of its busy time
					for i := 0; i < 5000 && r.d.Stats().FaultResets == 0; i++ {
						time.Sleep(time.Millisecond)
					}
					if st := r.d.Stats(); st.State != "window" || st.FaultResets != 1 {
						t.Fatalf("Stats after the reset: state %q, %d fault resets", st.State, st.FaultResets)
					}
					r.send(linkCheck) // still inside the window
					r.expect(linkReply)
					if tc.check != nil {
						a := 0x100000
						if tc.chip == BK7231T {
							a = 0x20000
						}
						tc.check(t, r.d.Flash()[a:a+0x1000], req[max(len(req)-4096, 0):])
					}
				})
			})
		}
	}
}

// unpluggableLine is transport's PipePort, noting when it is unplugged.
type unpluggableLine struct {
	*transport.PipePort
	unplugged chan struct{}
}

func (l *unpluggableLine) Unplug() {
	close(l.unplugged)
	l.PipePort.Unplug()
}

func TestUnplugAfter(t *testing.T) {
	for _, withUnplug := range []bool{true, false} {
		t.Run(fmt.Sprintf("Unplugger=%v", withUnplug), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d, err := New(Config{Chip: BK7231N, Faults: Faults{UnplugAfter: 5 + 12}})
				if err != nil {
					t.Fatal(err)
				}
				host, dev := transport.Pipe(transport.LinkOptions{})
				var line Line = struct{ Line }{dev} // hides PipePort's Unplug
				ul := &unpluggableLine{PipePort: dev, unplugged: make(chan struct{})}
				if withUnplug {
					line = ul
				}
				done := make(chan error, 1)
				go func() { done <- d.Serve(context.Background(), line) }()
				r := &rig{t: t, d: d, host: host}
				r.link()
				r.send(read4KCmd(0x11000))
				if err := <-done; !errors.Is(err, ErrUnplugged) {
					t.Fatalf("Serve returned %v, want ErrUnplugged", err)
				}
				select {
				case <-ul.unplugged:
					if !withUnplug {
						t.Error("Unplug called on a line that has none")
					}
				default:
					if withUnplug {
						t.Error("Unplug not called")
					}
				}
				if err := readToTheEnd(host); !errors.Is(err, transport.ErrClosed) {
					t.Errorf("host read after the unplug: %v", err)
				}
			})
		})
	}
}

// TestFlashInaccessible models reference §13's dead flash: id 00 00 00,
// everything reads zero (bootloader CRC 0xB7BFA0CE), writes "succeed" and
// change nothing.
func TestFlashInaccessible(t *testing.T) {
	withLinkedChip(t, Config{Chip: BK7231N, StatusReg: sr(0), Faults: Faults{FlashInaccessible: true}}, func(t *testing.T, r *rig) {
		before := r.d.Flash()
		r.send(hx("01 E0 FC FF F4 05 00 0E 9F 00 00 00"))
		r.expect(hx("04 0E FF 01 E0 FC F4 06 00 0E 00 00 00 00 00"))
		got := r.roundTrip(crcCmd(0, 256), 11)
		if std := le32(got[7:]) ^ 0xFFFFFFFF; std != 0xB7BFA0CE {
			t.Errorf("bootloader CRC %08X, want B7BFA0CE", std)
		}
		if !bytes.Equal(r.readFlash(0x11000), make([]byte, 4096)) {
			t.Error("a read returned data")
		}
		r.send(erase4KCmd(0x11000))
		r.read(16)
		if !bytes.Equal(r.d.Flash(), before) {
			t.Error("an erase changed the flash")
		}
	})
}
