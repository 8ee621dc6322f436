package tuyaconfig

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"github.com/tuyaflash/tuyaflash/internal/testshared"
	"os"
	"path/filepath"
	"testing"
)

// sharedDir returns ../shared/<sub> or skips the test when it is absent.
func sharedDir(t *testing.T, sub string) string { return testshared.Dir(t, sub) }

// hash16 is the first 16 hex digits of SHA-256, used so that no real key
// is written into this file or printed by a failing test.
func hash16(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])[:16]
}

type wantPin struct {
	key   string
	role  Role
	pin   int
	ch    int
	level Level
}

// realDump is what an independent reading gave for one real dump:
// written down from a separate decoder written from bk7231-protocol.md
// §12.1 (not this package), cross-checked against §12.6 of the reference
// and, where OpenBeken's device list has the same product
// (OpenBekenIOT/webapp devices.json: "Genio Smart Plug with USB A and C"
// I03632, "Wall Switch 2 Gang 8046 SmartLED"), against its pin list.
type realDump struct {
	file       string
	keyOff     int
	protected  int // offset of the BK7231N protected block, 0 if none
	platform   string
	chip       string
	module     string
	idLen      int    // 0 = not activated
	idHash     string // hash16 of gw_di.id
	localHash  string // hash16 of gw_ai.lckey, "" when absent/null
	ssid       string
	productKey string
	firmware   string
	nKeys      int
	driver     string
	pins       []wantPin
}

var realDumps = []realDump{
	{
		file: "BK7231T_TuyaConfig_PC44HA.bin", keyOff: 0, platform: "BK7231S_2M", chip: "BK7231T", module: "WB2S",
		idLen: 20, idHash: "971d4df48d1dca99", localHash: "81291d836d977a02", ssid: "cloudcutterflash",
		productKey: "keym9qkuywghyrvs", firmware: "1.3.5", nKeys: 11,
		pins: []wantPin{
			{"sel_pin_pin", RoleEnergySEL, 24, 0, ActiveLow},
			{"bt1_pin", RoleButton, 10, 1, ActiveLow},
			{"led1_pin", RoleLED, 11, 1, ActiveLow},
			{"vi_pin", RoleEnergyCF1, 8, 0, LevelUnset},
			{"netled1_pin", RoleStatusLED, 6, 0, ActiveLow},
			{"ele_pin", RoleEnergyCF, 7, 0, LevelUnset},
			{"rl1_pin", RoleRelay, 26, 1, ActiveHigh},
		},
	},
	{
		file: "Feit_SYW-BR30-RGBW-CA-AG_Bulb.bin", keyOff: 0x1EE000, platform: "BK7231S_2M", chip: "BK7231T", module: "WB2L",
		idLen: 22, idHash: "97a405b90b303e26", localHash: "88af3f946ca8f819", ssid: "BeastMode_NoInt",
		productKey: "keytg5kq8gvkv9dh", firmware: "2.9.15", nKeys: 10, driver: "PWM",
		pins: []wantPin{
			{"g_pin", RolePWM, 26, 1, ActiveHigh},
			{"c_pin", RolePWM, 7, 3, ActiveHigh},
			{"b_pin", RolePWM, 24, 2, ActiveHigh},
			{"w_pin", RolePWM, 8, 4, ActiveHigh},
			{"r_pin", RolePWM, 6, 0, ActiveHigh},
		},
	},
	{
		file: "Kanlux_33643_S_GU10_RGBCCT_Bulb.bin", keyOff: 0x1EE000, protected: 0x1ED000, chip: "BK7231N", module: "CBLC5",
		productKey: "key8u54q9dtru5jw", firmware: "1.3.21", nKeys: 6, driver: "SM2235",
		pins: []wantPin{
			{"iicscl", RoleLEDDriverClock, 26, 0, LevelUnset},
			{"iicsda", RoleLEDDriverData, 24, 0, LevelUnset},
		},
	},
	{
		file: "MOES_WK-US2-TC_In-Wall_Outlet.bin", keyOff: 0x1EE000, protected: 0x1ED000, platform: "bk7231n", chip: "BK7231N", module: "CB2S",
		idLen: 22, idHash: "c7b562bfc7a34e9c", localHash: "0f286765c04eaf08",
		productKey: "keyjup78v54myhan", firmware: "1.1.8", nKeys: 11,
		pins: []wantPin{
			{"bt1_pin", RoleButton, 11, 1, ActiveLow},
			{"rl3_pin", RoleRelay, 6, 3, ActiveHigh},
			{"rl4_pin", RoleRelay, 7, 4, ActiveHigh},
			{"netled1_pin", RoleStatusLED, 10, 0, ActiveLow},
			{"rl2_pin", RoleRelay, 8, 2, ActiveHigh},
			{"bt2_pin", RoleButton, 24, 2, ActiveLow},
			{"rl1_pin", RoleRelay, 26, 1, ActiveHigh},
		},
	},
	{
		file: "Mirabella_Genio_I003632_Plug.bin", keyOff: 0x1EE000, chip: "BK7231N", module: "CB2S",
		productKey: "keyjup78v54myhan", firmware: "1.1.7", nKeys: 5,
		pins: []wantPin{
			{"netled1_pin", RoleStatusLED, 26, 0, ActiveHigh},
			{"led1_pin", RoleLED, 8, 1, ActiveHigh},
			{"total_bt_pin", RoleButtonAll, 7, 0, ActiveLow},
			{"rl1_pin", RoleRelay, 6, 1, ActiveHigh},
		},
	},
	{
		file: "SmartLED_8046_2_Gang_Smart_Switch.bin", keyOff: 0x1EE000, chip: "BK7231N", module: "CBU", nKeys: 3,
		pins: []wantPin{
			{"bt1_pin", RoleButton, 20, 1, ActiveHigh},
			{"netled_pin", RoleStatusLED, 22, 0, ActiveLow},
			{"rl2_pin", RoleRelay, 9, 2, ActiveHigh},
			{"bt2_pin", RoleButton, 16, 2, ActiveHigh},
			{"rl1_pin", RoleRelay, 28, 1, ActiveHigh},
		},
	},
	{
		file: "Tuya_Generic_AP-SMT-Breaker02-1CH_Smart_Relay.bin", keyOff: 0x1EE000, protected: 0x1ED000, chip: "BK7231N", module: "CBU",
		productKey: "keyjnuy4s3kre7m7", firmware: "1.2.1", nKeys: 6,
		pins: []wantPin{
			{"total_bt_pin", RoleButtonAll, 8, 0, ActiveLow},
			{"netled1_pin", RoleStatusLED, 24, 0, ActiveLow},
			{"onoff1", RoleSwitchInput, 26, 1, LevelUnset},
			{"rl1_pin", RoleRelay, 6, 1, ActiveHigh},
		},
	},
	{
		file: "Tuya_Generic_DS-101JL_4_Gang_Smart_Switch.bin", keyOff: 0x1EE000, chip: "BK7231T", module: "WB3S",
		productKey: "key7axydcvmea3x9", firmware: "1.1.5", nKeys: 6,
		pins: []wantPin{
			{"bt1_pin", RoleButton, 24, 1, ActiveLow},
			{"netled_pin", RoleStatusLED, 1, 0, ActiveLow},
			{"rl2_pin", RoleRelay, 9, 2, ActiveHigh},
			{"rl1_pin", RoleRelay, 6, 1, ActiveHigh},
			{"rl3_pin", RoleRelay, 7, 3, ActiveHigh},
			{"rl4_pin", RoleRelay, 26, 4, ActiveHigh},
			{"bt4_pin", RoleButton, 14, 4, ActiveLow},
			{"bt3_pin", RoleButton, 8, 3, ActiveLow},
			{"bt2_pin", RoleButton, 10, 2, ActiveLow},
		},
	},
}

func TestRealDumps(t *testing.T) {
	dir := sharedDir(t, "testdata/bk7231")
	for _, w := range realDumps {
		t.Run(w.file, func(t *testing.T) {
			dump, err := os.ReadFile(filepath.Join(dir, w.file))
			if err != nil {
				t.Skipf("skipping: %v", err)
			}
			cfg, err := Parse(dump)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if cfg.KeyBlockOffset != w.keyOff {
				t.Errorf("key block at 0x%X, want 0x%X", cfg.KeyBlockOffset, w.keyOff)
			}
			str := []struct{ what, got, want string }{
				{"platform", cfg.Platform, w.platform}, {"chip", cfg.Chip, w.chip}, {"module", cfg.Module, w.module},
				{"product key", cfg.ProductKey, w.productKey}, {"firmware", cfg.FirmwareVersion, w.firmware},
				{"ssid", cfg.WiFiSSID, w.ssid},
			}
			for _, c := range str {
				if c.got != c.want {
					t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
				}
			}
			if w.idLen == 0 {
				if cfg.Activated || cfg.DeviceID != "" {
					t.Errorf("device reported activated (id of %d chars), want not activated", len(cfg.DeviceID))
				}
			} else if !cfg.Activated || len(cfg.DeviceID) != w.idLen || hash16(cfg.DeviceID) != w.idHash {
				t.Errorf("device id: %d chars, hash %s; want %d chars, hash %s", len(cfg.DeviceID), hash16(cfg.DeviceID), w.idLen, w.idHash)
			}
			if w.localHash == "" && cfg.LocalKey != "" {
				t.Errorf("local key of %d chars found, want none", len(cfg.LocalKey))
			}
			if w.localHash != "" && (len(cfg.LocalKey) != 16 || hash16(cfg.LocalKey) != w.localHash) {
				t.Errorf("local key: %d chars, hash %s; want 16 chars, hash %s", len(cfg.LocalKey), hash16(cfg.LocalKey), w.localHash)
			}
			if len(cfg.Keys) != w.nKeys {
				t.Errorf("%d keys, want %d", len(cfg.Keys), w.nKeys)
			}
			var data, inUse, prot int
			for _, b := range cfg.Blocks {
				switch {
				case b.Kind == KindData && b.OK:
					data++
					if b.InUse {
						inUse++
					}
				case b.Kind == KindProtected && b.Offset == w.protected:
					prot++
				case b.Kind != KindKey:
					t.Errorf("unexpected block %+v", b)
				}
			}
			if data != 17 || inUse != 14 {
				t.Errorf("%d data blocks (%d in use), want 17 (14 in use: ids 0..13)", data, inUse)
			}
			if (w.protected != 0) != (prot == 1) {
				t.Errorf("protected block found %d times, want it at 0x%X", prot, w.protected)
			}
			u := cfg.UserParams
			if u == nil {
				t.Fatal("no user_param_key")
			}
			if d := u.LightDriver(); d != w.driver {
				t.Errorf("light driver %q, want %q", d, w.driver)
			}
			got := u.Functions()
			if len(got) != len(w.pins) {
				t.Errorf("%d pins %v, want %d", len(got), got, len(w.pins))
			}
			for i, p := range w.pins {
				if i >= len(got) {
					break
				}
				g := got[i]
				if g.Key != p.key || g.Role != p.role || g.Pin != p.pin || g.Channel != p.ch || g.Level != p.level {
					t.Errorf("pin %d = %+v, want %+v", i, g, p)
				}
			}
			// The summary never shows the real secrets unless asked.
			s := cfg.Summary(false)
			for _, secret := range []string{cfg.LocalKey, cfg.SecKey, cfg.WiFiPassword, cfg.AuthKey, cfg.PSKKey} {
				if len(secret) > 4 && contains(s, secret) {
					t.Errorf("summary leaks a secret of %d chars", len(secret))
				}
			}
		})
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestRealDumpDamaged flips one byte of the newest copy of block 0 in a
// real dump: Parse must name that sector and still read the device from
// the older swap copy (block 0 has generations 17, 16 and 15 in this dump
// at 0x1EF000, 0x1FD000 and 0x1FF000).
func TestRealDumpDamaged(t *testing.T) {
	dir := sharedDir(t, "testdata/bk7231")
	dump, err := os.ReadFile(filepath.Join(dir, "MOES_WK-US2-TC_In-Wall_Outlet.bin"))
	if err != nil {
		t.Skipf("skipping: %v", err)
	}
	dump[0x1EF000+1234] ^= 0x80
	cfg, err := Parse(dump)
	var dmg *DamageError
	if !errors.As(err, &dmg) || len(dmg.Blocks) != 1 || dmg.Blocks[0].Offset != 0x1EF000 {
		t.Fatalf("err = %v, want a DamageError naming 0x1EF000 only", err)
	}
	if cfg == nil || len(cfg.DeviceID) != 22 || cfg.Module != "CB2S" {
		t.Fatalf("partial config lost the device: %+v", cfg)
	}
	for _, b := range cfg.Blocks {
		if b.Kind == KindData && b.ID == 0 && b.InUse && b.Offset != 0x1FD000 {
			t.Errorf("block 0 read from 0x%X, want the generation-16 copy at 0x1FD000", b.Offset)
		}
	}
}
