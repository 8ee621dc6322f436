// Package cli implements the tuyaflash command line: flag parsing, port
// opening, running the jobs of package ops and rendering their results. It
// is the only package that prints.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/tuyaflash/tuyaflash/backup"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/transport"
	"github.com/tuyaflash/tuyaflash/tuyaconfig"
)

// Exit codes, one table for every command.
const (
	ExitOK          = 0
	ExitFailure     = 1 // anything not below
	ExitUsage       = 2 // bad flags or arguments
	ExitNoDevice    = 3 // port missing or busy, chip not answering
	ExitRefused     = 4 // a safety check refused the operation
	ExitVerify      = 5 // data on the chip does not match
	ExitUnsupported = 6 // chip or operation not supported
	ExitInterrupted = 130
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
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	g      globals
	fs     *pflag.FlagSet
}

// changed reports whether the user gave the flag.
func (e *env) changed(name string) bool { return e.fs != nil && e.fs.Changed(name) }

// globals are the flags every device command takes.
type globals struct {
	port    string
	baud    int
	chip    string
	json    bool
	verbose int
	trace   bool
	timeout time.Duration
	reset   string
	stub    string
	noStub  bool
}

func (g *globals) add(fs *pflag.FlagSet, device bool) {
	if device {
		fs.StringVarP(&g.port, "port", "p", "", "serial `device` (/dev/ttyUSB0, COM3), or a built-in virtual device: sim:bk7231n, sim:bk7231t, sim:esp8266, sim:esp8285, optionally with :FLASHFILE")
		fs.IntVarP(&g.baud, "baud", "b", 0, "transfer `rate` after link-up (default 921600 for BK7231, 460800 for ESP8266 with a stub; steps down when the adapter cannot)")
		fs.StringVar(&g.chip, "chip", "auto", "chip `family`: auto, bk7231n, bk7231t, esp8266, esp8285")
		fs.BoolVar(&g.trace, "trace", false, "hex-dump all serial traffic to stderr")
		fs.DurationVar(&g.timeout, "timeout", 30*time.Second, "how long to wait for the chip to answer after the power-cycle prompt")
		fs.StringVar(&g.reset, "reset", "none", "ESP8266 reset `mode`: none (hold GPIO0 low and power-cycle by hand) or classic (DTR/RTS wired to GPIO0/EN)")
		fs.StringVar(&g.stub, "stub", "", "ESP8266 flasher stub `file` in esptool's JSON layout (default: tuyaflash's own)")
		fs.BoolVar(&g.noStub, "no-stub", false, "ESP8266: talk to the ROM loader only (write-only, unverified; no backup)")
	}
	fs.BoolVar(&g.json, "json", false, "print the result as JSON on stdout")
	fs.CountVarP(&g.verbose, "verbose", "v", "more output (repeat for more)")
}

// validate checks the device flags that pflag cannot.
func (g *globals) validate() error {
	if _, err := familyFlag(g.chip); err != nil {
		return err
	}
	switch g.reset {
	case "none", "classic":
	default:
		return usagef("--reset %q: want none or classic", g.reset)
	}
	if g.stub != "" && g.noStub {
		return usagef("--stub and --no-stub exclude each other")
	}
	if g.baud < 0 || g.baud > 0 && g.baud < 9600 {
		return usagef("--baud %d: want a rate such as 115200, 460800 or 921600", g.baud)
	}
	if g.timeout <= 0 {
		return usagef("--timeout must be positive")
	}
	return nil
}

type command struct {
	name    string
	args    string
	summary string
	run     func(e *env, args []string) error
	flags   func(fs *pflag.FlagSet) // command's own flags (bound by the command)
	device  bool                    // takes the device flags
	long    string
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
// exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			if c := find(args[1]); c != nil {
				fs := flagSet(c, &globals{})
				fmt.Fprint(stdout, helpText(c, fs))
				return ExitOK
			}
		}
		printOverview(stdout)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	if args[0] == "version" || args[0] == "--version" {
		fmt.Fprintln(stdout, "tuyaflash", version())
		return ExitOK
	}
	c := find(args[0])
	if c == nil {
		fmt.Fprintf(stderr, "tuyaflash: unknown command %q\n\n", args[0])
		printOverview(stderr)
		return ExitUsage
	}
	e := &env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr}
	fs := flagSet(c, &e.g)
	e.fs = fs
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprint(stdout, helpText(c, fs))
			return ExitOK
		}
		fmt.Fprintf(stderr, "tuyaflash %s: %v\nRun 'tuyaflash %s --help' for usage.\n", c.name, err, c.name)
		return ExitUsage
	}
	if c.device {
		if err := e.g.validate(); err != nil {
			return report(e, c, err)
		}
	}
	err := c.run(e, fs.Args())
	if err == nil {
		return ExitOK
	}
	return report(e, c, err)
}

func flagSet(c *command, g *globals) *pflag.FlagSet {
	fs := pflag.NewFlagSet("tuyaflash "+c.name, pflag.ContinueOnError)
	fs.SortFlags = false
	fs.SetOutput(io.Discard)
	if c.flags != nil {
		c.flags(fs)
	}
	g.add(fs, c.device)
	return fs
}

func helpText(c *command, fs *pflag.FlagSet) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: tuyaflash %s [flags] %s\n\n%s\n", c.name, c.args, c.summary)
	if c.long != "" {
		fmt.Fprintf(&b, "\n%s\n", strings.TrimSpace(c.long))
	}
	fmt.Fprintf(&b, "\nFlags:\n%s", fs.FlagUsages())
	return b.String()
}

func printOverview(w io.Writer) {
	fmt.Fprintf(w, "tuyaflash %s — back up, flash and restore Tuya modules over a USB-serial adapter\n\nUsage: tuyaflash <command> [flags]\n\nCommands:\n", version())
	cs := append([]*command(nil), commands...)
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	for _, c := range cs {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'tuyaflash <command> --help' for the flags of a command.\nTry it without hardware: tuyaflash backup --port sim:bk7231n\n")
}

// report prints err with its hint and maps it to an exit code.
func report(e *env, c *command, err error) int {
	if code, ok := quietCode(err); ok {
		return code
	}
	code := exitCode(err)
	if code == ExitUsage {
		fmt.Fprintf(e.stderr, "tuyaflash %s: %v\nRun 'tuyaflash %s --help' for usage.\n", c.name, err, c.name)
		return code
	}
	if code == ExitInterrupted {
		fmt.Fprintf(e.stderr, "tuyaflash %s: interrupted\n", c.name)
		if h := flasher.Hint(err); h != "" {
			fmt.Fprintf(e.stderr, "%s\n", h)
		}
		return code
	}
	fmt.Fprintf(e.stderr, "tuyaflash %s: %v\n", c.name, err)
	if h := flasher.Hint(err); h != "" {
		fmt.Fprintf(e.stderr, "what to do: %s\n", h)
	}
	if e.g.json {
		json.NewEncoder(e.stdout).Encode(map[string]any{"error": err.Error(), "hint": flasher.Hint(err), "exit_code": code})
	}
	return code
}

func exitCode(err error) int {
	var ue *usageError
	var oe *transport.OpenError
	switch {
	case errors.As(err, &ue):
		return ExitUsage
	case errors.Is(err, context.Canceled):
		return ExitInterrupted
	case errors.Is(err, flasher.ErrRefused), errors.Is(err, backup.ErrExists):
		return ExitRefused
	case errors.Is(err, flasher.ErrVerify), errors.Is(err, backup.ErrCorrupt):
		return ExitVerify
	case errors.Is(err, flasher.ErrNoLink), errors.As(err, &oe):
		return ExitNoDevice
	case errors.Is(err, flasher.ErrUnsupported), errors.Is(err, tuyaconfig.ErrUnsupportedFormat):
		return ExitUnsupported
	}
	return ExitFailure
}

// printJSON writes v as indented JSON on stdout.
func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
