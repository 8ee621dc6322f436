package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tuyaflash/tuyaflash/backup"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/internal/session"
	"github.com/tuyaflash/tuyaflash/inventory"
	"github.com/tuyaflash/tuyaflash/ops"
)

// backupOnRecord finds a verified backup of the connected chip: one the
// inventory lists for its MAC, or one in its folder of the backup store,
// whose dump still matches its sidecar and whose sidecar matches the chip.
// why says why none can be found when the chip has no MAC of its own.
func backupOnRecord(info flasher.Info) (path, why string) {
	if !info.HasMAC() {
		return "", "tuyaflash could not read its MAC, so it cannot tell this device's backups from others'"
	}
	if ph, what := info.MAC.Placeholder(); ph {
		return "", fmt.Sprintf("its MAC %s is a placeholder (%s) that many devices share, so tuyaflash cannot tell this device's backups from others'", info.MAC, what)
	}
	var candidates []string
	if invPath, err := inventory.DefaultPath(); err == nil {
		if inv, err := inventory.Open(invPath); err == nil {
			for _, d := range inv.Find(info.MAC.String()) {
				for i := len(d.Backups) - 1; i >= 0; i-- {
					candidates = append(candidates, d.Backups[i].Path)
				}
			}
		}
	}
	if root, err := backup.DefaultRoot(); err == nil {
		dir := filepath.Join(root, strings.ToLower(string(info.Family))+"-"+info.MAC.Compact())
		found, _ := filepath.Glob(filepath.Join(dir, "*.bin"))
		sort.Sort(sort.Reverse(sort.StringSlice(found)))
		candidates = append(candidates, found...)
	}
	for _, p := range candidates {
		if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
			continue
		}
		b, err := backup.Load(p, false)
		if err != nil || b.Sidecar.Offset != 0 || b.Sidecar.Size < int64(info.FlashSize) {
			continue
		}
		if ops.MatchSidecar(info, b.Sidecar) == nil && b.Sidecar.MAC != "" {
			return p, ""
		}
	}
	return "", ""
}

// requireBackup is the stock-safety gate before anything is written: the
// device's stock firmware exists nowhere else, so a device without a
// verified backup on record is written only with --yes. The virtual
// devices of sim: ports have no stock firmware to lose (a simulator on a
// pseudo-terminal stands in for a bench device and gets the gate).
func (e *env) requireBackup(s *session.Session, yes bool, port string) error {
	if s.Virtual != nil && s.Virtual.InProcess {
		return nil
	}
	info := s.Device.Info()
	path, why := backupOnRecord(info)
	if path != "" {
		e.events().Emit(flasher.Note, "backup on record: "+path)
		return nil
	}
	what := "no verified backup of this device is on record"
	if why != "" {
		what += ": " + why
	}
	if yes {
		e.events().Emit(flasher.Warning, what+"; writing anyway (--yes)")
		return nil
	}
	return &flasher.HintError{
		Err:  fmt.Errorf("%s: %w", what, flasher.ErrRefused),
		Hint: fmt.Sprintf("its stock firmware cannot be downloaded anywhere: back it up first with 'tuyaflash backup --port %s', or pass --yes to write without a backup", port),
	}
}
