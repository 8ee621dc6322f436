package virtual

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/internal/safefile"
	"github.com/tuyaflash/tuyaflash/inventory"
	"github.com/tuyaflash/tuyaflash/transport"
)

// Environment variables that set Options for sim: ports (OptionsFromEnv).
const (
	// EnvUnpaced = "1" runs virtual devices unpaced: bytes cross the link
	// at once and the simulated firmware takes milliseconds (tests).
	EnvUnpaced = "TUYAFLASH_SIM_UNPACED"
	// EnvAdapter names the USB adapter model (transport.ParseAdapter).
	EnvAdapter = "TUYAFLASH_SIM_ADAPTER"
)

// DefaultAdapter is the USB adapter model of a virtual device's link.
const DefaultAdapter = "ch340"

// Options say how the virtual devices of port specs run.
type Options struct {
	// DataDir holds the devices' state folders, in DataDir/virtual/
	// ("" = DataDir()).
	DataDir string
	// Unpaced delivers bytes at memory speed, without flash timing, and
	// gives the simulated firmware millisecond delays: for tests. A paced
	// device takes the time the wire, the USB adapter, the flash and the
	// firmware take.
	Unpaced bool
	// Adapter is the USB adapter model on the host's side (zero value:
	// DefaultAdapter).
	Adapter transport.Adapter
	// Log hears the chip simulator's and the firmware's event lines.
	Log io.Writer
}

// OptionsFromEnv reads EnvUnpaced and EnvAdapter.
func OptionsFromEnv() (Options, error) {
	var o Options
	switch v := os.Getenv(EnvUnpaced); v {
	case "", "0":
	case "1":
		o.Unpaced = true
	default:
		return o, fmt.Errorf("$%s=%q: want 1 (unpaced) or 0", EnvUnpaced, v)
	}
	if name := os.Getenv(EnvAdapter); name != "" {
		a, err := transport.ParseAdapter(name)
		if err != nil {
			return o, fmt.Errorf("$%s: %w", EnvAdapter, err)
		}
		o.Adapter = a
	}
	return o, nil
}

// The simulated bench user and the firmware, paced and unpaced.
const (
	autoResetPaced   = 250 * time.Millisecond
	autoResetUnpaced = 30 * time.Millisecond
	// The ESP user releases GPIO0 and power-cycles once the host has
	// written and then left the line quiet this long.
	releasePaced   = time.Second
	releaseUnpaced = 300 * time.Millisecond
	// saveEvery is how often the flash is saved while it changes.
	saveEvery = 250 * time.Millisecond
)

// DataDir is where tuyaflash keeps its data: the inventory's folder
// ($TUYAFLASH_DATA_DIR, else the XDG data folder's tuyaflash).
func DataDir() (string, error) {
	p, err := inventory.DefaultPath()
	if err != nil {
		return "", err
	}
	return filepath.Dir(p), nil
}

// stateFormat marks device.json.
const stateFormat = "tuyaflash-virtual/1"

// state is a device's device.json.
type state struct {
	Format string `json:"format"`
	Chip   string `json:"chip"`
	Name   string `json:"name,omitempty"`
	// MAC is the chip's MAC when the device was made.
	MAC string `json:"mac"`
	// Origin says what the flash was made from; OriginSHA256 is that
	// first flash's checksum.
	Origin       string    `json:"origin"`
	OriginSHA256 string    `json:"origin_sha256"`
	Created      time.Time `json:"created"`
	// Addrs are where the firmware's network side appears.
	Addrs Addrs `json:"addrs"`
}

// Device is a persistent virtual device, running in this process on an
// in-memory link until Close.
type Device struct {
	// Spec names it; Dir is its state folder.
	Spec Spec
	Dir  string
	// Sim is the simulated module.
	Sim *Sim
	// Host is the computer's end of the link (the "serial port").
	Host *transport.PipePort
	// Created reports that this Open made the device.
	Created bool

	st      state
	unlock  func()
	cancel  context.CancelFunc
	done    chan error
	stop    chan struct{}
	saverWG sync.WaitGroup
	saveMu  sync.Mutex
	saved   []byte // the flash as flash.bin holds it
	unreg   func()
	once    sync.Once
	closeEr error
}

// Open opens the device spec names: locks it (a device in use by another
// command fails as a busy port does), creates it on first use and starts
// the simulated module on an in-memory link. Close saves it.
func Open(spec Spec, o Options) (*Device, error) {
	root := o.DataDir
	if root == "" {
		var err error
		if root, err = DataDir(); err != nil {
			return nil, err
		}
	}
	dir := filepath.Join(root, "virtual", spec.ID())
	if err := safefile.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("virtual device %s: %w", spec, err)
	}
	unlock, err := transport.LockFile(filepath.Join(dir, "lock"), spec.String())
	if err != nil {
		return nil, err
	}
	d := &Device{Spec: spec, Dir: dir, unlock: unlock, stop: make(chan struct{})}
	if err := d.start(o); err != nil {
		unlock()
		return nil, err
	}
	return d, nil
}

// start loads or creates the state, builds the module and serves it.
func (d *Device) start(o Options) error {
	flash, err := d.load()
	if err != nil {
		return err
	}
	if d.st.Addrs, err = addresses(d.Spec.ID(), d.st.Addrs); err != nil {
		return err
	}
	cfg := SimConfig{Chip: d.Spec.Chip, Flash: flash, Net: d.st.Addrs, Log: o.Log, Saved: func() { _ = d.Save() }}
	if mac, err := flasher.ParseMAC(d.st.MAC); err == nil {
		cfg.MAC = mac
	}
	if o.Unpaced {
		cfg.AutoReset, cfg.ReleaseAfterWrite, cfg.FastApp = autoResetUnpaced, releaseUnpaced, true
	} else {
		cfg.AutoReset, cfg.ReleaseAfterWrite, cfg.Timing = autoResetPaced, releasePaced, true
	}
	if d.Sim, err = NewSim(cfg); err != nil {
		return d.fix(err)
	}
	if d.Created {
		d.st.MAC = d.Sim.MAC().String()
		d.st.OriginSHA256 = sum(d.Sim.Flash())
		if err := d.Save(); err != nil {
			return err
		}
	} else {
		d.saved = flash
	}
	if err := d.writeState(); err != nil {
		return err
	}
	a := o.Adapter
	if !a.IsModel() && a.Name == "" {
		a, _ = transport.ParseAdapter(DefaultAdapter)
	}
	host, dev := transport.Pipe(transport.LinkOptions{Paced: !o.Unpaced, Adapter: a, LowLatency: true})
	ctx, cancel := context.WithCancel(context.Background())
	d.Host, d.cancel, d.done = host, cancel, make(chan error, 1)
	go func() { d.done <- d.Sim.Serve(ctx, dev) }()
	if fw := d.Sim.Firmware(); fw != nil {
		d.unreg = register(d.Spec.String(), fw.Redirect)
	}
	d.saverWG.Add(1)
	go d.saver()
	return nil
}

// fix turns a simulator's refusal of a stored or given flash into advice.
func (d *Device) fix(err error) error {
	if d.Created {
		return fmt.Errorf("virtual device %s: %w", d.Spec, err)
	}
	return &flasher.HintError{Err: fmt.Errorf("virtual device %s: its stored flash: %w", d.Spec, err),
		Hint: forgetHint(d.Spec)}
}

// forgetHint tells how to start a device over.
func forgetHint(s Spec) string {
	return fmt.Sprintf("start over with 'tuyaflash sim --forget %s' (its flash is lost)", strings.TrimPrefix(s.String(), Prefix))
}

// load reads device.json and flash.bin, or prepares a new device; the
// flash is nil for a new device without a flash file (the simulator's
// default image).
func (d *Device) load() ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(d.Dir, "device.json"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return d.create()
	case err != nil:
		return nil, err
	}
	if err := json.Unmarshal(b, &d.st); err != nil || d.st.Format != stateFormat || d.st.Chip != d.Spec.Chip {
		return nil, &flasher.HintError{Err: fmt.Errorf("virtual device %s: %s is not a %s device's state (%v)", d.Spec, d.Dir, d.Spec.Chip, err),
			Hint: forgetHint(d.Spec)}
	}
	if d.Spec.File != "" {
		data, err := os.ReadFile(d.Spec.File)
		if err != nil {
			return nil, fmt.Errorf("virtual device flash image: %w", err)
		}
		if sum(data) != d.st.OriginSHA256 {
			return nil, &flasher.HintError{
				Err: fmt.Errorf("the virtual device %s was made from %s, not from %s, and keeps its flash like a real device: %w", d.Spec, d.st.Origin, d.Spec.File, flasher.ErrRefused),
				Hint: fmt.Sprintf("use it without the file (--port %s), give the new one a device of its own (--port %s:%s#NAME), or %s",
					d.Spec, strings.TrimSuffix(d.Spec.String(), "#"+d.Spec.Name), d.Spec.File, forgetHint(d.Spec)),
			}
		}
	}
	flash, err := os.ReadFile(filepath.Join(d.Dir, "flash.bin"))
	if err != nil {
		return nil, &flasher.HintError{Err: fmt.Errorf("virtual device %s: its flash: %w", d.Spec, err), Hint: forgetHint(d.Spec)}
	}
	return flash, nil
}

// create prepares a new device's state: its MAC (derived from its name),
// and its flash (the file's, or nil for the default image).
func (d *Device) create() ([]byte, error) {
	d.Created = true
	d.st = state{Format: stateFormat, Chip: d.Spec.Chip, Name: d.Spec.Name, Origin: "the simulator's default image", Created: time.Now().UTC().Truncate(time.Second)}
	if d.Spec.Name != "" {
		d.st.MAC = derivedMAC(d.Spec).String()
	}
	if d.Spec.File == "" {
		return nil, nil
	}
	data, err := os.ReadFile(d.Spec.File)
	if err != nil {
		return nil, fmt.Errorf("virtual device flash image: %w", err)
	}
	if abs, err := filepath.Abs(d.Spec.File); err == nil {
		d.st.Origin = abs
	} else {
		d.st.Origin = d.Spec.File
	}
	return data, nil
}

// derivedMAC is a named instance's MAC: the simulator's OUI (Beken: the
// locally administered 02:42:4B of its default; ESP: Espressif's
// 18:FE:34) and three bytes of a hash of the name.
func derivedMAC(s Spec) flasher.MAC {
	h := sha256.Sum256([]byte("tuyaflash-virtual-mac/" + s.ID()))
	m := flasher.MAC{0x02, 0x42, 0x4B, h[0], h[1], h[2]}
	if s.ESP() {
		m[0], m[1], m[2] = 0x18, 0xFE, 0x34
	}
	return m
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// writeState writes device.json atomically.
func (d *Device) writeState() error {
	b, err := json.MarshalIndent(d.st, "", "  ")
	if err != nil {
		return err
	}
	return safefile.Replace(filepath.Join(d.Dir, "device.json"), append(b, '\n'), 0o600)
}

// Save writes the flash to flash.bin when it changed since the last save,
// atomically (safefile.Replace: a temporary file renamed over it): a
// killed process leaves the previous flash or the new one, never a mix.
func (d *Device) Save() error {
	d.saveMu.Lock()
	defer d.saveMu.Unlock()
	flash := d.Sim.Flash()
	if bytes.Equal(flash, d.saved) {
		return nil
	}
	if err := safefile.Replace(filepath.Join(d.Dir, "flash.bin"), flash, 0o600); err != nil {
		return fmt.Errorf("virtual device %s: save the flash: %w", d.Spec, err)
	}
	d.saved = flash
	return nil
}

// saver saves the flash while the device runs, so that a process killed
// with SIGKILL loses at most the last saveEvery of writes (as a power cut
// at that moment would).
func (d *Device) saver() {
	defer d.saverWG.Done()
	t := time.NewTicker(saveEvery)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
			_ = d.Save()
		}
	}
}

// Close stops the module, saves the flash and releases
// the device. It returns the save's error.
func (d *Device) Close() error {
	d.once.Do(func() {
		close(d.stop)
		d.saverWG.Wait()
		d.cancel()
		d.Host.Close()
		select {
		case <-d.done:
		case <-time.After(2 * time.Second):
		}
		if d.unreg != nil {
			d.unreg()
		}
		d.closeEr = d.Save()
		d.unlock()
	})
	return d.closeEr
}

// MAC is the device's MAC as its chip reports it.
func (d *Device) MAC() flasher.MAC { return d.Sim.MAC() }

// Addrs are where its firmware's network side appears.
func (d *Device) Addrs() Addrs { return d.st.Addrs }

// Origin says what its flash was first made from.
func (d *Device) Origin() string { return d.st.Origin }

// Summary describes a stored virtual device (List).
type Summary struct {
	Spec    string    `json:"spec"`
	Dir     string    `json:"dir"`
	MAC     string    `json:"mac"`
	Origin  string    `json:"origin"`
	Created time.Time `json:"created"`
	Station string    `json:"station"`
}

// List lists the stored virtual devices under dataDir ("" = DataDir()).
func List(dataDir string) ([]Summary, error) {
	if dataDir == "" {
		var err error
		if dataDir, err = DataDir(); err != nil {
			return nil, err
		}
	}
	dirs, err := filepath.Glob(filepath.Join(dataDir, "virtual", "*", "device.json"))
	if err != nil {
		return nil, err
	}
	var out []Summary
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		var st state
		if err != nil || json.Unmarshal(b, &st) != nil || st.Format != stateFormat {
			continue
		}
		s := Spec{Chip: st.Chip, Name: st.Name}
		out = append(out, Summary{Spec: s.String(), Dir: filepath.Dir(p), MAC: st.MAC, Origin: st.Origin, Created: st.Created, Station: st.Addrs.Station})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Spec < out[j].Spec })
	return out, nil
}

// Forget deletes a stored virtual device (its flash, identity and
// addresses); the next use creates it anew. A device in use is not
// deleted: the error is that of a busy port. deleted is false when there
// was nothing to delete.
func Forget(spec Spec, dataDir string) (deleted bool, err error) {
	if dataDir == "" {
		if dataDir, err = DataDir(); err != nil {
			return false, err
		}
	}
	dir := filepath.Join(dataDir, "virtual", spec.ID())
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	unlock, err := transport.LockFile(filepath.Join(dir, "lock"), spec.String())
	if err != nil {
		return false, err
	}
	defer unlock()
	return true, os.RemoveAll(dir)
}
