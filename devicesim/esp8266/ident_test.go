package espsim

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestIdentify: opcode 0x7E with "tuyaflash-virtual?" answers status 0
// and the JSON in the ROM and in both stubs; any other payload is an
// unknown command there, as on a real chip.
func TestIdentify(t *testing.T) {
	query := []byte("tuyaflash-virtual?")
	long := "127.0.0.4:" + strings.Repeat("9", 60)
	tests := []struct {
		name          string
		cfg           Config
		stub          bool
		chip          string
		net           string
		ap, api, tuya string
	}{
		{"ROM, App.NetAddrs", Config{App: &addrsApp{fakeApp{net: "127.84.1.2:40001"}, "127.84.1.2:40002", "127.84.1.2:40003", "127.84.1.2:40004"}}, false, "ESP8266",
			"127.84.1.2:40001", "127.84.1.2:40002", "127.84.1.2:40003", "127.84.1.2:40004"},
		{"too long for 240 bytes: the extra addresses go first", Config{App: &addrsApp{fakeApp{net: "127.0.0.4:1"}, long, long, long}}, false, "ESP8266",
			"127.0.0.4:1", "", "", ""},
		{"ROM, no network", Config{}, false, "ESP8266", "", "", "", ""},
		{"ROM, Config.NetAddr", Config{Chip: ESP8285, NetAddr: "127.0.0.2:8080"}, false, "ESP8285", "127.0.0.2:8080", "", "", ""},
		{"ROM, App.NetAddr", Config{App: &fakeApp{net: "127.0.0.1:40001"}}, false, "ESP8266", "127.0.0.1:40001", "", "", ""},
		{"tuyaflash stub", Config{NetAddr: "127.0.0.3:80"}, true, "ESP8266", "127.0.0.3:80", "", "", ""},
		{"esptool stub", Config{Stub: StubEsptool}, true, "ESP8266", "", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runSim(t, tt.cfg, simOpts{}, func(h *host) {
				if tt.stub {
					h.uploadStub()
				}
				// The request exactly as contract C2 gives it.
				raw := append([]byte{0xC0, 0x00, 0x7E, 0x12, 0x00, 0, 0, 0, 0}, query...)
				h.write(append(raw, 0xC0))
				r := h.reply(0x7E)
				if r.status != [2]byte{} || r.value != 0 {
					t.Fatalf("status % X value %#x", r.status, r.value)
				}
				if len(r.data) >= 240 {
					t.Errorf("%d-byte JSON", len(r.data))
				}
				var id map[string]any
				if err := json.Unmarshal(r.data, &id); err != nil {
					t.Fatalf("%q: %v", r.data, err)
				}
				str := func(k string) string { s, _ := id[k].(string); return s }
				if id["virtual"] != true || id["sim"] != "espsim" || id["chip"] != tt.chip || str("net") != tt.net ||
					str("ap") != tt.ap || str("api") != tt.api || str("tuya") != tt.tuya {
					t.Errorf("identity %s", r.data)
				}
				want := [2]byte{1, 0x05}
				if tt.stub {
					want = [2]byte{0xC3, 0}
				}
				if r := h.do(0x7E, []byte("tuyaflash-virtual!"), 0); r.status != want {
					t.Errorf("other payload: % X, want % X", r.status, want)
				}
				if r := h.do(0x7E, nil, 0); r.status != want {
					t.Errorf("empty payload: % X, want % X", r.status, want)
				}
			})
		})
	}
}
