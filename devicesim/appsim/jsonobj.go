package appsim

import (
	"bytes"
	"encoding/json"
)

// obj is a JSON object whose keys keep their order, as the firmwares print
// them.
type obj []kv

type kv struct {
	k string
	v any
}

// raw is JSON text taken as it is (e.g. 17.0, which encoding/json would
// print as 17).
type raw string

// MarshalJSON writes the members in order.
func (o obj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(jsonText(m.k))
		b.WriteByte(':')
		b.Write(jsonText(m.v))
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// jsonText encodes v without HTML escaping (the firmwares print < and &
// as they are).
func jsonText(v any) []byte {
	if r, ok := v.(raw); ok {
		return []byte(r)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return []byte("null")
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
