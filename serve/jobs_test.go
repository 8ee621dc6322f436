package serve

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tuyaflash/tuyaflash/migrate"
)

func newJob(kind Kind, changed func(*job)) *job {
	if changed == nil {
		changed = func(*job) {}
	}
	return &job{id: "1", req: Request{Kind: kind, Port: "sim:bk7231n", WiFiPassword: "secret"}, done: make(chan struct{}),
		state: StateRunning, started: time.Now(), changed: changed}
}

// TestJobFollowsTheCommand: what the page shows of a running migration —
// the prompt while the tool waits for it, steps, bytes, rate and time left
// — and how it ended, as the command line says it.
func TestJobFollowsTheCommand(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := newJob(KindMigrate, nil)
		ev := func(e migrate.Event) JobView {
			j.Observe(e)
			return j.view()
		}
		ev(migrate.Event{Kind: migrate.KindStepStart, Step: migrate.StepDetect})
		if v := ev(migrate.Event{Kind: migrate.KindAction, Step: migrate.StepDetect, Message: "power-cycle the module now"}); v.Prompt != "power-cycle the module now" || v.Step != "detect" {
			t.Fatalf("waiting for the power-cycle: %+v", v)
		}
		if v := ev(migrate.Event{Kind: migrate.KindNote, Message: "BootROM answered"}); v.Prompt != "" || len(v.Log) != 2 || v.Log[0].Kind != "action" {
			t.Fatalf("after the chip answered: %+v", v)
		}
		ev(migrate.Event{Kind: migrate.KindStepEnd, Step: migrate.StepDetect, Status: migrate.StatusDone, Message: "BK7231N", Elapsed: 1.234})
		ev(migrate.Event{Kind: migrate.KindStepStart, Step: migrate.StepBackup})
		ev(migrate.Event{Kind: migrate.KindProgress, Step: migrate.StepBackup, Op: "read", Total: 4000})
		time.Sleep(2 * time.Second)
		v := ev(migrate.Event{Kind: migrate.KindProgress, Step: migrate.StepBackup, Op: "read", Done: 1000, Total: 4000})
		p := v.Progress
		if p == nil || p.Step != "backup" || p.Addr != "0x000000" || p.Done != 1000 || p.Rate != 500 || p.ETA == nil || *p.ETA != 6 || p.Elapsed != 2 {
			t.Fatalf("progress after 2 s: %+v", p)
		}
		want := []StepView{{Step: "detect", Status: "done", Message: "BK7231N", Elapsed: 1.23}, {Step: "backup", Status: "running"}}
		if !slices.Equal(v.Steps, want) || v.Step != "backup" {
			t.Errorf("steps %+v", v.Steps)
		}
		if strings.Contains(mustJSON(v), "secret") {
			t.Error("the Wi-Fi password in the job view")
		}
		// A new transfer starts its own count.
		time.Sleep(time.Second)
		v = ev(migrate.Event{Kind: migrate.KindProgress, Step: migrate.StepWrite, Op: "write", Addr: 0x11000, Total: 100})
		if p := v.Progress; p.Op != "write" || p.Addr != "0x011000" || p.Done != 0 || p.Rate != 0 || p.ETA != nil || p.Elapsed != 0 {
			t.Errorf("a new transfer: %+v", p)
		}
		j.finish(json.RawMessage(`{"ok": false, "command": "migrate", "error": {"code": "no_device", "message": "1 of 1 ports failed", "hint": null, "exit_code": 3},
			"ports": [{"port": "sim:bk7231n", "result": "failed", "error": "the device did not answer at 192.168.1.50", "hint": "check that it joined your Wi-Fi",
			"steps": [{"step": "detect", "status": "done", "elapsed_s": 1}, {"step": "find", "status": "failed", "message": "no answer", "elapsed_s": 180},
			{"step": "verify", "status": "skipped", "elapsed_s": 0}]}]}`))
		v = j.view()
		if v.State != StateFailed || v.Resumable || v.Error.Code != "no_device" || v.Error.ExitCode != 3 || v.Error.Message != "the device did not answer at 192.168.1.50" ||
			v.Error.Hint == nil || *v.Error.Hint != "check that it joined your Wi-Fi" {
			t.Errorf("failed migration: %+v %+v", v, v.Error)
		}
		if len(v.Steps) != 3 || v.Steps[2].Status != "skipped" || v.Ended.IsZero() || v.Elapsed != 3 {
			t.Errorf("the report's steps and times: %+v", v)
		}
	})
}

// TestJobEnds: how each kind of document ends a job.
func TestJobEnds(t *testing.T) {
	for _, tc := range []struct {
		name, doc  string
		state      string
		resumable  bool
		msg, hint  string
		fullReport bool
	}{
		{"done", `{"ok": true, "command": "backup"}`, StateDone, false, "", "", true},
		{"failed", `{"ok": false, "command": "backup", "error": {"code": "no_device", "message": "no answer", "hint": "check the wiring", "exit_code": 3}}`,
			StateFailed, false, "no answer", "check the wiring", true},
		{"interrupted", `{"ok": false, "command": "backup", "error": {"code": "interrupted", "message": "interrupted by the stop button", "hint": "the partial backup is kept", "exit_code": 130}}`,
			StateStopped, true, "interrupted by the stop button", "the partial backup is kept", true},
		{"migrate interrupted: the port's hint when the document has none", `{"ok": false, "command": "migrate", "error": {"code": "interrupted", "message": "interrupted by the stop button", "hint": null, "exit_code": 130},
			"ports": [{"error": "context canceled: read", "hint": "interrupted: nothing is lost; run the same command again to resume"}]}`,
			StateStopped, true, "interrupted by the stop button", "interrupted: nothing is lost; run the same command again to resume", true},
		{"no document", ``, StateFailed, false, "the command's result is not a JSON document", "", false},
		{"a failure that says nothing", `{"ok": false, "command": "detect"}`, StateFailed, false, "the command failed and said nothing more", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newJob(KindBackup, nil)
			j.Observe(migrate.Event{Kind: migrate.KindAction, Message: "power-cycle the module now"})
			j.finish(json.RawMessage(tc.doc))
			v := j.view()
			if v.State != tc.state || v.Resumable != tc.resumable || v.Prompt != "" || (len(v.Result) > 0) != tc.fullReport {
				t.Fatalf("%+v", v)
			}
			if tc.msg == "" {
				if v.Error != nil {
					t.Errorf("error %+v", v.Error)
				}
				return
			}
			if !strings.HasPrefix(v.Error.Message, tc.msg) || (tc.hint == "") != (v.Error.Hint == nil) || v.Error.Hint != nil && *v.Error.Hint != tc.hint {
				t.Errorf("error %+v (hint %v)", v.Error, v.Error.Hint)
			}
		})
	}
}

// TestProgressIsThrottled: a transfer reports far more often than a page
// can show; each job goes out at once, then at most every Throttle, with
// its latest state, and at once when it ends.
func TestProgressIsThrottled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHub(100 * time.Millisecond)
		sub := h.subscribe()
		j := newJob(KindBackup, h.publishJob)
		for i := 1; i <= 50; i++ {
			j.Observe(migrate.Event{Kind: migrate.KindProgress, Op: "read", Done: int64(i) * 10, Total: 1000})
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		var got []int64
		for len(sub.ch) > 0 {
			var v JobView
			json.Unmarshal((<-sub.ch).data, &v)
			got = append(got, v.Progress.Done)
		}
		// 250 ms of updates: the first at once, then one per 100 ms,
		// the last with the final count.
		if len(got) < 3 || len(got) > 5 || got[0] != 10 || got[len(got)-1] != 500 {
			t.Errorf("sent %v", got)
		}
		j.finish(okDoc(KindBackup))
		synctest.Wait()
		if len(sub.ch) != 1 {
			t.Errorf("the end was not sent at once (%d events)", len(sub.ch))
		}
	})
}

// TestSlowPageIsDropped: a page that does not read its stream is cut off
// (the browser reconnects and gets everything again) instead of holding
// the server up.
func TestSlowPageIsDropped(t *testing.T) {
	h := newHub(time.Millisecond)
	sub := h.subscribe()
	for range subBuffer + 1 {
		h.publish("ports", PortsView{})
	}
	n := 0
	for range sub.ch {
		n++
	}
	if n != subBuffer {
		t.Errorf("%d events before the stream closed", n)
	}
	h.unsubscribe(sub) // no double close
}

// TestEndIsTheLastEvent: a job's updates can be sent from several
// goroutines at once (the job's own, a throttle timer, a Stop); the page
// keeps the last event it gets, so an update computed before the job ended
// must never go out after the end (the page would show a finished job as
// running for good).
func TestEndIsTheLastEvent(t *testing.T) {
	for i := range 300 {
		h := newHub(0)
		sub := h.subscribe()
		j := newJob(KindDetect, h.publishJob)
		var wg sync.WaitGroup
		stop := make(chan struct{})
		wg.Add(1)
		go func() { // a timer's turn, again and again (fewer than the stream holds)
			defer wg.Done()
			for range subBuffer / 2 {
				select {
				case <-stop:
					return
				default:
					h.publishJob(j)
				}
			}
		}()
		for k := range 20 {
			j.Observe(migrate.Event{Kind: migrate.KindProgress, Op: "read", Done: int64(k + 1), Total: 20})
		}
		j.finish(okDoc(KindDetect))
		close(stop)
		wg.Wait()
		var last JobView
		for len(sub.ch) > 0 {
			m := <-sub.ch
			last = JobView{}
			if err := json.Unmarshal(m.data, &last); err != nil {
				t.Fatal(err)
			}
		}
		if last.State != StateDone {
			t.Fatalf("run %d: the page's last event says %q, the job is %q", i, last.State, j.view().State)
		}
		h.unsubscribe(sub)
	}
}
