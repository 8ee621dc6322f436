package postflash

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
)

// ESPHome's web server (esphome/components/web_server) answers a Private
// Network Access preflight (OPTIONS with Access-Control-Request-Private-
// Network on any path but "/") with Private-Network-Access-Name (node name)
// and Private-Network-Access-ID (MAC), and sends every /events client a
// first "ping" event whose data is {"title":…,"comment":…,"ota":…,"log":…,
// "lang":"en"}. Its password is Digest on the Arduino framework and Basic on
// ESP-IDF; do answers either challenge.

// esphomeWeb runs both web probes. found reports ESPHome; authErr is a 401
// that stopped a probe.
func (p *prober) esphomeWeb(ctx context.Context, res *Result) (found bool, authErr *ProbeError) {
	rep, err := p.do(ctx, request{
		method: http.MethodOptions,
		path:   "/tuyaflash",
		op:     "OPTIONS (private network access preflight)",
		header: http.Header{
			"Access-Control-Request-Private-Network": {"true"},
			"Access-Control-Request-Method":          {"GET"},
		},
		auth: authChallenge,
	})
	if err == nil {
		if rep.status == http.StatusUnauthorized {
			authErr = p.webAuthError(rep, "OPTIONS")
		}
		if name := rep.header.Get("Private-Network-Access-Name"); name != "" {
			found = true
			id := rep.header.Get("Private-Network-Access-ID")
			res.saw("private network access preflight: name %q, id %q", name, id)
			setIf(&res.Hostname, name)
			setIf(&res.Name, name)
			res.setMAC(id, "Private-Network-Access-ID")
		}
	}
	rep, err = p.do(ctx, request{path: "/events", op: "GET /events", auth: authChallenge, firstEvent: true})
	if err != nil {
		return found, authErr
	}
	if rep.status == http.StatusUnauthorized {
		return found, p.webAuthError(rep, "GET /events")
	}
	event, data := parseEvent(rep.body)
	cfg, jerr := decodeObject([]byte(data))
	if rep.status == http.StatusOK && event == "ping" && jerr == nil && cfg.has("title") && cfg.has("lang") {
		found = true
		res.saw("/events: first ping event %s", data)
		if title := cfg.str("title"); title != "" {
			res.Name = title // friendly name, else node name
		}
	}
	return found, authErr
}

func (p *prober) webAuthError(rep *reply, op string) *ProbeError {
	pe := &ProbeError{Host: p.host, Op: op, Kind: KindAuth}
	if p.opts.Password == "" {
		pe.Msg = "the web server asks for a password (HTTP 401)"
		pe.Hint = "give the web server's user and password (web_server: auth: in the ESPHome YAML)"
	} else {
		pe.Msg = "the web server rejected the user and password (HTTP 401)"
		pe.Hint = "check web_server: auth: username and password in the ESPHome YAML"
	}
	return pe
}

// readFirstEvent reads a text/event-stream until the end of its first event
// (a blank line after at least one field).
func readFirstEvent(r io.Reader) ([]byte, error) {
	var buf bytes.Buffer
	sc := bufio.NewScanner(r)
	fieldsSeen := false
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" {
			if fieldsSeen {
				return buf.Bytes(), nil
			}
			continue
		}
		fieldsSeen = true
		buf.WriteString(line)
		buf.WriteByte('\n')
	}
	if err := sc.Err(); err != nil && buf.Len() == 0 {
		return nil, err
	}
	return buf.Bytes(), nil
}

// parseEvent returns the event type and joined data lines of one event.
func parseEvent(b []byte) (event, data string) {
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "event:"); ok {
			event = strings.TrimSpace(v)
		} else if v, ok := strings.CutPrefix(l, "data:"); ok {
			lines = append(lines, strings.TrimPrefix(v, " "))
		}
	}
	return event, strings.Join(lines, "\n")
}

// identifyESPHome runs the ESPHome probes: web server (when port 80
// answers), native API, and mDNS when allowed and still needed.
func (p *prober) identifyESPHome(ctx context.Context, res *Result, web bool) (found bool, authErr *ProbeError) {
	if web {
		found, authErr = p.esphomeWeb(ctx, res)
	}
	info, err := p.probeNativeAPI(ctx)
	switch {
	case err == nil:
		found = true
		applyNative(res, info)
	default:
		res.saw("native API (TCP %s): %s", apiPort, shortErr(err))
	}
	if !found && !p.opts.MDNS {
		return false, authErr
	}
	if p.opts.MDNS && (res.Version == "" || res.MAC == "") {
		if svc, ok := p.mdnsLookup(ctx, res); ok {
			found = true
			applyMDNS(res, svc)
		}
	}
	return found, authErr
}

func applyNative(res *Result, info *nativeInfo) {
	if info.encrypted {
		res.Encrypted = true
		res.saw("native API (TCP %s): the node rejected a plaintext hello (%q): encryption is on", apiPort, info.reject)
		if info.name != "" {
			res.saw("native API: Noise hello names the node %q, MAC %q", info.name, info.mac)
		}
	} else {
		res.saw("native API (TCP %s): hello answered %q", apiPort, info.serverInfo)
	}
	if info.friendly != "" {
		res.Name = info.friendly
	}
	setIf(&res.Name, info.name)
	setIf(&res.Hostname, info.name)
	setIf(&res.Version, info.version)
	setIf(&res.Hardware, info.model)
	res.setMAC(info.mac, "native API mac")
}

func applyMDNS(res *Result, svc MDNSService) {
	res.saw("mDNS %s: %s", svc.Instance, formatTXT(svc.TXT))
	t := svc.TXT
	setIf(&res.Version, t["version"])
	res.setMAC(t["mac"], "mDNS TXT mac")
	if t["friendly_name"] != "" {
		res.Name = t["friendly_name"]
	}
	setIf(&res.Hardware, t["board"])
	if c := chipOf(t["platform"]); c != "" && res.Chip == "" {
		res.Chip = c
	}
	if t["api_encryption"] != "" {
		res.Encrypted = true
	}
	setIf(&res.Hostname, strings.TrimSuffix(strings.TrimSuffix(svc.Host, "."), ".local"))
}
