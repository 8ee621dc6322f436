// Package ui turns flasher progress and events into what the user sees on
// stderr: a progress bar on a terminal, a line every few seconds on a pipe
// or in a log file (position, rate, time left), a closing line per transfer
// with its size, time and effective rate, and one line per instruction or
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

// DefaultEvery is how often a progress line is printed when the output is
// not a terminal.
const DefaultEvery = 5 * time.Second

// ProgressOptions configure NewProgress.
type ProgressOptions struct {
	// Terminal draws a bar (w is a terminal); otherwise lines are
	// printed every Every.
	Terminal bool
	// Every is the interval of progress lines off a terminal
	// (DefaultEvery when zero).
	Every time.Duration
	// Quiet prints nothing off a terminal, not even the closing line
	// (--json without -v).
	Quiet bool
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Progress implements flasher.Progress for a command-line user.
type Progress struct {
	mu    sync.Mutex
	w     io.Writer
	o     ProgressOptions
	bar   *progressbar.ProgressBar
	op    string
	addr  uint32
	total int64
	done  int64
	start time.Time
	last  time.Time
	// shownAt is the address the bar's label shows (updated per 4 KiB).
	shownAt uint32
}

// NewProgress reports progress on w.
func NewProgress(w io.Writer, o ProgressOptions) *Progress {
	if o.Every <= 0 {
		o.Every = DefaultEvery
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Progress{w: w, o: o}
}

func label(op string, at uint32) string { return fmt.Sprintf("%-6s 0x%06X", op, at) }

// Begin starts a phase.
func (p *Progress) Begin(op string, addr uint32, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.op, p.addr, p.total, p.done = op, addr, total, 0
	p.start = p.o.Now()
	p.last = p.start
	p.shownAt = addr
	if !p.o.Terminal || total <= 0 {
		return
	}
	p.bar = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(label(op, addr)),
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
	p.done = min(max(p.done+n, 0), max(p.total, 0))
	at := p.addr + uint32(p.done)
	if p.bar != nil {
		if at&^0xFFF != p.shownAt&^0xFFF {
			p.shownAt = at
			p.bar.Describe(label(p.op, at))
		}
		p.bar.Set64(p.done)
		return
	}
	if p.o.Quiet || p.o.Terminal {
		return
	}
	if now := p.o.Now(); now.Sub(p.last) >= p.o.Every {
		p.last = now
		fmt.Fprintln(p.w, p.line(now))
	}
}

// line is the periodic progress line: position, share, rate, time left.
func (p *Progress) line(now time.Time) string {
	el := now.Sub(p.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(p.done) / el
	}
	pct := 0
	if p.total > 0 {
		pct = int(p.done * 100 / p.total)
	}
	eta := "?"
	if rate > 0 {
		eta = fmt.Sprintf("%.0f s", float64(p.total-p.done)/rate)
	}
	return fmt.Sprintf("%s: %d/%d KiB (%d%%), %.1f KiB/s, %s left", label(p.op, p.addr+uint32(p.done)), p.done/1024, p.total/1024, pct, rate/1024, eta)
}

// End closes the phase with its closing line: size, time and effective
// rate, or where it stopped.
func (p *Progress) End(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		p.bar.Exit()
		p.bar = nil
	} else if p.o.Quiet {
		return
	}
	if p.total <= 0 {
		return
	}
	fmt.Fprintln(p.w, p.summary(p.o.Now(), err))
}

// summary is the closing line of a phase, as esptool prints it.
func (p *Progress) summary(now time.Time, err error) string {
	el := now.Sub(p.start)
	secs := el.Seconds()
	if err != nil {
		return fmt.Sprintf("%s stopped at 0x%06X after %d of %d KiB (%.1f s)", p.op, p.addr+uint32(p.done), p.done/1024, p.total/1024, secs)
	}
	rate := ""
	if secs > 0 {
		rate = fmt.Sprintf(", %.1f KiB/s effective", float64(p.total)/secs/1024)
	}
	return fmt.Sprintf("%s: %d bytes (%d KiB) at 0x%06X-0x%06X in %.1f s%s", p.op, p.total, p.total/1024, p.addr, p.addr+uint32(p.total)-1, secs, rate)
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
