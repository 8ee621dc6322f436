package bksim

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"hash/crc32"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tuyaflash/tuyaflash/internal/testshared"
	"github.com/tuyaflash/tuyaflash/transport"
)

// Host-side frames are spelled out here, byte by byte, rather than built with
// the device's encoder, so a mistake in frame.go cannot hide in the tests.

// hx decodes "01 E0 FC" style hex.
func hx(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

func le(v uint32) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)} }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// cmdShort builds 01 E0 FC LL CC payload….
func cmdShort(code byte, payload ...byte) []byte {
	return cat([]byte{0x01, 0xE0, 0xFC, byte(1 + len(payload)), code}, payload)
}

// cmdLong builds 01 E0 FC FF F4 Ll Lh OP params….
func cmdLong(op byte, params ...byte) []byte {
	n := 1 + len(params)
	return cat([]byte{0x01, 0xE0, 0xFC, 0xFF, 0xF4, byte(n), byte(n >> 8), op}, params)
}

var (
	linkCheck  = hx("01 E0 FC 01 00")
	linkReply  = hx("04 0E 05 01 E0 FC 01 00")
	unprotect2 = cmdLong(0x0D, 0x01, 0x00, 0x00) // WRSR 01 with SR1=SR2=0
)

func readSRCmd(opcode byte) []byte { return cmdLong(0x0C, opcode) }

func crcCmd(start, end uint32) []byte { return cmdShort(0x10, cat(le(start), le(end))...) }

func read4KCmd(addr uint32) []byte { return cmdLong(0x09, le(addr)...) }

func erase4KCmd(addr uint32) []byte { return cmdLong(0x0F, cat([]byte{0x20}, le(addr))...) }

func write4KCmd(addr uint32, data []byte) []byte { return cmdLong(0x07, cat(le(addr), data)...) }

// read4KReply is the 4111-byte reply to a successful FlashRead4K.
func read4KReply(addr uint32, data []byte) []byte {
	return cat(hx("04 0E FF 01 E0 FC F4 06 10 09 00"), le(addr), data)
}

// hostCRC is what the chip should answer for data: the standard CRC-32
// without its final inversion (reference §4.2).
func hostCRC(data []byte) uint32 { return crc32.ChecksumIEEE(data) ^ 0xFFFFFFFF }

// rig serves a device on an in-memory link; use it inside a synctest bubble.
type rig struct {
	t      *testing.T
	d      *Device
	host   *transport.PipePort
	cancel context.CancelFunc
	done   chan error
}

func startRig(t *testing.T, cfg Config, opts transport.LinkOptions) *rig {
	t.Helper()
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	host, dev := transport.Pipe(opts)
	ctx, cancel := context.WithCancel(context.Background())
	r := &rig{t: t, d: d, host: host, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- d.Serve(ctx, dev) }()
	return r
}

// stop ends Serve and checks that it returned nil.
func (r *rig) stop() {
	r.t.Helper()
	r.cancel()
	if err := <-r.done; err != nil {
		r.t.Errorf("Serve returned %v, want nil after cancel", err)
	}
}

func (r *rig) send(b []byte) {
	r.t.Helper()
	if err := transport.WriteAll(r.host, b); err != nil {
		r.t.Fatalf("host write: %v", err)
	}
}

// read reads exactly n bytes within 10 s (fake time).
func (r *rig) read(n int) []byte {
	r.t.Helper()
	buf := make([]byte, n)
	if got, err := transport.ReadFull(r.host, buf, time.Now().Add(10*time.Second)); err != nil {
		r.t.Fatalf("host read %d of %d bytes: %v (got % X)", got, n, err, short(buf[:got]))
	}
	return buf
}

// expect reads len(want) bytes and compares them.
func (r *rig) expect(want []byte) {
	r.t.Helper()
	got := r.read(len(want))
	if !bytes.Equal(got, want) {
		r.t.Fatalf("reply\n got % X\nwant % X", short(got), short(want))
	}
}

// roundTrip sends req and returns the n-byte reply.
func (r *rig) roundTrip(req []byte, n int) []byte {
	r.t.Helper()
	r.send(req)
	return r.read(n)
}

// silent checks that nothing arrives for d.
func (r *rig) silent(d time.Duration) {
	r.t.Helper()
	buf := make([]byte, 64)
	if n, _ := transport.ReadFull(r.host, buf, time.Now().Add(d)); n != 0 {
		r.t.Fatalf("got % X, want silence for %v", buf[:n], d)
	}
}

// link power-cycles the chip and links as a host does.
func (r *rig) link() {
	r.t.Helper()
	r.d.PowerCycle()
	r.send(linkCheck)
	r.expect(linkReply)
}

// readFlash reads 4 KiB at addr through the protocol.
func (r *rig) readFlash(addr uint32) []byte {
	r.t.Helper()
	got := r.roundTrip(read4KCmd(addr), 4111)
	if !bytes.Equal(got[:15], cat(hx("04 0E FF 01 E0 FC F4 06 10 09 00"), le(addr))) {
		r.t.Fatalf("FlashRead4K 0x%X header % X", addr, got[:15])
	}
	return got[15:]
}

// short trims long byte strings for failure messages.
func short(b []byte) []byte {
	if len(b) > 48 {
		return b[:48]
	}
	return b
}

// readToTheEnd reads the host's end after the chip's side of the line went
// away: what the chip had sent before may still be on its way (a boot
// message, a late reply); after it, a read fails. It returns that error
// (nil: a read timed out, 1 s, with the line still open).
func readToTheEnd(host *transport.PipePort) error {
	host.SetReadTimeout(time.Second)
	for range 64 {
		n, err := host.Read(make([]byte, 4096))
		if err != nil || n == 0 {
			return err
		}
	}
	return nil
}

func allFF(b []byte) bool { return bytes.Count(b, []byte{0xFF}) == len(b) }

// sharedDir finds ../shared/testdata/bk7231 next to the repository root;
// "" when absent.
func sharedDir(t *testing.T) string { return testshared.Lookup("testdata", "bk7231") }

func sr(v uint16) *uint16 { return &v }

// withLinkedChip runs body in a synctest bubble against a chip that has just
// been power-cycled and linked over an unpaced in-memory link.
func withLinkedChip(t *testing.T, cfg Config, body func(t *testing.T, r *rig)) {
	synctest.Test(t, func(t *testing.T) {
		r := startRig(t, cfg, transport.LinkOptions{})
		defer r.stop()
		r.link()
		body(t, r)
	})
}

// fakeApp is a firmware that records what the simulator does with it.
type fakeApp struct {
	mu     sync.Mutex
	events []string
	serial []byte
	reply  []byte
	sizes  []int // Flash.Size at each Boot
}

func (a *fakeApp) Boot(f Flash) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, "boot")
	a.sizes = append(a.sizes, f.Size())
}

func (a *fakeApp) Halt() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, "halt")
}

func (a *fakeApp) Serial(in []byte) []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.serial = append(a.serial, in...)
	return a.reply
}

// history returns the Boot/Halt calls so far, space separated.
func (a *fakeApp) history() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return strings.Join(a.events, " ")
}

func (a *fakeApp) received() []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]byte(nil), a.serial...)
}

// netApp is a fakeApp with a network address.
type netApp struct {
	fakeApp
	addr string
}

func (a *netApp) NetAddr() string { return a.addr }

// addrsApp is a netApp with the access point, native API and Tuya port
// addresses of NetAddrs (all at addr's host, ports +1, +2, +3 as text).
type addrsApp struct {
	netApp
	ap, api, tuya string
}

func (a *addrsApp) APAddr() string   { return a.ap }
func (a *addrsApp) APIAddr() string  { return a.api }
func (a *addrsApp) TuyaAddr() string { return a.tuya }

// identifyCmd is the virtual identification command of contract C2, spelled
// out: 01 E0 FC 13 7E "tuyaflash-virtual?".
var identifyCmd = cat(hx("01 E0 FC 13 7E"), []byte("tuyaflash-virtual?"))

// identify sends the identification command and decodes the JSON answer.
func (r *rig) identify() map[string]any {
	r.t.Helper()
	r.send(identifyCmd)
	head := r.read(7)
	if !bytes.Equal(head[:2], hx("04 0E")) || !bytes.Equal(head[3:], hx("01 E0 FC 7E")) {
		r.t.Fatalf("identification reply starts % X", head)
	}
	body := r.read(int(head[2]) - 4)
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		r.t.Fatalf("identification JSON %q: %v", body, err)
	}
	return m
}

// settle lets the simulator's goroutines act on what happened (synctest).
func settle() { synctest.Wait() }

// sprayLinkChecks sends a LinkCheck every 10 ms, as the tools do while the
// user power-cycles the module, until one is answered within d.
func (r *rig) sprayLinkChecks(d time.Duration) {
	r.t.Helper()
	buf := make([]byte, len(linkReply))
	for end := time.Now().Add(d); time.Now().Before(end); {
		r.send(linkCheck)
		if n, _ := transport.ReadFull(r.host, buf, time.Now().Add(10*time.Millisecond)); n == len(buf) && bytes.Equal(buf, linkReply) {
			return
		}
	}
	r.t.Fatalf("no link within %v of link checks", d)
}
