package tuyaconfig

import (
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
