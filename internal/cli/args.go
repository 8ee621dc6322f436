package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/spf13/pflag"
)

// invocation is a command line split into the command and its flags.
type invocation struct {
	cmd *command
	// word is the command as typed (for messages about unknown ones).
	word string
	// rest are the flags and arguments for the command's flag set: those
	// given before the command, then those after it.
	rest    []string
	help    bool
	version bool
	// json: --json was given (errors found before parsing are still
	// reported as JSON).
	json bool
}

// splitArgs finds the command in args. Flags may come before it, as
// esptool users type them (tuyaflash -p /dev/ttyUSB0 backup): those are
// taken out, and the command's flag set parses them with the rest.
func splitArgs(args []string) (invocation, error) {
	var inv invocation
	inv.json = hasFlag(args, "json")
	arity := flagArity()
	var before []string
	i := 0
	for i < len(args) {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		switch a {
		case "-h", "--help":
			inv.help = true
			i++
			continue
		case "--version":
			inv.version = true
			i++
			continue
		}
		n, err := flagWidth(args[i:], arity)
		if err != nil {
			return inv, err
		}
		before = append(before, args[i:i+n]...)
		i += n
	}
	if i >= len(args) {
		if len(before) > 0 && !inv.help && !inv.version {
			return inv, usagef("%s given but no command: tuyaflash [flags] <command> (see 'tuyaflash help')", strings.Join(before, " "))
		}
		return inv, nil
	}
	word, rest := args[i], args[i+1:]
	if word == "help" {
		inv.help = true
		if len(rest) == 0 {
			return inv, nil
		}
		word, rest = rest[0], rest[1:]
	}
	inv.word = word
	inv.cmd = find(word)
	if inv.cmd == nil {
		return inv, unknownCommand(word)
	}
	inv.rest = append(before, rest...)
	return inv, nil
}

// flagWidth returns how many of args the flag args[0] takes (1, or 2 when
// its value is the next argument).
func flagWidth(args []string, arity map[string]bool) (int, error) {
	a := args[0]
	if name, ok := strings.CutPrefix(a, "--"); ok {
		name, _, inline := strings.Cut(name, "=")
		takes, known := arity["--"+name]
		if !known {
			return 0, usagef("unknown flag %s", a)
		}
		if takes && !inline {
			if len(args) < 2 {
				return 0, usagef("flag %s needs a value", a)
			}
			return 2, nil
		}
		return 1, nil
	}
	// -p VALUE, -pVALUE, -vv
	for j := 1; j < len(a); j++ {
		takes, known := arity["-"+a[j:j+1]]
		if !known {
			return 0, usagef("unknown shorthand flag %q in %s", a[j:j+1], a)
		}
		if takes {
			if j+1 < len(a) {
				return 1, nil
			}
			if len(args) < 2 {
				return 0, usagef("flag %s needs a value", a)
			}
			return 2, nil
		}
	}
	return 1, nil
}

var (
	arityOnce sync.Once
	arityMap  map[string]bool
	arityErr  []string
)

// flagArity maps every flag of every command ("--port", "-p") to whether
// it takes a value. A flag name means the same in every command, which
// flagArityConflicts checks.
func flagArity() map[string]bool {
	arityOnce.Do(func() {
		arityMap = map[string]bool{}
		for _, c := range commands {
			fs := flagSet(c, &globals{})
			fs.VisitAll(func(f *pflag.Flag) {
				takes := f.NoOptDefVal == ""
				for _, k := range []string{"--" + f.Name, "-" + f.Shorthand} {
					if k == "-" {
						continue
					}
					if old, ok := arityMap[k]; ok && old != takes {
						arityErr = append(arityErr, fmt.Sprintf("%s takes a value in one command and not in %s", k, c.name))
					}
					arityMap[k] = takes
				}
			})
		}
	})
	return arityMap
}

// esptoolNames maps the commands of esptool, bk7231tools and ltchiptool
// (with - or _) to tuyaflash's.
var esptoolNames = map[string]string{
	"read_flash":  "backup",
	"dump_flash":  "backup",
	"write_flash": "write",
	"flash":       "write",
	"chip_id":     "detect",
	"flash_id":    "detect",
	"read_mac":    "detect",
	"chip_info":   "detect",
	"image_info":  "firmware verify",
	"list_ports":  "ports",
}

// explained are other tools' commands tuyaflash deliberately lacks.
var explained = map[string]string{
	"erase_flash":  "tuyaflash never erases the whole flash: that destroys the stock firmware and the chip's RF calibration and MAC. 'tuyaflash write' erases only the sectors it writes; 'tuyaflash backup' keeps the stock firmware first",
	"erase_region": "tuyaflash never erases without writing: 'tuyaflash write' erases only the sectors it writes",
	"verify_flash": "'tuyaflash write' verifies what it writes against the chip's own checksum; 'tuyaflash firmware verify FILE' checks an image file",
}

// unknownCommand explains an unknown command and suggests the closest.
func unknownCommand(word string) error {
	norm := strings.ReplaceAll(strings.ToLower(word), "-", "_")
	if why, ok := explained[norm]; ok {
		return usagef("unknown command %q: %s", word, why)
	}
	if to, ok := esptoolNames[norm]; ok {
		return usagef("unknown command %q; did you mean 'tuyaflash %s'? (%s is what other flashing tools call it)", word, to, word)
	}
	if s := suggest(word); s != "" {
		return usagef("unknown command %q; did you mean 'tuyaflash %s'?", word, s)
	}
	return usagef("unknown command %q (see 'tuyaflash help')", word)
}

// suggest returns the command closest to word by edit distance (or a
// unique prefix), "" when nothing is close.
func suggest(word string) string {
	w := strings.ToLower(word)
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
	}
	sort.Strings(names)
	var prefix []string
	for _, n := range names {
		if len(w) >= 2 && strings.HasPrefix(n, w) {
			prefix = append(prefix, n)
		}
	}
	if len(prefix) == 1 {
		return prefix[0]
	}
	best, bestD := "", 0
	for _, n := range names {
		d := editDistance(w, n)
		if best == "" || d < bestD {
			best, bestD = n, d
		}
	}
	for alias, to := range esptoolNames {
		if d := editDistance(strings.ReplaceAll(w, "-", "_"), alias); d < bestD {
			best, bestD = to, d
		}
	}
	if bestD <= max(1, len(w)/3) {
		return best
	}
	return ""
}

// editDistance is the Damerau–Levenshtein distance (adjacent swaps count
// one) between a and b.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range rb {
		d[0][j+1] = j + 1
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// reportEarly reports an error found before the command's flags were
// parsed (unknown command, bad flag before the command).
func reportEarly(stdout, stderr io.Writer, inv invocation, err error) int {
	name := inv.word
	if inv.cmd != nil {
		name = inv.cmd.name
	}
	e := &env{stdout: stdout, jsonOut: stdout, stderr: stderr, g: globals{json: inv.json}, cmd: &command{name: name}}
	return report(e, err)
}
