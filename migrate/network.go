package migrate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/postflash"
	"github.com/tuyaflash/tuyaflash/provision"
	"github.com/tuyaflash/tuyaflash/transport"
)

// LiveNetwork is the Network of the command line: packages postflash and
// provision over the real network, and the firmwares' HTTP APIs for pins
// (OpenBeken's /api/pins, Tasmota's Template and Module commands;
// postflash-and-ecosystem.md §1.5 and §2.2).
type LiveNetwork struct {
	// Probe holds the web credentials, the per-request timeout and the
	// dialer (tests) for every HTTP request.
	Probe  postflash.Options
	Find   provision.FindOptions
	AP     provision.APOptions
	Serial provision.SerialOptions
}

// Identify implements Network.
func (n LiveNetwork) Identify(ctx context.Context, host string) (*postflash.Result, error) {
	return postflash.Identify(ctx, host, n.Probe)
}

// WaitOnline implements Network.
func (n LiveNetwork) WaitOnline(ctx context.Context, host string, deadline time.Time, seen func(postflash.Attempt)) (*postflash.Result, error) {
	return postflash.WaitOnline(ctx, host, n.Probe, deadline, seen)
}

// FindByMAC implements Network.
func (n LiveNetwork) FindByMAC(ctx context.Context, mac flasher.MAC) (*provision.Found, error) {
	return provision.FindByMAC(ctx, mac, n.Find)
}

// ProvisionAP implements Network.
func (n LiveNetwork) ProvisionAP(ctx context.Context, fw postflash.Firmware, w provision.WiFi, apHost string) (*provision.APResult, error) {
	o := n.AP
	o.Host = apHost
	if o.Dial == nil {
		o.Dial = n.Probe.Dial
	}
	return provision.ProvisionAP(ctx, fw, w, o)
}

// ProvisionSerial implements Network.
func (n LiveNetwork) ProvisionSerial(ctx context.Context, p transport.Port, w provision.WiFi) (*provision.SerialResult, error) {
	return provision.Serial(ctx, p, w, n.Serial)
}

// obkPins is OpenBeken's /api/pins document.
type obkPins struct {
	RoleNames []string `json:"rolenames,omitempty"`
	Roles     []int    `json:"roles"`
	Channels  []int    `json:"channels"`
	// DeviceCommand is the short startup command (POST only).
	DeviceCommand string `json:"deviceCommand,omitempty"`
}

// ReadPins implements Network.
func (n LiveNetwork) ReadPins(ctx context.Context, host string, fw postflash.Firmware) (*PinConfig, error) {
	switch fw {
	case postflash.OpenBeken:
		var p obkPins
		if err := n.getJSON(ctx, host, "/api/pins", &p); err != nil {
			return nil, err
		}
		c := &PinConfig{}
		for pin, role := range p.Roles {
			if role == 0 {
				continue
			}
			pr := PinRole{Pin: pin, Role: role}
			if pin < len(p.Channels) {
				pr.Channel = p.Channels[pin]
			}
			if role < len(p.RoleNames) {
				pr.Name = p.RoleNames[role]
			}
			c.Pins = append(c.Pins, pr)
		}
		return c, nil
	case postflash.Tasmota:
		var mod struct{ Module map[string]string }
		if err := n.getJSON(ctx, host, tasmotaCmnd(n.Probe, "Module"), &mod); err != nil {
			return nil, err
		}
		if _, ok := mod.Module["0"]; !ok {
			return &PinConfig{}, nil // a built-in module, no template
		}
		var raw json.RawMessage
		if err := n.getJSON(ctx, host, tasmotaCmnd(n.Probe, "Template"), &raw); err != nil {
			return nil, err
		}
		return &PinConfig{Template: string(raw)}, nil
	}
	return nil, fmt.Errorf("pins of %s: %w", fw, flasher.ErrUnsupported)
}

// WritePins implements Network. OpenBeken keeps the roles of pins c does
// not name; Tasmota stores the template and activates it (Module 0), which
// restarts the device.
func (n LiveNetwork) WritePins(ctx context.Context, host string, fw postflash.Firmware, c *PinConfig) error {
	switch fw {
	case postflash.OpenBeken:
		var cur obkPins
		if err := n.getJSON(ctx, host, "/api/pins", &cur); err != nil {
			return err
		}
		p := obkPins{Roles: cur.Roles, Channels: cur.Channels, DeviceCommand: c.Startup}
		for _, pr := range c.Pins {
			if pr.Pin < 0 || pr.Pin >= len(p.Roles) || pr.Pin >= len(p.Channels) {
				return fmt.Errorf("pin P%d: the device has pins P0-P%d: %w", pr.Pin, len(p.Roles)-1, flasher.ErrRefused)
			}
			p.Roles[pr.Pin], p.Channels[pr.Pin] = pr.Role, pr.Channel
		}
		body, err := json.Marshal(p)
		if err != nil {
			return err
		}
		var reply struct {
			Success int    `json:"success"`
			Error   int    `json:"error"`
			Msg     string `json:"msg"`
		}
		if err := n.do(ctx, host, http.MethodPost, "/api/pins", body, &reply); err != nil {
			return err
		}
		if reply.Success != 200 {
			return fmt.Errorf("%s: POST /api/pins answered %d %q: %w", host, reply.Error, reply.Msg, flasher.ErrDevice)
		}
		return nil
	case postflash.Tasmota:
		// Backlog answers before its commands run (its replies go to
		// the log): any 200 is taken, the read-back tells.
		return n.getJSON(ctx, host, tasmotaCmnd(n.Probe, "Backlog Template "+c.Template+"; Module 0"), nil)
	}
	return fmt.Errorf("pins of %s: %w", fw, flasher.ErrUnsupported)
}

// tasmotaCmnd is the /cm request for a Tasmota command (Tasmota takes the
// credentials as query parameters).
func tasmotaCmnd(o postflash.Options, cmd string) string {
	q := url.Values{"cmnd": {cmd}}
	if o.Password != "" {
		user := o.User
		if user == "" {
			user = "admin"
		}
		q.Set("user", user)
		q.Set("password", o.Password)
	}
	return "/cm?" + q.Encode()
}

func (n LiveNetwork) getJSON(ctx context.Context, host, path string, v any) error {
	return n.do(ctx, host, http.MethodGet, path, nil, v)
}

// do sends one request and decodes the JSON reply into v (nil: any reply
// with status 200 will do). Errors name the host and path, never the query
// (it may hold a password).
func (n LiveNetwork) do(ctx context.Context, host, method, path string, body []byte, v any) error {
	timeout := n.Probe.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := n.Probe.Client
	if client == nil {
		dial := n.Probe.Dial
		if dial == nil {
			dial = (&net.Dialer{Timeout: timeout}).DialContext
		}
		// No proxy and no redirects: the password goes to the device only.
		client = &http.Client{Transport: &http.Transport{Proxy: nil, DialContext: dial, DisableKeepAlives: true},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+host+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Referer", "http://"+host+"/")
	req.Header.Set("User-Agent", "tuyaflash")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if n.Probe.Password != "" && !strings.HasPrefix(path, "/cm?") {
		user := n.Probe.User
		if user == "" {
			user = "admin"
		}
		req.SetBasicAuth(user, n.Probe.Password)
	}
	op := method + " " + strings.SplitN(path, "?", 2)[0]
	resp, err := client.Do(req)
	if err != nil {
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err // the URL may carry a password
		}
		return fmt.Errorf("%s %s: %w (%w)", host, op, flasher.ErrNoLink, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil && len(data) == 0 {
		return fmt.Errorf("%s %s: %w", host, op, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: HTTP %d: %w", host, op, resp.StatusCode, flasher.ErrDevice)
	}
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s %s: %w: %v", host, op, flasher.ErrProtocol, err)
	}
	return nil
}
