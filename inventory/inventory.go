// Package inventory remembers every device tuyaflash has touched: one record
// per device with its chip, flash id, backups (with SHA-256), Tuya identity
// and local key, the firmware written, its address on the network and the
// last verification. The record is keyed by the device's MAC and flash id;
// a placeholder MAC (shared by many boards) never identifies a device on its
// own: such a device is keyed by flash id and the SHA-256 of its first
// backup.
//
// The inventory is one JSON file (mode 0600: it holds local keys), replaced
// atomically on every Save. Save takes a lock, reads the file again and
// replays this session's changes onto it, so that two tuyaflash processes
// updating it at the same time both keep their changes.
package inventory

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tuyaflash/tuyaflash/backup"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/inventory/atomicfile"
	"github.com/tuyaflash/tuyaflash/tuyaconfig"
)

// FormatV1 is the Format of inventory files written by this package.
const FormatV1 = "tuyaflash-inventory/1"

// FileName is the inventory's name inside the data folder.
const FileName = "inventory.json"

// Hidden replaces secrets in Redacted records.
const Hidden = tuyaconfig.Hidden

// FirmwareStock is the Firmware recorded when a stock backup was written
// back (tuyaflash restore).
const FirmwareStock = "stock"

// LockWait is how long Save waits for another tuyaflash process to finish
// its own update.
var LockWait = 10 * time.Second

// Errors callers can branch on with errors.Is.
var (
	// ErrDamaged: the inventory file is not valid JSON or not an
	// inventory; it is never overwritten.
	ErrDamaged = errors.New("inventory file is damaged")
	// ErrNewerFormat: the file was written by a newer tuyaflash.
	ErrNewerFormat = errors.New("inventory file has a newer format")
	// ErrUnidentified: the device cannot be keyed (placeholder or no MAC,
	// and no backup of it in this session).
	ErrUnidentified = errors.New("device cannot be identified")
	// ErrUnknownDevice: no record matches.
	ErrUnknownDevice = errors.New("device is not in the inventory")
	// ErrAmbiguous: a query matches several records.
	ErrAmbiguous = errors.New("more than one device matches")
)

// Device is one device's record.
type Device struct {
	// Key identifies the record: "<mac>/<flash id>" (e.g.
	// "c8478c1a2b3c/eb6015"), or "placeholder/<flash id>/<first 12 hex
	// digits of the first backup's SHA-256>" when the MAC identifies
	// nothing. A missing flash id reads "noid".
	Key string `json:"key"`
	// MAC is AA:BB:CC:DD:EE:FF as read from the chip, "" when not read.
	MAC string `json:"mac,omitempty"`
	// MACPlaceholder says why MAC does not identify the device ("all
	// zero", "Beken default …", "not read"); "" for a real MAC.
	MACPlaceholder string    `json:"mac_placeholder,omitempty"`
	Family         string    `json:"family"`
	FlashID        string    `json:"flash_id,omitempty"`
	FlashName      string    `json:"flash_name,omitempty"`
	FlashSize      int       `json:"flash_size,omitempty"`
	ChipID         string    `json:"chip_id,omitempty"`
	EfuseKey       string    `json:"efuse_key,omitempty"`
	FirstSeen      time.Time `json:"first_seen"`
	LastSeen       time.Time `json:"last_seen"`
	// Backups lists the dumps taken, oldest first; the first is
	// normally the stock firmware.
	Backups []BackupRef `json:"backups,omitempty"`
	// Tuya is the identity read from a stock backup's Tuya config.
	Tuya *Tuya `json:"tuya,omitempty"`
	// Writes lists the images written, oldest first.
	Writes []Write `json:"writes,omitempty"`
	// Firmware and FirmwareVersion are what was written last ("tasmota",
	// "openbeken", "esphome", FirmwareStock, or the image's name).
	Firmware        string `json:"firmware,omitempty"`
	FirmwareVersion string `json:"firmware_version,omitempty"`
	// IP and Hostname are where the device last answered.
	IP       string `json:"ip,omitempty"`
	Hostname string `json:"hostname,omitempty"`
	// LastVerify is the last check of the device over the network.
	LastVerify *Verification `json:"last_verify,omitempty"`
	// Migration is the journal of `tuyaflash migrate` (journal.go).
	Migration *Migration `json:"migration,omitempty"`
	// Virtual marks a simulated device (a sim: port or a chip simulator
	// that identified itself): listed apart, left out of every export.
	Virtual bool `json:"virtual,omitempty"`
}

// MarshalJSON writes the flash id as "0x…", like every tuyaflash output.
func (d Device) MarshalJSON() ([]byte, error) {
	type plain Device
	return json.Marshal(struct {
		plain
		FlashID string `json:"flash_id,omitempty"`
	}{plain(d), backup.HexID(d.FlashID)})
}

// UnmarshalJSON reads the flash id with or without "0x".
func (d *Device) UnmarshalJSON(b []byte) error {
	type plain Device
	aux := struct {
		*plain
		FlashID string `json:"flash_id"`
	}{plain: (*plain)(d)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	d.FlashID = backup.BareHex(aux.FlashID)
	return nil
}

// BackupRef is one stored dump.
type BackupRef struct {
	Path   string    `json:"path"`
	SHA256 string    `json:"sha256"`
	Size   int64     `json:"size"`
	Offset uint32    `json:"offset"`
	Date   time.Time `json:"date"`
}

// Tuya is the stock firmware's identity (tuyaconfig.Config).
type Tuya struct {
	DeviceID string `json:"device_id,omitempty"`
	// LocalKey is secret: Redacted hides it.
	LocalKey     string `json:"local_key,omitempty"`
	ProductKey   string `json:"product_key,omitempty"`
	Module       string `json:"module,omitempty"`
	Chip         string `json:"chip,omitempty"`
	StockVersion string `json:"stock_version,omitempty"`
	// PinMap is the raw user_param_key, for pin templates.
	PinMap string `json:"pin_map,omitempty"`
	// FromBackup is the SHA-256 of the dump the config was read from
	// ("" when not known).
	FromBackup string    `json:"from_backup,omitempty"`
	Date       time.Time `json:"date"`
}

// MarshalJSON writes the offset as "0x…".
func (b BackupRef) MarshalJSON() ([]byte, error) {
	type plain BackupRef
	return json.Marshal(struct {
		plain
		Offset string `json:"offset"`
	}{plain(b), backup.HexAddr(b.Offset)})
}

// UnmarshalJSON reads the offset as a number or a "0x…" string.
func (b *BackupRef) UnmarshalJSON(data []byte) error {
	type plain BackupRef
	aux := struct {
		*plain
		Offset json.RawMessage `json:"offset"`
	}{plain: (*plain)(b)}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	off, err := backup.ParseHexAddr(aux.Offset)
	b.Offset = off
	return err
}

// Write is one image written to the device.
type Write struct {
	Date         time.Time `json:"date"`
	Firmware     string    `json:"firmware"`
	Version      string    `json:"version,omitempty"`
	Addr         uint32    `json:"addr"`
	Size         int       `json:"size"`
	Verified     bool      `json:"verified"`
	VerifyMethod string    `json:"verify_method,omitempty"`
}

// MarshalJSON writes the address as "0x…".
func (w Write) MarshalJSON() ([]byte, error) {
	type plain Write
	return json.Marshal(struct {
		plain
		Addr string `json:"addr"`
	}{plain(w), backup.HexAddr(w.Addr)})
}

// UnmarshalJSON reads the address as a number or a "0x…" string.
func (w *Write) UnmarshalJSON(data []byte) error {
	type plain Write
	aux := struct {
		*plain
		Addr json.RawMessage `json:"addr"`
	}{plain: (*plain)(w)}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	a, err := backup.ParseHexAddr(aux.Addr)
	w.Addr = a
	return err
}

// Verification is one network check of the device (tuyaflash verify).
type Verification struct {
	Date     time.Time `json:"date"`
	Host     string    `json:"host"`
	Firmware string    `json:"firmware"`
	Version  string    `json:"version,omitempty"`
	MAC      string    `json:"mac,omitempty"`
	IP       string    `json:"ip,omitempty"`
	Hostname string    `json:"hostname,omitempty"`
	// Encrypted: ESPHome's native API needs its encryption key.
	Encrypted bool `json:"api_encrypted,omitempty"`
	// OK is false when the check found a problem, described by Problem.
	OK      bool   `json:"ok"`
	Problem string `json:"problem,omitempty"`
}

// Redacted returns a copy of d with the local key replaced by Hidden.
func (d Device) Redacted() Device {
	if d.Tuya != nil && d.Tuya.LocalKey != "" {
		t := *d.Tuya
		t.LocalKey = Hidden
		d.Tuya = &t
	}
	return d
}

// Migrated reports whether another firmware than the stock one was written
// last.
func (d Device) Migrated() bool { return d.Firmware != "" && d.Firmware != FirmwareStock }

// CurrentFirmware is the firmware the device runs as far as tuyaflash knows:
// the last successful verification's when it is newer than the last write,
// else the last write's.
func (d Device) CurrentFirmware() (name, version string) {
	name, version = d.Firmware, d.FirmwareVersion
	v := d.LastVerify
	if v != nil && v.OK && v.Firmware != "" && (len(d.Writes) == 0 || !v.Date.Before(d.Writes[len(d.Writes)-1].Date)) {
		name, version = v.Firmware, v.Version
	}
	return name, version
}

// Name is a short label for d: the Tuya device id's last 6 characters or the
// MAC's last 6 hex digits, prefixed with "tuya-"; usable as an ESPHome node
// name or a file name. The device id comes from a dump (outside data):
// only its letters and digits are used, so that the name never holds a
// path separator, "..", or a control character.
func (d Device) Name() string {
	if c := strings.ReplaceAll(strings.ToLower(d.MAC), ":", ""); d.MACPlaceholder == "" && len(c) >= 6 {
		return "tuya-" + plainName(c[len(c)-6:])
	}
	if d.Tuya != nil {
		if id := plainName(strings.ToLower(d.Tuya.DeviceID)); len(id) >= 6 {
			return "tuya-" + id[len(id)-6:]
		}
	}
	parts := strings.Split(d.Key, "/")
	return "tuya-" + plainName(parts[len(parts)-1])
}

// plainName keeps the ASCII letters and digits of s.
func plainName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// file is the JSON document.
type file struct {
	Format  string    `json:"format"`
	Devices []*Device `json:"devices"`
}

// Inventory is an open inventory file with the changes of this session.
// It is not safe for concurrent use by several goroutines; separate
// Inventory values (in one process or several) may update the same file.
type Inventory struct {
	path    string
	devices []*Device
	// pending are this session's changes, replayed by Save onto the file
	// as it is then.
	pending []func(*[]*Device)
	// session maps a chip identity (see chipIdentity) to the key chosen
	// for a device whose MAC identifies nothing.
	session map[string]string
	// now is the clock (tests).
	now func() time.Time
}

// DefaultPath is where the inventory lives unless told otherwise:
// $TUYAFLASH_DATA_DIR/inventory.json, else
// $XDG_DATA_HOME/tuyaflash/inventory.json, else
// ~/.local/share/tuyaflash/inventory.json.
func DefaultPath() (string, error) {
	if d := os.Getenv("TUYAFLASH_DATA_DIR"); d != "" {
		return filepath.Join(d, FileName), nil
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "tuyaflash", FileName), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no home folder for the inventory (set TUYAFLASH_DATA_DIR): %w", err)
	}
	return filepath.Join(home, ".local", "share", "tuyaflash", FileName), nil
}

// Open reads the inventory at path; a missing file is an empty inventory
// (created by the first Save). A damaged file is an error wrapping
// ErrDamaged and is left alone.
func Open(path string) (*Inventory, error) {
	devs, err := load(path)
	if err != nil {
		return nil, err
	}
	return &Inventory{path: path, devices: devs, session: map[string]string{}, now: time.Now}, nil
}

// Path is the inventory file's path.
func (inv *Inventory) Path() string { return inv.path }

func load(path string) ([]*Device, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, damaged(path, err.Error())
	}
	if f.Format != FormatV1 {
		if strings.HasPrefix(f.Format, "tuyaflash-inventory/") {
			return nil, &flasher.HintError{Err: fmt.Errorf("%s: format %q: %w", path, f.Format, ErrNewerFormat), Hint: "a newer tuyaflash wrote this inventory: update tuyaflash"}
		}
		return nil, damaged(path, fmt.Sprintf("format is %q, not %q", f.Format, FormatV1))
	}
	for i, d := range f.Devices {
		if d == nil || d.Key == "" {
			return nil, damaged(path, fmt.Sprintf("device %d has no key", i+1))
		}
	}
	return f.Devices, nil
}

func damaged(path, why string) error {
	return &flasher.HintError{
		Err:  fmt.Errorf("%s: %w: %s", path, ErrDamaged, why),
		Hint: "tuyaflash does not overwrite it: move it aside (a new inventory is started) or repair it; backups are not affected",
	}
}

// Devices returns copies of all records in the order they were first seen.
func (inv *Inventory) Devices() []Device {
	out := make([]Device, len(inv.devices))
	for i, d := range inv.devices {
		out[i] = clone(d)
	}
	return out
}

// Find returns the records that match q: a key (or the start of one, at
// least 6 characters), a MAC (any notation), a Tuya device id, an IP or host
// name, or a backup's path or SHA-256 (or its first 12 hex digits).
func (inv *Inventory) Find(q string) []Device {
	q = strings.TrimSpace(q)
	var out []Device
	mac, macErr := flasher.ParseMAC(q)
	for _, d := range inv.devices {
		match := strings.EqualFold(d.Key, q) || len(q) >= 6 && strings.HasPrefix(d.Key, strings.ToLower(q)) ||
			(macErr == nil && d.MAC == mac.String() && d.MACPlaceholder == "") ||
			(d.Tuya != nil && d.Tuya.DeviceID == q) ||
			(q != "" && (d.IP == q || strings.EqualFold(d.Hostname, q)))
		for _, b := range d.Backups {
			match = match || b.Path == q || b.SHA256 == strings.ToLower(q) || (len(q) >= 12 && strings.HasPrefix(b.SHA256, strings.ToLower(q)))
		}
		if match {
			out = append(out, clone(d))
		}
	}
	return out
}

// MarkVirtual marks the record with key as a virtual device.
func (inv *Inventory) MarkVirtual(key string) {
	if find(inv.devices, key) == nil {
		return
	}
	inv.apply(func(devs *[]*Device) {
		if d := find(*devs, key); d != nil {
			d.Virtual = true
		}
	})
}

// Forget removes the record q names (a key, MAC, Tuya device id, IP or
// backup, as Find takes them) and returns it. A query that matches several
// records is refused (name one by its key); the backups themselves stay
// where they are.
func (inv *Inventory) Forget(q string) (Device, error) {
	found := inv.Find(q)
	switch len(found) {
	case 0:
		return Device{}, fmt.Errorf("%q: %w", q, ErrUnknownDevice)
	case 1:
	default:
		keys := make([]string, len(found))
		for i, d := range found {
			keys[i] = d.Key
		}
		return Device{}, fmt.Errorf("%q matches %d devices (%s): name one by its key: %w", q, len(found), strings.Join(keys, ", "), ErrAmbiguous)
	}
	key := found[0].Key
	inv.apply(func(devs *[]*Device) {
		*devs = slices.DeleteFunc(*devs, func(d *Device) bool { return d.Key == key })
	})
	return found[0], nil
}

func clone(d *Device) Device {
	c := *d
	c.Backups = slices.Clone(d.Backups)
	c.Writes = slices.Clone(d.Writes)
	if d.Tuya != nil {
		t := *d.Tuya
		c.Tuya = &t
	}
	if d.LastVerify != nil {
		v := *d.LastVerify
		c.LastVerify = &v
	}
	c.Migration = cloneMigration(d.Migration)
	return c
}

// apply runs change on the session's view now and remembers it for Save.
func (inv *Inventory) apply(change func(*[]*Device)) {
	change(&inv.devices)
	inv.pending = append(inv.pending, change)
}

// Pending reports whether there are changes Save has not written.
func (inv *Inventory) Pending() bool { return len(inv.pending) > 0 }

// Save writes this session's changes: it takes the inventory's lock, reads
// the file again (another process may have changed it), replays the changes
// onto it and replaces the file atomically with mode 0600. Without changes
// it does nothing.
func (inv *Inventory) Save() error {
	if len(inv.pending) == 0 {
		return nil
	}
	unlock, err := atomicfile.Lock(inv.path, LockWait)
	if err != nil {
		return fmt.Errorf("save inventory: %w", err)
	}
	defer unlock()
	atomicfile.RemoveStale(inv.path)
	devs, err := load(inv.path)
	if err != nil {
		return err
	}
	for _, change := range inv.pending {
		change(&devs)
	}
	data, err := json.MarshalIndent(file{Format: FormatV1, Devices: nonNil(devs)}, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(inv.path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("save inventory: %w", err)
	}
	// A file created by an older tuyaflash with a wider mode gets 0600
	// from the rename; nothing else to fix.
	inv.devices, inv.pending = devs, nil
	return nil
}

func nonNil(d []*Device) []*Device {
	if d == nil {
		return []*Device{}
	}
	return d
}

// get returns the record with key, adding it when missing.
func get(devs *[]*Device, key string, now time.Time) *Device {
	for _, d := range *devs {
		if d.Key == key {
			return d
		}
	}
	d := &Device{Key: key, FirstSeen: now}
	*devs = append(*devs, d)
	return d
}

func find(devs []*Device, key string) *Device {
	for _, d := range devs {
		if d.Key == key {
			return d
		}
	}
	return nil
}
