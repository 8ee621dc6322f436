package tuyaconfig

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/tuyaflash/tuyaflash/flasher"
)

// Tuya's ESP8266 firmware (TYWE2S, TYWE3S, TYLC…) keeps its configuration
// in a "PSM" store, not in the BK7231 KV storage. The only public reader
// is BK7231GUIFlashTool's Utils/TuyaConfig.cs (TryExtractPSM,
// TryLocatePsm, ExtractPsmRegion, TryFindPsmKeyByBruteforce,
// ParseVaultPsm); the facts used here (more-chips.md §4):
//
//   - the store is a run of 4 KiB sectors, the first of which starts with
//     the ASCII header "PSM1"; on the public dumps it starts at 0x7B000
//     (openshwprojects/FlashDumps IoT/ESP8266/rename_report.csv);
//   - its content is ASCII "key=value" strings separated by NUL or 0xFF,
//     sometimes with stray bytes before a key name;
//   - it is either plaintext or AES-128-ECB over whole sectors (the
//     header is inside the encrypted data) with the key
//     "Qby6" + X + "TH9bj8GiexU", where the one byte X differs per
//     device and is found by trying all 256 values.
//
// No record layout, checksum or key list is documented, and no real
// ESP8266 Tuya dump was available to check this reader against: the
// tests use synthetic stores built from the description above.

const (
	// UsualPSMOffset is where the PSM store starts in the public Tuya
	// ESP8266 dumps.
	UsualPSMOffset = 0x7B000

	psmMagic = "PSM1"

	// KindPSM marks a sector of an ESP8266 PSM store in Config.Blocks.
	KindPSM = "psm"
)

// psmKey returns the AES key "Qby6" + x + "TH9bj8GiexU".
func psmKey(x byte) []byte {
	k := make([]byte, 0, 16)
	k = append(k, "Qby6"...)
	k = append(k, x)
	return append(k, "TH9bj8GiexU"...)
}

// PSMInfo describes the ESP8266 PSM store a Config was read from.
type PSMInfo struct {
	// Offset is the input offset of the sector holding the PSM1 header.
	Offset int `json:"offset"`
	// Sectors is how many sectors the store spans (from Offset on,
	// skipped sectors included).
	Sectors int `json:"sectors"`
	// Encrypted reports AES-128-ECB; KeyByte is then the X of the key
	// "Qby6"+X+"TH9bj8GiexU" (0..255), and 0 otherwise.
	Encrypted bool `json:"encrypted"`
	KeyByte   int  `json:"key_byte"`
	// Order lists the stored keys in flash order, each once (values are
	// in Config.Keys).
	Order []string `json:"order"`
}

// psmEntry is one key=value string of the store.
type psmEntry struct {
	key, value string
	off        int // input offset of the string (ECB keeps offsets)
}

// psmCiphers returns the 256 candidate ciphers, made once.
var psmCiphers = sync.OnceValue(func() *[256]cipher.Block {
	var c [256]cipher.Block
	for x := range c {
		b, err := aes.NewCipher(psmKey(byte(x)))
		if err != nil {
			panic(err) // the key is always 16 bytes
		}
		c[x] = b
	}
	return &c
})

// decryptSector returns src decrypted block by block with b; a trailing
// part shorter than a block is dropped.
func decryptSector(b cipher.Block, src []byte) []byte {
	n := len(src) / aes.BlockSize * aes.BlockSize
	dst := make([]byte, n)
	for i := 0; i < n; i += aes.BlockSize {
		b.Decrypt(dst[i:i+aes.BlockSize], src[i:i+aes.BlockSize])
	}
	return dst
}

// psmStore is a located store: where, how to decrypt, and its sectors.
type psmStore struct {
	off   int
	block cipher.Block // nil when plaintext
	x     int
}

// psmSearch records what the search saw, for the message when nothing
// readable is found.
type psmSearch struct {
	sectors     int    // 4 KiB sectors looked at
	emptyHeader int    // a PSM1 sector with nothing after the header; -1 if none
	badHeader   int    // a PSM1 sector whose content is not key=value text; -1 if none
	badHeaderX  int    // the key byte of badHeader; -1 for plaintext
	usual       string // what sits at UsualPSMOffset
}

// findPSM looks for the first sector (on the 4 KiB grid from 0) that
// starts with PSM1, in plaintext or decrypted with one of the 256 keys,
// and whose content reads as a key=value table.
func findPSM(dump []byte) (*psmStore, psmSearch) {
	s := psmSearch{emptyHeader: -1, badHeader: -1, badHeaderX: -1}
	ciphers := psmCiphers()
	head := make([]byte, aes.BlockSize)
	for off := 0; off+aes.BlockSize <= len(dump); off += sectorSize {
		s.sectors++
		raw := dump[off:min(off+sectorSize, len(dump))]
		if bytes.HasPrefix(raw, []byte(psmMagic)) {
			if st := s.check(off, raw, -1); st != nil {
				return st, s
			}
			continue
		}
		for x := 0; x < 256; x++ {
			b := ciphers[x]
			b.Decrypt(head, raw[:aes.BlockSize])
			if string(head[:4]) != psmMagic {
				continue
			}
			if st := s.check(off, decryptSector(b, raw), x); st != nil {
				st.block = b
				return st, s
			}
		}
	}
	switch {
	case UsualPSMOffset+aes.BlockSize > len(dump):
		s.usual = fmt.Sprintf("the dump ends before 0x%X, where Tuya's ESP8266 firmware keeps it", UsualPSMOffset)
	case allFF(dump[UsualPSMOffset:min(UsualPSMOffset+sectorSize, len(dump))]):
		s.usual = fmt.Sprintf("0x%X, where Tuya's ESP8266 firmware keeps it, is erased", UsualPSMOffset)
	default:
		s.usual = fmt.Sprintf("0x%X, where Tuya's ESP8266 firmware keeps it, holds other data", UsualPSMOffset)
	}
	return nil, s
}

// check validates a header sector (plaintext) at off; x is the key byte
// or -1.
func (s *psmSearch) check(off int, plain []byte, x int) *psmStore {
	t := scanPSMText(plain[len(psmMagic):])
	if t.pairs > 0 {
		return &psmStore{off: off, x: x}
	}
	if x >= 0 {
		// A wrong key gives PSM1 once in 2^32 tries: a decrypted header
		// without a table is noise unless nothing better turns up.
		if s.badHeader < 0 {
			s.badHeader, s.badHeaderX = off, x
		}
		return nil
	}
	if t.text == 0 {
		if s.emptyHeader < 0 {
			s.emptyHeader = off
		}
	} else if s.badHeader < 0 || s.badHeaderX >= 0 {
		s.badHeader, s.badHeaderX = off, -1
	}
	return nil
}

// psmText summarises how a sector reads as PSM text.
type psmText struct {
	pairs int // well-formed key=value strings
	text  int // bytes that are not separators
}

// scanPSMText counts the key=value strings of p (separators NUL and
// 0xFF).
func scanPSMText(p []byte) psmText {
	var t psmText
	forEachSegment(p, func(seg []byte, _ int) {
		t.text += len(seg)
		if _, _, ok := splitPSMEntry(seg); ok {
			t.pairs++
		}
	})
	return t
}

// looksLikePSM decides whether a sector after the header sector belongs
// to the store: it has its own PSM1 header, or key=value strings make up
// at least half of its text. continued reports that the previous sector
// ended inside a string, so that this one may start with its tail (which
// then counts as PSM text when it is printable).
func looksLikePSM(plain []byte, continued bool) bool {
	if bytes.HasPrefix(plain, []byte(psmMagic)) {
		return true
	}
	text, good := 0, 0
	forEachSegment(plain, func(seg []byte, at int) {
		text += len(seg)
		if _, _, ok := splitPSMEntry(seg); ok || continued && at == 0 && printableText(seg) {
			good += len(seg)
		}
	})
	return good > 0 && good*2 >= text
}

// forEachSegment calls fn for every run of bytes between separators (NUL,
// 0xFF) with its offset in p.
func forEachSegment(p []byte, fn func(seg []byte, at int)) {
	start := -1
	for i, c := range p {
		if c == 0x00 || c == 0xFF {
			if start >= 0 {
				fn(p[start:i], start)
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		fn(p[start:], start)
	}
}

// isKeyChar reports the characters a PSM key name is made of.
func isKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
}

// printableText reports valid UTF-8 without control characters other
// than tab, CR and LF.
func printableText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7F {
			return false
		}
	}
	return true
}

// splitPSMEntry splits "key=value". Stray bytes before the key name are
// dropped (the key is the run of name characters just before '='); the
// value must be text. ok is false for anything else.
func splitPSMEntry(seg []byte) (key, value string, ok bool) {
	eq := bytes.IndexByte(seg, '=')
	if eq <= 0 {
		return "", "", false
	}
	k := eq
	for k > 0 && isKeyChar(seg[k-1]) {
		k--
	}
	if k == eq || !printableText(seg[eq+1:]) {
		return "", "", false
	}
	return string(seg[k:eq]), string(seg[eq+1:]), true
}

// psmPiece is one sector's contribution to the store's text.
type psmPiece struct {
	plain []byte
	off   int  // input offset of plain[0]
	cut   bool // a string may not continue from the previous piece
	short bool // the input ends inside this sector
}

// readPSM collects the store's sectors from st.off on: every following
// sector that looks like PSM, with at most one sector in between that
// does not (skipped and reported); two in a row end the store.
func readPSM(dump []byte, st *psmStore) (pieces []psmPiece, infos []BlockInfo, dmg *DamageError) {
	dmg = &DamageError{}
	var pending *BlockInfo // a sector that did not look like PSM
	continued := false
	for off := st.off; off+aes.BlockSize <= len(dump); off += sectorSize {
		raw := dump[off:min(off+sectorSize, len(dump))]
		plain := raw
		if st.block != nil {
			plain = decryptSector(st.block, raw)
		}
		info := BlockInfo{Offset: off, Kind: KindPSM, OK: true, InUse: true}
		if off != st.off && !looksLikePSM(plain, continued && pending == nil) {
			if pending != nil {
				break
			}
			pending = &BlockInfo{Offset: off, Kind: KindBad, Reason: "does not read as PSM entries (overwritten or damaged); skipped"}
			if allFF(raw) {
				pending = &BlockInfo{Offset: off, Kind: KindPSM, OK: true, Reason: "erased; skipped"}
			}
			continue
		}
		if pending != nil {
			infos = append(infos, *pending)
			if !pending.OK {
				dmg.Blocks = append(dmg.Blocks, BlockError{Offset: pending.Offset, Reason: pending.Reason})
			}
		}
		p := psmPiece{plain: plain, off: off, cut: pending != nil || off == st.off}
		pending = nil
		if bytes.HasPrefix(plain, []byte(psmMagic)) {
			p.plain, p.off, p.cut = plain[len(psmMagic):], off+len(psmMagic), true
		}
		if len(raw) < sectorSize {
			info.OK = false
			info.Reason = fmt.Sprintf("truncated: the input ends %d bytes into this sector", len(raw))
			dmg.Blocks = append(dmg.Blocks, BlockError{Offset: off, Reason: info.Reason})
			p.short = true
		}
		pieces = append(pieces, p)
		infos = append(infos, info)
		last := plain[len(plain)-1]
		continued = last != 0x00 && last != 0xFF
	}
	return pieces, infos, dmg
}

// psmEntries splits the pieces into key=value strings; a string may run
// on into the next piece unless that piece is cut. Runs of text that are
// no key=value string are returned as notes.
func psmEntries(pieces []psmPiece) (entries []psmEntry, notes []string) {
	var cur []byte
	curOff := -1
	flush := func() {
		if len(cur) == 0 {
			return
		}
		if k, v, ok := splitPSMEntry(cur); ok {
			entries = append(entries, psmEntry{key: k, value: v, off: curOff})
		} else if len(cur) >= 4 {
			// Shorter runs are padding noise (the GUI reader ignores them too).
			notes = append(notes, fmt.Sprintf("%d bytes at 0x%06X are not a key=value string; skipped", len(cur), curOff))
		}
		cur, curOff = cur[:0], -1
	}
	for _, p := range pieces {
		if p.cut {
			flush()
		}
		for i, c := range p.plain {
			if c == 0x00 || c == 0xFF {
				flush()
				continue
			}
			if curOff < 0 {
				curOff = p.off + i
			}
			cur = append(cur, c)
		}
	}
	if n := len(pieces); n > 0 && pieces[n-1].short && len(cur) > 0 {
		notes = append(notes, fmt.Sprintf("the string at 0x%06X is cut by the end of the input; skipped", curOff))
		return entries, notes
	}
	flush()
	return entries, notes
}

// Keys of a PSM store that tuyaflash maps to Config fields. The GUI
// reader names local_key, ssid and passwd (and the key prefixes ty_ws_,
// device_, gw_) but no key for the device id; tuyaflash takes it from the
// names Tuya uses for the device id elsewhere: devId and gwId in its LAN
// protocol and tinytuya's files, dev_id/device_id/gw_id as snake-case
// variants. JSON values under gw_di, gw_ai, gw_bi and gw_wsm are read as
// on BK7231 (Config.fill).
var (
	psmDeviceIDKeys = []string{"devId", "dev_id", "device_id", "gwId", "gw_id"}
	psmFieldKeys    = []struct {
		key   string
		field func(*Config) *string
	}{
		{"local_key", func(c *Config) *string { return &c.LocalKey }},
		{"ssid", func(c *Config) *string { return &c.WiFiSSID }},
		{"passwd", func(c *Config) *string { return &c.WiFiPassword }},
		{"uuid", func(c *Config) *string { return &c.UUID }},
		{"auth_key", func(c *Config) *string { return &c.AuthKey }},
		{"psk_key", func(c *Config) *string { return &c.PSKKey }},
	}
)

// pinMapSettings are the non-pin keys the pin templates understand; with
// the pin keys and their *_lv levels they make up the pin map assembled
// from a PSM store that has no user_param_key.
var pinMapSettings = map[string]bool{"module": true, "dmod": true, "chip_type": true, "pwmhz": true, "baud": true}

// parsePSM reads the Tuya config from an ESP8266 PSM store in dump, with
// a *DamageError when parts of the store were skipped. cfg is nil when
// there is no readable store; search then says what was seen.
func parsePSM(dump []byte) (cfg *Config, search psmSearch, err error) {
	st, search := findPSM(dump)
	if st == nil {
		return nil, search, nil
	}
	pieces, infos, dmg := readPSM(dump, st)
	entries, notes := psmEntries(pieces)
	info := &PSMInfo{Offset: st.off, Sectors: (infos[len(infos)-1].Offset-st.off)/sectorSize + 1, Encrypted: st.block != nil}
	if info.Encrypted {
		info.KeyByte = st.x
	}
	cfg = &Config{Keys: map[string]json.RawMessage{}, PSM: info, Blocks: infos, Notes: notes}
	values := map[string]string{}
	count := map[string]int{}
	for _, e := range entries {
		if count[e.key] == 0 {
			info.Order = append(info.Order, e.key)
		}
		count[e.key]++
		values[e.key] = e.value
		cfg.Keys[e.key] = psmValue(e.value)
	}
	for _, k := range info.Order {
		if n := count[k]; n > 1 {
			var last int
			for _, e := range entries {
				if e.key == k {
					last = e.off
				}
			}
			cfg.Notes = append(cfg.Notes, fmt.Sprintf("%s is stored %d times; the last copy (0x%06X) is used", k, n, last))
		}
	}
	cfg.fill()
	cfg.fillPSM(values)
	if dmg.empty() {
		return cfg, search, nil
	}
	return cfg, search, dmg
}

// psmValue stores a PSM value in Keys: a JSON object or array as JSON,
// anything else as a JSON string of the exact text.
func psmValue(v string) json.RawMessage {
	if t := strings.TrimSpace(v); len(t) > 0 && (t[0] == '{' || t[0] == '[') && json.Valid([]byte(t)) {
		var buf bytes.Buffer
		if json.Compact(&buf, []byte(t)) == nil {
			return buf.Bytes()
		}
	}
	return marshalPlain(v)
}

// fillPSM sets the typed fields from the flat PSM keys (which win over
// what the JSON values gave, with a note when they disagree), names the
// chip, and assembles a pin map from top-level pin keys when there is no
// user_param_key.
func (c *Config) fillPSM(values map[string]string) {
	set := func(key string, dst *string) {
		v, ok := values[key]
		if !ok || v == "" {
			return
		}
		if *dst != "" && *dst != v {
			c.Notes = append(c.Notes, fmt.Sprintf("%s differs from the value inside a JSON key; %s is shown", key, key))
		}
		*dst = v
	}
	for _, f := range psmFieldKeys {
		set(f.key, f.field(c))
	}
	for _, k := range psmDeviceIDKeys {
		if values[k] != "" {
			set(k, &c.DeviceID)
			break
		}
	}
	c.Activated = c.DeviceID != ""
	if c.Chip == "" {
		c.Chip, c.ChipSource = "ESP8266", "psm"
	}
	if c.UserParams == nil {
		c.UserParams = pinMapFromPSM(c.PSM.Order, values)
		if c.UserParams != nil {
			c.Module = c.UserParams.Module()
			c.Notes = append(c.Notes, "the pin map was assembled from the PSM's top-level pin keys (no user_param_key stored)")
		}
	}
}

// pinMapFromPSM builds a user_param_key from the top-level keys that are
// pins (integer values whose names the pin map knows), their *_lv levels
// and the settings the templates use; nil when there is no pin.
func pinMapFromPSM(order []string, values map[string]string) *UserParamKey {
	probe := &UserParamKey{Values: map[string]any{}}
	for _, k := range order {
		if n, err := strconv.Atoi(values[k]); err == nil && isPlainInt(values[k]) {
			probe.Values[k] = n
			probe.Order = append(probe.Order, k)
		}
	}
	pins := map[string]bool{}
	for _, f := range probe.Functions() {
		if !strings.HasSuffix(f.Key, "_lv") {
			pins[f.Key] = true
		}
	}
	if len(pins) == 0 {
		return nil
	}
	levels := map[string]bool{}
	for k := range pins {
		levels[LevelKey(k)] = true
	}
	var parts []string
	for _, k := range order {
		if !pins[k] && !levels[k] && !pinMapSettings[k] {
			continue
		}
		v := values[k]
		if v == "" || v != strings.TrimSpace(v) || strings.ContainsAny(v, ",:{}[]\"") {
			v = string(marshalPlain(v)) // quoted where a bare token would not read back
		}
		parts = append(parts, k+":"+v)
	}
	raw := "{" + strings.Join(parts, ",") + "}"
	u, err := ParseUserParamKey(raw)
	if err != nil {
		return nil // cannot happen: every value is an integer or a JSON string
	}
	return u
}

// noPSMError explains, for an input that holds neither BK7231 storage nor
// a readable PSM store, what was searched and where. bekenDetail says why
// the BK7231 storage was not read; bekenSeen reports that some of it was
// found (then the PSM search is not worth mentioning).
func noPSMError(dump []byte, s psmSearch, bekenDetail string, bekenSeen bool) error {
	where := fmt.Sprintf("searched %d sectors (0x000000-0x%06X) for a sector starting with \"PSM1\", in plaintext "+
		"and decrypted with each of the 256 keys \"Qby6\"+X+\"TH9bj8GiexU\"", s.sectors, max(0, len(dump)-1))
	if s.badHeader >= 0 && s.badHeaderX < 0 {
		return &UnsupportedFormatError{Chip: "ESP8266", Detail: fmt.Sprintf(
			"the sector at 0x%06X starts with the PSM1 header but holds no key=value strings: a PSM layout tuyaflash cannot read", s.badHeader)}
	}
	espImage := len(dump) >= 4 && dump[0] == 0xE9 && dump[1] <= 16 && dump[2] <= 3
	if bekenSeen && !espImage {
		return noStorage(bekenDetail)
	}
	if !espImage {
		return noStorage(bekenDetail + ", and no ESP8266 PSM store (" + where + ")")
	}
	detail := "ESP8266 dump (boot image at 0x0) without a Tuya PSM store: " + where + "; " + s.usual
	if s.emptyHeader >= 0 {
		detail += fmt.Sprintf("; the PSM store at 0x%06X is empty (header only)", s.emptyHeader)
	}
	if s.badHeader >= 0 {
		detail += fmt.Sprintf("; the sector at 0x%06X decrypts to the PSM1 header with key byte 0x%02X but holds no key=value strings", s.badHeader, s.badHeaderX)
	}
	return &flasher.HintError{Err: fmt.Errorf("%w: %s", ErrNoStorage, detail), Hint: "The device may never have run Tuya's " +
		"firmware, its store may have been erased, or this firmware keeps its configuration elsewhere. Keep the backup file. " +
		"The local key can be fetched from the Tuya cloud with tinytuya's wizard; note the pins from the device's template " +
		"(e.g. templates.blakadder.com) or by tracing the board."}
}
