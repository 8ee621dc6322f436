package espsim

// App is the firmware side of a simulated chip: what runs when the chip is
// out of reset and not in download mode (contract C1 of the session brief;
// devicesim/bk7231 declares the same shape, so one implementation serves
// both simulators).
type App interface {
	// Boot starts the firmware held in flash. It is called every time the
	// chip leaves reset into its application (link window closed without a
	// link, Reboot command, power-cycle with GPIO0 released on ESP8266).
	Boot(flash Flash)
	// Halt stops the firmware: reset, power-off, or entry into download mode.
	Halt()
	// Serial receives bytes the host sends on UART while the firmware runs
	// and returns the firmware's answer on UART (Tasmota's console); nil
	// when it has nothing to say. The simulator also calls Serial(nil) at
	// its poll interval (20 ms) while no bytes arrive, so that output the
	// firmware produces on its own goes out.
	Serial(in []byte) []byte
}

// Flash is the chip's flash as the running firmware sees it (concurrency-
// safe; writes follow NOR rules only as far as the simulator enforces them).
// WriteAt erases the touched 4 KiB sectors first, keeping the bytes around
// the written ones.
//
// It is an alias of an interface literal, not a defined type, so that an
// App whose Boot takes another package's identical alias (devicesim/appsim,
// devicesim/bk7231) is the same method signature: Go matches method
// signatures by type identity, and two defined interface types with the
// same methods are different types.
type Flash = interface {
	Size() int
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
}

// NetAddrer is an App that knows where its network side listens; the
// identification command reports NetAddr() as "net" when Config.NetAddr is
// empty (the name devicesim/bk7231 uses too).
type NetAddrer interface {
	NetAddr() string
}

// NetAddrs is an App whose network side has more addresses than its
// station (devicesim/appsim's Firmware): the identification command
// reports them as "ap", "api" and "tuya" (the names devicesim/bk7231 uses
// too).
type NetAddrs interface {
	APAddr() string
	APIAddr() string
	TuyaAddr() string
}

// Rebooter is implemented by the Flash that App.Boot receives: the running
// firmware restarts the chip with it (Tasmota's "Restart 1", the restart
// after new Wi-Fi credentials). It is a software reset: after a serial
// download, and until the module is power-cycled, the ESP8266 lands in
// download mode again (reference §2.2).
type Rebooter interface {
	Reboot()
}

// MACReceiver is an App that wants the chip's MAC address. An ESP8266
// keeps its MAC in eFuses, not in flash, so the simulator calls SetMAC
// (with Config.MAC, or the chip's default) before every Boot.
type MACReceiver interface {
	SetMAC(mac [6]byte)
}
