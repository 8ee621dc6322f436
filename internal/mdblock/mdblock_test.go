package mdblock

import (
	"strings"
	"testing"
)

func TestSplice(t *testing.T) {
	const b, e = "<!-- begin -->", "<!-- end -->"
	tests := []struct {
		name, doc, text, want string
		fails                 bool
	}{
		{"replaces the block", "intro\n" + b + "\n\nold\nlines\n" + e + "\noutro\n", "new", "intro\n" + b + "\n\nnew\n" + e + "\noutro\n", false},
		{"empty block", b + e, "x", b + "\n\nx\n" + e, false},
		{"idempotent", "a\n" + b + "\n\nsame\n" + e + "\nz", "same", "a\n" + b + "\n\nsame\n" + e + "\nz", false},
		{"no end marker", b + "\nold\n", "new", "", true},
		{"markers out of order", e + "\n" + b, "new", "", true},
		{"no markers", "plain text", "new", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Splice([]byte(tc.doc), b, e, tc.text)
			if tc.fails {
				if err == nil || !strings.Contains(err.Error(), "markers") {
					t.Fatalf("Splice = %q, %v; want an error naming the markers", got, err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Errorf("Splice = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
