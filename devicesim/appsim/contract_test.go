package appsim

import (
	bksim "github.com/tuyaflash/tuyaflash/devicesim/bk7231"
	espsim "github.com/tuyaflash/tuyaflash/devicesim/esp8266"
)

// The simulated firmware plugs into both chip simulators (contract C1):
// their App interfaces have the same shape and their Flash types are
// aliases of the same interface.
var (
	_ bksim.App  = (*Firmware)(nil)
	_ espsim.App = (*Firmware)(nil)
)
