package cli

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/tuyaflash/tuyaflash/postflash"
)

// cmdRef is a tuyaflash command line quoted in a message, help text or
// document.
type cmdRef struct {
	line   string
	quoted bool
	where  string
}

// unquotedEnd ends an unquoted command line in running text.
var unquotedEnd = regexp.MustCompile(`\n| #| \(|; |, |\. |: | — | or |\.$`)

// commandRefs finds every "tuyaflash …" command line in text: inside
// quotes or backticks up to the closing one, else up to the end of the
// clause.
func commandRefs(text, where string) []cmdRef {
	var out []cmdRef
	for i := 0; ; {
		j := strings.Index(text[i:], "tuyaflash ")
		if j < 0 {
			return out
		}
		at := i + j
		i = at + len("tuyaflash ")
		var prev byte
		if at > 0 {
			prev = text[at-1]
		}
		if prev == '/' {
			// A path to the binary (`go run ./cmd/tuyaflash verify …`):
			// the quote, if any, comes before the path.
			start := at
			for start > 0 && strings.IndexByte(" \t\n'`\"", text[start-1]) < 0 {
				start--
			}
			if strings.HasSuffix(text[:start], "go run ") {
				start -= len("go run ")
			}
			prev = 0
			if start > 0 {
				prev = text[start-1]
			}
		}
		if prev != 0 && (isWordByte(prev) || strings.IndexByte("-_.@", prev) >= 0) {
			continue
		}
		rest := text[at:]
		quoted := strings.IndexByte("'`\"", prev) >= 0 && prev != 0
		if quoted {
			if k := strings.IndexByte(rest, prev); k >= 0 {
				rest = rest[:k]
			}
		} else if loc := unquotedEnd.FindStringIndex(rest); loc != nil {
			rest = rest[:loc[0]]
		}
		out = append(out, cmdRef{strings.TrimRight(rest, ".,;:)"), quoted, where})
	}
}

func isWordByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

// placeholder reports whether a value stands for the user's own (FILE,
// PORT, <device-ip>, %s, …).
func placeholder(v string) bool {
	if strings.ContainsAny(v, "%<>…{}$*") || v == "" {
		return true
	}
	upper := regexp.MustCompile(`^[A-Z][A-Z_\-]*[A-Z]?$`)
	return upper.MatchString(v)
}

// checkValue checks a flag value where it can be checked.
func checkValue(cmd, flag, v string) error {
	for _, alt := range strings.Split(v, "|") {
		if placeholder(alt) {
			continue
		}
		var ok bool
		switch flag {
		case "chip":
			if cmd == "firmware" {
				ok = slices.Contains([]string{"esp8266", "esp8285", "bk7231t", "bk7231n"}, strings.ToLower(alt))
			} else {
				_, err := familyFlag(alt)
				ok = err == nil
			}
		case "efuse-key":
			ok = alt == "tuya" || alt == "zero"
		case "template":
			ok = slices.Contains(templateKinds, alt)
		case "expect":
			_, err := postflash.ParseFirmware(alt)
			ok = err == nil
		case "firmware":
			if cmd != "provision" {
				continue
			}
			_, err := postflash.ParseFirmware(alt)
			ok = err == nil
		case "reset":
			ok = alt == "none" || alt == "classic"
		case "flash-mode":
			ok = slices.Contains([]string{"keep", "qio", "qout", "dio", "dout"}, alt)
		case "port":
			if _, sim, err := simSpec(alt); sim {
				ok = err == nil
			} else {
				continue
			}
		default:
			continue
		}
		if !ok {
			return fmt.Errorf("--%s %s is not a valid value", flag, alt)
		}
	}
	return nil
}

// subcommands lists the words a command takes as its first argument.
var subcommands = map[string][]string{
	"firmware": {"list", "fetch", "verify"},
	"export":   {"tinytuya", "homeassistant", "ha", "templates"},
}

// maxArgs is how many arguments a command takes (-1: any).
var maxArgs = map[string]int{
	"ports": 0, "detect": 0, "backup": 0, "verify": 0, "provision": 0, "version": 0, "sim": 0,
	"write": 1, "restore": 1, "tuya-config": 1, "firmware": 2, "export": -1, "inventory": -1,
}

// checkRef parses a quoted command line the way tuyaflash would. skip is
// true for running text that only starts with the word tuyaflash.
func checkRef(r cmdRef) (skip bool, err error) {
	var words []string
	for _, w := range strings.Fields(r.line)[1:] {
		w = strings.Trim(w, "[]")
		if w == "" || w == "…" || w == "..." {
			continue
		}
		words = append(words, w)
	}
	if len(words) == 0 {
		return !r.quoted, fmt.Errorf("no command")
	}
	if !r.quoted && !strings.HasPrefix(words[0], "-") && find(words[0]) == nil && words[0] != "help" {
		return true, nil // prose: "tuyaflash never overwrites …"
	}
	if placeholder(words[0]) {
		return false, nil // "tuyaflash %s --help", "tuyaflash help <command>"
	}
	if words[0] == "help" && (len(words) == 1 || placeholder(words[1])) {
		return false, nil
	}
	inv, err := splitArgs(words)
	if err != nil {
		return false, err
	}
	if inv.cmd == nil {
		return false, nil // tuyaflash help
	}
	c := inv.cmd
	fs := flagSet(c, &globals{})
	if err := fs.Parse(inv.rest); err != nil && !errors.Is(err, pflag.ErrHelp) {
		return false, err
	}
	var verr error
	fs.Visit(func(f *pflag.Flag) {
		if verr == nil && f.NoOptDefVal == "" {
			verr = checkValue(c.name, f.Name, f.Value.String())
		}
	})
	if verr != nil {
		return false, verr
	}
	args := fs.Args()
	if subs, ok := subcommands[c.name]; ok && len(args) > 0 && !placeholder(args[0]) {
		for _, a := range strings.Split(args[0], "|") {
			if !slices.Contains(subs, a) {
				return false, fmt.Errorf("%s %s: no such subcommand (%s)", c.name, a, strings.Join(subs, ", "))
			}
		}
	}
	if c.name == "inventory" && len(args) > 0 && args[0] == "forget" && len(args) != 2 {
		return false, fmt.Errorf("inventory forget takes one DEVICE")
	}
	if n := maxArgs[c.name]; n >= 0 && len(args) > n {
		return false, fmt.Errorf("%s takes at most %d arguments, got %q", c.name, n, args)
	}
	return false, nil
}

// repoTexts returns the string literals of the repository's Go sources and
// its Markdown documents, with where they are.
func repoTexts(t *testing.T) map[string]string {
	t.Helper()
	root := "../.."
	texts := map[string]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") && p != root) {
			return filepath.SkipDir
		}
		switch {
		case strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go"):
			f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			ast.Inspect(f, func(n ast.Node) bool {
				if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					// JSON data (a simulator's settings) is no message.
					if s, err := strconv.Unquote(lit.Value); err == nil && strings.Contains(s, "tuyaflash ") && !strings.HasPrefix(strings.TrimSpace(s), "{") {
						texts[fset.Position(lit.Pos()).String()] = s
					}
				}
				return true
			})
		case strings.HasSuffix(p, ".md"):
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for where, para := range markdownParagraphs(p, string(b)) {
				if strings.Contains(para, "tuyaflash ") {
					texts[where] = para
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return texts
}

// TestCommandsInTextsParse: every tuyaflash command a message, a hint, a
// help text or a document quotes exists, with flags that exist for it and
// values it takes.
func TestCommandsInTextsParse(t *testing.T) {
	texts := repoTexts(t)
	checked := 0
	for where, text := range texts {
		for _, r := range commandRefs(text, where) {
			skip, err := checkRef(r)
			if skip {
				continue
			}
			checked++
			if err != nil {
				t.Errorf("%s: %q does not parse: %v", r.where, r.line, err)
			}
		}
	}
	if checked < 50 {
		t.Errorf("only %d command lines found: the scan is broken", checked)
	}
	t.Logf("%d command lines checked in %d texts", checked, len(texts))
}

// TestCommandRefs checks the extraction and the checks on known good and
// bad lines.
func TestCommandRefs(t *testing.T) {
	refs := commandRefs("find it with 'tuyaflash provision --find', or run tuyaflash verify --host %s --expect tasmota. tuyaflash never writes; see `tuyaflash firmware list --chip bk7231n --efuse-key zero`", "test")
	var lines []string
	for _, r := range refs {
		lines = append(lines, r.line)
	}
	want := []string{"tuyaflash provision --find", "tuyaflash verify --host %s --expect tasmota", "tuyaflash never writes", "tuyaflash firmware list --chip bk7231n --efuse-key zero"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Fatalf("refs %q, want %q", lines, want)
	}
	tests := []struct {
		line   string
		quoted bool
		skip   bool
		bad    bool
	}{
		{"tuyaflash provision --find", true, false, true},
		{"tuyaflash verify --host %s --expect tasmota", false, false, false},
		{"tuyaflash never writes", false, true, false},
		{"tuyaflash never writes", true, false, true},
		{"tuyaflash firmware list --chip BK7231N", true, false, false},
		{"tuyaflash firmware list --chip bk7231x", true, false, true},
		{"tuyaflash firmware lsit", true, false, true},
		{"tuyaflash write --port PORT --firmware NAME", true, false, false},
		{"tuyaflash -p /dev/ttyUSB0 backup", true, false, false},
		{"tuyaflash backup --port sim:bk7231q", true, false, true},
		{"tuyaflash tuya-config BACKUP --template obk|esphome", true, false, false},
		{"tuyaflash tuya-config BACKUP --template obk|yaml", true, false, true},
		{"tuyaflash export tinytuya --devices devices.json [--snapshot snapshot.json]", false, false, false},
		{"tuyaflash detect extra", true, false, true},
	}
	for _, tc := range tests {
		skip, err := checkRef(cmdRef{tc.line, tc.quoted, "test"})
		if skip != tc.skip || (err != nil) != tc.bad {
			t.Errorf("%q quoted=%v: skip %v err %v, want skip %v bad %v", tc.line, tc.quoted, skip, err, tc.skip, tc.bad)
		}
	}
}

// markdownParagraphs splits a Markdown document into paragraphs (lines of
// running text joined, so that inline code wrapped over two lines is one)
// and code-block lines, by where they start.
func markdownParagraphs(path, doc string) map[string]string {
	out := map[string]string{}
	var para []string
	start, code := 0, false
	flush := func() {
		if len(para) > 0 {
			out[fmt.Sprintf("%s:%d", path, start)] = strings.Join(para, " ")
		}
		para = nil
	}
	for i, l := range strings.Split(doc, "\n") {
		switch {
		case strings.HasPrefix(l, "```"):
			flush()
			code = !code
		case code:
			out[fmt.Sprintf("%s:%d", path, i+1)] = l
		case strings.TrimSpace(l) == "" || strings.HasPrefix(l, "|") || strings.HasPrefix(l, "#"):
			flush()
			if strings.TrimSpace(l) != "" {
				out[fmt.Sprintf("%s:%d", path, i+1)] = l
			}
		default:
			if len(para) == 0 {
				start = i + 1
			}
			para = append(para, strings.TrimSpace(l))
		}
	}
	flush()
	return out
}
