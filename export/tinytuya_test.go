package export

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/inventory"
	"github.com/tuyaflash/tuyaflash/inventory/atomicfile"
)

// The fixtures are shaped like tinytuya's own files: devices.json as the
// wizard writes it (json.dumps(indent=4), non-ASCII escaped, the fields of
// Cloud.filter_devices and DEVICEFILE_SAVE_VALUES, Zigbee sub-devices with
// "sub": true and "parent" as wizard.py sets it, one with an unknown
// parent ""), the {"devices": […]} form with other top-level keys, and
// snapshot.json as scanner.save_snapshotfile writes it (timestamp float,
// "ver", "origin", one old entry with "gwId").
var fixtures = []struct {
	file, form string
}{
	{"devices_list.json", FormList},
	{"devices_object.json", FormObject},
	{"snapshot.json", FormObject},
}

var fixedNow = func() time.Time { return time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC) }

// the migrated devices: the plug by MAC (another notation), the bulb by id.
var migrated = []Match{
	{MAC: "D8-1F-12-AA-BB-CC", Reason: "flashed with openbeken 1.17.670"},
	{DeviceID: "eb5c2d90a1b2c3d4e5f6zz", Reason: "flashed with esphome"},
}

func copyFixture(t *testing.T, name string, mode os.FileMode) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, mode)
	return path
}

// entries returns the exact text of each device entry, and the bytes
// around the device list.
func entries(t *testing.T, data []byte) (texts []string, before, after string) {
	t.Helper()
	d, err := parseDoc(data)
	if err != nil {
		t.Fatalf("result is not a device file: %v", err)
	}
	for i := range d.elems {
		texts = append(texts, string(d.text(i)))
	}
	return texts, string(data[:d.open]), string(data[d.close+1:])
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n []string
	for _, e := range ents {
		n = append(n, e.Name())
	}
	return n
}

func TestMigrateMovesOnlyTheMigratedEntries(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.file, func(t *testing.T) {
			path := copyFixture(t, fx.file, 0o644)
			orig, _ := os.ReadFile(path)
			origTexts, origBefore, origAfter := entries(t, orig)

			res, err := MigrateTinyTuya(path, migrated, Options{Now: fixedNow})
			if err != nil {
				t.Fatal(err)
			}
			if res.Form != fx.form || !res.Changed || len(res.Moved) != 2 {
				t.Fatalf("result %+v", res)
			}
			if res.Moved[0].Name != "Kitchen Plug" || res.Moved[0].MatchedBy != "mac" || res.Moved[0].Index != 0 ||
				res.Moved[1].Name != "Hall Bulb" || res.Moved[1].MatchedBy != "id" || res.Moved[1].Index != 1 {
				t.Errorf("moved %+v", res.Moved)
			}
			now, _ := os.ReadFile(path)
			texts, before, after := entries(t, now)
			// Every other entry is there, in order, byte for byte; so is
			// everything around the list (other keys, their order).
			if want := origTexts[2:]; !slices.Equal(texts, want) {
				t.Errorf("remaining entries changed:\n%q\nwant\n%q", texts, want)
			}
			if before != origBefore || after != origAfter {
				t.Errorf("bytes around the device list changed")
			}
			if !json.Valid(now) {
				t.Fatal("result is not valid JSON")
			}
			if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
				t.Errorf("file mode changed to %v", st.Mode().Perm())
			}
			// The copy of the original and the archive, both 0600.
			if cp, _ := os.ReadFile(res.Copy); !bytes.Equal(cp, orig) {
				t.Errorf("copy %s differs from the original", res.Copy)
			}
			for _, p := range []string{res.Copy, res.Archive} {
				if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
					t.Errorf("%s: %v mode %v, want 0600 (holds local keys)", p, err, st.Mode().Perm())
				}
			}
			var ar archiveFile
			b, _ := os.ReadFile(res.Archive)
			if err := json.Unmarshal(b, &ar); err != nil || len(ar.Entries) != 2 || ar.Entries[0].Text != origTexts[0] || ar.Entries[1].Text != origTexts[1] {
				t.Fatalf("archive: %v %+v", err, ar)
			}
			if ar.Entries[0].Reason != "flashed with openbeken 1.17.670" {
				t.Errorf("reason %q", ar.Entries[0].Reason)
			}

			// A second run changes nothing, not even a new copy.
			files := dirNames(t, filepath.Dir(path))
			res2, err := MigrateTinyTuya(path, migrated, Options{Now: func() time.Time { return fixedNow().Add(time.Hour) }})
			if err != nil {
				t.Fatal(err)
			}
			if res2.Changed || len(res2.Moved) != 0 || len(res2.Already) != 2 || res2.Copy != "" {
				t.Errorf("second run: %+v", res2)
			}
			if again, _ := os.ReadFile(path); !bytes.Equal(again, now) {
				t.Error("second run changed the file")
			}
			if b2, _ := os.ReadFile(res.Archive); !bytes.Equal(b2, b) {
				t.Error("second run changed the archive")
			}
			if got := dirNames(t, filepath.Dir(path)); !slices.Equal(got, files) {
				t.Errorf("second run added files: %v → %v", files, got)
			}

			// And --undo puts the file back exactly.
			res3, err := UndoTinyTuya(path, nil, Options{Now: fixedNow})
			if err != nil || len(res3.Moved) != 2 {
				t.Fatalf("undo: %v %+v", err, res3)
			}
			if back, _ := os.ReadFile(path); !bytes.Equal(back, orig) {
				t.Errorf("undo did not restore the original bytes:\n%s", back)
			}
			if res3.Copy == "" || res3.Copy == res.Copy {
				t.Errorf("undo kept no new copy of the file it changed (%q)", res3.Copy)
			}
		})
	}
}

func TestMatchingRules(t *testing.T) {
	cases := []struct {
		name  string
		match Match
		moved []string
	}{
		{"placeholder MAC matches nothing", Match{MAC: "C8:47:8C:00:00:00"}, nil},
		{"placeholder device found by id", Match{DeviceID: "bfdeadbeef0123456789ab", MAC: "C8:47:8C:00:00:00"}, []string{"Desk Lamp"}},
		{"sub-device sharing its gateway's MAC stays", Match{MAC: "10:5A:17:00:00:01"}, []string{"Zigbee Gateway"}},
		{"sub-device by id", Match{DeviceID: "bf99887766554433221100"}, []string{"Door Sensor"}},
		{"sub-device with unknown parent by id", Match{DeviceID: "bf55443322110099887766"}, []string{"Motion Sensor"}},
		{"unknown device", Match{DeviceID: "nope", MAC: "02:00:00:00:00:01"}, nil},
		{"bad MAC", Match{MAC: "zz"}, nil},
	}
	for _, fx := range fixtures {
		for _, c := range cases {
			if fx.file == "snapshot.json" && strings.Contains(c.name, "sub-device") {
				continue // sub-devices do not answer the scan: never in a snapshot
			}
			t.Run(fx.file+"/"+c.name, func(t *testing.T) {
				path := copyFixture(t, fx.file, 0o600)
				orig, _ := os.ReadFile(path)
				res, err := MigrateTinyTuya(path, []Match{c.match}, Options{Now: fixedNow})
				if err != nil {
					t.Fatal(err)
				}
				var names []string
				for _, m := range res.Moved {
					names = append(names, m.Name)
				}
				if !slices.Equal(names, c.moved) {
					t.Errorf("moved %v, want %v", names, c.moved)
				}
				if c.moved == nil {
					if now, _ := os.ReadFile(path); !bytes.Equal(now, orig) || res.Changed || len(res.Missing) != 1 {
						t.Errorf("no match, but changed=%v missing=%v", res.Changed, res.Missing)
					}
					if _, err := os.Stat(res.Archive); err == nil {
						t.Error("an archive was written for nothing")
					}
				}
			})
		}
	}
}

// TestUndoRestoresEveryPosition cuts out entries at every position (and
// several at once) in both layouts, then puts them back.
func TestUndoRestoresEveryPosition(t *testing.T) {
	layouts := map[string]func(ids []string) string{
		"indent4": func(ids []string) string {
			if len(ids) == 0 {
				return "[]"
			}
			var p []string
			for _, id := range ids {
				p = append(p, fmt.Sprintf("    {\n        \"id\": %q,\n        \"key\": \"k\"\n    }", id))
			}
			return "[\n" + strings.Join(p, ",\n") + "\n]"
		},
		"compact": func(ids []string) string {
			var p []string
			for _, id := range ids {
				p = append(p, fmt.Sprintf(`{"id":%q}`, id))
			}
			return `{"devices":[` + strings.Join(p, ",") + `],"x":1}`
		},
	}
	ids := []string{"a", "b", "c", "d"}
	var sets [][]string
	for _, id := range ids {
		sets = append(sets, []string{id})
	}
	sets = append(sets, []string{"a", "c"}, []string{"b", "d"}, ids)
	for lname, layout := range layouts {
		for _, n := range []int{1, 4} {
			for _, set := range sets {
				if n == 1 && (len(set) != 1 || set[0] != "a") {
					continue
				}
				t.Run(fmt.Sprintf("%s/%d/%v", lname, n, set), func(t *testing.T) {
					path := filepath.Join(t.TempDir(), "devices.json")
					orig := layout(ids[:n])
					os.WriteFile(path, []byte(orig), 0o600)
					var ms []Match
					var rest []string
					for _, id := range set {
						ms = append(ms, Match{DeviceID: id})
					}
					for _, id := range ids[:n] {
						if !slices.Contains(set, id) {
							rest = append(rest, id)
						}
					}
					if _, err := MigrateTinyTuya(path, ms, Options{Now: fixedNow}); err != nil {
						t.Fatal(err)
					}
					got, _ := os.ReadFile(path)
					if lname == "indent4" && string(got) != layout(rest) {
						t.Errorf("after migrate:\n%s\nwant\n%s", got, layout(rest))
					}
					if lname == "compact" && string(got) != layout(rest) {
						t.Errorf("after migrate: %s want %s", got, layout(rest))
					}
					if _, err := UndoTinyTuya(path, ms, Options{Now: fixedNow}); err != nil {
						t.Fatal(err)
					}
					if got, _ := os.ReadFile(path); string(got) != orig {
						t.Errorf("after undo:\n%s\nwant\n%s", got, orig)
					}
				})
			}
		}
	}
}

func TestUndoDoesNotDuplicate(t *testing.T) {
	path := copyFixture(t, "devices_list.json", 0o600)
	orig, _ := os.ReadFile(path)
	if _, err := MigrateTinyTuya(path, migrated, Options{Now: fixedNow}); err != nil {
		t.Fatal(err)
	}
	// The user ran tinytuya's wizard again: the whole list is back.
	os.WriteFile(path, orig, 0o600)
	res, err := UndoTinyTuya(path, []Match{{MAC: "d8:1f:12:aa:bb:cc"}}, Options{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Moved) != 0 || len(res.Already) != 1 || res.Copy != "" {
		t.Errorf("%+v", res)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, orig) {
		t.Error("entry added twice")
	}
	var ar archiveFile
	b, _ := os.ReadFile(ArchivePath(path))
	json.Unmarshal(b, &ar)
	if len(ar.Entries) != 1 || ar.Entries[0].Name != "Hall Bulb" {
		t.Errorf("archive after undo of the plug: %+v", ar.Entries)
	}
	if res, _ := UndoTinyTuya(path, []Match{{DeviceID: "nope"}}, Options{}); len(res.Missing) != 1 || res.Changed {
		t.Errorf("undo of an unknown device: %+v", res)
	}
}

func TestRefusesWhatIsNotADeviceFile(t *testing.T) {
	cases := []string{"", "   ", "{}", `{"devices": 5}`, `{"devices": [], "devices": []}`, `[{"id":"a"}] [1]`, `"text"`, `[{"id":"a"},]`, "\xef\xbb\xbf[]"}
	for _, c := range cases {
		path := filepath.Join(t.TempDir(), "devices.json")
		os.WriteFile(path, []byte(c), 0o600)
		_, err := MigrateTinyTuya(path, migrated, Options{})
		if !errors.Is(err, ErrNotDeviceFile) {
			t.Errorf("%q: %v", c, err)
		}
		if b, _ := os.ReadFile(path); string(b) != c {
			t.Errorf("%q was changed", c)
		}
	}
	if _, err := MigrateTinyTuya(filepath.Join(t.TempDir(), "missing.json"), migrated, Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	// A list of something else is a device file with nothing to match.
	path := filepath.Join(t.TempDir(), "devices.json")
	os.WriteFile(path, []byte(`[1, "x", null]`), 0o600)
	if res, err := MigrateTinyTuya(path, migrated, Options{}); err != nil || res.Changed {
		t.Errorf("list of scalars: %v %+v", err, res)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	path := copyFixture(t, "devices_list.json", 0o600)
	before := dirNames(t, filepath.Dir(path))
	orig, _ := os.ReadFile(path)
	res, err := MigrateTinyTuya(path, migrated, Options{DryRun: true})
	if err != nil || len(res.Moved) != 2 || !res.DryRun {
		t.Fatalf("%v %+v", err, res)
	}
	after := slices.DeleteFunc(dirNames(t, filepath.Dir(path)), func(n string) bool { return n == filepath.Base(atomicfile.LockPath(path)) })
	now, _ := os.ReadFile(path)
	if !bytes.Equal(now, orig) || !slices.Equal(before, after) {
		t.Errorf("dry run wrote: %v → %v", before, after)
	}
}

// TestRenameFailureKeepsOriginal: the disk fails at the last step.
func TestRenameFailureKeepsOriginal(t *testing.T) {
	path := copyFixture(t, "devices_list.json", 0o600)
	orig, _ := os.ReadFile(path)
	writeHook = func(s atomicfile.Stage, tmp string) error {
		if s == atomicfile.StageBeforeRename {
			return errors.New("simulated rename failure")
		}
		return nil
	}
	_, err := MigrateTinyTuya(path, migrated, Options{Now: fixedNow})
	writeHook = nil
	if err == nil || !strings.Contains(err.Error(), "simulated rename failure") {
		t.Fatalf("err = %v", err)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, orig) {
		t.Fatal("original changed by a failed write")
	}
	if m, _ := filepath.Glob(atomicfile.TempPattern(path)); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
	// Running again finishes the job; the entries are archived once.
	res, err := MigrateTinyTuya(path, migrated, Options{Now: fixedNow})
	if err != nil || len(res.Moved) != 2 {
		t.Fatalf("rerun: %v %+v", err, res)
	}
	assertMigratedOnce(t, path, orig)
}

// assertMigratedOnce checks the state after a complete migration of the
// list fixture: two entries gone, each archived exactly once.
func assertMigratedOnce(t *testing.T, path string, orig []byte) {
	t.Helper()
	origTexts, _, _ := entries(t, orig)
	now, _ := os.ReadFile(path)
	texts, _, _ := entries(t, now)
	if !slices.Equal(texts, origTexts[2:]) {
		t.Errorf("file after rerun: %d entries", len(texts))
	}
	var ar archiveFile
	b, _ := os.ReadFile(ArchivePath(path))
	if err := json.Unmarshal(b, &ar); err != nil || len(ar.Entries) != 2 {
		t.Errorf("archive holds %d entries (%v), want 2", len(ar.Entries), err)
	}
}

func TestArchiveDamagedIsRefused(t *testing.T) {
	path := copyFixture(t, "devices_list.json", 0o600)
	os.WriteFile(ArchivePath(path), []byte("{broken"), 0o600)
	orig, _ := os.ReadFile(path)
	if _, err := MigrateTinyTuya(path, migrated, Options{}); !errors.Is(err, ErrNotDeviceFile) {
		t.Fatalf("damaged archive: %v", err)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, orig) {
		t.Error("file changed although the archive could not be read")
	}
	if b, _ := os.ReadFile(ArchivePath(path)); string(b) != "{broken" {
		t.Error("damaged archive overwritten")
	}
}

func TestMatchesFromInventory(t *testing.T) {
	w := []inventory.Write{{Date: fixedNow(), Firmware: "openbeken", Version: "1.17.670"}}
	devs := []inventory.Device{
		{Key: "a", MAC: "D8:1F:12:AA:BB:CC", Firmware: "openbeken", FirmwareVersion: "1.17.670", Writes: w, Tuya: &inventory.Tuya{DeviceID: "id-a"}},
		{Key: "b", MAC: "C8:47:8C:00:00:00", MACPlaceholder: "Beken default", Firmware: "tasmota", Writes: w, Tuya: &inventory.Tuya{DeviceID: "id-b"}},
		{Key: "c", MAC: "D8:1F:12:00:00:01"},                                                                  // never flashed
		{Key: "d", MAC: "D8:1F:12:00:00:02", Firmware: inventory.FirmwareStock, Writes: w},                    // restored
		{Key: "e", MAC: "C8:47:8C:00:00:00", MACPlaceholder: "Beken default", Firmware: "esphome", Writes: w}, // nothing to match on
	}
	got := MatchesFromInventory(devs, true)
	if len(got) != 2 || got[0].MAC != "D8:1F:12:AA:BB:CC" || got[0].DeviceID != "id-a" || got[1].MAC != "" || got[1].DeviceID != "id-b" {
		t.Fatalf("migrated: %+v", got)
	}
	if !strings.Contains(got[0].Reason, "openbeken 1.17.670 on 2026-05-01") || !strings.Contains(got[0].Reason, "inventory a") {
		t.Errorf("reason %q", got[0].Reason)
	}
	back := MatchesFromInventory(devs, false)
	if len(back) != 1 || back[0].MAC != "D8:1F:12:00:00:02" {
		t.Errorf("restored: %+v", back)
	}
}

// TestFileRewrittenMeanwhile: tinytuya takes no lock; if it rewrites the
// file between tuyaflash's read and its replace, tuyaflash leaves it alone.
func TestFileRewrittenMeanwhile(t *testing.T) {
	path := copyFixture(t, "devices_list.json", 0o600)
	rewritten := []byte("[]\n")
	testBeforeReplace = func() { os.WriteFile(path, rewritten, 0o600) }
	defer func() { testBeforeReplace = nil }()
	_, err := MigrateTinyTuya(path, migrated, Options{Now: fixedNow})
	if !errors.Is(err, ErrChanged) || !strings.Contains(flasher.Hint(err), "run the export again") {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, rewritten) {
		t.Errorf("tinytuya's rewrite was overwritten: %s", b)
	}
}

// TestUndoOfAnEntryInTheFile: an undo of a device whose entry is in the
// file (never moved, or put back earlier) reports it as there, not as
// missing from the file.
func TestUndoOfAnEntryInTheFile(t *testing.T) {
	path := copyFixture(t, "devices_list.json", 0o600)
	orig, _ := os.ReadFile(path)
	res, err := UndoTinyTuya(path, []Match{{MAC: "d8:1f:12:aa:bb:cc"}, {DeviceID: "nope"}}, Options{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Already) != 1 || res.Already[0].MAC == "" || len(res.Missing) != 1 || res.Missing[0].DeviceID != "nope" || res.Changed {
		t.Errorf("already %+v, missing %+v, changed %v", res.Already, res.Missing, res.Changed)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, orig) {
		t.Error("file changed")
	}
}

// TestVirtualDevicesAreLeftOut: exports never touch a virtual device.
func TestVirtualDevicesAreLeftOut(t *testing.T) {
	w := []inventory.Write{{Date: fixedNow(), Firmware: "openbeken"}}
	devs := []inventory.Device{
		{Key: "real", MAC: "D8:1F:12:AA:BB:CC", Firmware: "openbeken", Writes: w},
		{Key: "sim", MAC: "02:42:4B:72:31:01", Firmware: "openbeken", Writes: w, Virtual: true},
	}
	if got := MatchesFromInventory(devs, true); len(got) != 1 || got[0].MAC != "D8:1F:12:AA:BB:CC" {
		t.Errorf("tinytuya matches %+v", got)
	}
	if got := HomeAssistant(devs, HAOptions{}); len(got) != 1 || got[0].Key != "real" {
		t.Errorf("Home Assistant hints for %+v", got)
	}
}
