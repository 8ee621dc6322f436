package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"github.com/tuyaflash/tuyaflash/backup"
	"github.com/tuyaflash/tuyaflash/firmware"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/internal/safefile"
	"github.com/tuyaflash/tuyaflash/internal/session"
	"github.com/tuyaflash/tuyaflash/inventory"
	"github.com/tuyaflash/tuyaflash/ops"
	"github.com/tuyaflash/tuyaflash/transport"
)

func init() {
	register(&command{name: "ports", summary: "list serial ports and USB-serial adapters", run: runPorts})
	register(&command{name: "detect", summary: "identify the chip: family, bootloader, flash id and size, MAC, eFuse key", device: true, verbose: deviceVerbose, run: runDetect,
		long: "Put the module in download mode when asked: power-cycle it (or short CEN to GND for a moment) while tuyaflash waits."})
	register(backupCmd())
	register(writeCmd())
	register(restoreCmd())
}

type portsDoc struct {
	header
	Ports []transport.PortInfo `json:"ports"`
}

func runPorts(e *env, args []string) error {
	if len(args) > 0 {
		return usagef("ports takes no arguments")
	}
	list, err := transport.ListPorts()
	if err != nil {
		return fmt.Errorf("list ports: %w", err)
	}
	doc := &portsDoc{Ports: []transport.PortInfo{}}
	for _, p := range list {
		p.VID, p.PID = hexID(p.VID), hexID(p.PID) // "0x1A86", as every id
		doc.Ports = append(doc.Ports, p)
	}
	e.emit(doc)
	if len(list) == 0 {
		fmt.Fprintln(e.stdout, "no serial ports found (plug in the USB-serial adapter; pseudo-terminals are not listed, pass them with --port)")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PORT\tVID:PID\tADAPTER\tPRODUCT")
	for _, p := range list {
		id := "-"
		if p.USB {
			id = strings.ToLower(p.VID + ":" + p.PID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, id, orDash(p.Adapter), p.Product)
	}
	return tw.Flush()
}

// hexID is backup.HexID for the ids of this package's documents.
func hexID(s string) string { return backup.HexID(s) }

// chipJSON is the connected chip in every device command's document.
type chipJSON struct {
	Family         string   `json:"family"`
	Model          string   `json:"model,omitempty"`
	Protocol       string   `json:"protocol"`
	Bootloader     string   `json:"bootloader,omitempty"`
	ChipID         string   `json:"chip_id,omitempty"`
	FlashID        string   `json:"flash_id,omitempty"`
	FlashName      string   `json:"flash_name,omitempty"`
	FlashSize      int      `json:"flash_size"`
	FlashSizeFrom  string   `json:"flash_size_from,omitempty"`
	MAC            string   `json:"mac,omitempty"`
	MACFrom        string   `json:"mac_from,omitempty"`
	MACPlaceholder string   `json:"mac_placeholder,omitempty"`
	EfuseKey       string   `json:"efuse_key,omitempty"`
	EfuseKeyFrom   string   `json:"efuse_key_from,omitempty"`
	CrystalMHz     int      `json:"crystal_mhz,omitempty"`
	Baud           int      `json:"baud"`
	Virtual        bool     `json:"virtual"`
	Notes          []string `json:"notes,omitempty"`
}

func chipDoc(s *session.Session) *chipJSON {
	i := s.Device.Info()
	c := &chipJSON{Family: string(i.Family), Model: i.Model, Protocol: i.Protocol, Bootloader: i.Bootloader, FlashID: hexID(i.FlashIDString()),
		FlashName: i.FlashName, FlashSize: i.FlashSize, FlashSizeFrom: i.FlashSizeFrom, MACFrom: i.MACFrom, EfuseKey: i.EfuseKey,
		EfuseKeyFrom: i.EfuseKeyFrom, CrystalMHz: i.CrystalMHz, Baud: i.Baud, Virtual: s.Virtual != nil, Notes: i.Notes}
	if i.ChipID != 0 {
		c.ChipID = fmt.Sprintf("0x%X", i.ChipID)
	}
	if i.HasMAC() {
		c.MAC = i.MAC.String()
		if ph, why := i.MAC.Placeholder(); ph {
			c.MACPlaceholder = why
		}
	}
	return c
}

type detectDoc struct {
	header
	Chip *chipJSON `json:"chip"`
}

func runDetect(e *env, args []string) error {
	if len(args) > 0 {
		return usagef("detect takes no arguments")
	}
	if err := e.requirePort(); err != nil {
		return err
	}
	s, err := e.connect()
	if err != nil {
		return err
	}
	defer s.Close()
	info := s.Device.Info()
	e.recordDevice(s, func(inv *inventory.Inventory) (inventory.Device, error) {
		d, _ := inv.RecordDetect(info)
		return d, nil
	})
	e.emit(&detectDoc{Chip: chipDoc(s)})
	printInfo(e, info)
	if v := s.Virtual; v != nil {
		fmt.Fprintf(e.stdout, "Virtual:     %s\n", describeVirtual(v))
	}
	return nil
}

// describeVirtual says what a virtual device is and where its network side
// appears: "virtual device (bksim simulating BK7231N; station at …)".
func describeVirtual(v *session.VirtualInfo) string {
	var parts []string
	if v.Sim != "" {
		parts = append(parts, v.Sim+" simulating "+v.Chip)
	}
	if v.InProcess {
		parts = append(parts, "served in this process as "+v.Port+", kept in "+v.Device.Dir)
	}
	if a := v.Addrs; a.Station != "" {
		parts = append(parts, fmt.Sprintf("its firmware's station at %s, access point at %s", a.Station, a.AP))
	}
	return "virtual device (" + strings.Join(parts, "; ") + ")"
}

func printInfo(e *env, i flasher.Info) {
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	if i.Model != "" && i.Model != string(i.Family) {
		fmt.Fprintf(tw, "Chip:\t%s (a %s: reported as %s so that its builds and backups match)\n", i.Family, i.Model, i.Family)
	} else {
		fmt.Fprintf(tw, "Chip:\t%s\n", i.Family)
	}
	fmt.Fprintf(tw, "Protocol:\t%s\n", i.Protocol)
	if i.Bootloader != "" {
		fmt.Fprintf(tw, "Bootloader:\t%s\n", i.Bootloader)
	}
	if i.ChipID != 0 {
		fmt.Fprintf(tw, "Chip id:\t0x%X\n", i.ChipID)
	}
	if id := hexID(i.FlashIDString()); id != "" {
		switch {
		case i.FlashName != "":
			fmt.Fprintf(tw, "Flash id:\t%s (%s)\n", id, i.FlashName)
		case i.Family.Beken():
			fmt.Fprintf(tw, "Flash id:\t%s (not in tuyaflash's table)\n", id)
		default:
			fmt.Fprintf(tw, "Flash id:\t%s\n", id)
		}
	} else {
		fmt.Fprintf(tw, "Flash id:\tnot readable on this chip\n")
	}
	fmt.Fprintf(tw, "Flash size:\t%d KiB (%s)\n", i.FlashSize/1024, i.FlashSizeFrom)
	if i.HasMAC() {
		mac := i.MAC.String()
		if ph, why := i.MAC.Placeholder(); ph {
			mac += " (placeholder: " + why + ")"
		}
		fmt.Fprintf(tw, "MAC:\t%s (%s)\n", mac, i.MACFrom)
	} else {
		fmt.Fprintf(tw, "MAC:\tunknown\n")
	}
	if k := efuseKeyText(i); k != "" {
		fmt.Fprintf(tw, "eFuse key:\t%s\n", k)
		if i.EfuseKeyFrom != "" {
			fmt.Fprintf(tw, "Key from:\t%s\n", i.EfuseKeyFrom)
		}
	}
	if i.CrystalMHz != 0 {
		fmt.Fprintf(tw, "Crystal:\t%d MHz\n", i.CrystalMHz)
	}
	fmt.Fprintf(tw, "Baud:\t%d\n", i.Baud)
	tw.Flush()
}

// efuseKeyText describes a chip's eFuse key for detect. An all-zero key is
// what tells a BK7231M from a BK7231N (Tuya-key bootloaders must never be
// written to it); on the other chips that report it (BK7238, BK7231U,
// BK7252) it is simply the key their known bootloaders are built for.
func efuseKeyText(i flasher.Info) string {
	switch i.EfuseKey {
	case "tuya":
		return "Tuya's (510fb093…)"
	case "zero":
		if i.Family == flasher.BK7231N {
			return "all zero: a BK7231M (write its BK7231M build; never a bootloader built for Tuya's key)"
		}
		return "all zero (the key of this chip's known bootloaders: unencrypted builds)"
	case "other":
		return "neither Tuya's nor all zero"
	}
	return ""
}

// checkWritable makes sure files can be created in dir (creating it),
// before the device is asked for anything.
func checkWritable(dir, what string) error {
	if err := safefile.MkdirAll(dir, 0o700); err != nil {
		return &flasher.HintError{Err: fmt.Errorf("%s %s: %w", what, dir, err), Hint: "choose a folder you can write to"}
	}
	f, err := os.CreateTemp(dir, ".tuyaflash-check-*")
	if err != nil {
		return &flasher.HintError{Err: fmt.Errorf("%s %s is not writable: %w", what, dir, err), Hint: "choose a folder you can write to (were the files made by sudo? then fix their owner)"}
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

type backupDoc struct {
	header
	Chip        *chipJSON       `json:"chip,omitempty"`
	Path        string          `json:"path,omitempty"`
	SidecarPath string          `json:"sidecar_path,omitempty"`
	Resumed     int64           `json:"resumed_bytes"`
	Sidecar     *backup.Sidecar `json:"sidecar,omitempty"`
}

func backupCmd() *command {
	var output, backupDir string
	c := &command{name: "backup", summary: "read the whole flash into a verified, never-overwritten backup file", device: true, verbose: deviceVerbose,
		long: `The dump is verified against the chip's own checksum as it is read (every
64 KiB by the chip's CRC-32 on BK7231, every chunk of up to 64 KiB by the stub's
MD5 on ESP8266), stored with mode 0600 in a folder named after the device (MAC,
or flash id and dump hash when the MAC is a placeholder) under the backup folder,
with a JSON sidecar saying what was verified. An interrupted backup keeps its
verified part and resumes there when run again.`}
	c.flags = func(fs *pflag.FlagSet) {
		fs.StringVarP(&output, "output", "o", "", "write the dump to `file` instead of the backup folder (never overwritten)")
		fs.StringVar(&backupDir, "backup-dir", "", "backup `folder` (default $TUYAFLASH_BACKUP_DIR or ~/.local/share/tuyaflash/backups)")
	}
	c.check = func(e *env, args []string) error {
		if e.g.noStub {
			return usagef("--no-stub: the ESP8266 ROM loader cannot read flash, so a backup needs the flasher stub")
		}
		return nil
	}
	c.run = func(e *env, args []string) error {
		if len(args) > 0 {
			return usagef("backup takes no arguments (use -o FILE to name the dump)")
		}
		if err := e.requirePort(); err != nil {
			return err
		}
		root, err := backupRoot(backupDir)
		if err != nil {
			return err
		}
		if err := checkWritable(root, "backup folder"); err != nil {
			return err
		}
		if output != "" {
			if _, err := os.Lstat(output); err == nil {
				return &flasher.HintError{Err: fmt.Errorf("%s: %w", output, backup.ErrExists), Hint: "tuyaflash never overwrites a backup: choose another -o"}
			}
			if err := checkWritable(filepath.Dir(output), "-o folder"); err != nil {
				return err
			}
		}
		s, err := e.connect()
		if err != nil {
			return err
		}
		defer s.Close()
		info := s.Device.Info()
		doc := &backupDoc{Chip: chipDoc(s)}
		e.emit(doc)
		printInfo(e, info)
		res, err := ops.Backup(e.ctx, s.Device, ops.BackupOptions{
			Root: root, Output: output, ToolVersion: version(), Port: e.g.port,
			Progress: e.progress(), Events: e.events(),
			Started: func(partial string, done int64) {
				e.setStateFunc(func() string {
					if done == 0 {
						return "nothing was read yet; run the same command again"
					}
					return ops.PartialKept(partial, done) // at least; the journal has the rest
				})
			},
		})
		if err != nil {
			return err
		}
		e.setState("the backup was saved as %s", res.Path)
		doc.Path, doc.SidecarPath, doc.Resumed, doc.Sidecar = res.Path, res.Path+".json", res.Resumed, &res.Sidecar
		fmt.Fprintf(e.stdout, "Backup saved: %s\n  %d bytes, sha256 %s\n  sidecar %s.json\n", res.Path, res.Sidecar.Size, res.Sidecar.SHA256, res.Path)
		cfg := e.afterBackup(info.Family, res.Path)
		e.recordDevice(s, func(inv *inventory.Inventory) (inventory.Device, error) {
			d, err := inv.RecordBackup(info, res.Path, res.Sidecar)
			if err == nil && cfg != nil {
				d, err = inv.RecordTuyaConfig(d.Key, cfg)
			}
			return d, err
		})
		return nil
	}
	return c
}

func backupRoot(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	return backup.DefaultRoot()
}

// addrValue is a flash address flag printed in hex.
type addrValue struct {
	v   *uint32
	set bool
}

func (a *addrValue) String() string {
	if !a.set {
		return ""
	}
	return backup.HexAddr(*a.v)
}
func (a *addrValue) Set(s string) error {
	n, err := strconv.ParseUint(s, 0, 32)
	if err != nil {
		return fmt.Errorf("not an address: %q (use 0x11000 or 69632)", s)
	}
	*a.v, a.set = uint32(n), true
	return nil
}
func (a *addrValue) Type() string { return "addr" }

// writeFlags are write's flags.
type writeFlags struct {
	addr                            uint32
	av                              *addrValue
	dryRun, noReboot, includeBoot   bool
	raw, yes                        bool
	spec, flashMode, flashSize, frq string
	ff                              firmwareFlags
}

func writeCmd() *command {
	w := &writeFlags{}
	w.av = &addrValue{v: &w.addr}
	c := &command{name: "write", args: "[FILE]", summary: "erase, write and verify firmware: a file or a catalogue name", device: true, verbose: deviceVerbose,
		long: `FILE (or --firmware FILE) is detected by its content and written where it belongs:
an OpenBeken UA app at 0x11000, a QIO image from 0x11000 keeping the chip's
bootloader (whole from 0x0 on a BK7238 or BK7252N, as OpenBeken ships it for
them), an ESP8266 image at 0x0 with its header set to --flash-mode, a UF2's
parts at their offsets. --firmware NAME takes a build from the catalogue
('tuyaflash firmware list'), downloaded and checked before the power-cycle
prompt (with --chip only that chip's build, else every build of NAME).
Refused: an image for another chip, anything below 0x11000 on a BK7231T/U or
BK7252 (their bootloader answers the UART), an
image larger than the flash, a header that claims more flash than the chip
has, a bootloader for another eFuse key, and a device with no verified backup
on record unless --yes. Sectors already holding the data are skipped, so
re-running an interrupted write resumes it.`}
	c.flags = func(fs *pflag.FlagSet) {
		fs.StringVar(&w.spec, "firmware", "", "catalogue `name` (tasmota, openbeken …) or image file")
		fs.Var(w.av, "addr", "flash `address`; normally taken from the image (required with --raw)")
		fs.BoolVar(&w.includeBoot, "include-bootloader", false, "BK7231N/M QIO image: write its bootloader too (refused unless the chip's eFuse key matches it; BK7238 and BK7252N take their QIO image whole anyway, the bootloader-based BK7231T/U and BK7252 never)")
		fs.StringVar(&w.flashMode, "flash-mode", "dout", "ESP8266 image at 0x0: flash `mode` in its header: keep, qio, qout, dio or dout (Tasmota needs dout; without this flag the catalogue's mode, else dout)")
		fs.StringVar(&w.flashSize, "flash-size", "keep", "ESP8266 image at 0x0: flash `size` in its header (keep, 1MB, 2MB, 4MB …; never more than the chip has)")
		fs.StringVar(&w.frq, "flash-freq", "keep", "ESP8266 image at 0x0: flash `frequency` in its header (keep, 40m, 26m, 20m, 80m)")
		fs.BoolVar(&w.raw, "raw", false, "write FILE as it is at --addr: no detection, no gates but the flash's bounds and the BK7231T bootloader")
		fs.BoolVar(&w.yes, "yes", false, "write even though no verified backup of this device is on record")
		fs.BoolVar(&w.dryRun, "dry-run", false, "connect and show what would be written, change nothing")
		fs.BoolVar(&w.noReboot, "no-reboot", false, "stay in download mode after writing")
		w.ff.add(fs)
	}
	c.check = func(e *env, args []string) error { return w.check(e, args) }
	c.run = func(e *env, args []string) error { return w.run(e, args) }
	return c
}

// espHeaderFlags are the flags that only change an ESP8266 image header.
var espHeaderFlags = []string{"flash-mode", "flash-size", "flash-freq"}

// check refuses flag combinations write would ignore.
func (w *writeFlags) check(e *env, args []string) error {
	switch {
	case len(args) > 1:
		return usagef("write takes one image file")
	case len(args) == 1 && w.spec != "":
		return usagef("give the image as FILE or as --firmware, not both")
	case len(args) == 1:
		w.spec = args[0]
	case w.spec == "":
		return usagef("say what to write: a FILE, or --firmware NAME (see 'tuyaflash firmware list')")
	}
	if w.dryRun && w.noReboot {
		return usagef("--no-reboot does nothing with --dry-run (a dry run writes nothing and never reboots)")
	}
	if w.dryRun && w.yes {
		return usagef("--yes does nothing with --dry-run (a dry run writes nothing)")
	}
	if w.raw {
		if !w.av.set {
			return usagef("--raw needs --addr")
		}
		for _, f := range append([]string{"include-bootloader"}, espHeaderFlags...) {
			if e.changed(f) {
				return usagef("--%s does nothing with --raw (the file is written as it is)", f)
			}
		}
	}
	if fam := e.knownFamily(); fam.Beken() {
		for _, f := range espHeaderFlags {
			if e.changed(f) {
				return usagef("--%s applies to ESP8266 images, not to a %s", f, fam)
			}
		}
	} else if fam.Espressif() && e.changed("include-bootloader") {
		return usagef("--include-bootloader applies to Beken QIO images, not to an %s", fam)
	}
	if st, err := os.Stat(w.spec); err == nil && st.Mode().IsRegular() || w.raw {
		for _, f := range []string{"manifest", "cache-dir", "offline", "allow-http"} {
			if e.changed(f) {
				return usagef("--%s applies to catalogue names; %s is a local file", f, w.spec)
			}
		}
	} else if firmware.IsDemoName(w.spec) {
		for _, f := range []string{"manifest", "cache-dir", "offline"} {
			if e.changed(f) {
				return usagef("--%s applies to catalogue names; the demo image is built in", f)
			}
		}
	}
	return nil
}

// placeOptions are the user's choices for firmware.Place.
func (w *writeFlags) placeOptions(e *env, r *firmware.Resolved) firmware.PlaceOptions {
	o := firmware.PlaceOptions{IncludeBootloader: w.includeBoot, FlashSize: w.flashSize, FlashFreq: w.frq}
	if r != nil {
		o = r.Options
		o.IncludeBootloader, o.FlashSize, o.FlashFreq = w.includeBoot, w.flashSize, w.frq
	}
	if o.FlashMode == "" || e.changed("flash-mode") {
		o.FlashMode = w.flashMode
	}
	if w.av.set {
		o.Addr = &w.addr
	}
	return o
}

// prepare does everything that needs no chip: reads and detects a file,
// or downloads (or finds in the cache) the catalogue builds NAME may mean,
// and applies every gate the known family allows.
func (w *writeFlags) prepare(e *env) (m *firmware.Manifest, cache *firmware.Cache, err error) {
	fam := e.knownFamily()
	if firmware.IsDemoName(w.spec) {
		e.askVirtual = true // resolved for the chip found, once it said it is virtual
		return nil, nil, nil
	}
	file, err := firmware.LocalSpec(w.spec)
	if err != nil {
		return nil, nil, err
	}
	if file {
		r, err := firmware.Resolve(e.ctx, w.spec, firmware.Chip{Family: fam}, nil, nil)
		if err != nil {
			return nil, nil, err
		}
		e.askVirtual = r.Detection.Demo != nil
		if r.Detection.Arch == firmware.ArchBeken {
			for _, f := range espHeaderFlags {
				if e.changed(f) {
					return nil, nil, usagef("--%s applies to ESP8266 images; %s is a %s", f, w.spec, r.Detection.Describe())
				}
			}
		}
		return nil, nil, firmware.Precheck(fam, r.Detection, w.placeOptions(e, r))
	}
	m, cache, err = w.ff.open(e)
	if err != nil {
		return nil, nil, err
	}
	e.setState("interrupted while fetching %s: the part already downloaded is kept in the cache; run the same command again to resume", w.spec)
	results, err := firmware.Prefetch(e.ctx, m, w.spec, fam, cache)
	if err != nil {
		return nil, nil, err
	}
	for _, r := range results {
		fmt.Fprintf(e.stderr, "%s: %s (%s)\n", w.spec, r.Path, r.Status)
		if r.Status == firmware.StatusPinned {
			fmt.Fprintf(e.stderr, "  %s\n", pinnedNowText(cache.PinsPath()))
		}
	}
	return m, cache, nil
}

func (w *writeFlags) run(e *env, _ []string) error {
	if err := e.requirePort(); err != nil {
		return err
	}
	if w.raw {
		return w.writeRaw(e)
	}
	m, cache, err := w.prepare(e)
	if err != nil {
		return err
	}
	s, err := e.connect()
	if err != nil {
		return err
	}
	defer s.Close()
	info := s.Device.Info()
	doc := &writeDoc{Chip: chipDoc(s), DryRun: w.dryRun}
	e.emit(doc)
	if info.Family.Beken() {
		for _, f := range espHeaderFlags {
			if e.changed(f) {
				return usagef("--%s applies to ESP8266 images, not to a %s", f, info.Family)
			}
		}
	}
	var r *firmware.Resolved
	if firmware.IsDemoName(w.spec) {
		r, err = firmware.ResolveDemo(firmware.ChipOf(info))
	} else {
		r, err = firmware.Resolve(e.ctx, w.spec, firmware.ChipOf(info), m, cache)
	}
	if err != nil {
		return err
	}
	if err := firmware.DemoGate(r.Detection, s.Virtual != nil); err != nil {
		return err
	}
	p, err := firmware.Place(info, r.Detection, w.placeOptions(e, r))
	if err != nil {
		return err
	}
	var jobs []writeJob
	for i, reg := range p.Regions {
		plan, err := ops.PlanWrite(s.Device, reg.Addr, reg.Data)
		if err != nil {
			return err
		}
		if i == 0 {
			plan.Skip = p.Skip
			plan.Notes = append(plan.Notes, p.Notes...)
			if r.Fetch != nil {
				plan.Notes = append(plan.Notes, fmt.Sprintf("%s: %s", r.Fetch.Path, r.Fetch.Status))
			}
		}
		jobs = append(jobs, writeJob{plan, reg.Data})
	}
	fw, ver := writtenFirmware(w.spec, r.Choice.Firmware)
	return e.doWrite(s, doc, jobs, writeOpts{dryRun: w.dryRun, noReboot: w.noReboot, yes: w.yes, fw: fw, ver: ver, checkRF: true})
}

// writtenFirmware names what is written, for the inventory: the catalogue
// entry, else what the file name says, else the file name.
func writtenFirmware(spec string, entry *firmware.Firmware) (fw, ver string) {
	if entry != nil {
		return entry.Name, entry.Version
	}
	if fw, ver = inventory.GuessFirmware(filepath.Base(spec)); fw == "" {
		fw = filepath.Base(spec)
	}
	return fw, ver
}

// writeRaw writes a file as it is (--raw).
func (w *writeFlags) writeRaw(e *env) error {
	data, err := os.ReadFile(w.spec)
	if err != nil {
		return err
	}
	if len(data) == 0 {
		return fmt.Errorf("%s is empty: %w", w.spec, flasher.ErrRefused)
	}
	if err := ops.PrecheckWrite(e.knownFamily(), w.addr, len(data)); err != nil {
		return err
	}
	s, err := e.connect()
	if err != nil {
		return err
	}
	defer s.Close()
	doc := &writeDoc{Chip: chipDoc(s), DryRun: w.dryRun}
	e.emit(doc)
	plan, err := ops.PlanWrite(s.Device, w.addr, data)
	if err != nil {
		return err
	}
	plan.Notes = append(plan.Notes, "--raw: written as it is, no image checks")
	fw, ver := writtenFirmware(w.spec, nil)
	return e.doWrite(s, doc, []writeJob{{plan, data}}, writeOpts{dryRun: w.dryRun, noReboot: w.noReboot, yes: w.yes, fw: fw, ver: ver, checkRF: true})
}

// writeJob is one region to write.
type writeJob struct {
	plan ops.Plan
	data []byte
}

// planJSON is one region of a write in write's and restore's documents.
type planJSON struct {
	Addr        string   `json:"addr"`
	End         string   `json:"end"`
	Size        int      `json:"size"`
	Skip        int      `json:"skip,omitempty"`
	Sectors     int      `json:"sectors"`
	WireSeconds float64  `json:"wire_seconds"`
	Notes       []string `json:"notes,omitempty"`
}

// resultJSON is what writing one region did.
type resultJSON struct {
	Addr         string `json:"addr"`
	Size         int    `json:"size"`
	Erased       int    `json:"erased_bytes"`
	Skipped      int    `json:"skipped_bytes"`
	Retries      int    `json:"retries"`
	Verified     bool   `json:"verified"`
	VerifyMethod string `json:"verify_method"`
}

// writeDoc is write's and restore's document.
type writeDoc struct {
	header
	Chip    *chipJSON    `json:"chip,omitempty"`
	DryRun  bool         `json:"dry_run"`
	Plans   []planJSON   `json:"plans"`
	Results []resultJSON `json:"results"`
	RF      *rfJSON      `json:"rf,omitempty"`
	Reboot  string       `json:"reboot,omitempty"`
}

// rfJSON is what the check of the RF calibration sector after a write
// found (chips whose row asks for it: BK7238).
type rfJSON struct {
	OK         bool     `json:"ok"`
	MAC        string   `json:"mac,omitempty"`
	At         string   `json:"at"`
	CopiedFrom string   `json:"copied_from,omitempty"`
	Notes      []string `json:"notes,omitempty"`
	Warnings   []string `json:"warnings,omitempty"`
}

// writeOpts say how doWrite writes and what it records.
type writeOpts struct {
	dryRun, noReboot, yes bool
	// fw and ver name what is written, for the inventory.
	fw, ver string
	// checkRF: after writing firmware, check that the MAC is still where
	// the firmware looks for it (ops.CheckRF; not after a restore, which
	// puts back the device's own layout).
	checkRF bool
}

// doWrite writes the jobs (after the stock-safety gate), reboots the chip
// and records in the inventory what was written.
func (e *env) doWrite(s *session.Session, doc *writeDoc, jobs []writeJob, o writeOpts) error {
	doc.Plans, doc.Results = []planJSON{}, []resultJSON{}
	for _, j := range jobs {
		p := j.plan
		doc.Plans = append(doc.Plans, planJSON{Addr: backup.HexAddr(p.Addr), End: backup.HexAddr(p.Addr + uint32(p.Size) - 1), Size: p.Size, Skip: p.Skip,
			Sectors: p.Sectors, WireSeconds: p.WireSeconds, Notes: p.Notes})
	}
	if o.dryRun {
		fmt.Fprintln(e.stdout, "Dry run, nothing written:")
		for _, j := range jobs {
			fmt.Fprintln(e.stdout, j.plan)
		}
		return nil
	}
	if err := e.requireBackup(s, o.yes, e.g.port); err != nil {
		return err
	}
	e.setStateFunc(func() string {
		op, at, _ := e.track.position()
		if op == "" {
			return "the chip is still in download mode; nothing was written yet"
		}
		return fmt.Sprintf("writing stopped at 0x%06X; the chip is still in download mode: run the same command again to resume (sectors already written are skipped)", at)
	})
	for _, j := range jobs {
		if !e.g.json {
			fmt.Fprintf(e.stderr, "%s\n", j.plan)
		}
		res, err := s.Device.Write(e.ctx, j.plan.Addr, j.data, e.progress())
		if err != nil {
			if flasher.Hint(err) == "" && e.ctx.Err() == nil {
				err = &flasher.HintError{Err: err, Hint: "the chip is still in download mode and nothing was lost: run the same command again; sectors already written are skipped"}
			}
			return err
		}
		doc.Results = append(doc.Results, resultJSON{Addr: backup.HexAddr(res.Addr), Size: res.Size, Erased: res.Erased, Skipped: res.Skipped,
			Retries: res.Retries, Verified: res.Verified, VerifyMethod: res.VerifyMethod})
		if res.Verified {
			fmt.Fprintf(e.stdout, "Wrote %d bytes at 0x%06X: %d KiB erased, %d KiB already in place, verified by %s", res.Size, res.Addr, res.Erased/1024, res.Skipped/1024, res.VerifyMethod)
		} else {
			fmt.Fprintf(e.stdout, "Wrote %d bytes at 0x%06X, NOT verified (%s; a flasher stub can verify)", res.Size, res.Addr, res.VerifyMethod)
		}
		if res.Retries > 0 {
			fmt.Fprintf(e.stdout, " (%d sector retries)", res.Retries)
		}
		fmt.Fprintln(e.stdout)
	}
	if o.checkRF {
		if err := e.checkRF(s, doc, jobs); err != nil {
			return err
		}
	}
	e.setState("everything was written and verified; the chip was not rebooted yet (power-cycle it)")
	e.recordDevice(s, func(inv *inventory.Inventory) (d inventory.Device, err error) {
		for _, res := range doc.Results {
			addr, _ := strconv.ParseUint(res.Addr, 0, 32)
			wr := flasher.WriteResult{Addr: uint32(addr), Size: res.Size, Erased: res.Erased, Skipped: res.Skipped, Retries: res.Retries, Verified: res.Verified, VerifyMethod: res.VerifyMethod}
			if d, err = inv.RecordWrite(s.Device.Info(), o.fw, o.ver, wr); err != nil {
				return d, err
			}
		}
		return d, nil
	})
	doc.Reboot = "stayed in download mode (--no-reboot)"
	if !o.noReboot {
		manual, err := s.Device.Reboot(e.ctx)
		switch {
		case err != nil:
			doc.Reboot = "reboot command failed: " + err.Error() + "; power-cycle the device"
		case manual != "":
			doc.Reboot = manual
		default:
			doc.Reboot = "rebooted"
		}
	}
	fmt.Fprintf(e.stdout, "Device: %s\n", doc.Reboot)
	return nil
}

// checkRF checks the RF calibration sector after a firmware write where the
// chip table asks for it, and says what it found and did.
func (e *env) checkRF(s *session.Session, doc *writeDoc, jobs []writeJob) error {
	var plans []ops.Plan
	for _, j := range jobs {
		plans = append(plans, j.plan)
	}
	r, err := ops.CheckRF(e.ctx, s.Device, plans)
	if r == nil {
		return err
	}
	doc.RF = &rfJSON{OK: r.OK, At: backup.HexAddr(r.At), Notes: r.Notes, Warnings: r.Warnings}
	if r.Found {
		doc.RF.MAC = r.MAC.String()
	}
	if r.Copied {
		doc.RF.CopiedFrom = backup.HexAddr(r.From)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(e.stdout, "RF: %s\n", n)
	}
	for _, w := range r.Warnings {
		e.events().Emit(flasher.Warning, w)
	}
	return err
}

func restoreCmd() *command {
	var force, dryRun, noReboot, yes bool
	c := &command{name: "restore", args: "BACKUP", summary: "write a backup back after checking it belongs to this chip", device: true, verbose: deviceVerbose,
		long: `The backup must be whole (its sha256 matches its sidecar) and its sidecar must
match the connected chip: family, flash size, flash id, MAC where known.
--force restores a backup whose flash size, flash id or MAC differ (the
differences are listed) and a dump without a sidecar; a backup of another chip
family is refused even with --force, since it cannot boot. Restoring a backup
that is not this device's own needs a backup of this device on record, or
--yes. On a BK7231T the bootloader stays as it is.`}
	c.flags = func(fs *pflag.FlagSet) {
		fs.BoolVar(&force, "force", false, "restore even if the backup's flash size, flash id or MAC differ from the chip's (never another family)")
		fs.BoolVar(&yes, "yes", false, "restore a foreign backup even though no backup of this device is on record")
		fs.BoolVar(&dryRun, "dry-run", false, "connect and show what would be written, change nothing")
		fs.BoolVar(&noReboot, "no-reboot", false, "stay in download mode after writing")
	}
	c.check = func(e *env, args []string) error {
		if len(args) != 1 {
			return usagef("restore needs exactly one backup file")
		}
		if dryRun && noReboot {
			return usagef("--no-reboot does nothing with --dry-run (a dry run writes nothing and never reboots)")
		}
		if yes && (dryRun || !force) {
			return usagef("--yes goes with --force and without --dry-run: it lets a forced restore of another device's backup write a device with no backup of its own on record")
		}
		return nil
	}
	c.run = func(e *env, args []string) error {
		if err := e.requirePort(); err != nil {
			return err
		}
		b, err := loadRestore(args[0], force)
		if err != nil {
			return err
		}
		if err := restoreFamilyGate(b, detectedFamily(e.knownFamily())); err != nil {
			return err
		}
		s, err := e.connect()
		if err != nil {
			return err
		}
		defer s.Close()
		doc := &writeDoc{Chip: chipDoc(s), DryRun: dryRun}
		e.emit(doc)
		if err := restoreFamilyGate(b, s.Family); err != nil {
			return err
		}
		plan, data, err := ops.RestorePlan(s.Device, b, force)
		if err != nil {
			return err
		}
		own := ops.MatchSidecar(s.Device.Info(), b.Sidecar) == nil && b.Sidecar.MAC != "" && b.Sidecar.MACPlaceholder == ""
		for _, n := range plan.Notes {
			if strings.HasPrefix(n, "--force overrides") {
				e.events().Emit(flasher.Warning, n)
			}
		}
		ver := b.Sidecar.SHA256
		if len(ver) > 12 {
			ver = ver[:12]
		}
		return e.doWrite(s, doc, []writeJob{{plan, data}}, writeOpts{dryRun: dryRun, noReboot: noReboot, yes: yes || own, fw: inventory.FirmwareStock, ver: ver})
	}
	return c
}

// loadRestore loads a backup and checks it is whole.
func loadRestore(path string, force bool) (*backup.Backup, error) {
	b, err := backup.Load(path, force)
	switch {
	case errors.Is(err, backup.ErrNoSidecar):
		return nil, &flasher.HintError{Err: err, Hint: "without its sidecar tuyaflash cannot tell whose backup this is; --force restores it anyway (its content must still be a dump of this chip's family)"}
	case errors.Is(err, backup.ErrCorrupt):
		return nil, &flasher.HintError{Err: err, Hint: "this file is not the dump its sidecar describes; do not restore it (a truncated or modified dump can brick the device)"}
	case err != nil:
		return nil, err
	}
	if len(b.Data) == 0 {
		return nil, fmt.Errorf("%s is empty: %w", path, flasher.ErrRefused)
	}
	return b, nil
}

// restoreFamilyGate refuses a backup of another chip family than fam
// (when known): by its sidecar, or for a dump without one by its content.
// No flag overrides it.
func restoreFamilyGate(b *backup.Backup, fam flasher.Family) error {
	if fam == "" {
		return nil
	}
	what := flasher.Family(b.Sidecar.Family)
	if what == "" {
		if det, err := firmware.Detect(b.Data, b.Path); err == nil {
			switch {
			case det.Family != "":
				what = det.Family
			case det.Arch != firmware.ArchOf(fam):
				what = flasher.Family(det.Arch)
			}
		}
	}
	if what == "" || strings.EqualFold(string(what), string(fam)) || (what == flasher.ESP8266 && fam == flasher.ESP8285) {
		return nil
	}
	return &flasher.HintError{
		Err:  fmt.Errorf("the backup is of a %s, the chip is a %s: %w", what, fam, flasher.ErrRefused),
		Hint: "a dump of another chip family cannot boot on this chip, so no flag overrides this; restore this chip's own backup ('tuyaflash inventory' lists them)",
	}
}

// recordDevice updates the inventory and marks a virtual device as such.
func (e *env) recordDevice(s *session.Session, record func(inv *inventory.Inventory) (inventory.Device, error)) {
	e.recordInventory(func(inv *inventory.Inventory) error {
		d, err := record(inv)
		if err == nil && s.Virtual != nil && d.Key != "" {
			inv.MarkVirtual(d.Key)
		}
		return err
	})
}
