package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	bksim "github.com/tuyaflash/tuyaflash/devicesim/bk7231"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/flasher/bk7231"
	"github.com/tuyaflash/tuyaflash/transport"
	"github.com/tuyaflash/tuyaflash/ui"
)

// simAutoReset is how long the built-in virtual device waits, once link
// checks arrive, before "the user" power-cycles it.
const simAutoReset = 250 * time.Millisecond

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
	}
	return "", usagef("--chip %q: want auto, bk7231n or bk7231t", s)
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
		chipName, file, _ := strings.Cut(rest, ":")
		chip, err := bksim.ParseChip(chipName)
		if err != nil {
			return nil, usagef("--port %s: %v (virtual devices: sim:bk7231n, sim:bk7231t)", spec, err)
		}
		cfg := bksim.Config{Chip: chip, AutoReset: simAutoReset}
		if file != "" {
			data, err := os.ReadFile(file)
			if err != nil {
				return nil, fmt.Errorf("virtual device flash image: %w", err)
			}
			cfg.Flash = data
		}
		dev, err := bksim.New(cfg)
		if err != nil {
			return nil, usagef("--port %s: %v", spec, err)
		}
		host, devEnd := transport.Pipe(transport.LinkOptions{})
		ctx, cancel := context.WithCancel(e.ctx)
		s.cancel, s.simDone = cancel, make(chan error, 1)
		go func() { s.simDone <- dev.Serve(ctx, devEnd) }()
		s.port = host
		if chip == bksim.BK7231T {
			s.family = flasher.BK7231T
		} else {
			s.family = flasher.BK7231N
		}
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

// connect opens the port and waits for the chip.
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
	dev, err := bk7231.Connect(e.ctx, s.port, bk7231.Options{Baud: e.g.baud, Events: e.events(), Family: fam, LinkTimeout: e.g.timeout})
	if err != nil {
		s.Close()
		return nil, err
	}
	s.dev = dev
	s.family = dev.Info().Family
	return s, nil
}

func (e *env) progress() flasher.Progress {
	if e.g.json && !ui.IsTerminal(e.stderr) {
		return flasher.NopProgress{}
	}
	return ui.NewProgress(e.stderr, e.g.verbose > 0)
}

func (e *env) events() flasher.Notify { return ui.Events(e.stderr, e.g.verbose > 0) }
