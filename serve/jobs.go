package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tuyaflash/tuyaflash/backup"
	"github.com/tuyaflash/tuyaflash/internal/virtual"
	"github.com/tuyaflash/tuyaflash/migrate"
)

// Kind is what a job does: one of the device commands.
type Kind string

// The job kinds.
const (
	KindDetect  Kind = "detect"
	KindBackup  Kind = "backup"
	KindRestore Kind = "restore"
	KindMigrate Kind = "migrate"
)

// Kinds lists the job kinds.
var Kinds = []Kind{KindDetect, KindBackup, KindRestore, KindMigrate}

// Request is what a job is asked to do: the command and the options the
// command line takes for it.
type Request struct {
	Kind Kind   `json:"kind"`
	Port string `json:"port"`
	// Firmware, SSID, WiFiPassword, Host and Until are migrate's
	// --firmware, --ssid, --wifi-password, --host and --until.
	Firmware string `json:"firmware,omitempty"`
	SSID     string `json:"ssid,omitempty"`
	// WiFiPassword is never shown again: job views leave it out.
	WiFiPassword string `json:"wifi_password,omitempty"`
	Host         string `json:"host,omitempty"`
	Until        string `json:"until,omitempty"`
	// Backup, Force and Yes are restore's BACKUP, --force and --yes.
	Backup string `json:"backup,omitempty"`
	Force  bool   `json:"force,omitempty"`
	Yes    bool   `json:"yes,omitempty"`
}

// check refuses a request that does not make sense before anything runs.
func (r *Request) check() error {
	if !slices.Contains(Kinds, r.Kind) {
		return fmt.Errorf("kind %q: want detect, backup, restore or migrate", r.Kind)
	}
	if strings.TrimSpace(r.Port) == "" {
		return errors.New("port is required")
	}
	if r.Kind != KindMigrate && (r.Firmware != "" || r.SSID != "" || r.WiFiPassword != "" || r.Host != "" || r.Until != "") {
		return fmt.Errorf("firmware, ssid, wifi_password, host and until are options of migrate, not of %s", r.Kind)
	}
	if r.Kind != KindRestore && (r.Backup != "" || r.Force || r.Yes) {
		return fmt.Errorf("backup, force and yes are options of restore, not of %s", r.Kind)
	}
	if r.Kind == KindRestore && r.Backup == "" {
		return errors.New("restore needs backup: the path of a backup the inventory lists")
	}
	if r.Until != "" {
		if _, err := migrate.ParseStep(r.Until); err != nil {
			return err
		}
	}
	return nil
}

// public is the request as job views show it: without the password.
func (r Request) public() Request {
	r.WiFiPassword = ""
	return r
}

// Runner runs the command behind a job the way the command line runs it
// (same code, same checks, same port lock, same files) and returns the
// command's JSON document (docs/json.md: ok, command, error and the
// command's fields).
//
// It reports what happens through obs — steps, transfer progress,
// instructions such as the power-cycle prompt, warnings and notes — and
// returns soon after ctx ends, leaving what the command leaves when it is
// interrupted. context.Cause(ctx) is ErrStopped when the user pressed the
// job's stop button, and the server's own cause (an interruption of the
// server) otherwise.
type Runner interface {
	Run(ctx context.Context, req Request, obs migrate.Observer) json.RawMessage
}

// ErrStopped is the cause of a job's context when its stop button was
// pressed.
var ErrStopped = errors.New("the stop button")

// Job states.
const (
	StateRunning  = "running"
	StateStopping = "stopping"
	StateDone     = "done"
	StateFailed   = "failed"
	StateStopped  = "stopped"
)

// ErrorInfo is a failed job's error: the command line's error object
// (code, message, hint, exit code).
type ErrorInfo struct {
	Code     string  `json:"code"`
	Message  string  `json:"message"`
	Hint     *string `json:"hint"`
	ExitCode int     `json:"exit_code,omitempty"`
}

// Progress is where the current transfer of a job stands.
type Progress struct {
	// Step is the migrate step the transfer belongs to.
	Step  string `json:"step,omitempty"`
	Op    string `json:"op"`
	Addr  string `json:"addr"`
	Done  int64  `json:"done"`
	Total int64  `json:"total"`
	// Rate is bytes per second since the transfer began; ETA the
	// seconds left at that rate (absent until known).
	Rate    float64  `json:"rate"`
	ETA     *float64 `json:"eta_s,omitempty"`
	Elapsed float64  `json:"elapsed_s"`
}

// StepView is one migrate step of a job.
type StepView struct {
	Step    string  `json:"step"`
	Status  string  `json:"status"`
	Message string  `json:"message,omitempty"`
	Elapsed float64 `json:"elapsed_s,omitempty"`
}

// LogLine is one message of a job: an instruction, a warning or a note.
type LogLine struct {
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Message string    `json:"message"`
}

// JobView is a job as the API shows it.
type JobView struct {
	ID       string     `json:"id"`
	Request  Request    `json:"request"`
	State    string     `json:"state"`
	Started  time.Time  `json:"started"`
	Ended    time.Time  `json:"ended,omitzero"`
	Elapsed  float64    `json:"elapsed_s"`
	Step     string     `json:"step,omitempty"`
	Steps    []StepView `json:"steps,omitempty"`
	Progress *Progress  `json:"progress,omitempty"`
	// Prompt is the instruction the tool waits for the user to follow
	// (power-cycle the module now), "" when it waits for nothing.
	Prompt string `json:"prompt,omitempty"`
	// Log are the last messages, oldest first.
	Log []LogLine `json:"log"`
	// Error is the command's error when it failed or was stopped;
	// Resumable says that running the same job again continues where
	// this one stopped (the hint says what is kept).
	Error     *ErrorInfo `json:"error,omitempty"`
	Resumable bool       `json:"resumable,omitempty"`
	// Result is the command's JSON document (docs/json.md).
	Result json.RawMessage `json:"result,omitempty"`
}

// logLines is how many messages a job keeps.
const logLines = 100

// job is one run of a command on one port.
type job struct {
	id   string
	req  Request
	port string // the port key (symlinks resolved)

	cancel context.CancelCauseFunc
	done   chan struct{}

	mu      sync.Mutex
	state   string
	started time.Time
	ended   time.Time
	step    string
	steps   []StepView
	prog    *Progress
	// progBegin is when the current transfer began.
	progBegin time.Time
	prompt    string
	log       []LogLine
	errInfo   *ErrorInfo
	result    json.RawMessage
	// changed is called (without the lock) after every change.
	changed func(*job)
}

func (j *job) view() JobView {
	j.mu.Lock()
	defer j.mu.Unlock()
	end := j.ended
	if end.IsZero() {
		end = time.Now()
	}
	v := JobView{ID: j.id, Request: j.req.public(), State: j.state, Started: j.started, Ended: j.ended,
		Elapsed: round(end.Sub(j.started).Seconds()), Step: j.step, Steps: slices.Clone(j.steps), Prompt: j.prompt,
		Log: slices.Clone(j.log), Error: j.errInfo, Result: j.result}
	if v.Log == nil {
		v.Log = []LogLine{}
	}
	if j.prog != nil {
		p := *j.prog
		v.Progress = &p
	}
	v.Resumable = j.state == StateStopped && j.req.Kind != KindDetect
	return v
}

func round(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

// Observe takes the events of the running command.
func (j *job) Observe(ev migrate.Event) {
	j.mu.Lock()
	now := time.Now()
	if ev.Kind != migrate.KindAction && ev.Kind != migrate.KindProgress || ev.Kind == migrate.KindProgress && ev.Done > 0 {
		// The tool stopped waiting: the chip answered, or something
		// else happened.
		j.prompt = ""
	}
	switch ev.Kind {
	case migrate.KindProgress:
		addr := backup.HexAddr(ev.Addr)
		if j.prog == nil || ev.Done == 0 || ev.Op != j.prog.Op || addr != j.prog.Addr || ev.Done < j.prog.Done {
			j.prog = &Progress{Step: string(ev.Step), Op: ev.Op, Addr: addr}
			j.progBegin = now
		}
		p := j.prog
		p.Done, p.Total = ev.Done, ev.Total
		p.Elapsed = round(now.Sub(j.progBegin).Seconds())
		if el := now.Sub(j.progBegin).Seconds(); el > 0 && p.Done > 0 {
			p.Rate = float64(int64(float64(p.Done) / el))
			eta := round(float64(p.Total-p.Done) / (float64(p.Done) / el))
			p.ETA = &eta
		}
	case migrate.KindStepStart:
		j.step = string(ev.Step)
		j.setStep(StepView{Step: string(ev.Step), Status: StateRunning})
	case migrate.KindStepEnd:
		j.setStep(StepView{Step: string(ev.Step), Status: string(ev.Status), Message: ev.Message, Elapsed: round(ev.Elapsed)})
	case migrate.KindAction:
		j.prompt = ev.Message
		j.addLog(now, ev)
	case migrate.KindWarning, migrate.KindNote:
		j.addLog(now, ev)
	}
	j.mu.Unlock()
	j.changed(j)
}

func (j *job) setStep(s StepView) {
	for i := range j.steps {
		if j.steps[i].Step == s.Step {
			j.steps[i] = s
			return
		}
	}
	j.steps = append(j.steps, s)
}

func (j *job) addLog(now time.Time, ev migrate.Event) {
	j.log = append(j.log, LogLine{Time: now, Kind: string(ev.Kind), Message: ev.Message})
	if len(j.log) > logLines {
		j.log = slices.Delete(j.log, 0, len(j.log)-logLines)
	}
}

// docHead is what the job reads from a command's document.
type docHead struct {
	OK    bool       `json:"ok"`
	Error *ErrorInfo `json:"error"`
	// Ports is migrate's per-port result.
	Ports []struct {
		Error string     `json:"error"`
		Hint  string     `json:"hint"`
		Steps []StepView `json:"steps"`
	} `json:"ports"`
}

// finish records the command's document and how the job ended.
func (j *job) finish(doc json.RawMessage) {
	var h docHead
	err := json.Unmarshal(doc, &h)
	j.mu.Lock()
	j.ended, j.prompt = time.Now(), ""
	switch {
	case err != nil:
		j.state = StateFailed
		j.errInfo = &ErrorInfo{Code: "failure", Message: fmt.Sprintf("the command's result is not a JSON document: %v", err)}
		doc = nil
	case h.OK:
		j.state = StateDone
	default:
		j.errInfo = h.Error
		if j.errInfo == nil {
			j.errInfo = &ErrorInfo{Code: "failure", Message: "the command failed and said nothing more"}
		}
		j.state = StateFailed
		if j.errInfo.Code == "interrupted" {
			j.state = StateStopped
		}
		// migrate says on the port what failed and what to do, as its
		// step line and "what to do:" line do on the command line.
		if len(h.Ports) == 1 && h.Ports[0].Error != "" {
			e := *j.errInfo
			if j.state != StateStopped {
				e.Message = h.Ports[0].Error
			}
			if hint := h.Ports[0].Hint; hint != "" && (j.state != StateStopped || e.Hint == nil || *e.Hint == "") {
				e.Hint = &hint
			}
			j.errInfo = &e
		}
	}
	if len(h.Ports) == 1 && len(h.Ports[0].Steps) > 0 {
		// The report has every step, those that did not run too.
		j.steps = h.Ports[0].Steps
	}
	if j.prog != nil && j.state == StateDone {
		j.prog.Done = j.prog.Total
		j.prog.ETA = nil
	}
	j.result = doc
	j.mu.Unlock()
	close(j.done)
	j.changed(j)
}

// jobs is the server's table of jobs.
type jobs struct {
	mu   sync.Mutex
	next int
	all  []*job
	// busy maps a port key to the job running on it.
	busy map[string]*job
	// keep is how many finished jobs are kept.
	keep int
}

// BusyError: a job already runs on the port.
type BusyError struct {
	Port string
	Job  string
	Kind Kind
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("%s is busy with job %s (%s): one job per port", e.Port, e.Job, e.Kind)
}

// portKey is the port a job holds: the device file with symlinks
// resolved, so that two names of one adapter are one port; a virtual
// device's canonical spec (sim:CHIP[#NAME]: with or without its flash
// file, one device).
func portKey(port string) string {
	if virtual.IsSpec(port) {
		if spec, err := virtual.ParseSpec(port); err == nil {
			return spec.String()
		}
		return port
	}
	if p, err := filepath.EvalSymlinks(port); err == nil {
		return p
	}
	return filepath.Clean(port)
}

// start registers a job for req and runs it in its own goroutine.
func (t *jobs) start(parent context.Context, req Request, r Runner, changed func(*job)) (*job, error) {
	key := portKey(req.Port)
	t.mu.Lock()
	if other, ok := t.busy[key]; ok {
		t.mu.Unlock()
		return nil, &BusyError{Port: req.Port, Job: other.id, Kind: other.req.Kind}
	}
	t.next++
	ctx, cancel := context.WithCancelCause(parent)
	j := &job{id: strconv.Itoa(t.next), req: req, port: key, cancel: cancel, done: make(chan struct{}),
		state: StateRunning, started: time.Now(), changed: changed}
	t.all = append(t.all, j)
	t.busy[key] = j
	t.trim()
	t.mu.Unlock()
	go func() {
		doc := r.Run(ctx, req, j)
		cancel(nil)
		t.mu.Lock()
		delete(t.busy, key)
		t.mu.Unlock()
		j.finish(doc)
	}()
	changed(j)
	return j, nil
}

// running is the job running on the port with key, or nil.
func (t *jobs) running(key string) *job {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.busy[key]
}

// trim drops the oldest finished jobs beyond keep.
func (t *jobs) trim() {
	finished := 0
	for _, j := range t.all {
		if !j.running() {
			finished++
		}
	}
	for i := 0; i < len(t.all) && finished > t.keep; {
		if !t.all[i].running() {
			t.all = slices.Delete(t.all, i, i+1)
			finished--
			continue
		}
		i++
	}
}

func (j *job) running() bool {
	select {
	case <-j.done:
		return false
	default:
		return true
	}
}

// stop asks the job to stop, as Ctrl-C asks a command.
func (j *job) stop() {
	j.mu.Lock()
	if j.state == StateRunning {
		j.state = StateStopping
	}
	j.mu.Unlock()
	j.cancel(ErrStopped)
	j.changed(j)
}

func (t *jobs) get(id string) *job {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, j := range t.all {
		if j.id == id {
			return j
		}
	}
	return nil
}

// list returns the jobs, newest first.
func (t *jobs) list() []*job {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := slices.Clone(t.all)
	slices.Reverse(out)
	return out
}

// wait waits until every job has ended or ctx ends.
func (t *jobs) wait(ctx context.Context) error {
	for _, j := range t.list() {
		select {
		case <-j.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
