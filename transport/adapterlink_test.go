package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

func mustAdapter(t testing.TB, name string) Adapter {
	t.Helper()
	a, err := ParseAdapter(name)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// arrivals writes n bytes from the device at 921600 at link creation and
// records, in fake time, when the host's reads return how many bytes.
func arrivals(t *testing.T, opts LinkOptions, n int) (firstAt time.Duration, firstN int, allAt time.Duration) {
	host, dev := Pipe(opts)
	host.SetBaudRate(921600)
	dev.SetBaudRate(921600)
	start := time.Now()
	if _, err := dev.Write(make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, n)
	got := 0
	for got < n {
		m, err := host.Read(buf[got:])
		if err != nil {
			t.Fatal(err)
		}
		if got == 0 {
			firstAt, firstN = time.Since(start), m
		}
		got += m
	}
	return firstAt, firstN, time.Since(start)
}

// TestAdapterPackets checks when received bytes reach the host: in USB
// packets, the last partial one after the latency timer.
func TestAdapterPackets(t *testing.T) {
	wt := func(n int64) time.Duration { return WireTime(n, 921600) }
	tests := []struct {
		name     string
		opts     LinkOptions
		n        int
		firstN   int
		firstAt  time.Duration
		complete time.Duration
	}{
		// FTDI: 62 data bytes a packet; the 38 left wait 16 ms after it.
		{"ftdi default timer", LinkOptions{Paced: true}, 100, 62, wt(62), wt(62) + 16*time.Millisecond},
		{"ftdi low latency", LinkOptions{Paced: true, LowLatency: true}, 100, 62, wt(62), wt(62) + time.Millisecond},
		{"ftdi --latency 5ms", LinkOptions{Paced: true, Latency: 5 * time.Millisecond}, 100, 62, wt(62), wt(62) + 5*time.Millisecond},
		{"ftdi full packets only", LinkOptions{Paced: true}, 124, 62, wt(62), wt(124)},
		// CH340: 32-byte packets; 4 left after byte 96 wait 1 ms.
		{"ch340", LinkOptions{Paced: true}, 100, 32, wt(32), wt(96) + time.Millisecond},
		// Unpaced, the model only maps rates: everything at once.
		{"ftdi unpaced", LinkOptions{}, 100, 100, 0, 0},
		// The plain link: 64-byte batches, the rest when the write is done.
		{"none", LinkOptions{Paced: true}, 100, 64, wt(64), wt(100)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				name := tc.name
				if i := bytes.IndexByte([]byte(name), ' '); i > 0 {
					name = name[:i]
				}
				tc.opts.Adapter = mustAdapter(t, name)
				firstAt, firstN, all := arrivals(t, tc.opts, tc.n)
				if firstN != tc.firstN || firstAt != tc.firstAt {
					t.Errorf("first read: %d bytes after %v, want %d after %v", firstN, firstAt, tc.firstN, tc.firstAt)
				}
				if all != tc.complete {
					t.Errorf("all %d bytes after %v, want %v", tc.n, all, tc.complete)
				}
			})
		})
	}
}

// TestLatencyTimerGrid: the FTDI timer restarts whenever a packet (status
// bytes alone included) goes to the host, so a lone byte waits for the next
// tick of that 16 ms grid, not a full 16 ms (AN232B-04 §3.1).
func TestLatencyTimerGrid(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		host, dev := Pipe(LinkOptions{Adapter: mustAdapter(t, "ftdi"), Baud: 921600, Paced: true})
		time.Sleep(40 * time.Millisecond) // ticks at 16 and 32 ms found nothing
		start := time.Now()
		dev.Write([]byte{0x55})
		buf := make([]byte, 1)
		if _, err := ReadFull(host, buf, time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el != 8*time.Millisecond {
			t.Errorf("lone byte arrived after %v, want 8 ms (the 48 ms tick)", el)
		}
	})
}

// TestHostWritesWaitForUSBFrame: host writes reach the adapter at the next
// 1 ms frame, then cross the wire at the adapter's actual rate.
func TestHostWritesWaitForUSBFrame(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		host, dev := Pipe(LinkOptions{Adapter: mustAdapter(t, "ch340"), Baud: 921600, Paced: true})
		time.Sleep(300 * time.Microsecond)
		start := time.Now()
		host.Write(make([]byte, 10))
		buf := make([]byte, 10)
		if _, err := ReadFull(dev, buf, time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		want := 700*time.Microsecond + WireTime(10, 923076) // the CH340 runs 921600 as 923076
		if el := time.Since(start); el != want {
			t.Errorf("device had the bytes after %v, want %v", el, want)
		}
	})
}

// TestAdapterRateMismatch: a CP2102 asked for 1.5 Mbaud reports 1,000,000
// and runs 921600, so a chip at 1.5 Mbaud cannot talk to it; a CH340 asked
// for 921600 runs 923076, which a chip at 921600 understands.
func TestAdapterRateMismatch(t *testing.T) {
	tests := []struct {
		adapter             string
		host, dev           int
		reported            int
		understandEachOther bool
	}{
		{"cp2102", 1500000, 1500000, 1000000, false},
		{"cp2102", 1500000, 921600, 1000000, true},
		{"ch340", 921600, 921600, 921600, true},
		{"cp2102n", 921600, 921600, 923076, true},
		{"ftdi", 4000000, 4000000, 9600, false},
	}
	for _, tc := range tests {
		synctest.Test(t, func(t *testing.T) {
			host, dev := Pipe(LinkOptions{Adapter: mustAdapter(t, tc.adapter)})
			host.SetBaudRate(tc.host)
			dev.SetBaudRate(tc.dev)
			if got := host.BaudRate(); got != tc.reported {
				t.Errorf("%s at %d: BaudRate %d, want %d", tc.adapter, tc.host, got, tc.reported)
			}
			msg := []byte("0123456789")
			dev.Write(msg)
			buf := make([]byte, len(msg))
			ReadFull(host, buf, time.Now().Add(time.Second))
			host.Write(msg)
			back := make([]byte, len(msg))
			ReadFull(dev, back, time.Now().Add(time.Second))
			if ok := bytes.Equal(buf, msg) && bytes.Equal(back, msg); ok != tc.understandEachOther {
				t.Errorf("%s host %d dev %d: bytes intact = %v, want %v", tc.adapter, tc.host, tc.dev, ok, tc.understandEachOther)
			}
		})
	}
}

// TestAdapterAboveMaxBaud: a CH340 above its 2 Mbaud corrupts bytes.
func TestAdapterAboveMaxBaud(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		host, dev := Pipe(LinkOptions{Adapter: mustAdapter(t, "ch340"), Baud: 3000000})
		msg := bytes.Repeat([]byte{0xAA}, 200)
		dev.Write(msg)
		buf := make([]byte, len(msg))
		ReadFull(host, buf, time.Now().Add(time.Second))
		if bytes.Equal(buf, msg) {
			t.Error("200 bytes at 3 Mbaud through a CH340 arrived intact")
		}
	})
}

// TestReceiveBufferOverrun: a 4111-byte reply nobody reads while it arrives
// overruns a 4096-byte host buffer (bk7231-protocol.md §2.4); a reader that
// keeps up loses nothing, and neither does Linux's larger buffer.
func TestReceiveBufferOverrun(t *testing.T) {
	tests := []struct {
		name     string
		rx       int
		readLate bool
		wantLost int64
	}{
		{"small buffer, late reader", SmallRxBuffer, true, 15},
		{"small buffer, reader keeps up", SmallRxBuffer, false, 0},
		{"Linux buffer, late reader", 0, true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				host, dev := Pipe(LinkOptions{Adapter: mustAdapter(t, "ch340"), Baud: 921600, RxBuffer: tc.rx, Paced: true})
				reply := bytes.Repeat([]byte{0x42}, 4111)
				dev.Write(reply)
				if tc.readLate {
					time.Sleep(100 * time.Millisecond)
				}
				buf := make([]byte, 4111)
				n, _ := ReadFull(host, buf, time.Now().Add(200*time.Millisecond))
				if lost := host.Lost(); lost != tc.wantLost || int64(n) != 4111-tc.wantLost {
					t.Errorf("read %d bytes, lost %d; want %d lost", n, lost, tc.wantLost)
				}
			})
		})
	}
}

// requestReply runs cycles of a 12-byte request and a 4111-byte reply (a
// Beken FlashRead4K) at 921600 and returns the mean cycle time.
func requestReply(t testing.TB, opts LinkOptions, cycles int) time.Duration {
	opts.Baud = 921600
	host, dev := Pipe(opts)
	defer host.Close()
	defer dev.Close()
	go func() {
		req := make([]byte, 12)
		reply := make([]byte, 4111)
		for {
			if _, err := ReadFull(dev, req, time.Now().Add(time.Hour)); err != nil {
				return
			}
			dev.Write(reply)
		}
	}()
	buf := make([]byte, 4111)
	start := time.Now()
	for range cycles {
		host.Write(make([]byte, 12))
		if n, err := ReadFull(host, buf, time.Now().Add(time.Second)); err != nil {
			t.Fatalf("reply: %d bytes, %v", n, err)
		}
	}
	return time.Since(start) / time.Duration(cycles)
}

// TestRequestReplyAdapterCost: one command at a time, the FTDI's 16 ms
// timer holds the last partial packet of every reply, so a 4 KiB read takes
// about a third longer than on a CH340; the low-latency lever takes it back.
// Expected cycle (from the model): the wait for the next USB frame (0–1 ms),
// the request on the wire, the reply on the wire up to its last full packet,
// then the timer: FTDI 16 ms after its 66th 62-byte packet; CH340 and
// low-latency FTDI at most 1 ms after the last byte.
func TestRequestReplyAdapterCost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const cycles = 40
		req := WireTime(12, 923077)
		full := WireTime(4111, 921600)
		ftdiLast := WireTime(4111/62*62, 921600) // 4092 bytes in full packets
		tests := []struct {
			adapter  string
			low      bool
			min, max time.Duration
		}{
			{"ftdi", false, req + ftdiLast + 16*time.Millisecond, time.Millisecond + req + ftdiLast + 16*time.Millisecond},
			{"ftdi", true, req + full, time.Millisecond + req + full + time.Millisecond},
			{"ch340", false, req + full, time.Millisecond + req + full + time.Millisecond},
		}
		got := map[string]time.Duration{}
		for _, tc := range tests {
			cycle := requestReply(t, LinkOptions{Adapter: mustAdapter(t, tc.adapter), LowLatency: tc.low, Paced: true}, cycles)
			name := tc.adapter
			if tc.low {
				name += "+lowlatency"
			}
			got[name] = cycle
			t.Logf("%-17s %v per 4 KiB read (%.0f %% of the wire limit)", name, cycle, 100*float64(WireTime(12+4111, 921600))/float64(cycle))
			if cycle < tc.min || cycle > tc.max {
				t.Errorf("%s: %v per cycle, model says %v … %v", name, cycle, tc.min, tc.max)
			}
		}
		// Expected ratio with the mid-range frame wait (0.5 ms) and a mean
		// 0.5 ms tail on the CH340.
		half := time.Millisecond / 2
		want := float64(half+req+ftdiLast+16*time.Millisecond) / float64(half+req+full+half)
		ratio := float64(got["ftdi"]) / float64(got["ch340"])
		if ratio < want*0.97 || ratio > want*1.03 {
			t.Errorf("FTDI/CH340 = %.3f, model says %.3f (±3 %%)", ratio, want)
		}
		if got["ftdi+lowlatency"] >= got["ftdi"]-14*time.Millisecond {
			t.Errorf("low latency saves only %v per read", got["ftdi"]-got["ftdi+lowlatency"])
		}
	})
}

// TestBaudChangeFollowed: bytes keep the rate they were sent at; a change
// mid-session paces (and garbles) what follows.
func TestBaudChangeFollowed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		host, dev := Pipe(LinkOptions{Adapter: mustAdapter(t, "cp2102n"), Baud: 115200, Paced: true})
		start := time.Now()
		slow := bytes.Repeat([]byte{1}, 100)
		dev.Write(slow)
		dev.SetBaudRate(921600)
		fast := bytes.Repeat([]byte{2}, 100)
		dev.Write(fast)
		buf := make([]byte, 200)
		if _, err := ReadFull(host, buf, time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		el := time.Since(start)
		wire := WireTime(100, 115200) + WireTime(100, 921600)
		if el < wire || el > wire+time.Millisecond {
			t.Errorf("200 bytes in %v, want the wire time %v plus at most the 1 ms timer", el, wire)
		}
		if !bytes.Equal(buf[:100], slow) || bytes.Equal(buf[100:], fast) {
			t.Error("host at 115200: want the first 100 bytes intact and the 921600 ones garbled")
		}
	})
}

func TestPipeUnplug(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		host, dev := Pipe(LinkOptions{Adapter: mustAdapter(t, "ftdi"), Paced: true})
		dev.Write([]byte("in flight"))
		errc := make(chan error, 1)
		go func() {
			buf := make([]byte, 64)
			host.SetReadTimeout(NoTimeout)
			_, err := host.Read(buf) // the 16 ms timer holds the bytes
			errc <- err
		}()
		time.Sleep(5 * time.Millisecond)
		start := time.Now()
		dev.Unplug()
		err := <-errc
		if time.Since(start) != 0 {
			t.Errorf("blocked read returned %v after the unplug", time.Since(start))
		}
		for _, e := range []error{err, func() error { _, err := host.Write([]byte{1}); return err }()} {
			if !errors.Is(e, ErrUnplugged) || !errors.Is(e, ErrClosed) || !errors.Is(e, syscall.EIO) {
				t.Errorf("host error %v: want ErrUnplugged, ErrClosed and EIO", e)
			}
		}
		if _, err := dev.Read(make([]byte, 1)); !errors.Is(err, ErrClosed) {
			t.Errorf("device read after unplug: %v, want ErrClosed", err)
		}
	})
}

// TestCloseWakesBlockedRead: closing a port, directly or through
// CloseOnDone, ends a Read that waits without a timeout.
func TestCloseWakesBlockedRead(t *testing.T) {
	tests := []struct {
		name  string
		close func(ctx context.CancelFunc, p *PipePort)
	}{
		{"Close", func(_ context.CancelFunc, p *PipePort) { p.Close() }},
		{"CloseOnDone", func(cancel context.CancelFunc, _ *PipePort) { cancel() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				host, _ := Pipe(LinkOptions{Paced: true})
				ctx, cancel := context.WithCancel(context.Background())
				defer CloseOnDone(ctx, host)()
				errc := make(chan error, 1)
				go func() {
					_, err := host.Read(make([]byte, 1))
					errc <- err
				}()
				time.Sleep(time.Second)
				synctest.Wait()
				select {
				case err := <-errc:
					t.Fatalf("Read returned %v before the close", err)
				default:
				}
				tc.close(cancel, host)
				synctest.Wait()
				select {
				case err := <-errc:
					if !errors.Is(err, ErrClosed) {
						t.Errorf("Read returned %v, want ErrClosed", err)
					}
				default:
					t.Fatal("Read still blocked after the close")
				}
			})
		})
	}
}

func TestCloseOnDoneStop(t *testing.T) {
	host, dev := Pipe(LinkOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	stop := CloseOnDone(ctx, host)
	if !stop() {
		t.Fatal("stop reported the close already started")
	}
	cancel()
	if _, err := host.Write([]byte{1}); err != nil {
		t.Errorf("port closed after stop: %v", err)
	}
	dev.Close()
}

func TestPipeLatencyInfo(t *testing.T) {
	tests := []struct {
		adapter string
		low     bool
		want    LatencyInfo
	}{
		{"ftdi", false, LatencyInfo{Driver: "ftdi_sio", Timer: 16 * time.Millisecond, Known: true}},
		{"ftdi", true, LatencyInfo{Driver: "ftdi_sio", Timer: time.Millisecond, Known: true, Lowered: true}},
		{"ch340", true, LatencyInfo{Driver: "ch341", Timer: time.Millisecond, Known: true, Reason: "ch341 has no latency timer to lower"}},
		{"none", true, LatencyInfo{}},
	}
	for _, tc := range tests {
		host, dev := Pipe(LinkOptions{Adapter: mustAdapter(t, tc.adapter), LowLatency: tc.low})
		if got := Latency(Trace(host, io.Discard)); got != tc.want {
			t.Errorf("%s low=%v: %+v, want %+v", tc.adapter, tc.low, got, tc.want)
		}
		if got := dev.LatencyInfo(); got != (LatencyInfo{}) {
			t.Errorf("device end reports %+v", got)
		}
	}
}

// BenchmarkRequestReply measures, in real time, one-command-at-a-time 4 KiB
// reads (12-byte request, 4111-byte reply at 921600) through each adapter
// model: time per read, share of the wire limit, and the CPU the link costs
// per MiB moved.
func BenchmarkRequestReply(b *testing.B) {
	for _, name := range []string{"none", "ch340", "cp2102", "ftdi", "ftdi+lowlatency"} {
		b.Run(name, func(b *testing.B) {
			a, low := name, false
			if a == "ftdi+lowlatency" {
				a, low = "ftdi", true
			}
			opts := LinkOptions{Adapter: mustAdapter(b, a), LowLatency: low, Paced: true}
			cpu0 := cpuTime()
			b.ResetTimer()
			cycle := requestReply(b, opts, b.N)
			b.StopTimer()
			mib := float64(b.N) * 4111 / (1 << 20)
			b.ReportMetric(float64(cycle)/float64(time.Millisecond), "ms/read")
			b.ReportMetric(100*float64(WireTime(12+4111, 921600))/float64(cycle), "%wire")
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Millisecond)/mib, "cpu-ms/MiB")
		})
	}
}
