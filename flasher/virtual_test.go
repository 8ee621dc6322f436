package flasher

import "testing"

func TestParseVirtual(t *testing.T) {
	tests := []struct {
		name string
		data string
		want *Virtual
	}{
		{"bksim", `{"virtual":true,"sim":"bksim","chip":"BK7231N","net":"127.84.1.2:4001","ap":"127.84.1.2:4002"}`,
			&Virtual{Sim: "bksim", Chip: "BK7231N", Net: "127.84.1.2:4001", AP: "127.84.1.2:4002"}},
		{"espsim, status bytes after it", "{\"virtual\":true,\"sim\":\"espsim\",\"chip\":\"ESP8266\"}\x00\x00", &Virtual{Sim: "espsim", Chip: "ESP8266"}},
		{"unknown-command status of a real loader", "\x07", nil},
		{"ROM error status", "\x01\x05", nil},
		{"not virtual", `{"virtual":false,"sim":"bksim"}`, nil},
		{"no simulator named", `{"virtual":true}`, nil},
		{"broken JSON", `{"virtual":true,"sim":"bksim"`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParseVirtual([]byte(tc.data))
			if ok != (tc.want != nil) || ok && *got != *tc.want {
				t.Errorf("ParseVirtual(%q) = %+v, %v; want %+v", tc.data, got, ok, tc.want)
			}
		})
	}
	v := &Virtual{Net: "a:1"}
	if v.APAddr() != "a:1" || v.Station() != "a:1" {
		t.Errorf("AP address of a simulator that serves both at net: %q", v.APAddr())
	}
}
