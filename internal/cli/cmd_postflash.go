package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/tuyaflash/tuyaflash/backup"
	"github.com/tuyaflash/tuyaflash/devicesim/appsim"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/internal/session"
	"github.com/tuyaflash/tuyaflash/internal/virtual"
	"github.com/tuyaflash/tuyaflash/inventory"
	"github.com/tuyaflash/tuyaflash/postflash"
	"github.com/tuyaflash/tuyaflash/provision"
	"github.com/tuyaflash/tuyaflash/transport"
)

func init() {
	register(verifyCmd())
	register(provisionCmd())
}

// expectedJSON is what verify compared the device with.
type expectedJSON struct {
	Firmware string `json:"firmware,omitempty"`
	MAC      string `json:"mac,omitempty"`
}

// verifyDoc is verify's document: the device as it answered (also on a
// mismatch), and what was expected.
type verifyDoc struct {
	header
	Host     string            `json:"host"`
	Device   *postflash.Result `json:"device,omitempty"`
	Expected expectedJSON      `json:"expected"`
}

func verifyCmd() *command {
	var host, port, expect, mac, fromBackup, user, password string
	var wait time.Duration
	var mdns bool
	c := &command{name: "verify", summary: "check the flashed device on the network: firmware, version, chip, MAC",
		verbose: []string{"what was seen on the way (each probe and, with --wait, each attempt)"},
		long: `Asks the device at --host what it runs (Tasmota and OpenBeken through /cm?cmnd=Status 0,
OpenBeken also through /api/info, ESPHome through its web server or native API)
and fails when the firmware or the MAC is not what was expected. --backup takes
the expected MAC from a backup's sidecar. --wait keeps trying until the device is
online, reporting what it sees on the way.
--port sim:CHIP[#NAME] starts that virtual device from its saved flash, waits for
it on the virtual network and checks it; its MAC is expected unless --mac or
--backup says otherwise.`}
	c.flags = func(fs *pflag.FlagSet) {
		fs.StringVar(&host, "host", "", "device `address` (IP or name, with :PORT when the web server is not on port 80)")
		fs.StringVar(&port, "port", "", "a virtual `device` (sim:bk7231n …) to start and check instead of --host")
		fs.StringVar(&expect, "expect", "", "expected `firmware`: tasmota, openbeken or esphome")
		fs.StringVar(&mac, "mac", "", "expected `MAC` address")
		fs.StringVar(&fromBackup, "backup", "", "take the expected MAC from this backup's sidecar `file`")
		fs.StringVar(&user, "user", "", "web `user` (Tasmota: admin)")
		fs.StringVar(&password, "password", "", "web `password`")
		fs.DurationVar(&wait, "wait", 0, "keep trying this long until the device answers (a `duration`, e.g. 2m)")
		fs.BoolVar(&mdns, "mdns", false, "also ask mDNS (ESPHome version and MAC)")
	}
	c.check = func(e *env, args []string) error {
		switch {
		case len(args) > 0:
			return usagef("verify takes no arguments (use --host)")
		case host == "" && port == "":
			return usagef("--host is required (or --port sim:… for a virtual device)")
		case host != "" && port != "":
			return usagef("--host and --port exclude each other: --port sim:… finds the virtual device's address itself")
		case port != "" && !virtual.IsSpec(port):
			return usagef("--port %s: verify starts virtual devices only (sim:…); a real device is checked on the network with --host ADDR (a 'tuyaflash sim' prints its address)", port)
		case wait < 0:
			return usagef("--wait must not be negative")
		case user != "" && password == "":
			return usagef("--user goes with --password")
		}
		if expect != "" {
			if _, err := postflash.ParseFirmware(expect); err != nil {
				return usagef("--expect: %v", err)
			}
		}
		if mac != "" {
			if _, err := flasher.ParseMAC(mac); err != nil {
				return usagef("--mac: %v", err)
			}
		}
		if port != "" {
			if _, _, err := simSpec(port); err != nil {
				return err
			}
		}
		return nil
	}
	c.run = func(e *env, args []string) error {
		doc := &verifyDoc{Host: host, Expected: expectedJSON{Firmware: strings.ToLower(expect), MAC: macText(mac)}}
		e.emit(doc)
		if port != "" {
			s, err := e.startVirtual(port)
			if err != nil {
				return err
			}
			defer s.Close()
			host, doc.Host = s.Virtual.Addrs.Station, s.Virtual.Addrs.Station
			if mac == "" && fromBackup == "" {
				mac = s.Virtual.MAC()
				doc.Expected.MAC = macText(mac)
			}
			if wait == 0 {
				wait = virtualOnlineWait
			}
			fmt.Fprintf(e.stderr, "%s started from its saved flash; waiting for it at %s\n", s.Virtual.Port, host)
		}
		if fromBackup != "" {
			b, err := backup.Load(fromBackup, false)
			if err != nil {
				return err
			}
			if b.Sidecar.MAC == "" || b.Sidecar.MACPlaceholder != "" {
				return fmt.Errorf("the backup's sidecar has no usable MAC (%q %s): %w", b.Sidecar.MAC, b.Sidecar.MACPlaceholder, flasher.ErrRefused)
			}
			if mac != "" && !strings.EqualFold(macText(mac), macText(b.Sidecar.MAC)) {
				return usagef("--mac %s and the backup's MAC %s differ", mac, b.Sidecar.MAC)
			}
			mac = b.Sidecar.MAC
			doc.Expected.MAC = macText(mac)
		}
		// postflash's own client: no proxy (the password would go to it),
		// no redirects (a device could send the request elsewhere); its
		// dialer reaches the virtual devices of this process too.
		opts := postflash.Options{User: user, Password: password, MDNS: mdns, Dial: virtual.Dial}
		var res *postflash.Result
		var err error
		if wait > 0 {
			res, err = postflash.WaitOnline(e.ctx, host, opts, time.Now().Add(wait), func(a postflash.Attempt) {
				if !e.g.json || e.g.verbose > 0 {
					fmt.Fprintln(e.stderr, a.String())
				}
			})
		} else {
			res, err = postflash.Identify(e.ctx, host, opts)
		}
		doc.Device = res
		if err != nil {
			if res != nil {
				printResult(e, res)
			}
			return err
		}
		checkErr := postflash.Check(res, expect, mac)
		e.recordInventory(func(inv *inventory.Inventory) error {
			_, err := inv.RecordVerify(mac, res, checkErr)
			if errors.Is(err, inventory.ErrUnknownDevice) {
				return nil // a device tuyaflash never flashed: nothing to note
			}
			return err
		})
		printResult(e, res)
		return checkErr
	}
	return c
}

func printResult(e *env, r *postflash.Result) {
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	row("Host", r.Host)
	row("Firmware", string(r.Firmware))
	row("Version", r.Version)
	row("Build", r.Build)
	row("Hardware", r.Hardware)
	row("MAC", r.MAC)
	row("IP", r.IP)
	row("Hostname", r.Hostname)
	row("Name", r.Name)
	row("Module", r.Module)
	if r.Uptime > 0 {
		row("Uptime", r.Uptime.String())
	}
	if r.RSSI != 0 {
		row("Wi-Fi signal", fmt.Sprintf("%d %%", r.RSSI))
	}
	if r.Encrypted {
		row("Native API", "encrypted")
	}
	tw.Flush()
	for _, w := range r.Warnings {
		fmt.Fprintf(e.stderr, "warning: %s\n", w)
	}
	if e.g.verbose > 0 {
		for _, ev := range r.Evidence {
			fmt.Fprintf(e.stderr, "  seen: %s\n", ev)
		}
	}
}

// provisionDoc is provision's document. The Wi-Fi password never appears.
type provisionDoc struct {
	header
	Mode     string   `json:"mode"`
	Firmware string   `json:"firmware,omitempty"`
	SSID     string   `json:"ssid,omitempty"`
	IP       string   `json:"ip,omitempty"`
	Hostname string   `json:"hostname,omitempty"`
	MAC      string   `json:"mac,omitempty"`
	Steps    []string `json:"steps,omitempty"`
}

func provisionCmd() *command {
	var ssid, fw, apHost, webPass string
	var pw passwordFlag
	var ap, clearWeb bool
	var timeout time.Duration
	c := &command{name: "provision", summary: "put the freshly flashed device on your Wi-Fi (serial console or its access point)",
		console: true, verbose: []string{"the console lines the device prints"},
		long: `Serial (Tasmota on ESP8266, after the power-cycle with GPIO0 released):
  tuyaflash provision --port /dev/ttyUSB0 --ssid NAME
sends "Backlog SSID1 …; Password1 …" to the Tasmota console and reads the IP from the
boot log.

Access point (any firmware): join the device's own Wi-Fi first (tasmota-XXXX,
OpenBK7231T_XXXX, the ESPHome node's AP), then
  tuyaflash provision --ap --firmware tasmota --ssid NAME
Without --ssid, --ap only prints the steps.

The Wi-Fi password comes from --wifi-password, else from $` + wifiPasswordEnv + `,
else it is asked for without echo when tuyaflash runs in a terminal (a password
on the command line ends up in the shell history and in 'ps'). An empty
--wifi-password '' means an open network.`}
	c.flags = func(fs *pflag.FlagSet) {
		fs.StringVar(&ssid, "ssid", "", "your Wi-Fi network `name`")
		fs.Var(&pw, "wifi-password", "your Wi-Fi `password` (better: $"+wifiPasswordEnv+" or the prompt)")
		fs.BoolVar(&ap, "ap", false, "use the device's access point instead of the serial console")
		fs.StringVar(&fw, "firmware", "", "`firmware` on the device (--ap): tasmota, openbeken or esphome")
		fs.StringVar(&apHost, "ap-host", "", "device `address` on its access point (default 192.168.4.1)")
		fs.StringVar(&webPass, "web-password", "", "OpenBeken web `password`, kept by the Wi-Fi form (--ap)")
		fs.BoolVar(&clearWeb, "clear-web-password", false, "let OpenBeken's Wi-Fi form clear its web password (--ap)")
		fs.DurationVar(&timeout, "wait", 90*time.Second, "how long to wait for the device to join the network (a `duration`)")
	}
	c.check = func(e *env, args []string) error {
		if len(args) > 0 {
			return usagef("provision takes no arguments")
		}
		spec, sim, err := simSpec(e.g.port)
		if err != nil {
			return err
		}
		if ap {
			for _, f := range []string{"port", "baud", "trace"} {
				if e.changed(f) && !(f == "port" && sim) {
					return usagef("--%s: --ap provisions over the device's access point, not a serial port (a virtual device's is found with --port sim:…)", f)
				}
			}
			if sim && e.changed("ap-host") {
				return usagef("--ap-host: the virtual device %s has its access point at an address of its own, which tuyaflash finds", e.g.port)
			}
			if _, err := postflash.ParseFirmware(fw); err != nil && !(sim && fw == "") {
				return usagef("--firmware: %v (required with --ap, but for a virtual device's, which tells)", err)
			}
			if ssid == "" && pw.set {
				return usagef("--wifi-password without --ssid: --ap without --ssid only prints the steps")
			}
			if clearWeb && webPass != "" {
				return usagef("--clear-web-password and --web-password exclude each other")
			}
			return nil
		}
		for _, f := range []string{"firmware", "ap-host", "web-password", "clear-web-password"} {
			if e.changed(f) {
				return usagef("--%s applies to --ap only (the serial console talks to Tasmota)", f)
			}
		}
		if ssid == "" {
			return usagef("--ssid is required")
		}
		if e.g.port == "" {
			return usagef("--port is required for serial provisioning (or use --ap)")
		}
		if sim && !spec.ESP() {
			return usagef("--port %s: serial provisioning talks to Tasmota's console on an ESP8266; this virtual %s runs OpenBeken or stock firmware: use --ap --port %s", e.g.port, spec.Family, e.g.port)
		}
		return nil
	}
	c.run = func(e *env, args []string) error {
		doc := &provisionDoc{Mode: "serial", SSID: ssid}
		e.emit(doc)
		if ap {
			doc.Mode = "ap"
			f, _ := postflash.ParseFirmware(fw)
			var dial func(ctx context.Context, network, addr string) (net.Conn, error)
			if virtual.IsSpec(e.g.port) && ssid != "" {
				s, err := e.startVirtual(e.g.port)
				if err != nil {
					return err
				}
				defer s.Close()
				st, err := s.WaitApp(e.ctx, virtualOnlineWait, func(st appsim.Status) bool { return st.AccessPoint != "" || st.Station != "" })
				if err != nil {
					return err
				}
				if st.Station != "" {
					fmt.Fprintf(e.stderr, "%s is on the network %q already; giving it %q anyway\n", s.Virtual.Port, st.Station, ssid)
					if _, err = s.WaitApp(e.ctx, virtualOnlineWait, func(st appsim.Status) bool { return st.AccessPoint != "" }); err != nil {
						return &flasher.HintError{Err: err, Hint: fmt.Sprintf("it does not open its access point while it is on a network: check it with 'tuyaflash verify --port %s'", s.Virtual.Port)}
					}
				}
				if f == "" {
					if f, err = postflash.ParseFirmware(string(st.Image.Kind)); err != nil {
						return fmt.Errorf("the virtual device runs %s, which tuyaflash does not provision: %w", st.Image.Kind, flasher.ErrUnsupported)
					}
				}
				apHost, dial = s.Virtual.Addrs.AP, virtual.Dial
				fmt.Fprintf(e.stderr, "%s: %s's access point %s is at %s\n", s.Virtual.Port, f, st.AccessPoint, apHost)
			}
			doc.Firmware = string(f)
			if ssid == "" {
				doc.Steps = provision.APSteps(f, "")
				for i, s := range doc.Steps {
					fmt.Fprintf(e.stdout, "%d. %s\n", i+1, s)
				}
				return nil
			}
			pass, err := e.wifiPassword(pw, ssid)
			if err != nil {
				return err
			}
			res, err := provision.ProvisionAP(e.ctx, f, provision.WiFi{SSID: ssid, Password: pass}, provision.APOptions{Host: apHost, Dial: dial, WebPassword: webPass, ClearWebPassword: clearWeb, Wait: timeout})
			if res != nil {
				doc.Steps, doc.IP, doc.MAC = res.Steps, res.NewIP, macText(res.MAC)
				for i, s := range res.Steps {
					if dial == nil { // a virtual device needs no Wi-Fi changes on this computer
						fmt.Fprintf(e.stdout, "%d. %s\n", i+1, s)
					}
				}
				switch {
				case err == nil && dial != nil:
					// It runs in this process only while a command uses it.
					if res.NewIP != "" {
						fmt.Fprintf(e.stdout, "The device joined %s as %s.\n", ssid, res.NewIP)
					}
					fmt.Fprintf(e.stdout, "Check it: tuyaflash verify --port %s --expect %s\n", e.g.port, f)
				case res.NewIP != "":
					fmt.Fprintf(e.stdout, "The device joined %s as %s: tuyaflash verify --host %s\n", ssid, res.NewIP, res.NewIP)
				}
			}
			return err
		}
		pass, err := e.wifiPassword(pw, ssid)
		if err != nil {
			return err
		}
		s, err := e.openConsole()
		if err != nil {
			return err
		}
		defer s.Close()
		port := s.Port
		e.setState("interrupted while talking to the console: the device may have received the new Wi-Fi settings; run 'tuyaflash verify --host ADDRESS' once it is on your network, or run the same command again")
		if s.Virtual == nil {
			fmt.Fprintln(e.stderr, ">>> Make sure GPIO0 is released and the module was power-cycled, so that Tasmota runs")
		}
		res, err := provision.Serial(e.ctx, port, provision.WiFi{SSID: ssid, Password: pass}, provision.SerialOptions{Timeout: timeout, Line: func(l string) {
			if e.g.verbose > 0 {
				fmt.Fprintln(e.stderr, "  console: "+l)
			}
		}})
		if err != nil {
			return err
		}
		doc.IP, doc.Hostname, doc.MAC = res.IP, res.Hostname, macText(res.MAC)
		fmt.Fprintf(e.stdout, "Joined %s: IP %s", ssid, res.IP)
		if res.MAC != "" {
			fmt.Fprintf(e.stdout, ", MAC %s", res.MAC)
		}
		if s.Virtual != nil {
			fmt.Fprintf(e.stdout, "\nCheck it: tuyaflash verify --port %s --expect tasmota\n", e.g.port)
		} else {
			fmt.Fprintf(e.stdout, "\nCheck it: tuyaflash verify --host %s --expect tasmota\n", res.IP)
		}
		return nil
	}
	return c
}

// virtualOnlineWait is how long a virtual device is waited for on the
// virtual network (its firmware boots, opens its access point or joins).
const virtualOnlineWait = 2 * time.Minute

// startVirtual starts a virtual device of this process into its firmware.
func (e *env) startVirtual(port string) (*session.Session, error) {
	vo, err := virtual.OptionsFromEnv()
	if err != nil {
		return nil, err
	}
	s, err := session.Open(e.ctx, session.Options{Port: port, Notify: e.events(), Virtual: vo})
	if err != nil {
		return nil, err
	}
	if err := s.BootApp(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// openConsole opens --port for a firmware's serial console: a serial
// device, or a virtual device started into its firmware.
func (e *env) openConsole() (*session.Session, error) {
	if virtual.IsSpec(e.g.port) {
		s, err := e.startVirtual(e.g.port)
		if err != nil {
			return nil, err
		}
		// What is typed while the firmware still boots is lost, as on a
		// real device: wait until it runs.
		if _, err := s.WaitApp(e.ctx, virtualOnlineWait, func(st appsim.Status) bool { return st.Image.Kind != "" }); err != nil {
			s.Close()
			return nil, err
		}
		if e.g.trace {
			s.Port = transport.Trace(s.Port, e.stderr)
		}
		return s, nil
	}
	o := session.Options{Port: e.g.port, Notify: e.events()}
	if e.g.trace {
		o.Trace = e.stderr
	}
	s, err := session.Open(e.ctx, o)
	if err != nil {
		return nil, err
	}
	if err := s.Port.SetBaudRate(e.g.baud); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}
