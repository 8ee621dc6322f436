package migrate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/firmware"
	"github.com/tuyaflash/tuyaflash/firmware/fwtest"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/inventory"
	"github.com/tuyaflash/tuyaflash/postflash"
	"github.com/tuyaflash/tuyaflash/provision"
	"github.com/tuyaflash/tuyaflash/transport"
	"github.com/tuyaflash/tuyaflash/tuyaconfig"
)

// The fakes model a bench: modules on adapters (fakeChip, reached through
// the bench as Connector), a catalogue (fakeFirmwares) and the home network
// (the bench as Network). A module runs the new firmware once its flash
// holds the catalogue's image and it was rebooted; it comes online only
// with the right Wi-Fi credentials, which it keeps across reboots (as the
// firmwares keep them in their own config sector).

const (
	homeSSID = "home"
	homePass = "correct horse"
	// pinMap is the Tuya pin map every fake Beken config holds: a relay on
	// P6 (active high), a button on P8 (active low), the Wi-Fi LED on P24.
	pinMap = "{module:CB2S,rl1_pin:6,rl1_lv:1,bt1_pin:8,bt1_lv:0,netled1_pin:24,netled1_lv:0}"
)

var (
	bkImage  = fwtest.App(fwtest.SigTuya, 96*1024, 7)
	espImage = fwtest.ESPImage(0x03, 0x20, 200*1024)
)

// fakeFirmwares is the catalogue: openbeken for Beken chips, tasmota for
// ESP8266, the demo (the same images) for virtual devices.
type fakeFirmwares struct {
	mu sync.Mutex
	// notCached makes every lookup fail as an offline cache miss.
	notCached bool
	calls     int
}

func (f *fakeFirmwares) Resolve(ctx context.Context, spec string, chip firmware.Chip, o ResolveOptions) (*firmware.Resolved, error) {
	f.mu.Lock()
	f.calls++
	miss := f.notCached
	f.mu.Unlock()
	if miss {
		return nil, &flasher.HintError{Err: fmt.Errorf("https://example.invalid/%s.bin: %w", spec, firmware.ErrNotCached), Hint: "run online once"}
	}
	data, fw := bkImage, &firmware.Firmware{Name: "openbeken", Kind: firmware.KindOpenBeken, Version: "1.17.999"}
	if chip.Family.Espressif() {
		data, fw = espImage, &firmware.Firmware{Name: "tasmota", Kind: firmware.KindTasmota, Version: "14.4.1"}
	}
	if spec == DemoFirmware {
		fw.Name, fw.Version = "demo", "demo-1"
	}
	det, err := firmware.Detect(data, fw.Name+".bin")
	if err != nil {
		return nil, err
	}
	return &firmware.Resolved{Detection: det, Choice: firmware.Choice{Firmware: fw}, Options: firmware.PlaceOptions{FlashMode: "dout"}}, nil
}

// demoFirmwares resolves every spec to the demo image of the chip, as
// the command line's Catalogue does for DemoFirmware.
type demoFirmwares struct{}

func (demoFirmwares) Resolve(ctx context.Context, spec string, chip firmware.Chip, o ResolveOptions) (*firmware.Resolved, error) {
	return firmware.ResolveDemo(chip)
}

// fakeChip is one module on the bench. Its state is guarded by the
// bench's mutex (mu points to it once added).
type fakeChip struct {
	mu    *sync.Mutex
	info  flasher.Info
	flash []byte
	// chunk is how long 4 KiB take to read or write (fake clock).
	chunk time.Duration
	// manualReboot is what Reboot asks the user (ESP8266).
	manualReboot string
	virt         *Virtual
	// image is where the catalogue's image lands on this chip.
	image []firmware.Region
	kind  postflash.Firmware
	// firmware side
	running    bool
	ssid, pass string
	pins       map[int][2]int
	template   string
	netMAC     string // the MAC the firmware reports; "" = the chip's
	ip         string
	// counters
	bytesRead int64
	connects  int
}

func newChip(t *testing.T, fam flasher.Family, mac string, seed uint32) *fakeChip {
	t.Helper()
	c := &fakeChip{pins: map[int][2]int{}, mu: &sync.Mutex{}}
	c.info = flasher.Info{Family: fam, Protocol: "fake", FlashSize: 2 << 20, FlashID: [3]byte{0xEB, 0x60, 0x15}, Baud: 921600, EfuseKey: firmware.KeyTuya}
	switch fam {
	case flasher.BK7231T:
		c.info.FlashID, c.info.EfuseKey = [3]byte{}, ""
	case flasher.ESP8266:
		c.info.FlashSize, c.info.FlashID, c.info.EfuseKey = 1<<20, [3]byte{0xEF, 0x40, 0x14}, ""
		c.manualReboot = "release GPIO0 and power-cycle the module"
	}
	if mac != "" {
		m, err := flasher.ParseMAC(mac)
		if err != nil {
			t.Fatal(err)
		}
		c.info.MAC, c.info.MACFrom = m, "fake RF sector"
	}
	c.flash = fwtest.PRNG(c.info.FlashSize, seed)
	res, err := (&fakeFirmwares{}).Resolve(context.Background(), "", firmware.ChipOf(c.info), ResolveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := firmware.Place(c.info, res.Detection, res.Options)
	if err != nil {
		t.Fatal(err)
	}
	c.image = p.Regions
	c.kind, _ = postflash.ParseFirmware(string(res.Choice.Firmware.Kind))
	return c
}

// firmware is what the module runs after a reboot.
func (c *fakeChip) firmware() postflash.Firmware {
	for _, r := range c.image {
		if !bytes.Equal(c.flash[r.Addr:int(r.Addr)+len(r.Data)], r.Data) {
			return postflash.StockTuya
		}
	}
	return c.kind
}

func (c *fakeChip) wifi() provision.WiFi {
	if c.virt != nil {
		return c.virt.wifi()
	}
	return provision.WiFi{SSID: homeSSID, Password: homePass}
}

// online reports whether the firmware is on the network (c.mu held).
func (c *fakeChip) online() bool {
	w := c.wifi()
	return c.running && c.firmware() != postflash.StockTuya && c.ssid == w.SSID && c.pass == w.Password
}

func (c *fakeChip) mac() string {
	if c.netMAC != "" {
		return c.netMAC
	}
	return c.info.MAC.String()
}

// fakeDevice is the chip in download mode.
type fakeDevice struct{ c *fakeChip }

func (d fakeDevice) Info() flasher.Info { return d.c.info }

func (d fakeDevice) Read(ctx context.Context, addr, size uint32, w io.Writer, p flasher.Progress) error {
	p = flasher.OrNop(p)
	p.Begin("read", addr, int64(size))
	for off := uint32(0); off < size; off += 4096 {
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(d.c.chunk)
		n := min(4096, size-off)
		d.c.mu.Lock()
		chunk := bytes.Clone(d.c.flash[addr+off : addr+off+n])
		d.c.bytesRead += int64(n)
		d.c.mu.Unlock()
		if _, err := w.Write(chunk); err != nil {
			return err
		}
		p.Advance(int64(n))
	}
	p.End(nil)
	return nil
}

func (d fakeDevice) Write(ctx context.Context, addr uint32, data []byte, p flasher.Progress) (flasher.WriteResult, error) {
	p = flasher.OrNop(p)
	res := flasher.WriteResult{Addr: addr, Size: len(data), Verified: true, VerifyMethod: "CRC32 on chip"}
	p.Begin("write", addr, int64(len(data)))
	for off := 0; off < len(data); off += 4096 {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		n := min(4096, len(data)-off)
		d.c.mu.Lock()
		dst := d.c.flash[int(addr)+off : int(addr)+off+n]
		same := bytes.Equal(dst, data[off:off+n])
		copy(dst, data[off:off+n])
		d.c.mu.Unlock()
		if same {
			res.Skipped += n
		} else {
			res.Erased += 4096
			time.Sleep(d.c.chunk)
		}
		p.Advance(int64(n))
	}
	p.End(nil)
	return res, nil
}

func (d fakeDevice) Verify(ctx context.Context, addr uint32, data []byte) error {
	time.Sleep(d.c.chunk / 16 * time.Duration(len(data)/4096+1))
	d.c.mu.Lock()
	defer d.c.mu.Unlock()
	got := crc32.ChecksumIEEE(d.c.flash[addr : int(addr)+len(data)])
	if want := crc32.ChecksumIEEE(data); got != want {
		return &flasher.ChecksumError{Algo: "CRC32", Addr: addr, Len: uint32(len(data)), Want: fmt.Sprintf("%08x", want), Got: fmt.Sprintf("%08x", got)}
	}
	return nil
}

func (d fakeDevice) Reboot(ctx context.Context) (string, error) {
	d.c.mu.Lock()
	defer d.c.mu.Unlock()
	d.c.running = true // the user power-cycles at once when asked
	return d.c.manualReboot, nil
}

type fakeLink struct{ c *fakeChip }

func (l fakeLink) Device() flasher.Device  { return fakeDevice(l) }
func (l fakeLink) Virtual() *Virtual       { return l.c.virt }
func (l fakeLink) Console() transport.Port { return &fakeConsole{c: l.c} }
func (l fakeLink) Close() error            { return nil }

// fakeConsole stands for the serial line after the reboot; only the
// bench's ProvisionSerial uses it.
type fakeConsole struct {
	transport.Port
	c *fakeChip
}

func (f *fakeConsole) Close() error { return nil }

// bench is the Connector and the Network of the tests.
type bench struct {
	mu    sync.Mutex
	chips map[string]*fakeChip // by port
	// connectDelay is how long the user takes to power-cycle.
	connectDelay time.Duration
	// changes counts calls that change a device over the network.
	changes []string
}

func newBench() *bench { return &bench{chips: map[string]*fakeChip{}} }

func (b *bench) add(port string, c *fakeChip) *fakeChip {
	b.mu.Lock()
	defer b.mu.Unlock()
	c.mu = &b.mu
	b.chips[port] = c
	return c
}

func (b *bench) Connect(ctx context.Context, port string, n flasher.Notify) (Link, error) {
	b.mu.Lock()
	c := b.chips[port]
	b.mu.Unlock()
	if c == nil {
		return nil, fmt.Errorf("%s: %w", port, flasher.ErrNoLink)
	}
	n.Emit(flasher.Action, "power-cycle the module now")
	time.Sleep(b.connectDelay)
	b.mu.Lock()
	c.running = false
	c.connects++
	b.mu.Unlock()
	return fakeLink{c}, nil
}

func (b *bench) Console(ctx context.Context, port string) (transport.Port, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c := b.chips[port]; c != nil {
		return &fakeConsole{c: c}, nil
	}
	return nil, fmt.Errorf("%s: %w", port, flasher.ErrNoLink)
}

// at finds the chip whose firmware answers at host (b.mu held).
func (b *bench) at(host string) *fakeChip {
	for _, c := range b.chips {
		if c.ip == host || c.virt != nil && c.virt.Station == host {
			return c
		}
	}
	return nil
}

var errNoAnswer = fmt.Errorf("connection refused: %w", flasher.ErrNoLink)

func (b *bench) Identify(ctx context.Context, host string) (*postflash.Result, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.at(host)
	if c == nil || !c.online() {
		return nil, fmt.Errorf("%s: %w", host, errNoAnswer)
	}
	ver := "1.17.999"
	if c.kind == postflash.Tasmota {
		ver = "14.4.1"
	}
	return &postflash.Result{Host: host, Firmware: c.firmware(), Version: ver, MAC: c.mac(), IP: host}, nil
}

func (b *bench) WaitOnline(ctx context.Context, host string, deadline time.Time, seen func(postflash.Attempt)) (*postflash.Result, error) {
	start := time.Now()
	for n := 1; ; n++ {
		res, err := b.Identify(ctx, host)
		if seen != nil {
			seen(postflash.Attempt{N: n, Elapsed: time.Since(start), Err: err, Kind: postflash.KindOf(err)})
		}
		if err == nil {
			return res, nil
		}
		if time.Now().After(deadline) {
			return nil, &postflash.WaitError{Host: host, Waited: time.Since(start), Attempts: n, Last: err}
		}
		if err := sleep(ctx, 2*time.Second); err != nil {
			return nil, err
		}
	}
}

func (b *bench) FindByMAC(ctx context.Context, mac flasher.MAC) (*provision.Found, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.chips {
		if c.online() && c.mac() == mac.String() {
			return &provision.Found{IP: netip.MustParseAddr(c.ip), Via: "ARP"}, nil
		}
	}
	return nil, fmt.Errorf("no device with MAC %s in the neighbour table: %w", mac, flasher.ErrNoLink)
}

// join stores the credentials the firmware was given; a real module gets
// an address on the home network when they are right (b.mu held).
func (b *bench) join(c *fakeChip, w provision.WiFi) {
	c.ssid, c.pass = w.SSID, w.Password
	if c.virt == nil && c.online() && c.ip == "" {
		n := 0
		for _, o := range b.chips {
			if o.ip != "" {
				n++
			}
		}
		c.ip = fmt.Sprintf("10.0.0.%d", n+10)
	}
}

func (b *bench) ProvisionAP(ctx context.Context, fw postflash.Firmware, w provision.WiFi, apHost string) (*provision.APResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var c *fakeChip
	for _, o := range b.chips {
		if o.running && !o.online() && (o.virt != nil && o.virt.apHost() == apHost || o.virt == nil && apHost == provision.DefaultAPHost) {
			c = o
		}
	}
	if c == nil {
		return nil, fmt.Errorf("no answer from %s: %w", apHost, flasher.ErrNoLink)
	}
	b.changes = append(b.changes, "provision-ap")
	if fw != c.firmware() {
		return nil, fmt.Errorf("%s runs %s, not %s", apHost, c.firmware(), fw)
	}
	b.join(c, w)
	return &provision.APResult{Firmware: fw, MAC: c.mac()}, nil
}

func (b *bench) ProvisionSerial(ctx context.Context, p transport.Port, w provision.WiFi) (*provision.SerialResult, error) {
	c := p.(*fakeConsole).c
	b.mu.Lock()
	defer b.mu.Unlock()
	if !c.running || c.firmware() != postflash.Tasmota {
		return &provision.SerialResult{}, errors.New("serial console: nothing came back")
	}
	b.changes = append(b.changes, "provision-serial")
	b.join(c, w)
	res := &provision.SerialResult{MAC: c.mac()}
	if !c.online() {
		return res, errors.New("serial console: no address in the boot log: the device did not join the network")
	}
	res.IP = c.ip
	return res, nil
}

func (b *bench) ReadPins(ctx context.Context, host string, fw postflash.Firmware) (*PinConfig, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.at(host)
	if c == nil || !c.online() {
		return nil, errNoAnswer
	}
	if fw == postflash.Tasmota {
		return &PinConfig{Template: c.template}, nil
	}
	pc := &PinConfig{}
	var pins []int
	for p := range c.pins {
		pins = append(pins, p)
	}
	sort.Ints(pins)
	for _, p := range pins {
		pc.Pins = append(pc.Pins, PinRole{Pin: p, Role: c.pins[p][0], Channel: c.pins[p][1]})
	}
	return pc, nil
}

func (b *bench) WritePins(ctx context.Context, host string, fw postflash.Firmware, pc *PinConfig) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.at(host)
	if c == nil || !c.online() {
		return errNoAnswer
	}
	b.changes = append(b.changes, "pins")
	c.template = pc.Template
	for _, p := range pc.Pins {
		c.pins[p.Pin] = [2]int{p.Role, p.Channel}
	}
	return nil
}

// fakeConfig is the Tuya config every Beken dump holds in the tests.
func fakeConfig(dump []byte) (*tuyaconfig.Config, error) {
	u, err := tuyaconfig.ParseUserParamKey(pinMap)
	if err != nil {
		return nil, err
	}
	return &tuyaconfig.Config{DeviceID: "bf0123456789abcdef01", LocalKey: "0123456789abcdef", Module: "CB2S", Chip: "BK7231N", UserParams: u}, nil
}

// setup is one test's bench, store, inventory and options.
type setup struct {
	t     *testing.T
	dir   string
	bench *bench
	fws   *fakeFirmwares
	o     Options
	mu    sync.Mutex
	evs   []Event
	// kill, when it returns true for an event, ends that port's
	// goroutine on the spot (as kill -9 would end the process): nothing
	// after that moment runs but its deferred cleanup.
	kill   func(Event) bool
	killed map[string]bool
	// ownPins: the test checks the pins itself (not fakeConfig's).
	ownPins bool
}

func newSetup(t *testing.T) *setup {
	t.Helper()
	dir := t.TempDir()
	s := &setup{t: t, dir: dir, bench: newBench(), fws: &fakeFirmwares{}, killed: map[string]bool{}}
	tiny := filepath.Join(dir, "devices.json")
	if err := os.WriteFile(tiny, []byte(`[
  {"name": "kitchen plug", "id": "bf0123456789abcdef01", "key": "0123456789abcdef", "mac": "d8:1f:12:00:00:01", "ver": "3.3"},
  {"name": "other", "id": "bfffffffffffffffffff", "key": "fedcba9876543210", "mac": "aa:bb:cc:dd:ee:ff", "ver": "3.3"}
]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	s.o = Options{
		WiFi:          provision.WiFi{SSID: homeSSID, Password: homePass},
		BackupRoot:    filepath.Join(dir, "backups"),
		InventoryPath: filepath.Join(dir, "data", "inventory.json"),
		TinyTuya:      []string{tiny},
		ToolVersion:   "test",
		OnlineWait:    time.Minute,
		ProvisionWait: time.Minute,
		Connector:     s.bench,
		Firmwares:     s.fws,
		Network:       s.bench,
		ReadConfig:    fakeConfig,
		ListPorts:     func() ([]transport.PortInfo, error) { return nil, nil },
		ResolvePort:   func(p string) (string, error) { return p, nil },
	}
	s.o.Observer = ObserverFunc(s.observe)
	return s
}

func (s *setup) observe(e Event) {
	s.mu.Lock()
	if s.killed[e.Port] {
		s.mu.Unlock()
		return
	}
	s.evs = append(s.evs, e)
	kill := s.kill != nil && s.kill(e)
	if kill {
		s.killed[e.Port] = true
	}
	s.mu.Unlock()
	if kill {
		runtime.Goexit()
	}
}

func (s *setup) events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.evs...)
}

// run runs the options with ports (the fake bench's port names need no
// device file).
func (s *setup) run(ports ...string) *Report {
	s.t.Helper()
	o := s.o
	o.Ports = ports
	rep, err := Run(context.Background(), o)
	if err != nil {
		s.t.Fatalf("Run: %v (hint %q)", err, flasher.Hint(err))
	}
	return rep
}

func (s *setup) inventory() *inventory.Inventory {
	s.t.Helper()
	inv, err := inventory.Open(s.o.InventoryPath)
	if err != nil {
		s.t.Fatal(err)
	}
	return inv
}

// storedBackups lists the finished dumps in the store.
func (s *setup) storedBackups() []string {
	var out []string
	filepath.WalkDir(s.o.BackupRoot, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == ".partial" {
			return filepath.SkipDir
		}
		if err == nil && strings.HasSuffix(p, ".bin") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// archived returns the device ids moved out of the tinytuya file.
func (s *setup) archived() []string {
	data, err := os.ReadFile(s.o.TinyTuya[0] + ".tuyaflash-archive.json")
	if err != nil {
		return nil
	}
	var a struct {
		Entries []struct {
			ID string `json:"id"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(data, &a); err != nil {
		s.t.Fatal(err)
	}
	var ids []string
	for _, e := range a.Entries {
		ids = append(ids, e.ID)
	}
	return ids
}

func statuses(p *PortResult) string {
	var b strings.Builder
	for _, s := range p.Steps {
		fmt.Fprintf(&b, "%s=%s ", s.Step, s.Status)
	}
	return strings.TrimSpace(b.String())
}
