package appsim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tuyaflash/tuyaflash/internal/netguard"
)

// Flash is the chip's flash as the running firmware sees it (contract C1):
// concurrency-safe; WriteAt erases the 4 KiB sectors it touches first.
type Flash = interface {
	Size() int
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
}

// Network is the virtual home network the simulated firmware can join
// (contract C3).
type Network struct {
	SSID, Password string
}

// The defaults of contract C3.
const (
	DefaultSSID     = "tuyaflash-virtual"
	DefaultPassword = "virtual-bench"
	// DefaultAddr puts a listener on loopback, port picked by the system.
	DefaultAddr = "127.0.0.1:0"
)

// Timing is how long the simulated firmware takes for what it does. A zero
// field takes its default; the defaults and their sources are listed in
// the package documentation.
type Timing struct {
	// Boot: reset → the firmware runs (boot log, timers start).
	Boot time.Duration
	// AccessPoint: the firmware runs without Wi-Fi settings → its access
	// point is up. Zero takes each firmware's own delay.
	AccessPoint time.Duration
	// Join: the station starts to connect → it is on the network (or has
	// failed).
	Join time.Duration
	// Restart: a restart the firmware decides on (new settings) → reset.
	Restart time.Duration
	// Retry: between two failed connection attempts.
	Retry time.Duration
	// WifiManager: how long Tasmota keeps its access point open before it
	// restarts.
	WifiManager time.Duration
	// WifiTest: how long Tasmota's access-point page tests new
	// credentials before it gives up.
	WifiTest time.Duration
	// FallbackAP: how long ESPHome tries its networks before it opens its
	// fallback hotspot (ap_timeout).
	FallbackAP time.Duration
}

// Default durations (sources in the package documentation).
const (
	defaultBoot        = 500 * time.Millisecond
	defaultJoin        = 3 * time.Second
	defaultRestart     = time.Second
	defaultRetry       = 20 * time.Second
	defaultWifiManager = 3 * time.Minute
	defaultWifiTest    = 9 * time.Second
	defaultFallbackAP  = 90 * time.Second
	// tasmotaAPDelay: Tasmota checks Wi-Fi every second and starts its
	// Wi-Fi manager at the first check that finds no SSID
	// (support_wifi.ino WifiCheckIp, Wifi.counter = 1).
	tasmotaAPDelay = time.Second
	// obkAPDelay: OpenBeken opens its access point 5 s after boot when it
	// has no SSID (src/user_main.c, g_openAP = 5).
	obkAPDelay = 5 * time.Second
	// obkResetDelay: OpenBeken resets 3 s after saving Wi-Fi settings
	// (http_fns.c http_fn_cfg_wifi_set, RESET_ScheduleModuleReset(3)).
	obkResetDelay = 3 * time.Second
)

func (t Timing) withDefaults() Timing {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.Boot, defaultBoot)
	def(&t.Join, defaultJoin)
	def(&t.Restart, defaultRestart)
	def(&t.Retry, defaultRetry)
	def(&t.WifiManager, defaultWifiManager)
	def(&t.WifiTest, defaultWifiTest)
	def(&t.FallbackAP, defaultFallbackAP)
	return t
}

// FastTiming is a Timing for tests on real time: every step takes a few
// milliseconds.
func FastTiming() Timing {
	return Timing{
		Boot: time.Millisecond, AccessPoint: time.Millisecond, Join: 5 * time.Millisecond,
		Restart: time.Millisecond, Retry: 20 * time.Millisecond, WifiManager: time.Minute,
		WifiTest: 50 * time.Millisecond, FallbackAP: 20 * time.Millisecond,
	}
}

// Config describes the chip and the virtual world around it.
type Config struct {
	// Chip is BK7231T, BK7231N, BK7231M, BK7238, BK7231U, BK7252, BK7252N,
	// ESP8266 or ESP8285.
	Chip string
	// MAC is the station MAC of an ESP chip, from its eFuses (required
	// there). Beken chips read theirs from the RF sector of the flash.
	MAC string
	// APAddr, StationAddr, APIAddr and TuyaAddr are the loopback
	// addresses (host:port) where the access point's web page, the
	// station's web server (port 80 on a real device), ESPHome's native
	// API (TCP 6053) and the stock firmware's Tuya local port (TCP 6668)
	// appear. Empty means DefaultAddr; port 0 is picked once, when New
	// runs, and kept for the life of the Firmware. The access point and
	// the station may share an address: they are never up together.
	APAddr, StationAddr, APIAddr, TuyaAddr string
	// Network is the virtual home network (default: DefaultSSID,
	// DefaultPassword).
	Network Network
	Timing  Timing
	// Log hears one line per event (boot, access point, station, saved
	// settings); nil discards.
	Log io.Writer
	// Listen replaces net.Listen (tests use in-memory listeners).
	Listen func(network, address string) (net.Listener, error)
	// AllowNonLoopback lets the addresses above be on other interfaces
	// than loopback (the user asked for it, e.g. tuyaflash sim --net with
	// a LAN address). Without it, New refuses them: the simulated
	// firmware's web servers answer anybody who reaches them.
	AllowNonLoopback bool
}

// role is one of the firmware's listeners.
type role int

const (
	roleAP role = iota
	roleStation
	roleAPI
	roleTuya
	nRoles
)

var roleNames = [nRoles]string{"access point", "station", "native API", "Tuya local port"}

// app is what one firmware does.
type app interface {
	// start runs when the firmware is up after a reset.
	start()
	// serialLine takes one line from the serial console.
	serialLine(line []byte)
}

// Firmware is the application side of a simulated chip: what runs when the
// chip is out of reset and not in download mode (contract C1's App). It
// looks at the flash on every Boot, plays the firmware it finds there on
// loopback listeners, and keeps that firmware's settings in its config
// sector. All methods are safe for concurrent use.
type Firmware struct {
	cfg    Config
	chip   chipInfo
	espMAC macAddr
	picked [nRoles]bool // the port was picked by the system

	// wmu orders the writes of settings to flash; it is never held
	// together with mu.
	wmu sync.Mutex

	mu        sync.Mutex
	gen       uint64 // bumped by every reset; stale timers and requests see it
	running   bool
	flash     Flash
	img       Image
	mac       macAddr
	macFrom   string
	st        *settings
	stored    *settings // what the config sector held at boot
	netInFW   bool      // the image holds the virtual network's name and password
	pending   *pendingWrite
	app       app
	bootAt    time.Time
	restarted bool // this boot came from a restart the firmware decided on
	timers    map[*time.Timer]struct{}
	srv       [nRoles]*server
	addr      [nRoles]string
	apName    string // SSID of the open access point
	joined    string // SSID of the network the station is on
	out       []byte // serial output not yet collected
	line      []byte // serial input not yet ended by a newline
}

// New checks cfg and picks the ports. The firmware does not run until
// Boot.
func New(cfg Config) (*Firmware, error) {
	c, err := lookupChip(cfg.Chip)
	if err != nil {
		return nil, err
	}
	f := &Firmware{cfg: cfg, chip: c, timers: map[*time.Timer]struct{}{}}
	if !c.beken {
		if cfg.MAC == "" {
			return nil, fmt.Errorf("appsim: %s: Config.MAC is required (an ESP8266 reads its MAC from eFuse, not from flash)", c.name)
		}
		if f.espMAC, err = parseMAC(cfg.MAC); err != nil {
			return nil, err
		}
	}
	if f.cfg.Network == (Network{}) {
		f.cfg.Network = Network{SSID: DefaultSSID, Password: DefaultPassword}
	}
	f.cfg.Timing = cfg.Timing.withDefaults()
	if f.cfg.Listen == nil {
		f.cfg.Listen = net.Listen
	}
	for r, a := range [nRoles]string{cfg.APAddr, cfg.StationAddr, cfg.APIAddr, cfg.TuyaAddr} {
		if a == "" {
			a = DefaultAddr
		}
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			return nil, fmt.Errorf("appsim: %s address %q: %w", roleNames[r], a, err)
		}
		if err := netguard.CheckListen(a, cfg.AllowNonLoopback, ""); err != nil {
			return nil, fmt.Errorf("appsim: %s: %w", roleNames[r], err)
		}
		if port != "0" {
			f.addr[r] = a
			continue
		}
		// Pick the port now, so that it can be told (C2's "net") before
		// the firmware ever runs; it is listened on again when needed.
		l, err := f.cfg.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("appsim: %s address %q: %w", roleNames[r], a, err)
		}
		f.addr[r], f.picked[r] = l.Addr().String(), true
		l.Close()
	}
	return f, nil
}

// APAddr is where the access point's web page appears (a real device's
// 192.168.4.1).
func (f *Firmware) APAddr() string { return f.address(roleAP) }

// StationAddr is where the firmware's web server appears once it is on the
// virtual network (a real device's port 80 on its LAN address).
func (f *Firmware) StationAddr() string { return f.address(roleStation) }

// APIAddr is where ESPHome's native API appears (TCP 6053 on a real
// device).
func (f *Firmware) APIAddr() string { return f.address(roleAPI) }

// TuyaAddr is where the stock firmware's Tuya local port appears (TCP 6668
// on a real device).
func (f *Firmware) TuyaAddr() string { return f.address(roleTuya) }

// NetAddr is StationAddr, under the name the chip simulators ask for the
// "net" of their identification answer (contract C2); with APAddr, APIAddr
// and TuyaAddr it also serves their NetAddrs.
func (f *Firmware) NetAddr() string { return f.StationAddr() }

func (f *Firmware) address(r role) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addr[r]
}

// Redirect maps an address a client derives from the station's address
// with a real device's fixed port (6053 for ESPHome's native API, 6668 for
// Tuya's local port, 80) to where the simulator serves it; other addresses
// come back unchanged. It lets postflash's and provision's Dial reach the
// simulated device.
func (f *Firmware) Redirect(addr string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	host, port, err := net.SplitHostPort(addr)
	sta, _, _ := net.SplitHostPort(f.addr[roleStation])
	if err != nil || host != sta {
		return addr
	}
	switch port {
	case "80":
		return f.addr[roleStation]
	case "6053":
		return f.addr[roleAPI]
	case "6668":
		return f.addr[roleTuya]
	}
	return addr
}

// Status is a snapshot of the simulated firmware.
type Status struct {
	Running bool `json:"running"`
	// Image is what the firmware found in flash when it started; zero
	// until Timing.Boot after Boot.
	Image Image  `json:"image"`
	MAC   string `json:"mac,omitempty"`
	// AccessPoint is the SSID of the access point while it is open.
	AccessPoint string `json:"access_point,omitempty"`
	// Station is the SSID of the network the station is on, "" while it
	// is not.
	Station string `json:"station,omitempty"`
}

// Status tells what runs and what is up.
func (f *Firmware) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := Status{Running: f.running, Image: f.img, AccessPoint: f.apName, Station: f.joined}
	if f.running {
		s.MAC = f.mac.String()
	}
	return s
}

// Boot starts the firmware held in flash (contract C1): it tells what the
// flash holds, reads the MAC and the settings, and starts the firmware's
// timers. It returns at once; the network side comes up later, as on a
// real device.
func (f *Firmware) Boot(flash Flash) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.haltLocked()
	f.bootLocked(flash, false)
}

// Halt stops the firmware (reset, power-off, download mode): every
// listener is closed before it returns, timers are cancelled, serial
// output not yet collected is lost.
func (f *Firmware) Halt() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.haltLocked()
}

// Serial takes bytes the host sends on the UART and returns what the
// firmware sent since the last call (Tasmota's console; nil when there is
// nothing). Output the firmware produces on its own — boot log, results of
// queued commands, Wi-Fi events — waits here until the next call: a chip
// simulator calls Serial(nil) at its poll interval while the firmware
// runs.
func (f *Firmware) Serial(in []byte) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.running && f.app != nil && len(in) > 0 {
		f.line = append(f.line, in...)
		for {
			i := bytes.IndexByte(f.line, '\n')
			if i < 0 {
				break
			}
			l := bytes.Clone(f.line[:i])
			f.line = f.line[i+1:]
			f.app.serialLine(l)
		}
		if len(f.line) > 1024 {
			f.line = nil // no line end in sight: garbage (another baud rate)
		}
	}
	out := f.out
	f.out = nil
	if f.pending != nil {
		go f.flush() // not on the caller's goroutine: it may hold the chip's locks
	}
	return out
}

// bootLocked resets into the firmware in flash; f.mu is held. The flash
// is read when the firmware starts, Timing.Boot later, on the timer's
// goroutine and without f.mu: Flash is never called under f.mu nor on the
// caller's goroutine, so a chip simulator may hold its own locks around
// Boot, Halt and Serial.
func (f *Firmware) bootLocked(flash Flash, restart bool) {
	f.gen++
	f.running, f.flash, f.restarted = true, flash, restart
	f.bootAt = time.Now()
	f.app, f.st, f.stored, f.img = nil, nil, nil, Image{}
	g := f.gen
	var t *time.Timer
	t = time.AfterFunc(f.cfg.Timing.Boot, func() {
		snap := f.readFlash(flash)
		f.mu.Lock()
		delete(f.timers, t)
		if f.gen == g && f.running {
			f.startLocked(snap)
		}
		f.mu.Unlock()
		f.flush()
	})
	f.timers[t] = struct{}{}
}

// flashSnapshot is what the firmware reads from flash when it starts.
type flashSnapshot struct {
	img     Image
	mac     macAddr
	macFrom string
	stored  *settings
	netInFW bool
}

// readFlash reads what the firmware needs from flash; f.mu is not held.
func (f *Firmware) readFlash(flash Flash) flashSnapshot {
	s := flashSnapshot{img: inspect(flash, f.chip), mac: f.espMAC, macFrom: "eFuse"}
	if f.chip.beken {
		if m, off, ok := rfMAC(flash, f.chip.rf); ok {
			s.mac, s.macFrom = m, fmt.Sprintf("RF sector at 0x%X", off)
		} else {
			s.mac, s.macFrom = bekenDefaultMAC, "no RF sector: the Beken default"
		}
	}
	st, err := loadSettings(flash, f.chip.config)
	switch {
	case err == nil:
		s.stored = st
	case !errors.Is(err, errNoSettings):
		f.logf("settings: %v", err)
	}
	if s.img.Kind == KindESPHome {
		b := make([]byte, min(flash.Size(), 1<<20))
		flash.ReadAt(b, 0) //nolint:errcheck // a short read leaves the network unknown
		n := f.cfg.Network
		s.netInFW = bytes.Contains(b, []byte(n.SSID)) && bytes.Contains(b, []byte(n.Password))
	}
	return s
}

// startLocked runs the firmware found in flash; f.mu is held.
func (f *Firmware) startLocked(s flashSnapshot) {
	f.img, f.mac, f.macFrom, f.stored, f.netInFW = s.img, s.mac, s.macFrom, s.stored, s.netInFW
	f.logf("start: %s %s (%s); MAC %s (%s)", f.img.Kind, f.img.Version, f.img.Evidence, f.mac, f.macFrom)
	switch f.img.Kind {
	case KindTasmota:
		f.app = newTasmota(f)
	case KindOpenBeken:
		f.app = newOpenBeken(f)
	case KindESPHome:
		f.app = newESPHome(f)
	case KindStock:
		f.app = &stock{f: f}
	default:
		return
	}
	f.app.start()
}

// haltLocked stops everything; f.mu is held.
func (f *Firmware) haltLocked() {
	f.gen++
	f.running = false
	for t := range f.timers {
		t.Stop()
	}
	clear(f.timers)
	for r := range f.srv {
		f.down(role(r))
	}
	f.out, f.line, f.pending = nil, nil, nil
	f.apName, f.joined = "", ""
}

// restart resets the firmware after d, as a restart it decides on itself.
func (f *Firmware) restart(d time.Duration) {
	f.after(d, func() {
		fl, out, p := f.flash, f.out, f.pending
		f.logf("restart")
		f.haltLocked()
		f.out = out // what the UART sent before the restart is on the wire
		f.bootLocked(fl, true)
		if p != nil { // settings saved before the restart are written
			p.gen = f.gen
			f.pending = p
		}
	})
}

// after runs fn under f.mu after d, unless the firmware was reset
// meanwhile; f.mu is held.
func (f *Firmware) after(d time.Duration, fn func()) {
	g := f.gen
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		f.mu.Lock()
		delete(f.timers, t)
		if f.gen == g && f.running {
			fn()
		}
		f.mu.Unlock()
		f.flush()
	})
	f.timers[t] = struct{}{}
}

// uptime is the time since the last reset.
func (f *Firmware) uptime() time.Duration { return time.Since(f.bootAt) }

// joins reports whether the credentials are the virtual network's.
func (f *Firmware) joins(ssid, password string) bool {
	return ssid == f.cfg.Network.SSID && password == f.cfg.Network.Password
}

// host is the IP part of a role's address.
func (f *Firmware) host(r role) string {
	h, _, _ := net.SplitHostPort(f.addr[r])
	return h
}

// loadSettings takes the settings the config sector held at boot if this
// firmware wrote them, else def; f.mu is held.
func (f *Firmware) loadSettings(def func() *settings) *settings {
	if f.stored != nil && f.stored.Firmware == string(f.img.Kind) {
		return f.stored
	}
	return def()
}

// pendingWrite is a settings sector waiting to be written.
type pendingWrite struct {
	gen  uint64
	off  int64
	data []byte
}

// save queues the settings for the config sector; f.mu is held. The write
// happens in flush, after f.mu is released.
func (f *Firmware) save() {
	if f.st == nil {
		return
	}
	if f.chip.config+sectorSize > int64(f.flash.Size()) {
		f.logf("settings not saved: the config sector 0x%X lies beyond the %d KiB flash", f.chip.config, f.flash.Size()>>10)
		return
	}
	b, err := encodeSettings(f.st)
	if err != nil {
		f.logf("settings not saved: %v", err)
		return
	}
	f.pending = &pendingWrite{gen: f.gen, off: f.chip.config, data: b}
}

// flush writes the latest queued settings, unless the firmware was reset
// since they were queued (a reset stops the write); f.mu is not held.
func (f *Firmware) flush() {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	f.mu.Lock()
	p, fl, g := f.pending, f.flash, f.gen
	f.pending = nil
	f.mu.Unlock()
	if p == nil || p.gen != g {
		return
	}
	if _, err := fl.WriteAt(p.data, p.off); err != nil {
		f.logf("settings not saved: %v", err)
		return
	}
	f.logf("settings saved at 0x%X", p.off)
}

func (f *Firmware) logf(format string, args ...any) {
	if f.cfg.Log == nil {
		return
	}
	fmt.Fprintf(f.cfg.Log, "appsim %s: %s\n", f.chip.name, fmt.Sprintf(format, args...))
}

// server is one listener and what serves it.
type server struct {
	l     net.Listener
	hs    *http.Server // nil for a raw TCP server
	done  chan struct{}
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// listen opens the listener of a role. A port the system picked and that
// was taken since is replaced by a new one.
func (f *Firmware) listen(r role) (net.Listener, error) {
	l, err := f.cfg.Listen("tcp", f.addr[r])
	if err == nil || !f.picked[r] {
		return l, err
	}
	l, err2 := f.cfg.Listen("tcp", net.JoinHostPort(f.host(r), "0"))
	if err2 != nil {
		return nil, err
	}
	f.logf("%s: %s was taken meanwhile; now at %s", roleNames[r], f.addr[r], l.Addr())
	f.addr[r] = l.Addr().String()
	return l, nil
}

// open listens for a role that is down; f.mu is held. ok is false when
// the role is up already (l nil) or the address cannot be had.
func (f *Firmware) open(r role) (l net.Listener, up, ok bool) {
	if f.srv[r] != nil {
		return nil, true, false
	}
	l, err := f.listen(r)
	if err != nil {
		f.logf("%s: cannot listen on %s: %v", roleNames[r], f.addr[r], err)
		return nil, false, false
	}
	return l, false, true
}

// serveHTTP brings up a web server for a role; f.mu is held.
func (f *Firmware) serveHTTP(r role, h http.Handler) bool {
	l, up, ok := f.open(r)
	if !ok {
		return up
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	hs.SetKeepAlivesEnabled(false) // the firmwares close every connection
	f.srv[r] = &server{l: l, hs: hs, done: make(chan struct{})}
	go hs.Serve(l) //nolint:errcheck // ends with ErrServerClosed on down
	f.logf("%s up at %s", roleNames[r], f.addr[r])
	return true
}

// serveTCP brings up a raw TCP server for a role; handle runs for each
// connection, which is closed when it returns or the role goes down; f.mu
// is held.
func (f *Firmware) serveTCP(r role, handle func(c net.Conn, done <-chan struct{})) bool {
	l, up, ok := f.open(r)
	if !ok {
		return up
	}
	s := &server{l: l, done: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	f.srv[r] = s
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			select {
			case <-s.done:
				s.mu.Unlock()
				c.Close()
				return
			default:
			}
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			go func() {
				defer func() {
					s.mu.Lock()
					delete(s.conns, c)
					s.mu.Unlock()
					c.Close()
				}()
				handle(c, s.done)
			}()
		}
	}()
	f.logf("%s up at %s", roleNames[r], f.addr[r])
	return true
}

// down closes a role's listener and its connections; f.mu is held.
func (f *Firmware) down(r role) {
	s := f.srv[r]
	if s == nil {
		return
	}
	f.srv[r] = nil
	s.mu.Lock()
	close(s.done)
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	if s.hs != nil {
		s.hs.Close()
	} else {
		s.l.Close()
	}
	f.logf("%s down", roleNames[r])
}

// reply is an HTTP answer computed under f.mu and written after it is
// released.
type reply struct {
	status int
	ctype  string
	header http.Header
	body   []byte
	// drop closes the connection without any answer.
	drop bool
}

func jsonReply(body []byte) reply { return reply{status: 200, ctype: "application/json", body: body} }

func htmlReply(status int, body string) reply {
	return reply{status: status, ctype: "text/html", body: []byte(body)}
}

// handler turns a firmware's request function into an http.Handler: the
// body is read, fn runs under f.mu unless the firmware was reset since the
// server came up (then the connection is dropped, as a reset does), and
// write sends the reply. f.mu is held when handler is called.
func (f *Firmware) handler(fn func(r *http.Request, body []byte) reply, write func(http.ResponseWriter, reply)) http.Handler {
	g := f.gen
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		f.mu.Lock()
		if f.gen != g || !f.running {
			f.mu.Unlock()
			drop(w)
			return
		}
		rep := fn(r, body)
		f.mu.Unlock()
		f.flush()
		write(w, rep)
	})
}

// writeHTTP sends a reply the ordinary way (net/http's framing).
func writeHTTP(w http.ResponseWriter, rep reply) {
	if rep.drop {
		drop(w)
		return
	}
	h := w.Header()
	for k, v := range rep.header {
		h[k] = v
	}
	if rep.ctype != "" {
		h.Set("Content-Type", rep.ctype)
	}
	if rep.status == 0 {
		rep.status = http.StatusOK
	}
	w.WriteHeader(rep.status)
	w.Write(rep.body) //nolint:errcheck // the client may be gone
}

// drop closes the connection without an answer.
func drop(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// uptimeString is Tasmota's and OpenBeken's "1T02:03:04".
func uptimeString(d time.Duration) string {
	s := int(d / time.Second)
	return fmt.Sprintf("%dT%02d:%02d:%02d", s/86400, s/3600%24, s/60%60, s%60)
}

// firstToken is the first space-separated word of s.
func firstToken(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[:i]
	}
	return s
}
