//go:build darwin && !cgo

package transport

import "go.bug.st/serial"

// ListPorts lists the serial ports of this machine. This build has no USB
// enumerator (macOS without cgo), so only names are known.
func ListPorts() ([]PortInfo, error) {
	names, err := serial.GetPortsList()
	if err != nil {
		return nil, err
	}
	out := make([]PortInfo, 0, len(names))
	for _, n := range names {
		out = append(out, PortInfo{Name: n})
	}
	return out, nil
}
