package appsim

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/firmware/demo"
	"github.com/tuyaflash/tuyaflash/firmware/fwtest"
)

// memFlash is a flash in memory with NOR-like writes: WriteAt erases the
// 4 KiB sectors it touches first, as the chip simulators' flash does.
type memFlash struct {
	mu     sync.Mutex
	b      []byte
	writes int
}

func newFlash(size int) *memFlash { return &memFlash{b: bytes.Repeat([]byte{0xFF}, size)} }

func (m *memFlash) Size() int { return len(m.b) }

func (m *memFlash) ReadAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off < 0 || off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memFlash) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off < 0 || off+int64(len(p)) > int64(len(m.b)) {
		return 0, fmt.Errorf("write past the end")
	}
	for s := off &^ (sectorSize - 1); s < off+int64(len(p)); s += sectorSize {
		copy(m.b[s:s+sectorSize], bytes.Repeat([]byte{0xFF}, sectorSize))
	}
	m.writes++
	return copy(m.b[off:], p), nil
}

// put stores data at off without erase semantics (test setup).
func (m *memFlash) put(off int, data []byte) *memFlash {
	copy(m.b[off:], data)
	return m
}

// memNet is an in-memory TCP world for testing/synctest bubbles, where
// real sockets are not allowed: Listen hands out 127.0.0.1 ports, Dial
// connects through net.Pipe, and a closed or missing listener refuses
// with ECONNREFUSED as a real one does.
type memNet struct {
	mu   sync.Mutex
	next int
	ls   map[string]*memListener
}

func newMemNet() *memNet { return &memNet{next: 20000, ls: map[string]*memListener{}} }

type memListener struct {
	n    *memNet
	addr *net.TCPAddr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func (n *memNet) Listen(_, address string) (net.Listener, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if port == "0" {
		n.next++
		port = strconv.Itoa(n.next)
	}
	key := net.JoinHostPort(host, port)
	if _, busy := n.ls[key]; busy {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EADDRINUSE)}
	}
	p, _ := strconv.Atoi(port)
	l := &memListener{n: n, addr: &net.TCPAddr{IP: net.ParseIP(host), Port: p}, ch: make(chan net.Conn), done: make(chan struct{})}
	n.ls[key] = l
	return l, nil
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.n.mu.Lock()
		if l.n.ls[l.addr.String()] == l {
			delete(l.n.ls, l.addr.String())
		}
		l.n.mu.Unlock()
	})
	return nil
}

func (l *memListener) Addr() net.Addr { return l.addr }

var errRefused = &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}

func (n *memNet) Dial(ctx context.Context, _, address string) (net.Conn, error) {
	n.mu.Lock()
	l := n.ls[address]
	n.mu.Unlock()
	if l == nil {
		return nil, errRefused
	}
	client, server := net.Pipe()
	caddr := &net.TCPAddr{IP: l.addr.IP, Port: 40000}
	select {
	case l.ch <- addrConn{server, l.addr, caddr}:
		return addrConn{client, caddr, l.addr}, nil
	case <-l.done:
		return nil, errRefused
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// addrConn gives a pipe TCP addresses, as the clients look at them.
type addrConn struct {
	net.Conn
	local, remote net.Addr
}

func (c addrConn) LocalAddr() net.Addr  { return c.local }
func (c addrConn) RemoteAddr() net.Addr { return c.remote }

// bench is one simulated device: its flash and firmware, on an
// in-memory network (inside synctest bubbles) or on loopback.
type bench struct {
	t     *testing.T
	fw    *Firmware
	flash *memFlash
	mem   *memNet
	log   *bytes.Buffer
}

// newBench makes a firmware for chip on an in-memory network.
func newBench(t *testing.T, chip string, flash *memFlash, timing Timing) *bench {
	t.Helper()
	b := &bench{t: t, flash: flash, mem: newMemNet(), log: &bytes.Buffer{}}
	fw, err := New(Config{Chip: chip, MAC: espMAC, Timing: timing, Listen: b.mem.Listen, Log: syncWriter{w: b.log}})
	if err != nil {
		t.Fatal(err)
	}
	b.fw = fw
	t.Cleanup(fw.Halt)
	return b
}

// syncWriter serialises writes to the log.
type syncWriter struct{ w io.Writer }

var logMu sync.Mutex

func (s syncWriter) Write(p []byte) (int, error) {
	logMu.Lock()
	defer logMu.Unlock()
	return s.w.Write(p)
}

// dial reaches the device as its clients do: well-known ports of the
// station's host are redirected to the simulator's listeners.
func (b *bench) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return b.mem.Dial(ctx, network, b.fw.Redirect(addr))
}

// client is an HTTP client over the bench's network.
func (b *bench) client() *http.Client {
	return &http.Client{
		Transport:     &http.Transport{DialContext: b.dial, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// get fetches a URL on the device, with a Referer naming it.
func (b *bench) get(addr, path string) (int, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	req.Header.Set("Referer", "http://"+addr+"/")
	resp, err := b.client().Do(req)
	if err != nil {
		b.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// post sends a body to a URL on the device.
func (b *bench) post(addr, path, ctype, body string) (int, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+path, bytes.NewBufferString(body))
	req.Header.Set("Content-Type", ctype)
	resp, err := b.client().Do(req)
	if err != nil {
		b.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// refused reports whether nothing listens at addr.
func (b *bench) refused(addr string) bool {
	c, err := b.mem.Dial(context.Background(), "tcp", addr)
	if err == nil {
		c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// The MACs of the test devices.
const espMAC = "A4:CF:12:C6:58:CC" // Tasmota's PR #12900 example: tasmota-C658CC-6348

var bekenMAC = macAddr{0x38, 0x1F, 0x8D, 0x55, 0xC6, 0x14}

// rfSector is a synthetic RF calibration sector holding mac, laid out as
// the real ones: "TLV\0", length, the 0x11111100 group with its items.
func rfSector(mac macAddr) []byte {
	item := func(tag uint32, val []byte) []byte {
		b := binary.LittleEndian.AppendUint32(nil, tag)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(val)))
		return append(b, val...)
	}
	var group []byte
	group = append(group, item(0x11111101, []byte{1, 0, 0, 0})...)
	group = append(group, item(tlvMACItem, mac[:])...)
	group = append(group, item(0x11111103, []byte{2, 0, 0, 0})...)
	body := item(tlvChipItem, group)
	body = append(body, item(0x22222200, bytes.Repeat([]byte{0x5A}, 16))...)
	s := append([]byte(tlvMagic), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...)
	return append(s, body...)
}

// bekenFlash is a 2 MiB flash with app at 0x11000 and the RF sector of
// the chip.
func bekenFlash(t *testing.T, chip string, app []byte) *memFlash {
	t.Helper()
	c, err := lookupChip(chip)
	if err != nil {
		t.Fatal(err)
	}
	f := newFlash(2<<20).put(int(c.rf[0]), rfSector(bekenMAC))
	if app != nil {
		f.put(bekenApp, app)
	}
	return f
}

// obkDemoFlash holds the OpenBeken demo for chip.
func obkDemoFlash(t *testing.T, chip string) *memFlash {
	t.Helper()
	app, err := demo.OpenBeken(chip)
	if err != nil {
		t.Fatal(err)
	}
	return bekenFlash(t, chip, app)
}

// espFlash is a 1 MiB flash with image at 0x0.
func espFlash(image []byte) *memFlash { return newFlash(1<<20).put(0, image) }

func mustESPDemo(t *testing.T, build func(string) ([]byte, error)) []byte {
	t.Helper()
	b, err := build("ESP8266")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// espV1 is an ESP8266 V1 image with one DRAM segment holding data (made
// here from the image format, independently of firmware/demo).
func espV1(data []byte) []byte {
	for len(data)%4 != 0 {
		data = append(data, 0)
	}
	b := []byte{0xE9, 1, 3, 0x20}
	b = binary.LittleEndian.AppendUint32(b, 0x40100000)
	b = binary.LittleEndian.AppendUint32(b, 0x3FFE8000)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	b = append(b, data...)
	sum := byte(0xEF)
	for _, c := range data {
		sum ^= c
	}
	for len(b)%16 != 15 {
		b = append(b, 0)
	}
	return append(b, sum)
}

// arduinoImage is eboot at 0x0 and a sketch at 0x1000 holding data in a
// flash-mapped segment, as Tasmota and ESPHome ship.
func arduinoImage(data []byte) []byte {
	img := espV1([]byte("eboot"))
	img = append(img, bytes.Repeat([]byte{0xFF}, 0x1000-len(img))...)
	app := []byte{0xE9, 1, 3, 0x20}
	app = binary.LittleEndian.AppendUint32(app, 0x40201010)
	app = binary.LittleEndian.AppendUint32(app, 0x40201010)
	app = binary.LittleEndian.AppendUint32(app, uint32(len(data)))
	app = append(app, data...)
	for len(app)%16 != 15 {
		app = append(app, 0)
	}
	return append(append(img, app...), 0x00) // checksum left wrong, as elf2bin's CRC patch leaves it
}

// waitFor advances fake time (or waits on real time) until cond holds.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %s", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// appLike is an encrypted-looking Beken application (stock firmware).
func appLike(n int) []byte { return fwtest.App(fwtest.SigTuya, n, 9) }
