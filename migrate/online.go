package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tuyaflash/tuyaflash/export"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/inventory"
	"github.com/tuyaflash/tuyaflash/pintemplate"
	"github.com/tuyaflash/tuyaflash/postflash"
	"github.com/tuyaflash/tuyaflash/provision"
	"github.com/tuyaflash/tuyaflash/transport"
	"github.com/tuyaflash/tuyaflash/tuyaconfig"
)

// The steps after the reboot: they talk to the new firmware over its
// serial console or the network.

// retryPause is the pause between attempts to reach a console or an access
// point that does not answer yet.
const retryPause = 3 * time.Second

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// unreachable reports a network failure worth retrying (nothing answered).
func unreachable(err error) bool {
	var ne net.Error
	return errors.Is(err, flasher.ErrNoLink) || errors.As(err, &ne)
}

// wifi is the network the device joins: the user's, else a virtual
// device's own.
func (r *runner) wifi() provision.WiFi {
	if r.o.WiFi.SSID != "" {
		return r.o.WiFi
	}
	if r.virt != nil {
		return r.virt.wifi()
	}
	return provision.WiFi{}
}

// expectedMAC is the MAC the new firmware must report: the backup's, else
// the chip's, "" when neither identifies the device.
func (r *runner) expectedMAC() string {
	if r.bk != nil && r.bk.Sidecar.MAC != "" && r.bk.Sidecar.MACPlaceholder == "" {
		return r.bk.Sidecar.MAC
	}
	return usableMAC(r.info)
}

// apName is the access point the firmware opens when it has no network.
func (r *runner) apName() string {
	switch {
	case r.fw == postflash.OpenBeken && r.info.HasMAC():
		m := r.info.MAC
		return fmt.Sprintf("Open%s_%02X%02X%02X%02X", r.info.Family, m[2], m[3], m[4], m[5])
	case r.fw == postflash.Tasmota && r.info.HasMAC():
		return fmt.Sprintf("tasmota-%02X%02X%02X-…", r.info.MAC[3], r.info.MAC[4], r.info.MAC[5])
	case r.fw != "":
		return "the " + string(r.fw) + " access point"
	}
	return "the firmware's access point"
}

// offline explains a device that did not come online.
func (r *runner) offline(err error) error {
	w := r.wifi()
	hint := fmt.Sprintf("most often the device did not join %q: check the Wi-Fi password (--wifi-password or $TUYAFLASH_WIFI_PASSWORD) and that the network is 2.4 GHz and in reach. The firmware then opens its own access point (%s): join it from this computer and run the same command again with --from provision; or give --host ADDR if it answers elsewhere", w.SSID, r.apName())
	if r.virt != nil {
		hint = fmt.Sprintf("the virtual device joins only the virtual network %q (password %q); without it, it stays on its access point: run again with those or without --ssid", VirtualSSID, VirtualPassword)
	}
	return &flasher.HintError{Err: fmt.Errorf("the device did not come online within %s: %w", r.o.OnlineWait, err), Hint: hint}
}

func (r *runner) provision(ctx context.Context) (Status, string, error) {
	w := r.wifi()
	if w.SSID == "" {
		return StatusNote, "no Wi-Fi network given: the device stays on its own access point (" + r.apName() + ")", nil
	}
	if r.fw == "" {
		return StatusNote, fmt.Sprintf("the firmware written (%s) is not one tuyaflash can provision: join its access point and set the network there", r.fwLabel), nil
	}
	serial := r.info.Family.Espressif() && r.fw == postflash.Tasmota
	via := "access point"
	if serial {
		via = "serial console"
	}
	// Trusted: the same network given by an earlier run, unless the
	// device never came online after it or the user asks for this step.
	if m := r.past; m != nil && m.WiFi != nil && m.WiFi.SSID == w.SSID && m.StepStatus(string(StepProvision)) == inventory.StepDone &&
		m.StepStatus(string(StepFind)) != inventory.StepFailed && r.o.From != StepProvision {
		return StatusReused, fmt.Sprintf("the device was given %q earlier (over its %s; the firmware keeps it in its own config sector)", w.SSID, m.WiFi.Via), nil
	}
	if r.o.DryRun {
		return StatusPlanned, fmt.Sprintf("would give the Wi-Fi network %q to %s over its %s", w.SSID, r.fw, via), nil
	}
	var err error
	if serial {
		err = r.provisionSerial(ctx, w)
	} else {
		err = r.provisionAP(ctx, w)
	}
	if errors.Is(err, errOnline) {
		return StatusReused, fmt.Sprintf("the device has joined a network already: it answers at %s (%s)", r.host, r.hostVia), nil
	}
	if err != nil {
		return "", "", err
	}
	now := time.Now().UTC()
	rec := inventory.MigrationWiFi{SSID: w.SSID, Via: via, Date: now}
	if err := r.journal(func(m *inventory.Migration) { m.WiFi = &rec }); err != nil {
		return "", "", err
	}
	msg := fmt.Sprintf("gave %q to %s over its %s", w.SSID, r.fw, via)
	if r.host != "" {
		msg += "; it reported " + r.host
	}
	return StatusDone, msg, nil
}

// provisionSerial talks to Tasmota's console on the same adapter, waiting
// for it to boot (the user power-cycles the module after the write).
func (r *runner) provisionSerial(ctx context.Context, w provision.WiFi) error {
	var port transport.Port
	switch {
	case r.link != nil:
		port = r.link.Console()
	case r.console != nil:
		port = r.console
	default:
		p, err := r.o.Connector.Console(ctx, r.port)
		if err != nil {
			return err
		}
		defer p.Close()
		port = p
	}
	if port == nil {
		return r.provisionAP(ctx, w)
	}
	deadline := time.Now().Add(r.o.ProvisionWait)
	for first := true; ; first = false {
		res, err := r.o.Network.ProvisionSerial(ctx, port, w)
		if err == nil {
			if want := r.expectedMAC(); want != "" && res.MAC != "" && !sameMAC(want, res.MAC) {
				return r.flag(fmt.Errorf("the console reports MAC %s, not the flashed device's %s: %w", res.MAC, want, flasher.ErrVerify))
			}
			r.host, r.hostVia = res.IP, "serial console"
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if res == nil || res.MAC != "" {
			// Bad credentials for the console, or Tasmota answered
			// and did not join the network.
			if res != nil {
				return r.offline(err)
			}
			return err
		}
		if time.Now().After(deadline) {
			return &flasher.HintError{Err: fmt.Errorf("no answer from Tasmota's console within %s: %w", r.o.ProvisionWait, err),
				Hint: "release GPIO0 and power-cycle the module so that Tasmota starts, then run the same command again with --from provision"}
		}
		if first {
			r.note(KindNote, "waiting for Tasmota's serial console (release GPIO0 and power-cycle the module if not done yet)")
		}
		if err := sleep(ctx, retryPause); err != nil {
			return err
		}
	}
}

// provisionAP gives the network to the firmware's access point: a virtual
// device's on loopback; a real device's once this computer has joined it
// (one device at a time).
func (r *runner) provisionAP(ctx context.Context, w provision.WiFi) error {
	host := r.o.APHost
	if r.virt != nil {
		if host = r.virt.apHost(); host == "" {
			return &flasher.HintError{Err: fmt.Errorf("this virtual device has no network side: %w", flasher.ErrUnsupported),
				Hint: "the virtual devices come online with the virtual bench (issue 11); stop before with --until reboot"}
		}
	} else {
		r.reg.ap.Lock()
		defer r.reg.ap.Unlock()
		r.note(KindAction, "join the Wi-Fi network %s on this computer now: %s", r.apName(), strings.Join(provision.APSteps(r.fw, r.apName()), " "))
	}
	deadline := time.Now().Add(r.o.ProvisionWait)
	for {
		res, err := r.o.Network.ProvisionAP(ctx, r.fw, w, host)
		if err == nil {
			if want := r.expectedMAC(); want != "" && res.MAC != "" && !sameMAC(want, res.MAC) {
				return r.flag(fmt.Errorf("the access point at %s belongs to MAC %s, not the flashed device's %s: %w", host, res.MAC, want, flasher.ErrVerify))
			}
			if res.NewIP != "" {
				r.host, r.hostVia = res.NewIP, "access point"
			}
			if r.virt == nil && len(res.Steps) > 0 {
				r.note(KindAction, "%s", strings.Join(res.Steps, " "))
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !unreachable(err) {
			return err
		}
		// A firmware that keeps a network from an earlier run joins it
		// instead of opening its access point.
		if r.alreadyOnline(ctx) {
			return errOnline
		}
		if time.Now().After(deadline) {
			return err
		}
		if err := sleep(ctx, retryPause); err != nil {
			return err
		}
	}
}

// errOnline: provisioning found the device on the network already.
var errOnline = errors.New("already online")

// alreadyOnline looks once for the device on the network (where it may
// be: --host, a virtual device's station, where it answered before, its
// MAC in the neighbour table) and takes the address where it answers with
// its MAC.
func (r *runner) alreadyOnline(ctx context.Context) bool {
	mac := r.expectedMAC()
	try := func(host, via string) bool {
		if host == "" {
			return false
		}
		res, err := r.o.Network.Identify(ctx, host)
		if err != nil || mac == "" || !sameMAC(mac, res.MAC) {
			return false
		}
		r.host, r.hostVia, r.online = host, via, res
		return true
	}
	if r.virt != nil && try(r.virt.Station, "virtual device") || try(r.o.Host, "--host") {
		return true
	}
	if r.past != nil && try(r.past.Host, "last seen") {
		return true
	}
	if m, err := flasher.ParseMAC(mac); err == nil && mac != "" {
		if f, err := r.o.Network.FindByMAC(ctx, m); err == nil {
			return try(f.IP.String(), f.Via)
		}
	}
	return false
}

// flag marks the migration as flagged (the device answering is not the one
// flashed) and returns err as such.
func (r *runner) flag(err error) error {
	if jerr := r.journal(func(m *inventory.Migration) { m.Outcome = inventory.OutcomeFlagged }); jerr != nil {
		return jerr
	}
	return errFlagged{&flasher.HintError{Err: err, Hint: "another device answered: check which module is wired to this adapter and which address you gave; the flashed device is not recorded as migrated"}}
}

func sameMAC(a, b string) bool {
	ma, err1 := flasher.ParseMAC(a)
	mb, err2 := flasher.ParseMAC(b)
	return err1 == nil && err2 == nil && ma == mb
}

// find finds the device on the network and waits for it to answer.
func (r *runner) find(ctx context.Context) (Status, string, error) {
	type where struct{ host, via string }
	var sure []where // addresses the device is at, once online
	if r.o.Host != "" {
		sure = append(sure, where{r.o.Host, "--host"})
	}
	if r.host != "" && r.hostVia != "" && r.hostVia != "last seen" {
		sure = append(sure, where{r.host, r.hostVia})
	}
	if r.virt != nil && r.virt.Station != "" {
		sure = append(sure, where{r.virt.Station, "virtual device"})
	}
	last := ""
	if r.past != nil {
		last = r.past.Host
	}
	mac := r.expectedMAC()
	if r.o.DryRun {
		switch {
		case len(sure) > 0:
			return StatusPlanned, fmt.Sprintf("would wait up to %s for the device at %s (%s)", r.o.OnlineWait, sure[0].host, sure[0].via), nil
		case mac != "":
			return StatusPlanned, fmt.Sprintf("would look for MAC %s on the network (ARP, mDNS) for up to %s", mac, r.o.OnlineWait), nil
		}
		return StatusPlanned, "would need --host: the device has no MAC of its own to be found by", nil
	}
	deadline := time.Now().Add(r.o.OnlineWait)
	seen := func(a postflash.Attempt) { r.note(KindNote, "%s", a.String()) }
	if len(sure) == 0 && last != "" {
		if res, err := r.o.Network.Identify(ctx, last); err == nil && (mac == "" || sameMAC(mac, res.MAC)) {
			return r.found(last, "last seen", res)
		}
	}
	if len(sure) == 0 {
		if mac == "" {
			return "", "", &flasher.HintError{Err: fmt.Errorf("no address for the device, and its MAC (%s) identifies nothing: %w", r.info.MAC, flasher.ErrUnsupported),
				Hint: "look up its address in your router's client list and run again with --host ADDR --from find"}
		}
		m, _ := flasher.ParseMAC(mac)
		r.note(KindNote, "looking for MAC %s on the network", mac)
		start := time.Now()
		for {
			f, err := r.o.Network.FindByMAC(ctx, m)
			if err == nil {
				sure = append(sure, where{f.IP.String(), f.Via})
				break
			}
			if ctx.Err() != nil {
				return "", "", ctx.Err()
			}
			if time.Now().After(deadline) {
				return "", "", r.offline(err)
			}
			r.note(KindNote, "not on the network yet after %s: %v", time.Since(start).Round(time.Second), err)
			if err := sleep(ctx, retryPause); err != nil {
				return "", "", err
			}
		}
	}
	w := sure[0]
	res, err := r.o.Network.WaitOnline(ctx, w.host, deadline, seen)
	if err != nil {
		var we *postflash.WaitError
		if errors.As(err, &we) {
			return "", "", r.offline(err)
		}
		return "", "", err
	}
	return r.found(w.host, w.via, res)
}

// knownHost is where the device answered last: in this run, else as the
// journal recorded it.
func (r *runner) knownHost() string {
	if r.host != "" {
		return r.host
	}
	if r.o.Host != "" {
		return r.o.Host
	}
	if r.past != nil {
		return r.past.Host
	}
	return ""
}

func (r *runner) found(host, via string, res *postflash.Result) (Status, string, error) {
	r.host, r.hostVia, r.online, r.res.Host = host, via, res, host
	if err := r.journal(func(m *inventory.Migration) { m.Host, m.HostVia = host, via }); err != nil {
		return "", "", err
	}
	return StatusDone, fmt.Sprintf("%s answers at %s (%s)", res.Firmware, host, via), nil
}

// verify checks that the firmware answering is the one written and the
// device the one backed up (MAC). A mismatch flags the device: it is not
// recorded as migrated.
func (r *runner) verify(ctx context.Context) (Status, string, error) {
	mac := r.expectedMAC()
	if r.o.DryRun {
		what := "any firmware"
		if r.fw != "" {
			what = string(r.fw)
		}
		if mac != "" {
			return StatusPlanned, fmt.Sprintf("would check that the device runs %s and reports MAC %s", what, mac), nil
		}
		return StatusPlanned, fmt.Sprintf("would check that the device runs %s (its MAC identifies nothing)", what), nil
	}
	res := r.online
	if res == nil {
		host := r.knownHost()
		if host == "" {
			return "", "", &flasher.HintError{Err: fmt.Errorf("no address known for the device: %w", flasher.ErrNoLink), Hint: "run with --from find, or give --host ADDR"}
		}
		var err error
		if res, err = r.o.Network.WaitOnline(ctx, host, time.Now().Add(r.o.OnlineWait), nil); err != nil {
			return "", "", r.offline(err)
		}
		r.online, r.res.Host = res, host
	}
	problem := postflash.Check(res, string(r.fw), mac)
	var mm *postflash.MismatchError
	unverified := errors.As(problem, &mm) && mm.Unverified
	if unverified {
		r.note(KindWarning, "%s", mm.Msg)
		problem = nil
	}
	d, err := r.inv.RecordVerifyOf(r.key, res, problem)
	if err != nil {
		return "", "", err
	}
	rec := d.LastVerify
	if err := r.journal(func(m *inventory.Migration) { m.Verify = rec }); err != nil {
		return "", "", err
	}
	if problem != nil {
		return "", "", r.flag(problem)
	}
	msg := fmt.Sprintf("%s %s at %s", res.Firmware, res.Version, r.res.Host)
	switch {
	case unverified:
		msg += "; MAC not confirmed: " + mm.Msg
	case mac != "":
		msg += ", MAC " + mac + " matches the backup"
	}
	return StatusDone, msg, nil
}

// wantPins is the pin configuration the Tuya config asks for, or why there
// is none.
func (r *runner) wantPins(d inventory.Device) (*PinConfig, string) {
	if d.Tuya == nil || d.Tuya.PinMap == "" {
		return nil, "no Tuya pin map on record (see the config step): the pins stay as the firmware has them"
	}
	u, err := tuyaconfig.ParseUserParamKey(d.Tuya.PinMap)
	if u == nil || len(u.Values) == 0 {
		return nil, fmt.Sprintf("the Tuya pin map cannot be read (%v)", err)
	}
	switch r.fw {
	case postflash.OpenBeken:
		c, _ := pintemplate.OpenBeken(u)
		pc := &PinConfig{}
		for _, p := range c.Pins {
			pc.Pins = append(pc.Pins, PinRole{Pin: p.Pin, Role: p.RoleIndex, Name: p.Role, Channel: p.Channel})
		}
		switch len(c.Commands) {
		case 0:
		case 1:
			pc.Startup = c.Commands[0]
		default:
			pc.Startup = "backlog " + strings.Join(c.Commands, "; ")
		}
		if len(pc.Pins) == 0 {
			return nil, "the Tuya pin map configures no pin OpenBeken knows"
		}
		return pc, ""
	case postflash.Tasmota:
		tpl, _ := pintemplate.Tasmota(u, d.Name())
		if tpl == "" {
			return nil, "the Tuya pin map is not for an ESP8266 module: no Tasmota template"
		}
		return &PinConfig{Template: tpl}, ""
	case postflash.ESPHome:
		return nil, "ESPHome builds its pins into the firmware: use the ESPHome template saved beside the backup"
	}
	return nil, fmt.Sprintf("tuyaflash cannot set pins on %s", r.fwLabel)
}

// pinsMatch reports whether have holds every pin of want.
func pinsMatch(want, have *PinConfig) bool {
	if have == nil {
		return false
	}
	if want.Template != "" {
		type tpl struct {
			GPIO []int `json:"GPIO"`
			BASE int   `json:"BASE"`
		}
		var a, b tpl
		return json.Unmarshal([]byte(want.Template), &a) == nil && json.Unmarshal([]byte(have.Template), &b) == nil &&
			slices.Equal(a.GPIO, b.GPIO) && a.BASE == b.BASE
	}
	for _, w := range want.Pins {
		i := slices.IndexFunc(have.Pins, func(h PinRole) bool { return h.Pin == w.Pin })
		if i < 0 || have.Pins[i].Role != w.Role || have.Pins[i].Channel != w.Channel {
			return false
		}
	}
	return true
}

func (c *PinConfig) String() string {
	if c.Template != "" {
		return "template " + c.Template
	}
	s := make([]string, len(c.Pins))
	for i, p := range c.Pins {
		name := p.Name
		if name == "" {
			name = fmt.Sprint(p.Role)
		}
		s[i] = fmt.Sprintf("P%d %s;%d", p.Pin, name, p.Channel)
	}
	return strings.Join(s, ", ")
}

// pins applies the pin template from the Tuya config and checks that the
// firmware kept it.
func (r *runner) pins(ctx context.Context) (Status, string, error) {
	d, ok := r.device()
	if !ok && r.o.DryRun {
		return StatusPlanned, "would set the pins the Tuya config gives, if it has a pin map", nil
	}
	if !ok {
		return StatusNote, "the device has no inventory record: no Tuya config, no pins", nil
	}
	want, why := r.wantPins(d)
	if want == nil {
		return StatusNote, why, nil
	}
	if r.o.DryRun {
		return StatusPlanned, "would set " + want.String(), nil
	}
	if r.host = r.knownHost(); r.host == "" {
		return "", "", &flasher.HintError{Err: fmt.Errorf("no address known for the device: %w", flasher.ErrNoLink), Hint: "run with --from find, or give --host ADDR"}
	}
	if have, err := r.o.Network.ReadPins(ctx, r.host, r.fw); err == nil && pinsMatch(want, have) {
		return StatusReused, "already set: " + want.String(), nil
	}
	if err := r.o.Network.WritePins(ctx, r.host, r.fw, want); err != nil {
		return "", "", err
	}
	// Tasmota restarts to activate a template: read back until it
	// answers again.
	deadline := time.Now().Add(r.o.OnlineWait)
	for {
		have, err := r.o.Network.ReadPins(ctx, r.host, r.fw)
		switch {
		case err == nil && pinsMatch(want, have):
			rec := inventory.MigrationPins{Firmware: string(r.fw), Pins: len(want.Pins), Summary: want.String()}
			if err := r.journal(func(m *inventory.Migration) { m.Pins = &rec }); err != nil {
				return "", "", err
			}
			return StatusDone, "set and read back: " + want.String(), nil
		case err == nil:
			return "", "", &flasher.HintError{Err: fmt.Errorf("the device did not keep the pin configuration: it has %s, wanted %s: %w", have, want, flasher.ErrVerify),
				Hint: "open the device's web page and set the pins by hand from the template saved beside the backup"}
		case ctx.Err() != nil:
			return "", "", ctx.Err()
		case !unreachable(err) || time.Now().After(deadline):
			return "", "", err
		}
		if err := sleep(ctx, retryPause); err != nil {
			return "", "", err
		}
	}
}

// record records the device as migrated and updates the exports.
func (r *runner) record() (Status, string, error) {
	if r.o.DryRun {
		msg := "would record the device as migrated and save its Home Assistant hint"
		if len(r.o.TinyTuya) > 0 {
			msg += "; would move its entries out of " + strings.Join(r.o.TinyTuya, ", ")
		}
		return StatusPlanned, msg, nil
	}
	d, ok := r.device()
	if !ok {
		return "", "", fmt.Errorf("record: %w", inventory.ErrUnknownDevice)
	}
	if d.LastVerify == nil || !d.LastVerify.OK {
		return "", "", &flasher.HintError{Err: fmt.Errorf("the device was not verified on the network: %w", flasher.ErrRefused), Hint: "run with --from verify"}
	}
	var exports, moved []string
	// The files named for this run, and the Home Assistant hint, are for
	// this device, virtual or not (the export commands leave virtual
	// devices out; here the user migrates this one).
	this := d
	this.Virtual = false
	matches := export.MatchesFromInventory([]inventory.Device{this}, true)
	for _, f := range r.o.TinyTuya {
		res, err := export.MigrateTinyTuya(f, matches, export.Options{})
		if err != nil {
			return "", "", fmt.Errorf("tinytuya file %s: %w", f, err)
		}
		r.res.TinyTuya = append(r.res.TinyTuya, res)
		exports = append(exports, res.File)
		switch {
		case len(res.Moved) > 0:
			moved = append(moved, fmt.Sprintf("%d moved out of %s", len(res.Moved), filepath.Base(f)))
		case len(res.Already) > 0:
			moved = append(moved, "already out of "+filepath.Base(f))
		default:
			moved = append(moved, "not in "+filepath.Base(f))
		}
	}
	if hints := export.HomeAssistant([]inventory.Device{this}, r.o.HA); len(hints) == 1 {
		h := hints[0]
		r.res.HomeAssistant = &h
		if dir := r.backupDir(d); dir != "" {
			p, err := saveBeside(dir, d.Name()+".homeassistant.txt", []byte(h.Text()))
			if err != nil {
				return "", "", err
			}
			exports = append(exports, p)
		}
	}
	now := time.Now().UTC()
	if err := r.journal(func(m *inventory.Migration) {
		m.Outcome, m.Completed, m.Exports = inventory.OutcomeMigrated, now, slices.Clone(exports)
	}); err != nil {
		return "", "", err
	}
	msg := "recorded as migrated"
	if len(moved) > 0 {
		msg += "; tinytuya: " + strings.Join(moved, ", ")
	}
	if h := r.res.HomeAssistant; h != nil && h.Integration != "" {
		msg += "; Home Assistant: " + h.Integration
	}
	return StatusDone, msg, nil
}

// backupDir is the folder of the device's backup, "" when none is known.
func (r *runner) backupDir(d inventory.Device) string {
	switch {
	case r.bk != nil:
		return filepath.Dir(r.bk.Path)
	case len(d.Backups) > 0:
		return filepath.Dir(d.Backups[len(d.Backups)-1].Path)
	}
	return ""
}
