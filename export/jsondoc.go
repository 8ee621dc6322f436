package export

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// The two shapes of a tinytuya device file.
const (
	FormList   = "list"   // [ {…}, … ] as the wizard writes devices.json
	FormObject = "object" // {"devices": [ {…}, … ], …} as snapshot.json and some tools
)

// span is the byte range of one list element, without surrounding space.
type span struct{ start, end int }

// doc is a device file with the byte offsets of its device list, so that
// entries can be cut out and put back without touching any other byte.
type doc struct {
	data  []byte
	form  string
	open  int // offset of '['
	close int // offset of ']'
	elems []span
}

func parseDoc(data []byte) (*doc, error) {
	// JSON is UTF-8 (RFC 8259 §8.1), and an entry's text goes into the
	// archive as a JSON string: other bytes would not come back unchanged.
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%w: not UTF-8 text", ErrNotDeviceFile)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("%w: not JSON (%v)", ErrNotDeviceFile, err)
	}
	d := &doc{data: data}
	switch tok {
	case json.Delim('['):
		d.form = FormList
		if err := d.readList(dec); err != nil {
			return nil, err
		}
	case json.Delim('{'):
		d.form = FormObject
		found := false
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrNotDeviceFile, err)
			}
			if kt == "devices" {
				if found {
					return nil, fmt.Errorf("%w: two \"devices\" keys", ErrNotDeviceFile)
				}
				found = true
				if vt, err := dec.Token(); err != nil || vt != json.Delim('[') {
					return nil, fmt.Errorf("%w: \"devices\" is not a list", ErrNotDeviceFile)
				}
				if err := d.readList(dec); err != nil {
					return nil, err
				}
				continue
			}
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrNotDeviceFile, err)
			}
		}
		if _, err := dec.Token(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNotDeviceFile, err)
		}
		if !found {
			return nil, fmt.Errorf("%w: an object without a \"devices\" list", ErrNotDeviceFile)
		}
	default:
		return nil, fmt.Errorf("%w: neither a list nor an object", ErrNotDeviceFile)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: data after the JSON document", ErrNotDeviceFile)
	}
	return d, nil
}

func (d *doc) readList(dec *json.Decoder) error {
	d.open = int(dec.InputOffset()) - 1
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("%w: %v", ErrNotDeviceFile, err)
		}
		end := int(dec.InputOffset())
		start := end - len(raw)
		if start < 0 || !bytes.Equal(d.data[start:end], raw) {
			return fmt.Errorf("%w: cannot locate entry %d", ErrNotDeviceFile, len(d.elems)+1)
		}
		d.elems = append(d.elems, span{start, end})
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("%w: %v", ErrNotDeviceFile, err)
	}
	d.close = int(dec.InputOffset()) - 1
	return nil
}

func (d *doc) text(i int) []byte { return d.data[d.elems[i].start:d.elems[i].end] }

// layout is the white space around entry i: before the first entry (lead),
// between i and its neighbour (sep, with the comma) and after the last
// (trail).
func (d *doc) layout(i int) (lead, sep, trail string) {
	n := len(d.elems)
	if n == 0 {
		return "", "", ""
	}
	lead = string(d.data[d.open+1 : d.elems[0].start])
	trail = string(d.data[d.elems[n-1].end:d.close])
	switch {
	case i < n-1:
		sep = string(d.data[d.elems[i].end:d.elems[i+1].start])
	case i > 0:
		sep = string(d.data[d.elems[i-1].end:d.elems[i].start])
	}
	return lead, sep, trail
}

// without returns the file with entry i and one separator cut out.
func (d *doc) without(i int) []byte {
	n := len(d.elems)
	var cut span
	switch {
	case n == 1:
		cut = span{d.open + 1, d.close}
	case i < n-1:
		cut = span{d.elems[i].start, d.elems[i+1].start}
	default:
		cut = span{d.elems[i-1].end, d.elems[i].end}
	}
	return splice(d.data, cut, "")
}

// with returns the file with text inserted as entry i (at the end when i
// is past it), laid out with lead, sep and trail as recorded when it was
// cut out (so that cutting and putting back gives the same bytes); a
// missing separator is taken from the file, or made from lead.
func (d *doc) with(i int, text, lead, sep, trail string) []byte {
	n := len(d.elems)
	if sep == "" && n >= 2 {
		_, sep, _ = d.layout(0)
	}
	if sep == "" {
		sep = "," + lead
		if lead == "" {
			sep = ", "
		}
	}
	switch {
	case n == 0:
		return splice(d.data, span{d.open + 1, d.close}, lead+text+trail)
	case i < n:
		at := d.elems[i].start
		return splice(d.data, span{at, at}, text+sep)
	default:
		at := d.elems[n-1].end
		return splice(d.data, span{at, at}, sep+text)
	}
}

func splice(data []byte, cut span, insert string) []byte {
	out := make([]byte, 0, len(data)-(cut.end-cut.start)+len(insert))
	out = append(out, data[:cut.start]...)
	out = append(out, insert...)
	return append(out, data[cut.end:]...)
}
