package migrate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	"github.com/tuyaflash/tuyaflash/ops"
	"github.com/tuyaflash/tuyaflash/postflash"
	"github.com/tuyaflash/tuyaflash/tuyaconfig"
)

// The steps that talk to the chip in download mode, and the two that only
// compute (config, firmware).

func (r *runner) detect(ctx context.Context) (Status, string, error) {
	link, err := r.o.Connector.Connect(ctx, r.port, notify(r.emit))
	if err != nil {
		return "", "", err
	}
	r.link, r.dev, r.virt, r.inDownload = link, link.Device(), link.Virtual(), true
	r.info = r.dev.Info()
	r.res.Chip, r.res.MAC, r.res.Virtual = string(r.info.Family), usableMAC(r.info), r.virt != nil
	if err := r.claim(ctx); err != nil {
		return "", "", err
	}
	if r.o.DryRun {
		if key, ok := r.inv.Key(r.info); ok {
			r.setKey(key) // saves nothing in a dry run
		}
	} else if d, ok := r.inv.RecordDetect(r.info); ok {
		if r.virt != nil {
			r.inv.MarkVirtual(d.Key) // listed apart, left out of the exports
		}
		if err := r.setKey(d.Key); err != nil {
			return "", "", err
		}
	}
	station := ""
	if r.virt != nil {
		station = r.virt.Station
	}
	if err := r.journal(func(m *inventory.Migration) {
		m.Port, m.Outcome, m.Completed, m.Virtual = r.file, "", time.Time{}, station
	}); err != nil {
		return "", "", err
	}
	msg := describeInfo(r.info)
	if r.virt != nil {
		msg += " (virtual device)"
	}
	return StatusDone, msg, nil
}

// candidate is a stored backup that may be of the connected chip, with the
// journal of the record it belongs to.
type candidate struct {
	path string
	key  string
	m    *inventory.Migration
}

// candidates lists the stored backups that may be of this chip, the
// journal's first, then the inventory's (newest first), then any other
// in the chip's folders of the store.
func (r *runner) candidates() []candidate {
	var out []candidate
	seen := map[string]bool{}
	add := func(c candidate) {
		if c.path != "" && !seen[c.path] {
			seen[c.path] = true
			out = append(out, c)
		}
	}
	devs := r.inv.Candidates(r.info)
	for i, d := range devs {
		if d.Key == r.key {
			devs[i].Migration = r.past // not this run's own marks
		}
	}
	for _, d := range devs {
		if m := d.Migration; m != nil && m.Backup != nil {
			add(candidate{m.Backup.Path, d.Key, m})
		}
	}
	for _, d := range devs {
		for i := len(d.Backups) - 1; i >= 0; i-- {
			add(candidate{d.Backups[i].Path, d.Key, d.Migration})
		}
	}
	for _, p := range storeBackups(r.o.BackupRoot, r.info) {
		add(candidate{path: p})
	}
	return out
}

// storeBackups lists the dumps in the store folders a chip's backups go
// to (backup.DeviceDir), newest first.
func storeBackups(root string, info flasher.Info) []string {
	fam := strings.ToLower(string(info.Family))
	pattern := filepath.Join(root, fam+"-"+strings.ToLower(info.MAC.Compact()), "*.bin")
	if usableMAC(info) == "" {
		id := strings.ToLower(info.FlashIDString())
		if id == "" {
			id = "noid"
		}
		pattern = filepath.Join(root, fam+"-flash"+id+"-*", "*.bin")
	}
	paths, _ := filepath.Glob(pattern)
	slices.SortFunc(paths, func(a, b string) int { return strings.Compare(filepath.Base(b), filepath.Base(a)) })
	return paths
}

// loadOwn loads a stored whole-flash backup of the connected chip: intact
// (size and SHA-256 match its sidecar) and with a sidecar that matches the
// chip.
func (r *runner) loadOwn(path string) (*backup.Backup, error) {
	b, err := backup.Load(path, false)
	if err != nil {
		return nil, err
	}
	if err := ops.MatchSidecar(r.info, b.Sidecar); err != nil {
		return nil, err
	}
	if b.Sidecar.Offset != 0 || len(b.Data) != r.info.FlashSize {
		return nil, fmt.Errorf("%s holds 0x%X bytes from 0x%X, not the whole flash", path, len(b.Data), b.Sidecar.Offset)
	}
	return b, nil
}

// backup takes a verified backup, or reuses a stored one: one the chip
// confirms is its flash as it is now, or the journal's backup when this
// migration's own write changed the flash since. Never a second backup of
// the same flash.
func (r *runner) backup(ctx context.Context) (Status, string, error) {
	for _, c := range r.candidates() {
		b, err := r.loadOwn(c.path)
		if err != nil {
			if !errors.Is(err, flasher.ErrRefused) && !errors.Is(err, os.ErrNotExist) {
				r.note(KindWarning, "stored backup %s not used: %v", c.path, err)
			}
			continue
		}
		why, err := r.stillValid(ctx, b, c)
		if err != nil {
			return "", "", err
		}
		if why == "" {
			continue
		}
		if err := r.adoptBackup(b, true); err != nil {
			return "", "", err
		}
		return StatusReused, b.Path + ": " + why, nil
	}
	if r.o.DryRun {
		r.bkPlanned = true
		return StatusPlanned, fmt.Sprintf("would read the whole %d KiB flash into %s, verified against the chip's checksum", r.info.FlashSize/1024, r.o.BackupRoot), nil
	}
	res, err := ops.Backup(ctx, r.dev, ops.BackupOptions{Root: r.o.BackupRoot, ToolVersion: r.o.ToolVersion, Port: r.label,
		Progress: r.progress(), Events: notify(r.emit)})
	if err != nil {
		return "", "", err
	}
	b, err := backup.Load(res.Path, false)
	if err != nil {
		return "", "", err
	}
	if err := r.adoptBackup(b, false); err != nil {
		return "", "", err
	}
	msg := fmt.Sprintf("%s (%d KiB, sha256 %s…)", res.Path, res.Sidecar.Size/1024, res.Sidecar.SHA256[:12])
	if res.Resumed > 0 {
		msg += fmt.Sprintf(", resumed after %d KiB already verified", res.Resumed/1024)
	}
	return StatusDone, msg, nil
}

// stillValid says why backup b of candidate c can be trusted for the chip
// as it is now, "" when it cannot.
func (r *runner) stillValid(ctx context.Context, b *backup.Backup, c candidate) (string, error) {
	journaled := c.m != nil && c.m.Backup != nil && c.m.Backup.SHA256 == b.Sidecar.SHA256
	write := ""
	if journaled {
		write = c.m.StepStatus(string(StepWrite))
	}
	// A device with its own MAC is this device; a placeholder MAC is
	// shared, and only the flash content tells.
	own := usableMAC(r.info) != ""
	if journaled && own && (write == inventory.StepRunning || write == inventory.StepFailed) {
		return "taken before this migration's write, which was interrupted (the flash is partly written)", nil
	}
	switch err := r.dev.Verify(ctx, 0, b.Data); {
	case err == nil:
		return "the chip confirms its flash is still exactly this backup", nil
	case errors.Is(err, flasher.ErrUnsupported):
		return "", nil // the chip cannot tell (ROM loader without a stub)
	case !errors.Is(err, flasher.ErrVerify):
		return "", err
	}
	if journaled && own && write == inventory.StepDone && c.m.Image != nil {
		img, err := r.needImage(ctx)
		if err == nil && img.sha == c.m.Image.SHA256 {
			ok, err := r.imageInPlace(ctx)
			if err != nil && !errors.Is(err, flasher.ErrUnsupported) {
				return "", err
			}
			if ok {
				return "taken before this migration's write; the chip confirms the written image is in place", nil
			}
		}
	}
	if journaled {
		r.note(KindWarning, "the flash changed since %s was taken (not by this migration): backing it up again", b.Path)
	}
	return "", nil
}

// adoptBackup makes b the migration's backup.
func (r *runner) adoptBackup(b *backup.Backup, reused bool) error {
	r.bk = b
	r.res.Backup, r.res.BackupReused = b.Path, reused
	if r.o.DryRun {
		if d := r.inv.Find(b.Sidecar.SHA256); len(d) == 1 && r.key == "" {
			r.setKey(d[0].Key) // saves nothing in a dry run
		}
		return nil
	}
	d, err := r.inv.RecordBackup(r.info, b.Path, b.Sidecar)
	if err != nil {
		return err
	}
	if err := r.setKey(d.Key); err != nil {
		return err
	}
	ref := inventory.MigrationBackup{Path: b.Path, SHA256: b.Sidecar.SHA256, Size: b.Sidecar.Size, Reused: reused}
	return r.journal(func(m *inventory.Migration) { m.Backup = &ref })
}

// backupOnRecord finds, for a run that starts after the backup step, a
// verified backup of this device on record (journal or inventory; its
// sidecar must match the chip).
func (r *runner) backupOnRecord() error {
	for _, c := range r.candidates() {
		if c.key == "" {
			continue
		}
		b, err := r.loadOwn(c.path)
		if err != nil {
			continue
		}
		if usableMAC(r.info) == "" {
			// Without its own MAC only the flash tells which board
			// this is: take the backup only if it is this flash.
			continue
		}
		r.bk = b
		r.res.Backup, r.res.BackupReused = b.Path, true
		if err := r.setKey(c.key); err != nil {
			return err
		}
		return nil
	}
	return nil
}

// config reads the Tuya config from the backup, records it and saves the
// pin templates beside the backup.
func (r *runner) config() (Status, string, error) {
	if r.bk == nil && r.bkPlanned {
		return StatusPlanned, "would read the Tuya config from the new backup and save pin templates beside it", nil
	}
	if r.bk == nil {
		return StatusNote, "no backup of this device: no Tuya config to read", nil
	}
	if !r.info.Family.Beken() {
		return StatusNote, fmt.Sprintf("the Tuya config of %s firmware is not read (its format is not public): no pin template", r.info.Family), nil
	}
	cfg, err := r.o.ReadConfig(r.bk.Data)
	if cfg == nil {
		if err == nil {
			err = tuyaconfig.ErrNoStorage
		}
		return StatusNote, fmt.Sprintf("no readable Tuya config in the backup (%v): no pin template", err), nil
	}
	if err != nil {
		r.note(KindWarning, "Tuya config partly damaged: %v", err)
	}
	what := "Tuya config"
	if cfg.DeviceID != "" {
		what += " of device " + cfg.DeviceID
	}
	if cfg.Module != "" {
		what += " (module " + cfg.Module + ")"
	}
	if r.o.DryRun {
		if cfg.UserParams == nil {
			return StatusNote, what + ": no pin map, no template", nil
		}
		return StatusPlanned, fmt.Sprintf("%s: would record it and save pin templates (%s) beside the backup", what, strings.Join(export.KindsFor(string(r.info.Family)), ", ")), nil
	}
	d, err := r.inv.RecordTuyaConfig(r.key, cfg)
	if err != nil {
		return "", "", err
	}
	if err := r.save(); err != nil {
		return "", "", err
	}
	tpls, err := export.Templates(d, nil)
	if errors.Is(err, export.ErrNoPinMap) {
		return StatusNote, what + " recorded; it has no pin map (user_param_key): no pin template", nil
	}
	if err != nil {
		return "", "", err
	}
	var paths []string
	for _, t := range tpls {
		p, err := saveBeside(filepath.Dir(r.bk.Path), t.FileName, []byte(t.Content))
		if err != nil {
			return "", "", err
		}
		paths = append(paths, p)
	}
	r.res.Templates = paths
	if err := r.journal(func(m *inventory.Migration) { m.Templates = slices.Clone(paths) }); err != nil {
		return "", "", err
	}
	return StatusDone, fmt.Sprintf("%s recorded; pin templates: %s", what, strings.Join(baseNames(paths), ", ")), nil
}

func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}

// saveBeside writes content as dir/name, never overwriting: a file there
// with the same content is taken as it is, one with another content keeps
// it and the new one gets the content's hash in its name.
func saveBeside(dir, name string, content []byte) (string, error) {
	path, err := safefile.Join(dir, name)
	if err != nil {
		return "", err
	}
	for range 2 {
		old, err := os.ReadFile(path)
		if err == nil && bytes.Equal(old, content) {
			return path, nil
		}
		if errors.Is(err, os.ErrNotExist) {
			return path, backup.WriteFileNew(path, content)
		}
		sum := sha256.Sum256(content)
		ext := filepath.Ext(name)
		path = filepath.Join(dir, strings.TrimSuffix(name, ext)+"-"+hex.EncodeToString(sum[:4])+ext)
	}
	return "", fmt.Errorf("save %s: %w", path, backup.ErrExists)
}

// image is the firmware of the migration and where it goes on this chip.
type image struct {
	spec          string
	res           *firmware.Resolved
	place         *firmware.Placement
	plans         []ops.Plan
	name, version string
	kind          postflash.Firmware
	sha           string
}

func (i *image) label() string {
	if i.version == "" {
		return i.name
	}
	return i.name + " " + i.version
}

// image resolves the firmware for the chip and runs every gate (once per
// run).
func (r *runner) needImage(ctx context.Context) (*image, error) {
	if r.img != nil {
		return r.img, nil
	}
	spec := r.spec()
	res, err := r.o.Firmwares.Resolve(ctx, spec, firmware.ChipOf(r.info), ResolveOptions{NoDownload: r.o.DryRun})
	if err != nil {
		return nil, err
	}
	if err := firmware.DemoGate(res.Detection, r.virt != nil); err != nil {
		return nil, err
	}
	place, err := firmware.Place(r.info, res.Detection, res.Options)
	if err != nil {
		return nil, err
	}
	img := &image{spec: spec, res: res, place: place, sha: res.Detection.SHA256}
	for i, reg := range place.Regions {
		p, err := ops.PlanWrite(r.dev, reg.Addr, reg.Data)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			p.Skip = place.Skip
			p.Notes = append(p.Notes, place.Notes...)
		}
		img.plans = append(img.plans, p)
	}
	if fw := res.Choice.Firmware; fw != nil {
		img.name, img.version = fw.Name, fw.Version
		img.kind, _ = postflash.ParseFirmware(string(fw.Kind))
	} else {
		img.name, img.version = inventory.GuessFirmware(res.Detection.Name)
		if img.name == "" {
			img.name = filepath.Base(res.Detection.Name)
		}
		img.kind, _ = postflash.ParseFirmware(img.name)
	}
	if img.version == "" {
		img.version = res.Detection.Version
	}
	r.img = img
	r.fw, r.fwLabel, r.res.Firmware = img.kind, img.label(), img.label()
	return img, nil
}

// spec is the firmware the chip gets: --firmware, else the default for
// its family.
func (r *runner) spec() string {
	if r.o.Firmware != "" {
		return r.o.Firmware
	}
	return defaultSpec(r.info.Family, r.virt != nil)
}

// recordInPlace records the write of an image found in place when the
// inventory does not say the device runs it yet (the run that wrote it was
// cut before recording it).
func (r *runner) recordInPlace(img *image) {
	for _, d := range r.inv.Devices() {
		if d.Key == r.key && d.Firmware == img.name && d.FirmwareVersion == img.version {
			return
		}
	}
	for _, reg := range img.place.Regions {
		res := flasher.WriteResult{Addr: reg.Addr, Size: len(reg.Data), Verified: true, VerifyMethod: "found in place by the chip's checksum"}
		if _, err := r.inv.RecordWrite(r.info, img.name, img.version, res); err != nil {
			r.note(KindWarning, "inventory: %v", err)
		}
	}
}

// imageInPlace asks the chip whether every region of the image is in
// flash (its own checksum).
func (r *runner) imageInPlace(ctx context.Context) (bool, error) {
	if r.inPlace {
		return true, nil
	}
	for _, reg := range r.img.place.Regions {
		switch err := r.dev.Verify(ctx, reg.Addr, reg.Data); {
		case errors.Is(err, flasher.ErrVerify):
			return false, nil
		case err != nil:
			return false, err
		}
	}
	r.inPlace = true
	return true, nil
}

func (r *runner) firmware(ctx context.Context) (Status, string, error) {
	img, err := r.needImage(ctx)
	if r.o.DryRun && errors.Is(err, firmware.ErrNotCached) {
		return StatusPlanned, fmt.Sprintf("would download %s for %s into the cache (%v)", r.spec(), r.info.Family, err), nil
	}
	if err != nil {
		return "", "", err
	}
	size, regions := 0, make([]inventory.MigrationRegion, 0, len(img.place.Regions))
	for _, reg := range img.place.Regions {
		sum := sha256.Sum256(reg.Data)
		regions = append(regions, inventory.MigrationRegion{Addr: reg.Addr, Size: len(reg.Data), SHA256: hex.EncodeToString(sum[:])})
		size += len(reg.Data)
	}
	rec := inventory.MigrationImage{Firmware: img.name, Version: img.version, Source: img.spec, SHA256: img.sha,
		Format: string(img.place.Format), Regions: regions}
	if err := r.journal(func(m *inventory.Migration) { m.Image = &rec }); err != nil {
		return "", "", err
	}
	wire := 0.0
	for _, p := range img.plans {
		wire += p.WireSeconds
	}
	msg := fmt.Sprintf("%s (%s, %s): %d KiB at 0x%06X, about %.0f s on the wire", img.label(), img.place.Format, img.res.Detection.Name,
		(size+1023)/1024, img.place.Regions[0].Addr, wire)
	if f := img.res.Fetch; f != nil {
		msg += fmt.Sprintf("; %s", f.Status)
	}
	if r.o.DryRun {
		return StatusPlanned, msg, nil
	}
	return StatusDone, msg, nil
}

// write writes and verifies the image; an image the chip confirms is in
// place already is not written again.
func (r *runner) write(ctx context.Context) (Status, string, error) {
	img, err := r.needImage(ctx)
	if r.o.DryRun && errors.Is(err, firmware.ErrNotCached) {
		return StatusPlanned, "would write the downloaded image", nil
	}
	if err != nil {
		return "", "", err
	}
	if r.bk == nil && !r.bkPlanned && !r.o.Yes {
		return "", "", &flasher.HintError{Err: fmt.Errorf("no verified backup of this device on record: %w", flasher.ErrRefused),
			Hint: "run without --from so that the backup step takes one (the stock firmware cannot be downloaded anywhere), or give --yes to write without it"}
	}
	if m := r.past; m != nil && m.StepStatus(string(StepWrite)) != "" && m.Image != nil && m.Image.SHA256 == img.sha {
		// An earlier run wrote (or began to write) this image.
		ok, err := r.imageInPlace(ctx)
		if err != nil && !errors.Is(err, flasher.ErrUnsupported) {
			return "", "", err
		}
		for _, reg := range img.place.Regions {
			// Cut between erasing and programming the rest of its
			// last sector: written again (what matches is skipped).
			ok = ok && !ops.WriteUnfinished(r.o.BackupRoot, r.info, reg.Addr, reg.Data)
		}
		if ok {
			r.recordInPlace(img)
			return StatusReused, fmt.Sprintf("%s is already in place at 0x%06X (confirmed by the chip's checksum)", img.label(), img.place.Regions[0].Addr), nil
		}
	}
	if r.o.DryRun {
		var b strings.Builder
		for i, p := range img.plans {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(strings.ReplaceAll(p.String(), "\n  ", "; "))
		}
		return StatusPlanned, b.String(), nil
	}
	var total, erased, skipped int
	method := ""
	for i, reg := range img.place.Regions {
		res, err := ops.WriteKeeping(ctx, r.dev, r.o.BackupRoot, reg.Addr, reg.Data, r.progress(), func(msg string) { r.note(KindWarning, "%s", msg) })
		if err != nil {
			if flasher.Hint(err) == "" {
				err = &flasher.HintError{Err: err, Hint: "the chip is still in download mode and nothing was lost: run the same command again; sectors already written are skipped"}
			}
			return "", "", err
		}
		if !res.Verified {
			r.note(KindWarning, "region %d at 0x%06X written but NOT verified (%s)", i+1, res.Addr, res.VerifyMethod)
		}
		if _, err := r.inv.RecordWrite(r.info, img.name, img.version, res); err != nil {
			r.note(KindWarning, "inventory: %v", err)
		}
		total, erased, skipped, method = total+res.Size, erased+res.Erased, skipped+res.Skipped, res.VerifyMethod
	}
	if err := r.save(); err != nil {
		return "", "", err
	}
	r.inPlace = true
	return StatusDone, fmt.Sprintf("%s: %d KiB written (%d KiB already in place), verified by %s", img.label(), total/1024, skipped/1024, method), nil
}

// reboot starts the new firmware, or tells the user to power-cycle.
func (r *runner) reboot(ctx context.Context) (Status, string, error) {
	if r.o.DryRun {
		return StatusPlanned, "would start the new firmware (by command where the chip can, else by asking for a power-cycle)", nil
	}
	manual, err := r.dev.Reboot(ctx)
	r.inDownload = false
	switch {
	case err != nil:
		msg := fmt.Sprintf("the reboot command failed (%v): power-cycle the module now", err)
		r.note(KindAction, "%s", msg)
		return StatusDone, msg, nil
	case manual != "":
		r.note(KindAction, "%s", manual)
		if f, ok := r.link.(RebootFollower); ok {
			f.FollowReboot()
		}
		return StatusDone, manual, nil
	}
	return StatusDone, "rebooted by command", nil
}

// resumeOnline picks, for a run that starts after the reboot, the device
// whose migration on this port wrote its firmware.
func (r *runner) resumeOnline(ctx context.Context) error {
	for _, d := range r.inv.MigrationsOnPort(r.file) {
		m := d.Migration
		if m.StepStatus(string(StepWrite)) != inventory.StepDone {
			continue
		}
		if err := r.setKey(d.Key); err != nil {
			return err
		}
		m = r.past
		r.info = flasher.Info{Family: flasher.Family(d.Family), FlashSize: d.FlashSize}
		if mac, err := flasher.ParseMAC(d.MAC); err == nil && d.MAC != "" {
			r.info.MAC, r.info.MACFrom = mac, "inventory"
		}
		if m.Virtual != "" {
			r.virt = &Virtual{Station: m.Virtual}
		}
		if IsVirtualPort(r.port) {
			// A virtual device of this process lives as long as a port
			// of it is open: its console keeps it running (and says
			// where its access point is).
			p, err := r.o.Connector.Console(ctx, r.port)
			if err != nil {
				return err
			}
			r.console = p
			if v, ok := p.(interface{ Virtual() *Virtual }); ok && v.Virtual() != nil {
				r.virt = v.Virtual()
			}
		}
		if m.Image != nil {
			r.fw, _ = postflash.ParseFirmware(m.Image.Firmware)
			r.fwLabel = strings.TrimSpace(m.Image.Firmware + " " + m.Image.Version)
			r.res.Firmware = r.fwLabel
		}
		if m.Backup != nil {
			r.res.Backup = m.Backup.Path
		}
		r.res.Chip, r.res.MAC, r.res.Virtual, r.res.Host = d.Family, d.MAC, r.virt != nil, m.Host
		return r.claim(ctx)
	}
	return &flasher.HintError{Err: fmt.Errorf("--from %s: no migration on %s has written its firmware yet: %w", r.o.From, r.label, flasher.ErrRefused),
		Hint: "run without --from (the device must be in download mode), or name the port the device was flashed on"}
}
