package inventory

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/postflash"
)

func TestMigrationJournalSurvivesSaveAndMerges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.json")
	inv := open(t, path)
	info := chip("D8:1F:12:AA:BB:CC", flashEB6015)
	if _, err := inv.UpdateMigration("d81f12aabbcc/eb6015", func(m *Migration) {}); !errors.Is(err, ErrUnknownDevice) {
		t.Fatalf("journal of an unknown device: %v", err)
	}
	d, _ := inv.RecordDetect(info)
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	inv.UpdateMigration(d.Key, func(m *Migration) {
		m.Port = "/dev/ttyUSB0"
		m.Mark("detect", StepDone, "BK7231N", t0)
		m.Mark("backup", StepRunning, "", t0.Add(time.Second))
	})
	if err := inv.Save(); err != nil {
		t.Fatal(err)
	}
	// Another process changes the same device meanwhile; both changes
	// stay.
	other := open(t, path)
	other.RecordWrite(info, "openbeken", "1.17.670", flasher.WriteResult{Size: 4096, Verified: true})
	inv.UpdateMigration(d.Key, func(m *Migration) {
		m.Backup = &MigrationBackup{Path: "/b/x.bin", SHA256: "ab", Size: 2 << 20}
		m.Mark("backup", StepDone, "saved", t0.Add(time.Minute))
	})
	if err := other.Save(); err != nil {
		t.Fatal(err)
	}
	if err := inv.Save(); err != nil {
		t.Fatal(err)
	}
	got := open(t, path)
	m := got.Migration(d.Key)
	if m == nil || m.Port != "/dev/ttyUSB0" || m.Backup == nil || m.Backup.Path != "/b/x.bin" {
		t.Fatalf("journal after save: %+v", m)
	}
	if s := m.Step("backup"); s.Status != StepDone || !s.Started.Equal(t0.Add(time.Second)) || !s.Ended.Equal(t0.Add(time.Minute)) {
		t.Errorf("backup step %+v", s)
	}
	if len(m.Steps) != 2 || m.StepStatus("write") != "" {
		t.Errorf("steps %+v", m.Steps)
	}
	if dev := got.Find(d.Key)[0]; dev.Firmware != "openbeken" {
		t.Errorf("the other process's write was lost: %+v", dev)
	}
	// Copies are deep: changing one does not change the inventory.
	m.Backup.Path = "changed"
	m.Steps[0].Status = "changed"
	if again := got.Migration(d.Key); again.Backup.Path != "/b/x.bin" || again.Steps[0].Status != StepDone {
		t.Error("Migration returned shared state")
	}
	if ds := got.MigrationsOnPort("/dev/ttyUSB0"); len(ds) != 1 || ds[0].Key != d.Key {
		t.Errorf("MigrationsOnPort: %+v", ds)
	}
	if ds := got.MigrationsOnPort("/dev/ttyUSB1"); len(ds) != 0 {
		t.Errorf("MigrationsOnPort of another port: %d", len(ds))
	}
}

func TestCandidates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.json")
	inv := open(t, path)
	placeholder := chip("C8:47:8C:00:00:00", flashEB6015)
	// Two boards of one model, each backed up in its own session (in one
	// session the same chip identity is the same board).
	a, _ := inv.RecordBackup(placeholder, "/b/a.bin", sidecar("board a"))
	inv.RecordBackup(chip("C8:47:8C:00:00:00", [3]byte{0x85, 0x40, 0x15}), "/b/c.bin", sidecar("other flash"))
	real, _ := inv.RecordDetect(chip("D8:1F:12:AA:BB:CC", flashEB6015))
	if err := inv.Save(); err != nil {
		t.Fatal(err)
	}
	inv2 := open(t, path)
	b, _ := inv2.RecordBackup(placeholder, "/b/b.bin", sidecar("board b"))
	if err := inv2.Save(); err != nil {
		t.Fatal(err)
	}
	fresh := open(t, path)
	if got := fresh.Candidates(chip("D8:1F:12:AA:BB:CC", flashEB6015)); len(got) != 1 || got[0].Key != real.Key {
		t.Errorf("a device with its own MAC: %+v", got)
	}
	if got := fresh.Candidates(chip("D8:1F:12:00:00:01", flashEB6015)); len(got) != 0 {
		t.Errorf("an unknown MAC: %+v", got)
	}
	got := fresh.Candidates(placeholder)
	if len(got) != 2 || got[0].Key != a.Key || got[1].Key != b.Key {
		t.Fatalf("placeholder candidates: %+v", got)
	}
	if _, ok := fresh.Key(placeholder); ok {
		t.Error("a placeholder chip has a key before its backup is seen")
	}
	v, err := fresh.RecordVerifyOf(b.Key, &postflash.Result{Host: "10.0.0.7", Firmware: postflash.OpenBeken}, nil)
	if err != nil || v.IP != "10.0.0.7" || v.LastVerify == nil || !v.LastVerify.OK {
		t.Errorf("verify by key: %v %+v", err, v)
	}
}
