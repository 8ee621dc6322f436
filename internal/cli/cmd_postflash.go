package cli

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/tuyaflash/tuyaflash/backup"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/inventory"
	"github.com/tuyaflash/tuyaflash/postflash"
	"github.com/tuyaflash/tuyaflash/provision"
	"github.com/tuyaflash/tuyaflash/transport"
)

func init() {
	register(verifyCmd())
	register(provisionCmd())
}

func verifyCmd() *command {
	var host, expect, mac, fromBackup, user, password string
	var wait time.Duration
	var mdns bool
	c := &command{name: "verify", summary: "check the flashed device on the network: firmware, version, chip, MAC",
		long: `Asks the device at --host what it runs (Tasmota and OpenBeken through /cm?cmnd=Status 0,
OpenBeken also through /api/info, ESPHome through its web server or native API)
and fails when the firmware or the MAC is not what was expected. --backup takes
the expected MAC from a backup's sidecar. --wait keeps trying until the device is
online, reporting what it sees on the way.`}
	c.flags = func(fs *pflag.FlagSet) {
		fs.StringVar(&host, "host", "", "device `address` (IP or name)")
		fs.StringVar(&expect, "expect", "", "expected `firmware`: tasmota, openbeken or esphome")
		fs.StringVar(&mac, "mac", "", "expected `MAC` address")
		fs.StringVar(&fromBackup, "backup", "", "take the expected MAC from this backup's sidecar `file`")
		fs.StringVar(&user, "user", "", "web `user` (Tasmota: admin)")
		fs.StringVar(&password, "password", "", "web `password`")
		fs.DurationVar(&wait, "wait", 0, "keep trying for this `long` until the device answers (e.g. 2m)")
		fs.BoolVar(&mdns, "mdns", false, "also ask mDNS (ESPHome version and MAC)")
	}
	c.run = func(e *env, args []string) error {
		if len(args) > 0 {
			return usagef("verify takes no arguments (use --host)")
		}
		if host == "" {
			return usagef("--host is required")
		}
		if expect != "" {
			if _, err := postflash.ParseFirmware(expect); err != nil {
				return usagef("--expect: %v", err)
			}
		}
		if fromBackup != "" {
			b, err := backup.Load(fromBackup, false)
			if err != nil {
				return err
			}
			if b.Sidecar.MAC == "" || b.Sidecar.MACPlaceholder != "" {
				return fmt.Errorf("the backup's sidecar has no usable MAC (%q %s): %w", b.Sidecar.MAC, b.Sidecar.MACPlaceholder, flasher.ErrRefused)
			}
			if mac != "" && !strings.EqualFold(mac, b.Sidecar.MAC) {
				return usagef("--mac %s and the backup's MAC %s differ", mac, b.Sidecar.MAC)
			}
			mac = b.Sidecar.MAC
		}
		opts := postflash.Options{User: user, Password: password, MDNS: mdns, Client: &http.Client{}}
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
		if err != nil {
			if res != nil && !e.g.json {
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
		if e.g.json {
			out := map[string]any{"result": res, "ok": checkErr == nil}
			if checkErr != nil {
				out["mismatch"] = checkErr.Error()
			}
			if err := e.printJSON(out); err != nil {
				return err
			}
		} else {
			printResult(e, res)
		}
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

func provisionCmd() *command {
	var ssid, wifiPass, fw, apHost, webPass string
	var ap, clearWeb bool
	var timeout time.Duration
	c := &command{name: "provision", summary: "put the freshly flashed device on your Wi-Fi (serial console or its access point)",
		long: `Serial (Tasmota on ESP8266, after the power-cycle with GPIO0 released):
  tuyaflash provision --port /dev/ttyUSB0 --ssid NAME --wifi-password PASS
sends "Backlog SSID1 …; Password1 …" to the Tasmota console and reads the IP from the
boot log.

Access point (any firmware): join the device's own Wi-Fi first (tasmota-XXXX,
OpenBK7231T_XXXX, the ESPHome node's AP), then
  tuyaflash provision --ap --firmware tasmota|openbeken|esphome --ssid NAME --wifi-password PASS
Without --ssid, --ap only prints the steps.`,
		device: true}
	c.flags = func(fs *pflag.FlagSet) {
		fs.StringVar(&ssid, "ssid", "", "your Wi-Fi network `name`")
		fs.StringVar(&wifiPass, "wifi-password", "", "your Wi-Fi `password`")
		fs.BoolVar(&ap, "ap", false, "use the device's access point instead of the serial console")
		fs.StringVar(&fw, "firmware", "", "firmware on the device (--ap): tasmota, openbeken or esphome")
		fs.StringVar(&apHost, "ap-host", "", "device address on its access point (default 192.168.4.1)")
		fs.StringVar(&webPass, "web-password", "", "OpenBeken web password, kept by the Wi-Fi form")
		fs.BoolVar(&clearWeb, "clear-web-password", false, "let OpenBeken's Wi-Fi form clear its web password")
		fs.DurationVar(&timeout, "wait", 90*time.Second, "how `long` to wait for the device to join the network")
	}
	c.run = func(e *env, args []string) error {
		if len(args) > 0 {
			return usagef("provision takes no arguments")
		}
		w := provision.WiFi{SSID: ssid, Password: wifiPass}
		if ap {
			f, err := postflash.ParseFirmware(fw)
			if err != nil {
				return usagef("--firmware: %v (required with --ap)", err)
			}
			if ssid == "" {
				for i, s := range provision.APSteps(f, "") {
					fmt.Fprintf(e.stdout, "%d. %s\n", i+1, s)
				}
				return nil
			}
			res, err := provision.ProvisionAP(e.ctx, f, w, provision.APOptions{Host: apHost, WebPassword: webPass, ClearWebPassword: clearWeb, Wait: timeout})
			if res != nil {
				for i, s := range res.Steps {
					fmt.Fprintf(e.stdout, "%d. %s\n", i+1, s)
				}
				if res.NewIP != "" {
					fmt.Fprintf(e.stdout, "The device joined %s as %s: tuyaflash verify --host %s\n", ssid, res.NewIP, res.NewIP)
				}
			}
			return err
		}
		if ssid == "" {
			return usagef("--ssid is required")
		}
		if e.g.port == "" {
			return usagef("--port is required for serial provisioning (or use --ap)")
		}
		p, err := transport.Open(e.g.port, 115200)
		if err != nil {
			return err
		}
		defer p.Close()
		var port transport.Port = p
		if e.g.trace {
			port = transport.Trace(p, e.stderr)
		}
		fmt.Fprintln(e.stderr, ">>> Make sure GPIO0 is released and the module was power-cycled, so that Tasmota runs")
		res, err := provision.Serial(e.ctx, port, w, provision.SerialOptions{Timeout: timeout, Line: func(l string) {
			if e.g.verbose > 0 {
				fmt.Fprintln(e.stderr, "  console: "+l)
			}
		}})
		if err != nil {
			return err
		}
		if e.g.json {
			return e.printJSON(res)
		}
		fmt.Fprintf(e.stdout, "Joined %s: IP %s", ssid, res.IP)
		if res.MAC != "" {
			fmt.Fprintf(e.stdout, ", MAC %s", res.MAC)
		}
		fmt.Fprintf(e.stdout, "\nCheck it: tuyaflash verify --host %s --expect tasmota\n", res.IP)
		return nil
	}
	return c
}
