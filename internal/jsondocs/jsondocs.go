// Package jsondocs reads docs/json.md, the description of tuyaflash's JSON
// documents, for the tests that hold the code and the output to it.
package jsondocs

import (
	"bufio"
	"os"
	"regexp"
	"strings"
)

var row = regexp.MustCompile("^\\| `([a-z_]+)` \\|")

// Sections returns, per heading of the document ("detect", "firmware
// list", "The chip object" …), the fields its table lists, in order.
func Sections(path string) (map[string][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string][]string{}
	heading := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "#") {
			heading = strings.Trim(strings.TrimLeft(l, "# "), "`")
			if _, seen := out[heading]; !seen {
				out[heading] = nil // a section without fields of its own
			}
			continue
		}
		if m := row.FindStringSubmatch(l); m != nil && heading != "" {
			out[heading] = append(out[heading], m[1])
		}
	}
	return out, sc.Err()
}
