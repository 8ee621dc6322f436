//go:build linux

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The virtual devices of sim: ports as a user meets them, one command at
// a time: they keep their flash between commands, come online with the
// demo firmware they were given, and are busy while a command uses them.

// TestDemoWriteProvisionVerify: the demo image written to each virtual
// chip, the device put on the virtual network over its access point (and
// over Tasmota's serial console on the ESP8266), then verify identifies
// the firmware with the MAC of the flash.
func TestDemoWriteProvisionVerify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		port, expect string
		serial       bool
	}{
		{"sim:bk7231n", "openbeken", false},
		{"sim:bk7231t", "openbeken", false},
		{"sim:esp8266", "tasmota", false},
		{"sim:esp8266#serial", "tasmota", true},
	}
	for _, tc := range tests {
		t.Run(strings.TrimPrefix(tc.port, "sim:"), func(t *testing.T) {
			t.Parallel()
			store := t.TempDir()
			mac := chipMAC(t, store, tc.port)
			w := mustRun(t, store, "write", "--port", tc.port, "--firmware", "demo")
			if !strings.Contains(w.stdout, "Wrote") {
				t.Fatalf("%s", w)
			}
			prov := []string{"provision", "--port", tc.port, "--ssid", "tuyaflash-virtual", "--wifi-password", "virtual-bench"}
			if !tc.serial {
				prov = append(prov, "--ap")
			}
			p := mustRun(t, store, prov...)
			if !strings.Contains(p.stdout, "tuyaflash verify --port "+tc.port) {
				t.Errorf("provision does not say how to check:\n%s", p)
			}
			v := mustRun(t, store, "verify", "--port", tc.port, "--expect", tc.expect, "--json")
			var doc struct {
				Device   struct{ Firmware, Version, MAC, Host string }
				Expected struct{ MAC string }
			}
			if err := json.Unmarshal([]byte(v.stdout), &doc); err != nil {
				t.Fatal(err)
			}
			if doc.Device.Firmware != tc.expect || doc.Device.Version != "demo-1" || doc.Device.MAC != mac || doc.Expected.MAC != mac {
				t.Errorf("verified %+v (expected MAC %s), the flash's MAC is %s", doc.Device, doc.Expected.MAC, mac)
			}
			// The address stays the device's: the inventory keeps it.
			var inv struct {
				VirtualDevices []struct{ MAC, IP string } `json:"virtual_devices"`
			}
			json.Unmarshal([]byte(mustRun(t, store, "inventory", "--json").stdout), &inv)
			if len(inv.VirtualDevices) != 1 || inv.VirtualDevices[0].IP != doc.Device.Host {
				t.Errorf("inventory %+v, verified at %s", inv.VirtualDevices, doc.Device.Host)
			}
		})
	}
}

// TestVirtualDeviceKeepsItsFlash: what one command writes, the next one
// finds, until the device is forgotten (sim --list, sim --forget).
func TestVirtualDeviceKeepsItsFlash(t *testing.T) {
	t.Parallel()
	store := t.TempDir()
	first := readFile(t, backupPath(t, mustRun(t, store, "backup", "--port", "sim:bk7231t#keep")))
	mustRun(t, store, "write", "--port", "sim:bk7231t#keep", "--firmware", "demo")
	second := readFile(t, backupPath(t, mustRun(t, store, "backup", "--port", "sim:bk7231t#keep", "-o", filepath.Join(t.TempDir(), "again.bin"))))
	if string(first[0x11000:0x12000]) == string(second[0x11000:0x12000]) {
		t.Error("the written demo is not in the next command's flash")
	}
	if string(first[:0x11000]) != string(second[:0x11000]) {
		t.Error("the bootloader changed")
	}
	l := mustRun(t, store, "sim", "--list")
	if !strings.Contains(l.stdout, "sim:bk7231t#keep") {
		t.Errorf("--list:\n%s", l)
	}
	f := mustRun(t, store, "sim", "--forget", "bk7231t#keep")
	if !strings.Contains(f.stdout, "forgot sim:bk7231t#keep") {
		t.Errorf("--forget:\n%s", f)
	}
	fresh := readFile(t, backupPath(t, mustRun(t, store, "backup", "--port", "sim:bk7231t#keep", "-o", filepath.Join(t.TempDir(), "fresh.bin"))))
	if string(fresh) != string(first) {
		t.Error("after --forget the device does not start from the fresh image")
	}
}

// TestVirtualDeviceBusy: two commands on one virtual device get the busy
// port's treatment; other instances are other devices.
func TestVirtualDeviceBusy(t *testing.T) {
	t.Parallel()
	store := t.TempDir()
	// A paced backup holds the device for several seconds.
	cmd := exec.Command(bin, "backup", "--port", "sim:bk7231n#busy")
	cmd.Env = pacedEnv(store)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	lock := filepath.Join(store, "virtual", "bk7231n-busy", "lock")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, _ := os.ReadFile(lock); strings.TrimSpace(string(b)) != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the backup never took the device")
		}
		time.Sleep(20 * time.Millisecond)
	}
	expectFail(t, store, 3, []string{"sim:bk7231n#busy", "port busy", "in use by PID"}, "detect", "--port", "sim:bk7231n#busy")
	mustRun(t, store, "detect", "--port", "sim:bk7231n#other")
	expectFail(t, store, 3, []string{"port busy"}, "sim", "--forget", "bk7231n#busy")
}
