package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tuyaflash/tuyaflash/chipdetect"
	bksim "github.com/tuyaflash/tuyaflash/devicesim/bk7231"
	espsim "github.com/tuyaflash/tuyaflash/devicesim/esp8266"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/flasher/bk7231"
	"github.com/tuyaflash/tuyaflash/flasher/esp8266"
	espstub "github.com/tuyaflash/tuyaflash/stub/esp8266"
	"github.com/tuyaflash/tuyaflash/transport"
	"github.com/tuyaflash/tuyaflash/ui"
)

// simAutoReset is how long the built-in virtual device waits, once the tool
// starts calling it, before "the user" power-cycles it.
const simAutoReset = 250 * time.Millisecond

// Default transfer rates per family.
const (
	defaultBekenBaud = bk7231.DefaultBaud
	defaultESPBaud   = 460800 // esptool's default once a stub runs
)

// session is an open port with the connected chip.
type session struct {
	port    transport.Port
	dev     flasher.Device
	family  flasher.Family
	simDone chan error
	cancel  context.CancelFunc
}

func (s *session) Close() {
	if s.port != nil {
		s.port.Close()
	}
	if s.cancel != nil {
		s.cancel()
		<-s.simDone
	}
}

// familyFlag parses --chip.
func familyFlag(s string) (flasher.Family, error) {
	switch strings.ToLower(s) {
	case "", "auto":
		return "", nil
	case "bk7231n":
		return flasher.BK7231N, nil
	case "bk7231t":
		return flasher.BK7231T, nil
	case "esp8266":
		return flasher.ESP8266, nil
	case "esp8285":
		return flasher.ESP8285, nil
	}
	return "", usagef("--chip %q: want auto, bk7231n, bk7231t, esp8266 or esp8285", s)
}

// newSim builds the virtual device of a "sim:<chip>[:<flash file>]" port.
func newSim(spec string) (serve func(context.Context, transport.Port) error, fam flasher.Family, err error) {
	chipName, file, _ := strings.Cut(spec, ":")
	var flash []byte
	if file != "" {
		if flash, err = os.ReadFile(file); err != nil {
			return nil, "", fmt.Errorf("virtual device flash image: %w", err)
		}
	}
	switch strings.ToLower(chipName) {
	case "bk7231n", "bk7231t":
		chip, _ := bksim.ParseChip(chipName)
		d, err := bksim.New(bksim.Config{Chip: chip, Flash: flash, AutoReset: simAutoReset})
		if err != nil {
			return nil, "", usagef("--port sim:%s: %v", spec, err)
		}
		fam = flasher.BK7231N
		if chip == bksim.BK7231T {
			fam = flasher.BK7231T
		}
		return func(ctx context.Context, l transport.Port) error { return d.Serve(ctx, l) }, fam, nil
	case "esp8266", "esp8285":
		chip, _ := espsim.ParseChip(chipName)
		d, err := espsim.New(espsim.Config{Chip: chip, Flash: flash, AutoReset: simAutoReset})
		if err != nil {
			return nil, "", usagef("--port sim:%s: %v", spec, err)
		}
		fam = flasher.ESP8266
		if chip == espsim.ESP8285 {
			fam = flasher.ESP8285
		}
		return func(ctx context.Context, l transport.Port) error { return d.Serve(ctx, l) }, fam, nil
	}
	return nil, "", usagef("--port sim:%s: unknown virtual device (sim:bk7231n, sim:bk7231t, sim:esp8266, sim:esp8285)", spec)
}

// openPort opens --port: a serial device, or the built-in virtual device
// "sim:<chip>[:<flash image>]" served in this process.
func (e *env) openPort() (*session, error) {
	spec := e.g.port
	if spec == "" {
		return nil, usagef("--port is required (e.g. --port /dev/ttyUSB0; 'tuyaflash ports' lists adapters; --port sim:bk7231n tries the virtual device)")
	}
	s := &session{}
	if rest, ok := strings.CutPrefix(spec, "sim:"); ok {
		serve, fam, err := newSim(rest)
		if err != nil {
			return nil, err
		}
		host, devEnd := transport.Pipe(transport.LinkOptions{})
		ctx, cancel := context.WithCancel(e.ctx)
		s.cancel, s.simDone = cancel, make(chan error, 1)
		go func() { s.simDone <- serve(ctx, devEnd) }()
		s.port, s.family = host, fam
	} else {
		p, err := transport.Open(spec, bk7231.LinkBaud)
		if err != nil {
			return nil, err
		}
		s.port = p
	}
	if e.g.trace {
		s.port = transport.Trace(s.port, e.stderr)
	}
	return s, nil
}

// connect opens the port and waits for the chip: the family --chip names,
// the virtual device's, or whichever answers the combined detect loop.
func (e *env) connect() (*session, error) {
	fam, err := familyFlag(e.g.chip)
	if err != nil {
		return nil, err
	}
	s, err := e.openPort()
	if err != nil {
		return nil, err
	}
	if fam == "" {
		fam = s.family
	}
	dev, err := e.connectFamily(s.port, fam)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.dev = dev
	s.family = dev.Info().Family
	return s, nil
}

func (e *env) connectFamily(p transport.Port, fam flasher.Family) (flasher.Device, error) {
	linked := false
	if fam == "" {
		var err error
		if fam, linked, err = e.findFamily(p); err != nil {
			return nil, err
		}
	}
	if fam.Beken() {
		opts := bk7231.Options{Baud: e.baudFor(fam), Events: e.events(), LinkTimeout: e.g.timeout, Linked: linked}
		if e.g.chip != "" && e.g.chip != "auto" {
			opts.Family = fam
		}
		return bk7231.Connect(e.ctx, p, opts)
	}
	opts := esp8266.Options{Baud: e.baudFor(fam), Events: e.events(), SyncWindow: e.g.timeout, Linked: linked, FindStub: !linked && !e.g.noStub}
	if e.g.reset == "classic" {
		opts.Reset = esp8266.ResetClassic
	}
	stub, err := e.espStub()
	if err != nil {
		return nil, err
	}
	opts.Stub = stub
	if stub == nil && e.g.baud == 0 {
		opts.Baud = 0 // the ROM stays at 115200; no need to say so
	}
	dev, err := esp8266.Connect(e.ctx, p, opts)
	if err != nil {
		return nil, err
	}
	if e.g.chip != "" && e.g.chip != "auto" && dev.Info().Family != fam {
		return nil, fmt.Errorf("--chip %s given, but the chip is a %s: %w", fam, dev.Info().Family, flasher.ErrRefused)
	}
	return dev, nil
}

// findFamily finds out which family is on p when --chip does not say: a
// chip left in download mode at a fast rate by an earlier session first
// (no power-cycle needed), then the combined BK/ESP loop at 115200. linked
// reports that the chip has just answered at 115200.
func (e *env) findFamily(p transport.Port) (fam flasher.Family, linked bool, err error) {
	if bk7231.FindLinked(p, e.baudFor(flasher.BK7231N)) != 0 {
		return flasher.BK7231N, false, nil // T or N: identification tells
	}
	if !e.g.noStub && esp8266.FindStub(p, e.baudFor(flasher.ESP8266)) != 0 {
		return flasher.ESP8266, false, nil
	}
	kind, err := chipdetect.Wait(e.ctx, p, e.g.timeout, e.events())
	if err != nil {
		return "", false, err
	}
	e.events().Emit(flasher.Note, kind.String()+" answered")
	if kind == chipdetect.Espressif {
		return flasher.ESP8266, true, nil
	}
	return flasher.BK7231N, true, nil
}

// espStub loads the flasher stub: --stub FILE, none with --no-stub, else
// tuyaflash's own.
func (e *env) espStub() (*esp8266.Stub, error) {
	switch {
	case e.g.noStub:
		return nil, nil
	case e.g.stub != "":
		f, err := os.Open(e.g.stub)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		st, err := esp8266.LoadStub(f)
		if err != nil {
			return nil, fmt.Errorf("--stub %s: %w", e.g.stub, err)
		}
		return st, nil
	}
	st, err := esp8266.LoadStub(bytes.NewReader(espstub.JSON()))
	if err != nil {
		return nil, fmt.Errorf("tuyaflash's own stub: %w", err)
	}
	return st, nil
}

// baudFor is --baud, or the family's default.
func (e *env) baudFor(fam flasher.Family) int {
	if e.g.baud != 0 {
		return e.g.baud
	}
	if fam.Espressif() {
		return defaultESPBaud
	}
	return defaultBekenBaud
}

func (e *env) progress() flasher.Progress {
	if e.g.json && !ui.IsTerminal(e.stderr) {
		return flasher.NopProgress{}
	}
	return ui.NewProgress(e.stderr, e.g.verbose > 0)
}

func (e *env) events() flasher.Notify { return ui.Events(e.stderr, e.g.verbose > 0) }
