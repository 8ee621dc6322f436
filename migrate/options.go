package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tuyaflash/tuyaflash/backup"
	"github.com/tuyaflash/tuyaflash/export"
	"github.com/tuyaflash/tuyaflash/firmware"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/internal/safefile"
	"github.com/tuyaflash/tuyaflash/inventory"
	"github.com/tuyaflash/tuyaflash/provision"
	"github.com/tuyaflash/tuyaflash/transport"
	"github.com/tuyaflash/tuyaflash/tuyaconfig"
)

// AllPorts as the only port takes every USB-serial adapter ListPorts
// reports.
const AllPorts = "all"

// Default waits.
const (
	DefaultOnlineWait    = 3 * time.Minute
	DefaultProvisionWait = 3 * time.Minute
)

// Options configure a migration run.
type Options struct {
	// Ports are the serial ports (device files, or "sim:…" virtual
	// devices), or AllPorts alone.
	Ports []string
	// Chip is --chip ("" = whatever answers); it narrows the firmware
	// checks made before connecting.
	Chip flasher.Family
	// Firmware is --firmware: a catalogue name, an image file or
	// DemoFirmware; "" takes openbeken on Beken chips, tasmota on
	// ESP8266/ESP8285 and the demo image on virtual devices.
	Firmware string
	// WiFi is the network the devices join. It may be left empty when
	// every port is a virtual device (the virtual network is used) or
	// when the run ends before provision.
	WiFi provision.WiFi
	// Host is --host: where the flashed device answers, when it cannot be
	// found by itself (one port only).
	Host string
	// APHost is a real device's address on its own access point
	// (default provision.DefaultAPHost).
	APHost string
	// TinyTuya are the tinytuya files (devices.json, snapshot.json) the
	// record step moves migrated devices out of.
	TinyTuya []string
	// HA fills the MQTT parts of the Home Assistant hints.
	HA export.HAOptions
	// From and Until bound the steps that run ("" = the first and the
	// last).
	From, Until Step
	// DryRun connects, detects and reports the plan; it changes nothing:
	// no backup, no download, no write, no journal, no network change.
	DryRun bool
	// Yes allows a write to a device with no verified backup on record
	// (possible only with From after backup).
	Yes bool
	// BackupRoot is the backup store (backup.DefaultRoot when "").
	BackupRoot string
	// InventoryPath is the inventory with the journal
	// (inventory.DefaultPath when "").
	InventoryPath string
	// ToolVersion goes into backup sidecars.
	ToolVersion string
	// OnlineWait bounds the wait for the device on the network
	// (DefaultOnlineWait); ProvisionWait bounds the wait for its console
	// or access point to answer (DefaultProvisionWait).
	OnlineWait, ProvisionWait time.Duration

	// Connector, Firmwares and Network reach the world; Connector and
	// Firmwares are required, Network defaults to LiveNetwork{}.
	Connector Connector
	Firmwares Firmwares
	Network   Network
	// Observer hears the events (may be nil).
	Observer Observer
	// ListPorts lists the adapters for AllPorts (transport.ListPorts when
	// nil); ResolvePort turns a port into the device file it opens
	// (symlinks resolved; filepath.EvalSymlinks when nil).
	ListPorts   func() ([]transport.PortInfo, error)
	ResolvePort func(port string) (string, error)
	// ReadConfig reads the Tuya config from a dump (tuyaconfig.Parse when
	// nil).
	ReadConfig func(dump []byte) (*tuyaconfig.Config, error)
}

// UsageError is a bad option: the run never connected to anything.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, a ...any) error { return &UsageError{fmt.Sprintf(format, a...)} }

// IsVirtualPort reports whether port names a virtual device served in
// this process ("sim:…").
func IsVirtualPort(port string) bool { return strings.HasPrefix(port, "sim:") }

// simFamily is the family a "sim:<chip>[:file][#name]" port simulates, ""
// when the chip is not named by its family.
func simFamily(port string) flasher.Family {
	rest, ok := strings.CutPrefix(port, "sim:")
	if !ok {
		return ""
	}
	if i := strings.LastIndexByte(rest, '#'); i >= 0 {
		rest = rest[:i]
	}
	chip, _, _ := strings.Cut(rest, ":")
	for _, f := range firmware.Families {
		if strings.EqualFold(chip, string(f)) {
			return f
		}
	}
	return ""
}

// defaultSpec is the firmware a chip gets without --firmware.
func defaultSpec(fam flasher.Family, virtual bool) string {
	switch {
	case virtual:
		return DemoFirmware
	case fam.Espressif():
		return "tasmota"
	default:
		return "openbeken"
	}
}

// setDefaults fills defaults and checks the options that need nothing
// from outside.
func (o *Options) setDefaults() error {
	if o.Connector == nil || o.Firmwares == nil {
		return errors.New("migrate: Options.Connector and Options.Firmwares are required")
	}
	if o.Network == nil {
		o.Network = LiveNetwork{}
	}
	if o.ListPorts == nil {
		o.ListPorts = transport.ListPorts
	}
	if o.ResolvePort == nil {
		o.ResolvePort = filepath.EvalSymlinks
	}
	if o.ReadConfig == nil {
		o.ReadConfig = tuyaconfig.Parse
	}
	if o.OnlineWait <= 0 {
		o.OnlineWait = DefaultOnlineWait
	}
	if o.ProvisionWait <= 0 {
		o.ProvisionWait = DefaultProvisionWait
	}
	if o.APHost == "" {
		o.APHost = provision.DefaultAPHost
	}
	if o.From == "" {
		o.From = Steps[0]
	}
	if o.Until == "" {
		o.Until = Steps[len(Steps)-1]
	}
	for _, s := range []Step{o.From, o.Until} {
		if _, err := ParseStep(string(s)); err != nil {
			return usagef("%v", err)
		}
	}
	if o.Until.Before(o.From) {
		return usagef("--until %s comes before --from %s (the steps run in this order: %s)", o.Until, o.From, stepList())
	}
	if len(o.Ports) == 0 {
		return usagef("--port is required (repeat it for several adapters, or --port all; --port sim:bk7231n tries a virtual device)")
	}
	if slices.Contains(o.Ports, AllPorts) && len(o.Ports) > 1 {
		return usagef("--port all takes every adapter; do not name others with it")
	}
	if o.Host != "" && len(o.Ports) > 1 {
		return usagef("--host names one device: use it with one --port")
	}
	if o.BackupRoot == "" {
		root, err := backup.DefaultRoot()
		if err != nil {
			return err
		}
		o.BackupRoot = root
	}
	if o.InventoryPath == "" {
		p, err := inventory.DefaultPath()
		if err != nil {
			return err
		}
		o.InventoryPath = p
	}
	return nil
}

func stepList() string {
	s := make([]string, len(Steps))
	for i, st := range Steps {
		s[i] = string(st)
	}
	return strings.Join(s, ", ")
}

// expandPorts resolves AllPorts.
func (o *Options) expandPorts() ([]string, error) {
	if len(o.Ports) != 1 || o.Ports[0] != AllPorts {
		return o.Ports, nil
	}
	list, err := o.ListPorts()
	if err != nil {
		return nil, fmt.Errorf("list ports: %w", err)
	}
	var out []string
	for _, p := range list {
		if p.USB {
			out = append(out, p.Name)
		}
	}
	if len(out) == 0 {
		return nil, &flasher.HintError{Err: fmt.Errorf("--port all: no USB-serial adapter found: %w", flasher.ErrNoLink),
			Hint: "plug in the adapters ('tuyaflash ports' lists what this computer sees), or name the ports with --port"}
	}
	return out, nil
}

// precheck checks, before any device is touched (before the first
// power-cycle prompt), everything that needs no device: ports exist, the
// Wi-Fi network is given, the tinytuya files parse, the backup store and
// inventory are usable, and the firmware resolves (offline: from the cache)
// for every chip the ports may hold.
func (o *Options) precheck(ctx context.Context, ports []string) error {
	sp := span{o.From, o.Until}
	allVirtual := true
	for _, p := range ports {
		if IsVirtualPort(p) {
			continue
		}
		allVirtual = false
		if _, err := o.ResolvePort(p); err != nil {
			const hint = "'tuyaflash ports' lists the adapters this computer sees"
			return &flasher.HintError{Err: &transport.OpenError{Name: p, Err: err}, Hint: hint}
		}
	}
	if sp.has(StepProvision) && o.WiFi.SSID == "" && !allVirtual {
		return usagef("--ssid is required to put the devices on your Wi-Fi (or stop earlier with --until reboot)")
	}
	if sp.has(StepRecord) {
		for _, f := range o.TinyTuya {
			if err := checkTinyTuya(f); err != nil {
				return err
			}
		}
	}
	if sp.has(StepBackup) || sp.has(StepConfig) || sp.has(StepRecord) {
		if err := writableDir(o.BackupRoot, o.DryRun); err != nil {
			return &flasher.HintError{Err: fmt.Errorf("backup folder %s: %w", o.BackupRoot, err), Hint: "choose a writable folder (--backup-dir or $TUYAFLASH_BACKUP_DIR)"}
		}
	}
	if _, err := inventory.Open(o.InventoryPath); err != nil {
		return err
	}
	if sp.has(StepFirmware) || sp.has(StepWrite) {
		return o.checkFirmware(ctx, ports)
	}
	return nil
}

// checkFirmware resolves the firmware for each chip family the ports may
// hold: the family of --chip or of a virtual port, else every family.
func (o *Options) checkFirmware(ctx context.Context, ports []string) error {
	type want struct {
		spec string
		chip firmware.Chip
		// known: the port holds this family (not one of several guesses).
		known bool
	}
	var wants []want
	add := func(fam flasher.Family, virtual, known bool) {
		spec := o.Firmware
		if spec == "" {
			spec = defaultSpec(fam, virtual)
		}
		w := want{spec, firmware.Chip{Family: fam}, known}
		if !slices.Contains(wants, w) {
			wants = append(wants, w)
		}
	}
	for _, p := range ports {
		switch fam := simFamily(p); {
		case fam != "":
			add(fam, true, true)
		case o.Chip != "":
			add(o.Chip, false, true)
		default:
			for _, f := range firmware.Families {
				if f != flasher.ESP8285 { // takes the ESP8266 build
					add(f, false, false)
				}
			}
		}
	}
	var errs []error
	var hints []string
	for _, w := range wants {
		res, err := o.Firmwares.Resolve(ctx, w.spec, w.chip, ResolveOptions{NoDownload: o.DryRun})
		if err == nil && w.known && res.Detection != nil && res.Detection.Arch != "" && res.Detection.Arch != firmware.ArchOf(w.chip.Family) {
			err = fmt.Errorf("%s is an image for %s chips: %w", w.spec, res.Detection.Arch, flasher.ErrRefused)
		}
		switch {
		case err == nil:
		case o.DryRun && errors.Is(err, firmware.ErrNotCached):
			// the plan says it would be downloaded
		default:
			errs = append(errs, fmt.Errorf("firmware %q for %s: %w", w.spec, w.chip.Family, err))
			if errors.Is(err, firmware.ErrNotCached) {
				hints = append(hints, fmt.Sprintf("tuyaflash firmware fetch %s --chip %s", w.spec, strings.ToLower(string(w.chip.Family))))
			} else if h := flasher.Hint(err); h != "" && !slices.Contains(hints, h) {
				hints = append(hints, h)
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	err := errors.Join(errs...)
	hint := strings.Join(hints, "; ")
	if o.Chip == "" && slices.ContainsFunc(ports, func(p string) bool { return simFamily(p) == "" }) {
		hint += "; --chip narrows the check to one family"
	}
	if slices.ContainsFunc(errs, func(e error) bool { return errors.Is(e, firmware.ErrNotCached) }) {
		hint = "offline, and the cache lacks what is needed: run while online: " + hint
	}
	return &flasher.HintError{Err: err, Hint: strings.TrimPrefix(hint, "; ")}
}

// writableDir checks that dir can take new files. A dry run creates
// nothing: it checks the nearest folder that exists.
func writableDir(dir string, dryRun bool) error {
	probe := dir
	if dryRun {
		for {
			if st, err := os.Stat(probe); err == nil {
				if !st.IsDir() {
					return fmt.Errorf("%s is not a folder", probe)
				}
				break
			}
			parent := filepath.Dir(probe)
			if parent == probe {
				return fmt.Errorf("no existing folder above %s", dir)
			}
			probe = parent
		}
	} else if err := safefile.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := backup.TempFile(probe)
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// checkTinyTuya checks that file is a tinytuya device file (a JSON list, or
// an object with a "devices" list), without locking or changing anything.
func checkTinyTuya(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return &flasher.HintError{Err: fmt.Errorf("--tinytuya: %w", err), Hint: "name tinytuya's devices.json or snapshot.json"}
	}
	var list []json.RawMessage
	var obj struct {
		Devices []json.RawMessage `json:"devices"`
	}
	if json.Unmarshal(data, &list) != nil && (json.Unmarshal(data, &obj) != nil || obj.Devices == nil) {
		return &flasher.HintError{Err: fmt.Errorf("--tinytuya %s: %w", file, export.ErrNotDeviceFile),
			Hint: "pass tinytuya's devices.json (a list) or snapshot.json ({\"devices\": […]})"}
	}
	return nil
}
