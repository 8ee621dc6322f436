//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package transport

// rate cannot be read back here: BaudRate reports the requested rate.
func (h *osHold) rate() (int, bool) { return 0, false }

// restoreLatency has nothing to restore here.
func (h *osHold) restoreLatency() {}

// lowerLatency cannot change anything here.
func (h *osHold) lowerLatency() LatencyInfo {
	return LatencyInfo{Reason: "lowering the latency timer is only done on Linux"}
}

// procHolder cannot look for other processes here.
func procHolder(string) int { return 0 }

// flockHolder cannot read the kernel's lock table here.
func flockHolder(string) int { return 0 }

// lacksDevice cannot tell here: a live lock holder keeps its lock.
func lacksDevice(int, string) bool { return false }

// cmdline cannot read other processes' command lines here.
func cmdline(int) string { return "" }
