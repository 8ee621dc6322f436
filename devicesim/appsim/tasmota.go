package appsim

import (
	"encoding/json"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Tasmota on ESP8266, after its documentation (tasmota/docs Commands.md,
// Getting-Started.md, Templates.md) and sources (arendst/Tasmota
// xdrv_01_9_webserver.ino, support_wifi.ino, support_command.ino,
// xdrv_02_9_mqtt.ino), as summed up in postflash-and-ecosystem.md §1.

// tasmotaAPIP is the address Tasmota gives itself on its access point.
const tasmotaAPIP = "192.168.4.1"

// backlogDelay is SetOption34's default: 200 ms between Backlog commands.
const backlogDelay = 200 * time.Millisecond

// Wi-Fi manager test states (Tasmota's Wifi.wifiTest).
const (
	testNone = iota
	testRunning
	testGood
	testBad
)

type tasmota struct {
	f  *Firmware
	st *settings
	// manager: no SSID, the Wi-Fi manager (access point) runs.
	manager bool
	test    struct {
		state      int
		ssid, pass string
	}
	backlog     []string
	backlogBusy bool
	restarting  bool
}

// tasmotaTemplate is a template (Templates.md): NAME, GPIO (14 slots on
// ESP8266: GPIO0-5, 9, 10, 12-16, A0), FLAG, BASE, optional CMND.
type tasmotaTemplate struct {
	Name string `json:"NAME"`
	GPIO []int  `json:"GPIO"`
	Flag int    `json:"FLAG"`
	Base int    `json:"BASE"`
	Cmnd string `json:"CMND,omitempty"`
}

// The modules the simulated Tasmota knows: the default Sonoff Basic (the
// MODULE of tasmota.bin, my_user_config.h) and Generic (18), with their
// templates (Tasmota's templates site).
var tasmotaModules = map[int]tasmotaTemplate{
	1:  {Name: "Sonoff Basic", GPIO: []int{32, 1, 1, 1, 1, 0, 0, 0, 224, 320, 1, 0, 0, 0}, Base: 1},
	18: {Name: "Generic", GPIO: []int{1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1}, Base: 18},
}

func newTasmota(f *Firmware) *tasmota {
	t := &tasmota{f: f}
	f.st = f.loadSettings(tasmotaDefaults)
	t.st = f.st
	return t
}

// tasmotaDefaults are the settings of a fresh tasmota.bin: module Sonoff
// Basic, FriendlyName1 "Tasmota", no Wi-Fi.
func tasmotaDefaults() *settings {
	def, _ := json.Marshal(tasmotaModules[1])
	return &settings{Firmware: string(KindTasmota), Module: 1, Template: string(def), FriendlyName: []string{"Tasmota"}}
}

// chipID is ESP.getChipId(): the last three bytes of the MAC.
func (t *tasmota) chipID() uint32 {
	m := t.f.mac
	return uint32(m[3])<<16 | uint32(m[4])<<8 | uint32(m[5])
}

// topic is MQTT_TOPIC "tasmota_%06X".
func (t *tasmota) topic() string { return fmt.Sprintf("tasmota_%06X", t.chipID()) }

// hostname is WIFI_HOSTNAME "%s-%04d" (topic, chip id & 0x1FFF) with the
// underscore made a dash, e.g. tasmota-C658CC-6348 (PR arendst/Tasmota#12900);
// it is also the access point's SSID.
func (t *tasmota) hostname() string {
	if t.st.Hostname != "" {
		return t.st.Hostname
	}
	return fmt.Sprintf("%s-%04d", strings.ReplaceAll(t.topic(), "_", "-"), t.chipID()&0x1FFF)
}

func (t *tasmota) friendlyName(i int) string {
	if i >= 1 && i <= len(t.st.FriendlyName) && t.st.FriendlyName[i-1] != "" {
		return t.st.FriendlyName[i-1]
	}
	if i == 1 {
		return "Tasmota"
	}
	return fmt.Sprintf("Tasmota%d", i)
}

// deviceName defaults to FriendlyName1.
func (t *tasmota) deviceName() string {
	if t.st.DeviceName != "" {
		return t.st.DeviceName
	}
	return t.friendlyName(1)
}

func (t *tasmota) version() string {
	if t.f.img.Version != "" {
		return t.f.img.Version
	}
	return "unknown"
}

// fullVersion is StatusFWR.Version: version and image name.
func (t *tasmota) fullVersion() string { return t.version() + "(tasmota)" }

func (t *tasmota) hardware() string { return t.f.chip.espHardware }

func (t *tasmota) template() tasmotaTemplate {
	var tp tasmotaTemplate
	if json.Unmarshal([]byte(t.st.Template), &tp) != nil || len(tp.GPIO) == 0 {
		return tasmotaModules[1]
	}
	return tp
}

// active is the GPIO layout in use: the template (Module 0) or the
// module's.
func (t *tasmota) active() tasmotaTemplate {
	if t.st.Module == 0 {
		return t.template()
	}
	if m, ok := tasmotaModules[t.st.Module]; ok {
		return m
	}
	return tasmotaModules[1]
}

// relays counts the Relay and Relay_i components (224…255, 256…287;
// Components.md).
func (t *tasmota) relays() int {
	n := 0
	for _, g := range t.active().GPIO {
		if g >= 224 && g < 288 {
			n++
		}
	}
	return n
}

func (t *tasmota) moduleName() string {
	if t.st.Module == 0 {
		return t.template().Name
	}
	return t.active().Name
}

// console prints a log line on the serial console, with the uptime as
// Tasmota's timestamp when it has no clock.
func (t *tasmota) console(format string, args ...any) {
	d := t.f.uptime()
	ms := d.Milliseconds()
	line := fmt.Sprintf("%02d:%02d:%02d.%03d %s\r\n", ms/3600000%24, ms/60000%60, ms/1000%60, ms%1000, fmt.Sprintf(format, args...))
	t.f.out = append(t.f.out, line...)
}

func (t *tasmota) start() {
	f := t.f
	t.console("HDW: %s", t.hardware())
	if t.st.BootCount == 0 {
		t.console("CFG: Use defaults")
	} else {
		t.console("CFG: Loaded from flash at %X, Count %d", espConfigSector>>12, t.st.BootCount)
	}
	t.console("QPC: Count 1")
	t.console("Project tasmota - %s Version %s-2_7_4_9(%s)", t.deviceName(), t.fullVersion(), tasmotaBuild)
	t.st.BootCount++
	f.save()
	if t.st.SSID[0] == "" && t.st.SSID[1] == "" {
		t.manager = true
		d := f.cfg.Timing.AccessPoint
		if d <= 0 {
			d = tasmotaAPDelay
		}
		f.after(d, t.openAP)
		return
	}
	t.connect(0)
}

// tasmotaBuild stands for the build date Tasmota prints and reports.
const tasmotaBuild = "2026-01-01T00:00:00"

// openAP starts the Wi-Fi manager: the access point named after the host
// name, open, serving the Wi-Fi page, for 3 minutes; then Tasmota
// restarts (xdrv_01_9_webserver.ino WifiManagerBegin, Wifi.config_counter;
// Getting-Started.md).
func (t *tasmota) openAP() {
	f := t.f
	if !f.serveHTTP(roleAP, f.handler(t.serveAP, writeHTTP)) {
		return
	}
	f.apName = t.hostname()
	t.console("WIF: WifiManager active for 3 minutes")
	t.console("HTP: Web server active on %s with IP address %s", t.hostname(), tasmotaAPIP)
	f.after(f.cfg.Timing.WifiManager, t.managerTimeout)
}

func (t *tasmota) managerTimeout() {
	if t.test.state == testRunning {
		t.f.after(t.f.cfg.Timing.WifiTest, t.managerTimeout)
		return
	}
	t.restartNow()
}

// connect tries the network in slot ap (0 or 1); a failure is logged as
// Tasmota logs it and the other slot is tried after the retry time. Tasmota
// opens no access point then: its default Wi-Fi tool is WIFI_RETRY
// (WifiConfig 4), and the manager starts only when no SSID is set
// (support_wifi.ino WifiCheckIp).
func (t *tasmota) connect(ap int) {
	f := t.f
	if t.st.SSID[ap] == "" {
		ap = 1 - ap
	}
	ssid, pass := t.st.SSID[ap], t.st.Password[ap]
	t.console("WIF: Connecting to AP%d %s Channel 1 BSSId %s in mode 11n as %s...", ap+1, ssid, virtualBSSID, t.hostname())
	f.after(f.cfg.Timing.Join, func() {
		if f.joins(ssid, pass) {
			t.online(ssid)
			return
		}
		if ssid == f.cfg.Network.SSID {
			t.console("WIF: Connect failed with AP incorrect password")
		} else {
			t.console("WIF: Connect failed as AP cannot be reached")
		}
		f.after(f.cfg.Timing.Retry, func() { t.connect(1 - ap) })
	})
}

// virtualBSSID is the virtual network's access point.
const virtualBSSID = "02:00:00:00:00:01"

func (t *tasmota) online(ssid string) {
	f := t.f
	if !f.serveHTTP(roleStation, f.handler(t.serveStation, writeHTTP)) {
		return
	}
	f.joined = ssid
	t.console("WIF: Connected")
	addr := f.host(roleStation)
	if _, port, _ := net.SplitHostPort(f.addr[roleStation]); port != "80" {
		addr = f.addr[roleStation] // the virtual device's web server is not on port 80
	}
	t.console("HTP: Web server active on %s with IP address %s", t.hostname(), addr)
}

// restartSoon restarts after the restart time, once the Backlog has run
// (SSId and Password inside one Backlog both run before the restart).
func (t *tasmota) restartSoon() {
	if t.restarting {
		return
	}
	t.restarting = true
	var wait func()
	wait = func() {
		if len(t.backlog) > 0 || t.backlogBusy {
			t.f.after(backlogDelay, wait)
			return
		}
		t.restartNow()
	}
	t.f.after(t.f.cfg.Timing.Restart, wait)
}

func (t *tasmota) restartNow() {
	t.console("APP: Restarting")
	t.f.restart(0)
}

// result is one reply of a command: its topic (RESULT, STATUS5 …) and
// its JSON object.
type result struct {
	topic string
	body  obj
}

// exec runs one command line ("COMMAND<INDEX> DATA"; Commands.md).
func (t *tasmota) exec(line string) []result {
	line = strings.TrimSpace(line)
	if line == "" {
		return nil
	}
	cmd, arg, _ := strings.Cut(line, " ")
	arg = strings.TrimSpace(arg)
	name := strings.TrimRight(cmd, "0123456789")
	idx, hasIdx := 1, len(name) < len(cmd)
	if hasIdx {
		idx, _ = strconv.Atoi(cmd[len(name):])
	}
	one := func(body obj) []result { return []result{{"RESULT", body}} }
	switch strings.ToLower(name) {
	case "backlog", "backlog0":
		for _, c := range strings.Split(arg, ";") {
			if c = strings.TrimSpace(c); c != "" {
				t.backlog = append(t.backlog, c)
			}
		}
		t.runBacklog()
		return nil
	case "status":
		return t.status(cmd, arg, hasIdx, idx)
	case "state":
		return one(t.statusSTS())
	case "power":
		return t.power(idx, arg)
	case "devicename":
		if arg != "" {
			t.st.DeviceName = textArg(arg)
			t.f.save()
		}
		return one(obj{{"DeviceName", t.deviceName()}})
	case "friendlyname", "fn":
		if idx < 1 || idx > 8 {
			return one(obj{{"Command", "Error"}})
		}
		if arg != "" {
			for len(t.st.FriendlyName) < idx {
				t.st.FriendlyName = append(t.st.FriendlyName, "")
			}
			t.st.FriendlyName[idx-1] = textArg(arg)
			t.f.save()
		}
		return one(obj{{fmt.Sprintf("FriendlyName%d", idx), t.friendlyName(idx)}})
	case "hostname":
		if arg != "" {
			t.st.Hostname = textArg(arg)
			t.f.save()
			t.restartSoon()
		}
		return one(obj{{"Hostname", t.hostname()}})
	case "ssid", "password":
		if idx < 1 || idx > 2 {
			return one(obj{{"Command", "Error"}})
		}
		dst, key, show := &t.st.SSID[idx-1], "SSId", t.st.SSID[idx-1]
		if name[0] == 'p' || name[0] == 'P' {
			dst, key, show = &t.st.Password[idx-1], "Password", "****"
		}
		if arg != "" {
			*dst = textArg(arg)
			if key == "SSId" {
				show = *dst
			}
			t.f.save()
			t.restartSoon()
		}
		return one(obj{{fmt.Sprintf("%s%d", key, idx), show}})
	case "template":
		return t.templateCmd(arg)
	case "module":
		return t.moduleCmd(arg)
	case "setoption", "so":
		if idx != 128 {
			return one(obj{{"Command", "Error"}})
		}
		switch strings.ToLower(arg) {
		case "1", "on", "true":
			t.st.NoReferer = true
			t.f.save()
		case "0", "off", "false":
			t.st.NoReferer = false
			t.f.save()
		}
		return one(obj{{"SetOption128", onOff(t.st.NoReferer)}})
	case "webpassword":
		if arg != "" {
			t.st.WebPassword = textArg(arg)
			t.f.save()
		}
		return one(obj{{"WebPassword", "****"}})
	case "topic":
		return one(obj{{"Topic", t.topic()}})
	case "restart":
		if arg != "1" {
			return one(obj{{"Restart", "1 to restart"}})
		}
		t.restartSoon()
		return one(obj{{"Restart", "Restarting"}})
	case "reset":
		if arg != "1" {
			return one(obj{{"Reset", "1 to reset"}})
		}
		boots := t.st.BootCount
		*t.st = *tasmotaDefaults()
		t.st.BootCount = boots
		t.f.save()
		t.restartSoon()
		return one(obj{{"Reset", "Reset and Restarting"}})
	}
	return one(obj{{"Command", "Unknown"}})
}

// textArg applies Tasmota's text conventions: "1" resets to the default
// (empty for the texts the simulator keeps), a lone '"' clears.
func textArg(arg string) string {
	if arg == "1" || arg == `"` {
		return ""
	}
	return arg
}

func onOff(b bool) string {
	if b {
		return "ON"
	}
	return "OFF"
}

// runBacklog runs the queued commands one every backlogDelay; their
// replies go to the log (the HTTP reply of Backlog is empty).
func (t *tasmota) runBacklog() {
	if t.backlogBusy || len(t.backlog) == 0 {
		return
	}
	t.backlogBusy = true
	t.f.after(backlogDelay, func() {
		t.backlogBusy = false
		if len(t.backlog) == 0 {
			return
		}
		c := t.backlog[0]
		t.backlog = t.backlog[1:]
		t.logResults(t.exec(c))
		t.runBacklog()
	})
}

// logResults prints replies as Tasmota logs them without an MQTT broker:
// "RSL: RESULT = {…}" (xdrv_02_9_mqtt.ino MqttPublishPayload).
func (t *tasmota) logResults(rs []result) {
	for _, r := range rs {
		t.console("RSL: %s = %s", r.topic, jsonText(r.body))
	}
}

// serialLine takes a console line: CR dropped, a line with a byte above
// 127 dropped whole, other control bytes ignored (support_tasmota.ino
// SerialInput); the line is logged as "CMD: …" and run.
func (t *tasmota) serialLine(raw []byte) {
	var b strings.Builder
	for _, c := range raw {
		switch {
		case c > 127:
			return
		case c >= 0x20 && c < 0x7F:
			b.WriteByte(c)
		}
	}
	line := strings.TrimSpace(b.String())
	if line == "" {
		return
	}
	t.console("CMD: %s", line)
	t.logResults(t.exec(line))
}

// status answers Status, Status N and Status0: over the console each
// section is its own message (STATUS, STATUS1 …), Status0 sends them as
// one STATUS0 (support_command.ino CmndStatus).
func (t *tasmota) status(cmd, arg string, hasIdx bool, idx int) []result {
	sections := []struct {
		topic string
		body  func() obj
	}{
		{"STATUS", t.statusMain}, {"STATUS1", t.statusPRM}, {"STATUS2", t.statusFWR},
		{"STATUS3", t.statusLOG}, {"STATUS4", t.statusMEM}, {"STATUS5", t.statusNET},
		{"STATUS6", t.statusMQT}, {"STATUS7", t.statusTIM}, {"STATUS10", t.statusSNS},
		{"STATUS11", t.statusSTSSection},
	}
	if hasIdx && idx == 0 { // Status0: one message
		var all obj
		for _, s := range sections {
			all = append(all, s.body()...)
		}
		return []result{{"STATUS0", all}}
	}
	if arg == "" {
		return []result{{"STATUS", t.statusMain()}}
	}
	n, err := strconv.Atoi(firstToken(arg))
	if err != nil {
		return []result{{"RESULT", obj{{"Command", "Error"}}}}
	}
	if n == 0 {
		var out []result
		for _, s := range sections {
			out = append(out, result{s.topic, s.body()})
		}
		return out
	}
	if n == 8 {
		n = 10
	}
	for _, s := range sections {
		if s.topic == fmt.Sprintf("STATUS%d", n) {
			return []result{{s.topic, s.body()}}
		}
	}
	return []result{{"RESULT", obj{{"Command", "Error"}}}}
}

// The Status sections, shaped on the documented Tasmota 11.1.0 reply and
// the newer field formats (postflash-and-ecosystem.md §1.3): Power as a
// binary string, FlashMode as a name.
func (t *tasmota) statusMain() obj {
	names := make([]string, max(t.relays(), 1))
	for i := range names {
		names[i] = t.friendlyName(i + 1)
	}
	return obj{{"Status", obj{
		{"Module", t.st.Module}, {"DeviceName", t.deviceName()}, {"FriendlyName", names},
		{"Topic", t.topic()}, {"ButtonTopic", "0"}, {"Power", t.powerBits()}, {"PowerLock", "0"},
		{"PowerOnState", 3}, {"LedState", 1}, {"LedMask", "FFFF"}, {"SaveData", 1}, {"SaveState", 1},
		{"SwitchTopic", "0"}, {"SwitchMode", []int{0, 0, 0, 0, 0, 0, 0, 0}}, {"ButtonRetain", 0},
		{"SwitchRetain", 0}, {"SensorRetain", 0}, {"PowerRetain", 0}, {"InfoRetain", 0},
		{"StateRetain", 0}, {"StatusRetain", 0},
	}}}
}

func (t *tasmota) restartReason() string {
	if t.f.restarted {
		return "Software/System restart"
	}
	return "Power On"
}

func (t *tasmota) statusPRM() obj {
	return obj{{"StatusPRM", obj{
		{"Baudrate", 115200}, {"SerialConfig", "8N1"}, {"GroupTopic", "tasmotas"},
		{"OtaUrl", "http://ota.tasmota.com/tasmota/release/tasmota.bin.gz"},
		{"RestartReason", t.restartReason()}, {"Uptime", uptimeString(t.f.uptime())},
		{"StartupUTC", ""}, {"Sleep", 50}, {"CfgHolder", 4617}, {"BootCount", t.st.BootCount},
		{"BCResetTime", "1970-01-01T00:00:00"}, {"SaveCount", t.st.BootCount}, {"SaveAddress", fmt.Sprintf("%X", espConfigSector)},
	}}}
}

func (t *tasmota) statusFWR() obj {
	return obj{{"StatusFWR", obj{
		{"Version", t.fullVersion()}, {"BuildDateTime", tasmotaBuild}, {"Boot", 31}, {"Core", "2_7_4_9"},
		{"SDK", "2.2.2-dev(38a443e)"}, {"CpuFrequency", 80}, {"Hardware", t.hardware()}, {"CR", "378/699"},
	}}}
}

func (t *tasmota) statusLOG() obj {
	return obj{{"StatusLOG", obj{
		{"SerialLog", 2}, {"WebLog", 2}, {"MqttLog", 0}, {"SysLog", 0}, {"LogHost", ""}, {"LogPort", 514},
		{"SSId", []string{t.st.SSID[0], t.st.SSID[1]}}, {"TelePeriod", 300}, {"Resolution", "558180C0"},
		{"SetOption", []string{"00008009", "2805C80001000600003C5A0A190000000000", "00000080", "00006000", "00004000"}},
	}}}
}

func (t *tasmota) statusMEM() obj {
	return obj{{"StatusMEM", obj{
		{"ProgramSize", 658}, {"Free", 344}, {"Heap", 17}, {"ProgramFlashSize", 1024},
		{"FlashSize", t.f.flash.Size() >> 10}, {"FlashChipId", "14325E"}, {"FlashFrequency", 40}, {"FlashMode", "DOUT"},
		{"Features", []string{"00000809", "87DAC787", "043E8001", "000000CF", "010013C0", "C000F989", "00004004", "00001000", "04000020"}},
		{"Drivers", "1,2,3,4,5,6,7,8,9,10,12,16,18,19,20,21,22,24,26,27,29,30,35,37,45,56,62"}, {"Sensors", "1,2,3,4,5,6,53"},
	}}}
}

func (t *tasmota) statusNET() obj {
	ip, gw := "0.0.0.0", "0.0.0.0"
	if t.f.joined != "" {
		ip, gw = t.f.host(roleStation), t.f.host(roleStation)
	}
	return obj{{"StatusNET", obj{
		{"Hostname", t.hostname()}, {"IPAddress", ip}, {"Gateway", gw}, {"Subnetmask", "255.0.0.0"},
		{"DNSServer1", gw}, {"DNSServer2", "0.0.0.0"}, {"Mac", t.f.mac.String()}, {"Webserver", 2},
		{"HTTP_API", boolInt(t.st.NoReferer)}, {"WifiConfig", 4}, {"WifiPower", raw("17.0")},
	}}}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (t *tasmota) statusMQT() obj {
	return obj{{"StatusMQT", obj{
		{"MqttHost", ""}, {"MqttPort", 1883}, {"MqttClientMask", "DVES_%06X"},
		{"MqttClient", fmt.Sprintf("DVES_%06X", t.chipID())}, {"MqttUser", "DVES_USER"}, {"MqttCount", 0},
		{"MAX_PACKET_SIZE", 1200}, {"KEEPALIVE", 30}, {"SOCKET_TIMEOUT", 4},
	}}}
}

// clock is the time Tasmota shows without NTP: the uptime from 1970.
func (t *tasmota) clock() string {
	return time.Unix(0, 0).UTC().Add(t.f.uptime()).Format("2006-01-02T15:04:05")
}

func (t *tasmota) statusTIM() obj {
	now := t.clock()
	return obj{{"StatusTIM", obj{
		{"UTC", now}, {"Local", now}, {"StartDST", "1970-03-29T02:00:00"}, {"EndDST", "1970-10-25T03:00:00"},
		{"Timezone", "+00:00"}, {"Sunrise", "07:29"}, {"Sunset", "18:35"},
	}}}
}

func (t *tasmota) statusSNS() obj { return obj{{"StatusSNS", obj{{"Time", t.clock()}}}} }

func (t *tasmota) statusSTSSection() obj { return obj{{"StatusSTS", t.statusSTS()}} }

// statusSTS is the STATE object (State, Status 11, tele/STATE).
func (t *tasmota) statusSTS() obj {
	up := t.f.uptime()
	o := obj{
		{"Time", t.clock()}, {"Uptime", uptimeString(up)}, {"UptimeSec", int(up / time.Second)}, {"Heap", 25},
		{"SleepMode", "Dynamic"}, {"Sleep", 50}, {"LoadAvg", 19}, {"MqttCount", 0},
	}
	o = append(o, t.powerState()...)
	if t.f.joined != "" {
		o = append(o, kv{"Wifi", obj{
			{"AP", 1}, {"SSId", t.f.joined}, {"BSSId", virtualBSSID}, {"Channel", 1}, {"Mode", "11n"},
			{"RSSI", 100}, {"Signal", -50}, {"LinkCount", 1}, {"Downtime", "0T00:00:03"},
		}})
	}
	return o
}

// powerBits is Status.Power: one binary digit per relay, first relay
// rightmost.
func (t *tasmota) powerBits() string {
	n := max(t.relays(), 1)
	var b strings.Builder
	for i := n - 1; i >= 0; i-- {
		b.WriteByte('0' + byte(t.st.Power>>i&1))
	}
	return b.String()
}

// powerState is POWER (one relay) or POWER1…POWERn.
func (t *tasmota) powerState() obj {
	n := t.relays()
	var o obj
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("POWER%d", i+1)
		if n == 1 {
			key = "POWER"
		}
		o = append(o, kv{key, onOff(t.st.Power>>i&1 == 1)})
	}
	return o
}

// power is Power<x> [0|off|1|on|2|toggle].
func (t *tasmota) power(idx int, arg string) []result {
	n := t.relays()
	if idx < 1 || idx > n {
		return []result{{"RESULT", obj{{"Command", "Error"}}}}
	}
	bit := uint32(1) << (idx - 1)
	switch strings.ToLower(arg) {
	case "":
	case "0", "off", "false":
		t.st.Power &^= bit
	case "1", "on", "true":
		t.st.Power |= bit
	case "2", "toggle":
		t.st.Power ^= bit
	default:
		return []result{{"RESULT", obj{{"Command", "Error"}}}}
	}
	if arg != "" {
		t.f.save()
	}
	key := fmt.Sprintf("POWER%d", idx)
	if n == 1 {
		key = "POWER"
	}
	return []result{{"RESULT", obj{{key, onOff(t.st.Power&bit != 0)}}}}
}

func (t *tasmota) templateObj(tp tasmotaTemplate) obj {
	o := obj{{"NAME", tp.Name}, {"GPIO", tp.GPIO}, {"FLAG", tp.Flag}, {"BASE", tp.Base}}
	if tp.Cmnd != "" {
		o = append(o, kv{"CMND", tp.Cmnd})
	}
	return o
}

// templateCmd is Template: show, store a JSON template (keys may come
// alone: {"NAME":…}), or copy a module's. Storing does not activate it:
// that is Module 0 (Templates.md).
func (t *tasmota) templateCmd(arg string) []result {
	tp := t.template()
	switch {
	case arg == "":
	case strings.HasPrefix(arg, "{"):
		var in map[string]json.RawMessage
		if json.Unmarshal([]byte(arg), &in) != nil {
			return []result{{"RESULT", obj{{"Command", "Error"}}}}
		}
		for k, v := range in {
			var err error
			switch strings.ToUpper(k) {
			case "NAME":
				err = json.Unmarshal(v, &tp.Name)
			case "GPIO":
				var g []int
				if err = json.Unmarshal(v, &g); err == nil && len(g) != 14 {
					err = fmt.Errorf("ESP8266 templates have 14 GPIO slots")
				}
				tp.GPIO = g
			case "FLAG":
				err = json.Unmarshal(v, &tp.Flag)
			case "BASE":
				err = json.Unmarshal(v, &tp.Base)
			case "CMND":
				err = json.Unmarshal(v, &tp.Cmnd)
			}
			if err != nil || len(tp.GPIO) != 14 {
				return []result{{"RESULT", obj{{"Command", "Error"}}}}
			}
		}
		if len(tp.Name) > 60 {
			tp.Name = tp.Name[:60]
		}
		b, _ := json.Marshal(tp)
		t.st.Template = string(b)
		t.f.save()
	default:
		n, err := strconv.Atoi(arg)
		m, ok := tasmotaModules[n]
		if err != nil || !ok {
			return []result{{"RESULT", obj{{"Command", "Error"}}}}
		}
		tp = m
		b, _ := json.Marshal(tp)
		t.st.Template = string(b)
		t.f.save()
	}
	return []result{{"RESULT", t.templateObj(tp)}}
}

// moduleCmd is Module: show {"Module":{"1":"Sonoff Basic"}}, or switch
// (0 = the template) and restart.
func (t *tasmota) moduleCmd(arg string) []result {
	if arg != "" {
		n, err := strconv.Atoi(arg)
		if _, ok := tasmotaModules[n]; err != nil || (n != 0 && !ok) {
			return []result{{"RESULT", obj{{"Command", "Error"}}}}
		}
		if n != t.st.Module {
			t.st.Module = n
			t.f.save()
			t.restartSoon()
		}
	}
	return []result{{"RESULT", obj{{"Module", obj{{strconv.Itoa(t.st.Module), t.moduleName()}}}}}}
}

// header is what every Tasmota web reply carries (WSHeaderSend).
func (t *tasmota) header() http.Header {
	server := fmt.Sprintf("Tasmota/%s (%s)", t.version(), t.hardware())
	if len(server) > 31 { // formatted into char[32]
		server = server[:31]
	}
	return http.Header{
		"Server":        {server},
		"Cache-Control": {"no-cache, no-store, must-revalidate"},
		"Pragma":        {"no-cache"},
		"Expires":       {"-1"},
	}
}

func (t *tasmota) withHeader(rep reply) reply {
	h := t.header()
	for k, v := range rep.header {
		h[k] = v
	}
	rep.header = h
	return rep
}

// serveAP is the Wi-Fi manager's web server: the Wi-Fi page on / and /wi,
// and the command API, whose Referer gate is off in manager mode.
func (t *tasmota) serveAP(r *http.Request, body []byte) reply {
	switch r.URL.Path {
	case "/", "/wi":
		return t.withHeader(t.wifiPage(r))
	case "/cm":
		return t.withHeader(t.cm(r, body))
	}
	return t.withHeader(t.notFound(r))
}

func (t *tasmota) serveStation(r *http.Request, body []byte) reply {
	switch r.URL.Path {
	case "/cm":
		return t.withHeader(t.cm(r, body))
	case "/":
		return t.withHeader(htmlReply(200, t.page(t.deviceName(), fmt.Sprintf("<h3>%s</h3><h2>%s</h2>", html.EscapeString(t.moduleName()), html.EscapeString(t.deviceName())))))
	case "/wi":
		return t.withHeader(t.wifiPage(r))
	}
	return t.withHeader(t.notFound(r))
}

func (t *tasmota) notFound(r *http.Request) reply {
	return reply{status: 404, ctype: "text/plain", body: []byte("File Not Found\n\nURI: " + r.URL.Path + "\n")}
}

// cm is /cm?cmnd=… (HandleHttpCommand): the Referer gate outside manager
// mode unless SetOption128 is on — a request failing it gets no reply at
// all; the web password as Basic auth or user/password parameters; then
// the command, whose JSON replies are merged into one object.
func (t *tasmota) cm(r *http.Request, body []byte) reply {
	if !t.manager && !t.st.NoReferer && !t.refererOK(r.Header.Get("Referer")) {
		t.console("HTP: Referer '%s' denied. Use 'SO128 1' for HTTP API commands. 'Webpassword' is recommended.", r.Header.Get("Referer"))
		return reply{drop: true}
	}
	q := r.URL.Query()
	if r.Method == http.MethodPost {
		if form, err := url.ParseQuery(string(body)); err == nil {
			for k, v := range form {
				q[k] = append(q[k], v...)
			}
		}
	}
	if t.st.WebPassword != "" {
		user, pass, ok := r.BasicAuth()
		if !ok {
			user, pass = q.Get("user"), q.Get("password")
		}
		if user != "admin" || pass != t.st.WebPassword {
			rep := jsonReply(jsonText(obj{{"WARNING", "Need user=<username>&password=<password>"}}))
			rep.status = http.StatusUnauthorized
			return rep
		}
	}
	cmnd := q.Get("cmnd")
	if cmnd == "" {
		return jsonReply(jsonText(obj{{"WARNING", "Enter command cmnd="}}))
	}
	var all obj
	for _, res := range t.exec(cmnd) {
		all = append(all, res.body...)
	}
	if all == nil {
		all = obj{}
	}
	return jsonReply(jsonText(all))
}

// refererOK is HttpCheckPriviledgedAccess: the Referer names the device's
// host name or IP right after "http://".
func (t *tasmota) refererOK(ref string) bool {
	if ref == "" {
		return false
	}
	return strings.Index(ref, t.hostname()) == 7 || strings.Index(ref, t.f.host(roleStation)) == 7
}

// page wraps content in Tasmota's page frame.
func (t *tasmota) page(title, content string) string {
	return "<!DOCTYPE html><html lang=\"en\" class=\"\"><head><meta charset='utf-8'><meta name=\"viewport\" content=\"width=device-width,initial-scale=1,user-scalable=no\"/>" +
		"<title>" + html.EscapeString(t.deviceName()+" - "+title) + "</title></head><body><div style='text-align:left;display:inline-block;min-width:340px;'>" +
		content + "<div style='text-align:right;font-size:11px;'><hr/>Tasmota " + html.EscapeString(t.version()) + " by Theo Arends</div></div></body></html>"
}

// The texts of Tasmota's Wi-Fi pages (language en_GB.h, WebRestart,
// HandleWifiConfiguration).
const (
	tasmotaReload = "setTimeout(function(){location.href='.';},10000);"
	tasmotaTrying = "Trying to connect device to network"
)

// wifiPage is /wi: in manager mode, save starts a test of the new network
// (up to 9 s, the page reloading) and the next visit shows the result —
// the new address and a restart, or the form again with the failure. Out
// of manager mode, save stores the network and restarts.
func (t *tasmota) wifiPage(r *http.Request) reply {
	f := t.f
	q := r.URL.Query()
	if q.Has("save") {
		s1, p1 := q.Get("s1"), q.Get("p1")
		if p1 == "****" { // the password field comes prefilled with asterisks
			p1 = t.st.Password[0]
		}
		if !t.manager {
			t.st.SSID[0], t.st.Password[0] = s1, p1
			if h := q.Get("h"); h != "" {
				t.st.Hostname = h
			}
			f.save()
			t.restartSoon()
			return htmlReply(200, t.page("Save configuration", "<script>"+tasmotaReload+"</script><div style='text-align:center;'><b>Configuration saved</b><br><br></div>Device will restart in a few seconds"))
		}
		t.test.state, t.test.ssid, t.test.pass = testRunning, s1, p1
		t.console("WIF: Connecting to AP1 %s as %s ...", s1, t.hostname())
		g := f.gen
		if f.joins(s1, p1) {
			f.after(min(f.cfg.Timing.Join, f.cfg.Timing.WifiTest), func() {
				if f.gen == g && t.test.state == testRunning {
					t.test.state = testGood
					t.st.SSID[0], t.st.Password[0] = s1, p1
					f.save()
					t.console("WIF: Connected")
				}
			})
		} else {
			f.after(f.cfg.Timing.WifiTest, func() {
				if t.test.state == testRunning {
					t.test.state = testBad
					if s1 == f.cfg.Network.SSID {
						t.console("WIF: Connect failed with AP incorrect password")
					} else {
						t.console("WIF: Connect failed as AP cannot be reached")
					}
				}
			})
		}
		return htmlReply(200, t.page("Save configuration", "<script>"+tasmotaReload+"</script><div style='text-align:center;'><b>"+tasmotaTrying+"</b><br><br></div>"))
	}
	switch t.test.state {
	case testGood:
		// WebRestart(3): the new address, then the restart.
		addr := f.addr[roleStation]
		if _, port, _ := net.SplitHostPort(addr); port == "80" {
			addr = f.host(roleStation)
		}
		t.test.state = testNone
		t.restartSoon()
		return htmlReply(200, t.page("Save configuration",
			"<script>setTimeout(function(){location.href='http://"+addr+"';},10000);</script>"+
				"<div style='text-align:center;'>Successful WiFi Connection<br><br></div><div style='text-align:center;'>Redirecting to new device's IP address<br><br>"+
				"<a href='http://"+addr+"'>"+addr+"</a><br></div>"))
	case testRunning:
		return htmlReply(200, t.page("Configure Wifi", "<script>"+tasmotaReload+"</script>"+
			"<div style='text-align:center;'><h3>"+tasmotaTrying+"<br>"+html.EscapeString(t.test.ssid)+"</h3></div>"+t.wifiForm()))
	case testBad:
		t.test.state = testNone
		return htmlReply(200, t.page("Configure Wifi", "<div style='text-align:center;'><h3>Connect failed to "+html.EscapeString(t.test.ssid)+"<br>Please, check credentials</h3></div>"+t.wifiForm()))
	}
	return htmlReply(200, t.page("Configure Wifi", t.wifiForm()))
}

// wifiForm lists the networks the device sees (the virtual one) and the
// SSId/Password fields.
func (t *tasmota) wifiForm() string {
	return "<div><a href='#p' onclick='c(this)'>" + html.EscapeString(t.f.cfg.Network.SSID) + "</a>&nbsp;(1)&nbsp;<span class='q'>100% (-50 dBm)</span></div>" +
		"<fieldset><legend><b>&nbsp;Wifi parameters&nbsp;</b></legend><form method='get' action='wi'>" +
		"<p><b>SSId1</b><br><input id='s1' name='s1' placeholder=\"Type or Select your WiFi Network\" value=\"" + html.EscapeString(t.st.SSID[0]) + "\"></p>" +
		"<p><b>Password1</b><input id='p1' name='p1' type='password' placeholder=\"Enter your Password1\" value=\"****\"></p>" +
		"<br><button name='save' type='submit' class='button bgrn'>Save</button></form></fieldset>"
}
