package cli

import (
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/tuyaflash/tuyaflash/internal/jsondocs"
)

// jsonDocSections reads docs/json.md: the fields each section's table
// lists, by heading ("detect", "firmware list", "The chip object" …).
func jsonDocSections(t *testing.T) map[string][]string {
	t.Helper()
	s, err := jsondocs.Sections("../../docs/json.md")
	if err != nil {
		t.Fatal(err)
	}
	return s
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
