package slip

import (
	"bytes"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tuyaflash/tuyaflash/transport"
)

func TestEncode(t *testing.T) {
	tests := []struct {
		name     string
		in, want []byte
	}{
		{"plain", []byte{1, 2, 3}, []byte{0xC0, 1, 2, 3, 0xC0}},
		{"end byte", []byte{0xC0}, []byte{0xC0, 0xDB, 0xDC, 0xC0}},
		{"esc byte", []byte{0xDB}, []byte{0xC0, 0xDB, 0xDD, 0xC0}},
		// An escaped 0xC0 must not have its 0xDB escaped again.
		{"esc then end", []byte{0xDB, 0xC0}, []byte{0xC0, 0xDB, 0xDD, 0xDB, 0xDC, 0xC0}},
		{"escape codes alone are plain", []byte{0xDC, 0xDD}, []byte{0xC0, 0xDC, 0xDD, 0xC0}},
		{"empty", nil, []byte{0xC0, 0xC0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Encode(nil, tc.in)
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("Encode(% X) = % X, want % X", tc.in, got, tc.want)
			}
			if n := EncodedLen(tc.in); n != len(tc.want) {
				t.Errorf("EncodedLen = %d, want %d", n, len(tc.want))
			}
		})
	}
}

// TestEncodeAppends checks the append form keeps what dst held.
func TestEncodeAppends(t *testing.T) {
	dst := []byte{0xAA}
	got := Encode(dst, []byte{0xC0})
	want := []byte{0xAA, 0xC0, 0xDB, 0xDC, 0xC0}
	if !bytes.Equal(got, want) {
		t.Fatalf("got % X, want % X", got, want)
	}
}

// TestEncodeSyncRequest checks the 46-byte SYNC request of the reference
// (esp8266-protocol.md §4.3).
func TestEncodeSyncRequest(t *testing.T) {
	pkt := []byte{0x00, 0x08, 0x24, 0x00, 0, 0, 0, 0, 0x07, 0x07, 0x12, 0x20}
	pkt = append(pkt, bytes.Repeat([]byte{0x55}, 32)...)
	wire := Encode(nil, pkt)
	if len(wire) != 46 || wire[0] != 0xC0 || wire[45] != 0xC0 {
		t.Fatalf("SYNC on the wire is %d bytes: % X", len(wire), wire)
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		wire    []byte
		want    []byte
		n       int
		wantErr error
	}{
		{"frame", []byte{0xC0, 1, 2, 0xC0, 9}, []byte{1, 2}, 4, nil},
		{"junk before", []byte{'e', 't', 's', 0xC0, 1, 0xC0}, []byte{1}, 6, nil},
		{"escapes", []byte{0xC0, 0xDB, 0xDC, 0xDB, 0xDD, 0xC0}, []byte{0xC0, 0xDB}, 6, nil},
		{"double delimiter skipped", []byte{0xC0, 0xC0, 7, 0xC0}, []byte{7}, 4, nil},
		{"incomplete", []byte{0xC0, 1, 2}, nil, 3, ErrIncomplete},
		{"no start", []byte{1, 2, 3}, nil, 3, ErrIncomplete},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, n, err := Decode(nil, tc.wire)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if n != tc.n {
				t.Errorf("consumed %d, want %d", n, tc.n)
			}
			if err == nil && !bytes.Equal(got, tc.want) {
				t.Errorf("payload % X, want % X", got, tc.want)
			}
		})
	}
}

func TestDecodeBadEscape(t *testing.T) {
	_, n, err := Decode(nil, []byte{0xC0, 1, 0xDB, 0x01, 2, 0xC0})
	var ee *EscapeError
	if !errors.As(err, &ee) || ee.Next != 0x01 {
		t.Fatalf("err = %v, want EscapeError with 0x01", err)
	}
	if n != 4 {
		t.Errorf("consumed %d, want 4 (up to the bad byte)", n)
	}
}

func TestDecodeKeepsDstPrefix(t *testing.T) {
	dst := make([]byte, 2, 3) // too small: Decode must grow it
	dst[0], dst[1] = 'a', 'b'
	got, _, err := Decode(dst, Encode(nil, []byte("0123456789")))
	if err != nil || string(got) != "ab0123456789" {
		t.Fatalf("got %q, %v", got, err)
	}
}

// scripted is a Source that hands out chunks and, once they are gone,
// waits out the read timeout (in synctest's fake time).
type scripted struct {
	chunks  [][]byte
	timeout time.Duration
	err     error // returned when the chunks are gone, if set
}

func (s *scripted) SetReadTimeout(d time.Duration) error { s.timeout = d; return nil }

func (s *scripted) Read(p []byte) (int, error) {
	if len(s.chunks) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		time.Sleep(s.timeout)
		return 0, nil
	}
	n := copy(p, s.chunks[0])
	s.chunks[0] = s.chunks[0][n:]
	if len(s.chunks[0]) == 0 {
		s.chunks = s.chunks[1:]
	}
	return n, nil
}

func TestReaderFrames(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		wire := append([]byte("ets Jan  8 2013,rst cause:2, boot mode:(1,7)\r\n"), Encode(nil, []byte{1, 0xC0, 2})...)
		wire = Encode(wire, []byte("OHAI"))
		// Deliver one byte at a time: frames cross every read boundary.
		var chunks [][]byte
		for _, c := range wire {
			chunks = append(chunks, []byte{c})
		}
		r := NewReader(&scripted{chunks: chunks})
		dl := time.Now().Add(time.Second)
		f, err := r.ReadFrame(dl)
		if err != nil || !bytes.Equal(f, []byte{1, 0xC0, 2}) {
			t.Fatalf("first frame % X, %v", f, err)
		}
		f, err = r.ReadFrame(dl)
		if err != nil || string(f) != "OHAI" {
			t.Fatalf("second frame %q, %v", f, err)
		}
		start := time.Now()
		_, err = r.ReadFrame(start.Add(100 * time.Millisecond))
		var te *TimeoutError
		if !errors.As(err, &te) || !errors.Is(err, transport.ErrTimeout) || te.InFrame || te.Junk != 0 {
			t.Fatalf("err = %#v, want a plain timeout", err)
		}
		if el := time.Since(start); el != 100*time.Millisecond {
			t.Errorf("timed out after %v, want 100ms", el)
		}
	})
}

func TestReaderTimeouts(t *testing.T) {
	tests := []struct {
		name        string
		wire        []byte
		wantInFrame bool
		wantPartial int
		wantJunk    int
		wantMsg     string
	}{
		{"nothing", nil, false, 0, 0, "no data received"},
		{"mid frame", []byte{0xC0, 1, 2, 3}, true, 3, 0, "frame stopped after 3 bytes"},
		{"junk only", []byte("hello"), false, 0, 5, `only 5 bytes of other data ("hello")`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := NewReader(&scripted{chunks: [][]byte{tc.wire}})
				_, err := r.ReadFrame(time.Now().Add(50 * time.Millisecond))
				var te *TimeoutError
				if !errors.As(err, &te) {
					t.Fatalf("err = %v, want *TimeoutError", err)
				}
				if te.InFrame != tc.wantInFrame || te.Partial != tc.wantPartial || te.Junk != tc.wantJunk {
					t.Errorf("got %+v", te)
				}
				if !bytes.Contains([]byte(err.Error()), []byte(tc.wantMsg)) {
					t.Errorf("message %q lacks %q", err, tc.wantMsg)
				}
			})
		})
	}
}

func TestReaderPanicBanner(t *testing.T) {
	tests := []struct {
		name, junk, banner string
		thenFrame          bool
	}{
		{"fatal exception then timeout", "\r\nFatal exception (28):\r\nepc1=0x40100000\r\n", "Fatal exception", false},
		{"guru meditation before a frame", "Guru Meditation Error: Core  0 panic'ed (LoadProhibited)\n", "Guru Meditation Error", true},
		{"first letter lost", "atal exception (0): IllegalInstruction epc", "Fatal exception", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				wire := []byte(tc.junk)
				if tc.thenFrame {
					wire = Encode(wire, []byte("OHAI"))
				}
				r := NewReader(&scripted{chunks: [][]byte{wire}})
				dl := time.Now().Add(50 * time.Millisecond)
				_, err := r.ReadFrame(dl)
				var pe *PanicError
				if !errors.As(err, &pe) || pe.Banner != tc.banner || !errors.Is(err, ErrPanic) {
					t.Fatalf("err = %v, want PanicError %q", err, tc.banner)
				}
				if tc.thenFrame {
					f, err := r.ReadFrame(dl)
					if err != nil || string(f) != "OHAI" {
						t.Fatalf("frame after the banner: %q, %v", f, err)
					}
				}
			})
		})
	}
}

func TestReaderRecoversAfterBadEscape(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		wire := []byte{0xC0, 1, 0xDB, 0x02, 3, 0xC0}
		wire = Encode(wire, []byte{9, 9})
		r := NewReader(&scripted{chunks: [][]byte{wire}})
		dl := time.Now().Add(50 * time.Millisecond)
		_, err := r.ReadFrame(dl)
		var ee *EscapeError
		if !errors.As(err, &ee) {
			t.Fatalf("err = %v, want EscapeError", err)
		}
		// The rest of the broken frame ("03") is junk, its closing 0xC0
		// reads as a start, the next frame's opening 0xC0 as an empty
		// frame that is skipped: the next good frame comes out whole.
		f, err := r.ReadFrame(dl)
		if err != nil || !bytes.Equal(f, []byte{9, 9}) {
			t.Fatalf("after the bad escape: % X, %v", f, err)
		}
	})
}

func TestReaderFrameTooLong(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewReader(&scripted{chunks: [][]byte{Encode(nil, make([]byte, 100)), Encode(nil, []byte{5})}})
		r.MaxFrame = 64
		dl := time.Now().Add(50 * time.Millisecond)
		if _, err := r.ReadFrame(dl); !errors.Is(err, ErrFrameTooLong) {
			t.Fatalf("err = %v, want ErrFrameTooLong", err)
		}
	})
}

func TestReaderSourceError(t *testing.T) {
	r := NewReader(&scripted{chunks: [][]byte{Encode(nil, []byte{1})}, err: transport.ErrClosed})
	dl := time.Now().Add(time.Second)
	if f, err := r.ReadFrame(dl); err != nil || !bytes.Equal(f, []byte{1}) {
		t.Fatalf("frame before the close: % X, %v", f, err)
	}
	if _, err := r.ReadFrame(dl); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
}

func TestReaderReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		wire := Encode(nil, []byte{1})
		wire = Encode(wire, []byte{2})
		r := NewReader(&scripted{chunks: [][]byte{wire}})
		dl := time.Now().Add(50 * time.Millisecond)
		if f, err := r.ReadFrame(dl); err != nil || f[0] != 1 {
			t.Fatalf("first: % X, %v", f, err)
		}
		if r.Buffered() != 3 {
			t.Fatalf("buffered %d, want 3", r.Buffered())
		}
		r.Reset()
		if _, err := r.ReadFrame(dl); !errors.Is(err, transport.ErrTimeout) {
			t.Fatalf("after Reset: %v, want a timeout", err)
		}
	})
}

// TestReaderOverPacedPipe reads frames sent over a link paced at 115200
// baud, which hands them over in 64-byte USB packets.
func TestReaderOverPacedPipe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		host, chip := transport.Pipe(transport.LinkOptions{Baud: 115200, Paced: true})
		defer host.Close()
		defer chip.Close()
		payload := bytes.Repeat([]byte{0xC0, 0xDB, 0x55}, 700)
		if _, err := chip.Write(Encode(nil, payload)); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		f, err := NewReader(host).ReadFrame(start.Add(time.Second))
		if err != nil || !bytes.Equal(f, payload) {
			t.Fatalf("got %d bytes, %v", len(f), err)
		}
		wire := transport.WireTime(int64(EncodedLen(payload)), 115200)
		if el := time.Since(start); el < wire {
			t.Errorf("frame arrived after %v, faster than the wire (%v)", el, wire)
		}
	})
}

func FuzzSLIP(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0xC0})
	f.Add([]byte{0xDB, 0xDC, 0xDD, 0xC0, 0xC0})
	f.Add([]byte("OHAI"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Round trip.
		if len(data) > 0 {
			got, n, err := Decode(nil, Encode(nil, data))
			if err != nil || !bytes.Equal(got, data) || n != EncodedLen(data) {
				t.Fatalf("round trip of % X: % X, %d, %v", data, got, n, err)
			}
		}
		// Arbitrary input: no panic, progress, sane results.
		rest := data
		for len(rest) > 0 {
			_, n, err := Decode(nil, rest)
			if n <= 0 || n > len(rest) {
				t.Fatalf("Decode consumed %d of %d", n, len(rest))
			}
			if errors.Is(err, ErrIncomplete) {
				break
			}
			rest = rest[n:]
		}
		r := NewReader(&scripted{chunks: [][]byte{append([]byte(nil), data...)}, err: transport.ErrClosed})
		r.MaxFrame = 32
		for i := 0; i <= len(data); i++ {
			f, err := r.ReadFrame(time.Now().Add(time.Second))
			if errors.Is(err, transport.ErrClosed) {
				break
			}
			if err == nil && len(f) == 0 {
				t.Fatal("empty frame returned")
			}
		}
	})
}
