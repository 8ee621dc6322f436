package virtual

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"sync"

	"github.com/tuyaflash/tuyaflash/flasher"
)

// loopbackIP is a device's own loopback address, 127.84.x.y, derived from
// its id: Linux routes all of 127.0.0.0/8 to the loopback interface, so
// every virtual device gets an address of its own and the well-known ports
// of a real device (6053, 6668) can be told apart by host. Where the
// address cannot be bound (macOS without an alias) it is 127.0.0.1.
func loopbackIP(id string) string {
	h := sha256.Sum256([]byte("tuyaflash-virtual-ip/" + id))
	ip := fmt.Sprintf("127.84.%d.%d", 1+int(h[0])%254, 1+int(h[1])%254)
	if l, err := net.Listen("tcp", net.JoinHostPort(ip, "0")); err == nil {
		l.Close()
		return ip
	}
	return "127.0.0.1"
}

// addresses keeps the recorded addresses that can still be listened on
// and picks new ports (on the device's IP) for the others.
func addresses(id string, old Addrs) (Addrs, error) {
	ip := ""
	keep := func(addr string) (string, error) {
		if addr != "" {
			if h, _, err := net.SplitHostPort(addr); err == nil {
				if ip == "" {
					ip = h
				}
				if h == ip {
					if l, err := net.Listen("tcp", addr); err == nil {
						l.Close()
						return addr, nil
					}
				}
			}
		}
		if ip == "" {
			ip = loopbackIP(id)
		}
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return "", fmt.Errorf("virtual device network side on %s: %w", ip, err)
		}
		defer l.Close()
		return l.Addr().String(), nil
	}
	var a Addrs
	var err error
	for _, f := range []struct{ dst, src *string }{{&a.Station, &old.Station}, {&a.AP, &old.AP}, {&a.API, &old.API}, {&a.Tuya, &old.Tuya}} {
		if *f.dst, err = keep(*f.src); err != nil {
			return Addrs{}, err
		}
	}
	return a, nil
}

// The redirects of the virtual devices this process knows: each maps an
// address a client derives from a device's station address with a real
// device's fixed port (80, 6053, 6668) to where the device serves it.
var redirects = struct {
	sync.Mutex
	m map[string]func(string) string
}{m: map[string]func(string) string{}}

// register adds a device's redirect under key until unregister.
func register(key string, redirect func(string) string) (unregister func()) {
	redirects.Lock()
	redirects.m[key] = redirect
	redirects.Unlock()
	return func() {
		redirects.Lock()
		delete(redirects.m, key)
		redirects.Unlock()
	}
}

// Redirect maps addr to where a virtual device of this process serves it
// (ESPHome's native API on 6053, the Tuya port on 6668, the web server on
// 80, on the device's station host); other addresses come back unchanged.
func Redirect(addr string) string {
	redirects.Lock()
	defer redirects.Unlock()
	for _, r := range redirects.m {
		if to := r(addr); to != addr {
			return to
		}
	}
	return addr
}

// Dial dials addr through Redirect: the Dial of postflash and provision
// options that reaches the virtual devices like real ones.
func Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, Redirect(addr))
}

// Learn makes Redirect reach a simulator in another process (a `tuyaflash
// sim` on a pseudo-terminal) from what it said about itself (contract C2):
// its station host's ports 80, 6053 and 6668 go to its station, native API
// and Tuya port. unregister forgets it.
func Learn(v *flasher.Virtual) (unregister func()) {
	if v == nil {
		return func() {}
	}
	host, _, err := net.SplitHostPort(v.Net)
	if err != nil {
		return func() {}
	}
	to := map[string]string{}
	for port, dst := range map[string]string{"80": v.Net, "6053": v.API, "6668": v.Tuya} {
		if dst != "" {
			to[net.JoinHostPort(host, port)] = dst
		}
	}
	return register("c2:"+v.Net, func(addr string) string {
		if dst, ok := to[addr]; ok {
			return dst
		}
		return addr
	})
}
