package inventory

import (
	"fmt"
	"slices"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/postflash"
)

// The journal of `tuyaflash migrate`: one Migration per device record, kept
// in the inventory file so that it is saved by the same locked, atomic Save
// as everything else. A step is marked running before it changes anything
// and done once its effect is in place; the facts a later run needs to
// re-check the step (backup path and SHA-256, image and where it went, the
// Wi-Fi network's name, the address the firmware answered on) are stored
// with it. Wi-Fi passwords are never stored.

// Step statuses in a Migration.
const (
	// StepRunning: the step began and did not end (the process died, or
	// it is running now).
	StepRunning = "running"
	// StepDone: the step's effect is in place.
	StepDone = "done"
	// StepNote: the step ended with nothing to work with (no Tuya config,
	// no pin map); what it would have done is explained in its message.
	StepNote = "note"
	// StepFailed: the step ended with an error (its message).
	StepFailed = "failed"
)

// Migration outcomes.
const (
	// OutcomeMigrated: every step up to record is done.
	OutcomeMigrated = "migrated"
	// OutcomeFlagged: the device that answered on the network is not the
	// one that was flashed (MAC or firmware differ); it is not recorded as
	// migrated and its exports are not updated.
	OutcomeFlagged = "flagged"
)

// Migration is the journal of the migration of one device.
type Migration struct {
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
	// Completed is when the last step ended with the device migrated.
	Completed time.Time `json:"completed,omitzero"`
	// Port is the adapter's device file (symlinks resolved) the device
	// was last migrated on.
	Port string `json:"port,omitempty"`
	// Outcome is "" while unfinished, else OutcomeMigrated or
	// OutcomeFlagged.
	Outcome string `json:"outcome,omitempty"`
	// Steps holds the latest status of each step, in the order the steps
	// were first run.
	Steps []MigrationStep `json:"steps"`
	// Backup is the verified backup the migration relies on.
	Backup *MigrationBackup `json:"backup,omitempty"`
	// Image is what the write step writes or wrote.
	Image *MigrationImage `json:"image,omitempty"`
	// Templates are the pin template files saved beside the backup.
	Templates []string `json:"templates,omitempty"`
	// Virtual is a virtual device's network address ("" for a real one).
	Virtual string `json:"virtual,omitempty"`
	// WiFi is the network the device was given (never its password).
	WiFi *MigrationWiFi `json:"wifi,omitempty"`
	// Host is where the new firmware answered; HostVia says how it was
	// found ("--host", "serial console", "ARP", "virtual device" …).
	Host    string `json:"host,omitempty"`
	HostVia string `json:"host_via,omitempty"`
	// Verify is the last network check of the migration.
	Verify *Verification `json:"verify,omitempty"`
	// Pins is the pin configuration applied from the Tuya config.
	Pins *MigrationPins `json:"pins,omitempty"`
	// Exports are the files the record step updated.
	Exports []string `json:"exports,omitempty"`
}

// MigrationStep is the latest status of one step.
type MigrationStep struct {
	Step    string    `json:"step"`
	Status  string    `json:"status"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended,omitzero"`
	Message string    `json:"message,omitempty"`
}

// MigrationBackup is the backup a migration took or reused.
type MigrationBackup struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// Reused is set when the backup was already in the store.
	Reused bool `json:"reused,omitempty"`
}

// MigrationImage is the firmware image of a migration and where it goes.
type MigrationImage struct {
	// Firmware and Version name it ("openbeken", "1.17.670").
	Firmware string `json:"firmware"`
	Version  string `json:"version,omitempty"`
	// Source is the catalogue name or file it came from.
	Source string `json:"source,omitempty"`
	// SHA256 is the image file's.
	SHA256  string            `json:"sha256"`
	Format  string            `json:"format,omitempty"`
	Regions []MigrationRegion `json:"regions"`
}

// MigrationRegion is one flash range the image is written to.
type MigrationRegion struct {
	Addr uint32 `json:"addr"`
	Size int    `json:"size"`
	// SHA256 is of the bytes written there.
	SHA256 string `json:"sha256"`
}

// MigrationWiFi is the network a device was provisioned with.
type MigrationWiFi struct {
	SSID string `json:"ssid"`
	// Via is "serial console" or "access point".
	Via  string    `json:"via"`
	Date time.Time `json:"date"`
}

// MigrationPins is the pin configuration applied to the new firmware.
type MigrationPins struct {
	Firmware string `json:"firmware"`
	// Pins is how many pins were configured.
	Pins int `json:"pins"`
	// Summary lists them ("P6 Rel;1, P8 Btn;1").
	Summary string `json:"summary,omitempty"`
}

// Step returns the record of step name, or nil.
func (m *Migration) Step(name string) *MigrationStep {
	if m == nil {
		return nil
	}
	for i := range m.Steps {
		if m.Steps[i].Step == name {
			return &m.Steps[i]
		}
	}
	return nil
}

// StepStatus returns the status of step name, "" when it never ran.
func (m *Migration) StepStatus(name string) string {
	if s := m.Step(name); s != nil {
		return s.Status
	}
	return ""
}

// Mark sets the status of step name at t: running starts it, any other
// status ends it.
func (m *Migration) Mark(name, status, msg string, t time.Time) {
	s := m.Step(name)
	if s == nil {
		m.Steps = append(m.Steps, MigrationStep{Step: name})
		s = &m.Steps[len(m.Steps)-1]
	}
	s.Status, s.Message = status, msg
	if status == StepRunning {
		s.Started, s.Ended = t, time.Time{}
	} else {
		if s.Started.IsZero() {
			s.Started = t
		}
		s.Ended = t
	}
	m.Updated = t
}

func cloneMigration(m *Migration) *Migration {
	if m == nil {
		return nil
	}
	c := *m
	c.Steps = slices.Clone(m.Steps)
	c.Templates = slices.Clone(m.Templates)
	c.Exports = slices.Clone(m.Exports)
	if m.Backup != nil {
		b := *m.Backup
		c.Backup = &b
	}
	if m.Image != nil {
		img := *m.Image
		img.Regions = slices.Clone(m.Image.Regions)
		c.Image = &img
	}
	if m.WiFi != nil {
		w := *m.WiFi
		c.WiFi = &w
	}
	if m.Verify != nil {
		v := *m.Verify
		c.Verify = &v
	}
	if m.Pins != nil {
		p := *m.Pins
		c.Pins = &p
	}
	return &c
}

// Migration returns a copy of the migration journal of record key, nil when
// there is none.
func (inv *Inventory) Migration(key string) *Migration {
	if d := find(inv.devices, key); d != nil {
		return cloneMigration(d.Migration)
	}
	return nil
}

// UpdateMigration changes the migration journal of record key (created
// when missing) and returns the result. change must only set values it was
// given: Save replays it onto the file as it then is. The record must exist
// (RecordDetect or RecordBackup made it), else the error wraps
// ErrUnknownDevice. Save writes the change.
func (inv *Inventory) UpdateMigration(key string, change func(m *Migration)) (*Migration, error) {
	if find(inv.devices, key) == nil {
		return nil, fmt.Errorf("migration journal of %s: %w", key, ErrUnknownDevice)
	}
	now := inv.stamp()
	inv.apply(func(devs *[]*Device) {
		d := find(*devs, key)
		if d == nil {
			return // forgotten by another process meanwhile
		}
		if d.Migration == nil {
			d.Migration = &Migration{Started: now, Updated: now}
		}
		change(d.Migration)
	})
	return inv.Migration(key), nil
}

// Candidates returns the records that may be the connected chip: the one
// its MAC keys, or, when the MAC identifies nothing, the one this session
// bound it to and every record of the same family, flash id and size whose
// MAC is a placeholder too (only the flash content can tell those apart).
func (inv *Inventory) Candidates(info flasher.Info) []Device {
	if key, ok := inv.keyFor(info); ok {
		if d := find(inv.devices, key); d != nil {
			return []Device{clone(d)}
		}
		if _, mac := macKey(info); mac {
			return nil
		}
	}
	var out []Device
	for _, d := range inv.devices {
		if d.MACPlaceholder == "" || d.Family != string(info.Family) {
			continue
		}
		if id := info.FlashIDString(); id != "" && d.FlashID != "" && d.FlashID != id {
			continue
		}
		if info.FlashSize != 0 && d.FlashSize != 0 && d.FlashSize != info.FlashSize {
			continue
		}
		out = append(out, clone(d))
	}
	return out
}

// Key returns the record key of the connected chip when it is known: by its
// MAC, or by a backup of it in this session.
func (inv *Inventory) Key(info flasher.Info) (string, bool) { return inv.keyFor(info) }

// RecordVerifyOf records a network check of the device of record key (as
// RecordVerify does for a device found by MAC or address).
func (inv *Inventory) RecordVerifyOf(key string, r *postflash.Result, problem error) (Device, error) {
	if r == nil {
		return Device{}, fmt.Errorf("record verify: no result")
	}
	if find(inv.devices, key) == nil {
		return Device{}, fmt.Errorf("record verify of %s: %w", key, ErrUnknownDevice)
	}
	return inv.recordVerify(key, r, problem), nil
}

// MigrationsOnPort returns the records whose last migration ran on port,
// most recently updated first.
func (inv *Inventory) MigrationsOnPort(port string) []Device {
	var out []Device
	for _, d := range inv.devices {
		if d.Migration != nil && d.Migration.Port == port {
			out = append(out, clone(d))
		}
	}
	slices.SortStableFunc(out, func(a, b Device) int { return b.Migration.Updated.Compare(a.Migration.Updated) })
	return out
}
