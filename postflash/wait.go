package postflash

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
)

// Backoff between WaitOnline attempts: it starts at waitFirst and doubles up
// to waitMax.
const (
	waitFirst = time.Second
	waitMax   = 10 * time.Second
)

// Attempt is one probe WaitOnline made.
type Attempt struct {
	N int // 1-based
	// Elapsed is the time since WaitOnline began, when the attempt ended.
	Elapsed time.Duration
	// Kind is what the attempt saw (KindOK when the device answered).
	Kind Kind
	Err  error
	// Wait is the pause before the next attempt; 0 on the last one.
	Wait time.Duration
}

// String is the line a user reads for the attempt.
func (a Attempt) String() string {
	s := fmt.Sprintf("attempt %d after %s: ", a.N, a.Elapsed.Round(time.Second))
	if a.Err == nil {
		s += "answered"
	} else {
		s += a.Err.Error()
	}
	if a.Wait > 0 {
		s += fmt.Sprintf("; retrying in %s", a.Wait.Round(time.Millisecond))
	}
	return s
}

// WaitError reports a device that did not come online before the deadline.
type WaitError struct {
	Host     string
	Waited   time.Duration
	Attempts int
	// Seen counts the attempts by what they saw.
	Seen map[Kind]int
	// Last is the error of the last attempt.
	Last error
}

// Error counts the attempts by kind and repeats the last error.
func (e *WaitError) Error() string {
	kinds := make([]string, 0, len(e.Seen))
	for k, n := range e.Seen {
		kinds = append(kinds, fmt.Sprintf("%d× %s", n, k))
	}
	sort.Strings(kinds)
	msg := fmt.Sprintf("%s did not come online within %s (%d attempts: %s)",
		e.Host, e.Waited.Round(time.Second), e.Attempts, strings.Join(kinds, ", "))
	if e.Last != nil {
		msg += "; last: " + e.Last.Error()
	}
	return msg
}

// Unwrap returns the last attempt's error.
func (e *WaitError) Unwrap() error { return e.Last }

// WaitOnline identifies host again and again, with a backoff of 1 s
// doubling to 10 s, until the device answers or the deadline passes. seen
// (optional) hears every attempt: refused, timeout, 401, empty reply… An
// answer that is not transient (a password is needed, Tasmota's Referer
// gate, another firmware's web server) ends the wait at once: the device
// is online. On the deadline the error is a *WaitError (with a hint).
func WaitOnline(ctx context.Context, host string, opts Options, deadline time.Time, seen func(Attempt)) (*Result, error) {
	if _, _, err := splitHost(host); err != nil {
		return nil, err
	}
	report := func(a Attempt) {
		if seen != nil {
			seen(a)
		}
	}
	start := time.Now()
	backoff := waitFirst
	counts := map[Kind]int{}
	for n := 1; ; n++ {
		actx, cancel := context.WithDeadline(ctx, deadline)
		res, err := Identify(actx, host, opts)
		cancel()
		kind := KindOf(err)
		counts[kind]++
		a := Attempt{N: n, Elapsed: time.Since(start), Kind: kind, Err: err}
		if err == nil || !kind.transient() {
			report(a)
			return res, err
		}
		if ctx.Err() != nil {
			report(a)
			return res, ctx.Err()
		}
		left := time.Until(deadline)
		if left <= 0 {
			report(a)
			return res, waitError(&WaitError{Host: host, Waited: time.Since(start), Attempts: n, Seen: counts, Last: err})
		}
		a.Wait = min(backoff, left)
		report(a)
		t := time.NewTimer(a.Wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return res, ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, waitMax)
	}
}

func waitError(e *WaitError) error {
	hint := flasher.Hint(e.Last)
	switch KindOf(e.Last) {
	case KindTimeout, KindUnreachable:
		hint = "the device never answered: check that it joined your Wi-Fi (SSID and password right?), power it from a proper supply " +
			"(a USB-TTL adapter's 3.3 V pin is often too weak for Wi-Fi), or look for its own access point to configure Wi-Fi"
	case KindRefused:
		hint = "something at this address refuses connections: the device may have another address now; find it by MAC"
	}
	if hint == "" {
		return e
	}
	return &flasher.HintError{Err: e, Hint: hint}
}
