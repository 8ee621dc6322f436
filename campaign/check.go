package campaign

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// SectorSize is the flash erase unit of every campaign chip.
const SectorSize = 4096

// BootloaderEnd is where a Beken bootloader ends: on the chips whose
// download mode is that bootloader nothing below it may ever change.
const BootloaderEnd = 0x11000

// KeepsBootloader reports whether the chip's download mode is its flash
// bootloader, which refuses writes below BootloaderEnd: BK7231T, BK7231U
// and BK7252 (BK7231GUIFlashTool isSectorModificationAllowed; reference
// more-chips.md). Elsewhere the area may be written (a QIO image on
// BK7238 and BK7252N).
func KeepsBootloader(chip string) bool {
	return chip == "bk7231t" || chip == "bk7231u" || chip == "bk7252"
}

// ChangedSectors lists the sectors where a and b differ (flashes of one
// size; a size change counts every sector of the longer one).
func ChangedSectors(a, b []byte) map[int]bool {
	out := map[int]bool{}
	n := max(len(a), len(b))
	for off := 0; off < n; off += SectorSize {
		end := min(off+SectorSize, n)
		if end > len(a) || end > len(b) || !bytes.Equal(a[off:end], b[off:end]) {
			out[off/SectorSize] = true
		}
	}
	return out
}

// appMagic starts the simulated firmware's own settings sector (devicesim/
// appsim: magic, JSON length, CRC-32, JSON).
const appMagic = "TFAPPSIM"

// SameEndState reports whether two final flashes are the same end state:
// byte-identical but for the simulated firmware's boot counter, which
// counts every power-up (a re-run boots the device once more).
func SameEndState(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for s := range ChangedSectors(a, b) {
		off := s * SectorSize
		x, okx := appSettings(a[off : off+SectorSize])
		y, oky := appSettings(b[off : off+SectorSize])
		if !okx || !oky {
			return false
		}
		delete(x, "boot_count")
		delete(y, "boot_count")
		if fmt.Sprint(x) != fmt.Sprint(y) {
			return false
		}
	}
	return true
}

// appSettings decodes a sector of the simulated firmware's settings.
func appSettings(sec []byte) (map[string]any, bool) {
	if len(sec) < 16 || string(sec[:8]) != appMagic {
		return nil, false
	}
	n := int(sec[8]) | int(sec[9])<<8 | int(sec[10])<<16 | int(sec[11])<<24
	if n < 0 || 16+n > len(sec) {
		return nil, false
	}
	var m map[string]any
	if json.Unmarshal(sec[16:16+n], &m) != nil {
		return nil, false
	}
	return m, true
}

// OutsidePlan checks that flash differs from start only in the sectors
// allowed (those a fault-free run changes), and never below the
// bootloader's end of a chip that keeps it (KeepsBootloader). It returns one line per problem.
func OutsidePlan(chip string, start, flash []byte, allowed map[int]bool) []string {
	var out []string
	if len(flash) != len(start) {
		return []string{fmt.Sprintf("flash size changed: %d bytes, was %d", len(flash), len(start))}
	}
	if KeepsBootloader(chip) && !bytes.Equal(flash[:BootloaderEnd], start[:BootloaderEnd]) {
		out = append(out, fmt.Sprintf("the %s bootloader (0x0-0x%X) changed", strings.ToUpper(chip), BootloaderEnd-1))
	}
	var bad []string
	for s := range ChangedSectors(start, flash) {
		if !allowed[s] {
			bad = append(bad, fmt.Sprintf("0x%06X", s*SectorSize))
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		if len(bad) > 8 {
			bad = append(bad[:8], fmt.Sprintf("… (%d sectors)", len(bad)))
		}
		out = append(out, "written outside the plan: sectors "+strings.Join(bad, ", ")+" changed, which a fault-free run leaves alone")
	}
	return out
}

// Facts are what the inventory says about its devices that a fault-free run
// and a faulty run followed by a clean one must agree on: identity, Tuya
// data, the distinct backups and verified writes, the firmware, the
// migration's outcome. Dates, paths, addresses and counts are left out.
func Facts(inventory []byte) (string, error) {
	var inv struct {
		Devices []map[string]any `json:"devices"`
	}
	if err := json.Unmarshal(inventory, &inv); err != nil {
		return "", fmt.Errorf("inventory: %w", err)
	}
	var lines []string
	for _, d := range inv.Devices {
		var f []string
		for _, k := range []string{"key", "mac", "family", "flash_size", "flash_id", "chip_id", "efuse_key", "firmware", "firmware_version", "hostname", "virtual"} {
			if v, ok := d[k]; ok {
				f = append(f, fmt.Sprintf("%s=%v", k, v))
			}
		}
		if t, ok := d["tuya"].(map[string]any); ok {
			f = append(f, fmt.Sprintf("tuya=%v/%v/%v", t["device_id"], t["local_key"], t["from_backup"]))
		}
		var sums []string
		for _, b := range list(d["backups"]) {
			if s := fmt.Sprint(b["sha256"]); !slices.Contains(sums, s) {
				sums = append(sums, s)
			}
		}
		slices.Sort(sums)
		f = append(f, "backups="+strings.Join(sums, ","))
		var writes []string
		for _, w := range list(d["writes"]) {
			if w["verified"] != true {
				continue
			}
			s := fmt.Sprintf("%v %v %v@%v", w["firmware"], w["version"], w["size"], w["addr"])
			if !slices.Contains(writes, s) {
				writes = append(writes, s)
			}
		}
		slices.Sort(writes)
		f = append(f, "writes="+strings.Join(writes, ","))
		if m, ok := d["migration"].(map[string]any); ok {
			f = append(f, fmt.Sprintf("migration=%v", m["outcome"]))
		}
		if v, ok := d["last_verify"].(map[string]any); ok {
			f = append(f, fmt.Sprintf("verified=%v %v %v", v["ok"], v["firmware"], v["mac"]))
		}
		lines = append(lines, strings.Join(f, " "))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n"), nil
}

func list(v any) []map[string]any {
	var out []map[string]any
	a, _ := v.([]any)
	for _, x := range a {
		if m, ok := x.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// ExitCodes are the codes of the documented table a failure may end with
// (usage and interrupted are not what a fault on the bench causes).
var ExitCodes = map[int]string{1: "failure", 3: "no_device", 4: "refused", 5: "verify_failed", 6: "unsupported"}

// advice are words that tell the user what to do, in a message without a
// hint of its own.
var advice = []string{"run ", "check", "try", "power-cycle", "use ", "pass ", "plug", "connect", "choose", "free ", "make ", "remove", "resume", "again", "delete", "move", "wire", "lower", "hold"}

func hasAdvice(s string) bool {
	s = strings.ToLower(s)
	for _, a := range advice {
		if strings.Contains(s, a) {
			return true
		}
	}
	return false
}

// FailureOutput checks what a failed command printed: a code from the
// table, exactly one message naming what happened and what to do, and with
// --json exactly one JSON document whose error carries the same code. A
// successful command's --json output must be one document too. It returns
// one line per problem.
func FailureOutput(op Op, jsonMode bool, code int, stdout, stderr string) []string {
	var out []string
	if code != 0 {
		if _, ok := ExitCodes[code]; !ok {
			out = append(out, fmt.Sprintf("exit code %d is not one a fault may end with (table: 1, 3, 4, 5, 6)", code))
		}
	}
	if jsonMode {
		dec := json.NewDecoder(strings.NewReader(stdout))
		var doc struct {
			OK    *bool `json:"ok"`
			Error *struct {
				Code     string  `json:"code"`
				Message  string  `json:"message"`
				Hint     *string `json:"hint"`
				ExitCode int     `json:"exit_code"`
			} `json:"error"`
		}
		if err := dec.Decode(&doc); err != nil {
			return append(out, fmt.Sprintf("--json: stdout is not a JSON document: %v", err))
		}
		var extra json.RawMessage
		if err := dec.Decode(&extra); err != io.EOF {
			out = append(out, "--json: stdout holds more than one JSON document")
		}
		switch {
		case doc.OK == nil:
			out = append(out, "--json: the document has no \"ok\"")
		case *doc.OK != (code == 0):
			out = append(out, fmt.Sprintf("--json: ok is %v with exit code %d", *doc.OK, code))
		}
		if code == 0 {
			return out
		}
		if doc.Error == nil {
			return append(out, "--json: a failure without an error object")
		}
		if doc.Error.ExitCode != code || doc.Error.Code != ExitCodes[code] && ExitCodes[code] != "" {
			out = append(out, fmt.Sprintf("--json: error code %q/%d, the process exited %d", doc.Error.Code, doc.Error.ExitCode, code))
		}
		hint := ""
		if doc.Error.Hint != nil {
			hint = *doc.Error.Hint
		}
		if strings.TrimSpace(doc.Error.Message) == "" {
			out = append(out, "--json: the error has no message")
		} else if strings.TrimSpace(hint) == "" && !hasAdvice(doc.Error.Message) {
			out = append(out, fmt.Sprintf("--json: the error does not say what to do: %q (hint %q)", doc.Error.Message, hint))
		}
		return out
	}
	if code == 0 {
		return out
	}
	var msgs []string
	hint := ""
	for _, l := range strings.Split(stderr, "\n") {
		switch {
		case strings.HasPrefix(l, "tuyaflash "+string(op)+": "):
			msgs = append(msgs, l)
		case op == Migrate && isFailedStep(l):
			msgs = append(msgs, l)
		case strings.HasPrefix(l, "what to do: "):
			hint += l
		}
	}
	switch {
	case len(msgs) == 0:
		out = append(out, "no error message on stderr")
	case len(msgs) > 1:
		out = append(out, fmt.Sprintf("%d error messages on stderr: %q", len(msgs), msgs))
	case hint == "" && !hasAdvice(msgs[0]):
		out = append(out, fmt.Sprintf("the error does not say what to do: %q", msgs[0]))
	}
	return out
}

// isFailedStep reports whether a line is migrate's line of a failed step:
// "backup    failed  …".
func isFailedStep(l string) bool {
	f := strings.Fields(l)
	return len(f) >= 2 && f[1] == "failed" && !strings.HasPrefix(l, " ")
}
