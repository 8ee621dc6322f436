package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"github.com/tuyaflash/tuyaflash/backup"
	"github.com/tuyaflash/tuyaflash/export"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/internal/safefile"
	"github.com/tuyaflash/tuyaflash/internal/termsafe"
	"github.com/tuyaflash/tuyaflash/inventory"
	"github.com/tuyaflash/tuyaflash/pintemplate"
)

func init() {
	register(inventoryCmd())
	register(exportCmd())
}

// inventoryPath is --inventory, else inventory.DefaultPath.
func inventoryPath(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	return inventory.DefaultPath()
}

// recordInventory opens the inventory, lets record add to it and saves it.
// The inventory is a convenience: when it cannot be updated the command
// still succeeds and the user gets a warning on stderr.
func (e *env) recordInventory(record func(inv *inventory.Inventory) error) {
	path, err := inventory.DefaultPath()
	if err == nil {
		var inv *inventory.Inventory
		if inv, err = inventory.Open(path); err == nil {
			if err = record(inv); err == nil {
				err = inv.Save()
			}
		}
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "warning: device inventory not updated: %v\n", err)
		if h := flasher.Hint(err); h != "" {
			fmt.Fprintf(e.stderr, "  %s\n", h)
		}
	}
}

// loadDevices opens the inventory at path and returns the records matching
// the queries (all when none), failing on a query that matches nothing.
func loadDevices(path string, queries []string) ([]inventory.Device, error) {
	inv, err := inventory.Open(path)
	if err != nil {
		return nil, err
	}
	if len(queries) == 0 {
		return inv.Devices(), nil
	}
	var out []inventory.Device
	seen := map[string]bool{}
	for _, q := range queries {
		found := inv.Find(q)
		if len(found) == 0 {
			return nil, &flasher.HintError{Err: fmt.Errorf("%q: %w", q, inventory.ErrUnknownDevice), Hint: "name a device by its inventory key, MAC, Tuya device id or IP, as 'tuyaflash inventory' lists them"}
		}
		for _, d := range found {
			if !seen[d.Key] {
				seen[d.Key] = true
				out = append(out, d)
			}
		}
	}
	return out, nil
}

// inventoryDoc is inventory's document.
type inventoryDoc struct {
	header
	Path string `json:"path"`
	// Devices are the real devices, VirtualDevices the simulated ones.
	Devices        []inventory.Device `json:"devices"`
	VirtualDevices []inventory.Device `json:"virtual_devices"`
}

// forgetDoc is inventory forget's document.
type forgetDoc struct {
	header
	Path      string            `json:"path"`
	Forgotten *inventory.Device `json:"forgotten,omitempty"`
}

// forJSON hides secrets the JSON way: absent, not a placeholder text.
func forJSON(d inventory.Device, showSecrets bool) inventory.Device {
	if !showSecrets && d.Tuya != nil {
		t := *d.Tuya
		t.LocalKey = ""
		d.Tuya = &t
	}
	return d
}

func inventoryCmd() *command {
	var file string
	var showSecrets bool
	c := &command{name: "inventory", args: "[DEVICE…] | forget DEVICE", summary: "list the devices tuyaflash has backed up, flashed or verified; forget one",
		subcommands: map[string]string{"forget": "forget"},
		long: `One record per device, keyed by MAC and flash id (a placeholder MAC is never a
key on its own: such a device is keyed by flash id and its first backup's hash).
DEVICE (a key, MAC, Tuya device id or IP) shows that record in full. Virtual
devices (the sim: ports) are listed apart and left out of every export.
'inventory forget DEVICE' removes a record (its backups stay where they are).
The inventory holds local keys: it is stored with mode 0600 and keys are shown
only with --show-secrets.`}
	c.flags = func(fs *pflag.FlagSet) {
		fs.StringVar(&file, "inventory", "", "inventory `file` (default $TUYAFLASH_DATA_DIR/inventory.json or ~/.local/share/tuyaflash/inventory.json)")
		fs.BoolVar(&showSecrets, "show-secrets", false, "show Tuya local keys")
	}
	c.check = func(e *env, args []string) error {
		if len(args) > 0 && args[0] == "forget" {
			if len(args) != 2 {
				return usagef("inventory forget needs one DEVICE (a key, MAC, Tuya device id or IP, as 'tuyaflash inventory' lists them)")
			}
			if showSecrets {
				return usagef("--show-secrets does nothing with inventory forget")
			}
		}
		return nil
	}
	c.run = func(e *env, args []string) error {
		path, err := inventoryPath(file)
		if err != nil {
			return err
		}
		if len(args) > 0 && args[0] == "forget" {
			return e.forget(path, args[1])
		}
		devs, err := loadDevices(path, args)
		if err != nil {
			return err
		}
		doc := &inventoryDoc{Path: path, Devices: []inventory.Device{}, VirtualDevices: []inventory.Device{}}
		var real, virtual []inventory.Device
		for _, d := range devs {
			if d.Virtual {
				doc.VirtualDevices = append(doc.VirtualDevices, forJSON(d, showSecrets))
			} else {
				doc.Devices = append(doc.Devices, forJSON(d, showSecrets))
			}
			if !showSecrets {
				d = d.Redacted()
			}
			if d.Virtual {
				virtual = append(virtual, d)
			} else {
				real = append(real, d)
			}
		}
		e.emit(doc)
		if len(devs) == 0 {
			fmt.Fprintf(e.stdout, "No devices yet: tuyaflash records every device it backs up, writes or verifies.\nInventory: %s\n", path)
			return nil
		}
		if len(args) > 0 {
			for _, d := range append(real, virtual...) {
				printDevice(e.stdout, d)
			}
			return nil
		}
		if len(real) > 0 {
			printDeviceTable(e.stdout, real)
		}
		if len(virtual) > 0 {
			if len(real) > 0 {
				fmt.Fprintln(e.stdout)
			}
			fmt.Fprintln(e.stdout, "Virtual devices (simulators; left out of every export):")
			printDeviceTable(e.stdout, virtual)
		}
		more := ""
		if len(virtual) > 0 {
			more = fmt.Sprintf(" (+%d virtual)", len(virtual))
		}
		fmt.Fprintf(e.stdout, "\n%d devices%s in %s ('tuyaflash inventory DEVICE' for details)\n", len(real), more, path)
		return nil
	}
	return c
}

// forget removes one record from the inventory at path.
func (e *env) forget(path, q string) error {
	doc := &forgetDoc{header: header{Command: "inventory forget"}, Path: path}
	e.emit(doc)
	inv, err := inventory.Open(path)
	if err != nil {
		return err
	}
	d, err := inv.Forget(q)
	if err != nil {
		return &flasher.HintError{Err: err, Hint: "name the device by its key, as 'tuyaflash inventory' lists them"}
	}
	if err := inv.Save(); err != nil {
		return err
	}
	j := forJSON(d, false)
	doc.Forgotten = &j
	id := ""
	if d.Tuya != nil && d.Tuya.DeviceID != "" {
		id = ", Tuya device id " + d.Tuya.DeviceID
	}
	fmt.Fprintf(e.stdout, "Forgot %s (%s, MAC %s%s).\n", d.Key, d.Family, orDash(macLabel(d)), id)
	if len(d.Backups) > 0 {
		fmt.Fprintf(e.stdout, "Its %d backups stay where they are, e.g. %s\n", len(d.Backups), d.Backups[0].Path)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func macLabel(d inventory.Device) string {
	switch {
	case d.MACPlaceholder != "" && d.MAC != "":
		return d.MAC + " (placeholder)"
	case d.MACPlaceholder != "":
		return "unknown"
	}
	return d.MAC
}

func firmwareLabel(d inventory.Device) string {
	fw, ver := d.CurrentFirmware()
	if fw == "" {
		return "stock (not flashed)"
	}
	return strings.TrimSpace(fw + " " + ver)
}

func checkLabel(d inventory.Device) string {
	v := d.LastVerify
	if v == nil {
		return "-"
	}
	if v.OK {
		return "ok " + v.Date.Local().Format("2006-01-02")
	}
	return "FAILED " + v.Date.Local().Format("2006-01-02")
}

// printable is d with every string a device or a dump gave it (names,
// versions, host names, the Tuya ids) safe to print (termsafe): an
// inventory written before they were cleaned at the source, or edited,
// must not drive the terminal either.
func printable(d inventory.Device) inventory.Device {
	c := termsafe.Clean
	for _, p := range []*string{&d.Key, &d.FlashName, &d.Firmware, &d.FirmwareVersion, &d.IP, &d.Hostname, &d.MACPlaceholder} {
		*p = c(*p)
	}
	if d.Tuya != nil {
		t := *d.Tuya
		for _, p := range []*string{&t.DeviceID, &t.LocalKey, &t.Module, &t.StockVersion} {
			*p = c(*p)
		}
		d.Tuya = &t
	}
	d.Writes = slices.Clone(d.Writes)
	for i := range d.Writes {
		d.Writes[i].Firmware, d.Writes[i].Version = c(d.Writes[i].Firmware), c(d.Writes[i].Version)
	}
	if d.LastVerify != nil {
		v := *d.LastVerify
		for _, p := range []*string{&v.Host, &v.Firmware, &v.Version, &v.Hostname, &v.Problem} {
			*p = c(*p)
		}
		d.LastVerify = &v
	}
	return d
}

func printDeviceTable(w io.Writer, devs []inventory.Device) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tCHIP\tMAC\tFIRMWARE\tIP\tTUYA ID\tBACKUPS\tLAST CHECK")
	for _, d := range devs {
		d = printable(d)
		id := ""
		if d.Tuya != nil {
			id = d.Tuya.DeviceID
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", d.Key, d.Family, macLabel(d), firmwareLabel(d), orDash(d.IP), orDash(id), len(d.Backups), checkLabel(d))
	}
	tw.Flush()
}

func printDevice(w io.Writer, d inventory.Device) {
	d = printable(d)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Device:\t%s\n", d.Key)
	fmt.Fprintf(tw, "Chip:\t%s, flash %s, %d KiB\n", d.Family, strings.TrimSpace(orDash(d.FlashID)+" "+d.FlashName), d.FlashSize/1024)
	mac := macLabel(d)
	if d.MACPlaceholder != "" {
		mac += " — " + d.MACPlaceholder + "; identified by flash id and first backup"
	}
	fmt.Fprintf(tw, "MAC:\t%s\n", mac)
	fmt.Fprintf(tw, "Seen:\t%s … %s\n", d.FirstSeen.Local().Format("2006-01-02 15:04"), d.LastSeen.Local().Format("2006-01-02 15:04"))
	for i, b := range d.Backups {
		label := "Backup:"
		if i == 0 {
			label = "Backups:"
		}
		fmt.Fprintf(tw, "%s\t%s  sha256 %s  %s\n", label, b.Path, b.SHA256, b.Date.Local().Format("2006-01-02"))
	}
	if t := d.Tuya; t != nil {
		fmt.Fprintf(tw, "Tuya:\tdevice id %s, local key %s, module %s, stock %s\n", orDash(t.DeviceID), orDash(t.LocalKey), orDash(t.Module), orDash(t.StockVersion))
	}
	for _, wr := range d.Writes {
		fmt.Fprintf(tw, "Written:\t%s %s at 0x%X, %d bytes, %s, %s\n", wr.Firmware, wr.Version, wr.Addr, wr.Size, orDash(wr.VerifyMethod), wr.Date.Local().Format("2006-01-02 15:04"))
	}
	fmt.Fprintf(tw, "Firmware:\t%s\n", firmwareLabel(d))
	fmt.Fprintf(tw, "Address:\t%s %s\n", orDash(d.IP), d.Hostname)
	if v := d.LastVerify; v != nil {
		res := "ok"
		if !v.OK {
			res = "FAILED: " + v.Problem
		}
		fmt.Fprintf(tw, "Last check:\t%s, %s %s %s at %s\n", v.Date.Local().Format("2006-01-02 15:04"), res, v.Firmware, v.Version, v.Host)
	}
	tw.Flush()
	fmt.Fprintln(w)
}

func exportCmd() *command {
	var (
		file, devicesFile, snapshotFile, output string
		mqttHost, mqttUser, mqttPassword        string
		ids, macs, kinds                        []string
		undo, all, dryRun                       bool
		fs                                      *pflag.FlagSet
	)
	c := &command{name: "export", args: "tinytuya|homeassistant|templates [DEVICE…]", summary: "update tinytuya's files for flashed devices; Home Assistant hints; pin templates",
		subcommands: map[string]string{"tinytuya": "tinytuya", "homeassistant": "homeassistant", "ha": "homeassistant", "templates": "templates"},
		long: `export tinytuya --devices devices.json [--snapshot snapshot.json]
  Moves the entries of devices flashed with another firmware (from the
  inventory, or --id/--mac) out of tinytuya's files into
  <file>.tuyaflash-archive.json. Every other entry and field stays byte for
  byte; a copy of the file is kept as <file>.orig-<time>. --undo puts archived
  entries back (those of devices restored to stock, --id/--mac, or --all).
export homeassistant [DEVICE…]
  What to add to Home Assistant for each device's new firmware, and which
  traces of the stock device to remove.
export templates [--kind obk,obk-json,esphome,tasmota] [-o DIR] [DEVICE…]
  Pin templates made from the Tuya pin map of each device's stock backup.`}
	c.flags = func(f *pflag.FlagSet) {
		fs = f
		f.StringVar(&file, "inventory", "", "inventory `file` (default $TUYAFLASH_DATA_DIR/inventory.json)")
		f.StringVar(&devicesFile, "devices", "", "tinytuya: devices.json `file`")
		f.StringVar(&snapshotFile, "snapshot", "", "tinytuya: snapshot.json `file` to update too")
		f.StringSliceVar(&ids, "id", nil, "tinytuya: Tuya device `id` to move (repeatable; default: the inventory's flashed devices)")
		f.StringSliceVar(&macs, "mac", nil, "tinytuya: device `MAC` to move (repeatable)")
		f.BoolVar(&undo, "undo", false, "tinytuya: put archived entries back")
		f.BoolVar(&all, "all", false, "tinytuya --undo: put every archived entry back")
		f.BoolVar(&dryRun, "dry-run", false, "tinytuya: show what would move, change nothing")
		f.StringVar(&mqttHost, "mqtt-host", "", "homeassistant: MQTT broker `host` for the commands")
		f.StringVar(&mqttUser, "mqtt-user", "", "homeassistant: MQTT `user`")
		f.StringVar(&mqttPassword, "mqtt-password", "", "homeassistant: MQTT `password`")
		f.StringSliceVar(&kinds, "kind", nil, "templates: `kinds` obk, obk-json, esphome, tasmota (default: those that fit the chip)")
		f.StringVarP(&output, "output", "o", "", "templates: write the files into `folder` (never overwriting) instead of stdout")
	}
	only := func(target string, names ...string) error {
		for _, n := range names {
			if fs.Changed(n) {
				return usagef("--%s does not apply to export %s", n, target)
			}
		}
		return nil
	}
	c.run = func(e *env, args []string) error {
		if len(args) == 0 {
			return usagef("export needs a target: tinytuya, homeassistant or templates")
		}
		path, err := inventoryPath(file)
		if err != nil {
			return err
		}
		target, rest := args[0], args[1:]
		switch target {
		case "tinytuya":
			if err := only(target, "mqtt-host", "mqtt-user", "mqtt-password", "kind", "output"); err != nil {
				return err
			}
			if len(rest) > 0 {
				return usagef("export tinytuya selects devices with --id and --mac, not arguments")
			}
			if devicesFile == "" {
				return usagef("export tinytuya needs --devices FILE (tinytuya's devices.json)")
			}
			if all && !undo {
				return usagef("--all goes with --undo")
			}
			for _, f := range []string{devicesFile, snapshotFile} {
				if _, err := os.Stat(f); f != "" && err != nil {
					return &flasher.HintError{Err: err, Hint: "give tinytuya's own files: devices.json (written by 'python -m tinytuya wizard') and, if you have it, snapshot.json"}
				}
			}
			return e.exportTinyTuya(path, devicesFile, snapshotFile, tinyTuyaSelection{ids: ids, macs: macs, undo: undo, all: all}, export.Options{DryRun: dryRun})
		case "homeassistant", "ha":
			if err := only(target, "devices", "snapshot", "id", "mac", "undo", "all", "dry-run", "kind", "output"); err != nil {
				return err
			}
			devs, err := loadDevices(path, rest)
			if err != nil {
				return err
			}
			if err := noVirtual(devs, rest); err != nil {
				return err
			}
			hints := export.HomeAssistant(devs, export.HAOptions{MQTTHost: mqttHost, MQTTUser: mqttUser, MQTTPassword: mqttPassword})
			e.emit(&haDoc{header: header{Command: "export homeassistant"}, Devices: hints})
			if len(hints) == 0 {
				fmt.Fprintf(e.stdout, "No devices in the inventory (%s) yet (virtual devices are left out).\n", path)
			}
			for _, h := range hints {
				fmt.Fprintf(e.stdout, "%s\n", h.Text())
			}
			return nil
		case "templates":
			if err := only(target, "devices", "snapshot", "id", "mac", "undo", "all", "dry-run", "mqtt-host", "mqtt-user", "mqtt-password"); err != nil {
				return err
			}
			return e.exportTemplates(path, rest, kinds, output)
		}
		return usagef("unknown export target %q: want tinytuya, homeassistant or templates", target)
	}
	return c
}

type tinyTuyaSelection struct {
	ids, macs []string
	undo, all bool
}

func (e *env) exportTinyTuya(invPath, devicesFile, snapshotFile string, sel tinyTuyaSelection, o export.Options) error {
	var matches []export.Match
	for _, id := range sel.ids {
		matches = append(matches, export.Match{DeviceID: id, Reason: "named on the command line"})
	}
	for _, m := range sel.macs {
		if _, err := flasher.ParseMAC(m); err != nil {
			return usagef("--mac: %v", err)
		}
		matches = append(matches, export.Match{MAC: m, Reason: "named on the command line"})
	}
	if len(matches) == 0 && !sel.all {
		devs, err := loadDevices(invPath, nil)
		if err != nil {
			return err
		}
		matches = export.MatchesFromInventory(devs, !sel.undo)
		if len(matches) == 0 {
			what, or := "flashed with another firmware", ""
			if sel.undo {
				what, or = "restored to stock", ", or --all"
			}
			note := fmt.Sprintf("No device in the inventory (%s) was %s: nothing to do.", invPath, what)
			e.emit(&tinyTuyaDoc{header: header{Command: "export tinytuya"}, Note: note})
			fmt.Fprintf(e.stdout, "%s\nName devices with --id or --mac%s.\n", note, or)
			return nil
		}
	}
	res := &tinyTuyaDoc{header: header{Command: "export tinytuya"}}
	e.emit(res)
	var err error
	run := export.MigrateTinyTuya
	if sel.undo {
		run = export.UndoTinyTuya
	}
	if sel.all {
		matches = nil
	}
	if res.Devices, err = run(devicesFile, matches, o); err != nil {
		return e.tinyTuyaError(err)
	}
	if snapshotFile != "" {
		if res.Snapshot, err = run(snapshotFile, matches, o); err != nil {
			return e.tinyTuyaError(err)
		}
	}
	for _, r := range []*export.Result{res.Devices, res.Snapshot} {
		if r != nil {
			printTinyTuya(e.stdout, r, sel.undo)
		}
	}
	return nil
}

func (e *env) tinyTuyaError(err error) error {
	if errors.Is(err, export.ErrChanged) {
		return fmt.Errorf("%w: %w", err, flasher.ErrRefused)
	}
	return err
}

func printTinyTuya(w io.Writer, r *export.Result, undo bool) {
	name := filepath.Base(r.File)
	verb, where := "moved out of", "into "+filepath.Base(r.Archive)
	if undo {
		verb, where = "put back into", "from "+filepath.Base(r.Archive)
	}
	prefix := ""
	if r.DryRun {
		prefix = "dry run, nothing written: "
	}
	if len(r.Moved) == 0 {
		fmt.Fprintf(w, "%s%s: nothing to change\n", prefix, name)
	} else {
		fmt.Fprintf(w, "%s%d entries %s %s (%s form) %s:\n", prefix, len(r.Moved), verb, name, r.Form, where)
		for _, m := range r.Moved {
			fmt.Fprintf(w, "  %-24s id %s  mac %s\n", orDash(m.Name), orDash(m.ID), orDash(m.MAC))
		}
	}
	for _, a := range r.Already {
		state := "already archived"
		if undo {
			state = "already in the file"
		}
		fmt.Fprintf(w, "  %s: %s (id %s)\n", state, orDash(a.Name), orDash(a.ID))
	}
	for _, m := range r.Missing {
		fmt.Fprintf(w, "  in neither %s nor %s: id %s mac %s\n", name, filepath.Base(r.Archive), orDash(m.DeviceID), orDash(m.MAC))
	}
	if r.Copy != "" {
		fmt.Fprintf(w, "  the previous %s is kept as %s\n", name, r.Copy)
	}
	if r.Removed > 0 {
		fmt.Fprintf(w, "  removed %d temporary files of an interrupted earlier run\n", r.Removed)
	}
}

// templateJSON is one template in export templates' document: its
// content, or the file it was written to (-o).
type templateJSON struct {
	Key      string                `json:"key"`
	Kind     string                `json:"kind"`
	FileName string                `json:"file_name"`
	Path     string                `json:"path,omitempty"`
	Content  string                `json:"content,omitempty"`
	Warnings []pintemplate.Warning `json:"warnings,omitempty"`
}

type templatesDoc struct {
	header
	Templates []templateJSON `json:"templates"`
}

type haDoc struct {
	header
	Devices []export.HAHint `json:"devices"`
}

type tinyTuyaDoc struct {
	header
	Devices  *export.Result `json:"devices,omitempty"`
	Snapshot *export.Result `json:"snapshot,omitempty"`
	// Note says why nothing was done.
	Note string `json:"note,omitempty"`
}

// noVirtual refuses a virtual device named on the command line: exports
// leave them out.
func noVirtual(devs []inventory.Device, queries []string) error {
	if len(queries) == 0 {
		return nil
	}
	for _, d := range devs {
		if d.Virtual {
			return usagef("%s is a virtual device (a simulator); exports leave virtual devices out", d.Key)
		}
	}
	return nil
}

func (e *env) exportTemplates(invPath string, queries, kinds []string, dir string) error {
	devs, err := loadDevices(invPath, queries)
	if err != nil {
		return err
	}
	if err := noVirtual(devs, queries); err != nil {
		return err
	}
	doc := &templatesDoc{header: header{Command: "export templates"}, Templates: []templateJSON{}}
	e.emit(doc)
	var all []export.Template
	for _, d := range devs {
		if d.Virtual {
			continue
		}
		ts, err := export.Templates(d, kinds)
		if errors.Is(err, export.ErrNoPinMap) && len(queries) == 0 {
			fmt.Fprintf(e.stderr, "note: %s has no Tuya pin map in the inventory, skipped\n", d.Key)
			continue
		}
		if err != nil {
			return err
		}
		all = append(all, ts...)
	}
	if len(all) == 0 {
		fmt.Fprintf(e.stdout, "No device in the inventory (%s) has a Tuya pin map: back up a stock device first.\n", invPath)
		return nil
	}
	for _, t := range all {
		if len(t.Warnings) > 0 {
			fmt.Fprintf(e.stderr, "note: %s %s: %d Tuya settings have no equivalent (listed as comments where the format allows)\n", t.Key, t.Kind, len(t.Warnings))
		}
	}
	for _, t := range all {
		j := templateJSON{Key: t.Key, Kind: t.Kind, FileName: t.FileName, Warnings: t.Warnings}
		if dir == "" {
			j.Content = t.Content
			fmt.Fprintf(e.stdout, "==> %s (%s) <==\n%s\n", t.FileName, t.Key, t.Content)
		} else {
			path, err := safefile.Join(dir, t.FileName)
			if err != nil {
				return err
			}
			j.Path = path
			if err := backup.WriteFileNew(j.Path, []byte(t.Content)); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "wrote %s\n", j.Path)
		}
		doc.Templates = append(doc.Templates, j)
	}
	return nil
}
