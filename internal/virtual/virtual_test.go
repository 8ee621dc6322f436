package virtual

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/devicesim/appsim"
	bksim "github.com/tuyaflash/tuyaflash/devicesim/bk7231"
	"github.com/tuyaflash/tuyaflash/firmware/demo"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/flasher/bk7231"
	"github.com/tuyaflash/tuyaflash/provision"
	"github.com/tuyaflash/tuyaflash/transport"
)

func TestParseSpec(t *testing.T) {
	tests := []struct {
		port               string
		chip, file, name   string
		id, canon, wantErr string
	}{
		{port: "sim:bk7231n", chip: "bk7231n", id: "bk7231n", canon: "sim:bk7231n"},
		{port: "sim:BK7231S", chip: "bk7231t", id: "bk7231t", canon: "sim:bk7231t"}, // the simulator's alias
		{port: "sim:t1#kitchen", chip: "bk7238", name: "kitchen", id: "bk7238-kitchen", canon: "sim:bk7238#kitchen"},
		{port: "sim:esp8266:/tmp/a#b.bin#2", chip: "esp8266", file: "/tmp/a#b.bin", name: "2", id: "esp8266-2", canon: "sim:esp8266#2"},
		{port: "sim:bk7231n:dump.bin", chip: "bk7231n", file: "dump.bin", id: "bk7231n", canon: "sim:bk7231n"},
		{port: "sim:bk7231q", wantErr: "no simulator for chip"},
		{port: "sim:bk7231n#../x", wantErr: "instance name"},
		{port: "sim:bk7231n#", wantErr: "instance name"},
		{port: "/dev/ttyUSB0", wantErr: "not a virtual device"},
	}
	for _, tc := range tests {
		s, err := ParseSpec(tc.port)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: error %v, want %q", tc.port, err, tc.wantErr)
			}
			continue
		}
		if err != nil || s.Chip != tc.chip || s.File != tc.file || s.Name != tc.name || s.ID() != tc.id || s.String() != tc.canon {
			t.Errorf("%s: %+v id %q canon %q, %v", tc.port, s, s.ID(), s.String(), err)
		}
	}
	if s, _ := ParseSpec("sim:esp8285"); !s.ESP() || s.Family != flasher.ESP8285 {
		t.Errorf("esp8285: %+v", s)
	}
}

func openT(t *testing.T, port, dir string) *Device {
	t.Helper()
	spec, err := ParseSpec(port)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Open(spec, Options{DataDir: dir, Unpaced: true})
	if err != nil {
		t.Fatalf("open %s: %v", port, err)
	}
	return d
}

// connect links the Beken client to a virtual device.
func connect(t *testing.T, d *Device) *bk7231.Device {
	t.Helper()
	dev, err := bk7231.Connect(context.Background(), d.Host, bk7231.Options{LinkTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	return dev
}

// TestDevicePersists: what is written stays written across uses, as on a
// real device; identity and addresses stay the same.
func TestDevicePersists(t *testing.T) {
	dir := t.TempDir()
	d := openT(t, "sim:bk7231n", dir)
	if !d.Created {
		t.Error("first use: not created")
	}
	mac, addrs := d.MAC(), d.Addrs()
	data := bytes.Repeat([]byte("persist!"), 512)
	if _, err := connect(t, d).Write(context.Background(), 0x100000, data, nil); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	onDisk, _ := os.ReadFile(filepath.Join(dir, "virtual", "bk7231n", "flash.bin"))
	if !bytes.Equal(onDisk[0x100000:0x101000], data) {
		t.Fatal("flash.bin lacks the write")
	}
	d = openT(t, "sim:bk7231n", dir)
	defer d.Close()
	if d.Created || d.MAC() != mac || d.Addrs() != addrs {
		t.Errorf("second use: created %v, MAC %s (was %s), addresses %+v (were %+v)", d.Created, d.MAC(), mac, d.Addrs(), addrs)
	}
	if got := d.Sim.Flash(); !bytes.Equal(got[0x100000:0x101000], data) {
		t.Error("the write is gone")
	}
	if mac != flasher.MAC(bksim.DefaultMAC) {
		t.Errorf("default instance MAC %s, want the simulator's %s", mac, flasher.MAC(bksim.DefaultMAC))
	}
}

// TestDeviceBusy: a device in use is busy for another Open and for
// Forget, as a real port is.
func TestDeviceBusy(t *testing.T) {
	dir := t.TempDir()
	d := openT(t, "sim:bk7231t#a", dir)
	spec, _ := ParseSpec("sim:bk7231t#a")
	if _, err := Open(spec, Options{DataDir: dir, Unpaced: true}); !errors.Is(err, transport.ErrBusy) {
		t.Errorf("second open: %v, want busy", err)
	}
	if _, err := Forget(spec, dir); !errors.Is(err, transport.ErrBusy) {
		t.Errorf("forget while in use: %v, want busy", err)
	}
	d.Close()
	if deleted, err := Forget(spec, dir); err != nil || !deleted {
		t.Errorf("forget: %v %v", deleted, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "virtual", "bk7231t-a")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state folder still there: %v", err)
	}
	if deleted, err := Forget(spec, dir); err != nil || deleted {
		t.Errorf("forget of nothing: %v %v", deleted, err)
	}
}

// TestInstances: named instances are distinct devices: MACs derived from
// their names, addresses of their own.
func TestInstances(t *testing.T) {
	dir := t.TempDir()
	seenMAC, seenAddr := map[flasher.MAC]string{}, map[string]string{}
	for _, port := range []string{"sim:bk7231n", "sim:bk7231n#1", "sim:bk7231n#2", "sim:esp8266#1", "sim:esp8266#2"} {
		d := openT(t, port, dir)
		m, a := d.MAC(), d.Addrs().Station
		d.Close()
		if other, dup := seenMAC[m]; dup {
			t.Errorf("%s and %s share MAC %s", port, other, m)
		}
		if other, dup := seenAddr[a]; dup {
			t.Errorf("%s and %s share the address %s", port, other, a)
		}
		seenMAC[m], seenAddr[a] = port, port
	}
	l, _ := List(dir)
	if len(l) != 5 {
		t.Errorf("List: %+v", l)
	}
}

// TestFlashFile: a device made from a file copies it (the file is never
// written); another file for the same device is refused with the way
// out; a forgotten device starts from the new file.
func TestFlashFile(t *testing.T) {
	dir := t.TempDir()
	img, err := bksim.DefaultFlashSize(bksim.BK7231N, [6]byte{2, 0, 0, 0, 0, 9}, 2<<20)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dump.bin")
	os.WriteFile(file, img, 0o600)
	d := openT(t, "sim:bk7231n:"+file, dir)
	if d.MAC() != (flasher.MAC{2, 0, 0, 0, 0, 9}) {
		t.Errorf("MAC %s: not the file's", d.MAC())
	}
	if _, err := connect(t, d).Write(context.Background(), 0x100000, make([]byte, 4096), nil); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if now, _ := os.ReadFile(file); !bytes.Equal(now, img) {
		t.Fatal("the user's file was changed")
	}
	other := filepath.Join(t.TempDir(), "other.bin")
	img2 := append([]byte(nil), img...)
	img2[0x1F0000] ^= 1
	os.WriteFile(other, img2, 0o600)
	spec, _ := ParseSpec("sim:bk7231n:" + other)
	_, err = Open(spec, Options{DataDir: dir, Unpaced: true})
	if !errors.Is(err, flasher.ErrRefused) || !strings.Contains(flasher.Hint(err), "tuyaflash sim --forget bk7231n") {
		t.Fatalf("another file: %v (hint %q)", err, flasher.Hint(err))
	}
	same := openT(t, "sim:bk7231n:"+file, dir) // the same file again: the device as it is
	if got := same.Sim.Flash(); !bytes.Equal(got[0x100000:0x101000], make([]byte, 4096)) {
		t.Error("reopened with its file: the write is gone")
	}
	same.Close()
	Forget(spec, dir)
	d = openT(t, "sim:bk7231n:"+other, dir)
	defer d.Close()
	if !d.Created || !bytes.Equal(d.Sim.Flash(), img2) {
		t.Error("after forget: not made from the new file")
	}
}

// TestSettingsSavedAtOnce: what the firmware stores (Wi-Fi settings) is
// on disk when the firmware has answered, not only at Close: a killed
// process keeps it.
func TestSettingsSavedAtOnce(t *testing.T) {
	dir := t.TempDir()
	d := openT(t, "sim:bk7231n#net", dir)
	defer d.Close()
	app, _ := demo.OpenBeken("BK7231N")
	dev := connect(t, d)
	if _, err := dev.Write(context.Background(), 0x11000, app, nil); err != nil {
		t.Fatal(err)
	}
	d.Sim.BootApp()
	fw := d.Sim.Firmware()
	deadline := time.Now().Add(10 * time.Second)
	for fw.Status().AccessPoint == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no access point: %+v", fw.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	before, _ := os.ReadFile(filepath.Join(d.Dir, "flash.bin"))
	_, err := provision.ProvisionAP(context.Background(), "openbeken", provision.WiFi{SSID: appsim.DefaultSSID, Password: appsim.DefaultPassword},
		provision.APOptions{Host: d.Addrs().AP, Dial: Dial})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(filepath.Join(d.Dir, "flash.bin"))
	if bytes.Equal(before, after) || !bytes.Equal(after, d.Sim.Flash()) {
		t.Error("the settings are not on disk once the firmware answered")
	}
}

// TestRedirect: a virtual device's well-known ports on its station host
// lead to where it serves them; other addresses are left alone.
func TestRedirect(t *testing.T) {
	d := openT(t, "sim:esp8266#r", t.TempDir())
	defer d.Close()
	a := d.Addrs()
	host := strings.Split(a.Station, ":")[0]
	for in, want := range map[string]string{host + ":6053": a.API, host + ":6668": a.Tuya, host + ":80": a.Station, "10.0.0.1:6053": "10.0.0.1:6053"} {
		if got := Redirect(in); got != want {
			t.Errorf("Redirect(%s) = %s, want %s", in, got, want)
		}
	}
	unlearn := Learn(&flasher.Virtual{Sim: "bksim", Net: "127.0.0.9:4000", API: "127.0.0.9:4001"})
	if got := Redirect("127.0.0.9:6053"); got != "127.0.0.9:4001" {
		t.Errorf("learnt redirect: %s", got)
	}
	unlearn()
	if got := Redirect("127.0.0.9:6053"); got != "127.0.0.9:6053" {
		t.Errorf("after unlearn: %s", got)
	}
}
