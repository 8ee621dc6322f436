// Package export hands what tuyaflash knows about migrated devices to the
// user's other tools: it takes them out of tinytuya's devices.json and
// snapshot.json (into an archive next to the file, from which they can be
// put back), tells what to add to Home Assistant for each device's new
// firmware, and renders pin templates from the Tuya config in the
// inventory. It never prints; the CLI renders its results.
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
	"time"

	"github.com/tuyaflash/tuyaflash/backup"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/internal/safefile"
	"github.com/tuyaflash/tuyaflash/inventory"
	"github.com/tuyaflash/tuyaflash/inventory/atomicfile"
)

// ArchiveFormatV1 is the Format of the archive files written here.
const ArchiveFormatV1 = "tuyaflash-tinytuya-archive/1"

// Errors callers can branch on with errors.Is.
var (
	// ErrNotDeviceFile: the file is not a tinytuya device list (neither
	// [ … ] nor {"devices": [ … ]}); it is left alone.
	ErrNotDeviceFile = errors.New("not a tinytuya device file")
	// ErrChanged: another program rewrote the file while tuyaflash
	// worked on it; it is left alone.
	ErrChanged = errors.New("file changed while tuyaflash was updating it")
)

// Match selects the tinytuya entries of one device: by Tuya device id
// ("id", or "gwId" in older snapshots) or by MAC. A placeholder MAC matches
// nothing; sub-devices of a gateway ("sub": true, a "parent" key or a
// "node_id") match by id only, since they may carry their gateway's MAC.
type Match struct {
	DeviceID string `json:"device_id,omitempty"`
	MAC      string `json:"mac,omitempty"`
	// Reason is stored with the archived entry, e.g. "flashed with
	// openbeken 1.17.670 on 2026-05-01".
	Reason string `json:"reason,omitempty"`
}

// MatchesFromInventory builds the matches for the devices that run another
// firmware than the stock one (migrated true), or for those written back to
// stock (migrated false, for Undo). Virtual devices are left out.
func MatchesFromInventory(devs []inventory.Device, migrated bool) []Match {
	var out []Match
	for _, d := range devs {
		if d.Virtual || d.Migrated() != migrated || d.Firmware == "" {
			continue
		}
		m := Match{}
		if d.Tuya != nil {
			m.DeviceID = d.Tuya.DeviceID
		}
		if d.MACPlaceholder == "" {
			m.MAC = d.MAC
		}
		if m.DeviceID == "" && m.MAC == "" {
			continue
		}
		fw, ver := d.CurrentFirmware()
		m.Reason = strings.TrimSpace("flashed with " + fw + " " + ver)
		if n := len(d.Writes); n > 0 {
			m.Reason += " on " + d.Writes[n-1].Date.Format("2006-01-02")
		}
		m.Reason += " (tuyaflash inventory " + d.Key + ")"
		out = append(out, m)
	}
	return out
}

// Entry describes one device entry of a tinytuya file.
type Entry struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
	MAC  string `json:"mac,omitempty"`
	// Index is the entry's position in the device list (0-based) before
	// it was moved out, or where it was put back.
	Index int `json:"index"`
	// MatchedBy is "id" or "mac".
	MatchedBy string `json:"matched_by,omitempty"`
}

// Result reports what MigrateTinyTuya or UndoTinyTuya did to one file.
type Result struct {
	File string `json:"file"`
	Form string `json:"form"`
	// Moved are the entries moved into the archive (Migrate) or back
	// into the file (Undo).
	Moved []Entry `json:"moved"`
	// Already are matches that needed nothing: already archived
	// (Migrate) or already in the file (Undo).
	Already []Entry `json:"already,omitempty"`
	// Missing are matches found neither in the file nor in the archive.
	Missing []Match `json:"missing,omitempty"`
	Archive string  `json:"archive"`
	// Copy is the copy of the file as it was before, "" when the file
	// was not changed.
	Copy    string `json:"copy,omitempty"`
	Changed bool   `json:"changed"`
	DryRun  bool   `json:"dry_run,omitempty"`
	// Removed counts stale temporary files of a killed earlier run that
	// were cleaned up.
	Removed int `json:"stale_removed,omitempty"`
}

// Options tune MigrateTinyTuya and UndoTinyTuya.
type Options struct {
	// DryRun computes the result but writes nothing.
	DryRun bool
	// Now is the clock (default time.Now).
	Now func() time.Time
	// LockWait bounds the wait for another tuyaflash working on the same
	// file (default 10 s).
	LockWait time.Duration
}

// Test hooks: writeHook makes the final replace fail or kills the process;
// testBeforeReplace runs just before the file is checked and replaced.
var (
	writeHook         atomicfile.Hook
	testBeforeReplace func()
)

// archived is one entry in the archive file.
type archived struct {
	ID         string    `json:"id,omitempty"`
	Name       string    `json:"name,omitempty"`
	MAC        string    `json:"mac,omitempty"`
	Index      int       `json:"index"`
	ArchivedAt time.Time `json:"archived_at"`
	Reason     string    `json:"reason,omitempty"`
	// Text is the entry exactly as it stood in the file; Lead, Sep and
	// Trail the white space around it, so that putting it back restores
	// the file byte for byte.
	Text  string `json:"text"`
	Lead  string `json:"lead,omitempty"`
	Sep   string `json:"sep,omitempty"`
	Trail string `json:"trail,omitempty"`
}

type archiveFile struct {
	Format  string     `json:"format"`
	File    string     `json:"file"`
	Note    string     `json:"note"`
	Entries []archived `json:"entries"`
}

// ArchivePath is the archive next to a tinytuya file:
// "<file>.tuyaflash-archive.json".
func ArchivePath(file string) string { return file + ".tuyaflash-archive.json" }

// entryInfo reads the fields tuyaflash matches on.
type entryInfo struct {
	id, name, mac string
	sub           bool
	object        bool
}

func readEntry(text []byte) entryInfo {
	var m map[string]json.RawMessage
	if json.Unmarshal(text, &m) != nil {
		return entryInfo{}
	}
	str := func(k string) string {
		var s string
		if v, ok := m[k]; ok {
			json.Unmarshal(v, &s)
		}
		return s
	}
	e := entryInfo{id: str("id"), name: str("name"), mac: str("mac"), object: true}
	if e.id == "" {
		e.id = str("gwId")
	}
	// tinytuya's wizard gives every sub-device a "parent" (empty when it
	// could not find the gateway) and keeps the cloud's "sub" flag.
	var sub bool
	json.Unmarshal(m["sub"], &sub)
	_, hasParent := m["parent"]
	e.sub = sub || hasParent || str("node_id") != ""
	return e
}

// matchedBy says how m selects e ("" when it does not).
func (m Match) matchedBy(e entryInfo) string {
	if !e.object {
		return ""
	}
	if m.DeviceID != "" && e.id == m.DeviceID {
		return "id"
	}
	if e.sub || m.MAC == "" || e.mac == "" {
		return ""
	}
	a, err1 := flasher.ParseMAC(m.MAC)
	b, err2 := flasher.ParseMAC(e.mac)
	if err1 != nil || err2 != nil || a != b {
		return ""
	}
	if ph, _ := a.Placeholder(); ph {
		return ""
	}
	return "mac"
}

func (m Match) matchesArchived(a archived) bool {
	return m.matchedBy(entryInfo{id: a.ID, mac: a.MAC, object: true}) != ""
}

// session is one locked read-modify-write of a tinytuya file and its
// archive.
type session struct {
	file, archivePath string
	o                 Options
	now               time.Time
	orig              []byte
	mode              os.FileMode
	doc               *doc
	archive           archiveFile
	res               *Result
	unlock            func()
}

func begin(file string, o Options) (*session, error) {
	// The user's own link (a devices.json kept with dotfiles) is
	// followed; one planted by another user is refused.
	file, err := safefile.FollowOwnLink(file)
	if err != nil {
		return nil, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LockWait == 0 {
		o.LockWait = 10 * time.Second
	}
	s := &session{file: file, archivePath: ArchivePath(file), o: o, now: o.Now().UTC().Truncate(time.Second)}
	st, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	s.mode = st.Mode().Perm()
	unlock, err := atomicfile.Lock(file, o.LockWait)
	if err != nil {
		return nil, err
	}
	s.unlock = unlock
	s.res = &Result{File: file, Archive: s.archivePath, DryRun: o.DryRun, Moved: []Entry{}}
	if !o.DryRun {
		s.res.Removed = atomicfile.RemoveStale(file) + atomicfile.RemoveStale(s.archivePath)
	}
	if s.orig, err = os.ReadFile(file); err != nil {
		s.unlock()
		return nil, err
	}
	if s.doc, err = parseDoc(s.orig); err != nil {
		s.unlock()
		return nil, &flasher.HintError{Err: fmt.Errorf("%s: %w", file, err), Hint: "pass tinytuya's devices.json (a list) or snapshot.json ({\"devices\": […]}); the file was not changed"}
	}
	s.res.Form = s.doc.form
	if err := s.loadArchive(); err != nil {
		s.unlock()
		return nil, err
	}
	return s, nil
}

func (s *session) loadArchive() error {
	data, err := os.ReadFile(s.archivePath)
	if errors.Is(err, os.ErrNotExist) {
		s.archive = archiveFile{Format: ArchiveFormatV1, File: filepath.Base(s.file)}
		return nil
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, &s.archive); err != nil || s.archive.Format != ArchiveFormatV1 {
		return &flasher.HintError{
			Err:  fmt.Errorf("%s: %w: not a tuyaflash archive (%v)", s.archivePath, ErrNotDeviceFile, err),
			Hint: "it holds the entries of migrated devices: repair it or move it aside; nothing was changed",
		}
	}
	return nil
}

// commit writes the new file content and archive in the order that keeps
// every entry somewhere at every moment: archiveFirst for Migrate (the
// entry is in the archive before it leaves the file), file first for Undo.
func (s *session) commit(data []byte, archiveFirst bool) error {
	if s.o.DryRun {
		return nil
	}
	if !bytes.Equal(data, s.orig) {
		cp, err := s.saveCopy()
		if err != nil {
			return err
		}
		s.res.Copy = cp
	}
	writeArchive := func() error {
		s.archive.Note = "entries tuyaflash took out of " + filepath.Base(s.file) + " when their devices left the stock Tuya firmware; 'tuyaflash export tinytuya --undo' puts them back"
		b, err := json.MarshalIndent(s.archive, "", "  ")
		if err != nil {
			return err
		}
		return atomicfile.Write(s.archivePath, append(b, '\n'), 0o600)
	}
	if archiveFirst {
		if err := writeArchive(); err != nil {
			return err
		}
	}
	if !bytes.Equal(data, s.orig) {
		if testBeforeReplace != nil {
			testBeforeReplace()
		}
		// tinytuya takes no lock: make sure it did not rewrite the file
		// while we worked.
		if now, err := os.ReadFile(s.file); err != nil || !bytes.Equal(now, s.orig) {
			return &flasher.HintError{Err: fmt.Errorf("%s: %w", s.file, ErrChanged), Hint: "run the export again once tinytuya has finished"}
		}
		if err := atomicfile.WriteHook(s.file, data, s.mode, writeHook); err != nil {
			return &flasher.HintError{Err: err, Hint: s.file + " was not changed; run the export again"}
		}
	}
	if !archiveFirst {
		return writeArchive()
	}
	return nil
}

// saveCopy keeps the file as it was, under a new name that never replaces
// an earlier copy.
func (s *session) saveCopy() (string, error) {
	base := s.file + ".orig-" + s.now.Format("20060102-150405")
	name := base
	for n := 2; ; n++ {
		err := backup.WriteFileNew(name, s.orig)
		if err == nil {
			return name, nil
		}
		if !errors.Is(err, backup.ErrExists) || n > 99 {
			return "", fmt.Errorf("keep a copy of %s: %w", s.file, err)
		}
		name = fmt.Sprintf("%s-%d", base, n)
	}
}

// MigrateTinyTuya moves the entries selected by matches out of a tinytuya
// device file (devices.json, or snapshot.json) into ArchivePath(file).
// Every other byte of the file stays as it was: other entries, unknown
// fields, key order, indentation. Before the file is replaced (atomically,
// keeping its permissions) a copy of it is kept as "<file>.orig-<time>";
// the archive (mode 0600, it holds local keys) is written first, so that
// an entry is never lost, whatever moment the process dies at. Running it
// again changes nothing.
func MigrateTinyTuya(file string, matches []Match, o Options) (*Result, error) {
	s, err := begin(file, o)
	if err != nil {
		return nil, err
	}
	defer s.unlock()
	type cut struct {
		i  int
		by string
		m  Match
	}
	var cuts []cut
	found := make([]bool, len(matches))
	for i := range s.doc.elems {
		e := readEntry(s.doc.text(i))
		for j, m := range matches {
			if by := m.matchedBy(e); by != "" {
				cuts = append(cuts, cut{i, by, m})
				found[j] = true
				break
			}
		}
	}
	for j, m := range matches {
		if found[j] {
			continue
		}
		hit := false
		for _, a := range s.archive.Entries {
			if m.matchesArchived(a) {
				s.res.Already = append(s.res.Already, Entry{ID: a.ID, Name: a.Name, MAC: a.MAC, Index: a.Index})
				hit = true
			}
		}
		if !hit {
			s.res.Missing = append(s.res.Missing, m)
		}
	}
	if len(cuts) == 0 {
		return s.res, nil
	}
	// Cut from the last entry up, so earlier offsets stay valid and each
	// entry keeps its original index.
	data, d := s.orig, s.doc
	var add []archived
	for k := len(cuts) - 1; k >= 0; k-- {
		c := cuts[k]
		text := d.text(c.i)
		e := readEntry(text)
		lead, sep, trail := d.layout(c.i)
		add = append(add, archived{ID: e.id, Name: e.name, MAC: e.mac, Index: c.i, ArchivedAt: s.now, Reason: c.m.Reason,
			Text: string(text), Lead: lead, Sep: sep, Trail: trail})
		s.res.Moved = append(s.res.Moved, Entry{ID: e.id, Name: e.name, MAC: e.mac, Index: c.i, MatchedBy: c.by})
		data = d.without(c.i)
		if d, err = parseDoc(data); err != nil {
			return nil, fmt.Errorf("%s: internal error cutting entry %d: %w", file, c.i, err)
		}
	}
	slices.Reverse(add)
	slices.Reverse(s.res.Moved)
	for _, a := range add {
		if !slices.ContainsFunc(s.archive.Entries, func(x archived) bool { return x.ID == a.ID && x.Text == a.Text }) {
			s.archive.Entries = append(s.archive.Entries, a)
		}
	}
	s.res.Changed = true
	if err := s.commit(data, true); err != nil {
		return nil, err
	}
	return s.res, nil
}

// UndoTinyTuya puts archived entries back into the tinytuya file, at their
// old position and with their exact old text: those selected by matches,
// or every archived entry when matches is nil. An entry whose device id is
// in the file again (the user re-ran tinytuya's wizard) is not added twice;
// it only leaves the archive.
func UndoTinyTuya(file string, matches []Match, o Options) (*Result, error) {
	s, err := begin(file, o)
	if err != nil {
		return nil, err
	}
	defer s.unlock()
	var back, keep []archived
	for _, a := range s.archive.Entries {
		sel := matches == nil || slices.ContainsFunc(matches, func(m Match) bool { return m.matchesArchived(a) })
		if sel {
			back = append(back, a)
		} else {
			keep = append(keep, a)
		}
	}
	for _, m := range matches {
		if slices.ContainsFunc(back, func(a archived) bool { return m.matchesArchived(a) }) {
			continue
		}
		// Not archived: in the file already (never moved, or put back
		// earlier), or nowhere.
		inFile := false
		for i := range s.doc.elems {
			if e := readEntry(s.doc.text(i)); m.matchedBy(e) != "" {
				s.res.Already = append(s.res.Already, Entry{ID: e.id, Name: e.name, MAC: e.mac, Index: i})
				inFile = true
			}
		}
		if !inFile {
			s.res.Missing = append(s.res.Missing, m)
		}
	}
	if len(back) == 0 {
		return s.res, nil
	}
	slices.SortStableFunc(back, func(a, b archived) int { return a.Index - b.Index })
	data, d := s.orig, s.doc
	for _, a := range back {
		// "Already there" means in the file as it was, not put back by
		// this loop: two archived entries may share a device id.
		if i := s.doc.indexOf(a); i >= 0 {
			s.res.Already = append(s.res.Already, Entry{ID: a.ID, Name: a.Name, MAC: a.MAC, Index: i})
			continue
		}
		at := min(a.Index, len(d.elems))
		data = d.with(at, a.Text, a.Lead, a.Sep, a.Trail)
		if d, err = parseDoc(data); err != nil {
			return nil, fmt.Errorf("%s: archived entry %q does not fit back (%v); nothing was changed", file, a.ID, err)
		}
		s.res.Moved = append(s.res.Moved, Entry{ID: a.ID, Name: a.Name, MAC: a.MAC, Index: at})
	}
	s.archive.Entries = keep
	s.res.Changed = true
	if err := s.commit(data, false); err != nil {
		return nil, err
	}
	return s.res, nil
}

// indexOf finds an entry with a's device id (or a's exact text when it has
// none) in the file.
func (d *doc) indexOf(a archived) int {
	for i := range d.elems {
		t := d.text(i)
		if a.ID != "" && readEntry(t).id == a.ID || a.ID == "" && string(t) == a.Text {
			return i
		}
	}
	return -1
}
