package backup

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func saveDump(t *testing.T, root string, data []byte, s *Sidecar, dest string, now time.Time) (string, error) {
	t.Helper()
	tmp, err := TempFile(filepath.Join(root, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	defer tmp.Close()
	if _, err := tmp.Write(data); err != nil {
		t.Fatal(err)
	}
	return Save(tmp, s, root, dest, now)
}

func TestSaveStoresPerDeviceAndNeverOverwrites(t *testing.T) {
	root := t.TempDir()
	now := time.Date(2026, 11, 25, 17, 45, 1, 0, time.UTC)
	data := bytes.Repeat([]byte{0xA5, 0x5A}, 4096)
	s := &Sidecar{Family: "BK7231N", MAC: "10:D5:61:77:4A:AC", FlashID: "EB6015", FlashSize: 2 << 20}
	path, err := saveDump(t, root, data, s, "", now)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "bk7231n-10d561774aac"); filepath.Dir(path) != want {
		t.Errorf("stored in %s, want %s", filepath.Dir(path), want)
	}
	for _, p := range []string{path, path + ".json"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", p, st.Mode().Perm())
		}
	}
	b, err := Load(path, false)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Data, data) || b.Sidecar.Size != int64(len(data)) || b.Sidecar.Family != "BK7231N" {
		t.Errorf("loaded backup differs: size %d family %q", b.Sidecar.Size, b.Sidecar.Family)
	}
	// Same second, same data: the automatic name is taken, so the second
	// backup gets a suffix and the first stays intact.
	s2 := &Sidecar{Family: "BK7231N", MAC: "10:D5:61:77:4A:AC"}
	path2, err := saveDump(t, root, data, s2, "", now)
	if err != nil || path2 == path || !strings.HasSuffix(path2, "-2.bin") {
		t.Fatalf("second save = %s, %v; want a -2 suffix", path2, err)
	}
	if _, err := Load(path, false); err != nil {
		t.Fatalf("first backup damaged by the second: %v", err)
	}
	// An explicit destination that exists is refused, twice.
	for i := 0; i < 2; i++ {
		if _, err := saveDump(t, root, []byte("other"), &Sidecar{Family: "BK7231T"}, path, now); !errors.Is(err, ErrExists) {
			t.Fatalf("save over explicit existing path err = %v, want ErrExists", err)
		}
	}
	// The refused dumps are not thrown away either: their temporary
	// files stay for the caller to report; the successful saves left none.
	left, _ := filepath.Glob(filepath.Join(root, "tmp", ".tuyaflash-*"))
	if len(left) != 2 {
		t.Errorf("temporary files after two refused saves: %v, want 2", left)
	}
	if stray, _ := filepath.Glob(filepath.Join(root, "bk7231n-10d561774aac", ".tuyaflash-*")); len(stray) != 0 {
		t.Errorf("temporary files left in the device folder: %v", stray)
	}
}

func TestDeviceDir(t *testing.T) {
	sha := "3fa4c2d1e0b9aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55"
	tests := []struct {
		name string
		s    Sidecar
		want string
	}{
		{"mac", Sidecar{Family: "BK7231T", MAC: "10:D5:61:77:4A:AC", SHA256: sha}, "bk7231t-10d561774aac"},
		{"placeholder mac", Sidecar{Family: "BK7231N", MAC: "C8:47:8C:00:00:00", MACPlaceholder: "Beken default", FlashID: "EB6015", SHA256: sha}, "bk7231n-flasheb6015-3fa4c2d1e0b9"},
		{"no mac no id", Sidecar{Family: "BK7231T", SHA256: sha}, "bk7231t-flashnoid-3fa4c2d1e0b9"},
	}
	for _, tc := range tests {
		if got := DeviceDir(&tc.s); got != tc.want {
			t.Errorf("%s: DeviceDir = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestLoadRejectsDamagedBackups(t *testing.T) {
	root := t.TempDir()
	data := bytes.Repeat([]byte{1, 2, 3, 4}, 1024)
	path, err := saveDump(t, root, data, &Sidecar{Family: "BK7231N", MAC: "10:D5:61:00:00:01"}, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		mutate  func(t *testing.T, dump string)
		allow   bool
		wantErr error
	}{
		{"intact", func(*testing.T, string) {}, false, nil},
		{"truncated", func(t *testing.T, p string) { os.Truncate(p, 1000) }, false, ErrCorrupt},
		{"flipped byte", func(t *testing.T, p string) {
			b, _ := os.ReadFile(p)
			b[100] ^= 1
			os.WriteFile(p, b, 0o600)
		}, false, ErrCorrupt},
		{"sidecar missing", func(t *testing.T, p string) { os.Remove(p + ".json") }, false, ErrNoSidecar},
		{"sidecar missing allowed", func(t *testing.T, p string) { os.Remove(p + ".json") }, true, nil},
		{"sidecar garbage", func(t *testing.T, p string) { os.WriteFile(p+".json", []byte("{"), 0o600) }, false, ErrBadSidecar},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "dump.bin")
			raw, _ := os.ReadFile(path)
			meta, _ := os.ReadFile(path + ".json")
			os.WriteFile(p, raw, 0o600)
			os.WriteFile(p+".json", meta, 0o600)
			tc.mutate(t, p)
			_, err := Load(p, tc.allow)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("Load err = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestPartialResume(t *testing.T) {
	root := t.TempDir()
	p, err := OpenPartial(root, "dev", "BK7231N/EB6015/2097152/aa", 0, 16384)
	if err != nil {
		t.Fatal(err)
	}
	if p.Journal.Done != 0 {
		t.Fatalf("fresh partial has %d bytes done", p.Journal.Done)
	}
	chunk := bytes.Repeat([]byte{7}, 4096)
	p.File.Write(chunk)
	if err := p.Commit(4096); err != nil {
		t.Fatal(err)
	}
	p.File.Write(chunk[:100]) // written but never committed: a crash
	p.Close()

	p, err = OpenPartial(root, "dev", "BK7231N/EB6015/2097152/aa", 0, 16384)
	if err != nil {
		t.Fatal(err)
	}
	if p.Journal.Done != 4096 {
		t.Fatalf("resumed partial has %d bytes done, want 4096", p.Journal.Done)
	}
	if st, _ := p.File.Stat(); st.Size() != 4096 {
		t.Fatalf("uncommitted tail kept: file is %d bytes", st.Size())
	}
	p.Close()

	// Another device's identity: the old partial is moved aside, not
	// resumed and not deleted.
	p, err = OpenPartial(root, "dev", "BK7231N/EB6015/2097152/bb", 0, 16384)
	if err != nil {
		t.Fatal(err)
	}
	if p.Journal.Done != 0 {
		t.Fatalf("partial of another device resumed (%d bytes)", p.Journal.Done)
	}
	p.Close()
	if stale, _ := filepath.Glob(filepath.Join(root, ".partial", "dev.bin.stale-*")); len(stale) != 1 {
		t.Fatalf("stale partial not kept aside: %v", stale)
	}

	// A damaged data file (prefix CRC differs from the journal) restarts.
	p, _ = OpenPartial(root, "dev2", "id", 0, 16384)
	p.File.Write(chunk)
	p.Commit(4096)
	p.File.WriteAt([]byte{0}, 10)
	p.Close()
	p, _ = OpenPartial(root, "dev2", "id", 0, 16384)
	if p.Journal.Done != 0 {
		t.Fatalf("damaged partial resumed with %d bytes", p.Journal.Done)
	}
	p.Close()
}

// TestPartialCommitFails: a commit whose journal cannot be written (a full
// disk) returns the error and leaves Journal saying what the journal on
// disk records, and what a resume finds; the data file is cut to the
// committed length either way.
func TestPartialCommitFails(t *testing.T) {
	root := t.TempDir()
	p, err := OpenPartial(root, "dev", "id", 0, 16384)
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte{7}, 4096)
	p.File.Write(chunk)
	if err := p.Commit(4096); err != nil {
		t.Fatal(err)
	}
	p.File.Write(chunk)
	p.File.Write(chunk[:100]) // a write cut short mid-sector
	// The journal's replacement cannot be put in place.
	journal := p.Path() + ".json"
	if err := os.Remove(journal); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(journal, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := p.Commit(8192); err == nil {
		t.Fatal("a commit whose journal could not be written succeeded")
	}
	if p.Journal.Done != 4096 {
		t.Errorf("Journal.Done = %d after a failed commit, want the 4096 last recorded", p.Journal.Done)
	}
	if st, _ := p.File.Stat(); st.Size() != 8192 {
		t.Errorf("data file is %d bytes, want cut to 8192", st.Size())
	}
	p.Close()
}

// TestSidecarFormats: a sidecar is written with "0x…" ids and addresses
// and a structured verification; first-format sidecars are read too.
func TestSidecarFormats(t *testing.T) {
	s := Sidecar{Format: FormatV2, Family: "BK7231N", FlashID: "EB6015", Offset: 0x11000, SHA256: "ab", Size: 1,
		Verified: &Verification{Method: "crc32", By: "chip", Granularity: 65536}}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"flash_id":"0xEB6015"`, `"offset":"0x011000"`, `"verified":{"method":"crc32","by":"chip","granularity":65536}`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
	var back Sidecar
	if err := json.Unmarshal(b, &back); err != nil || back.FlashID != "EB6015" || back.Offset != 0x11000 || back.Verified == nil || back.Verified.Granularity != 65536 {
		t.Errorf("round trip: %+v %v", back, err)
	}
	v1 := `{"format": "tuyaflash-backup/1", "family": "BK7231N", "flash_id": "EB6015", "offset": 0, "size": 1, "sha256": "ab",
	  "verified": "every 64 KiB and the whole image against the chip's checksum"}`
	var old Sidecar
	if err := json.Unmarshal([]byte(v1), &old); err != nil || old.FlashID != "EB6015" || old.Offset != 0 || old.Verified == nil || !strings.Contains(old.Verified.Note, "64 KiB") {
		t.Errorf("first format: %+v %v", old, err)
	}
	if err := json.Unmarshal([]byte(`{"offset": "nowhere"}`), &old); err == nil {
		t.Error("a bad offset was accepted")
	}
}
