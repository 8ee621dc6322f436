package tuyaconfig

import (
	"bytes"
	"crypto/aes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"testing"

	espsim "github.com/tuyaflash/tuyaflash/devicesim/esp8266"
	"github.com/tuyaflash/tuyaflash/flasher"
)

// This file holds a test-only encoder of Tuya's ESP8266 PSM store,
// written from the description in more-chips.md §4 (no real ESP8266 Tuya
// dump is available): 4 KiB sectors, the first starting with "PSM1",
// "key=value" strings separated by NUL or 0xFF, optionally AES-128-ECB
// over whole sectors with the key "Qby6"+X+"TH9bj8GiexU".

// synthPSM describes a store to encode.
type synthPSM struct {
	entries []string // "key=value"
	sep     byte     // separator after each entry (0x00 or 0xFF)
	// headerEverySector starts every sector with PSM1 and never lets an
	// entry run into the next sector; otherwise only the first sector has
	// the header and entries run on across sector boundaries.
	headerEverySector bool
	stray             []byte // bytes written before every key name
	pad               int    // bytes of separator before the first entry
}

// sectors returns the plaintext sectors of the store.
func (p synthPSM) sectors() [][]byte {
	var out [][]byte
	newSector := func() *bytes.Buffer {
		b := &bytes.Buffer{}
		b.WriteString("PSM1")
		b.Write(bytes.Repeat([]byte{p.sep}, p.pad))
		return b
	}
	cur := newSector()
	for _, e := range p.entries {
		rec := append(append(append([]byte(nil), p.stray...), e...), p.sep)
		if p.headerEverySector && cur.Len()+len(rec) > sectorSize {
			out = append(out, cur.Bytes())
			cur = newSector()
		}
		cur.Write(rec)
	}
	stream := cur.Bytes()
	if p.headerEverySector {
		out = append(out, stream)
	} else {
		out = nil
		for len(stream) > sectorSize {
			out = append(out, stream[:sectorSize])
			stream = stream[sectorSize:]
		}
		out = append(out, stream)
	}
	for i, s := range out {
		s = append(s[:len(s):len(s)], bytes.Repeat([]byte{0xFF}, sectorSize-len(s))...)
		out[i] = s
	}
	return out
}

// encryptPSMSectors encrypts every sector with "Qby6"+x+"TH9bj8GiexU"
// (the key is spelled out here, not taken from psmKey).
func encryptPSMSectors(t testing.TB, secs [][]byte, x byte) [][]byte {
	key := append(append([]byte("Qby6"), x), []byte("TH9bj8GiexU")...)
	if len(key) != 16 {
		t.Fatalf("key is %d bytes", len(key))
	}
	c, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, len(secs))
	for i, s := range secs {
		e := make([]byte, len(s))
		for j := 0; j < len(s); j += 16 {
			c.Encrypt(e[j:j+16], s[j:j+16])
		}
		out[i] = e
	}
	return out
}

// espFlash returns a 1 MiB ESP8266 flash: an image header at 0x0, 0xFF
// elsewhere, and the given sectors from at on.
func espFlash(at int, secs [][]byte) []byte {
	img := bytes.Repeat([]byte{0xFF}, 0x100000)
	copy(img, []byte{0xE9, 0x03, 0x02, 0x20, 0x04, 0x00, 0x10, 0x40})
	for i, s := range secs {
		copy(img[at+i*sectorSize:], s)
	}
	return img
}

const (
	psmLocalKey = "a1b2c3d4e5f6a7b8"
	psmSSID     = "HomeNet-PSM"
	psmPass     = "wifi-pass-PSM!"
	psmDevID    = "bf0123456789abcdef01"
)

// psmBase is a store like the ones the GUI reader expects: Tuya's keys
// with the ty_ws_/gw_ prefixes, the Wi-Fi pair and the local key.
func psmBase() []string {
	return []string{
		"ty_ws_ver=1.0.3",
		"gw_id=" + psmDevID,
		"local_key=" + psmLocalKey,
		"ssid=" + psmSSID,
		"passwd=" + psmPass,
		`user_param_key={"module":"TYWE3S","rl1_pin":12,"rl1_lv":1,"bt1_pin":0,"bt1_lv":0,"netled1_pin":13,"netled1_lv":0}`,
		"ESP.flash_mode=dout",
	}
}

// filler returns n entries of about 100 bytes each.
func filler(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("ty_ws_dp_%03d=%s", i, strings.Repeat(string(rune('a'+i%26)), 84)))
	}
	return out
}

func TestParsePSM(t *testing.T) {
	long := append(filler(45), psmBase()...) // ~5 KiB: two sectors
	tests := []struct {
		name      string
		psm       synthPSM
		x         int // key byte; -1 = plaintext
		at        int
		extract   bool // the store alone, not a whole flash
		wantSecs  int
		wantOrder []string // a prefix of the key order
	}{
		{name: "plaintext, NUL-separated", psm: synthPSM{entries: psmBase(), sep: 0}, x: -1, at: UsualPSMOffset, wantSecs: 1,
			wantOrder: []string{"ty_ws_ver", "gw_id", "local_key", "ssid", "passwd", "user_param_key", "ESP.flash_mode"}},
		{name: "plaintext, 0xFF-separated, stray bytes before keys", psm: synthPSM{entries: psmBase(), sep: 0xFF, stray: []byte{0x03, '!'}, pad: 12},
			x: -1, at: UsualPSMOffset, wantSecs: 1},
		{name: "encrypted, key byte 0x00", psm: synthPSM{entries: psmBase()}, x: 0x00, at: UsualPSMOffset, wantSecs: 1},
		{name: "encrypted, key byte 0x5A", psm: synthPSM{entries: psmBase(), sep: 0xFF}, x: 0x5A, at: UsualPSMOffset, wantSecs: 1},
		{name: "encrypted, key byte 0xFF", psm: synthPSM{entries: psmBase()}, x: 0xFF, at: UsualPSMOffset, wantSecs: 1},
		{name: "encrypted, key byte 0x80, elsewhere in flash", psm: synthPSM{entries: psmBase()}, x: 0x80, at: 0x3FC000 % 0x100000, wantSecs: 1},
		{name: "split over sectors, entries run across the boundary", psm: synthPSM{entries: long}, x: -1, at: UsualPSMOffset, wantSecs: 2},
		{name: "split over sectors, encrypted", psm: synthPSM{entries: long}, x: 0x37, at: UsualPSMOffset, wantSecs: 2},
		{name: "split over sectors, a header on each", psm: synthPSM{entries: append(filler(70), psmBase()...), headerEverySector: true},
			x: 0xC3, at: UsualPSMOffset, wantSecs: 2},
		{name: "store extracted alone", psm: synthPSM{entries: long}, x: 0x11, extract: true, wantSecs: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secs := tt.psm.sectors()
			if len(secs) != tt.wantSecs {
				t.Fatalf("fixture has %d sectors, want %d", len(secs), tt.wantSecs)
			}
			if tt.x >= 0 {
				secs = encryptPSMSectors(t, secs, byte(tt.x))
			}
			img := espFlash(tt.at, secs)
			if tt.extract {
				img = bytes.Join(secs, nil)
			}
			cfg, err := Parse(img)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			p := cfg.PSM
			if p == nil {
				t.Fatal("no PSM info")
			}
			if p.Offset != tt.at || p.Sectors != tt.wantSecs || p.Encrypted != (tt.x >= 0) || (tt.x >= 0 && p.KeyByte != tt.x) {
				t.Errorf("PSM info %+v; want offset 0x%X, %d sectors, key byte %d", *p, tt.at, tt.wantSecs, tt.x)
			}
			for _, c := range []struct{ what, got, want string }{
				{"local key", cfg.LocalKey, psmLocalKey},
				{"SSID", cfg.WiFiSSID, psmSSID},
				{"password", cfg.WiFiPassword, psmPass},
				{"device id", cfg.DeviceID, psmDevID},
				{"module", cfg.Module, "TYWE3S"},
				{"chip", cfg.Chip, "ESP8266"},
				{"ESP. key", cfg.Text("ESP.flash_mode"), "dout"},
			} {
				if c.got != c.want {
					t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
				}
			}
			if !cfg.Activated {
				t.Error("a device with a device id is activated")
			}
			wantKeys := len(tt.psm.entries)
			if len(cfg.Keys) != wantKeys || len(p.Order) != wantKeys {
				t.Errorf("%d keys, order %d; want %d", len(cfg.Keys), len(p.Order), wantKeys)
			}
			for i, k := range tt.wantOrder {
				if i >= len(p.Order) || p.Order[i] != k {
					t.Errorf("order %v, want prefix %v", p.Order, tt.wantOrder)
					break
				}
			}
			for _, e := range tt.psm.entries {
				k, v, _ := strings.Cut(e, "=")
				if got := cfg.Text(k); got != v && !strings.HasPrefix(v, "{") {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			fns := cfg.UserParams.Functions()
			if len(fns) != 3 || fns[0].Role != RoleRelay || fns[0].Pin != 12 || fns[0].Level != ActiveHigh {
				t.Errorf("pin map %+v", fns)
			}
			if len(cfg.Notes) != 0 {
				t.Errorf("notes on a clean store: %v", cfg.Notes)
			}
		})
	}
}

// TestPSMSecretsHidden: the local key, SSID and password appear only when
// asked, in the summary, the JSON and the listing of every entry.
func TestPSMSecretsHidden(t *testing.T) {
	secs := encryptPSMSectors(t, synthPSM{entries: append(psmBase(), "auth_key=AUTHKEYPSM0001", "psk_key=PSKKEYPSM0001")}.sectors(), 0x42)
	cfg, err := Parse(espFlash(UsualPSMOffset, secs))
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{psmLocalKey, psmSSID, psmPass, "AUTHKEYPSM0001", "PSKKEYPSM0001"}
	js, err := cfg.JSON(false)
	if err != nil {
		t.Fatal(err)
	}
	hidden := cfg.Summary(false)
	for name, out := range map[string]string{"summary": hidden, "JSON": string(js)} {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s shows a secret of %d chars without --show-secrets", name, len(s))
			}
		}
	}
	for _, want := range []string{"ESP8266 PSM store at 0x07B000, 1 sector, AES-128-ECB, key byte 0x42", psmDevID, "TYWE3S",
		"PSM entries (9):", "  local_key = " + Hidden, "  ssid = " + Hidden, "  ty_ws_ver = 1.0.3", "relay 1 (active high)",
		"--show-secrets to see them"} {
		if !strings.Contains(hidden, want) {
			t.Errorf("summary lacks %q:\n%s", want, hidden)
		}
	}
	shown := cfg.Summary(true)
	jsShown, _ := cfg.JSON(true)
	for _, s := range secrets {
		if !strings.Contains(shown, s) || !strings.Contains(string(jsShown), s) {
			t.Errorf("a secret of %d chars missing with --show-secrets", len(s))
		}
	}
	var back Config
	if err := json.Unmarshal(js, &back); err != nil || back.PSM == nil || back.PSM.KeyByte != 0x42 || back.WiFiSSID != Hidden {
		t.Errorf("redacted JSON: %v %+v", err, back.PSM)
	}
	if cfg.LocalKey != psmLocalKey || cfg.Text("passwd") != psmPass {
		t.Error("Redacted changed the original")
	}
}

func TestPSMDamage(t *testing.T) {
	long := append(filler(84), psmBase()...) // three sectors, the secrets in the last
	base := synthPSM{entries: long}.sectors()
	if len(base) != 3 {
		t.Fatalf("fixture has %d sectors", len(base))
	}
	const at = UsualPSMOffset
	tests := []struct {
		name       string
		x          int
		mutate     func(img []byte) []byte
		wantBlocks []int // DamageError blocks; nil = no error
		wantNote   string
		check      func(t *testing.T, cfg *Config)
	}{
		{
			name: "middle sector overwritten",
			x:    -1,
			mutate: func(img []byte) []byte {
				rand.New(rand.NewSource(2)).Read(img[at+sectorSize : at+2*sectorSize])
				return img
			},
			wantBlocks: []int{at + sectorSize},
			check: func(t *testing.T, cfg *Config) {
				if cfg.LocalKey != psmLocalKey || cfg.Text("ty_ws_dp_000") == "" {
					t.Error("entries around the damaged sector were lost")
				}
				if cfg.PSM.Sectors != 3 {
					t.Errorf("sectors %d, want 3", cfg.PSM.Sectors)
				}
			},
		},
		{
			name: "middle sector erased, encrypted",
			x:    0x99,
			mutate: func(img []byte) []byte {
				copy(img[at+sectorSize:], bytes.Repeat([]byte{0xFF}, sectorSize))
				return img
			},
			check: func(t *testing.T, cfg *Config) {
				if cfg.LocalKey != psmLocalKey || !hasBlock(cfg, at+sectorSize, "erased") {
					t.Errorf("local key %q, blocks %+v", cfg.LocalKey, cfg.Blocks)
				}
			},
		},
		{
			name: "one AES block garbled",
			x:    0x07,
			mutate: func(img []byte) []byte {
				img[at+16+3] ^= 0x40 // the second AES block of the header sector
				return img
			},
			wantNote: "not a key=value string",
			check: func(t *testing.T, cfg *Config) {
				if cfg.LocalKey != psmLocalKey || len(cfg.Keys) < len(long)-2 {
					t.Errorf("%d keys survive of %d", len(cfg.Keys), len(long))
				}
			},
		},
		{
			name:       "dump cut inside the store",
			x:          0x21,
			mutate:     func(img []byte) []byte { return img[:at+2*sectorSize+100] }, // inside "local_key=…"
			wantBlocks: []int{at + 2*sectorSize},
			wantNote:   "cut by the end of the input",
			check: func(t *testing.T, cfg *Config) {
				if cfg.Text("ty_ws_dp_000") == "" || cfg.DeviceID != psmDevID || cfg.LocalKey != "" {
					t.Errorf("cut store: dp_000 %q, device id %q, local key %q", cfg.Text("ty_ws_dp_000"), cfg.DeviceID, cfg.LocalKey)
				}
			},
		},
		{
			name: "key stored twice, the last copy wins",
			x:    -1,
			mutate: func(img []byte) []byte {
				s := synthPSM{entries: append(psmBase(), "local_key=NEWERLOCALKEY001")}.sectors()
				copy(img[at:], s[0])
				copy(img[at+sectorSize:], bytes.Repeat([]byte{0xFF}, 2*sectorSize))
				return img
			},
			wantNote: "local_key is stored 2 times",
			check: func(t *testing.T, cfg *Config) {
				if cfg.LocalKey != "NEWERLOCALKEY001" {
					t.Errorf("local key %q", cfg.LocalKey)
				}
			},
		},
		{
			name: "two sectors of other data end the store",
			x:    -1,
			mutate: func(img []byte) []byte {
				copy(img[at+sectorSize:], bytes.Repeat([]byte{0x00, 0x12, 0x34, 0x56}, 2*sectorSize/4))
				copy(img[at+3*sectorSize:], synthPSM{entries: []string{"ssid=later"}}.sectors()[0][4:])
				return img
			},
			check: func(t *testing.T, cfg *Config) {
				if cfg.PSM.Sectors != 1 || cfg.WiFiSSID != "" {
					t.Errorf("store ran on: %d sectors, ssid %q", cfg.PSM.Sectors, cfg.WiFiSSID)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secs := base
			if tt.x >= 0 {
				secs = encryptPSMSectors(t, base, byte(tt.x))
			}
			cfg, err := Parse(tt.mutate(espFlash(at, secs)))
			if cfg == nil || cfg.PSM == nil {
				t.Fatalf("no config: %v", err)
			}
			if tt.x >= 0 && cfg.PSM.KeyByte != tt.x {
				t.Errorf("key byte %d", cfg.PSM.KeyByte)
			}
			var dmg *DamageError
			switch {
			case tt.wantBlocks == nil && err != nil:
				t.Errorf("unexpected error %v", err)
			case tt.wantBlocks != nil && (!errors.As(err, &dmg) || !errors.Is(err, ErrDamaged)):
				t.Errorf("err %v, want a DamageError", err)
			case tt.wantBlocks != nil:
				for _, off := range tt.wantBlocks {
					if !strings.Contains(err.Error(), fmt.Sprintf("0x%06X", off)) {
						t.Errorf("DamageError does not name 0x%06X: %v", off, err)
					}
				}
				if !strings.Contains(cfg.Summary(false), "Damaged blocks:") {
					t.Error("summary does not list the damaged sector")
				}
			}
			if tt.wantNote != "" && !strings.Contains(strings.Join(cfg.Notes, "\n"), tt.wantNote) {
				t.Errorf("notes %q lack %q", cfg.Notes, tt.wantNote)
			}
			tt.check(t, cfg)
		})
	}
}

func hasBlock(cfg *Config, off int, reason string) bool {
	for _, b := range cfg.Blocks {
		if b.Offset == off && strings.Contains(b.Reason, reason) {
			return true
		}
	}
	return false
}

// TestPSMNotFound: an ESP8266 dump without a readable store says what was
// searched and where; a PSM1 sector that holds no key=value strings is a
// layout tuyaflash cannot read.
func TestPSMNotFound(t *testing.T) {
	other := espFlash(0, nil)
	rand.New(rand.NewSource(3)).Read(other[0x1000:0x100000])
	empty := espFlash(UsualPSMOffset, [][]byte{synthPSM{}.sectors()[0]})
	garbled := espFlash(UsualPSMOffset, nil)
	copy(garbled[UsualPSMOffset:], "PSM1\x00")
	rand.New(rand.NewSource(4)).Read(garbled[UsualPSMOffset+5 : UsualPSMOffset+sectorSize])
	tests := []struct {
		name   string
		img    []byte
		wantIs error
		want   []string
	}{
		{"erased ESP8266 dump", espFlash(0, nil), ErrNoStorage,
			[]string{"ESP8266 dump", "searched 256 sectors (0x000000-0x0FFFFF)", `"PSM1"`, "256 keys", "0x7B000", "is erased"}},
		{"ESP8266 dump with other data", other, ErrNoStorage, []string{"0x7B000", "holds other data"}},
		{"short ESP8266 dump", espFlash(0, nil)[:0x40000], ErrNoStorage, []string{"searched 64 sectors", "ends before 0x7B000"}},
		{"empty store", empty, ErrNoStorage, []string{"PSM store at 0x07B000 is empty"}},
		{"PSM1 without key=value strings", garbled, ErrUnsupportedFormat, []string{"0x07B000", "PSM1 header", "no key=value strings"}},
		{"neither Beken nor ESP8266", bytes.Repeat([]byte{0x5A}, 3*sectorSize), ErrNoStorage,
			[]string{"no key block", "no ESP8266 PSM store", "searched 3 sectors"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse(tt.img)
			if cfg != nil || !errors.Is(err, tt.wantIs) {
				t.Fatalf("cfg %v, err %v; want %v", cfg != nil, err, tt.wantIs)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message lacks %q: %v", w, err)
				}
			}
			if flasher.Hint(err) == "" {
				t.Error("no hint")
			}
		})
	}
}

// TestPSMPinMapFromTopLevelKeys: without user_param_key, top-level pin
// keys make the pin map, and its Raw parses back to the same map (the
// inventory stores Raw).
func TestPSMPinMapFromTopLevelKeys(t *testing.T) {
	entries := []string{"gw_id=" + psmDevID, "module=TYWE2S", "rl1_pin=12", "rl1_lv=1", "bt1_pin=3", "netled_pin=4",
		"netled_lv=0", "ty_ws_mode=2", "ssid=" + psmSSID, "bt1_lv=x", "baud=9600,8"}
	cfg, err := Parse(espFlash(UsualPSMOffset, [][]byte{synthPSM{entries: entries}.sectors()[0]}))
	if err != nil {
		t.Fatal(err)
	}
	u := cfg.UserParams
	if u == nil {
		t.Fatal("no pin map")
	}
	want := `{module:TYWE2S,rl1_pin:12,rl1_lv:1,bt1_pin:3,netled_pin:4,netled_lv:0,bt1_lv:x,baud:"9600,8"}`
	if u.Raw != want {
		t.Errorf("raw %s, want %s", u.Raw, want)
	}
	back, err := ParseUserParamKey(u.Raw)
	if err != nil || len(back.Functions()) != 3 || cfg.Module != "TYWE2S" {
		t.Errorf("pin map does not round-trip: %v, %+v", err, back)
	}
	if !strings.Contains(strings.Join(cfg.Notes, " "), "top-level pin keys") {
		t.Errorf("notes %v", cfg.Notes)
	}
	// No pins: no pin map.
	cfg, err = Parse(espFlash(UsualPSMOffset, [][]byte{synthPSM{entries: psmBase()[:5]}.sectors()[0]}))
	if err != nil || cfg.UserParams != nil {
		t.Errorf("pin map %+v from a store without pins (%v)", cfg.UserParams, err)
	}
}

// TestPSMJSONValues: JSON objects stored under Tuya's usual names give the
// device id and local key as on BK7231; a flat key wins and the
// disagreement is noted.
func TestPSMJSONValues(t *testing.T) {
	entries := []string{`gw_di={"id":"bfjsonid000000000001","swv":"1.0.9"}`, `gw_ai={"lckey":"jsonlocalkey0001"}`, "ty_ws_x=1"}
	cfg, err := Parse(espFlash(UsualPSMOffset, [][]byte{synthPSM{entries: entries}.sectors()[0]}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DeviceID != "bfjsonid000000000001" || cfg.LocalKey != "jsonlocalkey0001" || cfg.FirmwareVersion != "1.0.9" {
		t.Errorf("from JSON: id %q key %q swv %q", cfg.DeviceID, cfg.LocalKey, cfg.FirmwareVersion)
	}
	if s := cfg.Summary(false); strings.Contains(s, "jsonlocalkey0001") {
		t.Error("the local key inside gw_ai leaks")
	}
	cfg, err = Parse(espFlash(UsualPSMOffset, [][]byte{synthPSM{entries: append(entries, "local_key="+psmLocalKey)}.sectors()[0]}))
	if err != nil || cfg.LocalKey != psmLocalKey || !strings.Contains(strings.Join(cfg.Notes, " "), "local_key differs") {
		t.Errorf("flat key: %q, notes %v, %v", cfg.LocalKey, cfg.Notes, err)
	}
}

// TestSplitPSMEntry pins down what counts as a key=value string.
func TestSplitPSMEntry(t *testing.T) {
	tests := []struct {
		in     string
		k, v   string
		wantOK bool
	}{
		{"ssid=Home", "ssid", "Home", true},
		{"\x01\x02ssid=Home", "ssid", "Home", true},
		{"x!local_key=abc=def", "local_key", "abc=def", true},
		{"ESP.mode=dout", "ESP.mode", "dout", true},
		{"passwd=", "passwd", "", true},
		{"ssid=Café ☕", "ssid", "Café ☕", true},
		{"=value", "", "", false},
		{"!=value", "", "", false},
		{"novalue", "", "", false},
		{"key=\x01bin", "", "", false},
		{"key=\xc3", "", "", false},
	}
	for _, tt := range tests {
		k, v, ok := splitPSMEntry([]byte(tt.in))
		if k != tt.k || v != tt.v || ok != tt.wantOK {
			t.Errorf("splitPSMEntry(%q) = %q, %q, %v", tt.in, k, v, ok)
		}
	}
}

// TestPSMOfSimulatedStockFlash reads the stock flash of the ESP8266
// simulator, whose PSM encoder was written independently from the same
// description: plaintext and encrypted with several key bytes, 1 and 4 MiB.
func TestPSMOfSimulatedStockFlash(t *testing.T) {
	for _, st := range []espsim.Stock{
		{Chip: espsim.ESP8266},
		{Chip: espsim.ESP8266, PlainPSM: true},
		{Chip: espsim.ESP8285, PSMKeyByte: 0x01, SSID: "Home Net", Password: "p=w d"},
		{Chip: espsim.ESP8266, Size: 4 << 20, PSMKeyByte: 0xFF, MAC: [6]byte{0xC8, 0x47, 0x8C, 1, 2, 3}},
	} {
		flash, err := espsim.StockFlash(st)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := Parse(flash)
		if err != nil {
			t.Fatalf("%+v: %v", st, err)
		}
		want := st.Device()
		key := int(st.PSMKeyByte)
		if key == 0 {
			key = espsim.DefaultPSMKeyByte
		}
		p := cfg.PSM
		if p.Offset != espsim.PSMOffset || p.Encrypted == st.PlainPSM || (!st.PlainPSM && p.KeyByte != key) {
			t.Errorf("%+v: store %+v", st, *p)
		}
		if cfg.DeviceID != want.DevID || cfg.LocalKey != want.LocalKey || cfg.WiFiSSID != want.SSID || cfg.WiFiPassword != want.Password ||
			cfg.UUID != want.UUID || cfg.AuthKey != want.AuthKey || len(p.Order) != len(st.PSMEntries()) {
			t.Errorf("%+v: read %q %q %q %q %q %q, %d keys; want %+v", st, cfg.DeviceID, cfg.LocalKey, cfg.WiFiSSID, cfg.WiFiPassword, cfg.UUID, cfg.AuthKey, len(p.Order), want)
		}
	}
}
