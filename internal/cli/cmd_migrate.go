package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/tuyaflash/tuyaflash/firmware"
	"github.com/tuyaflash/tuyaflash/internal/session"
	"github.com/tuyaflash/tuyaflash/internal/virtual"
	"github.com/tuyaflash/tuyaflash/migrate"
	"github.com/tuyaflash/tuyaflash/postflash"
	"github.com/tuyaflash/tuyaflash/provision"
	"github.com/tuyaflash/tuyaflash/ui"
)

func init() { register(migrateCmd()) }

// migrateDemo returns the virtual devices' demo image for a chip (migrate
// gates it: refused on a real chip).
func migrateDemo(_ context.Context, chip firmware.Chip) (*firmware.Resolved, error) {
	return firmware.ResolveDemo(chip)
}

func migrateCmd() *command {
	var ports, tinytuya []string
	var dev globals
	var pw passwordFlag
	var o migrate.Options
	var from, until, invFile string
	var events bool
	var ff firmwareFlags
	c := &command{name: "migrate", summary: "from stock Tuya to verified open firmware on your Wi-Fi, in one command, on one or several adapters",
		long: `Steps: detect, backup, config, firmware, write, reboot, provision, find, verify,
pins, record. Each is journaled in the inventory: run the same command again after
an interruption and it resumes, re-checking each recorded step against the device
(never a second backup of the same flash). --from/--until run part of it; --from
provision or later continues on the network without download mode.
Without --firmware: openbeken on Beken chips, tasmota on ESP8266, the demo image on
virtual devices. The Wi-Fi password comes from --wifi-password, $` + wifiPasswordEnv + `
or a prompt. --port may be repeated, or --port all takes every USB-serial adapter;
each port runs on its own, a summary table ends the run.
--json prints one document at the end; --events prints one JSON object per line on
stderr as things happen (steps, progress, instructions), instead of the text lines.`}
	c.flags = func(fs *pflag.FlagSet) {
		fs.StringArrayVarP(&ports, "port", "p", nil, "serial `device` (repeat for several adapters), all (every USB-serial adapter), or a virtual device sim:bk7231n, sim:bk7231t, sim:esp8266")
		fs.StringVar(&o.Firmware, "firmware", "", "catalogue `name`, image file, or demo (default: openbeken on Beken, tasmota on ESP8266, demo on virtual devices)")
		fs.StringVar(&o.WiFi.SSID, "ssid", "", "your Wi-Fi network `name`")
		fs.Var(&pw, "wifi-password", "your Wi-Fi `password` (better: $"+wifiPasswordEnv+", or the prompt)")
		fs.StringVar(&o.Host, "host", "", "the device's `address` on your network, when it cannot be found by its MAC")
		fs.StringVar(&o.APHost, "ap-host", "", "the device's address on its own access point (default "+provision.DefaultAPHost+")")
		fs.StringArrayVar(&tinytuya, "tinytuya", nil, "tinytuya `file` (devices.json, snapshot.json) to move migrated devices out of (repeatable)")
		fs.StringVar(&from, "from", "", "first `step` to run")
		fs.StringVar(&until, "until", "", "last `step` to run")
		fs.BoolVar(&o.DryRun, "dry-run", false, "connect, detect and print the plan; change nothing")
		fs.BoolVar(&o.Yes, "yes", false, "write even when no verified backup of the device is on record")
		fs.StringVar(&o.BackupRoot, "backup-dir", "", "backup `folder` (default $TUYAFLASH_BACKUP_DIR or ~/.local/share/tuyaflash/backups)")
		fs.StringVar(&invFile, "inventory", "", "inventory `file` (default $TUYAFLASH_DATA_DIR/inventory.json)")
		fs.DurationVar(&o.OnlineWait, "wait", migrate.DefaultOnlineWait, "how `long` to wait for the device on the network")
		fs.BoolVar(&events, "events", false, "one JSON object per event on stderr")
		ff.add(fs)
		fs.VarP(baudValue{&dev.baud}, "baud", "b", "transfer `rate` after link-up, or max (as for backup)")
		fs.StringVar(&dev.chip, "chip", "auto", "chip `family`: auto, "+familyNames())
		fs.DurationVar(&dev.timeout, "timeout", defaultTimeout, "how long to wait for each chip after the power-cycle prompt")
		fs.StringVar(&dev.reset, "reset", "none", "ESP8266 reset `mode`: none or classic")
		fs.StringVar(&dev.stub, "stub", "", "ESP8266 flasher stub `file`")
		fs.BoolVar(&dev.noStub, "no-stub", false, "ESP8266: ROM loader only")
		fs.BoolVar(&dev.trace, "trace", false, "hex-dump all serial traffic (as notes, -v)")
	}
	c.run = func(e *env, args []string) error {
		if len(args) > 0 {
			return usagef("migrate takes no arguments (use --port)")
		}
		dev.json, dev.verbose = e.g.json, e.g.verbose
		if err := dev.validate(true); err != nil {
			return err
		}
		fam, _ := familyFlag(dev.chip)
		o.Chip, o.Ports, o.TinyTuya, o.InventoryPath, o.ToolVersion = fam, ports, tinytuya, invFile, version()
		var err error
		if o.From, err = stepFlag("from", from); err != nil {
			return err
		}
		if o.Until, err = stepFlag("until", until); err != nil {
			return err
		}
		if o.WiFi.SSID != "" && (o.Until == "" || !o.Until.Before(migrate.StepProvision)) {
			if o.WiFi.Password, err = e.wifiPassword(pw, o.WiFi.SSID); err != nil {
				return err
			}
		}
		m, cache, err := ff.open(e)
		if err != nil {
			return err
		}
		o.Firmwares = &migrate.Catalogue{Manifest: m, Cache: cache, Demo: migrateDemo}
		co, err := dev.sessionOptions(nil)
		if err != nil {
			return err
		}
		co.AskVirtual = firmware.IsDemoName(o.Firmware) || isDemoFile(o.Firmware)
		o.Connector = &session.Connector{Options: co, TraceNotes: dev.trace || dev.verbose >= 2}
		o.Network = migrate.LiveNetwork{Probe: postflash.Options{Dial: virtual.Dial}}
		r := newMigrateRenderer(e, len(ports) != 1 || ports[0] == migrate.AllPorts, events)
		o.Observer = r
		rep, err := migrate.Run(e.ctx, o)
		if err != nil {
			var ue *migrate.UsageError
			if errors.As(err, &ue) {
				return usagef("%s", ue.Msg)
			}
			return err
		}
		return r.finish(rep)
	}
	return c
}

// defaultTimeout is the device commands' --timeout default.
const defaultTimeout = 30 * time.Second

func stepFlag(name, v string) (migrate.Step, error) {
	if v == "" {
		return "", nil
	}
	s, err := migrate.ParseStep(v)
	if err != nil {
		return "", usagef("--%s: %v", name, err)
	}
	return s, nil
}

// migrateRenderer shows a run: text lines (one progress bar with one
// port), or JSON lines with --events; then the summary.
type migrateRenderer struct {
	e      *env
	multi  bool
	events *json.Encoder
	bar    *ui.Progress
	done   int64
	// quarter is the last quarter of a transfer printed per port.
	quarter map[string]int64
}

func newMigrateRenderer(e *env, multi, events bool) *migrateRenderer {
	r := &migrateRenderer{e: e, multi: multi, quarter: map[string]int64{}}
	if events {
		r.events = json.NewEncoder(e.stderr)
	} else if !multi && !(e.g.json && !ui.IsTerminal(e.stderr)) {
		r.bar = ui.NewProgress(e.stderr, ui.ProgressOptions{Terminal: e.terminal(e.stderr), Quiet: e.g.json && e.g.verbose == 0})
	}
	return r
}

func (r *migrateRenderer) Observe(ev migrate.Event) {
	if r.events != nil {
		r.events.Encode(ev)
		return
	}
	w, quiet := r.e.stderr, r.e.g.json
	who := ""
	if r.multi {
		who = ev.Port + ": "
	}
	switch ev.Kind {
	case migrate.KindAction:
		fmt.Fprintf(w, ">>> %s%s\n", who, ev.Message)
	case migrate.KindWarning:
		fmt.Fprintf(w, "warning: %s%s\n", who, ev.Message)
	case migrate.KindNote:
		if r.e.g.verbose > 0 {
			fmt.Fprintf(w, "  %s%s\n", who, ev.Message)
		}
	case migrate.KindProgress:
		r.progress(ev, who)
	case migrate.KindStepEnd:
		if !quiet || ev.Status == migrate.StatusFailed {
			fmt.Fprintf(w, "%s%-9s %-7s %s\n", who, ev.Step, ev.Status, ev.Message)
		}
		if ev.Hint != "" {
			fmt.Fprintf(w, "what to do: %s%s\n", who, ev.Hint)
		}
	}
}

// progress draws the bar of the one port, or a line per quarter with
// several.
func (r *migrateRenderer) progress(ev migrate.Event, who string) {
	if r.bar != nil {
		switch {
		case ev.Done == 0:
			r.bar.Begin(ev.Op, ev.Addr, ev.Total)
			r.done = 0
		default:
			r.bar.Advance(ev.Done - r.done)
			r.done = ev.Done
		}
		if ev.Done == ev.Total {
			r.bar.End(nil)
		}
		return
	}
	if !r.multi || ev.Total <= 0 || r.e.g.json {
		return
	}
	q := ev.Done * 4 / ev.Total
	if ev.Done == 0 {
		r.quarter[ev.Port] = 0
	} else if q > r.quarter[ev.Port] {
		r.quarter[ev.Port] = q
		fmt.Fprintf(r.e.stderr, "%s%s: %s %d%% (%d/%d KiB)\n", who, ev.Step, ev.Op, ev.Done*100/ev.Total, ev.Done/1024, ev.Total/1024)
	}
}

// finish prints the result and maps failures to the exit code of the
// first failed port.
func (r *migrateRenderer) finish(rep *migrate.Report) error {
	out := r.e.stdout
	if r.e.g.json {
		r.e.emit(&migrateDoc{Report: *rep})
	} else {
		fmt.Fprintf(out, "\n%s", rep.Table())
		for _, p := range rep.Ports {
			if h := p.HomeAssistant; h != nil && p.Result == migrate.ResultMigrated {
				fmt.Fprintf(out, "\n%s\n", h.Text())
			}
		}
	}
	if rep.Failed == 0 {
		return nil
	}
	for _, p := range rep.Ports {
		if p.Err != nil && (p.Result == migrate.ResultFailed || p.Result == migrate.ResultFlagged) {
			return &quietExit{code: exitCode(p.Err), err: fmt.Errorf("%d of %d ports failed", rep.Failed, len(rep.Ports))}
		}
	}
	return &quietExit{code: ExitFailure, err: errors.New("a port failed")}
}

// quietExit is a failure already reported in full (table, JSON document):
// report only maps it to its exit code.
type quietExit struct {
	code int
	err  error
}

func (q *quietExit) Error() string { return q.err.Error() }

// quietCode returns the exit code of a quietExit in err's chain.
func quietCode(err error) (int, bool) {
	var q *quietExit
	if errors.As(err, &q) {
		return q.code, true
	}
	return 0, false
}

// migrateDoc is migrate's --json document (docs/json.md).
type migrateDoc struct {
	header
	migrate.Report
}

// isDemoFile reports whether spec is a file holding a demo image.
func isDemoFile(spec string) bool {
	if file, err := firmware.LocalSpec(spec); err != nil || !file {
		return false
	}
	r, err := firmware.Resolve(context.Background(), spec, firmware.Chip{}, nil, nil)
	return err == nil && r.Detection.Demo != nil
}
