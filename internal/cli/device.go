package cli

import (
	"bytes"
	"context"
	"errors"
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

// connectSlack is how much longer than --timeout connecting may take
// (identification, stub upload, baud change) before tuyaflash gives up on
// a chip that stopped answering in the middle of it.
const connectSlack = 30 * time.Second

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
	virtual bool
	simDone chan error
	cancel  context.CancelFunc
	// unwatch detaches the close-on-interrupt watch.
	unwatch func() bool
}

func (s *session) Close() {
	if s.unwatch != nil {
		s.unwatch()
	}
	if s.port != nil {
		s.port.Close()
	}
	if s.cancel != nil {
		s.cancel()
		<-s.simDone
	}
}

// familyFlag parses --chip: auto (or nothing), or any chip family
// (flasher.ParseFamily: bk7231n, bk7231t, bk7231m, bk7238, bk7231u, bk7252,
// bk7252n, esp8266, esp8285, in any case). bk7231m names a BK7231N with an
// all-zero eFuse key: the Beken client refuses a chip with another key.
func familyFlag(s string) (flasher.Family, error) {
	if s == "" || strings.EqualFold(s, "auto") {
		return "", nil
	}
	if fam, ok := flasher.ParseFamily(s); ok {
		return fam, nil
	}
	return "", usagef("--chip %q: want auto, %s", s, familyNames())
}

// familyNames lists --chip's values, lower case, for messages.
func familyNames() string {
	var names []string
	for _, f := range flasher.Families {
		names = append(names, strings.ToLower(string(f)))
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// simChip splits a "sim:<chip>[:<flash file>]" port.
func simChip(port string) (chip, file string, ok bool) {
	rest, ok := strings.CutPrefix(port, "sim:")
	if !ok {
		return "", "", false
	}
	chip, file, _ = strings.Cut(rest, ":")
	return strings.ToLower(chip), file, true
}

// simFamily maps a virtual device's chip name (sim:NAME, tuyaflash sim
// --chip NAME) to the family it simulates, from the simulators' own
// profile tables: every name their ParseChip accepts (bk7238 and its alias
// t1, bk7252n and t4 …). sim:bk7231m simulates a BK7231M: Family BK7231M,
// which the client reports as a zero-key BK7231N.
func simFamily(name string) (flasher.Family, bool) {
	if c, err := bksim.ParseChip(name); err == nil {
		return flasher.ParseFamily(c.String())
	}
	if c, err := espsim.ParseChip(name); err == nil {
		return flasher.ParseFamily(c.String())
	}
	return "", false
}

// simNames lists the virtual devices' chip names for messages, from the
// simulators' profile tables.
func simNames() []string {
	var names []string
	for _, c := range bksim.Chips() {
		names = append(names, strings.ToLower(c.String()))
	}
	for _, c := range espsim.Chips() {
		names = append(names, strings.ToLower(c.String()))
	}
	return names
}

// unknownSim refuses a sim: port whose chip no simulator has.
func unknownSim(port string) error {
	var ports []string
	for _, n := range simNames() {
		ports = append(ports, "sim:"+n)
	}
	return usagef("--port %s: unknown virtual device (%s; sim:CHIP:FILE loads the flash from FILE)", port, strings.Join(ports, ", "))
}

// knownFamily is the chip family known before connecting: --chip, or the
// built-in virtual device's; "" when only the chip can tell. It may be
// BK7231M, which firmware.PrecheckInfo and detectedFamily understand.
func (e *env) knownFamily() flasher.Family {
	if fam, err := familyFlag(e.g.chip); err == nil && fam != "" {
		return fam
	}
	if chip, _, ok := simChip(e.g.port); ok {
		fam, _ := simFamily(chip)
		return fam
	}
	return ""
}

// detectedFamily is the family detection reports for a chip named fam
// (the chip table's: BK7231N for a BK7231M); "" stays "".
func detectedFamily(fam flasher.Family) flasher.Family {
	if row, ok := bk7231.LookupChip(string(fam)); ok && row.Family != "" {
		return row.Family
	}
	return fam
}

// newSim builds the virtual device of a "sim:<chip>[:<flash file>]" port.
func newSim(port string) (serve func(context.Context, transport.Port) error, fam flasher.Family, err error) {
	chipName, file, _ := simChip(port)
	var flash []byte
	if file != "" {
		if flash, err = os.ReadFile(file); err != nil {
			return nil, "", fmt.Errorf("virtual device flash image: %w", err)
		}
	}
	fam, ok := simFamily(chipName)
	if !ok {
		return nil, "", unknownSim(port)
	}
	if fam.Beken() {
		chip, _ := bksim.ParseChip(chipName)
		d, err := bksim.New(bksim.Config{Chip: chip, Flash: flash, AutoReset: simAutoReset})
		if err != nil {
			return nil, "", usagef("--port %s: %v", port, err)
		}
		return func(ctx context.Context, l transport.Port) error { return d.Serve(ctx, l) }, fam, nil
	}
	chip, _ := espsim.ParseChip(chipName)
	d, err := espsim.New(espsim.Config{Chip: chip, Flash: flash, AutoReset: simAutoReset})
	if err != nil {
		return nil, "", usagef("--port %s: %v", port, err)
	}
	return func(ctx context.Context, l transport.Port) error { return d.Serve(ctx, l) }, fam, nil
}

// requirePort checks --port before anything else happens.
func (e *env) requirePort() error {
	if e.g.port == "" {
		return usagef("--port is required (e.g. --port /dev/ttyUSB0; 'tuyaflash ports' lists adapters; --port sim:bk7231n tries the virtual device)")
	}
	if chip, file, ok := simChip(e.g.port); ok {
		if _, known := simFamily(chip); !known {
			return unknownSim(e.g.port)
		}
		if file != "" {
			if _, err := os.Stat(file); err != nil {
				return fmt.Errorf("virtual device flash image: %w", err)
			}
		}
	}
	return nil
}

// openPort opens --port: a serial device, or the built-in virtual device
// "sim:<chip>[:<flash image>]" served in this process. From here on an
// interruption closes the port, which unblocks any read.
func (e *env) openPort(baud int) (*session, error) {
	if err := e.requirePort(); err != nil {
		return nil, err
	}
	spec := e.g.port
	s := &session{}
	if _, _, ok := simChip(spec); ok {
		serve, fam, err := newSim(spec)
		if err != nil {
			return nil, err
		}
		host, devEnd := transport.Pipe(transport.LinkOptions{})
		ctx, cancel := context.WithCancel(e.ctx)
		s.cancel, s.simDone = cancel, make(chan error, 1)
		go func() { s.simDone <- serve(ctx, devEnd) }()
		s.port, s.family, s.virtual = host, fam, true
	} else {
		p, err := transport.Open(spec, baud)
		if err != nil {
			return nil, err
		}
		s.port = p
	}
	s.unwatch = closeOnDone(e.ctx, s.port)
	switch {
	case e.g.trace:
		s.port = transport.Trace(s.port, e.stderr)
	case e.g.verbose >= 2:
		s.port = summarize(s.port, e.stderr)
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
	if err := e.checkStub(); err != nil {
		return nil, err
	}
	s, err := e.openPort(bk7231.LinkBaud)
	if err != nil {
		return nil, err
	}
	if fam == "" {
		fam = s.family
	}
	e.setState("interrupted while waiting for the chip: nothing was read or written")
	ctx, cancel := context.WithTimeout(e.ctx, e.g.timeout+connectSlack)
	defer cancel()
	stop := closeOnDone(ctx, s.port)
	dev, err := e.connectFamily(ctx, s.port, fam)
	stop()
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		s.Close()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && e.ctx.Err() == nil {
			return nil, &flasher.HintError{
				Err:  fmt.Errorf("the chip stopped answering while tuyaflash connected to it (%v): %w", err, flasher.ErrNoLink),
				Hint: "power-cycle the module and run the command again; check the wiring and the 3.3 V supply if it happens again",
			}
		}
		return nil, err
	}
	s.dev = dev
	s.family = dev.Info().Family
	e.setState("the chip is still in download mode; nothing was written")
	return s, nil
}

func (e *env) connectFamily(ctx context.Context, p transport.Port, fam flasher.Family) (flasher.Device, error) {
	linked := false
	if fam == "" {
		var err error
		if fam, linked, err = e.findFamily(ctx, p); err != nil {
			return nil, err
		}
	}
	if fam.Beken() {
		opts := bk7231.Options{Baud: e.baudFor(fam), Events: e.events(), LinkTimeout: e.g.timeout, Linked: linked}
		if e.g.chip != "" && e.g.chip != "auto" {
			opts.Family = fam
		}
		return bk7231.Connect(ctx, p, opts)
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
	if stub != nil && e.g.stub == "" {
		// tuyaflash's own stub goes up behind its loader, at the session's rate.
		if opts.Loader, err = esp8266.LoadStub(bytes.NewReader(espstub.LoaderJSON())); err != nil {
			return nil, fmt.Errorf("tuyaflash's loader: %w", err)
		}
	}
	if stub == nil && e.g.baud == 0 {
		opts.Baud = 0 // the ROM stays at 115200; no need to say so
	}
	dev, err := esp8266.Connect(ctx, p, opts)
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
func (e *env) findFamily(ctx context.Context, p transport.Port) (fam flasher.Family, linked bool, err error) {
	if bk7231.FindLinked(p, e.baudFor(flasher.BK7231N)) != 0 {
		return flasher.BK7231N, false, nil // T or N: identification tells
	}
	if ctx.Err() != nil {
		return "", false, ctx.Err()
	}
	if !e.g.noStub && esp8266.FindStub(p, e.baudFor(flasher.ESP8266)) != 0 {
		return flasher.ESP8266, false, nil
	}
	kind, err := chipdetect.Wait(ctx, p, e.g.timeout, e.events())
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

// checkStub loads --stub before the port is opened, so that a bad file
// fails before the power-cycle prompt.
func (e *env) checkStub() error {
	if e.g.stub == "" || e.knownFamily().Beken() {
		return nil
	}
	_, err := e.espStub()
	return err
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

// progress reports transfers on stderr: a bar on a terminal, lines every
// few seconds otherwise (none with --json unless -v); it also remembers
// where a transfer stands for an interruption's message.
func (e *env) progress() flasher.Progress {
	if e.progressTo != nil {
		e.track.show(e.progressTo)
		return e.track
	}
	tty := e.terminal(e.stderr)
	e.track.show(ui.NewProgress(e.stderr, ui.ProgressOptions{Terminal: tty, Quiet: e.g.json && e.g.verbose == 0}))
	return e.track
}

func (e *env) events() flasher.Notify {
	if e.notifyTo != nil {
		return e.notifyTo
	}
	return ui.Events(e.stderr, e.g.verbose > 0)
}
