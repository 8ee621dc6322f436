package inventory

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/tuyaconfig"
)

// FuzzInventory feeds inventory files to Open and to what the CLI and the
// exports do with each record. Besides never panicking: a file Open
// refuses wraps ErrDamaged or ErrNewerFormat; in one it accepts every
// device has a key, Redacted hides the local key, and a change saved
// keeps every other record exactly as it was read.
func FuzzInventory(f *testing.F) {
	f.Add([]byte(`{"format":"tuyaflash-inventory/1","devices":[{"key":"c8478c1a2b3c/eb6015","mac":"C8:47:8C:1A:2B:3C","family":"BK7231N",` +
		`"first_seen":"2026-05-01T10:00:00Z","last_seen":"2026-05-01T10:00:00Z","tuya":{"device_id":"bf0123456789abcdef01","local_key":"0123456789abcdef",` +
		`"pin_map":"{rl1_pin:6}","date":"2026-05-01T10:00:00Z"},"writes":[{"date":"2026-05-01T10:05:00Z","firmware":"openbeken","addr":69632,"size":1,"verified":true}],` +
		`"firmware":"openbeken","last_verify":{"date":"2026-05-01T10:09:00Z","host":"h","firmware":"openbeken","ok":true}}]}`))
	f.Add([]byte(`{"format":"tuyaflash-inventory/1","devices":[{"key":"placeholder/noid/0123456789ab","mac":"ab","mac_placeholder":"","family":"ESP8266","first_seen":"0001-01-01T00:00:00Z","last_seen":"0001-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"format":"tuyaflash-inventory/2","devices":[]}`))
	f.Add([]byte(`{"format":"tuyaflash-inventory/1","devices":[null]}`))
	f.Add([]byte(`{"format":"tuyaflash-inventory/1","devices":[{"key":"a"},{"key":"a"}]}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "inventory.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		inv, err := Open(path)
		if err != nil {
			if !errors.Is(err, ErrDamaged) && !errors.Is(err, ErrNewerFormat) {
				t.Fatalf("unclear error %v", err)
			}
			return
		}
		devs := inv.Devices()
		for _, d := range devs {
			if d.Key == "" {
				t.Fatal("a device without a key")
			}
			if !strings.HasPrefix(d.Name(), "tuya-") {
				t.Fatalf("name %q", d.Name())
			}
			d.CurrentFirmware()
			d.Migrated()
			if r := d.Redacted(); d.Tuya != nil && d.Tuya.LocalKey != "" && r.Tuya.LocalKey != Hidden {
				t.Fatal("Redacted shows the local key")
			}
			inv.Find(d.Key)
			inv.Find(d.MAC)
		}
		if len(devs) == 0 {
			return
		}
		// Change the first record; every other one must come back as read.
		inv.now = func() time.Time { return time.Date(2026, 5, 2, 0, 0, 0, 0, time.UTC) }
		if _, err := inv.RecordTuyaConfig(devs[0].Key, &tuyaconfig.Config{Module: "FUZZ1"}); err != nil {
			t.Fatal(err)
		}
		if err := inv.Save(); err != nil {
			t.Fatalf("save: %v", err)
		}
		again, err := Open(path)
		if err != nil {
			t.Fatalf("the saved inventory does not open: %v", err)
		}
		after := again.Devices()
		if len(after) != len(devs) {
			t.Fatalf("%d devices after saving, %d before", len(after), len(devs))
		}
		for i := range devs {
			if i == 0 {
				if after[0].Tuya == nil || after[0].Tuya.Module != "FUZZ1" {
					t.Fatal("the recorded change was not saved")
				}
				continue
			}
			if !sameJSON(devs[i], after[i]) {
				t.Fatalf("device %d changed by saving another one", i)
			}
		}
	})
}

// sameJSON compares two records as they are stored.
func sameJSON(a, b Device) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	var va, vb any
	json.Unmarshal(ja, &va)
	json.Unmarshal(jb, &vb)
	return reflect.DeepEqual(va, vb)
}

// TestNameOfShortMAC: a record whose MAC is too short (a hand-edited
// file) is named from its key; it used to panic (found by FuzzInventory's
// seeds).
func TestNameOfShortMAC(t *testing.T) {
	d := Device{Key: "placeholder/noid/0123456789ab", MAC: "ab"}
	if got := d.Name(); got != "tuya-0123456789ab" {
		t.Errorf("name %q", got)
	}
}
