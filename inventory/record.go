package inventory

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tuyaflash/tuyaflash/backup"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/postflash"
	"github.com/tuyaflash/tuyaflash/tuyaconfig"
)

// usableMAC returns the MAC of info when it identifies the device, else
// "" and why not.
func usableMAC(info flasher.Info) (mac, placeholder string) {
	if !info.HasMAC() {
		return "", "not read"
	}
	if ph, why := info.MAC.Placeholder(); ph {
		return "", why
	}
	return info.MAC.String(), ""
}

func flashKey(info flasher.Info) string {
	if id := info.FlashIDString(); id != "" {
		return strings.ToLower(id)
	}
	return strings.TrimPrefix(noID, "/")
}

// macKey is the key of a device whose MAC identifies it.
func macKey(info flasher.Info) (string, bool) {
	if mac, _ := usableMAC(info); mac != "" {
		return info.MAC.Compact() + "/" + flashKey(info), true
	}
	return "", false
}

// chipIdentity tells apart the chips seen in one session when their MAC
// identifies nothing.
func chipIdentity(info flasher.Info) string {
	return fmt.Sprintf("%s|%s|%x|%s|%s", info.Family, info.FlashIDString(), info.ChipID, info.MAC, info.MACFrom)
}

// keyFor finds the key of info: by MAC, or the key this session chose for
// the same chip at its backup.
func (inv *Inventory) keyFor(info flasher.Info) (string, bool) {
	if k, ok := macKey(info); ok {
		if known := withFlashID(inv.devices, k, info.Family); known != "" {
			return known, true
		}
		return k, true
	}
	k, ok := inv.session[chipIdentity(info)]
	return k, ok
}

// noID ends the key of a device whose flash id was not read.
const noID = "/noid"

// withFlashID returns, for a key without flash id (MAC/noid), the key of
// the one device of that MAC and family on record with one: the same chip,
// whose flash id did not come through this time (a reset or a lost reply
// in the middle of its identification). "" when there is none, or more
// than one.
func withFlashID(devs []*Device, key string, family flasher.Family) string {
	mac, ok := strings.CutSuffix(key, noID)
	if !ok {
		return ""
	}
	found := ""
	for _, d := range devs {
		if strings.HasPrefix(d.Key, mac+"/") && d.Key != key && d.FlashID != "" && d.Family == string(family) {
			if found != "" {
				return ""
			}
			found = d.Key
		}
	}
	return found
}

// getChip is get for a chip's key: a key with a flash id takes over the
// record of the same MAC and family kept without one (MAC/noid) when it
// has none of its own yet, so that one device identified once without its
// flash id stays one device.
func getChip(devs *[]*Device, key string, family flasher.Family, now time.Time) *Device {
	if mac, _, ok := strings.Cut(key, "/"); ok && !strings.HasSuffix(key, noID) && find(*devs, key) == nil {
		if d := find(*devs, mac+noID); d != nil && d.FlashID == "" && d.Family == string(family) {
			d.Key = key
			return d
		}
	}
	return get(devs, key, now)
}

func (inv *Inventory) stamp() time.Time { return inv.now().UTC().Truncate(time.Second) }

// fillChip copies what detect reports into d.
func fillChip(d *Device, info flasher.Info, now time.Time) {
	mac, why := usableMAC(info)
	switch {
	case mac != "":
		d.MAC, d.MACPlaceholder = mac, ""
	case info.HasMAC():
		d.MAC, d.MACPlaceholder = info.MAC.String(), why
	default:
		d.MACPlaceholder = why
	}
	d.Family = string(info.Family)
	if id := info.FlashIDString(); id != "" {
		d.FlashID = id
	}
	if info.FlashName != "" {
		d.FlashName = info.FlashName
	}
	if info.FlashSize != 0 {
		d.FlashSize = info.FlashSize
	}
	if info.ChipID != 0 {
		d.ChipID = fmt.Sprintf("0x%X", info.ChipID)
	}
	if info.EfuseKey != "" {
		d.EfuseKey = info.EfuseKey
	}
	d.LastSeen = now
}

// RecordDetect records a detected chip. A chip whose MAC is a placeholder
// (or unread) cannot be keyed before its first backup, and a chip whose
// flash size is unknown has no complete identity: then nothing is recorded
// and ok is false; RecordBackup records the same details.
func (inv *Inventory) RecordDetect(info flasher.Info) (d Device, ok bool) {
	if info.FlashSize <= 0 {
		// The flash did not answer while the chip was identified (a
		// reset, a brown-out): without its id and size the identity is
		// incomplete, and recording it would make a second device.
		return Device{}, false
	}
	key, ok := inv.keyFor(info)
	if !ok {
		return Device{}, false
	}
	now := inv.stamp()
	inv.apply(func(devs *[]*Device) { fillChip(getChip(devs, key, info.Family, now), info, now) })
	return clone(find(inv.devices, key)), true
}

// InfoFromSidecar rebuilds the chip details a backup's sidecar records, for
// backups taken without the chip at hand.
func InfoFromSidecar(s backup.Sidecar) flasher.Info {
	info := flasher.Info{Family: flasher.Family(s.Family), Protocol: s.Protocol, Bootloader: s.Bootloader,
		FlashName: s.FlashName, FlashSize: s.FlashSize, EfuseKey: s.EfuseKey, Baud: s.Baud}
	if id, err := strconv.ParseUint(backup.BareHex(s.FlashID), 16, 32); err == nil && len(backup.BareHex(s.FlashID)) == 6 {
		info.FlashID = [3]byte{byte(id >> 16), byte(id >> 8), byte(id)}
	}
	if c, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(s.ChipID), "0x"), 16, 32); err == nil {
		info.ChipID = uint32(c)
	}
	if m, err := flasher.ParseMAC(s.MAC); err == nil && s.MAC != "" {
		info.MAC, info.MACFrom = m, "backup sidecar"
	}
	return info
}

// RecordBackup records a stored dump (path and its sidecar as backup.Save
// wrote them). info is the chip the dump was read from; a zero info is
// rebuilt from the sidecar. A device whose MAC identifies nothing is keyed
// by flash id and this dump's SHA-256, unless this session or an earlier
// record already knows it (same chip in this session, or a stored backup
// with the same SHA-256).
func (inv *Inventory) RecordBackup(info flasher.Info, path string, s backup.Sidecar) (Device, error) {
	if len(s.SHA256) != 64 {
		return Device{}, fmt.Errorf("record backup %s: sidecar has no SHA-256", path)
	}
	if info.Family == "" {
		info = InfoFromSidecar(s)
	}
	key, ok := inv.keyFor(info)
	if !ok {
		for _, d := range inv.devices {
			for _, b := range d.Backups {
				if b.SHA256 == s.SHA256 && d.MACPlaceholder != "" {
					key, ok = d.Key, true
				}
			}
		}
	}
	if !ok {
		key = "placeholder/" + flashKey(info) + "/" + s.SHA256[:12]
	}
	if _, mac := macKey(info); !mac {
		inv.session[chipIdentity(info)] = key
	}
	now := inv.stamp()
	date := now
	if t, err := time.Parse(time.RFC3339, s.Date); err == nil {
		date = t.UTC()
	}
	ref := BackupRef{Path: path, SHA256: s.SHA256, Size: s.Size, Offset: s.Offset, Date: date}
	inv.apply(func(devs *[]*Device) {
		d := getChip(devs, key, info.Family, now)
		fillChip(d, info, now)
		for _, b := range d.Backups {
			if b.SHA256 == ref.SHA256 && b.Path == ref.Path {
				return
			}
		}
		d.Backups = append(d.Backups, ref)
	})
	return clone(find(inv.devices, key)), nil
}

// RecordTuyaConfig stores the Tuya identity read from the device's backup
// (key is the Device.Key RecordBackup returned). It is taken to come from
// the device's latest backup. Fields the config lacks (an unpaired device
// has no device id) never erase what an earlier config gave.
func (inv *Inventory) RecordTuyaConfig(key string, cfg *tuyaconfig.Config) (Device, error) {
	d := find(inv.devices, key)
	if d == nil {
		return Device{}, fmt.Errorf("record Tuya config for %s: %w", key, ErrUnknownDevice)
	}
	if cfg == nil {
		return clone(d), nil
	}
	from := ""
	if n := len(d.Backups); n > 0 {
		from = d.Backups[n-1].SHA256
	}
	t := Tuya{DeviceID: cfg.DeviceID, LocalKey: cfg.LocalKey, ProductKey: cfg.ProductKey, Module: cfg.Module,
		Chip: cfg.Chip, StockVersion: cfg.FirmwareVersion, FromBackup: from, Date: inv.stamp()}
	if cfg.UserParams != nil {
		t.PinMap = cfg.UserParams.Raw
	}
	inv.apply(func(devs *[]*Device) {
		d := get(devs, key, t.Date)
		if d.Tuya == nil {
			d.Tuya = &Tuya{}
		}
		merge(&d.Tuya.DeviceID, t.DeviceID)
		merge(&d.Tuya.LocalKey, t.LocalKey)
		merge(&d.Tuya.ProductKey, t.ProductKey)
		merge(&d.Tuya.Module, t.Module)
		merge(&d.Tuya.Chip, t.Chip)
		merge(&d.Tuya.StockVersion, t.StockVersion)
		merge(&d.Tuya.PinMap, t.PinMap)
		merge(&d.Tuya.FromBackup, t.FromBackup)
		d.Tuya.Date = t.Date
	})
	return clone(find(inv.devices, key)), nil
}

func merge(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

// RecordWrite records an image written to the chip: firmware is
// "tasmota", "openbeken", "esphome", FirmwareStock for a restored stock
// backup, or the image's name (GuessFirmware helps); version may be "".
// A device whose MAC identifies nothing must have been backed up in this
// session, else the error wraps ErrUnidentified.
func (inv *Inventory) RecordWrite(info flasher.Info, firmware, version string, wr flasher.WriteResult) (Device, error) {
	key, ok := inv.keyFor(info)
	if !ok {
		_, why := usableMAC(info)
		return Device{}, &flasher.HintError{
			Err:  fmt.Errorf("record write: MAC %s (%s): %w", info.MAC, why, ErrUnidentified),
			Hint: "a device without its own MAC is identified by its first backup: back it up in the same tuyaflash run before writing",
		}
	}
	now := inv.stamp()
	w := Write{Date: now, Firmware: firmware, Version: version, Addr: wr.Addr, Size: wr.Size, Verified: wr.Verified, VerifyMethod: wr.VerifyMethod}
	inv.apply(func(devs *[]*Device) {
		d := getChip(devs, key, info.Family, now)
		fillChip(d, info, now)
		d.Writes = append(d.Writes, w)
		d.Firmware, d.FirmwareVersion = firmware, version
	})
	return clone(find(inv.devices, key)), nil
}

// RecordVerify records a network check (tuyaflash verify) of the device
// with MAC mac (normally the one in its backup's sidecar; "" uses the MAC
// the device reported). problem is the error postflash.Check or Identify
// returned, nil when the device is what was expected. Without a usable MAC
// the device is found by the address it last answered on. The IP and host
// name are only taken over from a check that passed.
func (inv *Inventory) RecordVerify(mac string, r *postflash.Result, problem error) (Device, error) {
	if r == nil {
		return Device{}, fmt.Errorf("record verify: no result")
	}
	if mac == "" {
		mac = r.MAC
	}
	key := ""
	if m, err := flasher.ParseMAC(mac); err == nil {
		if ph, _ := m.Placeholder(); !ph {
			key = latest(inv.devices, func(d *Device) bool { return d.MACPlaceholder == "" && d.MAC == m.String() })
		}
	}
	if key == "" {
		key = latest(inv.devices, func(d *Device) bool {
			return d.IP != "" && (d.IP == r.Host || d.IP == r.IP) || d.Hostname != "" && strings.EqualFold(d.Hostname, r.Host)
		})
	}
	if key == "" {
		return Device{}, fmt.Errorf("record verify of %s (MAC %q): %w", r.Host, mac, ErrUnknownDevice)
	}
	return inv.recordVerify(key, r, problem), nil
}

// recordVerify records a network check on the record key.
func (inv *Inventory) recordVerify(key string, r *postflash.Result, problem error) Device {
	now := inv.stamp()
	v := Verification{Date: now, Host: r.Host, Firmware: string(r.Firmware), Version: r.Version, MAC: r.MAC,
		IP: r.IP, Hostname: r.Hostname, Encrypted: r.Encrypted, OK: problem == nil}
	if problem != nil {
		v.Problem = problem.Error()
	}
	inv.apply(func(devs *[]*Device) {
		d := get(devs, key, now)
		d.LastVerify = &v
		if v.OK {
			d.IP = v.address()
			merge(&d.Hostname, v.Hostname)
			d.LastSeen = now
		}
	})
	return clone(find(inv.devices, key))
}

// address is where a verified device answers: the address it reports,
// unless the one checked names that address with a port (a web server not
// on port 80, as a virtual device's): then the one checked, port kept.
func (v Verification) address() string {
	if host, _, err := net.SplitHostPort(v.Host); err == nil && (v.IP == "" || v.IP == host) {
		return v.Host
	}
	if v.IP != "" {
		return v.IP
	}
	return v.Host
}

// latest returns the key of the matching record seen last.
func latest(devs []*Device, match func(*Device) bool) string {
	var best *Device
	for _, d := range devs {
		if match(d) && (best == nil || !d.LastSeen.Before(best.LastSeen)) {
			best = d
		}
	}
	if best == nil {
		return ""
	}
	return best.Key
}

var (
	obkImage   = regexp.MustCompile(`^Open[A-Za-z0-9]+?(?:_ALT)?(?:_Tuya)?(?:_UA|_UG|_QIO)?_(\d+\.\d+\.\d+)(?:_[A-Za-z0-9]+)?\.(?:bin|rbl|img)$`)
	tasmotaImg = regexp.MustCompile(`^tasmota(?:32)?(?:[-_][A-Za-z0-9]+)*\.(?:factory\.)?bin(?:\.gz)?$`)
)

// GuessFirmware names the firmware of an image file from its name, as the
// projects name their release assets: OpenBeken "OpenBK7231N_QIO_1.17.670.bin"
// → ("openbeken", "1.17.670"), Tasmota "tasmota-lite.bin" → ("tasmota", ""),
// names containing "esphome" or "kickstart" → ("esphome", ""). Anything
// else gives ("", "").
func GuessFirmware(fileName string) (firmware, version string) {
	base := fileName
	if i := strings.LastIndexAny(base, `/\`); i >= 0 {
		base = base[i+1:]
	}
	if m := obkImage.FindStringSubmatch(base); m != nil {
		return "openbeken", m[1]
	}
	lower := strings.ToLower(base)
	if tasmotaImg.MatchString(lower) {
		return "tasmota", ""
	}
	if strings.Contains(lower, "esphome") || strings.Contains(lower, "kickstart") {
		return "esphome", ""
	}
	return "", ""
}
