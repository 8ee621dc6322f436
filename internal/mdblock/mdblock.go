// Package mdblock rewrites a generated block of a Markdown file: what lies
// between a begin marker and an end marker (HTML comments), so that the
// figures README shows are produced by a program, never typed.
package mdblock

import (
	"bytes"
	"fmt"
	"os"
)

// Replace puts text between the begin and end markers of file, keeping
// the markers and everything around them: begin, a blank line, text, a
// newline, end. It fails when the markers are missing or out of order.
func Replace(file, begin, end, text string) error {
	old, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	out, err := Splice(old, begin, end, text)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return os.WriteFile(file, out, 0o644) // an existing file keeps its mode
}

// Splice is Replace on a document in memory.
func Splice(doc []byte, begin, end, text string) ([]byte, error) {
	i := bytes.Index(doc, []byte(begin))
	j := bytes.Index(doc, []byte(end))
	if i < 0 || j < i+len(begin) {
		return nil, fmt.Errorf("no %q … %q markers", begin, end)
	}
	var out bytes.Buffer
	out.Write(doc[:i+len(begin)])
	out.WriteString("\n\n" + text + "\n")
	out.Write(doc[j:])
	return out.Bytes(), nil
}
