package postflash

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// jobj is a decoded JSON object whose values keep the types the firmware
// sent. Tasmota changed several field types between versions (Status.Power
// int → "00", StatusMEM.FlashMode int → "DIO", StatusPRM.Uptime string on
// Tasmota but int on OpenBeken), so every accessor coerces.
type jobj map[string]any

// decodeObject decodes b as one JSON object, keeping numbers as json.Number.
func decodeObject(b []byte) (jobj, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errNotObject
	}
	return jobj(m), nil
}

// obj returns the object under key k, or nil.
func (o jobj) obj(k string) jobj {
	if m, ok := o[k].(map[string]any); ok {
		return jobj(m)
	}
	return nil
}

// has reports whether key k is present.
func (o jobj) has(k string) bool {
	_, ok := o[k]
	return ok
}

// str returns the value under k as text: strings as they are, numbers in
// their JSON spelling, booleans as true/false, and the first element of an
// array (FriendlyName is a string in old Tasmota, an array in new).
func (o jobj) str(k string) string {
	if o == nil {
		return ""
	}
	return anyString(o[k])
}

func anyString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case []any:
		if len(x) > 0 {
			return anyString(x[0])
		}
	}
	return ""
}

// int returns the value under k as an integer; numeric strings count, a
// float is truncated. ok is false when the key is missing or not numeric.
func (o jobj) int(k string) (int64, bool) {
	if o == nil {
		return 0, false
	}
	return anyInt(o[k])
}

func anyInt(v any) (int64, bool) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case string:
		s = strings.TrimSpace(x)
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	default:
		return 0, false
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return int64(f), true
	}
	return 0, false
}

// maxUptime bounds a believable uptime; a negative or longer one (or one
// that would overflow time.Duration) is garbage from the firmware.
const maxUptime = 100 * 365 * 24 * time.Hour

// uptimeSeconds turns a number of seconds into an uptime; ok is false
// outside 0..maxUptime.
func uptimeSeconds(n int64) (time.Duration, bool) {
	if n < 0 || n > int64(maxUptime/time.Second) {
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}

// seconds returns the value under k as an uptime in seconds
// (uptimeSeconds).
func (o jobj) seconds(k string) (time.Duration, bool) {
	n, ok := o.int(k)
	if !ok {
		return 0, false
	}
	return uptimeSeconds(n)
}

// parseUptime reads Tasmota's "202T01:24:51" (days T hh:mm:ss), a bare
// "01:24:51", or a number of seconds (OpenBeken's StatusPRM.Uptime).
func parseUptime(v any) (time.Duration, bool) {
	s, isStr := v.(string)
	if !isStr || !strings.Contains(s, ":") {
		n, ok := anyInt(v)
		if !ok {
			return 0, false
		}
		return uptimeSeconds(n)
	}
	var days int64
	if i := strings.IndexByte(s, 'T'); i >= 0 {
		d, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil || d < 0 || d > int64(maxUptime/(24*time.Hour)) {
			return 0, false
		}
		days, s = d, s[i+1:]
	}
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return 0, false
	}
	var hms [3]int64
	for i, p := range parts {
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil || n < 0 || n > 1<<20 {
			return 0, false
		}
		hms[i] = n
	}
	return uptimeSeconds(days*86400 + hms[0]*3600 + hms[1]*60 + hms[2])
}
