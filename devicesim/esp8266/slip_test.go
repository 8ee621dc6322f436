package espsim

import (
	"bytes"
	"testing"
)

func TestSLIPEncode(t *testing.T) {
	got := appendSLIP(nil, []byte{0x01, 0xC0, 0x02, 0xDB, 0xDC, 0xDD})
	want := []byte{0xC0, 0x01, 0xDB, 0xDC, 0x02, 0xDB, 0xDD, 0xDC, 0xDD, 0xC0}
	if !bytes.Equal(got, want) {
		t.Errorf("got % X, want % X", got, want)
	}
}

func TestSLIPDecode(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want [][]byte
	}{
		{"escapes", []byte{0xC0, 0x01, 0xDB, 0xDC, 0xDB, 0xDD, 0xC0}, [][]byte{{0x01, 0xC0, 0xDB}}},
		{"noise before and between frames", []byte("ets Jan  8\xC0\x01\x02\xC0junk\xC0\x03\xC0"), [][]byte{{1, 2}, {3}}},
		{"back-to-back END END", []byte{0xC0, 1, 0xC0, 0xC0, 2, 0xC0}, [][]byte{{1}, {2}}},
		{"empty frames ignored", []byte{0xC0, 0xC0, 0xC0, 0xC0}, nil},
		{"bad escape drops the frame", []byte{0xC0, 1, 0xDB, 0x00, 2, 0xC0, 0xC0, 3, 0xC0}, [][]byte{{3}}},
		{"unterminated frame waits", []byte{0xC0, 1, 2}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Byte-at-a-time and all-at-once must agree.
			for _, step := range []int{1, len(tt.in)} {
				var d slipDecoder
				for i := 0; i < len(tt.in); i += step {
					d.feed(tt.in[i:min(i+step, len(tt.in))])
				}
				var got [][]byte
				for f, ok := d.next(); ok; f, ok = d.next() {
					got = append(got, f.data)
				}
				if len(got) != len(tt.want) {
					t.Fatalf("step %d: frames %X, want %X", step, got, tt.want)
				}
				for i := range got {
					if !bytes.Equal(got[i], tt.want[i]) {
						t.Errorf("step %d: frame %d = % X, want % X", step, i, got[i], tt.want[i])
					}
				}
			}
		})
	}
}

func TestSLIPOversize(t *testing.T) {
	d := slipDecoder{max: 4}
	d.feed([]byte{0xC0, 1, 2, 3, 4, 5, 6, 0xC0})
	f, ok := d.next()
	if !ok || !f.over || !bytes.Equal(f.data, []byte{1, 2, 3, 4}) {
		t.Errorf("got %+v", f)
	}
}

// FuzzSLIP: decoding the encoding of any payload gives it back, also with
// noise in front.
func FuzzSLIP(f *testing.F) {
	f.Add([]byte{0xC0, 0xDB, 0xDC, 0xDD}, []byte("boot"))
	f.Add([]byte{}, []byte{0xDB})
	f.Fuzz(func(t *testing.T, payload, noise []byte) {
		noise = bytes.ReplaceAll(noise, []byte{0xC0}, nil)
		var d slipDecoder
		d.feed(append(append(noise, appendSLIP(nil, payload)...), appendSLIP(nil, []byte{7})...))
		fr, ok := d.next()
		if len(payload) == 0 { // an empty frame is skipped
			if !ok || !bytes.Equal(fr.data, []byte{7}) {
				t.Fatalf("empty payload: next frame %X", fr.data)
			}
			return
		}
		if !ok || !bytes.Equal(fr.data, payload) {
			t.Fatalf("payload % X decoded as % X", payload, fr.data)
		}
	})
}
