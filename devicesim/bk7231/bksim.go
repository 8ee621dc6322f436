// Package bksim simulates a Beken BK7231N or BK7231T module at the far end of
// a serial link, as a bench user's USB-UART adapter would see it: the chip
// runs its application, a power cycle opens a short window in which the
// BootROM (N) or the Tuya bootloader (T) answers LinkCheck, and once linked
// the chip serves its subset of the UART download protocol on a simulated
// 2 MiB NOR flash.
//
// The simulator is written from the tuyaflash BK7231 protocol reference and
// the sources it names (Beken's device-side bl_bk_hci_protocol.c in bk_idk,
// bk7231tools, BK7231GUIFlashTool, hid_download_py), independently of the
// tuyaflash client: it has its own frame decoder and encoder and shares no
// code with flasher/..., so that a mistake made on both sides cannot pass
// unnoticed. It needs only the standard library.
//
// Behaviour worth knowing when a test fails against it:
//   - A new Device runs its application and ignores the UART; PowerCycle
//     (or Config.AutoReset) opens the link window.
//   - Bytes that arrive while the chip is busy with a command (including the
//     rest of the chunk that completed the frame, a SetBaudRate delay and, with
//     Config.Timing, flash busy times) are dropped, as the ROM drops them.
//   - A long frame that stops arriving is answered after an idle time with
//     status 5 (PACK_PAYLOAD_LACK), like bk_idk; an incomplete short frame is
//     dropped silently.
//   - Commands outside the chip's subset get the unknown-command reply
//     (status 7), on the T bootloader too.
package bksim

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
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

// Chip selects which module is simulated.
type Chip int

const (
	// BK7231N answers from its BootROM with the FULL protocol.
	BK7231N Chip = iota
	// BK7231T answers from the Tuya bootloader "BK7231S_1.0.5" with the
	// BASIC_TUYA protocol subset.
	BK7231T
)

// ParseChip accepts "bk7231n" or "bk7231t" in any case.
func ParseChip(s string) (Chip, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "bk7231n":
		return BK7231N, nil
	case "bk7231t":
		return BK7231T, nil
	}
	return 0, fmt.Errorf("bksim: unknown chip %q (want bk7231n or bk7231t)", s)
}

// String returns "BK7231N" or "BK7231T".
func (c Chip) String() string {
	switch c {
	case BK7231N:
		return "BK7231N"
	case BK7231T:
		return "BK7231T"
	}
	return fmt.Sprintf("Chip(%d)", int(c))
}

// Config describes the simulated module.
type Config struct {
	Chip Chip
	// Flash is the initial flash contents (copied). Its length is the
	// flash size: a power of two of at least 1 MiB. Nil means
	// DefaultFlash(Chip, MAC).
	Flash []byte
	// MAC is written into the RF sector by DefaultFlash; the zero value
	// means DefaultMAC.
	MAC [6]byte
	// FlashID is the JEDEC MFR, TYPE, CAP answered by GetMID (N only). The
	// zero value means EB 60 xx (TH25Q16HB family) with the capacity byte
	// derived from the flash size (0x15 for 2 MiB).
	FlashID [3]byte
	// StatusReg is the initial flash status register of an N, SR2<<8|SR1.
	// Nil means 0x4004 (BP0+CMP: protected, as TH25Q16HB on Tuya N devices).
	StatusReg *uint16
	// LockOnNoopSRWrite makes a status-register write that writes the value
	// already there lock the register for good (0x7BFC, SRP bits set; later
	// writes ignored), as seen on a P25Q16HBK (reference §7.3).
	LockOnNoopSRWrite bool
	// ZeroEfuseKey gives an N an all-zero eFuse key (BK7231M-like) instead
	// of Tuya's 510fb093 a3cbeadc 5993a17e c7adeb03.
	ZeroEfuseKey bool
	// LinkWindow is how long after a reset the chip listens for LinkCheck
	// before it runs the application; 0 means 50 ms.
	LinkWindow time.Duration
	// AutoReset > 0 models the bench user: while the chip runs its
	// application and LinkCheck frames arrive, it is power-cycled this long
	// after the first one; likewise when, in download mode, the host's
	// bytes keep arriving as garbage (at least 32 bytes and no frame: the
	// tool is at another baud rate and asks for a power cycle). 0 means
	// only explicit PowerCycle calls.
	AutoReset time.Duration
	// Timing makes erase, program, status-register writes and CRC take
	// datasheet-typical time (see timing.go); false makes them instant.
	// The UART itself is paced by the link, not by the simulator.
	Timing bool
	// Faults injects link errors.
	Faults Faults
	// Seed seeds fault injection: same seed, same faults.
	Seed int64
	// Log, if set, receives a human-readable event log, one line per
	// command ("FlashRead4K 0x011000 ok") and per state change.
	Log io.Writer
}

// Faults describes link errors the chip applies to its own input and output.
type Faults struct {
	DropRate    float64       // probability that a byte the chip sends is lost
	CorruptRate float64       // probability that a byte the chip sends is changed
	RxDropRate  float64       // probability that a byte the host sends is lost before the chip sees it
	Delay       time.Duration // extra delay before a reply …
	DelayRate   float64       // … applied with this probability
	// DisconnectAfter closes the line once the chip has received this many
	// bytes in total (0 = never): a cable pulled mid-operation. It fires
	// once per Device.
	DisconnectAfter int64
	// FaultAfter delays all other faults until the chip has received more
	// than this many bytes: input bytes up to this count and the replies
	// to commands that end within it are clean, so that link-up can
	// succeed (FaultAfter: 5 keeps the first LinkCheck and its reply clean).
	FaultAfter int64
}

// DefaultMAC is the MAC address DefaultFlash uses when none is given: a
// locally administered address, so it is nobody's hardware.
var DefaultMAC = [6]byte{0x02, 0x42, 0x4B, 0x72, 0x31, 0x01}

// ErrDisconnected is returned by Serve when Faults.DisconnectAfter closed the
// line.
var ErrDisconnected = errors.New("bksim: line closed by fault injection (Faults.DisconnectAfter)")

// Stats is a snapshot of the device's state and counters.
type Stats struct {
	State     string         // "app", "window" or "download"
	Baud      int            // the chip's current UART rate
	Commands  map[string]int // commands handled, by name ("FlashRead4K", "Unknown 0x12", …)
	Erased    map[uint32]int // erase count per physical 4 KiB sector address
	BytesIn   int64          // bytes read from the line (including ones lost to RxDropRate)
	BytesOut  int64          // bytes written to the line
	Resets    int            // power cycles and chip resets
	StatusReg uint16         // N: flash status register SR2<<8|SR1
	SRLocked  bool           // N: status register locked by a no-op write
}

type state int

const (
	stateApp state = iota
	stateWindow
	stateDownload
)

func (s state) String() string {
	switch s {
	case stateWindow:
		return "window"
	case stateDownload:
		return "download"
	}
	return "app"
}

// Device is one simulated module. Its methods are safe for concurrent use;
// only one Serve may run at a time.
type Device struct {
	cfg  Config
	size uint32
	id   [3]byte

	mu          sync.Mutex
	flash       []byte
	state       state
	baud        int
	windowEnd   time.Time
	autoResetAt time.Time
	// junk counts bytes that made no frame since the last frame the chip
	// executed in download mode (a host at another baud rate).
	junk     int
	epoch    uint64        // bumped by every reset
	resetSig chan struct{} // closed and replaced by every reset
	serving  bool

	sr       uint16 // SR2<<8 | SR1
	sr3      byte
	srLocked bool
	wipUntil time.Time
	crcLock  bool // T: flash re-protected by CheckCRC until the next LinkCheck

	efuse     [32]byte
	efuseCtrl uint32
	efuseOptr uint32
	regs      map[uint32]uint32

	commands     map[string]int
	erased       map[uint32]int
	bytesIn      int64
	bytesOut     int64
	consumed     int64 // bytes taken off the input by the chip
	resets       int
	disconnected bool

	rxRand *rand.Rand // used by the reader goroutine only
	txRand *rand.Rand // used by the serving goroutine only
}

const (
	baseBaud          = 115200
	defaultLinkWindow = 50 * time.Millisecond
	defaultSR         = 0x4004
)

// tuyaKey is the eFuse key of Tuya BK7231N modules as four little-endian
// words (reference §6 step 6; GUI TUYA_ENCRYPTION_KEY).
var tuyaKey = [4]uint32{0x510fb093, 0xa3cbeadc, 0x5993a17e, 0xc7adeb03}

// New validates cfg and returns a device that is running its application.
func New(cfg Config) (*Device, error) {
	if cfg.Chip != BK7231N && cfg.Chip != BK7231T {
		return nil, fmt.Errorf("bksim: unknown chip %d (use BK7231N or BK7231T)", int(cfg.Chip))
	}
	if cfg.MAC == ([6]byte{}) {
		cfg.MAC = DefaultMAC
	}
	var img []byte
	if cfg.Flash == nil {
		img = DefaultFlash(cfg.Chip, cfg.MAC)
	} else {
		n := len(cfg.Flash)
		if n < 1<<20 || n > 1<<30 || n&(n-1) != 0 {
			return nil, fmt.Errorf("bksim: flash size %d bytes is not a power of two between 1 MiB and 1 GiB", n)
		}
		img = append([]byte(nil), cfg.Flash...)
	}
	cfg.Flash = nil
	if cfg.LinkWindow < 0 || cfg.AutoReset < 0 || cfg.Faults.Delay < 0 {
		return nil, errors.New("bksim: LinkWindow, AutoReset and Faults.Delay must not be negative")
	}
	if cfg.LinkWindow == 0 {
		cfg.LinkWindow = defaultLinkWindow
	}
	f := cfg.Faults
	for _, r := range []float64{f.DropRate, f.CorruptRate, f.RxDropRate, f.DelayRate} {
		if r < 0 || r > 1 {
			return nil, fmt.Errorf("bksim: fault probability %v is outside 0..1", r)
		}
	}
	d := &Device{
		cfg:      cfg,
		size:     uint32(len(img)),
		flash:    img,
		state:    stateApp,
		baud:     baseBaud,
		resetSig: make(chan struct{}),
		sr:       defaultSR,
		regs:     map[uint32]uint32{},
		commands: map[string]int{},
		erased:   map[uint32]int{},
		rxRand:   rand.New(rand.NewPCG(uint64(cfg.Seed), 0x7278)),
		txRand:   rand.New(rand.NewPCG(uint64(cfg.Seed), 0x7478)),
	}
	if cfg.StatusReg != nil {
		d.sr = *cfg.StatusReg
	}
	d.id = cfg.FlashID
	if d.id == ([3]byte{}) {
		d.id = [3]byte{0xEB, 0x60, byte(log2(d.size))}
	}
	if !cfg.ZeroEfuseKey {
		for i, w := range tuyaKey {
			for k := range 4 {
				d.efuse[4*i+k] = byte(w >> (8 * k))
			}
		}
	}
	return d, nil
}

func log2(n uint32) int {
	k := 0
	for n > 1 {
		n >>= 1
		k++
	}
	return k
}

// PowerCycle simulates cutting the module's power (or pulsing CEN): the chip
// leaves download mode, its UART returns to 115200 and the link window opens.
func (d *Device) PowerCycle() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.resetLocked("power cycle")
}

// resetLocked restarts the chip; the caller holds d.mu.
func (d *Device) resetLocked(why string) {
	d.state = stateWindow
	d.baud = baseBaud
	d.windowEnd = time.Now().Add(d.cfg.LinkWindow)
	d.autoResetAt = time.Time{}
	d.junk = 0
	d.crcLock = false
	d.wipUntil = time.Time{}
	d.efuseCtrl, d.efuseOptr = 0, 0
	clear(d.regs)
	d.resets++
	d.epoch++
	close(d.resetSig)
	d.resetSig = make(chan struct{})
	d.logf("%s: link window open for %v at %d baud", why, d.cfg.LinkWindow, baseBaud)
}

// Flash returns a copy of the current flash contents.
func (d *Device) Flash() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]byte(nil), d.flash...)
}

// Stats returns a snapshot of the device's state and counters.
func (d *Device) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := Stats{
		State:     d.state.String(),
		Baud:      d.baud,
		Commands:  make(map[string]int, len(d.commands)),
		Erased:    make(map[uint32]int, len(d.erased)),
		BytesIn:   d.bytesIn,
		BytesOut:  d.bytesOut,
		Resets:    d.resets,
		StatusReg: d.sr,
		SRLocked:  d.srLocked,
	}
	for k, v := range d.commands {
		st.Commands[k] = v
	}
	for k, v := range d.erased {
		st.Erased[k] = v
	}
	return st
}

// logf writes one line to the configured log; the caller holds d.mu.
func (d *Device) logf(format string, args ...any) {
	if d.cfg.Log == nil {
		return
	}
	fmt.Fprintf(d.cfg.Log, format+"\n", args...)
}
