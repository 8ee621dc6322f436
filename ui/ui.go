// Package ui turns flasher progress and events into what the user sees on
// stderr: a progress bar on a terminal, sparse log lines (with -v) or
// nothing when stderr is redirected, and one line per instruction or
// warning.
package ui

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/tuyaflash/tuyaflash/flasher"
)

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Progress implements flasher.Progress for a command-line user.
type Progress struct {
	mu      sync.Mutex
	w       io.Writer
	tty     bool
	verbose bool
	bar     *progressbar.ProgressBar
	op      string
	addr    uint32
	total   int64
	done    int64
	start   time.Time
	lastLog time.Time
}

// NewProgress draws bars on w when it is a terminal; otherwise it prints
// a line every 10 s (and at the end) when verbose, and nothing else.
func NewProgress(w io.Writer, verbose bool) *Progress {
	return &Progress{w: w, tty: IsTerminal(w), verbose: verbose}
}

// Begin starts a bar for one operation.
func (p *Progress) Begin(op string, addr uint32, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.op, p.addr, p.total, p.done = op, addr, total, 0
	p.start, p.lastLog = time.Now(), time.Now()
	if !p.tty || total <= 0 {
		return
	}
	p.bar = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(fmt.Sprintf("%-6s 0x%06X", op, addr)),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetTheme(progressbar.ThemeASCII),
	)
}

// Advance adds n done bytes (negative when a part is redone).
func (p *Progress) Advance(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = min(max(p.done+n, 0), p.total)
	if p.bar != nil {
		p.bar.Set64(p.done)
		return
	}
	if p.verbose && time.Since(p.lastLog) >= 10*time.Second {
		p.lastLog = time.Now()
		p.line()
	}
}

func (p *Progress) line() {
	el := time.Since(p.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(p.done) / el / 1024
	}
	pct := 0
	if p.total > 0 {
		pct = int(p.done * 100 / p.total)
	}
	fmt.Fprintf(p.w, "%s 0x%06X: %d/%d KiB (%d%%) %.0f KiB/s\n", p.op, p.addr, p.done/1024, p.total/1024, pct, rate)
}

// End closes the bar.
func (p *Progress) End(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		p.bar.Exit()
		p.bar = nil
	} else if p.verbose && err == nil {
		p.line()
	}
}

// Events returns a flasher.Notify that prints instructions and warnings on
// w, and notes too when verbose.
func Events(w io.Writer, verbose bool) flasher.Notify {
	var mu sync.Mutex
	return func(e flasher.Event) {
		mu.Lock()
		defer mu.Unlock()
		switch e.Kind {
		case flasher.Action:
			fmt.Fprintf(w, ">>> %s\n", e.Message)
		case flasher.Warning:
			fmt.Fprintf(w, "warning: %s\n", e.Message)
		default:
			if verbose {
				fmt.Fprintf(w, "%s\n", e.Message)
			}
		}
	}
}
