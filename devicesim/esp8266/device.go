// Package espsim simulates an ESP8266/ESP8285 module on a serial line: the
// ROM serial bootloader, the flasher stub that a client uploads into RAM,
// the SPI flash behind them and the application that runs when GPIO0 is
// released. It is the ground truth the ESP8266 client is tested against,
// so it is written from the byte-level reference
// (/work/shared/reference/esp8266-protocol.md, §-numbers below) and the
// public sources it names, with its own SLIP codec and packet parsing.
//
// What is modelled, and how faithfully:
//
//   - ROM loader: opcodes 0x02–0x0A only; two status bytes [status, error];
//     any other opcode, and a 20-byte FLASH_BEGIN, get status 1 / error
//     0x05. SYNC answers eight frames with value 0x20120707. FLASH_BEGIN
//     attaches the flash and erases up front with the erase-size bug of
//     §8.1 (head sectors extra when the range crosses a 64 KiB boundary,
//     double otherwise). FLASH_DATA programs like NOR flash (bits can only
//     be cleared), checks the XOR checksum (error 0x07) and the sequence
//     number (a block may be repeated, not skipped: error 0x01), then reads
//     the block back (error 0x08 when it differs, e.g. programmed over
//     sectors the ROM did not erase). FLASH_END(0) reboots into the ROM
//     loader again (§2.2: the first soft reset after a serial download
//     lands in download mode); FLASH_END(1) runs the application.
//     MEM_END(0, entry≠0) sends its reply (esptool: "usually sends a correct
//     response", §8.3; Faults.MemEndNoReply drops it), then whatever was
//     uploaded runs as the flasher stub and sends "OHAI".
//   - Flasher stub: modelled on esp-flasher-stub v1.1.0 (esptool's default
//     stub since v5.3.0, reference §12.3): status bytes [code, 0]
//     (the legacy stub sends the same two bytes for its errors); SYNC value
//     0; unknown opcodes 0xC3 (INVALID_COMMAND; the legacy stub answers
//     0xFF); FLASH_DATA, FLASH_DEFL_DATA, READ_FLASH, CHANGE_BAUDRATE and
//     MEM_END are acknowledged before their work runs and a failure of that
//     work is the answer to the next command, which is then skipped;
//     FLASH_END/FLASH_DEFL_END require the announced size to have been
//     written (0xC0) and do not reboot; RUN_USER_CODE sends no reply and
//     does nothing; READ_FLASH keeps one packet in flight whatever
//     max_in_flight says (both stubs do that with esptool's 4096/64
//     arguments), ends early with the MD5 frame when a frame other than a
//     4-byte ACK arrives, and stalls while the host does not acknowledge.
//     The stub erases just in time (64 KiB blocks where aligned).
//   - Registers: chip magic 0x40001000, eFuse words 0x3FF00050…5C (MAC,
//     ESP8285 bits, §7.2/§7.3), UART0 clock divider 0x60000014 (§7.4,
//     read-only here), and the SPI0 controller at 0x60000200: CMD bit 18
//     runs the user command in USER2 (RDID 0x9F, RDSR 0x05/0x35, SFDP 0x5A
//     at address 0) and returns the MISO bytes in W0…; the one-shot CMD bits
//     28 (RDID) and 27 (RDSR) work too; other one-shot bits complete without
//     effect (no ROM-only flash read). Before the flash is attached (ROM
//     mode, no FLASH_BEGIN yet) SPI commands read zeros (inference: esptool
//     always attaches first, §9.1 step 1).
//   - Flash: a byte slice; programs wrap at the physical size as SPI NOR
//     address decoding does, the ROM's up-front erase stops at the end;
//     the stub refuses ranges beyond the size it assumes (0xC4); optional
//     datasheet-typical timings.
//   - Boot: PowerCycle(true) prints the ROM boot log at 74880 baud (115200
//     with a 40 MHz crystal) and the loader then listens at 115200, the rate
//     esptool syncs at. The ROM's auto-baud is not modelled: a host must
//     sync at 115200.
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

// Config describes the simulated module. The zero value is a 1 MiB
// ESP8266 with a 26 MHz crystal and the DefaultFlash contents.
type Config struct {
	Chip Chip
	// Flash is the initial flash contents (copied); nil means
	// DefaultFlash(Chip, 0). Its length is the flash size: a power of two
	// from 256 KiB to 16 MiB; 1, 2 or 4 MiB for an ESP8285.
	Flash []byte
	// FlashID is the JEDEC id as RDID returns it in SPI W0 (MFR |
	// TYPE<<8 | CAP<<16); 0 means a GigaDevice GD25Q part of the flash
	// size (0x1440C8 for 1 MiB, 0x1540C8 for 2 MiB, 0x1640C8 for 4 MiB;
	// GD25Q80 seen on an ESP-07 in esp8266/Arduino#822). The stub takes
	// the flash size from the capacity byte, as esp-flasher-stub does: an
	// id claiming more than len(Flash) models a mislabelled chip whose
	// high addresses wrap around to the start.
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
	// AutoReset > 0 models the bench: while the chip runs its
	// application and SYNC frames arrive, the user (holding GPIO0 low)
	// power-cycles it AutoReset after the first of them; likewise when 64
	// bytes of garbage (a tool at another baud rate asking for a power
	// cycle) reach the loader or the stub without a frame in between. 0
	// means only explicit PowerCycle calls reset the chip.
	AutoReset time.Duration
	// Timing makes flash operations take datasheet-typical time
	// (Winbond W25Q32FV: sector erase 45 ms, 64 KiB block erase 150 ms,
	// page program 0.7 ms; chip erase as block erases; MD5 at an
	// estimated 1.5 s/MiB). For scale: esptool#380 measured 1.93 s for
	// the ROM erase of a 236 544-byte image; this model gives 1.47 s.
	Timing bool
	Faults Faults
	// Seed makes the fault injection reproducible.
	Seed int64
	// Log, if set, receives one line per command and per reset.
	Log io.Writer
}

// Faults injects line and flash errors. Rates are probabilities in [0, 1]
// drawn per byte (DelayRate per frame) from generators seeded by
// Config.Seed, so a run is reproducible.
type Faults struct {
	// DropRate and CorruptRate apply to the bytes the chip sends.
	DropRate, CorruptRate float64
	// RxDropRate applies to the bytes the host sends.
	RxDropRate float64
	// Delay holds back a frame the chip sends, with probability DelayRate.
	Delay     time.Duration
	DelayRate float64
	// DisconnectAfter closes the line once the chip has received this
	// many bytes (0 = never); Serve then returns ErrDisconnected. It
	// fires once per Device.
	DisconnectAfter int64
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
}

// Stats is a snapshot of what the simulated chip has done.
type Stats struct {
	// Mode is "app", "rom" or "stub".
	Mode string
	// Baud is the chip's UART rate.
	Baud int
	// Commands counts the command frames received in ROM and stub mode,
	// by esptool's command name (0xNN for unknown opcodes).
	Commands map[string]int
	// Erased counts erase operations per 4 KiB sector, keyed by the
	// sector's start address.
	Erased map[uint32]int
	// BytesIn and BytesOut count the bytes received from and written to
	// the line.
	BytesIn, BytesOut int64
	// Resets counts power cycles and resets since New.
	Resets int
}

// ErrDisconnected is returned by Serve when Faults.DisconnectAfter closed
// the line.
var ErrDisconnected = errors.New("espsim: line closed by the simulated disconnect fault")

// ErrBusy is returned by Serve while another Serve runs on the device.
var ErrBusy = errors.New("espsim: the device is already being served")

type mode int

const (
	modeApp mode = iota
	modeROM
	modeStub
)

func (m mode) String() string {
	switch m {
	case modeROM:
		return "rom"
	case modeStub:
		return "stub"
	}
	return "app"
}

// bootEvent is the output of a reset that Serve still has to send.
type bootEvent struct {
	download bool
	cause    int  // rst cause printed in the boot log
	jump     bool // ROM jumped to the application: no boot log
}

// pollInterval bounds how long Serve waits in Read before it checks for
// cancellation, resets and the bench auto-reset.
const pollInterval = 20 * time.Millisecond

// Device is one simulated module. Its methods are safe for concurrent
// use; one Serve runs at a time.
type Device struct {
	chip     Chip
	cfg      Config
	efuse    [4]uint32
	flashID  uint32
	xtal     int
	stubSize uint32 // flash size the stub assumes at start (from the JEDEC id)

	mu             sync.Mutex
	flash          []byte
	mode           mode
	baud           int
	clkdiv         uint32
	gen            uint64
	boot           *bootEvent
	serving        bool
	spiAttached    bool
	regs           map[uint32]uint32
	commands       map[string]int
	erased         map[uint32]int
	bytesIn        int64
	bytesOut       int64
	resets         int
	autoResetAt    time.Time
	disconnectDone bool

	kick chan struct{} // wakes a sleeping Serve after PowerCycle

	// Owned by the goroutine running Serve.
	rxRand, txRand *rand.Rand
	sess           session
	sessGen        uint64
}

// New validates cfg and returns a powered module in download mode: GPIO0
// held low at power-on, the ROM loader waiting at 115200 baud. Its boot
// log is sent when Serve starts.
func New(cfg Config) (*Device, error) {
	if cfg.Chip != ESP8266 && cfg.Chip != ESP8285 {
		return nil, fmt.Errorf("espsim: unknown chip %d", int(cfg.Chip))
	}
	var flash []byte
	if cfg.Flash == nil {
		flash = DefaultFlash(cfg.Chip, 0)
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
	mac := cfg.MAC
	if mac == ([6]byte{}) {
		mac = defaultMAC8266
		if cfg.Chip == ESP8285 {
			mac = defaultMAC8285
		}
	}
	efuse, err := encodeEFuses(cfg.Chip, mac, n)
	if err != nil {
		return nil, err
	}
	f := cfg.Faults
	for _, r := range []float64{f.DropRate, f.CorruptRate, f.RxDropRate, f.DelayRate} {
		if r < 0 || r > 1 {
			return nil, fmt.Errorf("espsim: fault rate %v is not in [0, 1]", r)
		}
	}
	if f.Delay < 0 || f.DisconnectAfter < 0 || f.FaultAfter < 0 {
		return nil, errors.New("espsim: negative fault parameter")
	}
	id := cfg.FlashID
	if id == 0 {
		id = defaultFlashID(n)
	}
	cfg.Flash = nil
	d := &Device{
		chip:     cfg.Chip,
		cfg:      cfg,
		efuse:    efuse,
		flashID:  id,
		xtal:     xtal,
		stubSize: detectedSize(id),
		flash:    flash,
		commands: map[string]int{},
		erased:   map[uint32]int{},
		kick:     make(chan struct{}, 1),
		rxRand:   rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5258)),
		txRand:   rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5458)),
	}
	d.resetLocked(true, 1)
	d.resets = 0
	return d, nil
}

// detectedSize is the flash size the stub derives from the JEDEC capacity
// byte at start-up, or the chip maximum when the byte is not a size
// (reference §5.1 SPI_SET_PARAMS, §9.1).
func detectedSize(id uint32) uint32 {
	c := (id >> 16) & 0xFF
	if c >= 0x12 && c <= 0x18 {
		return 1 << c
	}
	return maxFlashSize
}

// resetLocked models a reset: download selects the ROM loader (GPIO0 low)
// or the application. The caller holds d.mu.
func (d *Device) resetLocked(download bool, cause int) {
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
	d.boot = &bootEvent{download: download, cause: cause}
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
// serial loader at 115200. Without it the ROM boots the application from
// flash, which ignores SLIP frames. A stub session ends; the flash
// contents stay. The boot output is sent by the running Serve, or by the
// next one.
func (d *Device) PowerCycle(download bool) {
	d.mu.Lock()
	d.resetLocked(download, 1)
	d.mu.Unlock()
	d.wake()
}

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

func (d *Device) count(op byte) {
	d.mu.Lock()
	d.commands[opName(op)]++
	d.mu.Unlock()
}

// faultsActive reports whether the rate-based faults apply yet.
func (d *Device) faultsActive() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.bytesIn >= d.cfg.Faults.FaultAfter
}

// Serve runs the chip on l until ctx ends (it returns nil) or the line
// fails (it returns the error; ErrDisconnected for the disconnect fault).
// It can be called again later, with the same or another line; the chip's
// state is kept, except that a compressed write in progress is abandoned.
func (d *Device) Serve(ctx context.Context, l Line) error {
	d.mu.Lock()
	if d.serving {
		d.mu.Unlock()
		return ErrBusy
	}
	d.serving = true
	d.mu.Unlock()
	c := &conn{d: d, l: l, ctx: ctx, rbuf: make([]byte, 4096)}
	c.dec.max = stubMaxData + 8 + 64
	defer func() {
		d.sess.abortInflate()
		d.mu.Lock()
		d.serving = false
		d.mu.Unlock()
	}()
	err := c.loop()
	if errors.Is(err, errStopped) {
		return nil
	}
	return err
}
