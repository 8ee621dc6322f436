package cli

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tuyaflash/tuyaflash/flasher"
)

// header starts every JSON document tuyaflash prints (docs/json.md): ok,
// the command, and on failure the error object. Every command's document
// type embeds it.
type header struct {
	OK      bool       `json:"ok"`
	Command string     `json:"command"`
	Error   *errorJSON `json:"error,omitempty"`
}

func (h *header) head() *header { return h }

// document is a command's JSON document.
type document interface{ head() *header }

// errorJSON is the error object, the same in every command.
type errorJSON struct {
	// Code is the exit code's name in exitTable ("refused", "usage" …).
	Code    string `json:"code"`
	Message string `json:"message"`
	// Hint says what to do next; null when there is nothing to add.
	Hint     *string `json:"hint"`
	ExitCode int     `json:"exit_code"`
}

// bareDoc is the document of a command that has nothing else to say.
type bareDoc struct {
	header
}

// emit sets the command's JSON document (printed once, at the end, with
// ok and the error filled in).
func (e *env) emit(doc document) { e.doc = doc }

// errorDoc builds the error object.
func errorDoc(err error) *errorJSON {
	code := exitCode(err)
	ej := &errorJSON{Code: exitName(code), Message: err.Error(), ExitCode: code}
	if h := hintOf(err); h != "" {
		ej.Hint = &h
	}
	return ej
}

// hintOf is the user hint of err: an interruption's state, else the
// first flasher.HintError's hint.
func hintOf(err error) string {
	var ie *interruptError
	if errors.As(err, &ie) && ie.state != "" {
		return ie.state
	}
	return flasher.Hint(err)
}

// printDoc prints the one JSON document: the command's, or a bare one.
func (e *env) printDoc(err error) {
	doc := e.doc
	if doc == nil || e.abandoned {
		doc = &bareDoc{}
	}
	h := doc.head()
	if h.Command == "" {
		h.Command = e.commandName()
	}
	h.OK = err == nil
	h.Error = nil
	if err != nil {
		h.Error = errorDoc(err)
	}
	enc := json.NewEncoder(e.jsonOut)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		fmt.Fprintf(e.stderr, "tuyaflash %s: cannot encode the JSON result: %v\n", e.cmd.name, err)
	}
}

// commandName is the command with its subcommand, as the JSON document
// names it ("firmware list").
func (e *env) commandName() string {
	if len(e.args) > 0 {
		if sub, ok := e.cmd.subcommands[e.args[0]]; ok {
			return e.cmd.name + " " + sub
		}
	}
	return e.cmd.name
}

// report prints err with its hint on stderr (and the JSON document with
// --json) and maps it to an exit code.
func report(e *env, err error) int {
	if code, ok := quietCode(err); ok {
		// Already told in full on stderr (migrate's table); the JSON
		// document still carries the error.
		if e.g.json {
			e.printDoc(err)
		}
		return code
	}
	code := exitCode(err)
	name := "tuyaflash"
	if e.cmd != nil && find(e.cmd.name) != nil {
		name += " " + e.cmd.name
	}
	switch code {
	case ExitUsage:
		fmt.Fprintf(e.stderr, "%s: %v\n", name, err)
		if e.cmd != nil && find(e.cmd.name) != nil {
			fmt.Fprintf(e.stderr, "Run 'tuyaflash %s --help' for usage.\n", e.cmd.name)
		} else {
			fmt.Fprintf(e.stderr, "Run 'tuyaflash help' for the commands.\n")
		}
	case ExitInterrupted:
		fmt.Fprintf(e.stderr, "%s: %v\n", name, err)
		if h := hintOf(err); h != "" {
			fmt.Fprintf(e.stderr, "%s\n", h)
		}
	default:
		fmt.Fprintf(e.stderr, "%s: %v\n", name, err)
		if h := hintOf(err); h != "" {
			fmt.Fprintf(e.stderr, "what to do: %s\n", h)
		}
	}
	if e.g.json {
		e.printDoc(err)
	}
	return code
}

// macText normalises a MAC to AA:BB:CC:DD:EE:FF ("" stays "", anything
// unparsable is kept as it is).
func macText(s string) string {
	if s == "" {
		return ""
	}
	m, err := flasher.ParseMAC(s)
	if err != nil {
		return s
	}
	return m.String()
}
