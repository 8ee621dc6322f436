package transport

import "strings"

// PortInfo describes a serial port found on this machine.
type PortInfo struct {
	Name         string `json:"name"`
	USB          bool   `json:"usb"`
	VID          string `json:"vid,omitempty"`
	PID          string `json:"pid,omitempty"`
	SerialNumber string `json:"serial_number,omitempty"`
	Product      string `json:"product,omitempty"`
	// Adapter names the USB-UART bridge chip when the VID/PID is known
	// (CH340, CP210x, FTDI, PL2303, …).
	Adapter string `json:"adapter,omitempty"`
	// Likely is true for the bridges that bench flashing uses.
	Likely bool `json:"likely"`
}

// adapterNames maps upper-case "VID:PID" to the bridge chip, from the Linux
// kernel's ch341, cp210x, ftdi_sio, pl2303 and cdc_acm id tables.
var adapterNames = map[string]string{
	"1A86:7523": "WCH CH340",
	"1A86:7522": "WCH CH340K",
	"1A86:5523": "WCH CH341 (serial mode)",
	"1A86:55D4": "WCH CH9102",
	"1A86:55D3": "WCH CH343",
	"10C4:EA60": "Silicon Labs CP210x",
	"10C4:EA70": "Silicon Labs CP2105",
	"10C4:EA63": "Silicon Labs CP210x",
	"0403:6001": "FTDI FT232R",
	"0403:6015": "FTDI FT-X (FT231X)",
	"0403:6010": "FTDI FT2232",
	"0403:6011": "FTDI FT4232H",
	"0403:6014": "FTDI FT232H",
	"067B:2303": "Prolific PL2303",
	"067B:23A3": "Prolific PL2303GC",
}

// AdapterName returns the bridge chip for a USB VID/PID pair (any case, with
// or without 0x), or "" when it is not a known USB-UART bridge.
func AdapterName(vid, pid string) string {
	norm := func(s string) string {
		s = strings.ToUpper(strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"))
		for len(s) < 4 {
			s = "0" + s
		}
		return s
	}
	return adapterNames[norm(vid)+":"+norm(pid)]
}
