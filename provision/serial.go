package provision

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/transport"
)

// Tasmota's serial console (support_tasmota.ino SerialInput) runs at
// 115200 baud, takes a command per line ended by LF (CR is ignored), keeps
// only printable ASCII and drops a whole line that holds a byte above 127;
// it logs every command as "CMD: <line>". SSId<x> and Password<x> store the
// value and restart; inside one Backlog both run before the restart. The
// boot log then says "WIF: Connecting to AP1 …", "WIF: Connected" and
// "HTP: Web server active on <host> with IP address <ip>" (192.168.4.1
// when Tasmota fell back to its own access point).

// ConsoleBaud is the rate of Tasmota's serial console.
const ConsoleBaud = 115200

// apIP is the address ESP firmwares give themselves in access-point mode.
const apIP = "192.168.4.1"

// SerialOptions tune Serial.
type SerialOptions struct {
	// Timeout bounds the wait for the IP address in the boot log after the
	// credentials were sent (default 90 s: restart, scan, DHCP).
	Timeout time.Duration
	// ConsoleWait bounds the wait for the console to answer Status 5
	// (default 5 s).
	ConsoleWait time.Duration
	// Line, when set, hears each console line as it arrives, the Wi-Fi
	// password masked.
	Line func(string)
}

// SerialResult is what the console told.
type SerialResult struct {
	// IP is the address the device got on the user's network.
	IP       string
	Hostname string
	// MAC is the station MAC from Status 5, read before the change.
	MAC string
	// Transcript holds the console lines, the Wi-Fi password masked.
	Transcript []string
}

// SerialPath opens the serial port name at 115200 baud and runs Serial.
func SerialPath(ctx context.Context, name string, w WiFi, o SerialOptions) (*SerialResult, error) {
	p, err := transport.Open(name, ConsoleBaud)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	return Serial(ctx, p, w, o)
}

// Serial gives Tasmota on an ESP8266 the Wi-Fi credentials over its serial
// console and reads the new IP from the boot log. The device must run
// Tasmota: power-cycled after flashing, GPIO0 released.
func Serial(ctx context.Context, p transport.Port, w WiFi, o SerialOptions) (*SerialResult, error) {
	cmds, e := consoleCommands(w)
	if e != nil {
		return nil, withHint(e)
	}
	if o.Timeout <= 0 {
		o.Timeout = 90 * time.Second
	}
	if o.ConsoleWait <= 0 {
		o.ConsoleWait = 5 * time.Second
	}
	if err := p.SetBaudRate(ConsoleBaud); err != nil {
		return nil, err
	}
	_ = p.ResetInputBuffer()
	res := &SerialResult{}
	c := &console{p: p, secret: w.Password, res: res, line: o.Line}

	// 1. Is Tasmota listening? Status 5 also tells the MAC.
	if err := c.send("Status 5"); err != nil {
		return res, err
	}
	alive, err := c.statusNET(ctx, time.Now().Add(o.ConsoleWait))
	if err != nil && !errors.Is(err, transport.ErrTimeout) {
		return res, err
	}
	if !alive {
		return res, withHint(c.silentError(o.ConsoleWait))
	}

	// 2. The credentials, then the boot log.
	for _, cmd := range cmds {
		if err := c.send(cmd); err != nil {
			return res, err
		}
	}
	return c.watchBoot(ctx, w, time.Now().Add(o.Timeout), o.Timeout)
}

// consoleCommands checks what Tasmota's console cannot carry and builds the
// command lines.
func consoleCommands(w WiFi) ([]string, *Error) {
	if err := w.validate(); err != nil {
		return nil, err
	}
	for _, v := range []struct{ what, s string }{{"network name", w.SSID}, {"password", w.Password}} {
		for _, r := range v.s {
			if r < 0x20 || r > 0x7E {
				// The password's characters are never quoted.
				shown := fmt.Sprintf(" %q,", r)
				if v.what == "password" {
					shown = " a character"
				}
				return nil, &Error{Op: "serial console", Msg: fmt.Sprintf("the %s holds%s which Tasmota's serial console drops (it takes printable ASCII only)", v.what, shown),
					Hint: "provision over the device's access point instead (--ap)"}
			}
		}
		if strings.TrimSpace(v.s) != v.s {
			return nil, &Error{Op: "serial console", Msg: fmt.Sprintf("the %s starts or ends with a space, which Tasmota strips", v.what),
				Hint: "provision over the device's access point instead (--ap)"}
		}
		switch v.s {
		case "0", "1", "2", `"`:
			return nil, &Error{Op: "serial console", Msg: fmt.Sprintf("the %s is one of Tasmota's shortcut values 0, 1, 2 or \" (reset to default / clear)", v.what),
				Hint: "provision over the device's access point instead (--ap)"}
		}
	}
	if w.Password == "" {
		// An open network: a password stored before stays (a fresh flash
		// has none).
		return []string{"SSID1 " + w.SSID}, nil
	}
	if strings.Contains(w.SSID, ";") || strings.Contains(w.Password, ";") {
		// Backlog would split at the ";": two commands, sent back to
		// back, both run before the restart they request.
		return []string{"Password1 " + w.Password, "SSID1 " + w.SSID}, nil
	}
	return []string{"Backlog SSID1 " + w.SSID + "; Password1 " + w.Password}, nil
}

// console reads and writes Tasmota's serial console line by line.
type console struct {
	p       transport.Port
	secret  string
	res     *SerialResult
	line    func(string)
	buf     []byte
	garbled int // bytes that were not text
	lines   int // text lines seen
}

func (c *console) mask(s string) string {
	if c.secret == "" {
		return s
	}
	return strings.ReplaceAll(s, c.secret, "****")
}

func (c *console) send(cmd string) error {
	if err := transport.WriteAll(c.p, []byte(cmd+"\n")); err != nil {
		return &Error{Op: "serial console", Msg: "cannot send to the device: " + err.Error(), Err: err,
			Hint: "check that the USB-TTL adapter is still plugged in"}
	}
	return nil
}

// next returns the next text line before the deadline; transport.ErrTimeout
// when none came.
func (c *console) next(ctx context.Context, deadline time.Time) (string, error) {
	tmp := make([]byte, 512)
	for {
		var raw []byte
		if i := bytes.IndexByte(c.buf, '\n'); i >= 0 {
			raw, c.buf = c.buf[:i], c.buf[i+1:]
		} else if len(c.buf) > 2048 { // no line ends in sight: garbage
			raw, c.buf = c.buf, nil
		}
		if raw != nil {
			if line := c.text(raw); line != "" {
				c.lines++
				masked := c.mask(line)
				c.res.Transcript = append(c.res.Transcript, masked)
				if c.line != nil {
					c.line(masked)
				}
				return line, nil
			}
			continue
		}
		if err := ctx.Err(); err != nil {
			return "", err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return "", transport.ErrTimeout
		}
		if err := c.p.SetReadTimeout(min(left, 100*time.Millisecond)); err != nil {
			return "", err
		}
		n, err := c.p.Read(tmp)
		if err != nil {
			return "", &Error{Op: "serial console", Msg: "reading from the device failed: " + err.Error(), Err: err,
				Hint: "check that the USB-TTL adapter is still plugged in"}
		}
		c.buf = append(c.buf, tmp[:n]...)
	}
}

// text keeps the printable part of a line and counts the rest (the ROM
// boot messages at 74880 baud arrive as such garbage).
func (c *console) text(raw []byte) string {
	var b strings.Builder
	for _, x := range raw {
		switch {
		case x >= 0x20 && x <= 0x7E, x == '\t':
			b.WriteByte(x)
		case x == '\r':
		default:
			c.garbled++
		}
	}
	return strings.TrimSpace(b.String())
}

// timestamp is the "00:00:02.889 " (or older "00:00:02 ") log prefix.
var timestamp = regexp.MustCompile(`^\d{2}:\d{2}:\d{2}(?:\.\d{3})? `)

func stripTime(line string) string { return timestamp.ReplaceAllString(line, "") }

// statusNET waits for the console's answer to Status 5 and keeps the MAC
// and hostname. alive reports any sign of Tasmota.
func (c *console) statusNET(ctx context.Context, deadline time.Time) (alive bool, err error) {
	for {
		line, err := c.next(ctx, deadline)
		if err != nil {
			return alive, err
		}
		l := stripTime(line)
		if strings.HasPrefix(l, "CMD: ") {
			alive = true
		}
		i := strings.Index(l, `{"StatusNET"`)
		if i < 0 {
			continue
		}
		var st struct {
			StatusNET struct {
				Hostname, IPAddress, Mac string
			}
		}
		if json.Unmarshal([]byte(l[i:]), &st) == nil {
			if m, err := flasher.ParseMAC(st.StatusNET.Mac); err == nil {
				c.res.MAC = m.String()
			}
			c.res.Hostname = st.StatusNET.Hostname
		}
		return true, nil
	}
}

func (c *console) silentError(wait time.Duration) *Error {
	e := &Error{Op: "serial console"}
	switch {
	case c.lines == 0 && c.garbled == 0:
		e.Msg = fmt.Sprintf("nothing came back within %s: no Tasmota console at %d baud", wait, ConsoleBaud)
		e.Hint = "power-cycle the device with GPIO0 released (it is still in the flash bootloader otherwise); check that TX and RX are crossed and the adapter is at 3.3 V"
	case c.lines == 0:
		e.Msg = fmt.Sprintf("only garbled bytes came back (%d): the device is in its bootloader or talks at another baud rate", c.garbled)
		e.Hint = "power-cycle the device with GPIO0 released and try again"
	default:
		e.Msg = fmt.Sprintf("the device prints text but did not answer Status 5 like Tasmota (last line %q)", c.res.Transcript[len(c.res.Transcript)-1])
		e.Hint = "check that Tasmota was flashed; provision other firmwares over their access point (--ap)"
	}
	return e
}

// ipv4 finds the first IPv4 address in a line, with its port when one
// follows (a web server not on port 80, as on a virtual device).
var ipv4 = regexp.MustCompile(`\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?::\d{1,5})?\b`)

// webActive reads the English "Web server active on <host>[.local] with IP
// address <ip>"; other languages keep the "HTP: " tag and the address.
var webActive = regexp.MustCompile(`active on (\S+?)(?:\.local)? with IP`)

// watchBoot follows the restart until the web server reports its address.
func (c *console) watchBoot(ctx context.Context, w WiFi, deadline time.Time, timeout time.Duration) (*SerialResult, error) {
	res := c.res
	var accepted, restarted, notReached, apMode bool
	for {
		line, err := c.next(ctx, deadline)
		if errors.Is(err, transport.ErrTimeout) {
			break
		}
		if err != nil {
			return res, err
		}
		l := stripTime(line)
		lower := strings.ToLower(l)
		switch {
		case strings.HasPrefix(l, "CMD: ") && (strings.Contains(lower, "ssid1") || strings.Contains(lower, "password1")),
			strings.Contains(l, `"SSId1"`):
			accepted = true
		case strings.Contains(l, "Restarting"), strings.HasPrefix(l, "HDW: "), strings.HasPrefix(l, "Project "):
			restarted = accepted // a boot that was already under way does not count
		case strings.HasPrefix(l, "WIF: ") && strings.Contains(lower, "incorrect password") && restarted:
			// Only after the restart with the new credentials: before
			// it, the settings saved earlier are still being tried.
			return res, withHint(&Error{Op: "Wi-Fi", Msg: fmt.Sprintf("the device could not join %q: the network refused the password (%s)", w.SSID, l),
				Hint: "check the password (upper and lower case matter) and provision again"})
		case strings.HasPrefix(l, "WIF: ") && strings.Contains(lower, "cannot be reached"):
			notReached = true
		case strings.HasPrefix(l, "WIF: ") && strings.Contains(l, "WifiManager") && restarted:
			apMode = true
		case strings.HasPrefix(l, "HTP: ") && restarted:
			ip := ipv4.FindString(l)
			host, _, _ := strings.Cut(ip, ":")
			a, err := netip.ParseAddr(host)
			if err != nil || a.IsUnspecified() {
				continue
			}
			if host == apIP {
				apMode = true
				break // out of the switch; the loop ends below
			}
			res.IP = ip
			if m := webActive.FindStringSubmatch(l); m != nil {
				res.Hostname = m[1]
			}
			return res, nil
		}
		if apMode { // it serves its access point for minutes now
			break
		}
	}
	e := &Error{Op: "Wi-Fi"}
	switch {
	case !accepted && !restarted:
		e.Op, e.Msg = "serial console", "the device did not take the Wi-Fi command (no echo, no restart)"
		e.Hint = "check the transcript; power-cycle the device and try again"
	case apMode:
		e.Msg = fmt.Sprintf("the device could not join %q and opened its own access point for 3 minutes", w.SSID)
		e.Hint = "check the network name and password; the access point (tasmota-XXXXXX-####) also accepts them at http://192.168.4.1"
	case notReached:
		e.Msg = fmt.Sprintf("the device did not find the network %q", w.SSID)
		e.Hint = "ESP8266 needs a 2.4 GHz network in range; check the name (case matters)"
	default:
		e.Msg = fmt.Sprintf("the device did not report an IP address within %s", timeout)
		e.Hint = "check the transcript; a weak supply (the adapter's 3.3 V pin) often stops Wi-Fi: power the device properly"
	}
	return res, withHint(e)
}
