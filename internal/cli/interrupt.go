package cli

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/term"
)

// interruptGrace is how long a command has, after Ctrl-C or SIGTERM, to
// return on its own (with the port closed under it, every read returns at
// once); then tuyaflash reports the interruption and exits anyway, so that
// every command ends within a second.
const interruptGrace = 800 * time.Millisecond

// interruptError is an interruption by a signal; state says what the
// device and the files are left in and how to resume.
type interruptError struct {
	sig   os.Signal
	state string
}

func (e *interruptError) Error() string {
	return "interrupted by " + signalName(e.sig)
}

// Is makes an interruption match context.Canceled.
func (e *interruptError) Is(target error) bool { return target == context.Canceled }

func signalName(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "Ctrl-C (SIGINT)"
	case syscall.SIGTERM:
		return "SIGTERM"
	case nil:
		return "a signal"
	}
	return s.String()
}

// notifyInterrupt returns a context that ends, with an *interruptError as
// its cause, on SIGINT or SIGTERM.
func notifyInterrupt(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			cancel(&interruptError{sig: s})
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(nil)
	}
}

func termIsTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
