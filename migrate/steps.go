package migrate

import (
	"fmt"
	"slices"
	"strings"
)

// Step names one step of a migration, as --from and --until take it.
type Step string

// The steps, in the order they run.
const (
	// StepDetect connects to the chip in download mode and identifies it.
	StepDetect Step = "detect"
	// StepBackup takes a verified backup of the whole flash, or reuses a
	// stored backup that the chip confirms is of this very flash.
	StepBackup Step = "backup"
	// StepConfig reads the Tuya config from the backup, records it and
	// saves the pin templates beside the backup.
	StepConfig Step = "config"
	// StepFirmware picks the image for the chip and runs every gate.
	StepFirmware Step = "firmware"
	// StepWrite writes and verifies the image.
	StepWrite Step = "write"
	// StepReboot starts the new firmware, or tells the user when to
	// power-cycle.
	StepReboot Step = "reboot"
	// StepProvision gives the firmware the Wi-Fi network: over the serial
	// console (Tasmota on ESP8266) or over its access point.
	StepProvision Step = "provision"
	// StepFind finds the device on the network and waits for it.
	StepFind Step = "find"
	// StepVerify checks firmware, version and that the MAC is the
	// backup's.
	StepVerify Step = "verify"
	// StepPins applies the pin template from the Tuya config and checks
	// that it took.
	StepPins Step = "pins"
	// StepRecord records the device as migrated and updates the exports.
	StepRecord Step = "record"
)

// Steps lists every step in order.
var Steps = []Step{StepDetect, StepBackup, StepConfig, StepFirmware, StepWrite, StepReboot, StepProvision, StepFind, StepVerify, StepPins, StepRecord}

// index is the step's position in Steps, -1 when it is not a step.
func (s Step) index() int { return slices.Index(Steps, s) }

// Before reports whether s runs before t.
func (s Step) Before(t Step) bool { return s.index() < t.index() }

// online reports whether the step talks to the firmware after the reboot
// rather than to the chip in download mode.
func (s Step) online() bool { return !s.Before(StepProvision) }

// ParseStep accepts a step name in any case.
func ParseStep(name string) (Step, error) {
	s := Step(strings.ToLower(strings.TrimSpace(name)))
	if s.index() < 0 {
		names := make([]string, len(Steps))
		for i, st := range Steps {
			names[i] = string(st)
		}
		return "", fmt.Errorf("unknown step %q: want one of %s", name, strings.Join(names, ", "))
	}
	return s, nil
}

// span is the part of the story a run covers: From to Until inclusive.
type span struct{ from, until Step }

func (r span) has(s Step) bool { return !s.Before(r.from) && !r.until.Before(s) }
