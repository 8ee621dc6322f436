package campaign

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestDrawReplays: a seed gives the same plan every time (what -campaign.seed
// relies on), and different seeds give different plans.
func TestDrawReplays(t *testing.T) {
	for seed := int64(1); seed <= 50; seed++ {
		if a, b := Draw(seed), Draw(seed); !reflect.DeepEqual(a, b) {
			t.Fatalf("seed %d drew %v and %v", seed, a, b)
		}
	}
	if reflect.DeepEqual(Draw(1), Draw(2)) && reflect.DeepEqual(Draw(2), Draw(3)) {
		t.Error("seeds 1, 2 and 3 drew the same plan")
	}
}

// TestDrawCoversTheBench: over a thousand seeds every fault kind, operation
// and target comes up, and no plan asks for what cannot happen (a backup
// through the ESP8266 ROM loader, a power loss in a run that neither
// erases nor programs, two faults that end the link).
func TestDrawCoversTheBench(t *testing.T) {
	s := NewSummary()
	for seed := int64(1); seed <= 1000; seed++ {
		p := Draw(seed)
		s.Add(p, 0, seed%2 == 0)
		if !p.Target.Supports(p.Op) {
			t.Errorf("seed %d: %s on %s", seed, p.Op, p.Target)
		}
		if len(p.Kinds) == 0 || len(p.Kinds) > 2 {
			t.Errorf("seed %d: %d fault kinds", seed, len(p.Kinds))
		}
		for _, k := range p.Kinds {
			if !k.Applies(p.Op) {
				t.Errorf("seed %d: %s in a %s", seed, k, p.Op)
			}
		}
		if len(p.Kinds) == 2 && exclusive(p.Kinds[0], p.Kinds[1]) {
			t.Errorf("seed %d: %v together", seed, p.Kinds)
		}
		if !p.Has(FullDisk) && p.FileLimit != 0 || p.Has(ReadOnly) != p.ReadOnlyBackups || p.Has(Kill) != (p.KillAfter > 0) {
			t.Errorf("seed %d: plan fields do not match its kinds: %v", seed, p)
		}
	}
	for _, k := range Kinds {
		if s.Kinds[k] < 20 {
			t.Errorf("%s in %d of 1000 runs", k, s.Kinds[k])
		}
	}
	for _, o := range Ops {
		if s.Ops[o] < 100 {
			t.Errorf("%s in %d of 1000 runs", o, s.Ops[o])
		}
	}
	for _, tg := range Targets {
		if s.Targets[tg.String()] < 50 {
			t.Errorf("%s in %d of 1000 runs", tg, s.Targets[tg.String()])
		}
	}
}

// TestSummaryLineRoundTrip: README's figure is parsed from the line the
// campaign prints.
func TestSummaryLineRoundTrip(t *testing.T) {
	s := NewSummary()
	for seed := int64(1); seed <= 30; seed++ {
		s.Add(Draw(seed), int(seed%3/2), seed%4 == 0)
	}
	s.Wall = 12*time.Minute + 5*time.Second
	got, err := ParseLine(s.Line())
	if err != nil {
		t.Fatal(err)
	}
	if got.Line() != s.Line() || got.Runs != 30 || got.Failed != 7 || got.Wall != s.Wall {
		t.Errorf("parsed back as\n%s\nwant\n%s", got.Line(), s.Line())
	}
	if _, err := ParseLine("campaign: broken"); err == nil {
		t.Error("a broken line parsed")
	}
}

func TestOutsidePlan(t *testing.T) {
	start := bytes.Repeat([]byte{0xA5}, 0x20000)
	allowed := map[int]bool{0x11: true}
	changed := func(at int) []byte {
		b := bytes.Clone(start)
		b[at] ^= 1
		return b
	}
	for _, tc := range []struct {
		name, chip string
		flash      []byte
		want       string
	}{
		{"inside the plan", "bk7231t", changed(0x11800), ""},
		{"T bootloader", "bk7231t", changed(0x100), "BK7231T bootloader"},
		{"U bootloader", "bk7231u", changed(0x100), "BK7231U bootloader"},
		{"BK7252 bootloader", "bk7252", changed(0x10FFF), "BK7252 bootloader"},
		{"BK7238 below 0x11000: no bootloader to keep, but outside the plan", "bk7238", changed(0x100), "outside the plan"},
		{"N below 0x11000 but outside the plan", "bk7231n", changed(0x100), "outside the plan"},
		{"after the image", "bk7231n", changed(0x12000), "0x012000"},
		{"size", "esp8266", start[:0x1000], "size changed"},
	} {
		got := strings.Join(OutsidePlan(tc.chip, start, tc.flash, allowed), "; ")
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestSameEndStateIgnoresOnlyTheBootCounter(t *testing.T) {
	settings := func(json string) []byte {
		sec := bytes.Repeat([]byte{0xFF}, SectorSize)
		copy(sec, appMagic)
		sec[8], sec[9], sec[10], sec[11] = byte(len(json)), byte(len(json)>>8), 0, 0
		copy(sec[16:], json)
		return sec
	}
	a := append(bytes.Repeat([]byte{1}, SectorSize), settings(`{"ssid":"x","boot_count":2}`)...)
	b := append(bytes.Repeat([]byte{1}, SectorSize), settings(`{"ssid":"x","boot_count":3}`)...)
	c := append(bytes.Repeat([]byte{1}, SectorSize), settings(`{"ssid":"y","boot_count":2}`)...)
	d := append(bytes.Repeat([]byte{2}, SectorSize), settings(`{"ssid":"x","boot_count":2}`)...)
	if !SameEndState(a, b) {
		t.Error("a boot more counts as another end state")
	}
	if SameEndState(a, c) || SameEndState(a, d) {
		t.Error("other settings or other data count as the same end state")
	}
}

func TestFacts(t *testing.T) {
	one := `{"devices":[{"key":"k","mac":"M","family":"BK7231N","first_seen":"2026-01-01","ip":"127.0.0.1:1",
	  "backups":[{"path":"/a/x.bin","sha256":"s1"},{"path":"/a/y.bin","sha256":"s1"}],
	  "writes":[{"firmware":"openbeken","version":"demo-1","size":4352,"addr":"0x011000","verified":true},{"firmware":"openbeken","version":"demo-1","size":4352,"addr":"0x011000","verified":false}],
	  "migration":{"outcome":"migrated","updated":"x"}}]}`
	other := `{"devices":[{"key":"k","mac":"M","family":"BK7231N","first_seen":"2026-02-02","ip":"127.0.0.2:2",
	  "backups":[{"path":"/b/z.bin","sha256":"s1"}],
	  "writes":[{"firmware":"openbeken","version":"demo-1","size":4352,"addr":"0x011000","verified":true}],
	  "migration":{"outcome":"migrated","updated":"y"}}]}`
	f1, err1 := Facts([]byte(one))
	f2, err2 := Facts([]byte(other))
	if err1 != nil || err2 != nil || f1 != f2 {
		t.Errorf("dates, addresses, paths and repeats make a difference:\n%s\n%s", f1, f2)
	}
	f3, _ := Facts([]byte(strings.Replace(other, `"migrated"`, `"failed"`, 1)))
	if f3 == f2 {
		t.Error("another outcome makes no difference")
	}
}

func TestFailureOutput(t *testing.T) {
	okDoc := `{"ok": true, "command": "backup"}`
	failDoc := `{"ok": false, "command": "backup", "error": {"code": "no_device", "message": "no reply", "hint": "check the wiring", "exit_code": 3}}`
	for _, tc := range []struct {
		name           string
		json           bool
		code           int
		stdout, stderr string
		want           string
	}{
		{"json success", true, 0, okDoc, "", ""},
		{"json failure", true, 3, failDoc, "", ""},
		{"two documents", true, 3, failDoc + failDoc, "", "more than one"},
		{"code differs", true, 1, failDoc, "", "exited 1"},
		{"no hint", true, 3, strings.Replace(failDoc, `"check the wiring"`, "null", 1), "", "what to do"},
		{"usage code", false, 2, "", "tuyaflash backup: x\n", "not one a fault may end with"},
		{"text failure", false, 3, "", "tuyaflash backup: no reply\nwhat to do: check the wiring\n", ""},
		{"text twice", false, 3, "", "tuyaflash backup: a\ntuyaflash backup: b\n", "2 error messages"},
		{"text silent", false, 1, "", "progress\n", "no error message"},
		{"migrate step", false, 3, "", "write     failed  port closed\nwhat to do: run the same command again\n", ""},
	} {
		op := Backup
		if strings.HasPrefix(tc.name, "migrate") {
			op = Migrate
		}
		got := strings.Join(FailureOutput(op, tc.json, tc.code, tc.stdout, tc.stderr), "; ")
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
