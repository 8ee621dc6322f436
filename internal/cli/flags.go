package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/tuyaflash/tuyaflash/internal/session"
)

// globals are the flags several commands share.
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

// add binds the shared flags a command takes. --json and -v are bound on
// every command, so that they work before the command name too; where they
// do nothing they are hidden and refused (validate).
func (g *globals) add(fs *pflag.FlagSet, c *command) {
	switch {
	case c.device:
		fs.StringVarP(&g.port, "port", "p", "", "serial `device` (/dev/ttyUSB0, COM3), or a built-in virtual device: sim:"+strings.Join(simNames(), ", sim:")+", optionally with :FLASHFILE (its first flash) and #NAME (another device of that chip)")
		fs.VarP(baudValue{&g.baud}, "baud", "b", "transfer `rate` after link-up (default 921600 for BK7231, 460800 for ESP8266 with a stub; steps down when the adapter cannot); max: the fastest the adapter and chip hold (BK7231: up to 2 Mbaud, ESP8266: 921600)")
		fs.StringVar(&g.chip, "chip", "auto", "chip `family`: auto, "+familyNames()+" (bk7231m: a BK7231N whose eFuse key must be all zero)")
		fs.DurationVar(&g.timeout, "timeout", 30*time.Second, "how long to wait for the chip to answer after the power-cycle prompt (a `duration`: 30s, 2m)")
		fs.StringVar(&g.reset, "reset", "none", "ESP8266 reset `mode`: none (hold GPIO0 low and power-cycle by hand) or classic (DTR/RTS wired to GPIO0/EN)")
		fs.StringVar(&g.stub, "stub", "", "ESP8266 flasher stub `file` in esptool's JSON layout (default: tuyaflash's own)")
		fs.BoolVar(&g.noStub, "no-stub", false, "ESP8266: talk to the ROM loader only (write-only, unverified; no backup)")
		fs.BoolVar(&g.trace, "trace", false, "hex-dump all serial traffic to stderr (the same as -vvv)")
	case c.console:
		fs.StringVarP(&g.port, "port", "p", "", "serial `device` the module's console is on (/dev/ttyUSB0, COM3)")
		fs.IntVarP(&g.baud, "baud", "b", 115200, "console `rate`")
		fs.BoolVar(&g.trace, "trace", false, "hex-dump all serial traffic to stderr")
	}
	fs.BoolVar(&g.json, "json", false, "print the result as one JSON document on stdout (docs/json.md)")
	if c.noJSON != "" {
		fs.MarkHidden("json")
	}
	levels := make([]string, len(c.verbose))
	for i, l := range c.verbose {
		levels[i] = "-" + strings.Repeat("v", i+1) + ": " + l
	}
	fs.CountVarP(&g.verbose, "verbose", "v", "more output; "+strings.Join(levels, "; "))
	if len(c.verbose) == 0 {
		fs.MarkHidden("verbose")
	}
}

// validate checks the device flags that pflag cannot.
func (g *globals) validate(device bool) error {
	if g.baud < 0 && g.baud != session.BaudMax || g.baud > 0 && g.baud < 9600 {
		return usagef("--baud %d: want a rate such as 115200, 460800 or 921600", g.baud)
	}
	if !device {
		return nil
	}
	fam, err := familyFlag(g.chip)
	if err != nil {
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
	if g.timeout <= 0 {
		return usagef("--timeout must be positive")
	}
	if fam.Beken() {
		for _, f := range []struct {
			set  bool
			name string
		}{{g.reset != "none", "--reset"}, {g.stub != "", "--stub"}, {g.noStub, "--no-stub"}} {
			if f.set {
				return usagef("%s applies to ESP8266 chips only, not to --chip %s", f.name, g.chip)
			}
		}
	}
	return nil
}

// helpText is a command's --help.
func helpText(c *command, fs *pflag.FlagSet) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: tuyaflash %s [flags] %s\n\n%s\n", c.name, c.args, c.summary)
	if c.long != "" {
		fmt.Fprintf(&b, "\n%s\n", strings.TrimSpace(c.long))
	}
	fmt.Fprintf(&b, "\nFlags:\n%s", flagUsages(fs))
	fmt.Fprintf(&b, "\nExit codes: 'tuyaflash help' lists them; they mean the same in every command.\n")
	return b.String()
}

// flagUsages lists the flags: boolean flags plain (--json), others with
// their value name (--port DEVICE), and the default where it says
// something.
func flagUsages(fs *pflag.FlagSet) string {
	type row struct{ left, usage string }
	var rows []row
	width := 0
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		left := "      --" + f.Name
		if f.Shorthand != "" {
			left = "  -" + f.Shorthand + ", --" + f.Name
		}
		name, usage := pflag.UnquoteUsage(f)
		switch f.Value.Type() {
		case "bool", "count":
			name = ""
		}
		if name != "" {
			left += " " + strings.ToUpper(name)
		}
		switch f.Value.Type() {
		case "bool", "count":
		default:
			if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "[]" && f.DefValue != "0s" {
				usage += fmt.Sprintf(" (default %s)", f.DefValue)
			}
		}
		rows = append(rows, row{left, usage})
		width = max(width, len(left))
	})
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "%-*s   %s\n", width, r.left, r.usage)
	}
	return b.String()
}
