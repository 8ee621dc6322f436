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
	"github.com/tuyaflash/tuyaflash/inventory"
	"github.com/tuyaflash/tuyaflash/ops"
	"github.com/tuyaflash/tuyaflash/transport"
	"github.com/tuyaflash/tuyaflash/tuyaconfig"
)

func init() {
	register(&command{name: "ports", summary: "list serial ports and USB-serial adapters", run: runPorts})
	register(&command{name: "detect", summary: "identify the chip: family, bootloader, flash id and size, MAC, eFuse key", device: true, run: runDetect,
		long: "Put the module in download mode when asked: power-cycle it (or short CEN to GND for a moment) while tuyaflash waits."})
	register(backupCmd())
	register(writeCmd())
	register(restoreCmd())
}

func runPorts(e *env, args []string) error {
	if len(args) > 0 {
		return usagef("ports takes no arguments")
	}
	list, err := transport.ListPorts()
	if err != nil {
		return fmt.Errorf("list ports: %w", err)
	}
	if e.g.json {
		if list == nil {
			list = []transport.PortInfo{}
		}
		return e.printJSON(list)
	}
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
		adapter := p.Adapter
		if adapter == "" {
			adapter = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, id, adapter, p.Product)
	}
	return tw.Flush()
}

// detectJSON is detect's --json output.
type detectJSON struct {
	flasher.Info
	FlashID        string `json:"flash_id,omitempty"`
	MAC            string `json:"mac,omitempty"`
	MACPlaceholder string `json:"mac_placeholder,omitempty"`
}

func infoJSON(i flasher.Info) detectJSON {
	d := detectJSON{Info: i, FlashID: i.FlashIDString()}
	if i.HasMAC() {
		d.MAC = i.MAC.String()
		if ph, why := i.MAC.Placeholder(); ph {
			d.MACPlaceholder = why
		}
	}
	return d
}

func runDetect(e *env, args []string) error {
	if len(args) > 0 {
		return usagef("detect takes no arguments")
	}
	s, err := e.connect()
	if err != nil {
		return err
	}
	defer s.Close()
	info := s.dev.Info()
	e.recordInventory(func(inv *inventory.Inventory) error {
		inv.RecordDetect(info)
		return nil
	})
	if e.g.json {
		return e.printJSON(infoJSON(info))
	}
	printInfo(e, info)
	return nil
}

func printInfo(e *env, i flasher.Info) {
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Chip:\t%s\n", i.Family)
	fmt.Fprintf(tw, "Protocol:\t%s\n", i.Protocol)
	if i.Bootloader != "" {
		fmt.Fprintf(tw, "Bootloader:\t%s\n", i.Bootloader)
	}
	if i.ChipID != 0 {
		fmt.Fprintf(tw, "Chip id:\t0x%X\n", i.ChipID)
	}
	if id := i.FlashIDString(); id != "" {
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
	switch i.EfuseKey {
	case "tuya":
		fmt.Fprintf(tw, "eFuse key:\tTuya's (510fb093…)\n")
	case "zero":
		fmt.Fprintf(tw, "eFuse key:\tall zero (BK7231M-like: never write a Tuya-key bootloader)\n")
	case "other":
		fmt.Fprintf(tw, "eFuse key:\tnot Tuya's\n")
	}
	if i.CrystalMHz != 0 {
		fmt.Fprintf(tw, "Crystal:\t%d MHz\n", i.CrystalMHz)
	}
	fmt.Fprintf(tw, "Baud:\t%d\n", i.Baud)
	tw.Flush()
}

func backupCmd() *command {
	var output, backupDir string
	c := &command{name: "backup", summary: "read the whole flash into a verified, never-overwritten backup file", device: true,
		long: `The dump is verified against the chip's own checksum, stored with mode 0600 in a
folder named after the device (MAC, or flash id and dump hash when the MAC is a
placeholder) under the backup folder, with a JSON sidecar. An interrupted backup
resumes where it stopped when run again.`}
	c.flags = func(fs *pflag.FlagSet) {
		fs.StringVarP(&output, "output", "o", "", "write the dump to `file` instead of the backup folder (never overwritten)")
		fs.StringVar(&backupDir, "backup-dir", "", "backup `folder` (default $TUYAFLASH_BACKUP_DIR or ~/.local/share/tuyaflash/backups)")
	}
	c.run = func(e *env, args []string) error {
		if len(args) > 0 {
			return usagef("backup takes no arguments (use -o FILE to name the dump)")
		}
		root, err := backupRoot(backupDir)
		if err != nil {
			return err
		}
		if output != "" {
			if _, err := os.Lstat(output); err == nil {
				return fmt.Errorf("%s exists; tuyaflash never overwrites a backup (choose another -o): %w", output, flasher.ErrRefused)
			}
		}
		s, err := e.connect()
		if err != nil {
			return err
		}
		defer s.Close()
		info := s.dev.Info()
		if !e.g.json {
			printInfo(e, info)
		}
		res, err := ops.Backup(e.ctx, s.dev, ops.BackupOptions{
			Root: root, Output: output, ToolVersion: version(), Port: e.g.port,
			Progress: e.progress(), Events: e.events(),
		})
		if err != nil {
			return err
		}
		var cfg *tuyaconfig.Config
		if e.g.json {
			err = e.printJSON(res)
		} else {
			fmt.Fprintf(e.stdout, "Backup saved: %s\n  %d bytes, sha256 %s\n  sidecar %s.json\n", res.Path, res.Sidecar.Size, res.Sidecar.SHA256, res.Path)
			cfg = e.afterBackup(info.Family, res.Path)
		}
		e.recordInventory(func(inv *inventory.Inventory) error {
			d, err := inv.RecordBackup(info, res.Path, res.Sidecar)
			if err == nil && cfg != nil {
				_, err = inv.RecordTuyaConfig(d.Key, cfg)
			}
			return err
		})
		return err
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
	return fmt.Sprintf("0x%X", *a.v)
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

func writeCmd() *command {
	var addr uint32
	av := &addrValue{v: &addr}
	var dryRun, noReboot, includeBoot, raw bool
	var spec, flashMode, flashSize, flashFreq string
	var ff firmwareFlags
	c := &command{name: "write", args: "[FILE]", summary: "erase, write and verify firmware: a file or a catalogue name", device: true,
		long: `FILE (or --firmware FILE) is detected by its content and written where it belongs:
an OpenBeken UA app at 0x11000, a QIO image from 0x11000 keeping the chip's
bootloader, an ESP8266 image at 0x0 with its header set to --flash-mode, a UF2's
parts at their offsets. --firmware NAME takes a build from the catalogue
('tuyaflash firmware list'), downloads and checks it. Refused: an image for
another chip, anything below 0x11000 on a BK7231T, an image larger than the
flash, a bootloader for another eFuse key. Sectors already holding the data are
skipped, so re-running an interrupted write resumes it.`}
	c.flags = func(fs *pflag.FlagSet) {
		fs.StringVar(&spec, "firmware", "", "catalogue `name` (tasmota, openbeken …) or image file")
		fs.Var(av, "addr", "flash `address`; normally taken from the image (required with --raw)")
		fs.BoolVar(&includeBoot, "include-bootloader", false, "BK7231N QIO image: write its bootloader too (refused unless the chip's eFuse key matches it)")
		fs.StringVar(&flashMode, "flash-mode", "dout", "ESP8266 image at 0x0: flash `mode` in its header: keep, qio, qout, dio or dout (Tasmota needs dout; default: the catalogue's, else dout)")
		fs.StringVar(&flashSize, "flash-size", "keep", "ESP8266 image at 0x0: flash `size` in its header (keep, 1MB, 2MB, 4MB …)")
		fs.StringVar(&flashFreq, "flash-freq", "keep", "ESP8266 image at 0x0: flash `frequency` in its header (keep, 40m, 26m, 20m, 80m)")
		fs.BoolVar(&raw, "raw", false, "write FILE as it is at --addr: no detection, no gates but the flash's bounds and the BK7231T bootloader")
		fs.BoolVar(&dryRun, "dry-run", false, "connect and show what would be written, change nothing")
		fs.BoolVar(&noReboot, "no-reboot", false, "stay in download mode after writing")
		ff.add(fs)
	}
	c.run = func(e *env, args []string) error {
		switch {
		case len(args) > 1:
			return usagef("write takes one image file")
		case len(args) == 1 && spec != "":
			return usagef("give the image as FILE or as --firmware, not both")
		case len(args) == 1:
			spec = args[0]
		case spec == "":
			return usagef("say what to write: a FILE, or --firmware NAME (see 'tuyaflash firmware list')")
		}
		if raw {
			return e.writeRaw(spec, av, dryRun, noReboot)
		}
		m, cache, err := ff.open(e)
		if err != nil {
			return err
		}
		s, err := e.connect()
		if err != nil {
			return err
		}
		defer s.Close()
		info := s.dev.Info()
		r, err := firmware.Resolve(e.ctx, spec, firmware.ChipOf(info), m, cache)
		if err != nil {
			return err
		}
		o := r.Options
		o.IncludeBootloader = includeBoot
		if o.FlashMode == "" || e.changed("flash-mode") {
			o.FlashMode = flashMode
		}
		o.FlashSize, o.FlashFreq = flashSize, flashFreq
		if av.set {
			o.Addr = &addr
		}
		p, err := firmware.Place(info, r.Detection, o)
		if err != nil {
			return err
		}
		var jobs []writeJob
		for i, reg := range p.Regions {
			plan, err := ops.PlanWrite(s.dev, reg.Addr, reg.Data)
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
		fw, ver := writtenFirmware(spec, r.Choice.Firmware)
		return e.doWrite(s, jobs, dryRun, noReboot, fw, ver)
	}
	return c
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
func (e *env) writeRaw(file string, av *addrValue, dryRun, noReboot bool) error {
	if !av.set {
		return usagef("--raw needs --addr")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	s, err := e.connect()
	if err != nil {
		return err
	}
	defer s.Close()
	plan, err := ops.PlanWrite(s.dev, *av.v, data)
	if err != nil {
		return err
	}
	plan.Notes = append(plan.Notes, "--raw: written as it is, no image checks")
	fw, ver := writtenFirmware(file, nil)
	return e.doWrite(s, []writeJob{{plan, data}}, dryRun, noReboot, fw, ver)
}

// writeJob is one region to write.
type writeJob struct {
	plan ops.Plan
	data []byte
}

// writeJSON is the --json output of write and restore.
type writeJSON struct {
	Plans   []ops.Plan            `json:"plans"`
	Results []flasher.WriteResult `json:"results,omitempty"`
	DryRun  bool                  `json:"dry_run,omitempty"`
	Reboot  string                `json:"reboot,omitempty"`
}

// doWrite writes the jobs, reboots the chip and records in the inventory
// that firmware fw (version ver) was written.
func (e *env) doWrite(s *session, jobs []writeJob, dryRun, noReboot bool, fw, ver string) error {
	out := writeJSON{DryRun: dryRun}
	for _, j := range jobs {
		out.Plans = append(out.Plans, j.plan)
	}
	if dryRun {
		if e.g.json {
			return e.printJSON(out)
		}
		fmt.Fprintln(e.stdout, "Dry run, nothing written:")
		for _, j := range jobs {
			fmt.Fprintln(e.stdout, j.plan)
		}
		return nil
	}
	for _, j := range jobs {
		if !e.g.json {
			fmt.Fprintf(e.stderr, "%s\n", j.plan)
		}
		res, err := s.dev.Write(e.ctx, j.plan.Addr, j.data, e.progress())
		if err != nil {
			if flasher.Hint(err) == "" {
				err = &flasher.HintError{Err: err, Hint: "the chip is still in download mode and nothing was lost: run the same command again; sectors already written are skipped"}
			}
			return err
		}
		out.Results = append(out.Results, res)
		if !e.g.json {
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
	}
	e.recordInventory(func(inv *inventory.Inventory) error {
		for _, res := range out.Results {
			if _, err := inv.RecordWrite(s.dev.Info(), fw, ver, res); err != nil {
				return err
			}
		}
		return nil
	})
	out.Reboot = "stayed in download mode (--no-reboot)"
	if !noReboot {
		manual, err := s.dev.Reboot(e.ctx)
		switch {
		case err != nil:
			out.Reboot = "reboot command failed: " + err.Error() + "; power-cycle the device"
		case manual != "":
			out.Reboot = manual
		default:
			out.Reboot = "rebooted"
		}
	}
	if e.g.json {
		return e.printJSON(out)
	}
	fmt.Fprintf(e.stdout, "Device: %s\n", out.Reboot)
	return nil
}

func restoreCmd() *command {
	var force, dryRun, noReboot bool
	c := &command{name: "restore", args: "BACKUP", summary: "write a backup back after checking it belongs to this chip", device: true,
		long: `The backup's sidecar must match the connected chip (family, flash size, flash id,
MAC where known). On a BK7231T the bootloader stays as it is.`}
	c.flags = func(fs *pflag.FlagSet) {
		fs.BoolVar(&force, "force", false, "restore even if the backup's sidecar does not match the chip")
		fs.BoolVar(&dryRun, "dry-run", false, "connect and show what would be written, change nothing")
		fs.BoolVar(&noReboot, "no-reboot", false, "stay in download mode after writing")
	}
	c.run = func(e *env, args []string) error {
		if len(args) != 1 {
			return usagef("restore needs exactly one backup file")
		}
		b, err := backup.Load(args[0], force)
		if err != nil {
			if errors.Is(err, backup.ErrNoSidecar) {
				return &flasher.HintError{Err: err, Hint: "without its sidecar tuyaflash cannot tell whose backup this is; --force restores it anyway"}
			}
			if errors.Is(err, backup.ErrCorrupt) {
				return &flasher.HintError{Err: err, Hint: "this file is not the dump its sidecar describes; do not restore it (a truncated or modified dump can brick the device)"}
			}
			return err
		}
		s, err := e.connect()
		if err != nil {
			return err
		}
		defer s.Close()
		plan, data, err := ops.RestorePlan(s.dev, b, force)
		if err != nil {
			return err
		}
		return e.doWrite(s, []writeJob{{plan, data}}, dryRun, noReboot, inventory.FirmwareStock, b.Sidecar.SHA256[:12])
	}
	return c
}
