package tuyaconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand"
	"strings"
	"testing"

	"github.com/tuyaflash/tuyaflash/flasher"
)

const (
	synthLocalKey = "LOCALKEYSECRET01"
	synthSecKey   = "SECKEYSECRET0001"
	synthWiFiPass = "WiFiPass"
)

// longValue is a value of 40 pages: more than one block holds, so it is
// stored in several parts.
var longValue = strings.Repeat("0123456789", 512)

// buildStorage makes the synthetic storage used by most tests. swv varies
// the firmware version without changing any length, so two builds have the
// same page allocation (used for swap copies).
func buildStorage(swv string) *synthStorage {
	s := newSynthStorage(14)
	s.add("gw_bi", []byte(`{"uuid":"uuid0001","psk_key":"PSKSECRET","auth_key":"AUTHSECRET","ap_ssid":"SmartLife","ap_passwd":null}`))
	s.add("user_param_key", []byte("{rl1_pin:26,rl1_lv:1,bt1_pin:10,bt1_lv:0,netled1_pin:8,netled1_lv:0,module:CB2S,jv:1.0.0,crc:5,}"))
	s.add("gw_di", []byte(`{"id":"devid000000000000001","swv":"`+swv+`","pk":"keyprod000000001","firmk":"keyprod000000001","s_id":"000001abcd"}`))
	s.add("gw_ai", []byte(`{"key":"`+synthSecKey+`","lckey":"`+synthLocalKey+`","h_url":null}`))
	// "HomeNet" and "WiFiPass" in base64, as wfb64:1 says.
	s.add("gw_wsm", []byte(`{"ssid":"SG9tZU5ldA==","passwd":"V2lGaVBhc3M=","wfb64":1,"token":"TOKEN1"}`))
	s.add("em_sys_env", append([]byte("bk7231n"), make([]byte, 13)...)) // stored with NUL padding
	s.add("is_stride", []byte("0"))
	s.add("schema", []byte(longValue))
	s.add("blob", []byte{0x01, 0x02, 0xFE})
	return s
}

func TestParseSyntheticFullDump(t *testing.T) {
	s := buildStorage("1.2.3")
	s.block(0).gen = 7
	old := buildStorage("1.0.0").block(0)
	old.gen = 6
	s.blocks = append(s.blocks, old) // older swap copy of block 0, later in flash
	prot := protectedSector([]byte("fedcba9876543210"), [][2]string{{"gw_bi", `{"uuid":"uuid0001"}`}, {"gw_wsm", `{"ssid":"old"}`}})
	img := fullDump(s.bytes(), prot)

	cfg, err := Parse(img)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	checks := []struct{ what, got, want string }{
		{"platform", cfg.Platform, "bk7231n"},
		{"chip", cfg.Chip + "/" + cfg.ChipSource, "BK7231N/em_sys_env"},
		{"module", cfg.Module, "CB2S"},
		{"device id", cfg.DeviceID, "devid000000000000001"},
		{"firmware (newest generation)", cfg.FirmwareVersion, "1.2.3"},
		{"product key", cfg.ProductKey, "keyprod000000001"},
		{"schema id", cfg.SchemaID, "000001abcd"},
		{"local key", cfg.LocalKey, synthLocalKey},
		{"secKey", cfg.SecKey, synthSecKey},
		{"uuid", cfg.UUID, "uuid0001"},
		{"auth key", cfg.AuthKey, "AUTHSECRET"},
		{"ssid (base64)", cfg.WiFiSSID, "HomeNet"},
		{"password (base64)", cfg.WiFiPassword, synthWiFiPass},
		{"multi-part value", cfg.Text("schema"), longValue},
		{"number stays JSON", string(cfg.Keys["is_stride"]), "0"},
		{"binary as hex", cfg.Text("blob"), "hex:0102fe"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %.60q, want %.60q", c.what, c.got, c.want)
		}
	}
	if !cfg.Activated {
		t.Error("Activated = false with a device id")
	}
	if cfg.KeyBlockOffset != UsualKeyBlockOffset {
		t.Errorf("KeyBlockOffset = 0x%X, want 0x1EE000 (the protected block at 0x1ED000 is a decoy)", cfg.KeyBlockOffset)
	}
	if got := cfg.Text("user_param_key"); !strings.HasPrefix(got, "{rl1_pin:26") {
		t.Errorf("user_param_key raw = %q", got)
	}
	if cfg.UserParams == nil || cfg.UserParams.Module() != "CB2S" {
		t.Fatalf("UserParams = %+v", cfg.UserParams)
	}
	if string(cfg.ProtectedKeys["gw_wsm"]) != `{"ssid":"old"}` {
		t.Errorf("protected gw_wsm = %s", cfg.ProtectedKeys["gw_wsm"])
	}

	var kinds []string
	for _, b := range cfg.Blocks {
		kinds = append(kinds, b.Kind)
		if b.Kind == KindData && b.ID == 0 {
			if wantUse := b.Generation == 7; b.InUse != wantUse {
				t.Errorf("block id 0 gen %d: InUse = %v, want %v", b.Generation, b.InUse, wantUse)
			}
		}
	}
	if kinds[0] != KindProtected || kinds[1] != KindKey || len(kinds) != 2+15 {
		t.Errorf("block kinds = %v, want protected, key, 15 data blocks", kinds)
	}
}

func TestParseStorageExtracts(t *testing.T) {
	st := buildStorage("1.2.3").bytes()
	tests := []struct {
		name    string
		input   []byte
		wantOff int
	}{
		{"extract starting at the key block", st, 0},
		{"extract cut 100 bytes before the key block", append(bytes.Repeat([]byte{0x5A}, 100), st...), 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse(tt.input)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if cfg.KeyBlockOffset != tt.wantOff || cfg.DeviceID != "devid000000000000001" || cfg.Text("schema") != longValue {
				t.Errorf("KeyBlockOffset 0x%X, DeviceID %q, schema len %d", cfg.KeyBlockOffset, cfg.DeviceID, len(cfg.Text("schema")))
			}
		})
	}
}

func TestParseDuplicateNamesPreferHighestElement(t *testing.T) {
	s := buildStorage("1.2.3")
	s.addElement("dup", []byte(`"new"`), 9000)
	s.addElement("dup", []byte(`"old"`), 10) // later in flash, lower element
	cfg, err := Parse(s.bytes())
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Text("dup"); got != "new" {
		t.Errorf("dup = %q, want the entry with the highest element", got)
	}
}

func TestParseNotActivated(t *testing.T) {
	s := newSynthStorage(3)
	s.add("gw_di", []byte(`{"abi":0,"id":null,"swv":"1.1.5","pk":"key7axydcvmea3x9"}`))
	s.add("gw_ai", []byte(`{"key":null,"lckey":null}`))
	s.add("user_param_key", []byte("{module:WB3S,rl1_pin:6}"))
	cfg, err := Parse(s.bytes())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Activated || cfg.DeviceID != "" || cfg.LocalKey != "" {
		t.Errorf("Activated %v, DeviceID %q, LocalKey %q; want not activated", cfg.Activated, cfg.DeviceID, cfg.LocalKey)
	}
	if cfg.Chip != "BK7231T" || cfg.ChipSource != "module" {
		t.Errorf("chip %q from %q, want BK7231T from module (no em_sys_env)", cfg.Chip, cfg.ChipSource)
	}
	if !strings.Contains(cfg.Summary(false), "not activated") {
		t.Error("summary does not say the device is not activated")
	}
}

func TestParseProtectedFallback(t *testing.T) {
	s := newSynthStorage(2)
	s.add("user_param_key", []byte("{module:CBU}"))
	prot := protectedSector([]byte("fedcba9876543210"), [][2]string{{"gw_wsm", `{"ssid":"R2FyYWdl","passwd":"cHc=","wfb64":1}`}})
	cfg, err := Parse(fullDump(s.bytes(), prot))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.WiFiSSID != "Garage" || cfg.WiFiPassword != "pw" {
		t.Errorf("Wi-Fi from protected copy = %q/%q", cfg.WiFiSSID, cfg.WiFiPassword)
	}
	if len(cfg.Notes) == 0 || !strings.Contains(cfg.Notes[0], "protected") {
		t.Errorf("Notes = %v, want a note that gw_wsm came from the protected block", cfg.Notes)
	}
}

// damage describes a damaged-input case: mutate the image, then check.
type damage struct {
	name       string
	mutate     func(s *synthStorage, img []byte) []byte
	wantNilCfg bool
	wantIs     error
	wantBlocks []int    // offsets DamageError must name
	wantKeys   []string // key names DamageError must name
	check      func(t *testing.T, cfg *Config)
}

func TestParseDamagedInput(t *testing.T) {
	const key = UsualKeyBlockOffset
	const blk0 = key + sectorSize // block id 0, generation 7
	tests := []damage{
		{
			name: "flipped byte in the newest swap copy falls back to the older one",
			mutate: func(s *synthStorage, img []byte) []byte {
				img[blk0+2000] ^= 0x40
				return img
			},
			wantIs:     ErrDamaged,
			wantBlocks: []int{blk0},
			check: func(t *testing.T, cfg *Config) {
				if cfg.FirmwareVersion != "1.0.0" {
					t.Errorf("firmware %q, want 1.0.0 from the older swap copy", cfg.FirmwareVersion)
				}
				if cfg.LocalKey != synthLocalKey {
					t.Errorf("local key lost")
				}
			},
		},
		{
			name: "flipped byte in a block without swap copy loses only its values",
			mutate: func(s *synthStorage, img []byte) []byte {
				img[key+2*sectorSize+700] ^= 0x01 // block id 1: second part of "schema"
				return img
			},
			wantIs:     ErrDamaged,
			wantBlocks: []int{key + 2*sectorSize},
			wantKeys:   []string{"schema"},
			check: func(t *testing.T, cfg *Config) {
				if _, ok := cfg.Keys["schema"]; ok {
					t.Error("schema returned although one of its blocks is damaged")
				}
				if cfg.DeviceID == "" || cfg.Module != "CB2S" {
					t.Error("values in intact blocks were lost")
				}
			},
		},
		{
			name: "value checksum mismatch with a valid block checksum",
			mutate: func(s *synthStorage, img []byte) []byte {
				p := decryptedSector(s, img, blk0)
				// gw_bi's value starts at page 2 of block 0.
				p[2*pageSize+3] ^= 0x20
				resealSector(s, img, blk0, p)
				return img
			},
			wantIs:   ErrDamaged,
			wantKeys: []string{"gw_bi"},
			check: func(t *testing.T, cfg *Config) {
				if _, ok := cfg.Keys["gw_bi"]; ok || cfg.AuthKey != "" {
					t.Error("gw_bi from a value with a bad checksum was used")
				}
				if cfg.UUID != "uuid0001" {
					t.Errorf("uuid %q, want it from the protected block copy", cfg.UUID)
				}
			},
		},
		{
			name: "missing key block",
			mutate: func(s *synthStorage, img []byte) []byte {
				copy(img[key:key+sectorSize], bytes.Repeat([]byte{0xFF}, sectorSize))
				return img
			},
			wantNilCfg: true,
			wantIs:     ErrNoStorage,
		},
		{
			name: "damaged key block",
			mutate: func(s *synthStorage, img []byte) []byte {
				img[key+20] ^= 0x01 // inside the encrypted key bytes
				return img
			},
			wantNilCfg: true,
			wantIs:     ErrNoStorage,
		},
		{
			name: "truncated in the middle of the storage",
			mutate: func(s *synthStorage, img []byte) []byte {
				return img[:key+3*sectorSize+1000]
			},
			wantIs:     ErrDamaged,
			wantBlocks: []int{key + 3*sectorSize},
			check: func(t *testing.T, cfg *Config) {
				if cfg.DeviceID == "" {
					t.Error("values in the blocks before the cut were lost")
				}
			},
		},
		{
			name: "sector in the storage area overwritten",
			mutate: func(s *synthStorage, img []byte) []byte {
				copy(img[key+5*sectorSize:], bytes.Repeat([]byte{0x00}, sectorSize))
				return img
			},
			wantIs:     ErrDamaged,
			wantBlocks: []int{key + 5*sectorSize},
		},
		{
			name:       "protected block alone is not taken as the key block",
			mutate:     func(s *synthStorage, img []byte) []byte { return img[0x1ED000:UsualKeyBlockOffset] },
			wantNilCfg: true,
			wantIs:     ErrNoStorage,
		},
		{
			name: "random bytes",
			mutate: func(s *synthStorage, img []byte) []byte {
				r := rand.New(rand.NewSource(1))
				b := make([]byte, 0x20000)
				r.Read(b)
				return b
			},
			wantNilCfg: true,
			wantIs:     ErrNoStorage,
		},
		{
			name:       "empty input",
			mutate:     func(s *synthStorage, img []byte) []byte { return nil },
			wantNilCfg: true,
			wantIs:     ErrNoStorage,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := buildStorage("1.2.3")
			s.block(0).gen = 7
			old := buildStorage("1.0.0").block(0)
			old.gen = 6
			s.blocks = append(s.blocks, old)
			prot := protectedSector([]byte("fedcba9876543210"), [][2]string{{"gw_bi", `{"uuid":"uuid0001"}`}})
			img := tt.mutate(s, fullDump(s.bytes(), prot))
			cfg, err := Parse(img)
			if !errors.Is(err, tt.wantIs) {
				t.Fatalf("err = %v, want %v", err, tt.wantIs)
			}
			if flasher.Hint(err) == "" {
				t.Error("error carries no hint for the user")
			}
			if (cfg == nil) != tt.wantNilCfg {
				t.Fatalf("cfg nil = %v, want %v", cfg == nil, tt.wantNilCfg)
			}
			var dmg *DamageError
			if len(tt.wantBlocks)+len(tt.wantKeys) > 0 && !errors.As(err, &dmg) {
				t.Fatalf("err %T is not a *DamageError", err)
			}
			for _, off := range tt.wantBlocks {
				found := false
				for _, b := range dmg.Blocks {
					found = found || b.Offset == off
				}
				if !found {
					t.Errorf("DamageError does not name block 0x%X: %v", off, err)
				}
			}
			for _, k := range tt.wantKeys {
				if !strings.Contains(err.Error(), "key "+k+":") {
					t.Errorf("DamageError does not name key %q: %v", k, err)
				}
			}
			if tt.check != nil {
				tt.check(t, cfg)
			}
		})
	}
}

func TestRedactedAndSummaryHideSecrets(t *testing.T) {
	cfg, err := Parse(buildStorage("1.2.3").bytes())
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{synthLocalKey, synthSecKey, synthWiFiPass, "AUTHSECRET", "PSKSECRET", "TOKEN1", "V2lGaVBhc3M="}
	red := cfg.Redacted()
	js, err := cfg.JSON(false)
	if err != nil {
		t.Fatal(err)
	}
	var back Config
	if err := json.Unmarshal(js, &back); err != nil || back.LocalKey != Hidden || back.DeviceID != cfg.DeviceID {
		t.Errorf("JSON(false) does not decode to the redacted Config: %v", err)
	}
	for name, out := range map[string]string{"redacted JSON": string(js), "summary": cfg.Summary(false)} {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s leaks a secret (%d chars)", name, len(s))
			}
		}
		if !strings.Contains(out, Hidden) {
			t.Errorf("%s does not show the %q marker", name, Hidden)
		}
	}
	// Non-secrets stay, and the original is untouched.
	if red.DeviceID != cfg.DeviceID || red.UUID != "uuid0001" || !strings.Contains(string(red.Keys["gw_ai"]), `"h_url":null`) {
		t.Error("Redacted removed non-secret data")
	}
	if cfg.LocalKey != synthLocalKey || !strings.Contains(string(cfg.Keys["gw_ai"]), synthLocalKey) {
		t.Error("Redacted changed the original Config")
	}
	full := cfg.Summary(true)
	for _, s := range []string{synthLocalKey, synthSecKey, synthWiFiPass} {
		if !strings.Contains(full, s) {
			t.Errorf("Summary(true) misses a secret of %d chars", len(s))
		}
	}
	for _, want := range []string{"BK7231N", "CB2S", "devid000000000000001", "P26", "relay 1 (active high)", "button 1 (active low)", "HomeNet"} {
		if !strings.Contains(full, want) {
			t.Errorf("summary lacks %q:\n%s", want, full)
		}
	}
}
