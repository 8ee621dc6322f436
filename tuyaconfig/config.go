// Package tuyaconfig reads the Tuya configuration out of a stock BK7231T/N
// flash backup: the encrypted TuyaOS key-value storage (key block, data
// blocks, swap copies), the device identity and keys, the Wi-Fi
// credentials and the vendor's pin map (user_param_key). Other dumps
// (ESP8266) are searched for Tuya's PSM store (psm.go). It never prints
// and never writes files; Config.Summary and Config.Redacted keep secrets
// out of what a caller shows unless asked.
package tuyaconfig

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/tuyaflash/tuyaflash/flasher/bk7231"
)

// Hidden replaces secrets in Redacted and Summary output.
const Hidden = "<hidden: --show-secrets>"

// Config is what Parse recovered from a backup.
type Config struct {
	// Chip is "BK7231T", "BK7231N", "BK7238" … when known; ChipSource says
	// whether it came from em_sys_env, the module name or the offset of
	// the storage (an offset only one chip uses).
	Chip       string `json:"chip,omitempty"`
	ChipSource string `json:"chip_source,omitempty"`
	// Platform is the raw em_sys_env value ("BK7231S_2M", "bk7231n", or ""
	// when the key is absent, as on many dumps).
	Platform string `json:"platform"`
	// Module is the Tuya module from user_param_key (e.g. "CB2S").
	Module string `json:"module"`
	// DeviceID is gw_di.id; "" until the device was activated (paired).
	DeviceID  string `json:"device_id"`
	Activated bool   `json:"activated"`
	// LocalKey (gw_ai.lckey) and SecKey (gw_ai.key) exist once activated.
	LocalKey        string `json:"local_key"`
	SecKey          string `json:"sec_key"`
	ProductKey      string `json:"product_key"`  // gw_di.pk
	FirmwareKey     string `json:"firmware_key"` // gw_di.firmk
	FirmwareVersion string `json:"firmware_version"`
	SchemaID        string `json:"schema_id,omitempty"` // gw_di.s_id
	// UUID, AuthKey and PSKKey are the factory identity (gw_bi).
	UUID    string `json:"uuid"`
	AuthKey string `json:"auth_key"`
	PSKKey  string `json:"psk_key"`
	// WiFiSSID and WiFiPassword come from gw_wsm, base64-decoded when its
	// wfb64 flag is set.
	WiFiSSID     string `json:"wifi_ssid"`
	WiFiPassword string `json:"wifi_password"`
	// UserParams is the parsed user_param_key, nil when absent.
	UserParams *UserParamKey `json:"user_param_key"`
	// Keys holds every stored value: JSON values as they are, other text
	// as a JSON string, binary as a JSON string "hex:…".
	Keys map[string]json.RawMessage `json:"keys"`
	// ProtectedKeys holds the copies kept in the BK7231N protected block.
	ProtectedKeys map[string]json.RawMessage `json:"protected_keys,omitempty"`
	// KeyBlockOffset is the offset of the key block in the input.
	KeyBlockOffset int `json:"key_block_offset"`
	// Blocks lists the sectors of the storage area in input order.
	Blocks []BlockInfo `json:"blocks"`
	// PSM describes the ESP8266 PSM store when the config came from one
	// (then KeyBlockOffset is 0 and Blocks lists the store's sectors);
	// nil for BK7231 storage.
	PSM *PSMInfo `json:"psm,omitempty"`
	// Notes are remarks on how values were obtained.
	Notes []string `json:"notes,omitempty"`
}

// Parse reads a full BK7231 dump or a storage-only extract; an input
// without BK7231 storage (an ESP8266 dump) is searched for Tuya's PSM
// store. On damaged storage it returns what it could read together with a
// *DamageError; when no storage is found it returns a nil Config and an
// error wrapping ErrNoStorage or ErrUnsupportedFormat. It never panics on
// any input.
func Parse(dump []byte) (*Config, error) {
	keys, prot, badKeys, protData := findKeyBlocks(dump)
	if len(keys) == 0 {
		cfg, search, err := parsePSM(dump)
		if cfg != nil {
			return cfg, err
		}
		detail := "no key block (magic 0x13579753) in the input"
		if len(badKeys) > 0 {
			detail = fmt.Sprintf("the key block at 0x%06X fails its checksum, so nothing can be decrypted", badKeys[0].Offset)
		} else if len(dump) < sectorSize {
			detail = fmt.Sprintf("the input is only %d bytes; the storage needs at least one 4096-byte key block", len(dump))
		}
		return nil, noPSMError(dump, search, detail, len(badKeys) > 0)
	}
	skip := map[int]bool{}
	for _, p := range prot {
		skip[p.Offset] = true
	}
	for _, b := range badKeys {
		skip[b.Offset] = true
	}
	// More than one valid key block is unusual: take the one that opens
	// the most data blocks.
	best, bestCount := 0, -1
	var blocks []dataBlock
	var bad []BlockError
	for i, kb := range keys {
		b, bd := scanDataBlocks(dump, kb, skip)
		if len(b) > bestCount {
			best, bestCount, blocks, bad = i, len(b), b, bd
		}
	}
	kb := keys[best]
	cfg := &Config{KeyBlockOffset: kb.off, Keys: map[string]json.RawMessage{}}
	dmg := &DamageError{Blocks: append(badKeys, bad...)}

	use := newestBlocks(blocks)
	for i := range blocks {
		if use[blocks[i].info.ID] == &blocks[i] {
			blocks[i].info.InUse = true
		}
	}
	var infos []BlockInfo
	for _, b := range blocks {
		infos = append(infos, b.info)
	}
	for _, e := range bad {
		if !hasOffset(infos, e.Offset) {
			infos = append(infos, BlockInfo{Offset: e.Offset, Kind: KindBad, Reason: e.Reason})
		}
	}
	infos = append(infos, BlockInfo{Offset: kb.off, Kind: KindKey, OK: true, InUse: true})
	infos = append(infos, prot...)
	for _, e := range badKeys {
		infos = append(infos, BlockInfo{Offset: e.Offset, Kind: KindKey, Reason: e.Reason})
	}
	sort.SliceStable(infos, func(i, j int) bool { return infos[i].Offset < infos[j].Offset })
	cfg.Blocks = infos
	if len(blocks) == 0 {
		dmg.Blocks = append(dmg.Blocks, BlockError{Offset: kb.off, Reason: "key block found but no data block follows it"})
	}

	for name, v := range readValues(use, dmg) {
		cfg.Keys[name] = rawValue(v)
	}
	protOffs := make([]int, 0, len(protData))
	for off := range protData {
		protOffs = append(protOffs, off)
	}
	sort.Ints(protOffs)
	for _, off := range protOffs {
		entries, err := readProtected(protData[off])
		if err != nil {
			dmg.Blocks = append(dmg.Blocks, BlockError{Offset: off, Reason: "protected block: " + err.Error()})
		}
		for name, v := range entries {
			if cfg.ProtectedKeys == nil {
				cfg.ProtectedKeys = map[string]json.RawMessage{}
			}
			cfg.ProtectedKeys[name] = rawValue(v)
		}
	}
	cfg.fill()
	if dmg.empty() {
		return cfg, nil
	}
	return cfg, dmg
}

func hasOffset(infos []BlockInfo, off int) bool {
	for _, i := range infos {
		if i.Offset == off {
			return true
		}
	}
	return false
}

// rawValue turns a stored value into JSON: JSON as is, printable text as
// a JSON string, anything else as "hex:…".
func rawValue(v []byte) json.RawMessage {
	v = bytes.TrimRight(v, "\x00")
	if len(v) > 0 && json.Valid(v) {
		var buf bytes.Buffer
		if json.Compact(&buf, v) == nil {
			return buf.Bytes()
		}
	}
	s := "hex:" + hex.EncodeToString(v)
	if utf8.Valid(v) && printable(v) {
		s = string(v)
	}
	out, _ := json.Marshal(s)
	return out
}

func printable(v []byte) bool {
	for _, c := range v {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

// Text returns the stored value of key as text: a JSON string unquoted,
// anything else as its JSON, "" when absent.
func (c *Config) Text(key string) string {
	raw, ok := c.Keys[key]
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// object decodes the JSON object stored under key from Keys, falling back
// to the protected copy; nil when absent or not an object.
func (c *Config) object(key string) map[string]any {
	for i, src := range []map[string]json.RawMessage{c.Keys, c.ProtectedKeys} {
		raw, ok := src[key]
		if !ok {
			continue
		}
		var m map[string]any
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if d.Decode(&m) != nil {
			continue
		}
		if i == 1 {
			c.Notes = append(c.Notes, key+" was read from the protected block copy")
		}
		return m
	}
	return nil
}

// field returns m[k] as text; "" for null or absent.
func field(m map[string]any, k string) string {
	switch v := m[k].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return fmt.Sprint(v)
	}
	return ""
}

// fill sets the typed fields from Keys.
func (c *Config) fill() {
	c.Platform = c.Text("em_sys_env")
	if di := c.object("gw_di"); di != nil {
		c.DeviceID = field(di, "id")
		c.ProductKey = field(di, "pk")
		c.FirmwareKey = field(di, "firmk")
		if c.ProductKey == "" {
			c.ProductKey = c.FirmwareKey
		}
		c.FirmwareVersion = field(di, "swv")
		if c.FirmwareVersion == "" {
			c.FirmwareVersion = field(di, "dev_swv")
		}
		c.SchemaID = field(di, "s_id")
	}
	c.Activated = c.DeviceID != ""
	if ai := c.object("gw_ai"); ai != nil {
		c.LocalKey = field(ai, "lckey")
		c.SecKey = field(ai, "key")
	}
	if bi := c.object("gw_bi"); bi != nil {
		c.UUID = field(bi, "uuid")
		c.AuthKey = field(bi, "auth_key")
		c.PSKKey = field(bi, "psk_key")
	}
	if wsm := c.object("gw_wsm"); wsm != nil {
		c.WiFiSSID = field(wsm, "ssid")
		c.WiFiPassword = field(wsm, "passwd")
		if field(wsm, "wfb64") == "1" {
			c.WiFiSSID = c.unbase64("gw_wsm.ssid", c.WiFiSSID)
			c.WiFiPassword = c.unbase64("gw_wsm.passwd", c.WiFiPassword)
		}
	}
	if upk := c.Text("user_param_key"); upk != "" {
		u, err := ParseUserParamKey(upk)
		if err != nil {
			c.Notes = append(c.Notes, "user_param_key could not be parsed: "+err.Error())
		}
		c.UserParams = u
		if u != nil {
			c.Module = u.Module()
		}
	}
	c.Chip, c.ChipSource = inferChip(c.Platform, c.Module)
	if chip := chipFromStorage(c.KeyBlockOffset); chip != "" {
		c.Notes = append(c.Notes, fmt.Sprintf("the key block is at 0x%06X, where Tuya's firmware keeps it on a %s (BK7231GUIFlashTool's offset, a single source)", c.KeyBlockOffset, chip))
		if c.Chip == "" {
			c.Chip, c.ChipSource = chip, "storage offset"
		}
	}
}

func (c *Config) unbase64(what, s string) string {
	if s == "" {
		return s
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		c.Notes = append(c.Notes, what+" is flagged base64 (wfb64) but does not decode; shown as stored")
		return s
	}
	return string(b)
}

// inferChip names the chip from em_sys_env, else from the module name.
// "BK7231S_2M" is the BK7231T platform string (checked against the real
// dumps); "T1" and "bk7238" name a BK7238 (BK7231GUIFlashTool
// TuyaModules.getTypeForPlatformName, unconfirmed there for "bk7238").
func inferChip(platform, module string) (chip, source string) {
	switch strings.ToLower(platform) {
	case "bk7231s_2m", "bk7231t":
		return "BK7231T", "em_sys_env"
	case "bk7231n", "bk7231nl", "t2":
		return "BK7231N", "em_sys_env"
	case "t1", "bk7238":
		return "BK7238", "em_sys_env"
	}
	if c := ChipFromModule(module); c != "" {
		return c, "module"
	}
	return "", ""
}

// ChipFromModule names the chip of a Tuya module (BK7231GUIFlashTool
// Misc/TuyaModules.cs): WB… → BK7231T (WR…/WD… are other chips),
// CB…, T34 and T2… → BK7231N, T1… → BK7238, T4… → BK7252N; "" when
// unknown.
func ChipFromModule(module string) string {
	m := strings.ToUpper(module)
	switch {
	case strings.HasPrefix(m, "WB"):
		return "BK7231T"
	case strings.HasPrefix(m, "CB"), m == "T34", strings.HasPrefix(m, "T2"):
		return "BK7231N"
	case strings.HasPrefix(m, "T1"):
		return "BK7238"
	case strings.HasPrefix(m, "T4"):
		return "BK7252N"
	}
	return ""
}

// chipFromStorage names the chip whose row of the Beken chip table alone
// puts Tuya's key block at off (flasher/bk7231 Chip.TuyaKV, from
// BK7231GUIFlashTool TuyaConfig.cs alone: 0x1F5000 on a BK7238, 0x397000
// on a BK7252); "" where several rows share the offset (0x1EE000).
func chipFromStorage(off int) string {
	chip := ""
	for _, c := range bk7231.Chips() {
		if !c.Supported || int(c.TuyaKV) != off {
			continue
		}
		if chip != "" {
			return ""
		}
		chip = string(c.Family)
	}
	return chip
}

// Redacted returns a copy of c with every secret replaced by Hidden: local
// key, secKey, auth and PSK keys, Wi-Fi SSID and password and pairing
// token, in the typed fields and inside Keys and ProtectedKeys (top-level
// keys with such names too, as a PSM store has them).
func (c *Config) Redacted() *Config {
	r := *c
	for _, p := range []*string{&r.LocalKey, &r.SecKey, &r.AuthKey, &r.PSKKey, &r.WiFiSSID, &r.WiFiPassword} {
		if *p != "" {
			*p = Hidden
		}
	}
	r.Keys = redactKeys(c.Keys)
	r.ProtectedKeys = redactKeys(c.ProtectedKeys)
	r.Blocks = append([]BlockInfo(nil), c.Blocks...)
	r.Notes = append([]string(nil), c.Notes...)
	if c.PSM != nil {
		p := *c.PSM
		p.Order = append([]string(nil), c.PSM.Order...)
		r.PSM = &p
	}
	return &r
}

// marshalPlain encodes v as compact JSON without HTML escaping, so Hidden
// reads as written.
func marshalPlain(v any) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return json.RawMessage(`"` + Hidden + `"`)
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// JSON renders c (redacted unless showSecrets) as indented JSON for
// --json output, without HTML escaping.
func (c *Config) JSON(showSecrets bool) ([]byte, error) {
	v := c
	if !showSecrets {
		v = c.Redacted()
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// secretFields are JSON field names whose values are secrets.
var secretFields = map[string]bool{
	"lckey": true, "key": true, "seckey": true, "localkey": true, "local_key": true,
	"auth_key": true, "authkey": true, "psk_key": true, "pskkey": true, "psk": true,
	"passwd": true, "password": true, "ap_passwd": true, "token": true, "reg_key": true, "ssid": true,
	"fac_pin": true, // the factory test PIN that goes with the auth key
}

// IsSecretKey reports whether a stored value's field name (any case)
// holds a secret: local and device keys, auth and PSK keys, Wi-Fi names
// and passwords, tokens, the factory PIN.
func IsSecretKey(name string) bool { return secretFields[strings.ToLower(name)] }

func redactKeys(in map[string]json.RawMessage) map[string]json.RawMessage {
	if in == nil {
		return nil
	}
	out := make(map[string]json.RawMessage, len(in))
	for k, raw := range in {
		if secretFields[strings.ToLower(k)] && string(raw) != "null" {
			out[k] = marshalPlain(Hidden)
			continue
		}
		var v any
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if d.Decode(&v) != nil {
			out[k] = raw
			continue
		}
		if !redactValue(v) {
			out[k] = raw // unchanged: keep the stored form
			continue
		}
		out[k] = marshalPlain(v)
	}
	return out
}

// redactValue hides secret fields in place and reports whether it did.
func redactValue(v any) bool {
	changed := false
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if secretFields[strings.ToLower(k)] && x != nil {
				t[k] = Hidden
				changed = true
				continue
			}
			if redactValue(x) {
				changed = true
			}
		}
	case []any:
		for _, x := range t {
			if redactValue(x) {
				changed = true
			}
		}
	}
	return changed
}
