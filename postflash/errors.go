package postflash

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/internal/termsafe"
)

// Kind classifies what a probe saw; WaitOnline reports one per attempt.
type Kind string

// The kinds of outcome.
const (
	KindOK Kind = "ok"
	// Network: the device did not answer HTTP.
	KindTimeout     Kind = "timeout"     // no TCP answer: off, not joined, other address
	KindRefused     Kind = "refused"     // a host is there, port closed
	KindUnreachable Kind = "unreachable" // no route (not on the device's network)
	KindDNS         Kind = "dns"         // the name does not resolve
	KindSlow        Kind = "slow"        // connected, but no reply in time
	KindReset       Kind = "reset"       // connection reset while talking
	// The device answered, but not usefully.
	KindEmptyReply     Kind = "empty-reply"     // Tasmota's Referer gate (SetOption128 0)
	KindAuth           Kind = "auth"            // 401 / "Need user=…&password=…"
	KindUnknownCommand Kind = "unknown-command" // {"Command":"Unknown"} or "Error"
	KindNotJSON        Kind = "not-json"        // garbage where JSON was due
	KindNotFirmware    Kind = "not-firmware"    // a web server, but no known firmware
	KindUserMode       Kind = "user-mode"       // Tasmota WebServer 1: API disabled
)

// transient reports whether a device showing k may still be booting or
// joining the network, so that WaitOnline should try again.
func (k Kind) transient() bool {
	switch k {
	case KindTimeout, KindRefused, KindUnreachable, KindDNS, KindSlow, KindReset:
		return true
	}
	return false
}

// ProbeError explains why a device could not be identified or read, in
// words a user can act on. Identify returns it wrapped in a
// flasher.HintError that carries the same Hint, so flasher.Hint works.
type ProbeError struct {
	Host string
	// Op is the request or probe that failed, e.g. "GET /cm?cmnd=Status 0".
	Op   string
	Kind Kind
	// Msg is the sentence the user reads, without the host.
	Msg string
	// Hint says what to do next.
	Hint string
	Err  error
}

// Error is the host and the sentence for the user.
func (e *ProbeError) Error() string {
	return termsafe.Clean(fmt.Sprintf("%s: %s", e.Host, e.Msg))
}

// Unwrap returns the underlying transport or parse error.
func (e *ProbeError) Unwrap() error { return e.Err }

// Is makes network-level failures match flasher.ErrNoLink (nothing
// answered) and malformed replies match flasher.ErrProtocol.
func (e *ProbeError) Is(target error) bool {
	switch target {
	case flasher.ErrNoLink:
		return e.Kind.transient()
	case flasher.ErrProtocol:
		return e.Kind == KindNotJSON
	}
	return false
}

// withHint wraps a ProbeError so that flasher.Hint finds its hint.
func withHint(e *ProbeError) error {
	if e.Hint == "" {
		return e
	}
	return &flasher.HintError{Err: e, Hint: e.Hint}
}

// KindOf returns the Kind of err's ProbeError, KindOK for nil, "" for other
// errors.
func KindOf(err error) Kind {
	if err == nil {
		return KindOK
	}
	var pe *ProbeError
	if errors.As(err, &pe) {
		return pe.Kind
	}
	return ""
}

// netKind classifies a transport error. connected tells whether a TCP
// connection had been established (then a timeout means a slow device).
func netKind(err error, connected bool) Kind {
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr):
		return KindDNS
	case errors.Is(err, syscall.ECONNREFUSED):
		return KindRefused
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, syscall.EHOSTDOWN), errors.Is(err, syscall.ENETDOWN):
		return KindUnreachable
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return KindReset
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		strings.Contains(err.Error(), "server closed idle connection"): // net/http's name for a close before any reply
		if connected {
			return KindEmptyReply
		}
		return KindReset
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), isTimeout(err):
		if connected {
			return KindSlow
		}
		return KindTimeout
	}
	if connected {
		return KindReset
	}
	return KindUnreachable
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// netProbeError builds the user's message for a transport failure.
func netProbeError(host, op string, kind Kind, err error, timeout string) *ProbeError {
	pe := &ProbeError{Host: host, Op: op, Kind: kind, Err: err}
	port := "80"
	if _, pt, err := net.SplitHostPort(host); err == nil && pt != "" {
		port = pt
	}
	switch kind {
	case KindTimeout:
		pe.Msg = "no answer within " + timeout + ": the device is off, has not joined the network yet, or has another address"
		pe.Hint = "check the address in your router's DHCP list (look for the device's MAC); a device flashed a moment ago needs a power cycle without GPIO0 held and up to a minute to join"
	case KindRefused:
		pe.Msg = "connection refused on port " + port + ": a host is at this address but it runs no web server there"
		pe.Hint = "the address may now belong to another device (DHCP); check the router's client list for the device's MAC"
	case KindUnreachable:
		pe.Msg = "no route to the device (" + shortErr(err) + ")"
		pe.Hint = "this computer is not on the device's network: rejoin your normal Wi-Fi if you are still on the device's access point"
	case KindDNS:
		pe.Msg = "the name does not resolve"
		pe.Hint = "use the device's IP address; .local names need mDNS, which Tasmota has off by default (SetOption55 0)"
	case KindSlow:
		pe.Msg = "accepted the connection but sent no reply within " + timeout
		pe.Hint = "the device is busy or hung: wait a little and retry; power-cycle it if this persists"
	case KindReset:
		pe.Msg = "closed the connection without a reply (" + shortErr(err) + ")"
		pe.Hint = "the device may be restarting: wait a few seconds and retry"
	default:
		pe.Msg = shortErr(err)
	}
	return pe
}

// shortErr drops url.Error's "Get <url>:" prefix, which would repeat the
// request (and could carry a password in the query), keeping the cause.
func shortErr(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		err = oe.Err
	}
	return err.Error()
}
