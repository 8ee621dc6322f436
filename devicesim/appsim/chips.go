package appsim

import (
	"fmt"
	"strings"
)

// chipInfo is what the simulated firmware needs to know about the chip it
// runs on.
type chipInfo struct {
	name  string
	beken bool
	// rf lists where the RF calibration sector ("TLV\0", MAC inside) is
	// looked for, first the chip's own offset.
	rf []int64
	// config is the sector the firmware keeps its settings in: OpenBeken's
	// config sector on Beken chips, the Arduino EEPROM sector that Tasmota
	// and ESPHome use on ESP8266.
	config int64
	// obkPrefix is OpenBeken's DEVICENAME_PREFIX_FULL, obkMCU its
	// PLATFORM_MCU_NAME (OpenBK7231T_App src/new_common.h).
	obkPrefix, obkMCU string
	// espHardware is what Tasmota reports as StatusFWR.Hardware.
	espHardware string
}

// Beken offsets (bk7231-protocol.md §9.2, more-chips.md §2 after
// BK7231GUIFlashTool RFPartitionUtil.cs and OBKFlashLayout.cs): the RF/MAC
// sector is at 0x1E0000 on BK7231T/U, BK7238 and BK7252(N), at 0x1D0000 on
// BK7231N/M; OpenBeken's config sector follows it at +0x1000. LibreTiny's
// board file for Tuya's T1 (BK7238) puts RF calibration at 0x1E3000, which
// is looked at too on that chip.
const (
	rfT = 0x1E0000
	rfN = 0x1D0000
)

// espConfigSector is where Tasmota keeps its settings on the 1 MiB layout
// its tasmota.bin is built for: SETTINGS_LOCATION, the Arduino EEPROM
// sector at 0xFB000 (eagle.flash.1m*.ld _EEPROM_start), from which it
// rotates down through CFG_ROTATES sectors (its StatusPRM.SaveAddress reads
// "F5000"…"FB000"; tasmota settings.ino). ESPHome's flash preferences on
// ESP8266 use the same EEPROM sector.
const espConfigSector = 0xFB000

var chips = map[string]chipInfo{
	"BK7231T": {beken: true, rf: []int64{rfT}, config: rfT + 0x1000, obkPrefix: "OpenBK7231T", obkMCU: "BK7231T"},
	"BK7231N": {beken: true, rf: []int64{rfN}, config: rfN + 0x1000, obkPrefix: "OpenBK7231N", obkMCU: "BK7231N"},
	// The BK7231M is a BK7231N with an all-zero eFuse key; OpenBeken's
	// BK7231M builds are BK7231N builds (inference: no separate platform
	// in src/new_common.h).
	"BK7231M": {beken: true, rf: []int64{rfN}, config: rfN + 0x1000, obkPrefix: "OpenBK7231N", obkMCU: "BK7231N"},
	"BK7238":  {beken: true, rf: []int64{rfT, 0x1E3000}, config: rfT + 0x1000, obkPrefix: "OpenBK7238", obkMCU: "BK7238"},
	"BK7231U": {beken: true, rf: []int64{rfT}, config: rfT + 0x1000, obkPrefix: "OpenBK7231U", obkMCU: "BK7231U"},
	"BK7252":  {beken: true, rf: []int64{rfT}, config: rfT + 0x1000, obkPrefix: "OpenBK7252", obkMCU: "BK7252"},
	"BK7252N": {beken: true, rf: []int64{rfT}, config: rfT + 0x1000, obkPrefix: "OpenBK7252N", obkMCU: "BK7252N"},
	// Tasmota names the chip by GetDeviceHardware(): "ESP8266EX", and for
	// an ESP8285 with 1 MiB "ESP8285N08" (postflash-and-ecosystem.md
	// §1.3, issue arendst/Tasmota#18782).
	"ESP8266": {config: espConfigSector, espHardware: "ESP8266EX"},
	"ESP8285": {config: espConfigSector, espHardware: "ESP8285N08"},
}

// lookupChip finds a chip by name, any case.
func lookupChip(name string) (chipInfo, error) {
	n := strings.ToUpper(strings.TrimSpace(name))
	c, ok := chips[n]
	if !ok {
		return chipInfo{}, fmt.Errorf("appsim: unknown chip %q (want BK7231T, BK7231N, BK7231M, BK7238, BK7231U, BK7252, BK7252N, ESP8266 or ESP8285)", name)
	}
	c.name = n
	return c, nil
}
