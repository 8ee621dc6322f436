package firmware

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tuyaflash/tuyaflash/flasher"
)

// The catalogue lives at the repository root (where the issue wants it)
// and is embedded from a copy here; go generate refreshes the copy.
func TestRootManifestIsTheEmbeddedOne(t *testing.T) {
	root, err := os.ReadFile(filepath.Join("..", "firmware-manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(root, defaultManifest) {
		t.Fatal("firmware-manifest.json at the repository root differs from firmware/firmware-manifest.json, the copy built into the binary: edit the root file and run 'go generate ./firmware'")
	}
}

func TestDefaultManifest(t *testing.T) {
	m, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	// What a user gets for each chip with --firmware KIND.
	want := []struct {
		name string
		chip Chip
		path string
	}{
		{"tasmota", Chip{Family: flasher.ESP8266}, "/v15.5.0/tasmota.bin"},
		{"tasmota", Chip{Family: flasher.ESP8285}, "/v15.5.0/tasmota.bin"},
		{"tasmota-lite", Chip{Family: flasher.ESP8266}, "/v15.5.0/tasmota-lite.bin"},
		{"openbeken", Chip{Family: flasher.BK7231T}, "/1.18.299/OpenBK7231T_UA_1.18.299.bin"},
		{"openbeken", Chip{flasher.BK7231N, KeyTuya}, "/1.18.299/OpenBK7231N_QIO_1.18.299.bin"},
		{"openbeken", Chip{flasher.BK7231N, ""}, "/1.18.299/OpenBK7231N_QIO_1.18.299.bin"},
		{"openbeken", Chip{flasher.BK7231N, KeyZero}, "/1.18.299/OpenBK7231M_QIO_1.18.299.bin"},
		{"openbeken", ChipFor(flasher.BK7231M), "/1.18.299/OpenBK7231M_QIO_1.18.299.bin"},
		{"openbeken", Chip{Family: flasher.BK7238}, "/1.18.299/OpenBK7238_QIO_1.18.299.bin"},
		{"openbeken", Chip{Family: flasher.BK7238, EfuseKey: KeyZero}, "/1.18.299/OpenBK7238_QIO_1.18.299.bin"},
		{"openbeken-ua", Chip{Family: flasher.BK7238}, "/1.18.299/OpenBK7238_UA_1.18.299.bin"},
		{"openbeken", Chip{Family: flasher.BK7231U}, "/1.18.299/OpenBK7231U_UA_1.18.299.bin"},
		{"openbeken", Chip{Family: flasher.BK7252}, "/1.18.299/OpenBK7252_UA_1.18.299.bin"},
		{"openbeken", Chip{Family: flasher.BK7252N}, "/1.18.299/OpenBK7252N_QIO_1.18.299.bin"},
		{"openbeken-ua", Chip{Family: flasher.BK7252N}, "/1.18.299/OpenBK7252N_UA_1.18.299.bin"},
	}
	for _, w := range want {
		ch, err := m.Lookup(w.name, w.chip)
		if err != nil {
			t.Errorf("%s on %+v: %v", w.name, w.chip, err)
			continue
		}
		if p := ch.Build.Parts[0].Path; !strings.HasSuffix(p, w.path) {
			t.Errorf("%s on %+v: %s, want …%s", w.name, w.chip, p, w.path)
		}
	}
	// Every pinned entry names its release; only the moving alias does not.
	for _, fw := range m.Firmwares {
		for _, b := range fw.Builds {
			for _, p := range b.Parts {
				switch {
				case fw.UserFile:
				case fw.Moving:
					if p.SHA256 != "" {
						t.Errorf("%s: moving alias with a checksum", fw.Name)
					}
				case p.Source == nil || p.Source.Type != "github-release":
					t.Errorf("%s %s: pinned entry without a github-release source", fw.Name, b.ChipFamily)
				}
			}
		}
	}
	if _, err := m.Lookup("openbeken", Chip{Family: flasher.ESP8266}); !errors.Is(err, flasher.ErrRefused) {
		t.Errorf("openbeken on an ESP8266: %v, want refused", err)
	}
	if _, err := m.Lookup("openbeken", Chip{flasher.BK7231N, "other"}); err == nil {
		t.Error("openbeken on a chip with a foreign key: no error")
	}
	if _, err := m.Lookup("nosuch", Chip{Family: flasher.ESP8266}); err == nil || flasher.Hint(err) == "" {
		t.Errorf("unknown name: %v", err)
	}
	if n := len(m.Fits(Chip{Family: flasher.BK7231N, EfuseKey: KeyZero})); n != 2 {
		t.Errorf("%d entries fit a zero-key BK7231N, want openbeken and esphome", n)
	}
}

// TestSchemaMatchesValidator keeps the editor schema's enumerations and
// fields in step with the Go types and validation.
func TestSchemaMatchesValidator(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "firmware-manifest.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Properties map[string]json.RawMessage `json:"properties"`
		Defs       map[string]struct {
			Properties map[string]struct {
				Enum []string `json:"enum"`
			} `json:"properties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	enum := func(def, prop string) []string {
		e := s.Defs[def].Properties[prop].Enum
		slices.Sort(e)
		return e
	}
	sorted := func(xs []string) []string { slices.Sort(xs); return xs }
	strs := func(v any) []string {
		rv := reflect.ValueOf(v)
		out := make([]string, rv.Len())
		for i := range out {
			out[i] = rv.Index(i).String()
		}
		return sorted(out)
	}
	checks := []struct {
		what      string
		got, want []string
	}{
		{"kind", enum("firmware", "kind"), strs(kinds)},
		{"chipFamily", enum("build", "chipFamily"), strs(Families)},
		{"format", enum("part", "format"), strs(catalogueFormats)},
		{"source.type", enum("source", "type"), sorted(slices.Clone(sourceTypes))},
		{"efuse_key", enum("build", "efuse_key"), []string{KeyTuya, KeyZero}},
	}
	for _, c := range checks {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("schema %s enum %v, validator %v", c.what, c.got, c.want)
		}
	}
	fields := func(typ reflect.Type) []string {
		var out []string
		for i := range typ.NumField() {
			if n, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ","); n != "" && n != "-" {
				out = append(out, n)
			}
		}
		return sorted(out)
	}
	keys := func(m map[string]json.RawMessage) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		return sorted(out)
	}
	defKeys := func(def string) []string {
		var out []string
		for k := range s.Defs[def].Properties {
			out = append(out, k)
		}
		return sorted(out)
	}
	for _, c := range []struct {
		def string
		got []string
		typ reflect.Type
	}{
		{"(top)", keys(s.Properties), reflect.TypeFor[Manifest]()},
		{"firmware", defKeys("firmware"), reflect.TypeFor[Firmware]()},
		{"build", defKeys("build"), reflect.TypeFor[Build]()},
		{"part", defKeys("part"), reflect.TypeFor[Part]()},
		{"source", defKeys("source"), reflect.TypeFor[Source]()},
	} {
		if want := fields(c.typ); !slices.Equal(c.got, want) {
			t.Errorf("schema %s properties %v, Go fields %v", c.def, c.got, want)
		}
	}
	// The shipped catalogue points at the schema.
	m, _ := Default()
	if m.Schema != "./firmware-manifest.schema.json" {
		t.Errorf("$schema is %q", m.Schema)
	}
}

// validManifest is a small valid catalogue the error tests mutate.
const validManifest = `{
  "name": "test",
  "firmwares": [
    {"name": "obk", "kind": "openbeken", "version": "1.2.3",
     "builds": [
       {"chipFamily": "BK7231T", "parts": [{"path": "https://github.com/o/r/releases/download/1.2.3/OpenBK7231T_UA_1.2.3.bin", "offset": 69632, "format": "beken-ua",
         "source": {"type": "github-release", "repo": "o/r", "tag": "1.2.3", "asset": "OpenBK7231T_UA_1.2.3.bin", "asset_pattern": "^OpenBK7231T_UA_.*\\.bin$"}}]},
       {"chipFamily": "BK7231N", "efuse_key": "tuya", "parts": [{"path": "files/OpenBK7231N_QIO_1.2.3.bin", "offset": 0, "skip": 69632, "format": "beken-qio"}]}
     ]},
    {"name": "t", "kind": "tasmota", "version": "9.9", "builds": [{"chipFamily": "ESP8266", "flash_mode": "dout",
       "parts": [{"path": "https://example.invalid/9.9/tasmota.bin", "offset": 0, "format": "esp-app", "sha256": "` + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + `"}]}]}
  ]
}`

func TestManifestErrorsNameTheField(t *testing.T) {
	if _, err := Parse([]byte(validManifest), "test", ""); err != nil {
		t.Fatalf("the base manifest is invalid: %v", err)
	}
	tests := []struct {
		name     string
		old, new string
		path     string // the field the error must name
		msg      string
	}{
		{"syntax", `"name": "test",`, `"name": "test"`, "", "line 3, column 3"},
		{"unknown field", `"sha256": "0123`, `"sha265": "0123`, "firmwares[1].builds[0].parts[0].sha265", "unknown field"},
		{"wrong type", `"offset": 69632`, `"offset": "69632"`, "firmwares[0].builds[0].parts[0].offset", "must be a number"},
		{"negative", `"offset": 69632`, `"offset": -1`, "firmwares[0].builds[0].parts[0].offset", "negative"},
		{"kind", `"kind": "tasmota"`, `"kind": "tasmot"`, "firmwares[1].kind", "none of tasmota, esphome, openbeken"},
		{"chip family", `"chipFamily": "ESP8266"`, `"chipFamily": "ESP32"`, "firmwares[1].builds[0].chipFamily", "none of"},
		{"format for the chip", `"format": "esp-app"`, `"format": "beken-ua"`, "firmwares[1].builds[0].parts[0].format", "does not fit a ESP8266 build"},
		{"UA offset", `"offset": 69632, "format": "beken-ua"`, `"offset": 0, "format": "beken-ua"`, "firmwares[0].builds[0].parts[0].offset", "must be 69632 (0x11000)"},
		{"QIO skip", `"skip": 69632`, `"skip": 0`, "firmwares[0].builds[1].parts[0].skip", "must be 69632"},
		{"BK7238 QIO is written whole", `"chipFamily": "BK7231N", "efuse_key": "tuya"`, `"chipFamily": "BK7238"`, "firmwares[0].builds[1].parts[0].skip", "must be 0 (0x0) for a beken-qio part"},
		{"efuse key on BK7238", `"chipFamily": "BK7231N", "efuse_key": "tuya"`, `"chipFamily": "BK7238", "efuse_key": "zero"`, "firmwares[0].builds[1].efuse_key", "only BK7231N"},
		{"sha256", `"sha256": "0123`, `"sha256": "X123`, "firmwares[1].builds[0].parts[0].sha256", "64 lower-case hex"},
		{"unversioned address", `example.invalid/9.9/tasmota.bin`, `example.invalid/release/tasmota.bin`, "firmwares[1].builds[0].parts[0].path", "versioned address"},
		{"github path", `releases/download/1.2.3/OpenBK7231T_UA_1.2.3.bin"`, `releases/download/1.2.3/OpenBK7231T_UA_1.2.3.bin?x=1.2.3"`, "firmwares[0].builds[0].parts[0].path", "release asset's address"},
		{"asset pattern", `"asset_pattern": "^OpenBK7231T_UA_.*\\.bin$"`, `"asset_pattern": "^nope$"`, "firmwares[0].builds[0].parts[0].source.asset_pattern", "does not match"},
		{"efuse key on T", `{"chipFamily": "BK7231T", "parts"`, `{"chipFamily": "BK7231T", "efuse_key": "zero", "parts"`, "firmwares[0].builds[0].efuse_key", "only BK7231N"},
		{"flash mode on Beken", `"efuse_key": "tuya",`, `"efuse_key": "tuya", "flash_mode": "dout",`, "firmwares[0].builds[1].flash_mode", "only ESP8266"},
		{"bad flash mode", `"flash_mode": "dout"`, `"flash_mode": "fast"`, "firmwares[1].builds[0].flash_mode", "unknown flash mode"},
		{"duplicate name", `"name": "t"`, `"name": "obk"`, "firmwares[1].name", "also the name of firmwares[0]"},
		{"bad name", `"name": "t"`, `"name": "T T"`, "firmwares[1].name", "lower-case"},
		{"moving with sha", `"name": "t", "kind": "tasmota",`, `"name": "t", "kind": "tasmota", "moving": true,`, "firmwares[1].builds[0].parts[0].sha256", "moving alias"},
		{"missing path", `"path": "files/OpenBK7231N_QIO_1.2.3.bin", `, ``, "firmwares[0].builds[1].parts[0].path", "is required"},
		{"no builds", `"builds": [{"chipFamily": "ESP8266"`, `"builds": [], "x": [{"chipFamily": "ESP8266"`, "firmwares[1].x", "unknown field"},
		{"object expected", `"source": {"type"`, `"source": 5, "zz": {"type"`, "firmwares[0].builds[0].parts[0].source", "must be an object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(validManifest, tc.old) {
				t.Fatalf("test bug: %q not in the base manifest", tc.old)
			}
			_, err := Parse([]byte(strings.Replace(validManifest, tc.old, tc.new, 1)), "m.json", "")
			var me *ManifestError
			if !errors.As(err, &me) {
				t.Fatalf("err = %v, want a ManifestError", err)
			}
			for _, p := range me.Problems {
				if p.Path == tc.path && strings.Contains(p.Msg, tc.msg) {
					return
				}
			}
			t.Errorf("no problem at %q mentioning %q in:\n%v", tc.path, tc.msg, err)
		})
	}
}

func TestLoadFromURLResolvesRelativePaths(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cat/manifest.json" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(validManifest))
	}))
	defer srv.Close()
	m, err := Load(context.Background(), srv.Client(), srv.URL+"/cat/manifest.json", false)
	if err != nil {
		t.Fatal(err)
	}
	p := &m.Firmwares[0].Builds[1].Parts[0]
	if got, want := m.Location(p), srv.URL+"/cat/files/OpenBK7231N_QIO_1.2.3.bin"; got != want {
		t.Errorf("relative path resolves to %s, want %s", got, want)
	}
	if _, err := Load(context.Background(), srv.Client(), srv.URL+"/missing.json", false); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("missing manifest: %v", err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "m.json"), []byte(validManifest), 0o644)
	m, err = Load(context.Background(), nil, filepath.Join(dir, "m.json"), false)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Location(&m.Firmwares[0].Builds[1].Parts[0]); got != filepath.Join(dir, "files", "OpenBK7231N_QIO_1.2.3.bin") {
		t.Errorf("file manifest: relative path resolves to %s", got)
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(validManifest))
	f.Add(DefaultBytes())
	f.Add([]byte(`{"name":"x","firmwares":[{"name":"a","kind":"esphome","user_file":true,"builds":[{"chipFamily":"BK7231N","parts":[{"offset":0,"format":"uf2"}]}]}]}`))
	f.Add([]byte(`[1,2`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data, "fuzz", "")
		if err != nil {
			var me *ManifestError
			if !errors.As(err, &me) || len(me.Problems) == 0 || err.Error() == "" {
				t.Fatalf("unclear error %T %v", err, err)
			}
			return
		}
		for _, fw := range m.Firmwares {
			for _, fam := range Families {
				if b := fw.BuildFor(Chip{Family: fam}); b != nil && len(b.Parts) == 0 {
					t.Fatal("valid manifest with an empty build")
				}
			}
		}
	})
}
