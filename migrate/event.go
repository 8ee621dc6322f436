package migrate

import (
	"sync"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
)

// EventKind classifies an Event.
type EventKind string

// The event kinds.
const (
	// KindStepStart: a step begins.
	KindStepStart EventKind = "step-start"
	// KindStepEnd: a step ended; Status says how.
	KindStepEnd EventKind = "step-end"
	// KindProgress: bytes of a transfer (Op) are done out of Total.
	KindProgress EventKind = "progress"
	// KindAction: the user must do something now (power-cycle, release
	// GPIO0, join an access point).
	KindAction EventKind = "action"
	// KindWarning: something degraded but working.
	KindWarning EventKind = "warning"
	// KindNote: progress worth a line in verbose output.
	KindNote EventKind = "note"
	// KindPortEnd: the port's migration ended; Result holds its summary.
	KindPortEnd EventKind = "port-end"
)

// Status is how a step ended, in events and results.
type Status string

// Step statuses.
const (
	// StatusDone: the step did its work.
	StatusDone Status = "done"
	// StatusReused: an earlier run did the step and the device confirms
	// its effect is still in place; nothing was redone.
	StatusReused Status = "reused"
	// StatusNote: nothing to work with (no Tuya config, no pin map); the
	// message says what was not done and why. Not a failure.
	StatusNote Status = "note"
	// StatusSkipped: outside --from/--until.
	StatusSkipped Status = "skipped"
	// StatusPlanned: --dry-run; the message says what would happen.
	StatusPlanned Status = "planned"
	// StatusFailed: the step failed; the run of this port stops.
	StatusFailed Status = "failed"
)

// Event is one thing that happened on one port. It marshals to a flat JSON
// object (one line per event for --events, one server-sent event for the
// web UI).
type Event struct {
	Time time.Time `json:"time"`
	// Port is the port's label as the user gave it.
	Port string    `json:"port"`
	Kind EventKind `json:"kind"`
	// Step is the step the event belongs to ("" before the first).
	Step Step `json:"step,omitempty"`
	// Status is set on step-end.
	Status  Status `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
	// Hint says what to do about a failure.
	Hint string `json:"hint,omitempty"`
	// Op, Addr, Done and Total describe a transfer (progress).
	Op    string `json:"op,omitempty"`
	Addr  uint32 `json:"addr,omitempty"`
	Done  int64  `json:"done,omitempty"`
	Total int64  `json:"total,omitempty"`
	// Elapsed is the step's duration in seconds on step-end.
	Elapsed float64 `json:"elapsed_s,omitempty"`
	// Result is the port's summary on port-end.
	Result *PortResult `json:"result,omitempty"`
}

// Observer hears the events of a run. Run calls it from one goroutine at a
// time, in the order the events happened on each port; it must return
// quickly.
type Observer interface {
	Observe(Event)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(Event)

// Observe calls f.
func (f ObserverFunc) Observe(e Event) { f(e) }

// hub serialises the events of all ports to one Observer.
type hub struct {
	mu  sync.Mutex
	obs Observer
}

func (h *hub) emit(e Event) {
	if h == nil || h.obs == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.obs.Observe(e)
}

// progressSteps is how many progress events one transfer gives at most
// (besides its first and last): one per 2 %.
const progressSteps = 50

// progress turns flasher.Progress calls into throttled progress events.
type progress struct {
	emit  func(Event)
	op    string
	addr  uint32
	total int64
	done  int64
	last  int64
}

func (p *progress) Begin(op string, addr uint32, total int64) {
	p.op, p.addr, p.total, p.done, p.last = op, addr, total, 0, 0
	p.emit(Event{Kind: KindProgress, Op: op, Addr: addr, Total: total})
}

func (p *progress) Advance(n int64) {
	p.done = min(max(p.done+n, 0), p.total)
	if p.total <= 0 {
		return
	}
	if p.done == p.total || (p.done-p.last)*progressSteps >= p.total || p.done < p.last {
		p.last = p.done
		p.emit(Event{Kind: KindProgress, Op: p.op, Addr: p.addr, Done: p.done, Total: p.total})
	}
}

func (p *progress) End(err error) {
	if err == nil && p.last != p.total {
		p.emit(Event{Kind: KindProgress, Op: p.op, Addr: p.addr, Done: p.total, Total: p.total})
	}
}

// notify turns flasher events into migrate events.
func notify(emit func(Event)) flasher.Notify {
	return func(e flasher.Event) {
		k := KindNote
		switch e.Kind {
		case flasher.Action:
			k = KindAction
		case flasher.Warning:
			k = KindWarning
		}
		emit(Event{Kind: k, Message: e.Message})
	}
}
