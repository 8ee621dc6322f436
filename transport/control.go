package transport

import (
	"context"
	"time"
)

// CloseOnDone closes p when ctx ends, so that a Read blocked on p returns at
// once (with an error wrapping ErrClosed) and a cancellation is never held
// up by a quiet line. Like context.AfterFunc, stop detaches it and reports
// whether it did so before the close started. Callers map errors that
// follow a cancellation to ctx.Err(): an interruption is reported as such,
// never as a link fault.
func CloseOnDone(ctx context.Context, p Port) (stop func() bool) {
	return context.AfterFunc(ctx, func() { _ = p.Close() })
}

// LatencyInfo says how long the USB adapter holds a partial packet of
// received bytes before handing it to the host (its latency timer), and
// whether tuyaflash lowered it for this session.
type LatencyInfo struct {
	// Driver is the host driver of the adapter ("ftdi_sio", "ch341",
	// "cp210x", "pl2303"), "" when unknown.
	Driver string
	// Timer is the latency timer in effect; meaningful when Known.
	Timer time.Duration
	// Known reports whether Timer is known (only FTDI adapters have a
	// timer the host can read; the adapter models always know theirs).
	Known bool
	// Lowered reports that the timer was lowered for this session
	// (ASYNC_LOW_LATENCY); Close restores the previous setting.
	Lowered bool
	// Reason says why the timer was not lowered, when it was not.
	Reason string
}

// LatencyReporter is implemented by ports that know their adapter's latency
// timer: real serial ports opened by Open and the host end of a Pipe.
type LatencyReporter interface {
	LatencyInfo() LatencyInfo
}

// Unwrapper is implemented by ports that wrap another one (Trace).
type Unwrapper interface {
	Unwrap() Port
}

// Latency returns p's LatencyInfo, looking through wrappers such as Trace;
// the zero value when p does not know.
func Latency(p Port) LatencyInfo {
	for p != nil {
		if lr, ok := p.(LatencyReporter); ok {
			return lr.LatencyInfo()
		}
		u, ok := p.(Unwrapper)
		if !ok {
			break
		}
		p = u.Unwrap()
	}
	return LatencyInfo{}
}
