package transport

import (
	"strings"
	"testing"
)

// TestAdapterRates checks each model's rate arithmetic against values worked
// out by hand from the driver formulas cited in usbadapter.go.
func TestAdapterRates(t *testing.T) {
	tests := []struct {
		adapter      string
		req          int
		wire, report int
	}{
		// ch341: 48 MHz / (4 × 13) at 921600; the driver reports the request.
		{"ch340", 921600, 923076, 921600},
		{"ch340", 115200, 115384, 115200},    // 48 MHz / (4 × 104)
		{"ch340", 74880, 75000, 74880},       // 48 MHz / (4 × 160)
		{"ch340", 9600, 9615, 9600},          // 48 MHz / (32 × 156)
		{"ch340", 1500000, 1500000, 1500000}, // 48 MHz / (8 × 4)
		{"ch340", 2000000, 2000000, 2000000}, // 48 MHz / (8 × 3)
		{"ch340", 3500000, 3000000, 3500000}, // clamped to CH341_MAX_BPS
		// cp2102: AN205 Table 1; the driver writes the table rate back.
		{"cp2102", 921600, 921600, 921600},
		{"cp2102", 115200, 115200, 115200},
		{"cp2102", 74880, 76800, 76800},      // 64112 … 77608 → 76800
		{"cp2102", 117029, 128000, 128000},   // just above the 115200 range
		{"cp2102", 1500000, 921600, 1000000}, // clamped to 1M, which the chip runs at 921600
		// cp2102n: 48 MHz / (2 × round(24 MHz / baud)), reported back.
		{"cp2102n", 921600, 923076, 923076},
		{"cp2102n", 3000000, 3000000, 3000000},
		{"cp2102n", 74880, 74766, 74766},
		{"cp2102n", 4000000, 3000000, 3000000},
		// ftdi: 24 MHz / round(24 MHz / baud) eighths; the request is reported.
		{"ftdi", 921600, 923077, 921600},
		{"ftdi", 115200, 115385, 115200},
		{"ftdi", 3000000, 3000000, 3000000},
		{"ftdi", 2000000, 2000000, 2000000},
		{"ftdi", 2500000, 3000000, 2500000}, // divisor 1.25 cannot be made
		{"ftdi", 4000000, 9600, 9600},       // too high: the driver falls back
		// pl2303: table rates directly, others through the divisor.
		{"pl2303", 921600, 921600, 921600},
		{"pl2303", 1000000, 1000000, 1000000}, // 384 MHz / 384
		{"pl2303", 74880, 75000, 75000},       // (384 MHz / 320) >> 4
		{"pl2303", 8000000, 6000000, 6000000}, // TYPE_HX maximum
		{"none", 74880, 74880, 74880},
	}
	for _, tc := range tests {
		a, err := ParseAdapter(tc.adapter)
		if err != nil {
			t.Fatal(err)
		}
		wire, report := a.Rate(tc.req)
		if wire != tc.wire || report != tc.report {
			t.Errorf("%s.Rate(%d) = %d, %d; want %d, %d", tc.adapter, tc.req, wire, report, tc.wire, tc.report)
		}
	}
}

func TestParseAdapter(t *testing.T) {
	tests := []struct {
		name, want string
		model      bool
	}{
		{"ch340", "ch340", true}, {"CH341", "ch340", true}, {"cp2102", "cp2102", true},
		{"cp2102n", "cp2102n", true}, {"FTDI", "ftdi", true}, {"ft232r", "ftdi", true},
		{"pl2303", "pl2303", true}, {"none", "none", false}, {"", "none", false},
	}
	for _, tc := range tests {
		a, err := ParseAdapter(tc.name)
		if err != nil || a.Name != tc.want || a.IsModel() != tc.model {
			t.Errorf("ParseAdapter(%q) = %q model=%v, %v; want %q model=%v", tc.name, a.Name, a.IsModel(), err, tc.want, tc.model)
		}
	}
	_, err := ParseAdapter("usb-blaster")
	if err == nil || !strings.Contains(err.Error(), "ch340, cp2102, cp2102n, ftdi, none, pl2303") {
		t.Errorf("unknown adapter error %v does not list the known ones", err)
	}
}
