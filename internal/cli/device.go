package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/flasher/bk7231"
	"github.com/tuyaflash/tuyaflash/flasher/esp8266"
	"github.com/tuyaflash/tuyaflash/internal/session"
	"github.com/tuyaflash/tuyaflash/internal/virtual"
	"github.com/tuyaflash/tuyaflash/ui"
)

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

// simNames lists the virtual devices' chip names for messages, from the
// simulators' profile tables.
func simNames() []string { return virtual.Chips() }

// simSpec parses a sim: port; ok is false for any other port.
func simSpec(port string) (spec virtual.Spec, ok bool, err error) {
	if !virtual.IsSpec(port) {
		return virtual.Spec{}, false, nil
	}
	spec, err = virtual.ParseSpec(port)
	if err != nil {
		return spec, true, usagef("--port %v", err)
	}
	return spec, true, nil
}

// knownFamily is the chip family known before connecting: --chip, or the
// built-in virtual device's; "" when only the chip can tell. It may be
// BK7231M, which firmware.PrecheckInfo and detectedFamily understand.
func (e *env) knownFamily() flasher.Family {
	if fam, err := familyFlag(e.g.chip); err == nil && fam != "" {
		return fam
	}
	if spec, ok, err := simSpec(e.g.port); ok && err == nil {
		return spec.Family
	}
	return ""
}

// requirePort checks --port before anything else happens.
func (e *env) requirePort() error {
	if e.g.port == "" {
		return usagef("--port is required (e.g. --port /dev/ttyUSB0; 'tuyaflash ports' lists adapters; --port sim:bk7231n tries the virtual device)")
	}
	spec, ok, err := simSpec(e.g.port)
	if err != nil {
		return err
	}
	if ok && spec.File != "" {
		if _, err := os.Stat(spec.File); err != nil {
			return fmt.Errorf("virtual device flash image: %w", err)
		}
	}
	return nil
}

// detectedFamily is the family detection reports for a chip named fam
// (the chip table's: BK7231N for a BK7231M); "" stays "".
func detectedFamily(fam flasher.Family) flasher.Family {
	if row, ok := bk7231.LookupChip(string(fam)); ok && row.Family != "" {
		return row.Family
	}
	return fam
}

// sessionOptions are the device flags as a session's options; trace
// output (--trace, -vv) goes to w.
func (g *globals) sessionOptions(w io.Writer) (session.Options, error) {
	fam, err := familyFlag(g.chip)
	if err != nil {
		return session.Options{}, err
	}
	vo, err := virtual.OptionsFromEnv()
	if err != nil {
		return session.Options{}, err
	}
	o := session.Options{Port: g.port, Baud: g.baud, Chip: fam, Timeout: g.timeout, NoStub: g.noStub, Virtual: vo}
	if g.reset == "classic" {
		o.Reset = esp8266.ResetClassic
	}
	if g.stub != "" && !fam.Beken() {
		if spec, ok, _ := simSpec(g.port); !ok || !spec.Family.Beken() {
			if o.Stub, err = session.LoadStub(g.stub); err != nil {
				return o, err
			}
		}
	}
	switch {
	case g.trace:
		o.Trace = w
	case g.verbose >= 2:
		o.Summary = w
	}
	return o, nil
}

// openPort opens --port: a serial device, or a virtual device served in
// this process. From here on an interruption closes the port, which
// unblocks any read.
func (e *env) openPort() (*session.Session, error) {
	if err := e.requirePort(); err != nil {
		return nil, err
	}
	o, err := e.g.sessionOptions(e.stderr)
	if err != nil {
		return nil, err
	}
	o.Notify, o.AskVirtual = e.events(), e.askVirtual
	s, err := session.Open(e.ctx, o)
	var ue *session.UsageError
	if errors.As(err, &ue) {
		return nil, usagef("%s", ue.Msg)
	}
	return s, err
}

// connect opens the port and waits for the chip: the family --chip names,
// the virtual device's, or whichever answers the combined detect loop.
func (e *env) connect() (*session.Session, error) {
	s, err := e.openPort()
	if err != nil {
		return nil, err
	}
	e.setState("interrupted while waiting for the chip: nothing was read or written")
	if err := s.Connect(e.ctx); err != nil {
		s.Close()
		return nil, err
	}
	e.setState("the chip is still in download mode; nothing was written")
	return s, nil
}

// baudValue is --baud: a rate, or "max" (session.BaudMax).
type baudValue struct{ v *int }

func (b baudValue) String() string {
	switch {
	case b.v == nil || *b.v == 0:
		return ""
	case *b.v == session.BaudMax:
		return "max"
	}
	return strconv.Itoa(*b.v)
}

func (b baudValue) Set(s string) error {
	if strings.EqualFold(s, "max") {
		*b.v = session.BaudMax
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("not a rate: %q (a number such as 921600, or max)", s)
	}
	*b.v = n
	return nil
}

func (b baudValue) Type() string { return "rate" }

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
