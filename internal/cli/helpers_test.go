package cli

import (
	"bufio"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// jsonDocSections reads docs/json.md: the fields each section's table
// lists, by heading ("detect", "firmware list", "The chip object" …).
func jsonDocSections(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open("../../docs/json.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	row := regexp.MustCompile("^\\| `([a-z_]+)` \\|")
	heading := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "#") {
			heading = strings.Trim(strings.TrimLeft(l, "# "), "`")
			continue
		}
		if m := row.FindStringSubmatch(l); m != nil && heading != "" {
			out[heading] = append(out[heading], m[1])
		}
	}
	return out
}

// jsonFields lists the JSON names of v's top-level fields, embedded
// structs flattened, sorted.
func jsonFields(v any) []string {
	var names []string
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if f.Anonymous && f.Type.Kind() == reflect.Struct {
				walk(f.Type)
				continue
			}
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			names = append(names, name)
		}
	}
	walk(reflect.TypeOf(v))
	sort.Strings(names)
	return names
}

func without(list []string, drop ...string) []string {
	var out []string
	for _, s := range list {
		if !slices.Contains(drop, s) {
			out = append(out, s)
		}
	}
	return out
}
