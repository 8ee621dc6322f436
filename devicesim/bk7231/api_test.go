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
		{"bk7231u", 0, false},
		{"", 0, false},
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
