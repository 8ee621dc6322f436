// Package serve is `tuyaflash serve`: the bench in a browser. It serves a
// small static page (HTML, CSS and plain JavaScript embedded in the binary:
// no build step, nothing from the network) over a JSON and server-sent
// events API that scripts can use as well (docs/api.md):
//
//   - Adapters: the serial ports, polled so that adapters appear and
//     disappear as they are plugged, plus the virtual devices; on each,
//     jobs: detect, back up, migrate, restore — one job per port, several
//     ports at once.
//   - Jobs: live progress (bytes, rate, time left, the migration step),
//     the power-cycle prompt while the tool waits for it, the command
//     line's error and "what to do" on failure, a stop button that stops
//     a job as Ctrl-C stops the command.
//   - Devices: the inventory, secrets left out unless asked for, pin
//     templates, the module's wiring and a backup's flash layout.
//
// Nothing the commands do is done again here: a job is the command itself,
// run by a Runner (the command line provides it) with the same checks, the
// same port lock and the same files; devices come from the inventory
// package, templates from export, layouts from the chip table.
//
// Safe by default: the server listens on loopback only unless told
// otherwise, then every API request needs a random token; requests that
// change something need the token or must come from the page itself;
// other sites' pages are refused, and so is a Host that is not this
// computer's (DNS rebinding).
package serve
