//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package transport

import (
	"os"

	"go.bug.st/serial"
)

// osHold is empty where there is nothing to lock: Windows opens serial
// ports exclusively by themselves.
type osHold struct{}

func acquire(string) (*osHold, error) { return &osHold{}, nil }
func (h *osHold) release()            {}
func (h *osHold) rate() (int, bool)   { return 0, false }
func (h *osHold) restoreLatency()     {}

// lowerLatency cannot change anything here.
func (h *osHold) lowerLatency() LatencyInfo {
	return LatencyInfo{Reason: "lowering the latency timer is only done on Linux"}
}

// LockFile locks nothing here (see the Unix version): it only creates path.
func LockFile(path, name string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, &OpenError{Name: name, Err: err}
	}
	return func() { f.Close() }, nil
}

// openPort opens the port with go.bug.st/serial.
func (h *osHold) openPort(name string, mode *serial.Mode) (serial.Port, error) {
	return serial.Open(name, mode)
}
