package postflash

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// tuyaPort is the stock Tuya firmware's local-protocol port (tinytuya:
// TCP 6668).
const tuyaPort = "6668"

// Identify finds out which firmware answers at host (an IP address or host
// name, optionally with :port for the web server) and reads its state.
//
// The order follows what each firmware answers cheaply: GET
// /cm?cmnd=Status 0 with a Referer naming the host (Tasmota and OpenBeken;
// StatusFWR.SDK "obk" tells OpenBeken, which is then also read through
// /api/info), then ESPHome's web server, its native API on TCP 6053 and,
// when Options.MDNS is set, mDNS; with port 80 closed, an open TCP 6668
// means the stock Tuya firmware still runs.
//
// The Result is never nil for a valid host: when identification stops
// half-way (a password is needed, Tasmota's Referer gate, garbage) it
// carries what was learnt, together with an error built on *ProbeError that
// says what the user should do (flasher.Hint).
func Identify(ctx context.Context, host string, opts Options) (*Result, error) {
	p, err := newProber(host, opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p.base = ctx
	res := &Result{Host: strings.TrimSpace(host), Firmware: Unknown}
	pe := p.identify(ctx, res)
	p.finish(res)
	if pe != nil {
		return res, withHint(pe)
	}
	return res, nil
}

func (p *prober) identify(ctx context.Context, res *Result) *ProbeError {
	rep, err := p.cm(ctx, "Status 0", "")
	if err != nil {
		pe := err.(*ProbeError)
		switch pe.Kind {
		case KindEmptyReply:
			return p.refererGate(ctx, res)
		case KindRefused:
			return p.noWebServer(ctx, res, pe)
		}
		return pe
	}
	return p.fromCM(ctx, res, rep, "")
}

// fromCM interprets the reply to /cm?cmnd=Status 0.
func (p *prober) fromCM(ctx context.Context, res *Result, rep *reply, referer string) *ProbeError {
	p.noteServer(res, rep)
	res.saw("GET /cm?cmnd=Status 0 → HTTP %d %s, %d bytes", rep.status, rep.contentType(), len(rep.body))
	if rep.status == http.StatusUnauthorized {
		return p.authFailure(res, rep)
	}
	if rep.status == http.StatusOK && len(bytes.TrimSpace(rep.body)) == 0 {
		if referer != "" {
			return p.gateError(res, referer)
		}
		return p.refererGate(ctx, res)
	}
	tasmotaHeader := strings.HasPrefix(rep.header.Get("Server"), "Tasmota/")
	obj, jerr := decodeObject(rep.body)
	if jerr != nil {
		if tasmotaHeader && rep.contentType() == "text/html" {
			res.Firmware = Tasmota
			return &ProbeError{Host: p.host, Op: "GET /cm", Kind: KindUserMode,
				Msg:  "Tasmota answered the API request with its main page: the web server runs in user mode (WebServer 1), which disables the HTTP API",
				Hint: "run WebServer 2 in the Tasmota console (serial console, or MQTT), then try again"}
		}
		if tasmotaHeader || bytes.Contains(rep.body, []byte(`"StatusFWR"`)) {
			// A Tasmota reply that does not parse (a sensor printing nan):
			// the small Status commands avoid the broken section.
			st := jobj{}
			p.completeStatus(ctx, st, res)
			if isStatus(st) {
				return p.readStatus(ctx, res, st)
			}
		}
		return p.notTasmota(ctx, res, rep, jerr)
	}
	switch {
	case obj.str("WARNING") != "":
		return p.warning(res, rep, obj.str("WARNING"))
	case isStatus(obj):
		return p.readStatus(ctx, res, obj)
	case (obj.str("Command") == "Unknown" || obj.str("Command") == "Error") && len(obj) == 1:
		return p.unknownCommand(ctx, res, obj.str("Command"), tasmotaHeader)
	case len(obj) == 0:
		// OpenBeken built without its Tasmota JSON layer answers {} to
		// every command; Tasmota can lose the reply from its log buffer.
		res.saw("Status 0 answered {}")
		if p.obkInfo(ctx, res) {
			res.Firmware = OpenBeken
			return nil
		}
		st := jobj{}
		p.completeStatus(ctx, st, res)
		if isStatus(st) {
			return p.readStatus(ctx, res, st)
		}
		if tasmotaHeader {
			res.Firmware = Tasmota
		}
		return &ProbeError{Host: p.host, Op: "GET /cm?cmnd=Status 0", Kind: KindUnknownCommand,
			Msg:  "answered {} to Status 0 and to the smaller Status commands: the reply never reaches the HTTP API",
			Hint: "on Tasmota run WebLog 2 in the console (the API replays the log); otherwise this firmware only imitates Tasmota's /cm"}
	}
	return p.notTasmota(ctx, res, rep, nil)
}

// readStatus finishes a Tasmota or OpenBeken identification from a Status
// reply.
func (p *prober) readStatus(ctx context.Context, res *Result, st jobj) *ProbeError {
	p.completeStatus(ctx, st, res)
	if isOBK(st) {
		res.Firmware = OpenBeken
		res.saw("StatusFWR.SDK = %q: OpenBeken", st.obj("StatusFWR").str("SDK"))
		applyStatus(res, st, true)
		p.obkInfo(ctx, res)
		return nil
	}
	res.Firmware = Tasmota
	res.saw("StatusFWR.Version = %q", st.obj("StatusFWR").str("Version"))
	applyStatus(res, st, false)
	if rep, err := p.cm(ctx, "Module", ""); err == nil {
		if o, err := decodeObject(rep.body); err == nil {
			if m := moduleName(o); m != "" {
				res.Module = m
			}
		}
	}
	return nil
}

// obkInfo reads OpenBeken's /api/info; false when it is not there.
func (p *prober) obkInfo(ctx context.Context, res *Result) bool {
	rep, err := p.do(ctx, request{
		path:   "/api/info",
		op:     "GET /api/info",
		header: http.Header{"Referer": {"http://" + p.host + "/"}},
		auth:   authBasic,
	})
	if err != nil || rep.status != http.StatusOK {
		return false
	}
	info, err := decodeObject(rep.body)
	if err != nil || !info.has("chipset") || !info.has("build") {
		return false
	}
	res.saw("GET /api/info: chipset %q, build %q", info.str("chipset"), info.str("build"))
	applyOBKInfo(res, info)
	return true
}

// noteServer records Tasmota's Server header, its cheapest fingerprint.
func (p *prober) noteServer(res *Result, rep *reply) {
	s := rep.header.Get("Server")
	if s == "" {
		return
	}
	res.saw("Server: %s", s)
	if v, hw, ok := parseServerHeader(s); ok {
		setIf(&res.Hardware, hw)
		if res.Version == "" {
			if m := tasmotaVersion.FindStringSubmatch(v); m != nil {
				res.Version = m[1]
			}
		}
	}
}

// refererGate handles an empty reply to /cm. With the device addressed by
// a name, the gate may want the IP the device knows itself by: one retry
// names the IP the connection went to.
func (p *prober) refererGate(ctx context.Context, res *Result) *ProbeError {
	referer := "http://" + p.host + "/"
	res.saw("GET /cm?cmnd=Status 0 with Referer %s → connection closed without a reply", referer)
	if ip := p.remoteIP(); ip != "" && ip != p.name {
		alt := "http://" + ip + "/"
		rep, err := p.cm(ctx, "Status 0", alt)
		if err == nil && len(bytes.TrimSpace(rep.body)) > 0 {
			res.saw("retried with Referer %s", alt)
			return p.fromCM(ctx, res, rep, alt)
		}
		referer = alt
	}
	return p.gateError(res, referer)
}

func (p *prober) gateError(res *Result, referer string) *ProbeError {
	res.Firmware = Tasmota
	return &ProbeError{Host: p.host, Op: "GET /cm?cmnd=Status 0", Kind: KindEmptyReply,
		Msg: fmt.Sprintf("the device closed the connection without a reply to the HTTP API although the request named it as Referer (%s): "+
			"that is Tasmota's API gate (SetOption128 0, the default of recent releases), which answers only when the Referer holds the device's own IP address or hostname", referer),
		Hint: "address the device by the IP address it has itself (not a DNS alias or a forwarded port), or allow the API: run SetOption128 1 in the Tasmota console (web UI → Tools → Console, or the serial console)"}
}

// authFailure reports a 401 on /cm.
func (p *prober) authFailure(res *Result, rep *reply) *ProbeError {
	challenge := rep.header.Get("WWW-Authenticate")
	switch {
	case strings.Contains(challenge, "OpenBeken"):
		res.Firmware = OpenBeken
	case bytes.Contains(rep.body, []byte(`"WARNING"`)), strings.HasPrefix(rep.header.Get("Server"), "Tasmota/"):
		res.Firmware = Tasmota
	}
	what := "HTTP 401"
	if b := rep.snippet(); b != "" {
		what += " " + b
	} else if challenge != "" {
		what += ", " + challenge
	}
	return p.authError(res, what)
}

func (p *prober) authError(res *Result, what string) *ProbeError {
	pe := &ProbeError{Host: p.host, Op: "GET /cm?cmnd=Status 0", Kind: KindAuth}
	fw := "the device"
	if res.Firmware != Unknown {
		fw = string(res.Firmware)
	}
	if p.opts.Password == "" {
		pe.Msg = fmt.Sprintf("%s asks for its web password (%s)", fw, what)
		pe.Hint = "give the web admin password (--password); the user is admin"
	} else {
		pe.Msg = fmt.Sprintf("%s rejected the user %q and the password (%s)", fw, p.opts.user(), what)
		pe.Hint = "check the web admin password (the user is always admin); a lost Tasmota password is removed with WebPassword 0 on the serial console"
	}
	return pe
}

// warning handles {"WARNING":…}: Tasmota up to 9.x answered a missing or
// wrong password with HTTP 200 and "Need user=<username>&password=<password>"
// (translated in localized builds); "Enable weblog 2 if response expected"
// means the log capture is off.
func (p *prober) warning(res *Result, rep *reply, w string) *ProbeError {
	res.Firmware = Tasmota
	res.saw("WARNING %q", w)
	if rep.status == http.StatusUnauthorized || strings.Contains(w, "=<") || strings.Contains(strings.ToLower(w), "password") {
		return p.authError(res, fmt.Sprintf("HTTP %d %s", rep.status, rep.snippet()))
	}
	return &ProbeError{Host: p.host, Op: "GET /cm?cmnd=Status 0", Kind: KindUnknownCommand,
		Msg:  fmt.Sprintf("Tasmota answered with a warning instead of the status: %q", w),
		Hint: "run WebLog 2 in the Tasmota console so that the API can return replies, then try again"}
}

// unknownCommand handles {"Command":"Unknown"} (or "Error") to Status 0.
func (p *prober) unknownCommand(ctx context.Context, res *Result, what string, tasmotaHeader bool) *ProbeError {
	res.saw("Status 0 answered {\"Command\":%q}", what)
	if p.obkInfo(ctx, res) {
		res.Firmware = OpenBeken
		return nil
	}
	if tasmotaHeader {
		res.Firmware = Tasmota
	}
	return &ProbeError{Host: p.host, Op: "GET /cm?cmnd=Status 0", Kind: KindUnknownCommand,
		Msg: fmt.Sprintf("answered {\"Command\":%q} to Status 0: it speaks Tasmota's command API but cannot report its status", what),
		Hint: "a minimal or safe-boot Tasmota build answers so: open http://" + p.host + "/ and finish the upgrade to the full firmware; " +
			"any other firmware only imitates Tasmota's API and tuyaflash cannot read it"}
}

// notTasmota runs the ESPHome probes after /cm gave no Tasmota-style reply.
func (p *prober) notTasmota(ctx context.Context, res *Result, rep *reply, jerr error) *ProbeError {
	found, authErr := p.identifyESPHome(ctx, res, true)
	if found {
		res.Firmware = ESPHome
		return nil
	}
	if authErr != nil {
		return authErr
	}
	what := fmt.Sprintf("HTTP %d %s, %d bytes", rep.status, rep.contentType(), len(rep.body))
	if s := rep.snippet(); s != "" {
		what += fmt.Sprintf(": %q", s)
	}
	if rep.status == http.StatusOK && jerr != nil {
		return &ProbeError{Host: p.host, Op: "GET /cm?cmnd=Status 0", Kind: KindNotJSON, Err: jerr,
			Msg:  "answered the status request with something that is not JSON (" + what + "): it runs neither Tasmota, OpenBeken nor ESPHome",
			Hint: "check the address: another device (router, printer, camera) may hold it; find the flashed device by its MAC"}
	}
	return &ProbeError{Host: p.host, Op: "GET /cm?cmnd=Status 0", Kind: KindNotFirmware,
		Msg:  "a web server answers (" + what + ") but it is neither Tasmota, OpenBeken nor ESPHome",
		Hint: "check the address: another device may hold it; find the flashed device by its MAC"}
}

// noWebServer handles a refused port 80: ESPHome with its web server off,
// or the stock Tuya firmware.
func (p *prober) noWebServer(ctx context.Context, res *Result, pe *ProbeError) *ProbeError {
	port := "80"
	if _, pt, err := net.SplitHostPort(p.host); err == nil && pt != "" {
		port = pt
	}
	res.saw("port %s: connection refused", port)
	if found, _ := p.identifyESPHome(ctx, res, false); found {
		res.Firmware = ESPHome
		return nil
	}
	if c, err := p.dialProbe(ctx, tuyaPort); err == nil {
		c.Close()
		res.Firmware = StockTuya
		res.saw("TCP %s accepts connections (Tuya local protocol)", tuyaPort)
		return nil
	}
	pe.Msg = "connection refused on port " + port + ", and nothing answers on ESPHome's API port 6053 or Tuya's port 6668: a host is at this address but it runs none of the expected firmwares"
	return pe
}

// finish derives the fields that follow from others and makes every
// string the device sent safe to print (termsafe).
func (p *prober) finish(res *Result) {
	defer res.clean()
	if res.Chip == "" {
		res.Chip = chipOf(res.Hardware)
	}
	if res.IP == "" || res.IP == "0.0.0.0" {
		res.IP = ""
		if ip := p.remoteIP(); ip != "" {
			res.IP = ip
		} else if a, err := netip.ParseAddr(p.name); err == nil {
			res.IP = a.String()
		}
	}
}
