package virtual

import (
	"context"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/tuyaflash/tuyaflash/devicesim/appsim"
	bksim "github.com/tuyaflash/tuyaflash/devicesim/bk7231"
	espsim "github.com/tuyaflash/tuyaflash/devicesim/esp8266"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/flasher/bk7231"
)

// Addrs are the loopback addresses (host:port) where a simulated
// firmware's network side appears: its access point's pages, its station
// web server (a real device's port 80), ESPHome's native API (6053) and the
// stock firmware's Tuya port (6668). Empty: 127.0.0.1 with a port the
// system picks.
type Addrs struct {
	AP      string `json:"ap"`
	Station string `json:"station"`
	API     string `json:"api"`
	Tuya    string `json:"tuya"`
}

// SimConfig describes a simulated module: the chip, the firmware that runs
// on it and the bench user around it.
type SimConfig struct {
	// Chip is any name one of the simulators accepts.
	Chip string
	// Flash is the initial flash (copied); nil: the simulator's default
	// image (a stock-looking Tuya flash) of FlashSize bytes (0: the
	// chip's default).
	Flash     []byte
	FlashSize int
	// MAC is the chip's MAC: in the RF sector of the default image on
	// Beken chips, in the eFuses on ESP chips. Zero: the simulator's
	// default.
	MAC [6]byte
	// Timing makes flash operations take datasheet-typical time.
	Timing bool
	// AutoReset is the bench user power-cycling the chip into download
	// mode this long after link checks (Beken) or SYNCs (ESP) reach its
	// running firmware; 0: never.
	AutoReset time.Duration
	// ReleaseAfterWrite is the ESP bench user releasing GPIO0 and
	// power-cycling once the host has written and been quiet this long
	// (espsim.Config.ReleaseAfterWrite); 0: never. Beken chips boot their
	// firmware on the Reboot command instead.
	ReleaseAfterWrite time.Duration
	// Net are the firmware's addresses; NoNet runs the chip without a
	// firmware network side (the chip's own banner only).
	Net   Addrs
	NoNet bool
	// FastApp gives the simulated firmware millisecond delays
	// (appsim.FastTiming) instead of the real firmwares' seconds.
	FastApp bool
	// Log hears the chip simulator's and the firmware's event lines.
	Log io.Writer
	// Beken and ESP adjust the chip simulator's configuration before
	// it is built (faults, protocol details); only the one for the chosen
	// chip is called.
	Beken func(*bksim.Config)
	ESP   func(*espsim.Config)
	// Saved, when set, is called after the firmware has written its
	// settings (Wi-Fi, names, pins) to flash, from the firmware's own
	// goroutine: a persistent device saves its flash then.
	Saved func()
}

// Line is the link a simulator serves: transport.Port and transport.PTY
// satisfy it.
type Line interface {
	io.ReadWriteCloser
	SetReadTimeout(time.Duration) error
	SetBaudRate(int) error
}

// Sim is a simulated module: chip simulator, firmware and bench user.
type Sim struct {
	spec Spec
	bk   *bksim.Device
	esp  *espsim.Device
	fw   *appsim.Firmware
	app  *savingApp
}

// NewSim builds the simulated module.
func NewSim(cfg SimConfig) (*Sim, error) {
	spec, err := ParseSpec(Prefix + cfg.Chip)
	if err != nil {
		return nil, err
	}
	s := &Sim{spec: spec}
	if !cfg.NoNet {
		s.app = &savingApp{saved: cfg.Saved}
	}
	var app any // the chip's App: nil interface when there is no network side
	if s.app != nil {
		app = s.app
	}
	if spec.ESP() {
		chip, _ := espsim.ParseChip(spec.Chip)
		c := espsim.Config{Chip: chip, Flash: cfg.Flash, MAC: cfg.MAC, Timing: cfg.Timing, AutoReset: cfg.AutoReset,
			ReleaseAfterWrite: cfg.ReleaseAfterWrite, Log: cfg.Log}
		if c.Flash == nil && cfg.FlashSize != 0 {
			if c.Flash, err = espsim.StockFlash(espsim.Stock{Chip: chip, Size: cfg.FlashSize, MAC: cfg.MAC}); err != nil {
				return nil, err
			}
		}
		if app != nil {
			c.App = app.(espsim.App)
		}
		if cfg.ESP != nil {
			cfg.ESP(&c)
		}
		if s.esp, err = espsim.New(c); err != nil {
			return nil, err
		}
	} else {
		chip, _ := bksim.ParseChip(spec.Chip)
		c := bksim.Config{Chip: chip, Flash: cfg.Flash, FlashSize: cfg.FlashSize, MAC: cfg.MAC, Timing: cfg.Timing,
			AutoReset: cfg.AutoReset, Log: cfg.Log}
		if app != nil {
			c.App = app.(bksim.App)
		}
		if cfg.Beken != nil {
			cfg.Beken(&c)
		}
		if s.bk, err = bksim.New(c); err != nil {
			return nil, err
		}
	}
	if s.app == nil {
		return s, nil
	}
	ac := appsim.Config{Chip: strings.ToUpper(spec.Chip), APAddr: cfg.Net.AP, StationAddr: cfg.Net.Station,
		APIAddr: cfg.Net.API, TuyaAddr: cfg.Net.Tuya, Log: cfg.Log}
	if s.esp != nil {
		ac.MAC = flasher.MAC(s.esp.MAC()).String()
	}
	if cfg.FastApp {
		ac.Timing = appsim.FastTiming()
	}
	if s.fw, err = appsim.New(ac); err != nil {
		return nil, err
	}
	s.app.set(s.fw)
	return s, nil
}

// Spec is the simulated chip as a spec names it (without file or name).
func (s *Sim) Spec() Spec { return s.spec }

// Serve runs the module on l until ctx ends (nil) or the line fails.
func (s *Sim) Serve(ctx context.Context, l Line) error {
	if s.esp != nil {
		return s.esp.Serve(ctx, l)
	}
	return s.bk.Serve(ctx, l)
}

// Flash returns a copy of the flash.
func (s *Sim) Flash() []byte {
	if s.esp != nil {
		return s.esp.Flash()
	}
	return s.bk.Flash()
}

// MAC is the MAC the chip reports: the eFuse MAC of an ESP chip, the one
// in the RF sector of a Beken chip's flash (as its firmware reads it;
// zero when the sector holds none).
func (s *Sim) MAC() flasher.MAC {
	if s.esp != nil {
		return flasher.MAC(s.esp.MAC())
	}
	return flasher.MAC(bekenMAC(s.spec, s.bk.Flash()))
}

// PowerCycle cuts and restores the power the way a user does to flash:
// a Beken chip opens its link window, an ESP chip comes up in its loader
// (GPIO0 held low).
func (s *Sim) PowerCycle() {
	if s.esp != nil {
		s.esp.PowerCycle(true)
		return
	}
	s.bk.PowerCycle()
}

// BootApp power-cycles the module with nobody talking to it (GPIO0
// released on an ESP chip): it boots the firmware in flash.
func (s *Sim) BootApp() {
	if s.esp != nil {
		s.esp.PowerCycle(false)
		return
	}
	s.bk.PowerCycleToApp()
}

// PowerOff cuts the power until the next PowerCycle or BootApp; ok is
// false when the chip's simulator cannot be switched off (ESP: only its
// power-loss fault does).
func (s *Sim) PowerOff() (ok bool) {
	if s.esp != nil {
		return false
	}
	s.bk.PowerOff()
	return true
}

// Firmware is the simulated firmware (nil with SimConfig.NoNet).
func (s *Sim) Firmware() *appsim.Firmware { return s.fw }

// Addrs are the firmware's addresses (zero with SimConfig.NoNet).
func (s *Sim) Addrs() Addrs {
	if s.fw == nil {
		return Addrs{}
	}
	return Addrs{AP: s.fw.APAddr(), Station: s.fw.StationAddr(), API: s.fw.APIAddr(), Tuya: s.fw.TuyaAddr()}
}

// Beken is the Beken chip simulator (nil for an ESP chip).
func (s *Sim) Beken() *bksim.Device { return s.bk }

// ESP is the ESP chip simulator (nil for a Beken chip).
func (s *Sim) ESP() *espsim.Device { return s.esp }

// String names the simulated chip ("BK7231N").
func (s *Sim) String() string { return strings.ToUpper(s.spec.Chip) }

// savingApp is the firmware as the chip sees it (contract C1's App, and
// the address interfaces of the identification command): appsim's
// Firmware, handed a Flash whose writes call saved afterwards.
type savingApp struct {
	mu    sync.Mutex
	fw    *appsim.Firmware
	saved func()
}

func (a *savingApp) set(fw *appsim.Firmware) {
	a.mu.Lock()
	a.fw = fw
	a.mu.Unlock()
}

func (a *savingApp) firmware() *appsim.Firmware {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.fw
}

// Boot starts the firmware on a Flash that reports its writes.
func (a *savingApp) Boot(f appsim.Flash) {
	if fw := a.firmware(); fw != nil {
		fw.Boot(&savingFlash{Flash: f, saved: func() {
			if a.saved != nil {
				a.saved()
			}
		}})
	}
}

func (a *savingApp) Halt() {
	if fw := a.firmware(); fw != nil {
		fw.Halt()
	}
}

func (a *savingApp) Serial(in []byte) []byte {
	if fw := a.firmware(); fw != nil {
		return fw.Serial(in)
	}
	return nil
}

func (a *savingApp) NetAddr() string  { return a.addr((*appsim.Firmware).StationAddr) }
func (a *savingApp) APAddr() string   { return a.addr((*appsim.Firmware).APAddr) }
func (a *savingApp) APIAddr() string  { return a.addr((*appsim.Firmware).APIAddr) }
func (a *savingApp) TuyaAddr() string { return a.addr((*appsim.Firmware).TuyaAddr) }

func (a *savingApp) addr(f func(*appsim.Firmware) string) string {
	if fw := a.firmware(); fw != nil {
		return f(fw)
	}
	return ""
}

// savingFlash is the chip's Flash with a hook after each write.
type savingFlash struct {
	appsim.Flash
	saved func()
}

func (f *savingFlash) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.Flash.WriteAt(p, off)
	if err == nil {
		f.saved()
	}
	return n, err
}

// Reboot passes a firmware's software reset to the chip (both simulators'
// Rebooter).
func (f *savingFlash) Reboot() {
	if r, ok := f.Flash.(interface{ Reboot() }); ok {
		r.Reboot()
	}
}

// bekenMAC reads the MAC from the RF calibration (TLV) sector of a Beken
// flash, where the firmware reads it; zero when the sector holds none.
func bekenMAC(spec Spec, flash []byte) [6]byte {
	chip, err := bksim.ParseChip(spec.Chip)
	if err != nil {
		return [6]byte{}
	}
	off := bksim.RFOffset(chip)
	if off <= 0 || off+4096 > len(flash) {
		return [6]byte{}
	}
	m, _ := bk7231.ParseTLVMAC(flash[off : off+4096])
	return m
}
