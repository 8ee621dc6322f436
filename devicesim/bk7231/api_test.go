package bksim

import (
	"strings"
	"testing"
	"time"
)

func TestParseChip(t *testing.T) {
	tests := []struct {
		in   string
		want Chip
		ok   bool
	}{
		{"bk7231n", BK7231N, true},
		{"BK7231T", BK7231T, true},
		{" Bk7231t ", BK7231T, true},
		{"bk7231m", BK7231M, true},
		{"BL2028N", BK7231M, true},
		{"bk7238", BK7238, true},
		{"T1", BK7238, true},
		{"bk7231u", BK7231U, true},
		{"bk7252", BK7252, true},
		{"bk7252n", BK7252N, true},
		{"bk7231q", 0, false},
		{"bk7236", 0, false},
		{"esp8266", 0, false},
		{"", 0, false},
	}
	for _, c := range Chips() {
		tests = append(tests, struct {
			in   string
			want Chip
			ok   bool
		}{c.String(), c, true})
	}
	for _, tc := range tests {
		got, err := ParseChip(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseChip(%q) = %v, %v", tc.in, got, err)
		}
		if tc.ok {
			if back, _ := ParseChip(got.String()); back != got {
				t.Errorf("%v does not round-trip through String", got)
			}
		}
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error, "" = ok
	}{
		{"defaults", Config{}, ""},
		{"unknown chip", Config{Chip: 7}, "unknown chip"},
		{"72 KiB extract", Config{Flash: make([]byte, 72<<10)}, "power of two"},
		{"3 MiB", Config{Flash: make([]byte, 3<<20)}, "power of two"},
		{"512 KiB", Config{Flash: make([]byte, 512<<10)}, "power of two"},
		{"1 MiB", Config{Flash: make([]byte, 1<<20)}, ""},
		{"negative window", Config{LinkWindow: -time.Second}, "negative"},
		{"probability above 1", Config{Faults: Faults{DropRate: 1.5}}, "outside 0..1"},
		{"negative power-loss count", Config{Faults: Faults{PowerLossAt: -1}}, "negative"},
		{"reset probability below 0", Config{Faults: Faults{ResetRate: -0.1}}, "outside 0..1"},
		{"BK7252 at 2 MiB", Config{Chip: BK7252, FlashSize: 2 << 20}, ""},
		{"synthetic image of 3 MiB", Config{Chip: BK7252, FlashSize: 3 << 20}, "want 2, 4, 8 or 16 MiB"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := New(tc.cfg)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if st := d.Stats(); st.State != "app" || st.Baud != 115200 {
					t.Errorf("new device: %+v", st)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestFlashIsACopy(t *testing.T) {
	img := make([]byte, 1<<20)
	d, err := New(Config{Chip: BK7231N, Flash: img})
	if err != nil {
		t.Fatal(err)
	}
	img[0] = 0x55
	f := d.Flash()
	if f[0] != 0 {
		t.Fatal("New kept the caller's slice")
	}
	f[1] = 0x55
	if d.Flash()[1] != 0 {
		t.Fatal("Flash returned the device's own slice")
	}
}
