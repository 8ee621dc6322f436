package serve

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// DefaultThrottle is the shortest time between two updates of one job sent
// to the page: the first change goes out at once, later ones at most this
// often (progress arrives far more often than a page can show it).
const DefaultThrottle = 100 * time.Millisecond

// keepAlive is how often an idle event stream gets a comment line.
const keepAlive = 15 * time.Second

// message is one server-sent event.
type message struct {
	event string
	data  []byte
}

// subBuffer is how many events a slow page may lag behind before its
// stream is closed (the browser reconnects and gets everything anew).
const subBuffer = 256

type subscriber struct {
	ch chan message
}

// hub fans events out to the open event streams.
type hub struct {
	mu       sync.Mutex
	subs     map[*subscriber]bool
	closed   bool
	throttle time.Duration
	// last is when each job was last sent; pending the jobs waiting for
	// their next turn.
	last    map[*job]time.Time
	pending map[*job]bool
}

func newHub(throttle time.Duration) *hub {
	return &hub{subs: map[*subscriber]bool{}, throttle: throttle, last: map[*job]time.Time{}, pending: map[*job]bool{}}
}

func (h *hub) subscribe() *subscriber {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := &subscriber{ch: make(chan message, subBuffer)}
	if h.closed {
		close(s.ch)
		return s
	}
	h.subs[s] = true
	return s
}

func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs[s] {
		delete(h.subs, s)
		close(s.ch)
	}
}

// close ends every stream.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		delete(h.subs, s)
		close(s.ch)
	}
}

// publish sends an event to every stream; a stream too far behind is
// closed.
func (h *hub) publish(event string, v any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.publishLocked(event, v)
}

// publishLocked is publish with h.mu held.
func (h *hub) publishLocked(event string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		data = []byte(fmt.Sprintf(`{"error":%q}`, err.Error()))
	}
	for s := range h.subs {
		select {
		case s.ch <- message{event, data}:
		default:
			delete(h.subs, s)
			close(s.ch)
		}
	}
}

// publishJob sends a job's state: at once when it was not sent within the
// throttle interval, else once the interval has passed (with the state it
// has then). A job that ended is always sent at once.
//
// Updates come from several goroutines (the job's, a throttle timer, a
// Stop): the view is taken and queued under one lock, so that the streams
// get a job's states in the order they happened — an update taken before
// the job ended never follows its end.
func (h *hub) publishJob(j *job) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	wait := h.throttle - now.Sub(h.last[j])
	if j.running() && wait > 0 {
		if !h.pending[j] {
			h.pending[j] = true
			time.AfterFunc(wait, func() {
				h.mu.Lock()
				delete(h.pending, j)
				h.mu.Unlock()
				h.publishJob(j)
			})
		}
		return
	}
	h.last[j] = now
	if !j.running() {
		delete(h.last, j)
	}
	h.publishLocked("job", j.view())
}

// events is GET /api/events: a stream of server-sent events. It starts
// with the whole state (ports, jobs, devices) and then sends every change.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	sub := s.hub.subscribe()
	defer s.hub.unsubscribe(sub)
	write := func(event string, data []byte) bool {
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	send := func(event string, v any) bool {
		data, err := json.Marshal(v)
		return err == nil && write(event, data)
	}
	views := []JobView{}
	for _, j := range s.jobs.list() {
		views = append(views, j.view())
	}
	if !send("hello", s.info()) || !send("ports", s.ports.current()) || !send("jobs", views) || !send("devices", s.devices.current()) {
		return
	}
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case m, ok := <-sub.ch:
			if !ok || !write(m.event, m.data) {
				return
			}
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}
