package export

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzTinyTuya feeds device files to the tinytuya reader. Besides never
// panicking: cutting any entry out leaves a file that still reads, with
// the other entries unchanged, and putting it back with the layout
// recorded when it was cut gives the original bytes.
func FuzzTinyTuya(f *testing.F) {
	paths, _ := filepath.Glob("testdata/*.json")
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`[{"id":"a"}]`))
	f.Add([]byte(`{"timestamp": 1.5, "devices" : [ {"gwId":"b","mac":"c8:47:8c:1a:2b:3c"} , {"id":"c","sub":true} ] }`))
	f.Add([]byte("[\n\t{\"id\":\"x\", \"name\":\"é\"},\n\t[1],\n\t\"s\"\n]\n"))
	f.Add([]byte(`{"devices": [], "devices": []}`))
	f.Add([]byte("[{\"id\":\"a\",\"name\":\"caf\xe9\"}]")) // Latin-1, not UTF-8
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := parseDoc(data)
		if err != nil {
			if !errors.Is(err, ErrNotDeviceFile) {
				t.Fatalf("unclear error %v", err)
			}
			return
		}
		for i := range min(len(d.elems), 8) {
			text := append([]byte(nil), d.text(i)...)
			readEntry(text)
			lead, sep, trail := d.layout(i)
			cut := d.without(i)
			d2, err := parseDoc(cut)
			if err != nil || len(d2.elems) != len(d.elems)-1 {
				t.Fatalf("file without entry %d does not read (%v):\n%s", i, err, cut)
			}
			for j := range d2.elems {
				k := j
				if j >= i {
					k++
				}
				if !bytes.Equal(d2.text(j), d.text(k)) {
					t.Fatalf("cutting entry %d changed entry %d", i, k)
				}
			}
			if back := d2.with(i, string(text), lead, sep, trail); !bytes.Equal(back, data) {
				t.Fatalf("entry %d cut and put back:\n%q\nwant\n%q", i, back, data)
			}
		}
	})
}

// FuzzTinyTuyaUndo works on files: migrating the first device with an id
// and undoing it restores the file byte for byte (the archive keeps the
// entry's exact text); a file that does not read is refused and left
// alone. Slower than FuzzTinyTuya (every step is written and synced).
func FuzzTinyTuyaUndo(f *testing.F) {
	f.Add([]byte(`[{"id":"a"}]`))
	f.Add([]byte(`{"timestamp": 1.5, "devices" : [ {"gwId":"b","mac":"c8:47:8c:1a:2b:3c"} , {"id":"c","sub":true} ] }`))
	f.Add([]byte("[\n\t{\"id\":\"x\", \"name\":\"\\u00e9 <&>\"},\n\t[1],\n\t\"s\"\n]\n"))
	f.Add([]byte("[{\"id\":\"a\",\"name\":\"caf\xe9\"}]")) // Latin-1, not UTF-8
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := parseDoc(data)
		if err != nil {
			checkFileUntouched(t, data)
			return
		}
		for i := range d.elems {
			if e := readEntry(d.text(i)); e.id != "" {
				migrateAndUndo(t, data, e.id)
				return
			}
		}
	})
}

// migrateAndUndo runs Migrate then Undo for device id on a copy of data
// and checks that the file comes back byte for byte.
func migrateAndUndo(t *testing.T, data []byte, id string) {
	path := filepath.Join(t.TempDir(), "devices.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	o := Options{Now: func() time.Time { return time.Unix(1700000000, 0) }, LockWait: time.Second}
	m := []Match{{DeviceID: id}}
	res, err := MigrateTinyTuya(path, m, o)
	if err != nil || !res.Changed {
		t.Fatalf("migrate %q: %v", id, err)
	}
	if _, err := UndoTinyTuya(path, m, o); err != nil {
		t.Fatalf("undo %q: %v", id, err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, data) {
		t.Fatalf("migrate and undo of %q changed the file:\n%q\nwant\n%q", id, got, data)
	}
}

// checkFileUntouched: Migrate refuses a file that does not read and leaves
// it as it was.
func checkFileUntouched(t *testing.T, data []byte) {
	path := filepath.Join(t.TempDir(), "devices.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := MigrateTinyTuya(path, []Match{{DeviceID: "x"}}, Options{LockWait: time.Second}); !errors.Is(err, ErrNotDeviceFile) {
		t.Fatalf("migrate of an unreadable file: %v", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, data) {
		t.Fatal("an unreadable file was changed")
	}
}

// TestTinyTuyaRefusesNonUTF8: a file with bytes that are not UTF-8 is
// refused and left alone; it used to be migrated, and undo then wrote
// U+FFFD where those bytes were (found by FuzzTinyTuyaUndo's seeds).
func TestTinyTuyaRefusesNonUTF8(t *testing.T) {
	checkFileUntouched(t, []byte("[{\"id\":\"x\",\"name\":\"caf\xe9\"}]"))
}

// TestTinyTuyaUndoEntriesSharingAnID: two entries with the same device id
// ("gwId" in one, "id" in the other) both come back on undo; the second
// used to be taken for "already in the file" once the first was put back,
// and was dropped from the archive (found by FuzzTinyTuyaUndo).
func TestTinyTuyaUndoEntriesSharingAnID(t *testing.T) {
	migrateAndUndo(t, []byte(`{"devices" : [ {"gwId":"c"} , {"id":"c"} ] }`), "c")
	migrateAndUndo(t, []byte(`[{"id":"c","name":"a"},{"id":"d"},{"id":"c","name":"b"}]`), "c")
}
