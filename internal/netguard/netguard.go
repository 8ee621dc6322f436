// Package netguard keeps tuyaflash's listeners on this machine: the
// simulated firmware's web servers, `tuyaflash sim --net` and `tuyaflash
// serve` listen on a loopback address unless the user asks for another
// one in so many words. A listener on every interface ("0.0.0.0:80", ":80",
// "[::]:80") would let anybody on the LAN — or on a café's Wi-Fi — reach a
// bench tool that reads secrets and writes flash.
package netguard

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// ErrNotLoopback: a listen address is not on this machine.
var ErrNotLoopback = errors.New("not a loopback address")

// CheckListen accepts addr ("host:port") when its host is a loopback IP
// address or "localhost", or when allowOther is set (the user asked for
// that address); an empty host, "0.0.0.0", "::" or a LAN address are
// refused with ErrNotLoopback, and flag names the option that allows them
// in the message.
func CheckListen(addr string, allowOther bool, flag string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if allowOther || IsLoopback(host) {
		return nil
	}
	what := "the LAN"
	if host == "" || host == "0.0.0.0" || host == "::" {
		what = "every network this computer is on"
	}
	msg := fmt.Sprintf("listen address %q: %v: it would be reachable from %s", addr, ErrNotLoopback, what)
	if flag != "" {
		msg += "; " + flag + " allows it"
	}
	return &guardError{msg}
}

type guardError struct{ msg string }

func (e *guardError) Error() string        { return e.msg }
func (e *guardError) Is(target error) bool { return target == ErrNotLoopback }

// IsLoopback reports whether host (an IP address without port, or a name)
// is this machine: "localhost" or a loopback address (127.0.0.0/8, ::1).
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && a.Unmap().IsLoopback()
}

// CheckListener checks, after the fact, the address a listener got (a
// name such as "localhost" may resolve to something else on a strange
// system).
func CheckListener(l net.Listener, allowOther bool, flag string) error {
	return CheckListen(l.Addr().String(), allowOther, flag)
}
