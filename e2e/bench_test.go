//go:build linux

package e2e

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.bug.st/serial"

	bksim "github.com/tuyaflash/tuyaflash/devicesim/bk7231"
	espsim "github.com/tuyaflash/tuyaflash/devicesim/esp8266"
	"github.com/tuyaflash/tuyaflash/firmware/fwtest"
)

// The virtual bench from the outside: raw protocol clients that are not
// tuyaflash's (written here from the protocol references, as a
// bk7231tools or esptool user would drive a port) talk to `tuyaflash sim`
// over its pseudo-terminal, paced as a real link is.
//
// Timing assertions: the link model never delivers a byte before the
// wire could have carried it, so the lower bounds are tight — the bytes
// on the wire × 10 bits / baud. The upper bounds add what the model adds
// (a USB frame of up to 1 ms before each request, the adapter's latency
// timer after each reply) and then generous slack (×1.5 + 0.5 s), because
// the pty's pump goroutines and this process share two loaded CPU cores
// with the rest of the suite; a slow machine can only make a run slower.

// rawPort opens the simulator's pty the way a Python tool opens a serial
// port: 8N1 at baud, short read timeouts.
func rawPort(t *testing.T, tty string, baud int) serial.Port {
	t.Helper()
	// go.bug.st/serial opens without O_CLOEXEC: the tests running beside
	// this one would pass the port on to every tuyaflash they start.
	syscall.ForkLock.RLock()
	p, err := serial.Open(tty, &serial.Mode{BaudRate: baud})
	if err == nil {
		keepFromChildren(tty)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		t.Fatal(err)
	}
	p.SetReadTimeout(20 * time.Millisecond)
	t.Cleanup(func() { p.Close() })
	return p
}

// keepFromChildren sets FD_CLOEXEC on this process's descriptors of the
// device behind path.
func keepFromChildren(path string) {
	var want syscall.Stat_t
	if syscall.Stat(path, &want) != nil {
		return
	}
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		var st syscall.Stat_t
		if err == nil && syscall.Fstat(fd, &st) == nil && st.Dev == want.Dev && st.Ino == want.Ino {
			syscall.CloseOnExec(fd)
		}
	}
}

// readUntil reads from p until want has arrived (returns the bytes read)
// or the deadline passes.
func readUntil(t *testing.T, p serial.Port, want []byte, n int, deadline time.Time) []byte {
	t.Helper()
	var got []byte
	buf := make([]byte, 8192)
	for time.Now().Before(deadline) {
		k, err := p.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:k]...)
		if want != nil && bytes.Contains(got, want) || n > 0 && len(got) >= n {
			return got
		}
	}
	t.Fatalf("timed out waiting: got %d bytes % X…", len(got), got[:min(len(got), 32)])
	return nil
}

// bekenLink sends LinkChecks until the chip answers (bk7231tools'
// connect loop; the simulated user power-cycles after the first ones).
func bekenLink(t *testing.T, p serial.Port) {
	t.Helper()
	reply := []byte{0x04, 0x0E, 0x05, 0x01, 0xE0, 0xFC, 0x01, 0x00}
	deadline := time.Now().Add(10 * time.Second)
	buf := make([]byte, 256)
	var seen []byte
	p.SetReadTimeout(5 * time.Millisecond)
	for time.Now().Before(deadline) {
		p.Write([]byte{0x01, 0xE0, 0xFC, 0x01, 0x00})
		n, _ := p.Read(buf)
		seen = append(seen, buf[:n]...)
		if bytes.Contains(seen, reply) {
			time.Sleep(50 * time.Millisecond)
			p.ResetInputBuffer()
			p.SetReadTimeout(20 * time.Millisecond)
			return
		}
	}
	t.Fatal("the simulated chip never answered a LinkCheck")
}

// bekenReads reads n 4 KiB sectors with FlashRead4K (long command 0x09)
// and returns how long they took; each reply is 4111 bytes.
func bekenReads(t *testing.T, p serial.Port, n int) time.Duration {
	t.Helper()
	var sum time.Duration
	for _, d := range bekenReadTimes(t, p, n) {
		sum += d
	}
	return sum
}

// bekenReadTimes is bekenReads with the time of each request and reply.
func bekenReadTimes(t *testing.T, p serial.Port, n int) []time.Duration {
	t.Helper()
	var took []time.Duration
	for i := range n {
		start := time.Now()
		addr := uint32(0x11000 + i*0x1000)
		req := []byte{0x01, 0xE0, 0xFC, 0xFF, 0xF4, 0x05, 0x00, 0x09}
		req = binary.LittleEndian.AppendUint32(req, addr)
		if _, err := p.Write(req); err != nil {
			t.Fatal(err)
		}
		r := readUntil(t, p, nil, bekenReadReply, time.Now().Add(5*time.Second))
		if len(r) != bekenReadReply || r[10] != 0 || binary.LittleEndian.Uint32(r[11:]) != addr {
			t.Fatalf("read %d: %d bytes, % X…", i, len(r), r[:min(len(r), 16)])
		}
		took = append(took, time.Since(start))
	}
	return took
}

const (
	bekenReadReq   = 12   // 01 E0 FC FF F4 05 00 09 + address
	bekenReadReply = 4111 // 04 0E FF 01 E0 FC F4 len(2) 09 status address data(4096)
)

// wire is how long n bytes take on a UART at baud (10 bits a byte).
func wire(n int, baud int) time.Duration {
	return time.Duration(n) * 10 * time.Second / time.Duration(baud)
}

// TestBekenRawTransferWireTime: a bk7231tools-style client reads flash at
// 115200 baud, switches the chip to 921600 (SetBaudRate, short 0x0F) and
// its own port with it, and reads on: each phase takes the wire time of
// its bytes, never less.
func TestBekenRawTransferWireTime(t *testing.T) {
	s := startPacedSim(t, "--chip", "bk7231n")
	p := rawPort(t, s.tty, 115200)
	bekenLink(t, p)
	const slowReads, fastReads = 4, 40
	slow := bekenReads(t, p, slowReads)

	// SetBaudRate 921600 with a 20 ms delay: the chip answers at the new
	// rate after the delay.
	req := []byte{0x01, 0xE0, 0xFC, 0x06, 0x0F}
	req = binary.LittleEndian.AppendUint32(req, 921600)
	req = append(req, 20)
	p.Write(req)
	p.Drain() // all of it on the wire at 115200 before the port switches
	time.Sleep(5 * time.Millisecond)
	p.SetMode(&serial.Mode{BaudRate: 921600})
	// The whole answer, header and echo (baud, delay), before the next
	// request: on a loaded machine its tail was still on its way when
	// the input was flushed, and the next read began with it.
	echo := append([]byte{0x04, 0x0E, 0x09, 0x01, 0xE0, 0xFC, 0x0F}, req[5:]...)
	readUntil(t, p, echo, 0, time.Now().Add(2*time.Second))
	fast := bekenReads(t, p, fastReads)

	check := func(name string, got time.Duration, reads, baud int, adapter time.Duration) {
		min := time.Duration(reads) * wire(bekenReadReq+bekenReadReply, baud)
		max := (min+time.Duration(reads)*adapter)*3/2 + 500*time.Millisecond
		t.Logf("%s: %d reads of 4 KiB in %v; the wire takes %v (%.1f %% of the measured time)", name, reads, got.Round(time.Millisecond), min.Round(time.Millisecond), 100*min.Seconds()/got.Seconds())
		if got < min || got > max {
			t.Errorf("%s: %v, want %v … %v", name, got, min, max)
		}
	}
	// CH340: a request waits for the next 1 ms USB frame, the last 15
	// bytes of a reply (4111 = 128 × 32 + 15) up to the 1 ms timer.
	check("115200 baud", slow, slowReads, 115200, 2*time.Millisecond)
	check("921600 baud", fast, fastReads, 921600, 2*time.Millisecond)
}

// slip frames an ESP8266 request.
func slip(pkt []byte) []byte {
	out := []byte{0xC0}
	for _, b := range pkt {
		switch b {
		case 0xC0:
			out = append(out, 0xDB, 0xDC)
		case 0xDB:
			out = append(out, 0xDB, 0xDD)
		default:
			out = append(out, b)
		}
	}
	return append(out, 0xC0)
}

// espRequest builds a command packet: direction 0, opcode, length,
// checksum, data.
func espRequest(op byte, data []byte, chk uint32) []byte {
	p := []byte{0x00, op}
	p = binary.LittleEndian.AppendUint16(p, uint16(len(data)))
	p = binary.LittleEndian.AppendUint32(p, chk)
	return slip(append(p, data...))
}

// espReply waits for the whole ROM reply to op (SLIP frame C0 01 op … C0)
// and checks its status.
func espReply(t *testing.T, p serial.Port, op byte) {
	t.Helper()
	var got []byte
	buf := make([]byte, 256)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		n, err := p.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
		if i := bytes.Index(got, []byte{0xC0, 0x01, op}); i >= 0 {
			if j := bytes.IndexByte(got[i+1:], 0xC0); j >= 0 {
				frame := got[i+1 : i+1+j]
				if len(frame) < 10 || frame[8] != 0 {
					t.Fatalf("reply to 0x%02X: % X", op, frame)
				}
				return
			}
		}
	}
	t.Fatalf("no reply to 0x%02X: % X", op, got)
}

// TestESPRawWriteWireTime: an esptool-style client syncs with the ROM
// loader and writes 1 KiB blocks (FLASH_BEGIN, FLASH_DATA) at 115200
// baud, one command at a time: the blocks take their wire time.
func TestESPRawWriteWireTime(t *testing.T) {
	s := startPacedSim(t, "--chip", "esp8266", "--no-timing")
	p := rawPort(t, s.tty, 115200)
	sync := espRequest(0x08, append([]byte{0x07, 0x07, 0x12, 0x20}, bytes.Repeat([]byte{0x55}, 32)...), 0)
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.ResetInputBuffer()
		p.Write(sync)
		buf := make([]byte, 1024)
		n, _ := p.Read(buf)
		if bytes.Contains(buf[:n], []byte{0xC0, 0x01, 0x08}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the ROM never answered SYNC")
		}
	}
	time.Sleep(100 * time.Millisecond) // the other seven SYNC replies
	p.ResetInputBuffer()

	const blocks, size = 12, 1024
	begin := make([]byte, 0, 16)
	for _, v := range []uint32{blocks * size, blocks, size, 0x10000} {
		begin = binary.LittleEndian.AppendUint32(begin, v)
	}
	p.Write(espRequest(0x02, begin, 0))
	espReply(t, p, 0x02)
	rng := rand.New(rand.NewSource(11))
	onWire := 0
	start := time.Now()
	for seq := range blocks {
		block := make([]byte, size)
		rng.Read(block)
		chk := uint32(0xEF)
		for _, b := range block {
			chk ^= uint32(b)
		}
		hdr := make([]byte, 0, 16)
		for _, v := range []uint32{size, uint32(seq), 0, 0} {
			hdr = binary.LittleEndian.AppendUint32(hdr, v)
		}
		req := espRequest(0x03, append(hdr, block...), chk)
		onWire += len(req) + 12 // the reply: C0 01 03 02 00 value(4) status(2) C0
		p.Write(req)
		espReply(t, p, 0x03)
	}
	got := time.Since(start)
	min := wire(onWire, 115200)
	max := (min+blocks*2*time.Millisecond)*3/2 + 500*time.Millisecond
	t.Logf("%d FLASH_DATA blocks of 1 KiB at 115200 baud in %v; the wire takes %v (%.1f %%)", blocks, got.Round(time.Millisecond), min.Round(time.Millisecond), 100*min.Seconds()/got.Seconds())
	if got < min || got > max {
		t.Errorf("%v, want %v … %v", got, min, max)
	}
}

// TestFTDISlowerThanCH340: the same request/reply read (4 KiB sectors at
// 921600 baud) through an FT232R model and a CH340 model. The FTDI holds
// the last partial 62-byte packet of every reply (4111 = 66 × 62 + 19)
// until its 16 ms latency timer fires, as no user-space tool can lower it
// on a pty; the CH340 hands it over within a millisecond.
func TestFTDISlowerThanCH340(t *testing.T) {
	const reads = 24
	took := map[string]time.Duration{} // the median request/reply time
	for _, adapter := range []string{"ch340", "ftdi"} {
		s := startPacedSim(t, "--chip", "bk7231n", "--adapter", adapter)
		p := rawPort(t, s.tty, 115200)
		bekenLink(t, p)
		req := []byte{0x01, 0xE0, 0xFC, 0x06, 0x0F}
		req = binary.LittleEndian.AppendUint32(req, 921600)
		req = append(req, 20)
		p.Write(req)
		p.Drain() // all of it on the wire at 115200 before the port switches
		time.Sleep(5 * time.Millisecond)
		p.SetMode(&serial.Mode{BaudRate: 921600})
		// The whole answer (header, baud, delay) before the first read.
		readUntil(t, p, append([]byte{0x04, 0x0E, 0x09, 0x01, 0xE0, 0xFC, 0x0F}, req[5:]...), 0, time.Now().Add(2*time.Second))
		times := bekenReadTimes(t, p, reads)
		slices.Sort(times)
		took[adapter] = times[reads/2]
		s.stop(t)
	}
	diff := took["ftdi"] - took["ch340"]
	t.Logf("%d reads of 4 KiB at 921600, the median reply: CH340 %v, FTDI %v (+%.1f ms; the model says up to 16 ms)",
		reads, took["ch340"].Round(100*time.Microsecond), took["ftdi"].Round(100*time.Microsecond), diff.Seconds()*1000)
	// The median, not the sum: a loaded machine delays some replies of
	// either run by tens of milliseconds, not most of them. Half the
	// timer on the median reply is far above what the CH340's 1 ms timer
	// can add.
	if diff < 8*time.Millisecond {
		t.Errorf("FTDI %v a reply is not measurably slower than CH340 %v", took["ftdi"], took["ch340"])
	}
}

// TestIdleExitOfBK7231T: a BK7231T left alone in download mode leaves it
// (its bootloader boots the application): the next command finds it gone
// and asks for a power-cycle again, where a BK7231N (BootROM) is found
// still linked.
func TestIdleExitOfBK7231T(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		chip  string
		args  []string
		again bool
	}{
		{"bk7231t", []string{"--idle-exit", "300ms"}, true},
		{"bk7231n", nil, false},
	} {
		t.Run(tc.chip, func(t *testing.T) {
			s := startSim(t, append([]string{"--chip", tc.chip}, tc.args...)...)
			store := t.TempDir()
			mustRun(t, store, "detect", "--port", s.tty)
			time.Sleep(time.Second)
			r := mustRun(t, store, "detect", "--port", s.tty, "-v")
			prompted := strings.Contains(r.stderr, "power-cycle the module now")
			stillLinked := strings.Contains(r.stderr, "still in download mode from an earlier session")
			if prompted != tc.again || stillLinked == tc.again {
				t.Errorf("second detect: prompted %v, found linked %v; want prompted %v:\n%s", prompted, stillLinked, tc.again, r.stderr)
			}
		})
	}
}

// stockFlash is the stock-looking image a simulated chip starts with,
// written to a file for `tuyaflash sim --flash`, so that a test knows
// every byte that must survive.
func stockFlash(t *testing.T, chip string) (string, []byte) {
	t.Helper()
	var img []byte
	var err error
	if strings.HasPrefix(chip, "esp") {
		c, _ := espsim.ParseChip(chip)
		img, err = espsim.StockFlash(espsim.Stock{Chip: c})
	} else {
		c, _ := bksim.ParseChip(chip)
		img, err = bksim.DefaultFlashSize(c, bksim.DefaultMAC, 0)
	}
	if err != nil {
		t.Fatal(err)
	}
	return writeIn(t, t.TempDir(), "stock.bin", img), img
}

// TestPhysicalFaultsMidWrite: the power cut or the chip reset in the
// middle of an erase, a program or a command, while tuyaflash writes.
// tuyaflash either recovers by itself or ends with a clear error that
// says to run the command again; the run after it completes; nothing
// outside the sectors being written is lost.
func TestPhysicalFaultsMidWrite(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, chip string
		fault      []string
	}{
		{"BK7231N power loss mid-erase", "bk7231n", []string{"--power-loss-at", "1"}},
		{"BK7231N power loss mid-program", "bk7231n", []string{"--power-loss-at", "6"}},
		{"BK7231T power loss mid-program", "bk7231t", []string{"--power-loss-at", "6"}},
		{"BK7231N reset mid-command", "bk7231n", []string{"--reset-at", "70"}},
		{"BK7231T reset mid-command", "bk7231t", []string{"--reset-at", "25"}},
		{"ESP8266 power loss mid-erase", "esp8266", []string{"--power-loss-at", "1", "--power-loss-op", "erase"}},
		{"ESP8266 power loss mid-program", "esp8266", []string{"--power-loss-at", "40", "--power-loss-op", "program"}},
		{"ESP8266 reset mid-command", "esp8266", []string{"--reset-at", "30"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stockFile, stock := stockFlash(t, tc.chip)
			saved := filepath.Join(t.TempDir(), "after.bin")
			s := startSim(t, append([]string{"--chip", tc.chip, "--flash", stockFile, "--save", saved, "-v"}, tc.fault...)...)
			var img []byte
			at := 0x11000
			if strings.HasPrefix(tc.chip, "esp") {
				img, at = espImage(160000, 3, 5), 0
			} else {
				img = fwtest.App(fwtest.SigTuya, 160*1024, 5)
			}
			file := writeIn(t, t.TempDir(), "fw.bin", img)
			store := t.TempDir()
			r := run(t, store, "write", "--port", s.tty, "--yes", file)
			recovered := r.code == 0
			if !recovered {
				if !strings.Contains(r.stderr, "run the same command again") && !strings.Contains(r.stderr, "run the write again") {
					t.Errorf("the failure does not say what to do:\n%s", r)
				}
				if r2 := run(t, store, "write", "--port", s.tty, "--yes", file); r2.code != 0 {
					// The simulator's goroutines, to see where it stands.
					s.cmd.Process.Signal(syscall.SIGQUIT)
					time.Sleep(2 * time.Second)
					log := s.out.String()
					t.Fatalf("the run after the fault failed:\n%s\nfirst run:\n%s\nsimulator (last 30000 bytes):\n%s", r2, r, log[max(0, len(log)-30000):])
				}
			}
			t.Logf("first run: exit %d\n%s", r.code, r)
			s.stop(t)
			got := readFile(t, saved)
			end := (at + len(img) + 0xFFF) &^ 0xFFF
			if !bytes.Equal(got[:at], stock[:at]) || !bytes.Equal(got[end:], stock[end:]) {
				t.Error("flash outside the written sectors changed")
			}
			if !bytes.Equal(got[at+4:at+len(img)], img[4:]) { // ESP: the header's mode and size bytes are set
				t.Error("the image is not in flash")
			}
		})
	}
}
