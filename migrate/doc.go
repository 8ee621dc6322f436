// Package migrate takes a Tuya device from its stock firmware to a verified
// open firmware on the user's network in one run, on one or several serial
// adapters at once, safe to interrupt and run again.
//
// # Steps
//
// detect, backup, config, firmware, write, reboot, provision, find, verify,
// pins, record (Steps). Options.From and Options.Until bound what runs;
// detect runs whenever a step before provision does (the chip must be in
// download mode), and a run that starts at provision or later continues the
// migration journaled for the same port without touching download mode.
// A step that has nothing to work with ends as a note, not a failure.
//
// # Journal and resume
//
// Every step is journaled in the device's inventory record
// (inventory.Migration): running before it changes anything, done (or note,
// or failed) after, with what a later run needs to check it: the backup's
// path and SHA-256, the image's SHA-256 and regions, the SSID (never the
// password), the address the firmware answered on, the verification. Each
// journal change is saved at once through the inventory's locked, atomic
// Save, so a kill at any moment loses at most the step that was running.
//
// Running the same command again re-checks every recorded step against the
// device before trusting it:
//   - backup: a stored backup (the journal's, the inventory's, or any in the
//     device's folder of the store — one saved just before a kill) is reused
//     when its sidecar matches the chip and the chip's own checksum over the
//     whole flash equals it; or, for a device with its own MAC whose journal
//     says this migration's write began, when the write was interrupted or
//     the written image is confirmed in place. Otherwise a new backup is
//     taken; an interrupted backup resumes from its partial file. Never a
//     second backup of the same flash.
//   - write: skipped when the journal's image is the one resolved now and
//     the chip's checksum confirms every region is in place; otherwise
//     written again (sectors already holding the data are skipped).
//   - reboot: always redone when the run holds the chip in download mode.
//   - provision: trusted when it was done with the same SSID (the firmware
//     keeps the network in its own config sector).
//   - find, verify: always redone (cheap once the device is online).
//   - pins: the firmware's pins are read back; set only when they differ.
//   - config, firmware and record are idempotent and simply run again.
//
// # Concurrency
//
// Run starts one goroutine per port. Each has its own link and its own
// inventory handle (the inventory merges concurrent saves); a failure ends
// only its port. A run-wide registry makes sure that two ports never open
// the same device file (symlinks resolved), that a device with its own MAC
// seen on a second port is reported there as the same device (not backed
// up twice), that a device whose MAC is a placeholder waits for the port
// working on the same identity, and that real devices' access points are
// joined one at a time.
//
// # Events
//
// An Observer hears every step start and end, throttled transfer progress,
// instructions for the user (power-cycle now, join an access point) and
// warnings, serialised across ports; Event marshals to one flat JSON
// object. Run returns a Report (JSON) with the per-port results and a
// summary table.
//
// # The outside world
//
// Serial ports, the firmware catalogue and the network go through the
// Connector, Firmwares and Network interfaces (Catalogue and LiveNetwork
// are the real ones; the command line provides the Connector). Files (the
// backup store, the inventory, templates, tinytuya files) are handled by
// the packages that own them.
package migrate
