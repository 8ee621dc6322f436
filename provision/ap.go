package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/postflash"
)

// DefaultAPHost is where Tasmota, OpenBeken on Beken chips and ESPHome serve
// their access-point pages (OpenBeken on BL602: 192.168.169.1).
const DefaultAPHost = "192.168.4.1"

// APOptions tune ProvisionAP.
type APOptions struct {
	// Host is the device's address on its access point (DefaultAPHost).
	Host string
	// Client replaces the HTTP client (no proxy, no keep-alive).
	Client *http.Client
	// Dial replaces the dialer (tests).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Timeout bounds each request (default 15 s: Tasmota scans Wi-Fi
	// networks while it builds its page).
	Timeout time.Duration
	// WebPassword is OpenBeken's web password: sent as Basic auth, and
	// sent again with the Wi-Fi form so that the form keeps it.
	WebPassword string
	// ClearWebPassword lets OpenBeken's Wi-Fi form clear the web password,
	// which it does when the form does not mention it.
	ClearWebPassword bool
	// Poll and Wait pace the polling of Tasmota's /wi while it tests the
	// network (defaults 2 s and 45 s; the test itself takes about 9 s).
	Poll, Wait time.Duration
}

// APResult is what provisioning over the access point did and learnt.
type APResult struct {
	Firmware postflash.Firmware
	// MAC and Name are read from the device before the change; the MAC
	// finds the device on the user's network afterwards (FindByMAC).
	MAC  string
	Name string
	// NewIP is the address on the user's network, when the firmware tells
	// it (Tasmota's success page).
	NewIP string
	// Steps say what the user does next.
	Steps []string
	// Evidence lists what was seen, without passwords.
	Evidence []string
}

func (r *APResult) saw(format string, args ...any) {
	r.Evidence = append(r.Evidence, fmt.Sprintf(format, args...))
}

// ClassifyAP tells the firmware by the name of the access point a device
// opened (postflash-and-ecosystem.md §8): tasmota_XXXXXX-#### or
// tasmota-XXXXXX-####, OpenBK7231N_XXXXXXXX (Open<chip>_<8 hex>), ESPHome's
// "<name> Fallback Hotspot", and Tuya's own pairing access points
// (SmartLife-XXXX, A-XXXX), which mean the flash did not take. It returns
// Unknown when the name says nothing, with a note for the user.
func ClassifyAP(ssid string) (postflash.Firmware, string) {
	switch {
	case apTasmota.MatchString(ssid):
		return postflash.Tasmota, "Tasmota's first-start access point (open, one client, 3 minutes)"
	case apOBK.MatchString(ssid):
		return postflash.OpenBeken, "OpenBeken's open access point"
	case apESPHome.MatchString(ssid):
		return postflash.ESPHome, "ESPHome's fallback hotspot (password from the YAML)"
	case apTuya.MatchString(ssid):
		return postflash.StockTuya, "the Tuya pairing access point: the device still runs the stock firmware, the flash did not take"
	}
	return postflash.Unknown, "not an access point name tuyaflash knows"
}

var (
	apTasmota = regexp.MustCompile(`^tasmota[-_][0-9A-Fa-f]{6}-\d{4}$`)
	apOBK     = regexp.MustCompile(`^Open[A-Za-z0-9]+_[0-9A-Fa-f]{8}$`)
	apESPHome = regexp.MustCompile(`(?i) fallback hotspot$`)
	apTuya    = regexp.MustCompile(`^(SmartLife|SmartLife-[0-9A-Fa-f]{4}|A-[0-9A-Fa-f]{4})$`)
)

// APSteps says what the user does before ProvisionAP: which network to
// join and the firmware's quirks. apName may be empty.
func APSteps(fw postflash.Firmware, apName string) []string {
	name := func(def string) string {
		if apName != "" {
			return apName
		}
		return def
	}
	switch fw {
	case postflash.Tasmota:
		return []string{
			fmt.Sprintf("On this computer, join the open Wi-Fi network %s: the device's own access point, at http://%s.", name("tasmota-XXXXXX-####"), DefaultAPHost),
			"Tasmota keeps that access point only 3 minutes after power-on and lets one client in: disconnect phones and other computers from it; if it is gone, power-cycle the device.",
			"tuyaflash then sends your network's name and password; the device tests them for about 10 seconds and shows its new address.",
		}
	case postflash.OpenBeken:
		return []string{
			fmt.Sprintf("On this computer, join the open Wi-Fi network %s (it appears about 5 seconds after power-on; the device is at http://%s, on BL602 chips at http://192.168.169.1).", name("OpenBK7231N_XXXXXXXX"), DefaultAPHost),
			"tuyaflash reads the device's MAC, then saves your network; OpenBeken restarts 3 seconds later and does not report its new address.",
			"OpenBeken's Wi-Fi form clears the web password unless the form carries it: tuyaflash keeps the password (give it with --web-password if one is set).",
		}
	case postflash.ESPHome:
		return []string{
			fmt.Sprintf("On this computer, join the fallback hotspot %s; its password is wifi: ap: password in the node's YAML. The node is at http://%s.", name("\"<name> Fallback Hotspot\""), DefaultAPHost),
			"tuyaflash reads the node's MAC and saves your network through the captive portal; the node then joins it.",
		}
	case postflash.StockTuya:
		return []string{"This access point belongs to the stock Tuya firmware: the new firmware is not running. Power-cycle the device; if the Tuya access point comes back, flash again."}
	}
	return []string{"Join the device's access point, then tell tuyaflash which firmware runs (tasmota, openbeken, esphome)."}
}

// ProvisionAP sends the Wi-Fi credentials to a device over its access
// point, which this computer has joined, and returns what the user does
// next. fw is the firmware that runs (see ClassifyAP).
func ProvisionAP(ctx context.Context, fw postflash.Firmware, w WiFi, o APOptions) (*APResult, error) {
	if e := w.validate(); e != nil {
		return nil, withHint(e)
	}
	c := newAPClient(o)
	res := &APResult{Firmware: fw}
	var e *Error
	switch fw {
	case postflash.Tasmota:
		e = c.tasmota(ctx, w, res)
	case postflash.OpenBeken:
		e = c.openBeken(ctx, w, res)
	case postflash.ESPHome:
		e = c.esphome(ctx, w, res)
	default:
		return nil, withHint(&Error{Op: "access point", Msg: fmt.Sprintf("cannot provision %q over an access point", fw),
			Hint: "give the firmware that runs: tasmota, openbeken or esphome"})
	}
	if e != nil {
		return res, withHint(e)
	}
	return res, nil
}

type apClient struct {
	o      APOptions
	host   string
	client *http.Client
}

func newAPClient(o APOptions) *apClient {
	if o.Host == "" {
		o.Host = DefaultAPHost
	}
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.Wait <= 0 {
		o.Wait = 45 * time.Second
	}
	c := &apClient{o: o, host: o.Host, client: o.Client}
	if c.client == nil {
		dial := o.Dial
		if dial == nil {
			dial = (&net.Dialer{Timeout: o.Timeout}).DialContext
		}
		c.client = &http.Client{
			Transport:     &http.Transport{Proxy: nil, DialContext: dial, DisableKeepAlives: true},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return c
}

type apReply struct {
	status int
	header http.Header
	body   string
}

// get fetches path; failures come back as *Error for op.
func (c *apClient) get(ctx context.Context, op, path string) (*apReply, *Error) {
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.host+path, nil)
	if err != nil {
		return nil, &Error{Op: op, Msg: err.Error(), Err: err}
	}
	req.Header.Set("User-Agent", "tuyaflash")
	if c.o.WebPassword != "" {
		req.SetBasicAuth("admin", c.o.WebPassword)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL may carry the Wi-Fi password
		}
		return nil, &Error{Op: op, Err: err,
			Msg:  fmt.Sprintf("no answer from %s (%v)", c.host, err),
			Hint: "join the device's access point on this computer first (and keep it: Tasmota serves it only 3 minutes and to one client)"}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode == http.StatusUnauthorized {
		return nil, &Error{Op: op, Msg: fmt.Sprintf("%s asks for the web password (HTTP 401)", c.host),
			Hint: "give the device's web password (--web-password)"}
	}
	return &apReply{status: resp.StatusCode, header: resp.Header, body: string(b)}, nil
}

var (
	// Tasmota's page after a successful test: <a href='http://<new ip>'>
	// (with a port where the web server is not on 80, as on a virtual
	// device).
	tasmotaNewIP = regexp.MustCompile(`href='http://(\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?)'`)
	// The reload script of the "trying to connect" page.
	tasmotaReload = "location.href='.'"
	tags          = regexp.MustCompile(`<[^>]*>`)
)

// tasmota saves the network with /wi?s1=&p1=&save= (HandleWifiConfiguration
// in manager mode tests it for about 9 s, the page reloading meanwhile) and
// polls /wi until the success page names the new address or the form
// comes back with the failure.
func (c *apClient) tasmota(ctx context.Context, w WiFi, res *APResult) *Error {
	const op = "Tasmota access point"
	// The Referer gate is off in manager mode: Status 5 tells the MAC.
	if r, e := c.get(ctx, op, "/cm?cmnd=Status%205"); e == nil && r.status == http.StatusOK {
		var st struct {
			StatusNET struct{ Hostname, Mac string }
		}
		if json.Unmarshal([]byte(r.body), &st) == nil {
			res.setMAC(st.StatusNET.Mac)
			res.Name = st.StatusNET.Hostname
			res.saw("Status 5: MAC %s, hostname %s", res.MAC, res.Name)
		}
	}
	q := url.Values{"s1": {w.SSID}, "p1": {w.Password}, "save": {""}}
	r, e := c.get(ctx, op, "/wi?"+q.Encode())
	if e != nil {
		return e
	}
	if r.status != http.StatusOK {
		return &Error{Op: op, Msg: fmt.Sprintf("the Wi-Fi form answered HTTP %d", r.status), Hint: "open http://" + c.host + "/wi in a browser and enter the network there"}
	}
	res.saw("GET /wi?s1=…&p1=…&save= → HTTP 200")
	testing := strings.Contains(r.body, tasmotaReload)
	end := time.Now().Add(c.o.Wait)
	for {
		if ip := newIP(r.body); ip != "" {
			res.NewIP = ip
			res.saw("success page: new address %s", ip)
			res.Steps = []string{
				"Rejoin your normal Wi-Fi on this computer.",
				fmt.Sprintf("The device restarts and answers at http://%s/ (check it with tuyaflash verify --host %s).", ip, ip),
			}
			return nil
		}
		if !testing && strings.Contains(r.body, "id='s1'") && strings.Contains(r.body, "<h3>") {
			return &Error{Op: op, Msg: fmt.Sprintf("the device could not join %q: %s", w.SSID, pageText(r.body)),
				Hint: "check the network name and password (case matters; ESP chips need 2.4 GHz) and try again within the 3 minutes"}
		}
		if time.Now().After(end) {
			return &Error{Op: op, Msg: fmt.Sprintf("the device did not finish testing %q within %s", w.SSID, c.o.Wait),
				Hint: "open http://" + c.host + "/wi in a browser to see the result"}
		}
		if err := sleep(ctx, c.o.Poll); err != nil {
			return &Error{Op: op, Msg: err.Error(), Err: err}
		}
		var ge *Error
		r, ge = c.get(ctx, op, "/wi")
		if ge != nil {
			// It restarted into the new network: the access point is gone.
			res.saw("GET /wi: %v (the device left its access point)", ge.Err)
			res.Steps = c.findSteps(res, w)
			return nil
		}
		if strings.Contains(r.body, tasmotaReload) {
			testing = true
			continue
		}
		testing = false
	}
}

// newIP returns the address of Tasmota's success page, but not its own
// access-point address.
func newIP(body string) string {
	for _, m := range tasmotaNewIP.FindAllStringSubmatch(body, -1) {
		if host, _, _ := strings.Cut(m[1], ":"); host != DefaultAPHost {
			return m[1]
		}
	}
	return ""
}

// pageText is the warning of a Tasmota page (its <h3>), as text.
func pageText(body string) string {
	i := strings.Index(body, "<h3>")
	j := strings.Index(body[max(i, 0):], "</h3>")
	if i < 0 || j < 0 {
		return "it shows its Wi-Fi form again"
	}
	s := strings.ReplaceAll(body[i+4:i+j], "<br>", "; ")
	return strings.Join(strings.Fields(tags.ReplaceAllString(s, "")), " ")
}

// openBeken reads /api/info, then saves the network with
// /cfg_wifi_set?ssid=&pass= (http_fn_cfg_wifi_set, OpenBK7231T_App
// @ e1a80975): without web_admin_password_enabled the form clears the web
// password; with it at 0 the password stays; at 1 with web_admin_password
// (5 characters or more) the password is set.
func (c *apClient) openBeken(ctx context.Context, w WiFi, res *APResult) *Error {
	const op = "OpenBeken access point"
	if c.o.WebPassword != "" && len(c.o.WebPassword) < 5 {
		return &Error{Op: op, Msg: "OpenBeken keeps a web password only when it has 5 characters or more"}
	}
	r, e := c.get(ctx, op, "/api/info")
	if e != nil {
		return e
	}
	var info struct{ Mac, ShortName, Chipset string }
	if r.status == http.StatusOK && json.Unmarshal([]byte(r.body), &info) == nil {
		res.setMAC(info.Mac)
		res.Name = info.ShortName
		res.saw("/api/info: MAC %s, short name %s, chipset %s", res.MAC, info.ShortName, info.Chipset)
	}
	q := url.Values{"ssid": {w.SSID}, "pass": {w.Password}}
	switch {
	case c.o.ClearWebPassword:
		res.saw("the web password is cleared, as asked")
	case c.o.WebPassword != "":
		q.Set("web_admin_password_enabled", "1")
		q.Set("web_admin_password", c.o.WebPassword)
	default:
		q.Set("web_admin_password_enabled", "0")
	}
	r, e = c.get(ctx, op, "/cfg_wifi_set?"+q.Encode())
	if e != nil {
		return e
	}
	if r.status != http.StatusOK {
		return &Error{Op: op, Msg: fmt.Sprintf("the Wi-Fi form answered HTTP %d", r.status), Hint: "open http://" + c.host + "/cfg_wifi in a browser"}
	}
	if strings.Contains(r.body, "No changes") {
		res.saw("cfg_wifi_set: no changes (the device already had this network)")
	} else {
		res.saw("cfg_wifi_set: saved; the device restarts in 3 s")
	}
	res.Steps = c.findSteps(res, w)
	return nil
}

// esphome reads the captive portal's /config.json, then saves the network
// with /wifisave?ssid=&psk=, which redirects to /?save.
func (c *apClient) esphome(ctx context.Context, w WiFi, res *APResult) *Error {
	const op = "ESPHome captive portal"
	r, e := c.get(ctx, op, "/config.json")
	if e != nil {
		return e
	}
	var cfg struct {
		Mac  string
		Name string
		Aps  []struct{ SSID string }
	}
	if r.status == http.StatusOK && json.Unmarshal([]byte(r.body), &cfg) == nil {
		res.setMAC(cfg.Mac)
		res.Name = cfg.Name
		res.saw("/config.json: MAC %s, node %s, %d networks seen", res.MAC, cfg.Name, len(cfg.Aps))
		seen := false
		for _, ap := range cfg.Aps {
			seen = seen || ap.SSID == w.SSID
		}
		if len(cfg.Aps) > 1 && !seen {
			res.saw("the node's scan does not list %q (a 5 GHz or distant network?)", w.SSID)
		}
	}
	q := url.Values{"ssid": {w.SSID}, "psk": {w.Password}}
	r, e = c.get(ctx, op, "/wifisave?"+q.Encode())
	if e != nil {
		return e
	}
	if r.status != http.StatusOK && r.status != http.StatusFound {
		return &Error{Op: op, Msg: fmt.Sprintf("/wifisave answered HTTP %d", r.status), Hint: "open http://" + c.host + "/ in a browser"}
	}
	res.saw("/wifisave → HTTP %d %s", r.status, r.header.Get("Location"))
	res.Steps = c.findSteps(res, w)
	return nil
}

// findSteps tells the user how the device is found after it joined.
func (c *apClient) findSteps(res *APResult, w WiFi) []string {
	steps := []string{fmt.Sprintf("Rejoin your normal Wi-Fi on this computer; the device joins %q within a minute.", w.SSID)}
	if res.MAC != "" {
		steps = append(steps, fmt.Sprintf("It does not report its new address: tuyaflash finds it by its MAC %s (ARP table, mDNS), or look for that MAC in your router's client list.", res.MAC))
	} else {
		steps = append(steps, "It does not report its new address: look for it in your router's client list.")
	}
	return steps
}

func (r *APResult) setMAC(s string) {
	if m, err := flasher.ParseMAC(s); err == nil {
		r.MAC = m.String()
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
