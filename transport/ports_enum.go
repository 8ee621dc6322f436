//go:build !darwin || cgo

package transport

import (
	"sort"

	"go.bug.st/serial/enumerator"
)

// ListPorts lists the serial ports of this machine with their USB
// identities. Pseudo-terminals are never listed; pass their path with --port.
func ListPorts() ([]PortInfo, error) {
	list, err := enumerator.GetDetailedPortsList()
	if err != nil {
		return nil, err
	}
	out := make([]PortInfo, 0, len(list))
	for _, d := range list {
		pi := PortInfo{Name: d.Name, USB: d.IsUSB, VID: d.VID, PID: d.PID, SerialNumber: d.SerialNumber, Product: d.Product}
		if d.IsUSB {
			pi.Adapter = AdapterName(d.VID, d.PID)
			pi.Likely = pi.Adapter != ""
		}
		out = append(out, pi)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Likely && !out[j].Likely })
	return out, nil
}
