package espsim

import (
	"bytes"
	"crypto/aes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"strings"
	"sync"
	"testing"
	"time"

	fwdetect "github.com/tuyaflash/tuyaflash/firmware"
)

// parseV2Image checks a V2 (SDK OTA) image as reference §11.2 describes
// it, independently of the simulator's builder, and returns the IROM
// segment's data and the number of RAM segments.
func parseV2Image(t *testing.T, b []byte) (irom []byte, segs int) {
	t.Helper()
	if b[0] != 0xEA || b[1] != 4 {
		t.Fatalf("V2 header % X", b[:8])
	}
	n := int(binary.LittleEndian.Uint32(b[12:]))
	irom = b[16 : 16+n]
	p := 16 + n
	if b[p] != 0xE9 || !bytes.Equal(b[p+2:p+8], b[2:8]) {
		t.Fatalf("second header % X does not repeat % X", b[p:p+8], b[:8])
	}
	segs = int(b[p+1])
	p += 8
	sum := byte(0xEF)
	for range segs {
		addr := binary.LittleEndian.Uint32(b[p:])
		size := int(binary.LittleEndian.Uint32(b[p+4:]))
		if addr < 0x3FFE8000 || addr >= 0x40110000 {
			t.Errorf("RAM segment at 0x%08X", addr)
		}
		for _, v := range b[p+8 : p+8+size] {
			sum ^= v
		}
		p += 8 + size
	}
	for p%16 != 15 {
		p++
	}
	if b[p] != sum {
		t.Fatalf("V2 checksum %#x, computed %#x", b[p], sum)
	}
	crc := crc32.ChecksumIEEE(b[:p+1])
	if crc&0x80000000 != 0 {
		crc ^= 0xFFFFFFFF
	} else {
		crc++
	}
	if got := binary.LittleEndian.Uint32(b[p+1:]); got != crc {
		t.Fatalf("V2 CRC %#x, computed %#x", got, crc)
	}
	return irom, segs
}

// decryptPSM decrypts a sector with the key of reference more-chips §4,
// built here from the literal: "Qby6" + x + "TH9bj8GiexU".
func decryptPSM(t *testing.T, sec []byte, x byte) []byte {
	t.Helper()
	key := append(append([]byte("Qby6"), x), "TH9bj8GiexU"...)
	blk, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, len(sec))
	for i := 0; i < len(sec); i += 16 {
		blk.Decrypt(out[i:i+16], sec[i:i+16])
	}
	return out
}

// psmTable parses "PSM1" NUL key=value NUL … as more-chips §4 describes.
func psmTable(t *testing.T, sec []byte) map[string]string {
	t.Helper()
	if !bytes.HasPrefix(sec, []byte("PSM1")) {
		t.Fatalf("no PSM1 header: % X", sec[:8])
	}
	kv := map[string]string{}
	for _, f := range bytes.FieldsFunc(sec[4:], func(r rune) bool { return r == 0 || r == 0xFF || r == 0xFFFD }) {
		k, v, ok := strings.Cut(string(f), "=")
		if ok {
			kv[k] = v
		}
	}
	return kv
}

func TestStockFlashLayout(t *testing.T) {
	tests := []struct {
		chip Chip
		size int
		mode byte
	}{
		{ESP8266, 0, 2}, {ESP8266, 2 * mib, 2}, {ESP8266, 4 * mib, 2}, {ESP8285, 0, 3}, {ESP8266, 512 * kib, 2},
	}
	for _, tt := range tests {
		size := tt.size
		if size == 0 {
			size = mib
		}
		t.Run(fmt.Sprintf("%v/%dK", tt.chip, size/kib), func(t *testing.T) {
			f := DefaultFlash(tt.chip, tt.size)
			if len(f) != size {
				t.Fatalf("size %d", len(f))
			}
			if entry, n := parseImage(t, f); n != 1 || entry != 0x4010F000 {
				t.Errorf("bootloader: %d segments, entry %#x", n, entry)
			}
			if f[2] != tt.mode || f[3]>>4 != imageSizeNibble(size) || f[3]&0xF != 0 {
				t.Errorf("header mode/size-freq % X", f[2:4])
			}
			if err := romBootCheck(f); err != nil {
				t.Errorf("the ROM would not boot it: %v", err)
			}
			irom, segs := parseV2Image(t, f[0x1000:])
			if segs != 3 {
				t.Errorf("user1 has %d RAM segments", segs)
			}
			// The marker, 64 bytes into the IROM segment (file 0x1050).
			m := f[0x1050:]
			if !bytes.HasPrefix(m, []byte(StockTuyaMarker)) || !bytes.Equal(irom[0x40:0x50], f[0x1050:0x1060]) {
				t.Fatalf("no marker at 0x1050: %q", m[:32])
			}
			js := m[len(StockTuyaMarker):bytes.IndexByte(m, 0)]
			var info struct{ Firmware, Chip string }
			if err := json.Unmarshal(js, &info); err != nil || info.Firmware != "tuya-stock" || info.Chip != strings.ToUpper(tt.chip.String()) {
				t.Errorf("marker JSON %s: %v", js, err)
			}
			// RF calibration, init data, system parameters at the end.
			if bytes.Equal(f[size-0x5000:size-0x4F80], filled(0x80, 0xFF)) {
				t.Error("no RF calibration data")
			}
			if f[size-0x4000] != 0x05 {
				t.Errorf("esp_init_data byte 0 is %#x, the SDK needs 5", f[size-0x4000])
			}
			// A PSM at 0x7B000 from 1 MiB up (on 512 KiB that is the RF
			// calibration sector).
			psm := bytes.HasPrefix(decryptPSM(t, f[PSMOffset:PSMOffset+16], DefaultPSMKeyByte), []byte("PSM1"))
			if psm != (size >= mib) {
				t.Errorf("PSM at 0x%X: %v", PSMOffset, psm)
			}
			if !bytes.Equal(f, DefaultFlash(tt.chip, tt.size)) {
				t.Error("not deterministic")
			}
		})
	}
	if bytes.Equal(DefaultFlash(ESP8266, mib), DefaultFlash(ESP8285, mib)) {
		t.Error("chips share the same synthetic flash")
	}
}

// TestStockPSM: the PSM decrypts with the documented key for the default
// X only, holds the device's synthetic identity, differs per MAC, and can
// be stored plain.
func TestStockPSM(t *testing.T) {
	mac := [6]byte{0x18, 0xFE, 0x34, 1, 2, 3}
	s := Stock{Chip: ESP8266, MAC: mac}
	f, err := StockFlash(s)
	if err != nil {
		t.Fatal(err)
	}
	sec := f[PSMOffset : PSMOffset+0x1000]
	if bytes.Contains(sec, []byte("PSM1")) || bytes.Contains(sec, []byte("local_key")) {
		t.Fatal("PSM stored in the clear")
	}
	var found []int
	for x := range 256 {
		if bytes.HasPrefix(decryptPSM(t, sec[:16], byte(x)), []byte("PSM1")) {
			found = append(found, x)
		}
	}
	if len(found) != 1 || found[0] != DefaultPSMKeyByte {
		t.Fatalf("key bytes that decrypt to PSM1: %v, want [%d]", found, DefaultPSMKeyByte)
	}
	kv := psmTable(t, decryptPSM(t, sec, DefaultPSMKeyByte))
	dev := s.Device()
	want := map[string]string{"device_id": dev.DevID, "local_key": dev.LocalKey, "ssid": VirtualSSID, "passwd": VirtualPassword, "ty_ws_prod_key": dev.ProductKey}
	for k, v := range want {
		if kv[k] != v {
			t.Errorf("%s = %q, want %q", k, kv[k], v)
		}
	}
	if !strings.Contains(kv["gw_di"], `"local_key":"`+dev.LocalKey+`"`) || !strings.Contains(kv["gw_bi"], dev.UUID) {
		t.Errorf("gw_di %s, gw_bi %s", kv["gw_di"], kv["gw_bi"])
	}
	if len(dev.LocalKey) != 16 || len(dev.DevID) != 20 || !strings.HasPrefix(dev.DevID, "tfsim") || !strings.HasPrefix(dev.LocalKey, "sim") {
		t.Errorf("identity %+v does not look like a clearly synthetic Tuya one", dev)
	}
	// Another MAC: another identity and RF sector, same code.
	s2 := Stock{Chip: ESP8266, MAC: [6]byte{0x18, 0xFE, 0x34, 1, 2, 4}}
	f2, _ := StockFlash(s2)
	if s2.Device().LocalKey == dev.LocalKey || bytes.Equal(f2[PSMOffset:PSMOffset+0x1000], sec) || bytes.Equal(f2[mib-0x5000:mib-0x4000], f[mib-0x5000:mib-0x4000]) {
		t.Error("the identity does not depend on the MAC")
	}
	if !bytes.Equal(f2[:PSMOffset], f[:PSMOffset]) {
		t.Error("the code depends on the MAC")
	}
	// Options: plain PSM, another key byte, other credentials.
	plain, _ := StockFlash(Stock{Chip: ESP8266, MAC: mac, PlainPSM: true, SSID: "home", Password: "pw"})
	if kv := psmTable(t, plain[PSMOffset:PSMOffset+0x1000]); kv["ssid"] != "home" || kv["passwd"] != "pw" {
		t.Errorf("plain PSM %v", kv)
	}
	other, _ := StockFlash(Stock{Chip: ESP8266, MAC: mac, PSMKeyByte: 0x33})
	if kv := psmTable(t, decryptPSM(t, other[PSMOffset:PSMOffset+0x1000], 0x33)); kv["local_key"] != dev.LocalKey {
		t.Errorf("PSM with key byte 0x33: %v", kv)
	}
	// New without Flash uses the stock flash of its MAC.
	d, err := New(Config{MAC: mac})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d.Flash(), f) {
		t.Error("New's default flash is not StockFlash of its MAC")
	}
}

// TestStockDetectedAsESPDump: tuyaflash's image detection sees a whole
// ESP8266 flash with a valid image at 0x0.
func TestStockDetectedAsESPDump(t *testing.T) {
	for _, chip := range []Chip{ESP8266, ESP8285} {
		for _, size := range []int{mib, 2 * mib, 4 * mib} {
			d, err := fwdetect.Detect(DefaultFlash(chip, size), "stock.bin")
			if err != nil {
				t.Fatalf("%v %d: %v", chip, size, err)
			}
			if d.Format != fwdetect.FormatESPDump || d.Arch != fwdetect.ArchESP8266 {
				t.Errorf("%v %d: %s / %s, notes %q", chip, size, d.Format, d.Arch, d.Notes)
			}
		}
	}
}

// fakeApp records what the simulator does with the firmware; its console
// answers "Status 0" lines.
type fakeApp struct {
	mu           sync.Mutex
	boots, halts int
	flash        Flash
	mac          [6]byte
	serial, out  []byte
	net          string
}

func (a *fakeApp) Boot(f Flash) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.boots++
	a.flash = f
	a.out = []byte("fake firmware booted\r\n")
}

func (a *fakeApp) Halt() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.halts++
}

func (a *fakeApp) SetMAC(m [6]byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.mac = m
}

func (a *fakeApp) NetAddr() string { return a.net }

// addrsApp is a fakeApp with the other addresses of NetAddrs.
type addrsApp struct {
	fakeApp
	ap, api, tuya string
}

func (a *addrsApp) APAddr() string   { return a.ap }
func (a *addrsApp) APIAddr() string  { return a.api }
func (a *addrsApp) TuyaAddr() string { return a.tuya }

func (a *fakeApp) Serial(b []byte) []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.serial = append(a.serial, b...)
	out := a.out // output of its own, collected by the next call
	a.out = nil
	if bytes.Contains(a.serial, []byte("Status 0\n")) {
		a.serial = nil
		out = append(out, "{\"Status\":{\"Module\":0}}\r\n"...)
	}
	return out
}

// counts returns boots and halts so far.
func (a *fakeApp) counts() (boots, halts int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.boots, a.halts
}

// TestStockBoots: with GPIO0 released the stock image passes the ROM's
// checks and the firmware starts; an erased or damaged image does not.
func TestStockBoots(t *testing.T) {
	damaged := DefaultFlash(ESP8266, 0)
	damaged[100] ^= 1
	for _, tt := range []struct {
		name  string
		flash []byte
		boots int
	}{
		{"stock", nil, 1},
		{"erased", filled(mib, 0xFF), 0},
		{"checksum broken", damaged, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			app := &fakeApp{}
			runSim(t, Config{Flash: tt.flash, App: app}, simOpts{}, func(h *host) {
				h.d.PowerCycle(false)
				time.Sleep(100 * time.Millisecond)
				if boots, _ := app.counts(); boots != tt.boots || h.d.Stats().AppBoots != tt.boots {
					t.Errorf("%d boots, want %d", boots, tt.boots)
				}
			})
		})
	}
}
