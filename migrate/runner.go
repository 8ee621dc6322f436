package migrate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tuyaflash/tuyaflash/backup"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/inventory"
	"github.com/tuyaflash/tuyaflash/ops"
	"github.com/tuyaflash/tuyaflash/postflash"
	"github.com/tuyaflash/tuyaflash/transport"
)

// runner migrates the device on one port.
type runner struct {
	o     *Options
	port  string // the port as given (for the Connector)
	label string // the port as reported
	file  string // the device file it opens (journal's Port)
	hub   *hub
	reg   *registry
	res   *PortResult

	sp  span
	cur Step
	inv *inventory.Inventory
	// key is the device's inventory record, "" until known (a device
	// whose MAC identifies nothing is known by its backup); journal
	// changes wait in queued until then.
	key    string
	queued []func(*inventory.Migration)
	// past is the device's journal as this run found it: what earlier
	// runs did, which the re-checks look at (this run's own marks are
	// not evidence of anything).
	past    *inventory.Migration
	release func()

	link Link
	// console is the port a run that starts after the reboot opened for
	// a virtual device of this process: it keeps the device running.
	console transport.Port
	dev     flasher.Device
	info    flasher.Info
	virt    *Virtual
	// inDownload: this run holds the chip in download mode (so the
	// firmware is not running until the reboot step).
	inDownload bool

	bk *backup.Backup
	// bkPlanned: a dry run found no backup to reuse and plans one.
	bkPlanned bool
	img       *image
	inPlace   bool // the chip confirmed img is in place
	fw        postflash.Firmware
	fwLabel   string
	// host is where the firmware answers (or is expected to), hostVia
	// how it was learnt; online is its last identification.
	host, hostVia string
	online        *postflash.Result
}

// errDuplicate: the device is the one another port of the run works on.
type errDuplicate struct{ other string }

func (e errDuplicate) Error() string {
	return "same device as on " + e.other + " (same MAC and flash): migrated there, not here"
}

// errFlagged: the device on the network is not the one flashed.
type errFlagged struct{ err error }

func (e errFlagged) Error() string { return e.err.Error() }
func (e errFlagged) Unwrap() error { return e.err }

func (r *runner) emit(e Event) {
	e.Port, e.Time = r.label, time.Now()
	if e.Step == "" && e.Kind != KindPortEnd {
		e.Step = r.cur
	}
	r.hub.emit(e)
}

func (r *runner) note(kind EventKind, format string, a ...any) {
	r.emit(Event{Kind: kind, Message: fmt.Sprintf(format, a...)})
}

func (r *runner) progress() flasher.Progress { return &progress{emit: r.emit} }

func (r *runner) run(ctx context.Context) {
	start := time.Now()
	defer func() {
		if r.link != nil {
			r.link.Close()
		}
		if r.console != nil {
			r.console.Close()
		}
		if r.release != nil {
			r.release()
		}
		r.res.Elapsed = time.Since(start).Seconds()
		r.emit(Event{Kind: KindPortEnd, Message: r.res.Result, Result: r.res})
	}()
	r.sp = span{r.o.From, r.o.Until}
	inv, err := inventory.Open(r.o.InventoryPath)
	if err != nil {
		r.fail(StepDetect, err, 0)
		return
	}
	r.inv = inv
	online := r.o.From.online()
	if online {
		if err := r.resumeOnline(ctx); err != nil {
			r.fail(r.o.From, err, 0)
			return
		}
	}
	for _, st := range Steps {
		run := r.sp.has(st) || (st == StepDetect && !online)
		if !run {
			if st.Before(r.o.From) {
				if err := r.before(ctx, st); err != nil {
					r.fail(st, err, 0)
					return
				}
			}
			r.res.Steps = append(r.res.Steps, StepResult{Step: st, Status: StatusSkipped})
			continue
		}
		if !r.step(ctx, st) {
			return
		}
	}
	switch {
	case r.o.DryRun:
		r.res.Result = ResultPlanned
	case r.sp.has(StepRecord):
		r.res.Result = ResultMigrated
	default:
		r.res.Result = ResultStopped
	}
}

// before loads what a step before --from left for the steps that run.
func (r *runner) before(ctx context.Context, st Step) error {
	if st == StepBackup && r.inDownload {
		return r.backupOnRecord()
	}
	return nil
}

// step runs one step and reports whether the run goes on.
func (r *runner) step(ctx context.Context, st Step) bool {
	r.cur = st
	t0 := time.Now()
	r.emit(Event{Kind: KindStepStart})
	if err := r.mark(st, inventory.StepRunning, ""); err != nil {
		r.fail(st, err, 0)
		return false
	}
	status, msg, err := r.do(ctx, st)
	el := time.Since(t0).Seconds()
	if err != nil {
		if ctx.Err() != nil {
			// An interruption, whatever the step made of it (a link
			// error after the port was closed is not a link fault).
			if !errors.Is(err, ctx.Err()) {
				err = fmt.Errorf("%w: %v", ctx.Err(), err)
			}
			err = &flasher.HintError{Err: err, Hint: "interrupted: nothing is lost (a backup resumes from its verified part, a write skips what is in place); run the same command again to resume"}
		}
		r.fail(st, err, el)
		return false
	}
	r.res.Steps = append(r.res.Steps, StepResult{Step: st, Status: status, Message: msg, Elapsed: el})
	r.emit(Event{Kind: KindStepEnd, Status: status, Message: msg, Elapsed: el})
	js := inventory.StepDone
	if status == StatusNote {
		js = inventory.StepNote
	}
	if err := r.mark(st, js, msg); err != nil {
		r.fail(st, err, el)
		return false
	}
	return true
}

func (r *runner) do(ctx context.Context, st Step) (Status, string, error) {
	switch st {
	case StepDetect:
		return r.detect(ctx)
	case StepBackup:
		return r.backup(ctx)
	case StepConfig:
		return r.config()
	case StepFirmware:
		return r.firmware(ctx)
	case StepWrite:
		return r.write(ctx)
	case StepReboot:
		return r.reboot(ctx)
	case StepProvision:
		return r.provision(ctx)
	case StepFind:
		return r.find(ctx)
	case StepVerify:
		return r.verify(ctx)
	case StepPins:
		return r.pins(ctx)
	case StepRecord:
		return r.record()
	}
	return "", "", fmt.Errorf("no step %q", st)
}

// fail ends the port's run at step st.
func (r *runner) fail(st Step, err error, elapsed float64) {
	r.res.Err, r.res.Error, r.res.Hint = err, err.Error(), flasher.Hint(err)
	var dup errDuplicate
	var flag errFlagged
	switch {
	case errors.As(err, &dup):
		r.res.Result = ResultDuplicate
	case errors.As(err, &flag):
		r.res.Result = ResultFlagged
	default:
		r.res.Result = ResultFailed
	}
	status := StatusFailed
	r.res.Steps = append(r.res.Steps, StepResult{Step: st, Status: status, Message: r.res.Error, Elapsed: elapsed})
	r.cur = st
	r.emit(Event{Kind: KindStepEnd, Status: status, Message: r.res.Error, Hint: r.res.Hint, Elapsed: elapsed})
	if r.res.Result != ResultDuplicate {
		// Best effort: the failure is in the report either way.
		_ = r.mark(st, inventory.StepFailed, r.res.Error)
	}
}

// mark records a step's status in the journal.
func (r *runner) mark(st Step, status, msg string) error {
	now := time.Now().UTC()
	return r.journal(func(m *inventory.Migration) { m.Mark(string(st), status, msg, now) })
}

// journal applies change to the device's journal and saves it at once
// (atomically, under the inventory's lock). Nothing is written in a dry
// run; changes wait until the device's record is known.
func (r *runner) journal(change func(*inventory.Migration)) error {
	if r.o.DryRun {
		return nil
	}
	if r.key == "" {
		r.queued = append(r.queued, change)
		return nil
	}
	if _, err := r.inv.UpdateMigration(r.key, change); err != nil {
		return err
	}
	return r.save()
}

func (r *runner) save() error {
	if r.o.DryRun {
		return nil
	}
	if err := r.inv.Save(); err != nil {
		return &flasher.HintError{Err: fmt.Errorf("save the migration journal: %w", err),
			Hint: "the device is as the last finished step left it; fix the inventory file and run the same command again"}
	}
	return nil
}

// setKey makes key the device's record and writes the journal changes
// that waited for it.
func (r *runner) setKey(key string) error {
	if key == r.key {
		return nil
	}
	r.key, r.res.Key = key, key
	r.past = r.inv.Migration(key)
	q := r.queued
	r.queued = nil
	if r.o.DryRun {
		return nil
	}
	for _, c := range q {
		if _, err := r.inv.UpdateMigration(key, c); err != nil {
			return err
		}
	}
	return r.save()
}

// device is the device's inventory record.
func (r *runner) device() (inventory.Device, bool) {
	for _, d := range r.inv.Devices() {
		if d.Key == r.key {
			return d, true
		}
	}
	return inventory.Device{}, false
}

// claim registers the device's identity for this run. A device with its
// own MAC seen on another port is the same device: this port stops. A
// device whose MAC identifies nothing may be another board of the same
// model: this port waits until the other is done.
func (r *runner) claim(ctx context.Context) error {
	id := ops.IdentityKey(r.info) + "|" + r.info.MAC.String()
	unique := false
	if r.info.HasMAC() {
		ph, _ := r.info.MAC.Placeholder()
		unique = !ph
	}
	for {
		release, other, wait := r.reg.claim(id, r.label)
		if release != nil {
			r.release = release
			return nil
		}
		if unique {
			return errDuplicate{other}
		}
		r.note(KindNote, "a device with the same identity (placeholder MAC %s) is on %s: waiting until it is done", r.info.MAC, other)
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// describeInfo is the detect step's line.
func describeInfo(i flasher.Info) string {
	s := fmt.Sprintf("%s, %d KiB flash", i.Family, i.FlashSize/1024)
	if id := i.FlashIDString(); id != "" {
		s += " " + id
	}
	if i.HasMAC() {
		s += ", MAC " + i.MAC.String()
		if ph, why := i.MAC.Placeholder(); ph {
			s += " (placeholder: " + why + ")"
		}
	}
	return s
}

// usableMAC is the MAC that identifies the device, "" when there is none.
func usableMAC(i flasher.Info) string {
	if !i.HasMAC() {
		return ""
	}
	if ph, _ := i.MAC.Placeholder(); ph {
		return ""
	}
	return i.MAC.String()
}
