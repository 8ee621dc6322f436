// Package cli implements the tuyaflash command line: flag parsing, port
// opening, running the jobs of package ops and rendering their results. It
// is the only package that prints.
//
// Data flows one way: flags → plan (everything checkable without the
// device) → connect → back up → write → verify → reboot → HTTP check →
// export. Every command prints text on stdout, or with --json exactly one
// JSON document (docs/json.md); messages, prompts and progress go to
// stderr; the exit code follows one table (exitTable).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/internal/safefile"
)

// Version is the tool version, set at build time with
// -ldflags "-X github.com/tuyaflash/tuyaflash/internal/cli.Version=v1.2.3";
// otherwise taken from the build info.
var Version = ""

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
		rev, dirty := "", ""
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "+dirty"
				}
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			return "dev-" + rev + dirty
		}
	}
	return "dev"
}

// env is what a command runs with.
type env struct {
	ctx context.Context
	// stdin is where prompts read from.
	stdin io.Reader
	// stdout takes the command's text output; under --json it discards
	// it, and the one JSON document goes to jsonOut at the end.
	stdout  io.Writer
	jsonOut io.Writer
	stderr  io.Writer
	g       globals
	fs      *pflag.FlagSet
	cmd     *command
	// args are the command's arguments (after the flags).
	args []string
	// doc is the command's JSON document (--json), set by emit.
	doc document
	// abandoned: the command did not return within interruptGrace; its
	// document may still change, so a bare one is printed.
	abandoned bool
	// state says what an interruption leaves behind (see setState).
	stateMu sync.Mutex
	state   string
	// stateFn, when set, computes the state instead (a transfer under
	// way: where it stands).
	stateFn func() string
	// track follows the current transfer (for interruption messages).
	track *tracker
	// askVirtual: the command wants to know whether the chip is a
	// virtual device (a demo image is to be written).
	askVirtual bool
	// terminal reports whether a stream is a terminal (tests replace it).
	terminal func(any) bool
	// progressTo and notifyTo, when set, take the transfers' progress
	// and the instructions, warnings and notes instead of stderr (serve's
	// jobs).
	progressTo flasher.Progress
	notifyTo   flasher.Notify
}

// changed reports whether the user gave the flag.
func (e *env) changed(name string) bool { return e.fs != nil && e.fs.Changed(name) }

// setState records, for an interruption, what state the device and the
// files are in and how to resume ("the partial backup is kept in …").
func (e *env) setState(format string, a ...any) {
	e.stateMu.Lock()
	defer e.stateMu.Unlock()
	e.state, e.stateFn = fmt.Sprintf(format, a...), nil
}

// setStateFunc makes the state computed when it is needed (a transfer
// under way says where it stands).
func (e *env) setStateFunc(f func() string) {
	e.stateMu.Lock()
	defer e.stateMu.Unlock()
	e.stateFn = f
}

func (e *env) currentState() string {
	e.stateMu.Lock()
	defer e.stateMu.Unlock()
	if e.stateFn != nil {
		return e.stateFn()
	}
	return e.state
}

// command is one tuyaflash command.
type command struct {
	name    string
	args    string
	summary string
	long    string
	run     func(e *env, args []string) error
	// flags binds the command's own flags.
	flags func(fs *pflag.FlagSet)
	// device: the command talks to a chip's loader and takes the device
	// flags (--port, --baud, --chip, --timeout, --reset, --stub …).
	device bool
	// console: the command talks to the firmware's serial console and
	// takes --port, --baud and --trace only.
	console bool
	// noJSON, when set, is why --json is refused.
	noJSON string
	// verbose says what each -v level adds (len = the highest level).
	verbose []string
	// check refuses flag combinations that would be ignored; it runs
	// after parsing, before anything else.
	check func(e *env, args []string) error
	// interrupts: Ctrl-C and SIGTERM are the normal way to end the
	// command (sim), which then exits as it returns.
	interrupts bool
	// subcommands are the words the command takes first ("firmware
	// list"), mapped to the name its JSON document gives.
	subcommands map[string]string
}

// deviceVerbose are the -v levels of every command that talks to a chip.
var deviceVerbose = []string{
	"notes: each step of the link, identification and transfer",
	"a one-line summary of every command sent to the chip and of its reply",
	"a hex dump of all serial traffic (the same as --trace)",
}

var commands []*command

func register(c *command) { commands = append(commands, c) }

func find(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// usageError is a bad command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// Main runs tuyaflash with args (without the program name) and returns the
// exit code. Ctrl-C and SIGTERM end every command within a second.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := notifyInterrupt(context.Background())
	defer stop()
	safefile.Notice = func(path string) { fmt.Fprintln(stderr, sudoNotice(path)) }
	return run(ctx, args, stdin, stdout, stderr)
}

// sudoNotice is said once when tuyaflash, run with sudo, creates a file
// that stays root's (outside the invoking user's home folder; inside it,
// files are handed back to the user).
func sudoNotice(path string) string {
	home := "your home folder"
	if iv := safefile.SudoInvoker(); iv != nil {
		home = iv.Home
	}
	return fmt.Sprintf("note: tuyaflash runs as root (sudo): %s and the other files it creates outside %s belong to root, mode 0600 where they hold secrets, so you will need sudo to read them; "+
		"to avoid sudo, add yourself to the dialout group (uucp on Arch), or pass folders inside your home (--backup-dir, $TUYAFLASH_DATA_DIR)", path, home)
}

// run is Main with the context given (tests).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runWith(ctx, args, stdin, stdout, stderr, nil)
}

// runWith is run with setup, when not nil, adjusting the command's env
// before its flags are parsed (serve runs its jobs so).
func runWith(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, setup func(*env)) int {
	inv, err := splitArgs(args)
	if err != nil {
		return reportEarly(stdout, stderr, inv, err)
	}
	switch {
	case inv.help && inv.cmd == nil:
		printOverview(stdout)
		return ExitOK
	case inv.cmd == nil && inv.version:
		fmt.Fprintln(stdout, "tuyaflash", version())
		return ExitOK
	case inv.cmd == nil:
		printOverview(stderr)
		return ExitUsage
	}
	c := inv.cmd
	e := &env{ctx: ctx, stdin: stdin, stdout: stdout, jsonOut: stdout, stderr: stderr, cmd: c, terminal: isTerminal,
		track: &tracker{next: flasher.NopProgress{}}}
	if setup != nil {
		setup(e)
	}
	fs := flagSet(c, &e.g)
	e.fs = fs
	if err := fs.Parse(inv.rest); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprint(stdout, helpText(c, fs))
			return ExitOK
		}
		e.g.json = e.g.json || inv.json
		return report(e, usagef("%v", err))
	}
	if inv.help {
		fmt.Fprint(stdout, helpText(c, fs))
		return ExitOK
	}
	if e.g.json {
		e.stdout = io.Discard
	}
	e.args = fs.Args()
	if err := e.validate(fs.Args()); err != nil {
		return report(e, err)
	}
	err = e.runCommand(fs.Args())
	if err == nil {
		if e.g.json {
			e.printDoc(nil)
		}
		return ExitOK
	}
	return report(e, err)
}

// validate checks what pflag cannot: flag values, the -v level, --json,
// and the combinations a command refuses.
func (e *env) validate(args []string) error {
	c := e.cmd
	if e.g.json && c.noJSON != "" {
		return usagef("--json: %s", c.noJSON)
	}
	if max := len(c.verbose); e.g.verbose > max {
		return verboseError(c, e.g.verbose)
	}
	if c.device || c.console {
		if err := e.g.validate(c.device); err != nil {
			return err
		}
	}
	if c.device && e.g.verbose >= 3 {
		e.g.trace = true
	}
	if c.check != nil {
		if err := c.check(e, args); err != nil {
			return err
		}
	}
	if e.g.trace || e.changed("trace") {
		fmt.Fprintln(e.stderr, traceWarning(c.name))
	}
	return nil
}

// traceWarning is said once, before a traced command starts: the hex dump
// holds what the tool otherwise hides.
func traceWarning(cmd string) string {
	w := "warning: --trace dumps all serial traffic, and flash contents include the device's secrets (Tuya local key, Wi-Fi name and password); do not share this output without removing them"
	if cmd == "provision" || cmd == "migrate" {
		w += ". It also shows the Wi-Fi password tuyaflash sends to the device"
	}
	return w
}

func verboseError(c *command, n int) error {
	given := "-" + strings.Repeat("v", n)
	if len(c.verbose) == 0 {
		return usagef("%s: tuyaflash %s has no verbose output", given, c.name)
	}
	return usagef("%s: tuyaflash %s has %d verbose level(s), up to -%s (%s)", given, c.name, len(c.verbose), strings.Repeat("v", len(c.verbose)), c.verbose[len(c.verbose)-1])
}

func flagSet(c *command, g *globals) *pflag.FlagSet {
	fs := pflag.NewFlagSet("tuyaflash "+c.name, pflag.ContinueOnError)
	fs.SortFlags = false
	fs.SetOutput(io.Discard)
	if c.flags != nil {
		c.flags(fs)
	}
	g.add(fs, c)
	return fs
}

func printOverview(w io.Writer) {
	fmt.Fprintf(w, "tuyaflash %s — back up, flash and restore Tuya modules over a USB-serial adapter\n\n", version())
	fmt.Fprintf(w, "Usage: tuyaflash [flags] <command> [flags] [arguments]\n\nCommands:\n")
	cs := append([]*command(nil), commands...)
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	for _, c := range cs {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nFlags go before or after the command: 'tuyaflash -p /dev/ttyUSB0 backup' works.\n")
	fmt.Fprintf(w, "Run 'tuyaflash help <command>' (or '<command> --help') for the flags of a command.\n")
	fmt.Fprintf(w, "Try it without hardware: tuyaflash migrate --port sim:bk7231n\n\n")
	fmt.Fprintf(w, "Exit codes (the same in every command):\n%s", exitCodeText())
	fmt.Fprintf(w, "\n--json prints exactly one JSON document on stdout, also on failure (docs/json.md).\n")
}

// runCommand runs the command and makes sure it ends within a second of
// an interruption: the port is closed by then, and a command that still
// does not return is reported as interrupted with what it last said about
// its state.
func (e *env) runCommand(args []string) error {
	done := make(chan error, 1)
	go func() { done <- e.cmd.run(e, args) }()
	select {
	case err := <-done:
		if e.cmd.interrupts {
			return err
		}
		return e.interrupted(err)
	case <-e.ctx.Done():
	}
	if e.cmd.interrupts {
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			return fmt.Errorf("did not stop within 5 s of %v", context.Cause(e.ctx))
		}
	}
	select {
	case err := <-done:
		return e.interrupted(err)
	case <-time.After(interruptGrace):
		e.abandoned = true
		return e.interrupted(context.Cause(e.ctx))
	}
}

// interrupted turns what a command returns after an interruption into the
// interruption (never a link fault): whatever a closed port made the
// protocol say, the user pressed Ctrl-C.
func (e *env) interrupted(err error) error {
	if e.ctx.Err() == nil {
		return err
	}
	cause := context.Cause(e.ctx)
	var ie *interruptError
	if !errors.As(cause, &ie) {
		return err
	}
	out := &interruptError{sig: ie.sig, state: e.currentState()}
	if h := hintOf(err); h != "" && errors.Is(err, context.Canceled) {
		out.state = h
	}
	return out
}

// hasFlag reports whether --name (or -short) appears in args, for errors
// found before the flags are parsed.
func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "--"+name || strings.HasPrefix(a, "--"+name+"=") {
			return true
		}
	}
	return false
}

func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && termIsTerminal(f)
}

// versionDoc is version's document.
type versionDoc struct {
	header
	Version   string `json:"version"`
	GoVersion string `json:"go_version"`
}

func init() {
	register(&command{name: "version", summary: "print tuyaflash's version", run: func(e *env, args []string) error {
		if len(args) > 0 {
			return usagef("version takes no arguments")
		}
		doc := &versionDoc{Version: version(), GoVersion: runtime.Version()}
		e.emit(doc)
		fmt.Fprintln(e.stdout, "tuyaflash", doc.Version)
		return nil
	}})
}
