//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package transport

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
