package bksim

import (
	"bytes"
	"context"
	"errors"
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
	f := Faults{DropRate: 0.01, CorruptRate: 0.01, RxDropRate: 0.002, FaultAfter: 5}
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
		host.SetReadTimeout(time.Second)
		if _, err := host.Read(make([]byte, 16)); !errors.Is(err, transport.ErrClosed) {
			t.Errorf("host read after the pull: %v, want ErrClosed", err)
		}
		if !allFF(d.Flash()[0x100000:0x101000]) {
			t.Error("the cut-off write changed the flash")
		}
	})
}
