package tuyaconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse: it must never panic, must
// return either a Config or an error, and its summary must never show the
// local key unless asked. Seeds are synthetic storage (whole, cut, with
// flipped bytes) so the fuzzer starts inside the format.
func FuzzParse(f *testing.F) {
	s := newSynthStorage(3)
	s.add("gw_ai", []byte(`{"key":"SECKEYSECRET0001","lckey":"LOCALKEYSECRET01"}`))
	s.add("gw_di", []byte(`{"id":"devid","swv":"1.0"}`))
	s.add("user_param_key", []byte("{rl1_pin:6,rl1_lv:0,module:CB2S,}"))
	st := s.bytes()[:4*sectorSize]
	f.Add(st)
	f.Add(st[:sectorSize+300])
	flipped := append([]byte(nil), st...)
	flipped[sectorSize+200] ^= 1
	f.Add(flipped)
	f.Add([]byte{0xE9, 1, 2, 3})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if cfg == nil && err == nil {
			t.Fatal("nil Config without an error")
		}
		if cfg == nil {
			if !errors.Is(err, ErrNoStorage) && !errors.Is(err, ErrUnsupportedFormat) {
				t.Fatalf("nil Config with unexpected error %v", err)
			}
			return
		}
		if err != nil && !errors.Is(err, ErrDamaged) {
			t.Fatalf("Config with unexpected error %v", err)
		}
		out := cfg.Summary(false)
		if cfg.PSM != nil {
			return // FuzzPSM checks these (a PSM value may repeat a secret in a public key)
		}
		if len(cfg.LocalKey) > 3 && strings.Contains(out, cfg.LocalKey) {
			t.Fatal("summary shows the local key without --show-secrets")
		}
		if _, err := cfg.JSON(false); err != nil {
			t.Fatalf("JSON: %v", err)
		}
	})
}

// FuzzParseUserParamKey: never panics, always keeps Raw.
func FuzzParseUserParamKey(f *testing.F) {
	for _, s := range []string{"{rl1_pin:6,module:WB2S,}", `{"a":[1,{"b":"c"}]}`, "{a:{b:{c:[", "{:,}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, _ := ParseUserParamKey(s)
		if u == nil || u.Raw != s {
			t.Fatal("Raw not kept")
		}
		u.Functions()
		u.LightDriver()
	})
}

// FuzzPSM feeds ESP8266 PSM stores (plaintext and encrypted, one or
// several sectors, damaged) to Parse. Besides never panicking: a store it
// reads lies inside the input on the sector grid, every key it lists has
// a value and a well-formed name, the typed fields are the flat keys'
// values, secrets stay out of the redacted summary, and writing the
// entries it read into a fresh store (same key byte) reads back to the
// same keys.
func FuzzPSM(f *testing.F) {
	base := synthPSM{entries: psmBase()}.sectors()
	f.Add(base[0])
	f.Add(encryptPSMSectors(f, base, 0x5A)[0])
	f.Add(bytes.Join(synthPSM{entries: append(filler(45), psmBase()...), sep: 0xFF, stray: []byte{1}}.sectors(), nil))
	f.Add(bytes.Join(encryptPSMSectors(f, synthPSM{entries: append(filler(45), "rl1_pin=12", "module=TYWE3S")}.sectors(), 0xE1), nil))
	cut := bytes.Join(synthPSM{entries: append(filler(84), psmBase()...)}.sectors(), nil)
	f.Add(cut[:2*sectorSize+100])
	f.Add([]byte("PSM1\x00"))
	f.Add([]byte("PSM1\x00a=b\x00gw_di={\"id\":\"x\"}\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if cfg == nil || cfg.PSM == nil {
			if cfg == nil && err == nil {
				t.Fatal("nil Config without an error")
			}
			return
		}
		if err != nil && !errors.Is(err, ErrDamaged) {
			t.Fatalf("Config with unexpected error %v", err)
		}
		p := cfg.PSM
		if p.Offset < 0 || p.Offset%sectorSize != 0 || p.Offset >= len(data) || p.Sectors < 1 ||
			p.Offset+(p.Sectors-1)*sectorSize >= len(data) || p.KeyByte < 0 || p.KeyByte > 255 {
			t.Fatalf("store %+v outside an input of %d bytes", *p, len(data))
		}
		if len(p.Order) != len(cfg.Keys) {
			t.Fatalf("order lists %d keys, Keys has %d", len(p.Order), len(cfg.Keys))
		}
		values := map[string]string{}
		for _, k := range p.Order {
			if _, ok := cfg.Keys[k]; !ok || k == "" || strings.IndexFunc(k, func(r rune) bool { return r > 0x7F || !isKeyChar(byte(r)) }) >= 0 {
				t.Fatalf("key %q malformed or without a value", k)
			}
			values[k] = cfg.Text(k)
		}
		for _, c := range []struct{ key, got string }{{"local_key", cfg.LocalKey}, {"ssid", cfg.WiFiSSID}, {"passwd", cfg.WiFiPassword}} {
			if v := values[c.key]; v != "" && v[0] != '{' && v[0] != '[' && c.got != v {
				t.Fatalf("%s = %q but the field is %q", c.key, v, c.got)
			}
		}
		checkSecretsHidden(t, cfg, values)
		// Round trip through a fresh store.
		var entries []string
		for _, k := range p.Order {
			if len(k)+len(values[k]) > 3000 {
				return
			}
			entries = append(entries, k+"="+values[k])
		}
		if len(entries) == 0 {
			return
		}
		secs := synthPSM{entries: entries, headerEverySector: true}.sectors()
		if p.Encrypted {
			secs = encryptPSMSectors(t, secs, byte(p.KeyByte))
		}
		again, err := Parse(bytes.Join(secs, nil))
		if err != nil || again.PSM == nil || again.PSM.Encrypted != p.Encrypted || again.PSM.KeyByte != p.KeyByte {
			t.Fatalf("re-encoded store: %v", err)
		}
		if len(again.Keys) != len(cfg.Keys) {
			t.Fatalf("re-encoded store has %d keys, want %d", len(again.Keys), len(cfg.Keys))
		}
		for k, v := range cfg.Keys {
			if !bytes.Equal(again.Keys[k], v) {
				t.Fatalf("key %s: %s after the round trip, was %s", k, again.Keys[k], v)
			}
		}
	})
}

// checkSecretsHidden fails when the redacted summary or JSON shows the
// value of a secret key that does not also appear as a non-secret value.
func checkSecretsHidden(t *testing.T, cfg *Config, values map[string]string) {
	var public strings.Builder
	for k, v := range values {
		if !secretFields[strings.ToLower(k)] {
			public.WriteString(k + "=" + v + "\n")
		}
	}
	public.WriteString(strings.Join(cfg.Notes, "\n"))
	js, err := cfg.JSON(false)
	if err != nil {
		t.Fatalf("JSON: %v", err)
	}
	summary := cfg.Summary(false)
	for k, v := range values {
		if !secretFields[strings.ToLower(k)] || len(v) < 6 || strings.Contains(public.String(), v) || strings.Contains(Hidden, v) {
			continue
		}
		if strings.Contains(summary, v) {
			t.Fatalf("the redacted summary shows the value of %s", k)
		}
		if q, _ := json.Marshal(v); bytes.Contains(js, q[1:len(q)-1]) {
			t.Fatalf("the redacted JSON shows the value of %s", k)
		}
	}
}
