package provision

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/postflash"
)

// ARPEntry is one line of the kernel's neighbour table.
type ARPEntry struct {
	IP     netip.Addr
	MAC    flasher.MAC
	Device string
}

// ParseARP reads Linux's /proc/net/arp:
//
//	IP address       HW type     Flags       HW address            Mask     Device
//	192.168.1.112    0x1         0x2         a4:cf:12:c6:58:cc     *        wlan0
//
// Incomplete entries (flags 0x0, all-zero address) are left out.
func ParseARP(r io.Reader) ([]ARPEntry, error) {
	var out []ARPEntry
	sc := bufio.NewScanner(r)
	first := true
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if first {
			first = false
			if len(f) > 0 && f[0] == "IP" {
				continue
			}
		}
		if len(f) < 6 || f[2] == "0x0" {
			continue
		}
		ip, err := netip.ParseAddr(f[0])
		if err != nil {
			continue
		}
		m, err := flasher.ParseMAC(f[3])
		if err != nil || m == (flasher.MAC{}) {
			continue
		}
		out = append(out, ARPEntry{IP: ip, MAC: m, Device: f[5]})
	}
	return out, sc.Err()
}

// FindOptions tune FindByMAC.
type FindOptions struct {
	// ARPFile is the neighbour table (default /proc/net/arp).
	ARPFile string
	// Subnet, when valid, is touched first: one UDP datagram to the
	// discard port of every address (at most /22), so that the kernel
	// resolves them and the table learns the device's entry.
	Subnet netip.Prefix
	// MDNS also asks mDNS for ESPHome nodes (their TXT carries the MAC).
	MDNS     bool
	MDNSAddr string
	// Wait is how long replies are awaited after the touch and for mDNS
	// (default 2 s).
	Wait time.Duration
	// Browse replaces postflash.BrowseMDNS (tests).
	Browse func(ctx context.Context, service string, o postflash.MDNSOptions) ([]postflash.MDNSService, error)
}

// Found says where a device is and how it was found.
type Found struct {
	IP  netip.Addr
	Via string
}

// FindByMAC looks for the device with MAC mac on the local network: in the
// neighbour table (after touching Subnet, if given) and, if allowed, in
// ESPHome's mDNS answers.
func FindByMAC(ctx context.Context, mac flasher.MAC, o FindOptions) (*Found, error) {
	if ph, why := mac.Placeholder(); ph {
		return nil, withHint(&Error{Op: "find by MAC", Msg: fmt.Sprintf("%s is a placeholder address (%s) that many devices share", mac, why),
			Hint: "use the MAC printed on the module or in the Tuya app"})
	}
	if o.ARPFile == "" {
		o.ARPFile = "/proc/net/arp"
	}
	if o.Wait <= 0 {
		o.Wait = 2 * time.Second
	}
	if f := lookARP(o.ARPFile, mac); f != nil {
		return f, nil
	}
	touched := 0
	if o.Subnet.IsValid() {
		n, err := touch(ctx, o.Subnet)
		if err != nil {
			return nil, withHint(&Error{Op: "find by MAC", Msg: err.Error(), Hint: "give the subnet of your network, e.g. 192.168.1.0/24"})
		}
		touched = n
		if err := sleep(ctx, o.Wait); err != nil {
			return nil, err
		}
		if f := lookARP(o.ARPFile, mac); f != nil {
			return f, nil
		}
	}
	if o.MDNS {
		browse := o.Browse
		if browse == nil {
			browse = postflash.BrowseMDNS
		}
		want := strings.ToLower(mac.Compact())
		match := func(s postflash.MDNSService) bool { return strings.EqualFold(s.TXT["mac"], want) }
		svcs, _ := browse(ctx, postflash.ESPHomeService, postflash.MDNSOptions{Addr: o.MDNSAddr, Wait: o.Wait, Match: match})
		for _, s := range svcs {
			if !match(s) {
				continue
			}
			ip := s.From
			if len(s.Addrs) > 0 {
				ip = s.Addrs[0]
			}
			return &Found{IP: ip, Via: "mDNS " + s.Instance}, nil
		}
	}
	e := &Error{Op: "find by MAC", Msg: fmt.Sprintf("no device with MAC %s in the neighbour table", mac)}
	switch {
	case touched > 0:
		e.Msg += fmt.Sprintf(", even after touching the %d addresses of %s", touched, o.Subnet)
		e.Hint = "the device has not joined the network: check the Wi-Fi credentials and its power supply, or look for its access point"
	default:
		e.Hint = "let tuyaflash touch every address of your network first (give its subnet, e.g. 192.168.1.0/24), or look for the MAC in your router's client list"
	}
	return nil, withHint(e)
}

func lookARP(file string, mac flasher.MAC) *Found {
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	entries, _ := ParseARP(f)
	for _, e := range entries {
		if e.MAC == mac {
			return &Found{IP: e.IP, Via: "neighbour table (" + e.Device + ")"}
		}
	}
	return nil
}

// touch sends one UDP datagram to port 9 (discard) of every host address
// of p, so that the kernel resolves each address.
func touch(ctx context.Context, p netip.Prefix) (int, error) {
	p = p.Masked()
	if !p.Addr().Is4() || p.Bits() < 22 {
		return 0, fmt.Errorf("subnet %s: give an IPv4 network of at most 1024 addresses (/22 to /32)", p)
	}
	n := 0
	last := p.Addr()
	for a := p.Addr(); p.Contains(a); a = a.Next() {
		last = a
	}
	for a := p.Addr(); p.Contains(a); a = a.Next() {
		if p.Bits() < 31 && (a == p.Addr() || a == last) {
			continue // network and broadcast addresses
		}
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 9)))
		if err != nil {
			continue
		}
		_, _ = c.Write([]byte{0})
		c.Close()
		n++
	}
	return n, nil
}
