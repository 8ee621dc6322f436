package firmware

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/tuyaflash/tuyaflash/flasher"
)

//go:generate cp ../firmware-manifest.json firmware-manifest.json

// defaultManifest is a copy of firmware-manifest.json at the repository
// root (go:embed cannot reach outside the package directory); a test
// keeps the two identical.
//
//go:embed firmware-manifest.json
var defaultManifest []byte

// Manifest is the firmware catalogue. Each entry of Firmwares has the
// shape of an ESP Web Tools manifest (name, version, builds per
// chipFamily with parts at offsets; esp-web-tools src/const.ts) extended
// with what serial flashing of Tuya modules needs: the firmware kind, Beken
// chip families, per-part format, skip, sha256 and size, the ESP flash
// mode and where the file comes from.
type Manifest struct {
	Schema    string     `json:"$schema,omitempty"`
	Name      string     `json:"name"`
	Version   string     `json:"version"`
	Firmwares []Firmware `json:"firmwares"`

	// base resolves relative part paths: the manifest's URL or folder.
	base string
}

// Kind is the firmware project.
type Kind string

// The kinds.
const (
	KindTasmota   Kind = "tasmota"
	KindESPHome   Kind = "esphome"
	KindOpenBeken Kind = "openbeken"
)

var kinds = []Kind{KindTasmota, KindESPHome, KindOpenBeken}

// Firmware is one catalogue entry.
type Firmware struct {
	// Name is what --firmware takes ("tasmota", "openbeken").
	Name    string `json:"name"`
	Kind    Kind   `json:"kind"`
	Title   string `json:"title,omitempty"`
	Version string `json:"version"`
	Home    string `json:"home,omitempty"`
	// Moving marks an alias whose address always serves the newest
	// release: never pinned, checked by content only.
	Moving bool `json:"moving,omitempty"`
	// UserFile marks firmware built per device (ESPHome): its parts have
	// no path and the user passes the file.
	UserFile bool   `json:"user_file,omitempty"`
	Notes    string `json:"notes,omitempty"`
	// NewInstallPromptErase is carried over from ESP Web Tools.
	NewInstallPromptErase bool    `json:"new_install_prompt_erase,omitempty"`
	Builds                []Build `json:"builds"`
}

// Build is the firmware for one chip family (and, on BK7231N, one eFuse
// key).
type Build struct {
	ChipFamily flasher.Family `json:"chipFamily"`
	// EfuseKey restricts a BK7231N build to chips with that key
	// (KeyTuya, KeyZero).
	EfuseKey string `json:"efuse_key,omitempty"`
	// FlashMode is the ESP flash mode the header must have ("dout" …).
	FlashMode string `json:"flash_mode,omitempty"`
	Parts     []Part `json:"parts"`
}

// Part is one file of a build.
type Part struct {
	// Path is the download address: an absolute URL, or a path relative
	// to the manifest's URL or folder. Empty for user files.
	Path string `json:"path,omitempty"`
	// Offset is where the file starts in flash, as in ESP Web Tools.
	Offset uint32 `json:"offset"`
	Format Format `json:"format"`
	// Skip is how many leading bytes are not written by default (the
	// bootloader part of a Beken QIO image).
	Skip   int     `json:"skip,omitempty"`
	SHA256 string  `json:"sha256,omitempty"`
	Size   int     `json:"size,omitempty"`
	Source *Source `json:"source,omitempty"`
}

// Source says where a part is published.
type Source struct {
	// Type is "github-release" or "url".
	Type  string `json:"type"`
	Repo  string `json:"repo,omitempty"`
	Tag   string `json:"tag,omitempty"`
	Asset string `json:"asset,omitempty"`
	// AssetPattern matches the asset of other releases (for updating
	// the catalogue), e.g. ^OpenBK7231N_QIO_(\d+\.\d+\.\d+)\.bin$.
	AssetPattern string `json:"asset_pattern,omitempty"`
}

// Problem is one thing wrong in a manifest; Path names the field
// ("firmwares[2].builds[0].parts[0].sha256").
type Problem struct {
	Path string
	Msg  string
}

// ManifestError lists what is wrong with a manifest.
type ManifestError struct {
	Source   string
	Problems []Problem
}

func (e *ManifestError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "firmware manifest %s is not valid:", e.Source)
	for _, p := range e.Problems {
		if p.Path == "" {
			fmt.Fprintf(&b, "\n  %s", p.Msg)
		} else {
			fmt.Fprintf(&b, "\n  %s: %s", p.Path, p.Msg)
		}
	}
	return b.String()
}

// maxManifestSize bounds what Load reads.
const maxManifestSize = 4 << 20

// Default returns the catalogue built into tuyaflash.
func Default() (*Manifest, error) { return Parse(defaultManifest, "(built-in)", "") }

// DefaultBytes returns the built-in catalogue as JSON.
func DefaultBytes() []byte { return bytes.Clone(defaultManifest) }

// Load reads a manifest from src: "" for the built-in one, an https URL
// (http only with allowHTTP or on this machine, see CheckURL; fetched with
// client, nil for NewHTTPClient, within two minutes and at most 4 MiB), or
// a file. Relative part paths resolve against the manifest's URL or
// folder.
func Load(ctx context.Context, client *http.Client, src string, allowHTTP bool) (*Manifest, error) {
	if src == "" {
		return Default()
	}
	if isURL(src) {
		if err := CheckURL(src, allowHTTP); err != nil {
			return nil, fmt.Errorf("firmware manifest: %w", err)
		}
		ctx, cancel := context.WithTimeout(ctx, manifestTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
		if err != nil {
			return nil, fmt.Errorf("firmware manifest %s: %w", src, err)
		}
		resp, err := withPolicy(client, allowHTTP).Do(req)
		if err != nil {
			return nil, &flasher.HintError{Err: fmt.Errorf("firmware manifest: %w", err), Hint: "check the network, or pass a manifest file with --manifest FILE"}
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("firmware manifest %s: HTTP %s", src, resp.Status)
		}
		if resp.ContentLength > maxManifestSize {
			return nil, fmt.Errorf("firmware manifest %s is larger than 4 MiB (%d bytes announced)", src, resp.ContentLength)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
		if err != nil {
			return nil, fmt.Errorf("firmware manifest %s: %w", src, err)
		}
		if len(data) > maxManifestSize {
			return nil, fmt.Errorf("firmware manifest %s is larger than 4 MiB", src)
		}
		return Parse(data, src, src)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return nil, fmt.Errorf("firmware manifest: %w", err)
	}
	abs, err := filepath.Abs(filepath.Dir(src))
	if err != nil {
		return nil, err
	}
	return Parse(data, src, abs)
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://")
}

// Parse decodes and validates a manifest. source names it in errors; base
// is the URL or folder relative part paths resolve against.
func Parse(data []byte, source, base string) (*Manifest, error) {
	fail := func(path, format string, args ...any) error {
		return &ManifestError{Source: source, Problems: []Problem{{path, fmt.Sprintf(format, args...)}}}
	}
	var raw any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := lineCol(data, se.Offset)
			return nil, fail("", "JSON syntax error at line %d, column %d: %v", line, col, se)
		}
		if errors.Is(err, io.EOF) {
			return nil, fail("", "the file is empty")
		}
		return nil, fail("", "%v", err)
	}
	if dec.More() {
		return nil, fail("", "more than one JSON value in the file")
	}
	if _, ok := raw.(map[string]any); !ok {
		return nil, fail("", "the manifest must be a JSON object")
	}
	var probs []Problem
	checkShape(raw, reflect.TypeFor[Manifest](), "", &probs)
	if len(probs) > 0 {
		return nil, &ManifestError{Source: source, Problems: probs}
	}
	m := &Manifest{base: base}
	if err := json.Unmarshal(data, m); err != nil {
		return nil, fail("", "%v", err)
	}
	if probs := m.validate(); len(probs) > 0 {
		return nil, &ManifestError{Source: source, Problems: probs}
	}
	return m, nil
}

func lineCol(data []byte, off int64) (line, col int) {
	// Offset counts the offending byte; point at it.
	off = min(max(off-1, 0), int64(len(data)))
	before := data[:off]
	line = bytes.Count(before, []byte{'\n'}) + 1
	col = int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// checkShape walks the decoded JSON alongside the Go type and reports
// unknown keys and values of the wrong JSON type, each with its path.
func checkShape(v any, t reflect.Type, path string, probs *[]Problem) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	at := func(format string, args ...any) {
		*probs = append(*probs, Problem{path, fmt.Sprintf(format, args...)})
	}
	if v == nil {
		return // null is the zero value
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			at("must be an object, not %s", jsonType(v))
			return
		}
		fields := map[string]reflect.StructField{}
		for i := range t.NumField() {
			f := t.Field(i)
			if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
				fields[name] = f
			}
		}
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			f, ok := fields[k]
			sub := join(path, k)
			if !ok {
				*probs = append(*probs, Problem{sub, "unknown field (misspelt?)"})
				continue
			}
			checkShape(obj[k], f.Type, sub, probs)
		}
	case reflect.Slice:
		arr, ok := v.([]any)
		if !ok {
			at("must be a list, not %s", jsonType(v))
			return
		}
		for i, e := range arr {
			checkShape(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), probs)
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			at("must be a string, not %s", jsonType(v))
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			at("must be true or false, not %s", jsonType(v))
		}
	case reflect.Int, reflect.Uint32:
		n, ok := v.(json.Number)
		if !ok {
			at("must be a number, not %s", jsonType(v))
			return
		}
		i, err := n.Int64()
		switch {
		case err != nil:
			at("must be a whole number, not %s", n)
		case i < 0:
			at("must not be negative")
		case t.Kind() == reflect.Uint32 && i > 0xFFFFFFFF:
			at("%d is too large", i)
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func jsonType(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	}
	return "null"
}

// Location returns where a part is fetched from: an absolute URL or a
// local file path ("" for user files).
func (m *Manifest) Location(p *Part) string {
	if p.Path == "" {
		return ""
	}
	if isURL(p.Path) {
		return p.Path
	}
	if isURL(m.base) {
		b, err := url.Parse(m.base)
		if err != nil {
			return p.Path
		}
		r, err := b.Parse(p.Path)
		if err != nil {
			return p.Path
		}
		return r.String()
	}
	if filepath.IsAbs(p.Path) || m.base == "" {
		return p.Path
	}
	return filepath.Join(m.base, filepath.FromSlash(p.Path))
}
