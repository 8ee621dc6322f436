// Package firmware knows what to write and where: the firmware catalogue
// (firmware-manifest.json, embedded as the default), a download cache that
// checks every file's sha256 and pins unknown checksums on first download,
// detection of image files by their content, and the safety gates that
// decide where a detected image may go on a connected chip (Place).
//
// Facts come from the reference notes in ../shared/reference
// (postflash-and-ecosystem.md §4, bk7231-protocol.md §6 and §9,
// esp8266-protocol.md §11) and the public sources they name: ESP Web Tools
// (manifest shape), ltchiptool soc/bk72xx/binary.py and util/detection.py
// (Beken file types, the RBL header, the Tuya UG header), uf2tool (UF2
// blocks and tags), libretiny families.json and boards/_base/beken-*.json
// (UF2 family ids, partition offsets), bk7231tools (bootloader CRCs) and
// OpenBeken's .releaserc.yaml (release asset names).
//
// The package never prints and reads no flags; network access goes through
// the *http.Client the caller hands in.
package firmware
