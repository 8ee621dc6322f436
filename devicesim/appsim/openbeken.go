package appsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// OpenBeken on Beken chips, after OpenBK7231T_App's sources (src/new_cfg.c,
// src/user_main.c, src/httpserver/new_http.c, http_fns.c,
// json_interface.c, rest_interface.c; postflash-and-ecosystem.md §2) and
// shaped byte for byte on the replies the real firmware gave
// (../shared/testdata/http/openbeken, OpenBK7231T_App @ e1a80975).

// obkGPIOs is PLATFORM_GPIO_MAX on BK7231: P0…P28.
const obkGPIOs = 29

// obkRoleNames are the pin role names by index, as /api/pins lists them
// (src/httpserver/new_http.c htmlPinRoleNames).
var obkRoleNames = []string{" ", "Rel", "Rel_n", "Btn", "Btn_n", "LED", "LED_n", "PWM", "WifiLED", "WifiLED_n",
	"Btn_Tgl_All", "Btn_Tgl_All_n", "dInput", "dInput_n", "TglChanOnTgl", "dInput_NoPullUp", "dInput_NoPullUp_n",
	"BL0937SEL", "BL0937CF", "BL0937CF1", "ADC", "SM2135DAT", "SM2135CLK", "BP5758D_DAT", "BP5758D_CLK",
	"BP1658CJ_DAT", "BP1658CJ_CLK", "PWM_n", "IRRecv", "IRSend", "Btn_NextColor", "Btn_NextColor_n",
	"Btn_NextDimmer", "Btn_NextDimmer_n", "AlwaysHigh", "AlwaysLow", "UCS1912_DIN", "SM16703P_DIN",
	"Btn_NextTemperature", "Btn_NextTemperature_n", "Btn_ScriptOnly", "Btn_ScriptOnly_n", "DHT11", "DHT12",
	"DHT21", "DHT22", "CHT83XX_SDA", "CHT83XX_SCK", "SHT3X_SDA", "SHT3X_SCK", "SoftSDA", "SoftSCL", "SM2235DAT",
	"SM2235CLK", "BridgeFWD", "BridgeREV", "Btn_SmartLED", "Btn_SmartLED_n", "DoorSnsrWSleep",
	"DoorSnsrWSleep_nPup", "BAT_ADC", "BAT_Relay", "TM1637_DIO", "TM1637_CLK", "BL0937SEL_n",
	"DoorSnsrWSleep_pd", "SGP_CLK", "SGP_DAT", "ADC_Button", "GN6932_CLK", "GN6932_DAT", "GN6932_STB",
	"TM1638_CLK", "TM1638_DAT", "TM1638_STB", "BAT_Relay_n", "KP18058_CLK", "KP18058_DAT", "DS1820_IO",
	"PWM_ScriptOnly", "PWM_ScriptOnly_n", "Counter_f", "Counter_r", "IRRecv_nPup", "StripState",
	"StripState_n", "HLW_8112_SCSN", "RCRecv", "RCRecv_nPup", "Btn_pd", "Btn_pd_n", "TglChanOnTgl_pd",
	"ShutterA", "ShutterB", "BtnShutterUp", "BtnShutterDown", "BL0939_SCLK", "BL0939_MOSI", "BL0939_MISO"}

// Role indexes the simulator acts on.
const (
	obkRel   = 1
	obkRelN  = 2
	obkBtn   = 3
	obkBtnN  = 4
	obkFlags = 1024 // OBK_FLAG_MQTT_BROADCASTSELFSTATEONCONNECT, set by CFG_SetDefaultConfig
)

// obkBuild stands for __DATE__ " " __TIME__ of the build.
const obkBuild = "Jan  1 2026 00:00:00"

type openBeken struct {
	f  *Firmware
	st *settings
	// power holds the channel values (relays on or off).
	power map[int]bool
}

func newOpenBeken(f *Firmware) *openBeken {
	o := &openBeken{f: f, power: map[int]bool{}}
	m := f.mac
	f.st = f.loadSettings(func() *settings {
		// Names from MAC bytes 2…5 (src/new_cfg.c CFG_SetDefaultConfig).
		tail := fmt.Sprintf("%02X%02X%02X%02X", m[2], m[3], m[4], m[5])
		return &settings{Firmware: string(KindOpenBeken), ShortName: "obk" + tail, LongName: f.chip.obkPrefix + "_" + tail,
			Roles: make([]int, obkGPIOs), Channels: make([]int, obkGPIOs), Flags: obkFlags}
	})
	o.st = f.st
	for len(o.st.Roles) < obkGPIOs {
		o.st.Roles = append(o.st.Roles, 0)
	}
	for len(o.st.Channels) < obkGPIOs {
		o.st.Channels = append(o.st.Channels, 0)
	}
	return o
}

func (o *openBeken) version() string {
	if o.f.img.Version != "" {
		return o.f.img.Version
	}
	return "unknown"
}

// start opens the access point 5 s after boot when no SSID is set (the
// AP is named after the long device name, open; src/user_main.c), else
// connects. OpenBeken keeps retrying a network it cannot join; it opens
// its AP only without an SSID, or in safe mode after repeated failed
// boots (docs/safeMode.md).
func (o *openBeken) start() {
	f := o.f
	if o.st.SSID[0] == "" {
		d := f.cfg.Timing.AccessPoint
		if d <= 0 {
			d = obkAPDelay
		}
		f.after(d, func() {
			if f.serveHTTP(roleAP, f.handler(o.serve, writeOBK)) {
				f.apName = o.st.LongName
			}
		})
		return
	}
	o.connect()
}

func (o *openBeken) connect() {
	f := o.f
	ssid, pass := o.st.SSID[0], o.st.Password[0]
	f.after(f.cfg.Timing.Join, func() {
		if !f.joins(ssid, pass) {
			f.logf("openbeken: cannot join %q; retrying", ssid)
			f.after(f.cfg.Timing.Retry, o.connect)
			return
		}
		if f.serveHTTP(roleStation, f.handler(o.serve, writeOBK)) {
			f.joined = ssid
		}
	})
}

// OpenBeken has no console on the flashing UART by default.
func (o *openBeken) serialLine([]byte) {}

// writeOBK sends a reply the way OpenBeken's HTTP server does: the status
// line "HTTP/1.1 <code> OK" ended by a bare LF, CR LF after each header,
// no Content-Length, the connection closed after the body (http_setup in
// new_http.c; the recordings).
func writeOBK(w http.ResponseWriter, rep reply) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		writeHTTP(w, rep)
		return
	}
	c, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	defer c.Close()
	if rep.drop {
		return
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d OK\n", rep.status)
	fmt.Fprintf(&b, "Content-type: %s\r\n", rep.ctype)
	for k, vs := range rep.header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("Access-Control-Allow-Origin: *\r\n")
	b.WriteString("Access-Control-Allow-Headers: Origin, X-Requested-With, Content-Type, Accept\r\n")
	b.WriteString("Connection: close\r\n\r\n")
	b.Write(rep.body)
	buf.Write(b.Bytes()) //nolint:errcheck // the client may be gone
	buf.Flush()          //nolint:errcheck
}

// serve is OpenBeken's web server, the same on the access point and on
// the station.
func (o *openBeken) serve(r *http.Request, body []byte) reply {
	f := o.f
	if o.st.WebPassword != "" {
		if u, p, ok := r.BasicAuth(); !ok || u != "admin" || p != o.st.WebPassword {
			rep := htmlReply(http.StatusUnauthorized, "Unauthorized")
			rep.header = http.Header{"WWW-Authenticate": {`Basic realm="OpenBeken HTTP Server"`}}
			return rep
		}
	}
	q := r.URL.Query()
	switch r.URL.Path {
	case "/cm":
		cmnd := q.Get("cmnd")
		if r.Method == http.MethodPost || r.Method == http.MethodPut {
			if form, err := url.ParseQuery(string(body)); err == nil && form.Get("cmnd") != "" {
				cmnd = form.Get("cmnd")
			}
		}
		if cmnd == "" {
			return jsonReply(nil)
		}
		rep, _ := o.exec(cmnd)
		return jsonReply(rep)
	case "/api/info":
		return jsonReply(o.apiInfo())
	case "/api/pins":
		if r.Method == http.MethodPost {
			return o.postPins(body)
		}
		return jsonReply(o.apiPins())
	case "/api/cmnd":
		if r.Method != http.MethodPost {
			break
		}
		rep, known := o.exec(strings.TrimSpace(string(body)))
		if !known {
			r := jsonReply([]byte(`{"error":501, "msg":"Unknown command", "res":{}}`))
			r.status = 501
			return r
		}
		return jsonReply(append(append([]byte(`{"success":200, "msg":"OK", "res":`), rep...), '}'))
	case "/api/reboot":
		if r.Method == http.MethodPost {
			f.restart(obkResetDelay)
			return jsonReply([]byte(`{"reboot":3}`))
		}
	case "/", "/index":
		if q.Get("restart") == "1" {
			f.restart(obkResetDelay)
		}
		return htmlReply(200, o.page("", "<h3>"+html.EscapeString(o.st.LongName)+"</h3>"+o.powerHTML()))
	case "/cfg_wifi":
		return htmlReply(200, o.page("Wifi", o.wifiForm()))
	case "/cfg_wifi_set":
		return htmlReply(200, o.page("Saving Wifi", o.wifiSet(q)))
	}
	return htmlReply(200, o.page("Not found", "Not found.<br/>"))
}

// page wraps content like OpenBeken's pages: the title is the device's
// long name, then the page.
func (o *openBeken) page(title, content string) string {
	t := html.EscapeString(o.st.LongName)
	if title != "" {
		t += " - " + html.EscapeString(title)
	}
	return "<!DOCTYPE html><html><head><title>" + t + "</title><meta charset=\"utf-8\"></head><body><div id=\"main\"><h1><a target=\"_blank\" href=\"https://github.com/openshwprojects/OpenBK7231T_App/\">" +
		html.EscapeString(o.st.LongName) + "</a></h1>" + content + "<br/><a href=\"index\">Home</a> | <small>" + html.EscapeString(o.f.chip.obkPrefix+" "+o.version()) + "</small></div></body></html>"
}

func (o *openBeken) wifiForm() string {
	return "<h2>Use this to connect to your WiFi</h2><form action=\"/cfg_wifi_set\"><label for=\"ssid\">SSID:</label><br><input type=\"text\" id=\"ssid\" name=\"ssid\" value=\"" +
		html.EscapeString(o.st.SSID[0]) + "\"><br><label for=\"pass\">Password:</label><br><input type=\"password\" id=\"pass\" name=\"pass\" value=\"\"><br><br><input type=\"submit\" value=\"Submit\"></form>"
}

// wifiSet is /cfg_wifi_set (http_fn_cfg_wifi_set): ssid and pass change
// the network, open=1 makes the device an open access point again;
// web_admin_password_enabled absent clears the web password, 0 keeps it,
// 1 with web_admin_password (5 characters or more) sets it. A change
// resets the device 3 s later; no change says so.
func (o *openBeken) wifiSet(q url.Values) string {
	f := o.f
	changed := false
	set := func(dst *string, v string) {
		if *dst != v {
			*dst, changed = v, true
		}
	}
	if q.Has("open") {
		set(&o.st.SSID[0], "")
		set(&o.st.Password[0], "")
	} else {
		if q.Has("ssid") {
			set(&o.st.SSID[0], q.Get("ssid"))
		}
		if q.Has("pass") {
			set(&o.st.Password[0], q.Get("pass"))
		}
	}
	switch q.Get("web_admin_password_enabled") {
	case "":
		set(&o.st.WebPassword, "")
	case "1":
		if p := q.Get("web_admin_password"); len(p) >= 5 {
			set(&o.st.WebPassword, p)
		}
	}
	if !changed {
		return "<p>WiFi: No changes detected.</p><br><a href=\"cfg_wifi\">Return to WiFi settings</a><br>"
	}
	f.save()
	f.restart(obkResetDelay)
	return "<p>WiFi: Please wait for module to reset...</p><br><a href=\"cfg_wifi\">Return to WiFi settings</a><br>"
}

// args splits a command's arguments as OpenBeken's tokenizer does: by
// spaces, a quoted argument kept whole.
func obkArgs(s string) []string {
	var out []string
	s = strings.TrimSpace(s)
	for s != "" {
		if s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				out = append(out, s[1:])
				break
			}
			out = append(out, s[1:1+end])
			s = strings.TrimSpace(s[2+end:])
			continue
		}
		tok, rest, _ := strings.Cut(s, " ")
		out = append(out, tok)
		s = strings.TrimSpace(rest)
	}
	return out
}

// exec runs one command (docs/commands.md) and returns the Tasmota-style
// JSON reply of OpenBeken's JSON layer ({} for commands it has no reply
// for, unknown ones included) and whether the command exists.
func (o *openBeken) exec(line string) ([]byte, bool) {
	f := o.f
	cmd, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
	args := obkArgs(rest)
	arg := func(i int) string {
		if i < len(args) {
			return args[i]
		}
		return ""
	}
	lc := strings.ToLower(cmd)
	switch {
	case lc == "status":
		return o.status(arg(0)), true
	case lc == "state":
		return jsonText(o.statusSTS()), true
	case strings.HasPrefix(lc, "power"):
		ch := 0
		if n := lc[len("power"):]; n != "" {
			var err error
			if ch, err = strconv.Atoi(n); err != nil {
				return []byte("{}"), false
			}
		}
		o.setPower(ch, arg(0))
		return jsonText(o.powerObj()), true
	case lc == "backlog":
		for _, c := range strings.Split(rest, ";") {
			if c = strings.TrimSpace(c); c != "" {
				o.exec(c)
			}
		}
		return []byte("{}"), true
	case lc == "shortname":
		if arg(0) != "" {
			o.st.ShortName = arg(0)
			f.save()
		}
		return []byte("{}"), true
	case lc == "friendlyname":
		if arg(0) != "" {
			o.st.LongName = arg(0)
			f.save()
		}
		return []byte("{}"), true
	case lc == "setpinrole":
		pin, err := strconv.Atoi(arg(0))
		role, ok := obkRole(arg(1))
		if err != nil || pin < 0 || pin >= obkGPIOs || !ok {
			return []byte("{}"), true
		}
		o.st.Roles[pin] = role
		f.save()
		return []byte("{}"), true
	case lc == "setpinchannel":
		pin, err := strconv.Atoi(arg(0))
		ch, err2 := strconv.Atoi(arg(1))
		if err != nil || err2 != nil || pin < 0 || pin >= obkGPIOs {
			return []byte("{}"), true
		}
		o.st.Channels[pin] = ch
		if ch2, err := strconv.Atoi(arg(2)); err == nil {
			for len(o.st.Channels2) < obkGPIOs {
				o.st.Channels2 = append(o.st.Channels2, 0)
			}
			o.st.Channels2[pin] = ch2
		}
		f.save()
		return []byte("{}"), true
	case lc == "ssid1":
		if arg(0) != "" {
			o.st.SSID[0] = arg(0)
			f.save()
		}
		return []byte("{}"), true
	case lc == "password1":
		o.st.Password[0] = arg(0)
		f.save()
		return []byte("{}"), true
	case lc == "restart" || lc == "reboot":
		f.restart(f.cfg.Timing.Restart)
		return []byte("{}"), true
	}
	return []byte("{}"), false
}

// obkRole parses a role name (any case, "None" too) or index
// (PIN_ParsePinRoleName).
func obkRole(s string) (int, bool) {
	if n, err := strconv.Atoi(s); err == nil {
		return n, n >= 0 && n < len(obkRoleNames)
	}
	if strings.EqualFold(s, "None") {
		return 0, true
	}
	for i, n := range obkRoleNames {
		if strings.EqualFold(n, s) {
			return i, true
		}
	}
	return 0, false
}

// relayChannels are the channels driven by relay pins, in order.
func (o *openBeken) relayChannels() []int {
	seen := map[int]bool{}
	var chs []int
	for i, r := range o.st.Roles {
		if (r == obkRel || r == obkRelN) && !seen[o.st.Channels[i]] {
			seen[o.st.Channels[i]] = true
			chs = append(chs, o.st.Channels[i])
		}
	}
	sort.Ints(chs)
	return chs
}

// setPower is Power[N] [ON|OFF|TOGGLE]: without N, every relay.
func (o *openBeken) setPower(ch int, v string) {
	targets := []int{ch}
	if ch == 0 {
		targets = o.relayChannels()
	}
	for _, c := range targets {
		switch strings.ToUpper(v) {
		case "ON", "1":
			o.power[c] = true
		case "OFF", "0":
			o.power[c] = false
		case "TOGGLE", "2":
			o.power[c] = !o.power[c]
		}
	}
}

// powerObj is POWER (one relay) or POWER1…POWERn (http_tasmota_json_power);
// without relays OpenBeken still answers "POWER":"ON" (the recordings).
func (o *openBeken) powerObj() obj {
	chs := o.relayChannels()
	switch len(chs) {
	case 0:
		return obj{{"POWER", "ON"}}
	case 1:
		return obj{{"POWER", onOff(o.power[chs[0]])}}
	}
	var out obj
	for i, c := range chs {
		out = append(out, kv{fmt.Sprintf("POWER%d", i+1), onOff(o.power[c])})
	}
	return out
}

func (o *openBeken) powerHTML() string {
	var b strings.Builder
	for _, kv := range o.powerObj() {
		fmt.Fprintf(&b, "<div class='%s'>%s</div>", strings.ToLower(kv.v.(string)), kv.v)
	}
	return b.String()
}

// ip is the device's address: the station's, or 192.168.4.1 on its
// access point (hal_wifi_bk7231.c APP_DRONE_DEF_NET_IP).
func (o *openBeken) ip() string {
	if o.f.joined != "" {
		return o.f.host(roleStation)
	}
	return tasmotaAPIP
}

func (o *openBeken) uptime() int { return int(o.f.uptime() / time.Second) }

func (o *openBeken) apiInfo() []byte {
	return jsonText(obj{
		{"uptime_s", o.uptime()}, {"build", "Built on " + obkBuild + " version " + o.version()}, {"ip", o.ip()},
		{"mac", o.f.mac.String()}, {"flags", strconv.FormatInt(o.st.Flags, 10)}, {"mqtthost", ":1883"},
		{"mqtttopic", o.st.ShortName}, {"chipset", o.f.chip.obkMCU}, {"webapp", "https://openbekeniot.github.io/webapp/"},
		{"shortName", o.st.ShortName}, {"startcmd", o.st.StartCmd}, {"supportsSSDP", 0}, {"supportsClientDeviceDB", true},
	})
}

func (o *openBeken) apiPins() []byte {
	states := make([]int, obkGPIOs)
	for i, r := range o.st.Roles {
		switch r {
		case obkRel, obkRelN:
			states[i] = boolInt(o.power[o.st.Channels[i]])
		case obkBtn, obkBtnN:
			states[i] = 1 // pulled up, not pressed
		}
	}
	out := obj{{"rolenames", obkRoleNames}, {"roles", o.st.Roles}, {"channels", o.st.Channels}}
	for _, c := range o.st.Channels2 {
		if c != 0 {
			out = append(out, kv{"channels2", o.st.Channels2})
			break
		}
	}
	return jsonText(append(out, kv{"states", states}))
}

// postPins is POST /api/pins {"roles":[…],"channels":[…],"deviceFlag":N,
// "deviceCommand":"…"} (rest_interface.c): saved to flash.
func (o *openBeken) postPins(body []byte) reply {
	var in struct {
		Roles, Channels []int
		DeviceFlag      *int
		DeviceCommand   *string
	}
	if err := json.Unmarshal(body, &in); err != nil {
		r := jsonReply([]byte(`{"error":400, "msg":"Invalid JSON"}`))
		r.status = 400
		return r
	}
	for i, v := range in.Roles {
		if i < obkGPIOs && v >= 0 && v < len(obkRoleNames) {
			o.st.Roles[i] = v
		}
	}
	for i, v := range in.Channels {
		if i < obkGPIOs {
			o.st.Channels[i] = v
		}
	}
	if in.DeviceFlag != nil && *in.DeviceFlag >= 0 && *in.DeviceFlag <= 10 {
		o.st.Flags |= 1 << *in.DeviceFlag
	}
	if in.DeviceCommand != nil {
		o.st.StartCmd = *in.DeviceCommand
	}
	o.f.save()
	return jsonReply([]byte(`{"success":200, "msg":"OK"}`))
}

// status is Status [N] (json_interface.c): 2, 4, 5, 6, 7, 8/10 and 11
// return one section, anything else the whole status.
func (o *openBeken) status(arg string) []byte {
	switch arg {
	case "2":
		return jsonText(obj{{"StatusFWR", o.statusFWR()}})
	case "4":
		return jsonText(obj{{"StatusMEM", o.statusMEM()}})
	case "5":
		return jsonText(obj{{"StatusNET", o.statusNET()}})
	case "6":
		return jsonText(obj{{"StatusMQT", o.statusMQT()}})
	case "7":
		return jsonText(obj{{"StatusTIM", o.statusTIM()}})
	case "8", "10":
		return []byte(`{"StatusSNS":` + o.statusSNS() + `}`)
	case "11":
		return jsonText(obj{{"StatusSTS", o.statusSTS()}})
	}
	power := 0
	for i, c := range o.relayChannels() {
		if o.power[c] {
			power |= 1 << i
		}
	}
	names := []string{o.st.LongName}
	if chs := o.relayChannels(); len(chs) > 0 {
		names = names[:0]
		for _, c := range chs {
			names = append(names, fmt.Sprintf("%s_%d", o.st.ShortName, c))
		}
	}
	main := obj{
		{"Module", 0}, {"DeviceName", o.st.ShortName}, {"FriendlyName", names}, {"Topic", o.st.ShortName},
		{"ButtonTopic", "0"}, {"Power", power}, {"PowerOnState", 3}, {"LedState", 1}, {"LedMask", "FFFF"},
		{"SaveData", 1}, {"SaveState", 1}, {"SwitchTopic", "0"}, {"SwitchMode", []int{0, 0, 0, 0, 0, 0, 0, 0}},
		{"ButtonRetain", 0}, {"SwitchRetain", 0}, {"SensorRetain", 0}, {"PowerRetain", 0}, {"InfoRetain", 0},
		{"StateRetain", 0},
	}
	prm := obj{
		{"Baudrate", 115200}, {"SerialConfig", "8N1"}, {"GroupTopic", ""},
		{"OtaUrl", "https://github.com/openshwprojects/OpenBK7231T_App/releases/latest"},
		{"RestartReason", "HardwareWatchdog"}, {"Uptime", o.uptime()}, {"StartupUTC", "0000-00-00T00:00:00"},
		{"Sleep", 50}, {"CfgHolder", 4617}, {"BootCount", 22}, {"BCResetTime", "2022-01-27T16:10:56"},
		{"SaveCount", 1235}, {"SaveAddress", "F9000"},
	}
	log := obj{
		{"SerialLog", 2}, {"WebLog", 2}, {"MqttLog", 0}, {"SysLog", 0}, {"LogHost", ""}, {"LogPort", 514},
		{"SSId1", o.st.SSID[0]}, {"SSId2", o.st.SSID[1]}, {"TelePeriod", 300}, {"Resolution", "558180C0"},
		{"SetOption", []string{"000A8009", "2805C80001000600003C5A0A000000000000", "00000280", "00006008", "00004000"}},
	}
	var b bytes.Buffer
	b.WriteString(`{"Status":`)
	b.Write(jsonText(main))
	for _, s := range []struct {
		key  string
		body []byte
	}{
		{"StatusPRM", jsonText(prm)}, {"StatusFWR", jsonText(o.statusFWR())}, {"StatusLOG", jsonText(log)},
		{"StatusMEM", jsonText(o.statusMEM())}, {"StatusNET", jsonText(o.statusNET())},
		{"StatusMQT", jsonText(o.statusMQT())}, {"StatusTIM", jsonText(o.statusTIM())},
		{"StatusSNS", []byte(o.statusSNS())}, {"StatusSTS", jsonText(o.statusSTS())},
	} {
		fmt.Fprintf(&b, `,"%s":`, s.key)
		b.Write(s.body)
	}
	b.WriteByte('}')
	return b.Bytes()
}

func (o *openBeken) statusFWR() obj {
	return obj{
		{"Version", o.f.chip.obkPrefix + "_" + o.version()}, {"BuildDateTime", obkBuild}, {"Boot", 7},
		{"Core", "0.0"}, {"SDK", "obk"}, {"CpuFrequency", 80}, {"Hardware", o.f.chip.obkMCU}, {"CR", "465/699"},
	}
}

func (o *openBeken) statusMEM() obj {
	return obj{
		{"ProgramSize", 616}, {"Free", 384}, {"Heap", 25}, {"ProgramFlashSize", 1024}, {"FlashSize", o.f.flash.Size() >> 10},
		{"FlashChipId", "1540A1"}, {"FlashFrequency", 40}, {"FlashMode", 3},
		{"Features", []string{"00000809", "8FDAC787", "04368001", "000000CF", "010013C0", "C000F981", "00004004", "00001000", "00000020"}},
		{"Drivers", "1,2,3,4,5,6,7,8,9,10,12,16,18,19,20,21,22,24,26,27,29,30,35,37,45"}, {"Sensors", "1,2,3,4,5,6"},
	}
}

// statusNET: OpenBeken hard-codes gateway, mask and DNS.
func (o *openBeken) statusNET() obj {
	return obj{
		{"Hostname", o.st.ShortName}, {"IPAddress", o.ip()}, {"Gateway", "192.168.0.1"}, {"Subnetmask", "255.255.255.0"},
		{"DNSServer1", "192.168.0.1"}, {"DNSServer2", "0.0.0.0"}, {"Mac", o.f.mac.String()}, {"Webserver", 2},
		{"HTTP_API", 1}, {"WifiConfig", 4}, {"WifiPower", raw("17.0")},
	}
}

func (o *openBeken) statusMQT() obj {
	return obj{
		{"MqttHost", ""}, {"MqttPort", 1883}, {"MqttClientMask", "core"}, {"MqttClient", o.st.ShortName},
		{"MqttUser", "homeassistant"}, {"MqttCount", 0}, {"MAX_PACKET_SIZE", 1200}, {"KEEPALIVE", 30}, {"SOCKET_TIMEOUT", 4},
	}
}

func (o *openBeken) statusTIM() obj {
	z := "0000-00-00T00:00:00"
	return obj{{"UTC", z}, {"Local", z}, {"StartDST", z}, {"EndDST", z}, {"Timezone", "+00:00"}, {"Sunrise", "07:50"}, {"Sunset", "17:17"}}
}

// statusSNS is printed as OpenBeken prints it, with its space after a
// colon.
func (o *openBeken) statusSNS() string {
	return `{"Time":"0000-00-00T00:00:00","ESP32":{"Temperature": 0.0},"TempUnit":"C"}`
}

func (o *openBeken) statusSTS() obj {
	up := o.f.uptime()
	out := obj{
		{"Time", "0000-00-00T00:00:00"}, {"Uptime", uptimeString(up)}, {"UptimeSec", int(up / time.Second)},
		{"Heap", 97}, {"SleepMode", "None"}, {"Sleep", 0}, {"LoadAvg", 99}, {"MqttCount", 0},
	}
	out = append(out, o.powerObj()...)
	return append(out, kv{"Wifi", obj{
		{"AP", 1}, {"SSId", o.f.joined}, {"BSSId", virtualBSSID}, {"Channel", 1}, {"Mode", "11n"},
		{"RSSI", 100}, {"Signal", -50}, {"LinkCount", 1}, {"Downtime", "0T00:00:03"},
	}})
}
