// Package session turns a port spec into an open, locked, cancellable link
// with a connected chip: a real serial port (transport.Open: exclusive
// lock, the FTDI latency timer lowered), or one of tuyaflash's virtual
// devices served in this process ("sim:CHIP[:FLASHFILE][#NAME]", package
// internal/virtual); then the chip in download mode — the family --chip
// names, the virtual device's, or whichever answers the combined BK/ESP
// detect loop — with the ESP8266 flasher stub chosen. Every command of the
// command line, migrate's connector and the web UI go through it.
//
// The package never prints: instructions, warnings and notes go to
// Options.Notify.
package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tuyaflash/tuyaflash/chipdetect"
	"github.com/tuyaflash/tuyaflash/devicesim/appsim"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/flasher/bk7231"
	"github.com/tuyaflash/tuyaflash/flasher/esp8266"
	"github.com/tuyaflash/tuyaflash/internal/virtual"
	espstub "github.com/tuyaflash/tuyaflash/stub/esp8266"
	"github.com/tuyaflash/tuyaflash/transport"
)

// BaudMax, as Options.Baud, asks for the fastest rate the adapter and the
// chip hold: on Beken chips the client probes up to 2 Mbaud
// (bk7231.BaudMax); on ESP8266 it is ESPMaxBaud.
const BaudMax = bk7231.BaudMax

// ESPMaxBaud is what BaudMax means on an ESP8266: the highest rate
// tuyaflash's stub is switched to.
const ESPMaxBaud = 921600

// Default transfer rates per family.
const (
	DefaultBekenBaud = bk7231.DefaultBaud
	DefaultESPBaud   = 460800 // esptool's default once a stub runs
)

// DefaultTimeout is how long Connect waits for the chip by default.
const DefaultTimeout = 30 * time.Second

// connectSlack is how much longer than Timeout connecting may take
// (identification, stub upload, baud change) before tuyaflash gives up on
// a chip that stopped answering in the middle of it.
const connectSlack = 30 * time.Second

// Options say what to open and how to connect.
type Options struct {
	// Port is a serial device (/dev/ttyUSB0, COM3, a pseudo-terminal)
	// or a virtual device sim:CHIP[:FLASHFILE][#NAME].
	Port string
	// Baud is the transfer rate after link-up: 0 the family's default
	// (DefaultBekenBaud, DefaultESPBaud with a stub), BaudMax the fastest.
	Baud int
	// Chip is the family the user names; "" finds out.
	Chip flasher.Family
	// Timeout bounds the wait for the chip after the power-cycle prompt
	// (0: DefaultTimeout).
	Timeout time.Duration
	// Reset is how an ESP8266 enters its loader.
	Reset esp8266.ResetMode
	// Stub is the ESP8266 flasher stub (nil: tuyaflash's own, see
	// LoadStub); NoStub stays with the ROM loader.
	Stub   *esp8266.Stub
	NoStub bool
	// AskVirtual asks the chip whether it is a virtual device (contract
	// C2) even on a port that does not suggest one: a demo image is to be
	// written. Virtual devices, pseudo-terminals and unknown bootloaders
	// are asked anyway.
	AskVirtual bool
	// Trace, when set, gets a hex dump of all serial traffic; Summary a
	// line per command and reply (ignored with Trace).
	Trace, Summary io.Writer
	// Notify hears instructions for the user (power-cycle now), warnings
	// and notes.
	Notify flasher.Notify
	// Virtual says how sim: ports run; the zero value is a user's
	// virtual device: paced, behind a CH340 model, kept in the data
	// folder. virtual.OptionsFromEnv reads the environment's choices
	// (TUYAFLASH_SIM_UNPACED, TUYAFLASH_SIM_ADAPTER).
	Virtual virtual.Options
}

// Session is an open port, and once connected the chip on it.
type Session struct {
	// Port is the open port (wrapped for tracing as asked).
	Port transport.Port
	// Device is the connected chip; nil until Connect.
	Device flasher.Device
	// Family is the chip's family: known before connecting for a virtual
	// device, else after Connect.
	Family flasher.Family
	// Virtual is set for a virtual device: one served in this process
	// (sim: port), or a simulator that identified itself (contract C2).
	Virtual *VirtualInfo

	opts    Options
	raw     transport.Port
	vdev    *virtual.Device
	unwatch func() bool
	forget  func()
	once    sync.Once
	err     error
}

// VirtualInfo describes a virtual device.
type VirtualInfo struct {
	// Port names it: the sim: spec, or the serial port it answered on.
	Port string
	// Sim is the simulator ("bksim", "espsim") and Chip what it simulates.
	Sim, Chip string
	// Addrs are where the firmware's network side appears.
	Addrs virtual.Addrs
	// InProcess: the device runs in this process (a sim: port); Device
	// gives it.
	InProcess bool
	// Device is the in-process device (nil otherwise).
	Device *virtual.Device
}

// MAC is an in-process device's MAC as its chip reports it; "" otherwise.
func (v *VirtualInfo) MAC() string {
	if v == nil || v.Device == nil {
		return ""
	}
	if m := v.Device.MAC(); m != (flasher.MAC{}) {
		return m.String()
	}
	return ""
}

// Open opens o.Port, locked against other programs and other sessions,
// and closes it when ctx ends (unblocking any read). A virtual device is
// started in this process. The chip is not touched yet.
func Open(ctx context.Context, o Options) (*Session, error) {
	if o.Port == "" {
		return nil, errors.New("session: no port")
	}
	s := &Session{opts: o}
	if virtual.IsSpec(o.Port) {
		spec, err := virtual.ParseSpec(o.Port)
		if err != nil {
			return nil, &UsageError{Msg: "--port " + err.Error()}
		}
		d, err := virtual.Open(spec, o.Virtual)
		if err != nil {
			return nil, err
		}
		s.vdev, s.raw, s.Family = d, d.Host, spec.Family
		s.Virtual = &VirtualInfo{Port: spec.String(), Chip: strings.ToUpper(spec.Chip), Addrs: d.Addrs(), InProcess: true, Device: d}
		// An interruption saves the flash at once, in case the command
		// does not get to return.
		stop := context.AfterFunc(ctx, func() { _ = d.Save() })
		s.forget = func() { stop() }
	} else {
		p, err := transport.Open(o.Port, bk7231.LinkBaud)
		if err != nil {
			return nil, err
		}
		s.raw = p
		latencyNote(o.Port, transport.Latency(p), o.Notify)
	}
	s.unwatch = transport.CloseOnDone(ctx, s.raw)
	s.Port = s.raw
	switch {
	case o.Trace != nil:
		s.Port = transport.Trace(s.raw, o.Trace)
	case o.Summary != nil:
		s.Port = summarize(s.raw, o.Summary)
	}
	return s, nil
}

// latencyNote tells about the adapter's latency timer: lowered for this
// session (FTDI on Linux), or left high with the reason and what would
// lower it.
func latencyNote(port string, li transport.LatencyInfo, n flasher.Notify) {
	switch {
	case li.Lowered:
		n.Emit(flasher.Note, fmt.Sprintf("%s: the adapter's latency timer is at %v for this session (ASYNC_LOW_LATENCY)", port, li.Timer))
	case li.Driver == "ftdi_sio" && li.Known && li.Timer > time.Millisecond:
		dev := filepath.Base(port)
		if r, err := filepath.EvalSymlinks(port); err == nil {
			dev = filepath.Base(r)
		}
		n.Emit(flasher.Warning, fmt.Sprintf("%s: the FTDI adapter's latency timer is %v and could not be lowered (%s): every reply waits up to that long, so transfers take about a third longer; to lower it (as root): echo 1 > /sys/bus/usb-serial/devices/%s/latency_timer",
			port, li.Timer, li.Reason, dev))
	}
}

// Connect opens o.Port and connects to the chip (Open, then
// Session.Connect); on failure nothing stays open.
func Connect(ctx context.Context, o Options) (*Session, error) {
	s, err := Open(ctx, o)
	if err != nil {
		return nil, err
	}
	if err := s.Connect(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Connect waits for the chip and connects: the family Options.Chip names,
// the virtual device's, or whichever answers the combined detect loop.
// The chip is left in download mode, identified, at the transfer rate.
func (s *Session) Connect(ctx context.Context) error {
	o := s.opts
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	fam := o.Chip
	if fam == "" {
		fam = s.Family
	}
	cctx, cancel := context.WithTimeout(ctx, o.Timeout+connectSlack)
	defer cancel()
	stop := transport.CloseOnDone(cctx, s.raw)
	dev, err := s.connectFamily(cctx, o, fam)
	stop()
	if err == nil && cctx.Err() != nil {
		err = cctx.Err()
	}
	if err != nil {
		if errors.Is(cctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			return &flasher.HintError{
				Err:  fmt.Errorf("the chip stopped answering while tuyaflash connected to it (%v): %w", err, flasher.ErrNoLink),
				Hint: "power-cycle the module and run the command again; check the wiring and the 3.3 V supply if it happens again",
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	s.Device = dev
	info := dev.Info()
	s.Family = info.Family
	if v := info.Virtual; v != nil {
		if s.Virtual == nil {
			s.Virtual = &VirtualInfo{Port: o.Port, Addrs: virtual.Addrs{AP: v.AP, Station: v.Net, API: v.API, Tuya: v.Tuya}}
			s.forget = virtual.Learn(v)
		}
		s.Virtual.Sim, s.Virtual.Chip = v.Sim, v.Chip
	}
	return nil
}

// askVirtual reports whether to ask the chip if it is a virtual device:
// on request, on a virtual device, on a pseudo-terminal (where simulators
// are served).
func (s *Session) askVirtual(o Options) bool {
	if o.AskVirtual || s.vdev != nil {
		return true
	}
	p := o.Port
	if r, err := filepath.EvalSymlinks(p); err == nil {
		p = r
	}
	return strings.HasPrefix(p, "/dev/pts/")
}

func (s *Session) connectFamily(ctx context.Context, o Options, fam flasher.Family) (flasher.Device, error) {
	p := s.Port
	linked := false
	if fam == "" {
		var err error
		if fam, linked, err = s.findFamily(ctx, o); err != nil {
			return nil, err
		}
	}
	ask := s.askVirtual(o)
	if fam.Beken() {
		bo := bk7231.Options{Baud: baudFor(o, fam), Events: o.Notify, LinkTimeout: o.Timeout, Linked: linked, AskVirtual: ask}
		if o.Chip != "" || s.vdev != nil {
			bo.Family = fam // named by the user, or by the sim: port
		}
		return bk7231.Connect(ctx, p, bo)
	}
	eo := esp8266.Options{Baud: baudFor(o, fam), Events: o.Notify, SyncWindow: o.Timeout, Linked: linked, FindStub: !linked && !o.NoStub, Reset: o.Reset, AskVirtual: ask}
	if !o.NoStub {
		eo.Stub = o.Stub
		if eo.Stub == nil {
			st, err := LoadStub("")
			if err != nil {
				return nil, err
			}
			eo.Stub = st
			// tuyaflash's own stub goes up behind its loader, at the
			// session's rate.
			if eo.Loader, err = esp8266.LoadStub(bytes.NewReader(espstub.LoaderJSON())); err != nil {
				return nil, fmt.Errorf("tuyaflash's loader: %w", err)
			}
		}
	}
	switch {
	case eo.Stub == nil && o.Baud == 0:
		eo.Baud = 0 // the ROM stays at 115200; no need to say so
	case o.Baud == BaudMax:
		o.Notify.Emit(flasher.Note, fmt.Sprintf("--baud max on an ESP8266: %d, the fastest rate tuyaflash switches its stub to", ESPMaxBaud))
	}
	dev, err := esp8266.Connect(ctx, p, eo)
	if err != nil {
		return nil, err
	}
	if o.Chip != "" && dev.Info().Family != fam {
		return nil, fmt.Errorf("--chip %s given, but the chip is a %s: %w", fam, dev.Info().Family, flasher.ErrRefused)
	}
	return dev, nil
}

// findFamily finds out which family is on the port when nothing says: a
// chip left in download mode at a fast rate by an earlier session first
// (no power-cycle needed), then the combined BK/ESP loop at 115200. linked
// reports that the chip has just answered at 115200.
func (s *Session) findFamily(ctx context.Context, o Options) (fam flasher.Family, linked bool, err error) {
	p := s.Port
	if bk7231.FindLinked(p, baudFor(o, flasher.BK7231N)) != 0 {
		return flasher.BK7231N, false, nil // T or N: identification tells
	}
	if ctx.Err() != nil {
		return "", false, ctx.Err()
	}
	if !o.NoStub && esp8266.FindStub(p, baudFor(o, flasher.ESP8266)) != 0 {
		return flasher.ESP8266, false, nil
	}
	kind, err := chipdetect.Wait(ctx, p, o.Timeout, o.Notify)
	if err != nil {
		return "", false, err
	}
	o.Notify.Emit(flasher.Note, kind.String()+" answered")
	if kind == chipdetect.Espressif {
		return flasher.ESP8266, true, nil
	}
	return flasher.BK7231N, true, nil
}

// baudFor is Options.Baud for a family: the family's default for 0, the
// fastest for BaudMax.
func baudFor(o Options, fam flasher.Family) int {
	switch {
	case o.Baud == BaudMax && fam.Espressif():
		return ESPMaxBaud
	case o.Baud != 0:
		return o.Baud
	case fam.Espressif():
		return DefaultESPBaud
	}
	return DefaultBekenBaud
}

// LoadStub loads an ESP8266 flasher stub in esptool's JSON layout from
// path; "" is tuyaflash's own.
func LoadStub(path string) (*esp8266.Stub, error) {
	if path == "" {
		st, err := esp8266.LoadStub(bytes.NewReader(espstub.JSON()))
		if err != nil {
			return nil, fmt.Errorf("tuyaflash's own stub: %w", err)
		}
		return st, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := esp8266.LoadStub(f)
	if err != nil {
		return nil, fmt.Errorf("--stub %s: %w", path, err)
	}
	return st, nil
}

// BootApp starts the firmware of an in-process virtual device (a power
// cycle with nobody talking to it; GPIO0 released on an ESP8266), for the
// commands that talk to the firmware rather than the loader (verify,
// provision). It fails for other ports: a real device is power-cycled by
// its user.
func (s *Session) BootApp() error {
	if s.vdev == nil {
		return fmt.Errorf("%s is not a virtual device of this process: %w", s.opts.Port, flasher.ErrUnsupported)
	}
	s.vdev.Sim.BootApp()
	return nil
}

// Close ends the session: the port is closed and a virtual device saved
// and released. It returns the save's error.
func (s *Session) Close() error {
	s.once.Do(func() {
		if s.unwatch != nil {
			s.unwatch()
		}
		if s.raw != nil {
			s.raw.Close()
		}
		if s.forget != nil {
			s.forget()
		}
		if s.vdev != nil {
			s.err = s.vdev.Close()
		}
	})
	return s.err
}

// UsageError is a port spec that cannot be right (the command line's exit
// code 2).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// WaitApp waits until the firmware of an in-process virtual device shows
// what ok looks for (its access point up, the image it runs known), polling
// its status, and returns that status; it gives up at ctx's end or after
// timeout.
func (s *Session) WaitApp(ctx context.Context, timeout time.Duration, ok func(appsim.Status) bool) (appsim.Status, error) {
	if s.vdev == nil || s.vdev.Sim.Firmware() == nil {
		return appsim.Status{}, fmt.Errorf("%s has no simulated firmware in this process: %w", s.opts.Port, flasher.ErrUnsupported)
	}
	fw := s.vdev.Sim.Firmware()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	end := time.After(timeout)
	for {
		st := fw.Status()
		if ok(st) {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-end:
			return st, fmt.Errorf("the virtual device's firmware did not get there within %v (it runs %s): %w", timeout, describeImage(st), flasher.ErrNoLink)
		case <-t.C:
		}
	}
}

// describeImage says what a simulated firmware runs.
func describeImage(st appsim.Status) string {
	switch {
	case !st.Running:
		return "nothing (the chip is not running its firmware)"
	case st.Image.Kind == "":
		return "a firmware that is still starting"
	case st.Image.Version != "":
		return fmt.Sprintf("%s %s", st.Image.Kind, st.Image.Version)
	}
	return fmt.Sprintf("%s (%s)", st.Image.Kind, st.Image.Evidence)
}
