// Package termsafe makes strings that come from outside — a device's HTTP
// JSON, mDNS TXT records, names and versions inside images and dumps —
// safe to print on a terminal. A device could otherwise send escape
// sequences that move the cursor, rewrite earlier lines ("verified OK"),
// change the window title or, on some terminals, answer back with typed
// input; a newline could forge a whole line of tuyaflash's output, and
// bidirectional-text controls could reorder what the user reads.
package termsafe

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Clean returns s with every control character shown as a visible escape
// (ESC as \x1b, a newline as \n, CSI U+009B as \u009b …): C0 controls, DEL,
// C1 controls, and the bidirectional formatting characters (U+061C,
// U+200E/F, U+202A–U+202E, U+2066–U+2069). Bytes that are not UTF-8 become
// U+FFFD. Everything else, non-ASCII letters included, is kept; s comes
// back unchanged (without allocation) when there is nothing to replace.
func Clean(s string) string {
	if !needs(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			b.WriteRune(utf8.RuneError)
		case isControl(r):
			b.WriteString(escape(r))
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// All cleans every string of ss in place and returns ss.
func All(ss []string) []string {
	for i, s := range ss {
		ss[i] = Clean(s)
	}
	return ss
}

func needs(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7F || c >= 0x80 {
			goto slow
		}
	}
	return false
slow:
	if !utf8.ValidString(s) {
		return true
	}
	for _, r := range s {
		if isControl(r) {
			return true
		}
	}
	return false
}

func isControl(r rune) bool {
	switch {
	case r < 0x20, r == 0x7F, r >= 0x80 && r < 0xA0:
		return true
	case r == 0x061C, r == 0x200E, r == 0x200F:
		return true
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

func escape(r rune) string {
	switch r {
	case '\n':
		return `\n`
	case '\r':
		return `\r`
	case '\t':
		return `\t`
	}
	if r < 0x80 {
		return fmt.Sprintf(`\x%02x`, r)
	}
	return fmt.Sprintf(`\u%04x`, r)
}
