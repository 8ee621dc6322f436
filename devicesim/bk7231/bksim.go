// Package bksim simulates a Beken BK72xx module at the far end of a serial
// link, as a bench user's USB-UART adapter would see it: the chip runs its
// application, a power cycle opens a short window in which the BootROM
// (BK7231N/M, BK7238, BK7252N) or the flash bootloader (BK7231T, BK7231U,
// BK7252) answers LinkCheck, and once linked the chip serves its subset of
// the UART download protocol on a simulated NOR flash. Each chip is a row
// of the profile table (profiles.go).
//
// The simulator is written from the tuyaflash BK7231 protocol reference,
// more-chips.md and the sources they name (Beken's device-side
// bl_bk_hci_protocol.c in bk_idk, bk7231tools, BK7231GUIFlashTool,
// hid_download_py, LibreTiny), independently of the tuyaflash client: it has
// its own frame decoder and encoder, its own tables and its own Tuya
// storage encoder, and shares no code with flasher/..., so that a mistake
// made on both sides cannot pass unnoticed. It needs only the standard
// library.
//
// Behaviour worth knowing when a test fails against it:
//   - A new Device runs its application and hands the UART to Config.App;
//     PowerCycle (or Config.AutoReset) opens the link window.
//   - Bytes that arrive while the chip is busy with a command (including the
//     rest of the chunk that completed the frame, a SetBaudRate delay and, with
//     Config.Timing, flash busy times) are dropped, as the ROM drops them.
//   - A long frame that stops arriving is answered after an idle time with
//     status 5 (PACK_PAYLOAD_LACK), like bk_idk; an incomplete short frame is
//     dropped silently.
//   - Commands outside the chip's subset get the unknown-command reply
//     (status 7), on the bootloaders too.
//   - Bootloader-based chips (BASIC protocols): after CheckCRC, and after a
//     command that arrived broken (status 4 or 5), erase and program reply
//     OK but change nothing until the next LinkCheck (reference §4.3); they
//     leave download mode into the application after Config.IdleExit
//     without a command; plain addresses below 0x11000 are refused with
//     status 6; a bootloader area that differs from the one at power-up
//     leaves the chip dead after its next reset (reference §1, §9.6).
//   - Short command 0x7E with the payload "tuyaflash-virtual?" answers the
//     identification JSON of contract C2 on every chip.
//   - Config.App is booted and halted as the chip starts and leaves its
//     application; the Flash it gets also restarts the chip (Rebooter).
//   - Faults covers the link (drops, corruption, duplicates both ways,
//     delays, a pulled cable or adapter) and the physical world (power
//     loss in the middle of an erase or program, a reset in the middle of a
//     command, an unreachable flash).
package bksim

import (
	"errors"
	"fmt"
	"io"
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

// Config describes the simulated module.
type Config struct {
	Chip Chip
	// Flash is the initial flash contents (copied). Its length is the
	// flash size: a power of two of at least 1 MiB. Nil means
	// DefaultFlashSize(Chip, MAC, FlashSize).
	Flash []byte
	// FlashSize is the size of the synthetic image when Flash is nil; 0
	// means the chip's default (4 MiB on a BK7252, 2 MiB otherwise).
	FlashSize int
	// MAC is written into the RF sector by DefaultFlash and derives the
	// synthetic device's Tuya identity; the zero value means DefaultMAC.
	MAC [6]byte
	// FlashID is the JEDEC MFR, TYPE, CAP answered by GetMID (FULL chips
	// only). The zero value means the chip's default part with the
	// capacity byte derived from the flash size (0x15 for 2 MiB).
	FlashID [3]byte
	// StatusReg is the initial flash status register of a FULL chip,
	// SR2<<8|SR1. Nil means the chip's default (0x4004, BP0+CMP, on
	// BK7231N/M: protected, as TH25Q16HB on Tuya N devices; 0x4000, CMP,
	// on BK7238).
	StatusReg *uint16
	// LockOnNoopSRWrite makes a status-register write that writes the value
	// already there lock the register for good (0x7BFC, SRP bits set; later
	// writes ignored), as seen on a P25Q16HBK (reference §7.3). The BK7238
	// profile, whose default part is that flash, has it on regardless.
	LockOnNoopSRWrite bool
	// ZeroEfuseKey gives a FULL chip an all-zero eFuse key (BK7231M-like)
	// whatever its profile says.
	ZeroEfuseKey bool
	// LinkWindow is how long after a reset the chip listens for LinkCheck
	// before it runs the application; 0 means 50 ms.
	LinkWindow time.Duration
	// IdleExit is how long a bootloader-based chip (BK7231T, BK7231U,
	// BK7252) stays in download mode without receiving a command before it
	// boots its application ("BK7231T (not N) will exit the download mode
	// when it can't communicate with the flasher", LibreTiny
	// docs/platform/beken-72xx/README.md). No source gives the duration:
	// 0 means DefaultIdleExit, an unverified choice; a negative value
	// disables the exit. BootROM chips never leave download mode by
	// themselves.
	IdleExit time.Duration
	// AutoReset > 0 models the bench user: while the chip runs its
	// application (or is powered off by a fault) and LinkCheck frames
	// arrive, it is power-cycled this long after the first one; likewise
	// when, in download mode, the host's bytes keep arriving as garbage (at
	// least 32 bytes and no frame: the tool is at another baud rate and
	// asks for a power cycle). 0 means only explicit PowerCycle calls.
	AutoReset time.Duration
	// Timing makes erase, program, status-register writes and CRC take
	// datasheet-typical time (see timing.go); false makes them instant.
	// The UART itself is paced by the link, not by the simulator.
	Timing bool
	// App is the firmware that runs when the chip is out of reset and not
	// in download mode (contract C1); nil means none (the chip prints a
	// one-line banner when its application starts and ignores the UART).
	App App
	// NetAddr is the loopback host:port the identification command reports
	// as "net" (contract C2); "" asks App's NetAddr method if it has one,
	// else the answer has no "net".
	NetAddr string
	// Unmarked makes the chip pass for a real one: the identification
	// command is an unknown command, as on silicon, so tuyaflash records
	// it like a real device.
	Unmarked bool
	// Faults injects link errors and faults of the physical world.
	Faults Faults
	// Seed seeds fault injection: same seed, same faults.
	Seed int64
	// Log, if set, receives a human-readable event log, one line per
	// command ("FlashRead4K 0x011000 ok") and per state change.
	Log io.Writer
}

// Faults describes link errors and physical faults. Probabilities apply
// only once the chip has taken more than FaultAfter bytes off its input;
// every random choice comes from Config.Seed.
type Faults struct {
	DropRate      float64 // probability that a byte the chip sends is lost
	CorruptRate   float64 // probability that a byte the chip sends is changed
	DupRate       float64 // probability that a byte the chip sends arrives twice
	RxDropRate    float64 // probability that a byte the host sends is lost before the chip sees it
	RxCorruptRate float64 // probability that a byte the host sends reaches the chip changed
	RxDupRate     float64 // probability that a byte the host sends reaches the chip twice
	// Delay holds a reply back this long (the chip says nothing meanwhile
	// and drops what arrives), with probability DelayRate: a Delay longer
	// than the host's reply timeout makes a reply arrive after the host
	// gave up on it.
	Delay     time.Duration
	DelayRate float64
	// DisconnectAfter closes the line once the chip has received this many
	// bytes in total (0 = never): a cable pulled mid-operation. It fires
	// once per Device.
	DisconnectAfter int64
	// UnplugAfter pulls the USB adapter out once the chip has received
	// this many bytes (0 = never): Serve calls Unplug on a line that
	// implements Unplugger (the port then fails as an unplugged adapter
	// does) or closes it, and returns ErrUnplugged. It fires once.
	UnplugAfter int64
	// PowerLossAt cuts the module's power in the middle of the Nth erase
	// or program command (counted from 1 over the device's life; 0 =
	// never); PowerLossRate does it with this probability per erase or
	// program command. NOR flash is left as a cut operation leaves it: an
	// interrupted erase has set only some of the bits it had to set (the
	// sector is neither its old data nor all 0xFF), an interrupted program
	// has finished the pages before the cut, cleared only some of the
	// bits of the page it was on and left the rest untouched. No reply;
	// the chip stays off until PowerCycle (or AutoReset) powers it again.
	PowerLossAt   int
	PowerLossRate float64
	// ResetAt resets the chip in the middle of the Nth command it executes
	// in download mode (LinkCheck and the identification command not
	// counted; from 1 over the device's life; 0 = never); ResetRate does
	// it with this probability per command. The command gets no reply and
	// the chip is back in its link window, at 115200 baud. The flash
	// finishes an erase on its own; a program stops after the page it was
	// on.
	ResetAt   int
	ResetRate float64
	// FlashInaccessible makes the SPI flash unreachable from the chip
	// (reference §13, ltchiptool #29): reads give zeros, GetMID 00 00 00,
	// erase and program reply OK and change nothing.
	FlashInaccessible bool
	// FaultAfter delays the probabilistic faults until the chip has
	// received more than this many bytes: input bytes up to this count and
	// the replies to commands that end within it are clean, so that link-up
	// can succeed (FaultAfter: 5 keeps the first LinkCheck and its reply
	// clean).
	FaultAfter int64
}

// DefaultMAC is the MAC address DefaultFlash uses when none is given: a
// locally administered address, so it is nobody's hardware.
var DefaultMAC = [6]byte{0x02, 0x42, 0x4B, 0x72, 0x31, 0x01}

// DefaultIdleExit is Config.IdleExit's default: how long a bootloader-based
// chip waits in download mode for a command before it boots its
// application. Unverified: no source gives the duration.
const DefaultIdleExit = 5 * time.Second

var (
	// ErrDisconnected is returned by Serve when Faults.DisconnectAfter
	// closed the line.
	ErrDisconnected = errors.New("bksim: line closed by fault injection (Faults.DisconnectAfter)")
	// ErrUnplugged is returned by Serve when Faults.UnplugAfter pulled
	// the adapter.
	ErrUnplugged = errors.New("bksim: adapter unplugged by fault injection (Faults.UnplugAfter)")
)

// Stats is a snapshot of the device's state and counters.
type Stats struct {
	// State is "app", "window", "download", "off" (power cut by a fault,
	// or PowerOff) or "bricked" (a bootloader-based chip whose bootloader
	// area was changed: nothing answers any more).
	State     string
	Baud      int            // the chip's current UART rate
	Commands  map[string]int // commands handled, by name ("FlashRead4K", "Unknown 0x12", …)
	Erased    map[uint32]int // erase count per physical 4 KiB sector address
	BytesIn   int64          // bytes read from the line (including ones lost to RxDropRate)
	BytesOut  int64          // bytes written to the line
	Resets    int            // power cycles and chip resets
	StatusReg uint16         // FULL chips: flash status register SR2<<8|SR1
	SRLocked  bool           // FULL chips: status register locked by a no-op write
	// FlashLocked: a bootloader-based chip ignores erase and program until
	// the next LinkCheck (after CheckCRC or a broken command).
	FlashLocked bool
	AppBoots    int // times the chip started its application, the first power-up included
	PowerLosses int // power cuts by Faults.PowerLoss*
	FaultResets int // resets by Faults.Reset*
}

type state int

const (
	stateApp state = iota
	stateWindow
	stateDownload
	stateOff
	stateBricked
)

func (s state) String() string {
	switch s {
	case stateWindow:
		return "window"
	case stateDownload:
		return "download"
	case stateOff:
		return "off"
	case stateBricked:
		return "bricked"
	}
	return "app"
}

// lockReason says why a bootloader-based chip currently ignores erase and
// program.
type lockReason int

const (
	lockNone  lockReason = iota
	lockCRC              // CheckCRC re-protected the flash (§4.3)
	lockFault            // a command arrived broken (§4.3, elektroda post #93)
)

// Device is one simulated module. Its methods are safe for concurrent use;
// only one Serve may run at a time.
type Device struct {
	cfg  Config
	prof *profile
	size uint32
	id   [3]byte

	mu          sync.Mutex
	flash       []byte
	state       state
	baud        int
	windowEnd   time.Time
	autoResetAt time.Time
	lastCmd     time.Time // last command executed in download mode (idle exit)
	// junk counts bytes that made no frame since the last frame the chip
	// executed in download mode (a host at another baud rate).
	junk     int
	epoch    uint64        // bumped by every reset
	resetSig chan struct{} // closed and replaced by every reset or state change from outside
	serving  bool
	bootCRC  uint32 // CRC of the bootloader area at power-up (bootloader-based chips)

	sr       uint16 // SR2<<8 | SR1
	sr3      byte
	srLocked bool
	wipUntil time.Time
	lock     lockReason // bootloader-based chips: erase/program ignored until LinkCheck
	cut      cut        // fault decided for the command being executed

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
	appBoots     int
	powerLosses  int
	faultResets  int
	flashOps     int // erase and program commands executed (PowerLossAt)
	cmdCount     int // commands executed in download mode (ResetAt)
	disconnected bool
	unplugged    bool

	rxRand *rand.Rand // used by the reader goroutine only
	txRand *rand.Rand // used by the serving goroutine only (replies, faults)
}

const (
	baseBaud          = 115200
	defaultLinkWindow = 50 * time.Millisecond
	// bootloaderEnd is the end of the bootloader area (reference §9.2).
	bootloaderEnd = 0x11000
)

// tuyaKey is the eFuse key of Tuya BK7231N modules as four little-endian
// words (reference §6 step 6; GUI TUYA_ENCRYPTION_KEY).
var tuyaKey = [4]uint32{0x510fb093, 0xa3cbeadc, 0x5993a17e, 0xc7adeb03}

// New validates cfg and returns a device that is running its application.
func New(cfg Config) (*Device, error) {
	prof := cfg.Chip.profile()
	if prof == nil {
		return nil, fmt.Errorf("bksim: unknown chip %d (use one of %v)", int(cfg.Chip), chipOrder)
	}
	if cfg.MAC == ([6]byte{}) {
		cfg.MAC = DefaultMAC
	}
	var img []byte
	if cfg.Flash == nil {
		var err error
		if img, err = DefaultFlashSize(cfg.Chip, cfg.MAC, cfg.FlashSize); err != nil {
			return nil, err
		}
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
	if cfg.Faults.PowerLossAt < 0 || cfg.Faults.ResetAt < 0 || cfg.Faults.UnplugAfter < 0 || cfg.Faults.DisconnectAfter < 0 {
		return nil, errors.New("bksim: PowerLossAt, ResetAt, UnplugAfter and DisconnectAfter must not be negative")
	}
	if cfg.LinkWindow == 0 {
		cfg.LinkWindow = defaultLinkWindow
	}
	if cfg.IdleExit == 0 {
		cfg.IdleExit = DefaultIdleExit
	}
	f := cfg.Faults
	for _, r := range []float64{f.DropRate, f.CorruptRate, f.DupRate, f.RxDropRate, f.RxCorruptRate, f.RxDupRate, f.DelayRate, f.PowerLossRate, f.ResetRate} {
		if r < 0 || r > 1 {
			return nil, fmt.Errorf("bksim: fault probability %v is outside 0..1", r)
		}
	}
	d := &Device{
		cfg:      cfg,
		prof:     prof,
		size:     uint32(len(img)),
		flash:    img,
		state:    stateApp,
		baud:     baseBaud,
		resetSig: make(chan struct{}),
		sr:       prof.sr,
		regs:     map[uint32]uint32{},
		commands: map[string]int{},
		erased:   map[uint32]int{},
		appBoots: 1, // a new device is running its application
		rxRand:   rand.New(rand.NewPCG(uint64(cfg.Seed), 0x7278)),
		txRand:   rand.New(rand.NewPCG(uint64(cfg.Seed), 0x7478)),
	}
	if cfg.StatusReg != nil {
		d.sr = *cfg.StatusReg
	}
	d.id = cfg.FlashID
	if d.id == ([3]byte{}) {
		d.id = [3]byte{prof.flashID[0], prof.flashID[1], byte(log2(d.size))}
	}
	if prof.tuyaKey && !cfg.ZeroEfuseKey {
		for i, w := range tuyaKey {
			for k := range 4 {
				d.efuse[4*i+k] = byte(w >> (8 * k))
			}
		}
	}
	d.bootCRC = d.bootAreaCRC()
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

// bootAreaCRC fingerprints the bootloader area; the caller holds d.mu or
// owns d.
func (d *Device) bootAreaCRC() uint32 {
	return romCRC(0xFFFFFFFF, d.flash[:min(bootloaderEnd, len(d.flash))])
}

// PowerCycle simulates cutting the module's power (or pulsing CEN) and
// restoring it: the chip leaves download mode or its application, its UART
// returns to 115200 and the link window opens. With no LinkCheck in the
// window it boots its application. It also powers on a chip that is off.
func (d *Device) PowerCycle() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.resetLocked("power cycle")
}

// PowerCycleToApp is a power cycle with nobody talking to the chip: it
// boots its application at once, without a link window (the simulated
// user lets it boot normally).
func (d *Device) PowerCycleToApp() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.resetLocked("power cycle without link checks")
	if d.state == stateWindow {
		d.enterAppLocked("booting the application")
	}
}

// PowerOff cuts the module's power until the next PowerCycle.
func (d *Device) PowerOff() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.powerOffLocked("power off")
}

// resetLocked restarts the chip into its link window (or leaves it dead
// when its bootloader is damaged); the caller holds d.mu.
func (d *Device) resetLocked(why string) {
	d.clearLocked()
	d.resets++
	d.state = stateWindow
	d.windowEnd = time.Now().Add(d.cfg.LinkWindow)
	if d.prof.proto != protoFull && d.bootAreaCRC() != d.bootCRC {
		d.state = stateBricked
		d.logf("%s: the bootloader area differs from the one at power-up: the chip no longer starts (only SPI flashing recovers it, reference §9.6)", why)
		return
	}
	d.logf("%s: link window open for %v at %d baud", why, d.cfg.LinkWindow, baseBaud)
}

// powerOffLocked switches the chip off; the caller holds d.mu.
func (d *Device) powerOffLocked(why string) {
	d.clearLocked()
	d.state = stateOff
	d.logf("%s: the chip is off until it is powered again", why)
}

// clearLocked forgets everything a reset or power loss clears and wakes
// the serving loop; the caller holds d.mu.
func (d *Device) clearLocked() {
	d.baud = baseBaud
	d.autoResetAt = time.Time{}
	d.junk = 0
	d.lock = lockNone
	d.wipUntil = time.Time{}
	d.efuseCtrl, d.efuseOptr = 0, 0
	clear(d.regs)
	d.epoch++
	d.signalLocked()
}

// signalLocked wakes the serving loop; the caller holds d.mu.
func (d *Device) signalLocked() {
	close(d.resetSig)
	d.resetSig = make(chan struct{})
}

// enterAppLocked leaves reset or download mode into the application; the
// caller holds d.mu. The serving loop calls App.Boot.
func (d *Device) enterAppLocked(why string) {
	d.state = stateApp
	d.baud = baseBaud
	d.lock = lockNone
	d.autoResetAt = time.Time{}
	d.appBoots++
	d.logf("%s: application running", why)
	d.signalLocked()
}

// Flash returns a copy of the current flash contents.
func (d *Device) Flash() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]byte(nil), d.flash...)
}

// Chip returns the simulated chip.
func (d *Device) Chip() Chip { return d.cfg.Chip }

// Stats returns a snapshot of the device's state and counters.
func (d *Device) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := Stats{
		State:       d.state.String(),
		Baud:        d.baud,
		Commands:    make(map[string]int, len(d.commands)),
		Erased:      make(map[uint32]int, len(d.erased)),
		BytesIn:     d.bytesIn,
		BytesOut:    d.bytesOut,
		Resets:      d.resets,
		StatusReg:   d.sr,
		SRLocked:    d.srLocked,
		FlashLocked: d.lock != lockNone,
		AppBoots:    d.appBoots,
		PowerLosses: d.powerLosses,
		FaultResets: d.faultResets,
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
