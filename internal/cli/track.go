package cli

import (
	"sync"

	"github.com/tuyaflash/tuyaflash/flasher"
)

// tracker passes progress on and remembers where the current transfer
// stands, so that an interruption can say where it stopped.
type tracker struct {
	mu     sync.Mutex
	next   flasher.Progress
	op     string
	addr   uint32
	done   int64
	total  int64
	active bool
}

// show makes p show the progress from now on.
func (t *tracker) show(p flasher.Progress) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next = p
}

func (t *tracker) Begin(op string, addr uint32, total int64) {
	t.mu.Lock()
	t.op, t.addr, t.total, t.done, t.active = op, addr, total, 0, true
	next := t.next
	t.mu.Unlock()
	next.Begin(op, addr, total)
}

func (t *tracker) Advance(n int64) {
	t.mu.Lock()
	t.done = min(max(t.done+n, 0), max(t.total, 0))
	next := t.next
	t.mu.Unlock()
	next.Advance(n)
}

func (t *tracker) End(err error) {
	t.mu.Lock()
	t.active = false
	next := t.next
	t.mu.Unlock()
	next.End(err)
}

// position is the current phase and the address it has reached.
func (t *tracker) position() (op string, at uint32, active bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.op, t.addr + uint32(t.done), t.active
}
