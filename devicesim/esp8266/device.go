package espsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"sync"
	"time"
)

// Line is the byte link the simulated chip talks over; transport.Port and
// transport.PTY satisfy it.
type Line interface {
	io.ReadWriteCloser
	SetReadTimeout(time.Duration) error
	SetBaudRate(int) error
}

// A Line whose adapter can be pulled out of the USB socket (the port
// fails with EIO and its device node disappears) has an Unplug method:
// transport's PipePort and PTY have Unplug(); Unplug() error is accepted
// too.
type (
	unplugger    interface{ Unplug() }
	unpluggerErr interface{ Unplug() error }
)

// StubModel selects the flasher stub whose behaviour the simulator models
// once an uploaded stub has passed the ROM's checks (package doc). The
// simulator cannot tell from the uploaded bytes which stub it received;
// it is a configuration choice.
type StubModel int

const (
	// StubTuyaflash is tuyaflash's own stub (stub/esp8266): every command
	// finishes its work before its reply, errors are reported on the
	// packet that caused them; it receives into a 20 KiB ring while it
	// works, so a client may send the next packet before the reply
	// (STUB_INFO announces the window), erases ahead and reads written
	// data back for the MD5 while it waits. The default.
	StubTuyaflash StubModel = iota
	// StubEsptool is esp-flasher-stub v1.1.0, esptool's default stub
	// since v5.3.0: FLASH_DATA, FLASH_DEFL_DATA, READ_FLASH,
	// CHANGE_BAUDRATE and MEM_END are acknowledged before their work and
	// a failure of that work is the answer to the next command.
	StubEsptool
	// StubTuyaflash1 is tuyaflash's first stub: synchronous like
	// StubTuyaflash, but it polls the 128-byte UART FIFO, so bytes that
	// arrive while it works beyond those 128 are lost; no STUB_INFO, no
	// background work, data staged and programmed 4 KiB at a time.
	StubTuyaflash1
)

// String names the model as ParseStubModel accepts it.
func (m StubModel) String() string {
	switch m {
	case StubTuyaflash:
		return "tuyaflash"
	case StubEsptool:
		return "esptool"
	case StubTuyaflash1:
		return "tuyaflash-1"
	}
	return fmt.Sprintf("StubModel(%d)", int(m))
}

// ParseStubModel accepts "tuyaflash", "tuyaflash-1" and "esptool".
func ParseStubModel(s string) (StubModel, error) {
	switch s {
	case "tuyaflash", "":
		return StubTuyaflash, nil
	case "esptool":
		return StubEsptool, nil
	case "tuyaflash-1":
		return StubTuyaflash1, nil
	}
	return 0, fmt.Errorf("espsim: unknown stub model %q (want tuyaflash, tuyaflash-1 or esptool)", s)
}

// Config describes the simulated module. The zero value is a 1 MiB
// ESP8266 with a 26 MHz crystal, the stock Tuya flash of StockFlash, the
// ROM loader waiting (GPIO0 held low) and tuyaflash's stub model.
type Config struct {
	Chip Chip
	// Flash is the initial flash contents (copied); nil means
	// StockFlash(Stock{Chip, MAC}): a stock Tuya module, deterministic per
	// MAC. Its length is the flash size: a power of two from 256 KiB to
	// 16 MiB; 1, 2 or 4 MiB for an ESP8285.
	Flash []byte
	// FlashID is the JEDEC id as RDID returns it in SPI W0 (MFR |
	// TYPE<<8 | CAP<<16); 0 means a GigaDevice GD25Q part of the flash
	// size (0x1440C8 for 1 MiB, 0x1540C8 for 2 MiB, 0x1640C8 for 4 MiB;
	// GD25Q80 seen on an ESP-07 in esp8266/Arduino#822). The esptool stub
	// model takes the flash size from the capacity byte, as
	// esp-flasher-stub does: an id claiming more than len(Flash) models a
	// mislabelled chip whose high addresses wrap around to the start.
	FlashID uint32
	// MAC is programmed into the eFuse words (reference §7.3): OUIs
	// 18:FE:34 and AC:D0:74 as the index in word 1, any other OUI in
	// word 3. Zero means 18:FE:34:5A:C3:E1 (ESP8266) or
	// DC:4F:22:6B:21:9E (ESP8285).
	MAC [6]byte
	// Crystal is 26 or 40 (MHz); 0 means 26. It sets the UART clock
	// divider the ROM reports (§7.4) and the boot-log rate (74880 baud at
	// 26 MHz, 115200 at 40 MHz).
	Crystal int
	// LinkWindow is ignored: an ESP8266 enters its loader by the GPIO0
	// strap at reset, not during a window after power-on. The field
	// exists so that simulator configurations look alike.
	LinkWindow time.Duration
	// Stub is the flasher stub behaviour modelled after a plausible
	// upload; the zero value is tuyaflash's own stub.
	Stub StubModel
	// AutoReset > 0 models the bench user who re-enters download mode:
	// while the chip runs its application (or has crashed) and SYNC
	// frames arrive, the user holds GPIO0 low and power-cycles it
	// AutoReset after the first of them; likewise when 64 bytes of
	// garbage (a tool at another baud rate asking for a power cycle)
	// reach the loader or the stub without a frame in between. 0 means
	// only explicit PowerCycle calls reset the chip.
	AutoReset time.Duration
	// ReleaseAfterWrite > 0 models the bench user after a write: once the
	// host has started a flash write (FLASH_BEGIN or FLASH_DEFL_BEGIN, in
	// the ROM or the stub) or asked for a reboot (FLASH_END, RUN_USER_CODE)
	// and then both sides have been quiet this long, the user releases
	// GPIO0 and power-cycles the module, which boots the firmware in flash
	// (App.Boot). tuyaflash tells the user to do exactly that after a
	// write. 0: only PowerCycle(false) boots the firmware.
	ReleaseAfterWrite time.Duration
	// App is the firmware side: booted when the chip leaves reset into
	// its application with a valid image at 0x0, halted on reset, power
	// loss, entry into download mode and when Serve returns. nil: the
	// application prints a banner and ignores the UART.
	App App
	// AppBaud is the application's console rate; 0 means 115200
	// (Tasmota's default).
	AppBaud int
	// NetAddr is the loopback host:port the identification command
	// reports as "net"; empty means the App's NetAddr() when it has one.
	NetAddr string
	// Unmarked makes the chip pass for a real one: the identification
	// command is an unknown command, as on silicon, so tuyaflash records
	// it like a real device.
	Unmarked bool
	// Timing makes flash operations take datasheet-typical time (see
	// the constants in flash.go: sector erase 45 ms, 64 KiB block erase
	// 150 ms, page program 0.7 ms, chip erase 2.5 s/MiB, MD5 at an
	// estimated 1.5 s/MiB).
	Timing bool
	Faults Faults
	// Seed makes the fault injection reproducible.
	Seed int64
	// Log, if set, receives one line per command and per reset.
	Log io.Writer
}

// Faults injects line, flash and power faults. Rates are probabilities in
// [0, 1] drawn per byte (DelayRate per write) from generators seeded by
// Config.Seed, so a run is reproducible. Command counts are 1-based and
// count every command frame the ROM or a stub received since New (the
// sum of Stats.Commands).
type Faults struct {
	// DropRate, CorruptRate and DupRate apply to the bytes the chip
	// sends: a byte is lost, XORed with a random non-zero value, or sent
	// twice.
	DropRate, CorruptRate, DupRate float64
	// RxDropRate, RxCorruptRate and RxDupRate apply likewise to the bytes
	// the host sends, before the chip decodes them.
	RxDropRate, RxCorruptRate, RxDupRate float64
	// Delay holds back a write of the chip, with probability DelayRate,
	// and always the reply to command number DelayAtCommand (a reply
	// delayed past the host's timeout).
	Delay          time.Duration
	DelayRate      float64
	DelayAtCommand int
	// DisconnectAfter closes the line once the chip has received this
	// many bytes (0 = never); Serve then returns ErrDisconnected. It
	// fires once per Device.
	DisconnectAfter int64
	// UnplugAfter pulls the USB adapter once the chip has received this
	// many bytes (0 = never): Serve calls the line's Unplug method when it
	// has one (else Close) and returns ErrUnplugged. The module, powered
	// from the adapter, loses power: the next Serve finds it powered up
	// again in download mode. It fires once per Device.
	UnplugAfter int64
	// FaultAfter delays the rate-based faults until the chip has received
	// this many bytes.
	FaultAfter int64
	// CorruptFlashWriteAt makes the flash cell at this address read back
	// with bit 0 inverted after every program operation (a stuck bit), so
	// only a read-back or MD5 comparison notices. 0 and negative values
	// are off; address 0 cannot be chosen.
	CorruptFlashWriteAt int64
	// MemEndNoReply drops the ROM's MEM_END reply before the stub starts
	// (reference §8.3); only "OHAI" follows.
	MemEndNoReply bool
	// PowerLossAt cuts the power during the PowerLossAt-th flash
	// operation of kind PowerLossOp since New (erases of a sector, block
	// or the chip; page programs of up to 256 bytes), when
	// PowerLossFraction of its busy time has passed (0 or ≥ 1: a seeded
	// random fraction). That operation is left partly done as NOR flash
	// does (package doc), nothing is answered, and the chip stays off for
	// PowerOffTime, then powers up with GPIO0 as the bench holds it
	// (download mode unless released). 0 = never; it fires once.
	PowerLossAt       int
	PowerLossOp       FlashOp
	PowerLossFraction float64
	PowerOffTime      time.Duration
	// ResetAtCommand resets the chip (an EN pulse) while it works on
	// command number ResetAtCommand: during its first flash operation,
	// left partly done, or else instead of its reply. The chip restarts
	// at once in the ROM loader when GPIO0 is held, in the application
	// otherwise. 0 = never; it fires once.
	ResetAtCommand int
}

// Stats is a snapshot of what the simulated chip has done.
type Stats struct {
	// Mode is "app", "rom", "stub", "crashed" (an implausible upload ran)
	// or "off" (power lost).
	Mode string
	// Baud is the chip's UART rate.
	Baud int
	// Commands counts the command frames received in ROM and stub mode,
	// by esptool's command name (0xNN for unknown opcodes).
	Commands map[string]int
	// Erased counts erase operations per 4 KiB sector, keyed by the
	// sector's start address (a block or chip erase counts for each of
	// its sectors).
	Erased map[uint32]int
	// BytesIn and BytesOut count the bytes received from and written to
	// the line.
	BytesIn, BytesOut int64
	// Resets counts power cycles, resets and power losses since New.
	Resets int
	// AppBoots counts the times the firmware in flash was started.
	AppBoots int
	// GPIO0Low reports whether the bench holds GPIO0 low.
	GPIO0Low bool
	// RxHighWater is the most a tuyaflash stub held in its receive
	// buffer at the end of a command's work (bytes received while it
	// worked, not yet decoded); RxLost the bytes it lost because they
	// did not fit.
	RxHighWater, RxLost int
}

// ErrDisconnected is returned by Serve when Faults.DisconnectAfter closed
// the line.
var ErrDisconnected = errors.New("espsim: line closed by the simulated disconnect fault")

// ErrUnplugged is returned by Serve when Faults.UnplugAfter or Unplug
// pulled the adapter.
var ErrUnplugged = errors.New("espsim: USB adapter unplugged")

// ErrBusy is returned by Serve while another Serve runs on the device.
var ErrBusy = errors.New("espsim: the device is already being served")

type mode int

const (
	modeApp mode = iota
	modeROM
	modeStub
	modeCrashed
	modeOff
)

func (m mode) String() string {
	switch m {
	case modeROM:
		return "rom"
	case modeStub:
		return "stub"
	case modeCrashed:
		return "crashed"
	case modeOff:
		return "off"
	}
	return "app"
}

// bootEvent is the output of a reset that Serve still has to send.
type bootEvent struct {
	download bool
	cause    int  // rst cause printed in the boot log
	soft     bool // software reset: boot mode (1,7)
	jump     bool // ROM jumped to the application: no boot log
}

// pollInterval bounds how long Serve waits in Read before it checks for
// cancellation, resets and the bench user.
const pollInterval = 20 * time.Millisecond

// Device is one simulated module. Its methods are safe for concurrent
// use; one Serve runs at a time.
type Device struct {
	chip     Chip
	cfg      Config
	efuse    [4]uint32
	flashID  uint32
	xtal     int
	stubSize uint32 // flash size the esptool stub assumes at start (from the JEDEC id)

	mu             sync.Mutex
	flash          []byte
	mode           mode
	gpio0Low       bool // the bench holds GPIO0 low
	latchDownload  bool // strap latched at the last power-on or EN reset
	offUntil       time.Time
	baud           int
	clkdiv         uint32
	gen            uint64
	boot           *bootEvent
	serving        bool
	line           Line // the line Serve uses, for Unplug
	unplugged      bool
	spiAttached    bool
	regs           map[uint32]uint32
	commands       map[string]int
	cmdTotal       int
	erased         map[uint32]int
	ops            [2]int64 // flash operations by opKind
	bytesIn        int64
	bytesOut       int64
	rxHighWater    int
	rxLost         int
	resets         int
	appBoots       int
	autoResetAt    time.Time
	wrote          bool      // a write or reboot request since the last reset
	lastActive     time.Time // last byte received or command finished
	disconnectDone bool
	unplugDone     bool
	powerLossDone  bool
	resetCmdDone   bool
	flashRand      *rand.Rand

	kick chan struct{} // wakes a sleeping Serve after PowerCycle

	// Owned by the goroutine running Serve.
	rxRand, txRand *rand.Rand
	sess           session
	sessGen        uint64
	appRunning     bool
	lastBootOK     bool // the last boot into the application found a valid image
}

// New validates cfg and returns a powered module in download mode: GPIO0
// held low at power-on, the ROM loader waiting at 115200 baud. Its boot
// log is sent when Serve starts.
func New(cfg Config) (*Device, error) {
	if cfg.Chip != ESP8266 && cfg.Chip != ESP8285 {
		return nil, fmt.Errorf("espsim: unknown chip %d", int(cfg.Chip))
	}
	if cfg.Stub != StubTuyaflash && cfg.Stub != StubEsptool && cfg.Stub != StubTuyaflash1 {
		return nil, fmt.Errorf("espsim: unknown stub model %d", int(cfg.Stub))
	}
	mac := cfg.MAC
	if mac == ([6]byte{}) {
		mac = defaultMAC(cfg.Chip)
	}
	var flash []byte
	if cfg.Flash == nil {
		var err error
		if flash, err = StockFlash(Stock{Chip: cfg.Chip, MAC: mac}); err != nil {
			return nil, err
		}
	} else {
		flash = append([]byte(nil), cfg.Flash...)
	}
	n := len(flash)
	if n < 256*kib || n > maxFlashSize || n&(n-1) != 0 {
		return nil, fmt.Errorf("espsim: flash size %d is not a power of two between 256 KiB and 16 MiB", n)
	}
	xtal := cfg.Crystal
	if xtal == 0 {
		xtal = 26
	}
	if xtal != 26 && xtal != 40 {
		return nil, fmt.Errorf("espsim: crystal %d MHz: an ESP8266 uses 26 or 40", cfg.Crystal)
	}
	efuse, err := encodeEFuses(cfg.Chip, mac, n)
	if err != nil {
		return nil, err
	}
	if cfg.AppBaud == 0 {
		cfg.AppBaud = romBaud
	}
	if cfg.AppBaud < 300 {
		return nil, fmt.Errorf("espsim: application console rate %d", cfg.AppBaud)
	}
	f := cfg.Faults
	for _, r := range []float64{f.DropRate, f.CorruptRate, f.DupRate, f.RxDropRate, f.RxCorruptRate, f.RxDupRate, f.DelayRate, f.PowerLossFraction} {
		if r < 0 || r > 1 {
			return nil, fmt.Errorf("espsim: fault rate %v is not in [0, 1]", r)
		}
	}
	if f.Delay < 0 || f.DisconnectAfter < 0 || f.UnplugAfter < 0 || f.FaultAfter < 0 || f.PowerLossAt < 0 ||
		f.PowerOffTime < 0 || f.ResetAtCommand < 0 || f.DelayAtCommand < 0 {
		return nil, errors.New("espsim: negative fault parameter")
	}
	if f.PowerLossOp < AnyFlashOp || f.PowerLossOp > ProgramOp {
		return nil, fmt.Errorf("espsim: unknown flash operation kind %d", int(f.PowerLossOp))
	}
	id := cfg.FlashID
	if id == 0 {
		id = defaultFlashID(n)
	}
	cfg.Flash = nil
	cfg.MAC = mac
	d := &Device{
		chip:      cfg.Chip,
		cfg:       cfg,
		efuse:     efuse,
		flashID:   id,
		xtal:      xtal,
		stubSize:  detectedSize(id),
		flash:     flash,
		commands:  map[string]int{},
		erased:    map[uint32]int{},
		kick:      make(chan struct{}, 1),
		rxRand:    rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5258)),
		txRand:    rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5458)),
		flashRand: rand.New(rand.NewPCG(uint64(cfg.Seed), 0x464C)),
	}
	d.powerOnLocked(true)
	d.resets = 0
	return d, nil
}

// detectedSize is the flash size esp-flasher-stub derives from the JEDEC
// capacity byte at start-up, or the chip maximum when the byte is not a
// size (reference §5.1 SPI_SET_PARAMS, §9.1).
func detectedSize(id uint32) uint32 {
	c := (id >> 16) & 0xFF
	if c >= 0x12 && c <= 0x18 {
		return 1 << c
	}
	return maxFlashSize
}

// powerOnLocked is a power-on reset (rst cause 1) with GPIO0 held low
// (download) or released. The caller holds d.mu.
func (d *Device) powerOnLocked(download bool) {
	d.gpio0Low = download
	d.offUntil = time.Time{}
	d.hardResetLocked(1)
}

// hardResetLocked is a power-on or EN reset: the ROM samples GPIO0 again.
func (d *Device) hardResetLocked(cause int) {
	d.latchDownload = d.gpio0Low
	d.resetLocked(d.gpio0Low, cause, false)
}

// softResetLocked is a software reset (FLASH_END(0), the stub's reboot):
// the boot mode latched at the last hard reset still applies, so after a
// serial download the chip lands in download mode again (reference §2.2).
func (d *Device) softResetLocked() {
	wrote := d.wrote
	d.resetLocked(d.latchDownload, 2, true)
	d.wrote = wrote // the bench user still has to power-cycle
}

// resetLocked starts a new boot into download mode or the application.
func (d *Device) resetLocked(download bool, cause int, soft bool) {
	d.gen++
	d.resets++
	d.mode = modeApp
	if download {
		d.mode = modeROM
	}
	d.baud = romBaud
	d.clkdiv = d.romClkdiv()
	d.spiAttached = false
	d.regs = map[uint32]uint32{}
	d.autoResetAt = time.Time{}
	d.wrote = false
	d.boot = &bootEvent{download: download, cause: cause, soft: soft}
}

// powerLossLocked switches the chip off for the configured time; it powers
// up again on its own (GPIO0 as the bench holds it).
func (d *Device) powerLossLocked(off time.Duration) {
	d.gen++
	d.resets++
	d.mode = modeOff
	d.boot = nil
	d.autoResetAt = time.Time{}
	d.wrote = false
	d.offUntil = time.Now().Add(off)
}

// romClkdiv is the UART divider the ROM's auto-baud leaves at 115200:
// 2 × crystal / baud, rounded up, which matches the 0x1C4 (452) a real
// 26 MHz ESP8266 reported in esptool#397.
func (d *Device) romClkdiv() uint32 {
	clk := uint64(d.xtal) * 2_000_000
	return uint32((clk + romBaud - 1) / romBaud)
}

func (d *Device) wake() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// PowerCycle switches the module off and on. With download the user holds
// GPIO0 low: the ROM prints its boot log at 74880 baud and waits in the
// serial loader at 115200. Without it (GPIO0 released) the ROM boots the
// firmware in flash (App.Boot when the image at 0x0 passes the ROM's
// checks), which ignores SLIP frames. A stub session ends; a flash
// operation in progress is left partly done; the flash contents stay.
// The boot output is sent by the running Serve, or by the next one.
func (d *Device) PowerCycle(download bool) {
	d.mu.Lock()
	d.powerOnLocked(download)
	d.mu.Unlock()
	d.wake()
}

// SetGPIO0 moves the bench's GPIO0 jumper without a reset: it takes effect
// at the next power-on or EN reset. A software reset still follows the
// mode latched at the last of those (reference §2.2).
func (d *Device) SetGPIO0(low bool) {
	d.mu.Lock()
	d.gpio0Low = low
	d.mu.Unlock()
}

// Reset pulses EN: the chip restarts, in the ROM loader when the bench
// holds GPIO0 low (as the last PowerCycle left it), in the firmware
// otherwise.
func (d *Device) Reset() {
	d.mu.Lock()
	d.hardResetLocked(2)
	d.mu.Unlock()
	d.wake()
}

// Unplug pulls the USB adapter of the line the device is served on (see
// Faults.UnplugAfter); Serve returns ErrUnplugged. It reports false when
// no Serve is running.
func (d *Device) Unplug() bool {
	d.mu.Lock()
	ok := d.serving && !d.unplugged
	if ok {
		d.unplugged = true
		d.gen++ // interrupts the command in progress
	}
	d.mu.Unlock()
	d.wake()
	return ok
}

// MAC returns the MAC in the chip's eFuses (Config.MAC or the chip's
// default): what a firmware App on this chip reports.
func (d *Device) MAC() [6]byte { return d.cfg.MAC }

// Flash returns a copy of the flash contents.
func (d *Device) Flash() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]byte(nil), d.flash...)
}

// Stats returns a snapshot of the device counters.
func (d *Device) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return Stats{
		Mode:     d.mode.String(),
		Baud:     d.baud,
		Commands: maps.Clone(d.commands),
		Erased:   maps.Clone(d.erased),
		BytesIn:  d.bytesIn,
		BytesOut: d.bytesOut,
		Resets:   d.resets,
		AppBoots: d.appBoots,
		GPIO0Low: d.gpio0Low,

		RxHighWater: d.rxHighWater,
		RxLost:      d.rxLost,
	}
}

func (d *Device) currentGen() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.gen
}

func (d *Device) currentMode() mode {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mode
}

// count records a command frame and reports its 1-based number.
func (d *Device) count(op byte) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.commands[opName(op)]++
	d.cmdTotal++
	return d.cmdTotal
}

// faultsActive reports whether the rate-based faults apply yet.
func (d *Device) faultsActive() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.bytesIn >= d.cfg.Faults.FaultAfter
}

// Serve runs the chip on l until ctx ends (it returns nil) or the line
// fails (it returns the error; ErrDisconnected and ErrUnplugged for those
// faults). It can be called again later, with the same or another line;
// the chip's state is kept, except that a compressed write in progress is
// abandoned and a running App is halted (and booted again by the next
// Serve).
func (d *Device) Serve(ctx context.Context, l Line) error {
	d.mu.Lock()
	if d.serving {
		d.mu.Unlock()
		return ErrBusy
	}
	d.serving, d.line, d.unplugged = true, l, false
	d.lastActive = time.Now()
	d.mu.Unlock()
	c := &conn{d: d, l: l, ctx: ctx, rbuf: make([]byte, 4096)}
	c.dec.max = stubMaxData + 8 + 64
	defer func() {
		d.sess.abortInflate()
		c.haltApp()
		d.mu.Lock()
		d.serving, d.line = false, nil
		d.mu.Unlock()
	}()
	err := c.loop()
	if errors.Is(err, errStopped) {
		return nil
	}
	return err
}
