package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tuyaflash/tuyaflash/internal/session"
	"github.com/tuyaflash/tuyaflash/migrate"
	"github.com/tuyaflash/tuyaflash/serve"
)

func TestJobArgs(t *testing.T) {
	for _, tc := range []struct {
		req  serve.Request
		want string
	}{
		{serve.Request{Kind: serve.KindDetect, Port: "/dev/ttyUSB0"}, "detect --port /dev/ttyUSB0 --json"},
		{serve.Request{Kind: serve.KindBackup, Port: "sim:bk7231n"}, "backup --port sim:bk7231n --json"},
		{serve.Request{Kind: serve.KindRestore, Port: "/dev/ttyUSB0", Backup: "-odd name.bin", Force: true, Yes: true},
			"restore --port /dev/ttyUSB0 --json --force --yes -- -odd name.bin"},
		{serve.Request{Kind: serve.KindMigrate, Port: "/dev/ttyUSB0", Firmware: "openbeken", SSID: "Home Net", WiFiPassword: "p w", Host: "10.0.0.5", Until: "verify"},
			"migrate --port /dev/ttyUSB0 --json --events --firmware=openbeken --ssid=Home Net --host=10.0.0.5 --until=verify --wifi-password=p w"},
		{serve.Request{Kind: serve.KindMigrate, Port: "sim:esp8266"}, "migrate --port sim:esp8266 --json --events"},
	} {
		if got := strings.Join(jobArgs(tc.req), " "); got != tc.want {
			t.Errorf("%+v:\n got %s\nwant %s", tc.req, got, tc.want)
		}
	}
}

// events records what a job hears.
type events struct {
	mu  sync.Mutex
	evs []migrate.Event
}

func (e *events) Observe(ev migrate.Event) {
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	e.mu.Unlock()
}

func (e *events) kinds() map[migrate.EventKind]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := map[migrate.EventKind]int{}
	for _, ev := range e.evs {
		n[ev.Kind]++
	}
	return n
}

func TestJobLines(t *testing.T) {
	var got events
	w := session.LinesTo((&jobLines{obs: &got, report: "tuyaflash backup:"}).line)
	w.Write([]byte(`{"time":"2026-01-02T03:04:05Z","port":"sim:bk7231n","kind":"step-start","step":"detect"}` + "\nwarning: slow\r\n"))
	w.Write([]byte("  write: 4 KiB at 0x011000\n\ntuyaflash backup: no answer\nwhat to do: check the wiring\n"))
	w.Flush()
	var kinds []string
	for _, ev := range got.evs {
		kinds = append(kinds, string(ev.Kind)+":"+ev.Message)
	}
	want := []string{"step-start:", "warning:slow", "note:write: 4 KiB at 0x011000"}
	if !slices.Equal(kinds, want) || got.evs[0].Step != migrate.StepDetect {
		t.Errorf("events %q, want %q (the failure report is in the document)", kinds, want)
	}
}

// TestJobRunnerRunsTheCommand: a job is the command, in this process: its
// document, its prompt and progress as events; stopped, it says so as
// Ctrl-C does.
func TestJobRunnerRunsTheCommand(t *testing.T) {
	migrateEnv(t)
	var evs events
	doc := jobRunner{}.Run(context.Background(), serve.Request{Kind: serve.KindBackup, Port: "sim:bk7231n"}, &evs)
	var backup struct {
		OK   bool
		Chip struct{ Family string }
		Path string
	}
	if err := json.Unmarshal(doc, &backup); err != nil || !backup.OK || backup.Chip.Family != "BK7231N" || backup.Path == "" {
		t.Fatalf("backup document (%v): %s", err, doc)
	}
	k := evs.kinds()
	if k[migrate.KindAction] == 0 || k[migrate.KindProgress] < 2 {
		t.Errorf("events %v: want the power-cycle prompt and progress", k)
	}
	last := evs.evs[len(evs.evs)-1]
	for _, ev := range evs.evs {
		if ev.Kind == migrate.KindProgress {
			last = ev
		}
	}
	if last.Done != 2<<20 || last.Total != 2<<20 {
		t.Errorf("last progress %+v", last)
	}

	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(serve.ErrStopped)
	doc = jobRunner{}.Run(ctx, serve.Request{Kind: serve.KindDetect, Port: "sim:bk7231n"}, &evs)
	var stopped struct {
		OK    bool
		Error struct {
			Code, Message, Hint string
			ExitCode            int `json:"exit_code"`
		}
	}
	if err := json.Unmarshal(doc, &stopped); err != nil || stopped.OK || stopped.Error.Code != "interrupted" ||
		stopped.Error.Message != "interrupted by the stop button" || stopped.Error.ExitCode != ExitInterrupted || stopped.Error.Hint == "" {
		t.Errorf("stopped (%v): %s", err, doc)
	}

	doc = jobRunner{}.Run(context.Background(), serve.Request{Kind: serve.KindMigrate, Port: "sim:bk7231n", Until: "backup"}, &evs)
	var rep struct {
		OK    bool
		Ports []struct{ Result string }
	}
	if err := json.Unmarshal(doc, &rep); err != nil || !rep.OK || len(rep.Ports) != 1 || rep.Ports[0].Result != "stopped" {
		t.Errorf("migrate document (%v): %s", err, doc)
	}
	if evs.kinds()[migrate.KindStepEnd] < 2 {
		t.Errorf("migrate's events did not arrive: %v", evs.kinds())
	}
}

func TestServeCommandLine(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "extra"}, "serve takes no arguments"},
		{[]string{"serve", "--json"}, "--json: serve prints no result"},
		{[]string{"serve", "--port", "sim:z80", "--no-open"}, "unknown virtual device"},
	} {
		var out, errOut bytes.Buffer
		code := Main(tc.args, strings.NewReader(""), &out, &errOut)
		if code != ExitUsage || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%v: exit %d\n%s", tc.args, code, errOut.String())
		}
	}
}

// TestServeLinesShowControlsAsEscapes: what the server prints of a port
// or a message (from a request, a device, a command's error) cannot move
// the cursor, retitle the terminal or forge a line.
func TestServeLinesShowControlsAsEscapes(t *testing.T) {
	hint := "run it again\x1b[1A\rverified OK"
	for _, tc := range []struct {
		name string
		line func() string
		want string
	}{
		{"log", func() string {
			var b bytes.Buffer
			logTo(&b)("job %s: %s on %s started", "1", serve.KindBackup, "/dev/ttyUSB0\x1b]0;owned\x07")
			return strings.TrimSuffix(b.String(), "\n")
		}, `job 1: backup on /dev/ttyUSB0\x1b]0;owned\x07 started`},
		{"job end", func() string {
			return jobEndLine(serve.JobView{ID: "2", Request: serve.Request{Kind: serve.KindMigrate, Port: "sim:bk7231n"},
				Error: &serve.ErrorInfo{Message: "device said \"\u009b2J\"\nfake: line", Hint: &hint}})
		}, `job 2 (migrate on sim:bk7231n): device said "\u009b2J"\nfake: line; run it again\x1b[1A\rverified OK`},
	} {
		got := tc.line()
		if strings.ContainsAny(got, "\x1b\x07\n\r\u009b") || !strings.HasSuffix(got, tc.want) {
			t.Errorf("%s: %q, want it to end with %q", tc.name, got, tc.want)
		}
	}
}
