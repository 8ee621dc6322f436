package postflash

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/tuyaflash/tuyaflash/flasher"
)

var errNotObject = errors.New("not a JSON object")

// statusSections are the sections of Status 0 tuyaflash reads and the
// smaller command that returns each alone. Tasmota's /cm captures the reply
// from its log buffer, which can drop sections (Tasmota issue #9305), so a
// missing one is asked for on its own.
var statusSections = []struct{ key, cmnd string }{
	{"StatusFWR", "Status 2"},
	{"StatusNET", "Status 5"},
	{"StatusSTS", "Status 11"},
	{"Status", "Status"},
}

// tasmotaVersion splits "12.5.0(tasmota)" or "14.4.1.2(release-tasmota)"
// into number and image name; tasmotaVersionWord a version that is not a
// number ("demo-1(tasmota)", tuyaflash's demo image) followed by the image
// name.
var (
	tasmotaVersion     = regexp.MustCompile(`^\s*(\d+\.\d+\.\d+(?:\.\d+)?[a-z]?)(?:\(([^)]*)\))?`)
	tasmotaVersionWord = regexp.MustCompile(`^\s*([^\s()]+)\(([^)]*)\)\s*$`)
)

// splitTasmotaVersion splits StatusFWR.Version into version and build.
func splitTasmotaVersion(ver string) (version, build string) {
	if m := tasmotaVersion.FindStringSubmatch(ver); m != nil {
		return m[1], m[2]
	}
	if m := tasmotaVersionWord.FindStringSubmatch(ver); m != nil {
		return m[1], m[2]
	}
	return strings.TrimSpace(ver), ""
}

// isOBK reports whether a Status reply comes from OpenBeken, whose
// StatusFWR.SDK is always "obk" (its json_interface.c: the flasher's
// scanner relies on it).
func isOBK(st jobj) bool {
	return strings.EqualFold(st.obj("StatusFWR").str("SDK"), "obk")
}

// isStatus reports whether a /cm reply carries at least one Status section.
func isStatus(st jobj) bool {
	for _, s := range statusSections {
		if st.obj(s.key) != nil {
			return true
		}
	}
	return false
}

// completeStatus asks for the sections Status 0 lacked, one small command
// each, and merges what comes back; what it saw goes to res.Evidence.
func (p *prober) completeStatus(ctx context.Context, st jobj, res *Result) {
	for _, s := range statusSections {
		if st.obj(s.key) != nil {
			continue
		}
		rep, err := p.cm(ctx, s.cmnd, "")
		if err != nil {
			res.saw("%s: %s", s.cmnd, shortErr(err))
			if KindOf(err).transient() {
				return
			}
			continue
		}
		part, err := decodeObject(rep.body)
		if err != nil || part.obj(s.key) == nil {
			res.saw("%s: no %s in the reply (%q)", s.cmnd, s.key, rep.snippet())
			continue
		}
		st[s.key] = map[string]any(part.obj(s.key))
		res.saw("%s filled in %s", s.cmnd, s.key)
	}
}

// applyStatus copies what a Tasmota or OpenBeken Status reply says into res.
func applyStatus(res *Result, st jobj, obk bool) {
	fwr := st.obj("StatusFWR")
	ver := fwr.str("Version")
	switch {
	case obk:
		// DEVICENAME_PREFIX_FULL "_" USER_SW_VER, e.g. OpenBK7231N_1.17.670
		if i := strings.IndexByte(ver, '_'); i > 0 {
			res.Build, res.Version = ver[:i], ver[i+1:]
		} else {
			res.Version = ver
		}
	default:
		res.Version, res.Build = splitTasmotaVersion(ver)
	}
	if hw := fwr.str("Hardware"); hw != "" {
		res.Hardware = hw
	}

	nw := st.obj("StatusNET")
	setIf(&res.Hostname, nw.str("Hostname"))
	setIf(&res.IP, nw.str("IPAddress"))
	res.setMAC(nw.str("Mac"), "StatusNET.Mac")

	status := st.obj("Status")
	setIf(&res.Name, status.str("DeviceName"))
	setIf(&res.Name, status.str("FriendlyName"))

	sts := st.obj("StatusSTS")
	if d, ok := sts.seconds("UptimeSec"); ok {
		res.Uptime = d
	} else if d, ok := parseUptime(sts["Uptime"]); ok {
		res.Uptime = d
	} else if d, ok := parseUptime(st.obj("StatusPRM")["Uptime"]); ok {
		res.Uptime = d
	}
	wifi := sts.obj("Wifi")
	if n, ok := wifi.int("RSSI"); ok {
		res.RSSI = int(n)
	}
	if n, ok := wifi.int("Signal"); ok {
		res.Signal = int(n)
	}
	if n, ok := status.int("Module"); ok && !obk {
		res.Module = fmt.Sprintf("module %d", n)
	}
}

func setIf(dst *string, v string) {
	if *dst == "" && strings.TrimSpace(v) != "" {
		*dst = strings.TrimSpace(v)
	}
}

// setMAC stores a MAC in canonical form and warns about placeholders and
// garbage.
func (r *Result) setMAC(raw, from string) {
	raw = strings.TrimSpace(raw)
	if raw == "" || r.MAC != "" {
		return
	}
	m, err := flasher.ParseMAC(raw)
	if err != nil {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%s %q is not a MAC address", from, raw))
		return
	}
	r.MAC = m.String()
	if ph, why := m.Placeholder(); ph {
		r.Warnings = append(r.Warnings, fmt.Sprintf("the device reports the placeholder MAC %s (%s): it cannot be told apart from other devices; restore the RF/MAC area from the stock backup", r.MAC, why))
	}
}

// parseServerHeader reads "Tasmota/14.4.1 (ESP8266EX)". Tasmota formats it
// into 32 bytes, so the hardware part may be cut short.
func parseServerHeader(s string) (version, hardware string, ok bool) {
	rest, found := strings.CutPrefix(s, "Tasmota/")
	if !found {
		return "", "", false
	}
	version, hardware, _ = strings.Cut(rest, " ")
	hardware = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(hardware), "("), ")")
	return version, hardware, true
}

// moduleName reads the Module command's reply {"Module":{"0":"Athom Plug
// V2"}} (older: {"Module":"…"}).
func moduleName(o jobj) string {
	switch m := o["Module"].(type) {
	case map[string]any:
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if name := anyString(m[k]); name != "" {
				return fmt.Sprintf("%s (%s)", name, k)
			}
		}
	case string:
		return m
	}
	return ""
}

// obkBuild reads /api/info's "Built on Nov 25 2026 17:33:59 version
// 1.17.670".
var obkBuild = regexp.MustCompile(`version\s+(\S+)\s*$`)

// applyOBKInfo merges OpenBeken's /api/info.
func applyOBKInfo(res *Result, info jobj) {
	res.setMAC(info.str("mac"), "/api/info mac")
	setIf(&res.IP, info.str("ip"))
	setIf(&res.Hardware, info.str("chipset"))
	setIf(&res.Name, info.str("shortName"))
	setIf(&res.Hostname, info.str("shortName"))
	if res.Version == "" {
		if m := obkBuild.FindStringSubmatch(info.str("build")); m != nil {
			res.Version = m[1]
		}
	}
	if res.Uptime == 0 {
		if d, ok := info.seconds("uptime_s"); ok {
			res.Uptime = d
		}
	}
}

// chipRe finds a chip family name in a hardware or board string.
var chipRe = regexp.MustCompile(`(?i)(ESP8285|ESP8266|ESP32(?:-[CSHP]\d)?|BK72\d\d[A-Z]?|BL60\d|LN882H|W[68]00|RTL87\d\d[A-Z]*)`)

// chipOf reduces "ESP8266EX", "ESP8285N08", "ESP32-D0WD-V3 v3.1",
// "generic-bk7231n-qfn32-tuya" to a family name, or "".
func chipOf(hw string) string {
	m := chipRe.FindString(hw)
	return strings.ToUpper(m)
}
