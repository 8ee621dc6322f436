package postflash

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tuyaflash/tuyaflash/internal/termsafe"
)

// A one-shot mDNS query (RFC 6762 §5.1 "legacy unicast"): one DNS question
// for the PTR records of a DNS-SD service, sent from an ephemeral port to
// 224.0.0.251:5353; responders answer by unicast to that port with the PTR,
// SRV, TXT and A records of their instance. That is all tuyaflash needs
// (ESPHome's _esphomelib._tcp TXT carries version and MAC), in about 200
// lines of standard library instead of a resolver package and its two
// dependencies, and the destination address can point at a test responder.

// DefaultMDNSAddr is the mDNS IPv4 group and port.
const DefaultMDNSAddr = "224.0.0.251:5353"

// ESPHomeService is the DNS-SD service of ESPHome's native API.
const ESPHomeService = "_esphomelib._tcp"

// MDNSService is one DNS-SD instance seen in the answers.
type MDNSService struct {
	// Instance is the full instance name, e.g. "plug._esphomelib._tcp.local".
	Instance string
	// Host is the SRV target, e.g. "plug.local".
	Host  string
	Port  int
	Addrs []netip.Addr
	// TXT holds the key=value strings of the TXT record.
	TXT map[string]string
	// From is the address the answer came from.
	From netip.Addr
}

// MDNSOptions tune BrowseMDNS.
type MDNSOptions struct {
	// Addr is where the query goes (default DefaultMDNSAddr).
	Addr string
	// Wait is how long answers are collected (default 1.5 s).
	Wait time.Duration
	// Match, when set, ends the wait as soon as an instance it accepts
	// has answered.
	Match func(MDNSService) bool
}

const (
	dnsTypeA    = 1
	dnsTypePTR  = 12
	dnsTypeTXT  = 16
	dnsTypeAAAA = 28
	dnsTypeSRV  = 33
)

// BrowseMDNS asks once for the instances of service (e.g. ESPHomeService)
// and returns those that answered within the wait, sorted by instance name.
func BrowseMDNS(ctx context.Context, service string, o MDNSOptions) ([]MDNSService, error) {
	addr := o.Addr
	if addr == "" {
		addr = DefaultMDNSAddr
	}
	wait := o.Wait
	if wait <= 0 {
		wait = 1500 * time.Millisecond
	}
	dst, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		return nil, fmt.Errorf("mDNS address %q: %w", addr, err)
	}
	conn, err := net.ListenUDP("udp4", nil)
	if err != nil {
		return nil, fmt.Errorf("mDNS: %w", err)
	}
	defer conn.Close()
	qname := strings.TrimSuffix(service, ".") + ".local."
	id := uint16(rand.Uint32())
	if _, err := conn.WriteToUDP(buildQuery(id, qname, dnsTypePTR), dst); err != nil {
		return nil, fmt.Errorf("mDNS query to %s: %w", addr, err)
	}
	end := time.Now().Add(wait)
	if d, ok := ctx.Deadline(); ok && d.Before(end) {
		end = d
	}
	byName := map[string]*MDNSService{}
	hosts := map[string][]netip.Addr{}
	buf := make([]byte, 9000)
	for {
		_ = conn.SetReadDeadline(end)
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			break
		}
		msg, err := parseDNS(buf[:n])
		if err != nil || !msg.response || (msg.id != id && msg.id != 0) {
			continue
		}
		collect(msg, strings.ToLower(qname), from.Addr().Unmap(), byName, hosts)
		if ctx.Err() != nil || (o.Match != nil && slices.ContainsFunc(services(byName, hosts), o.Match)) {
			break
		}
	}
	return services(byName, hosts), ctx.Err()
}

// services lists the instances seen so far with their host addresses.
func services(byName map[string]*MDNSService, hosts map[string][]netip.Addr) []MDNSService {
	var out []MDNSService
	for _, s := range byName {
		c := *s
		c.Addrs = append(slices.Clone(s.Addrs), hosts[strings.ToLower(s.Host)]...)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Instance < out[j].Instance })
	return out
}

// Caps on what one query collects: a hostile responder flooding answers
// for the wait (1.5 s) must not make tuyaflash hold more than this.
const (
	maxMDNSInstances = 64
	maxMDNSTXT       = 64
	maxMDNSAddrs     = 16
)

// collect files the records of one answer. Names and TXT strings come from
// any host on the LAN: they are made safe to print (termsafe) here.
func collect(msg *dnsMsg, qname string, from netip.Addr, byName map[string]*MDNSService, hosts map[string][]netip.Addr) {
	var spill MDNSService // takes what is over the caps
	get := func(name string) *MDNSService {
		k := strings.ToLower(name)
		s := byName[k]
		if s == nil {
			if len(byName) >= maxMDNSInstances {
				spill = MDNSService{TXT: map[string]string{}}
				return &spill
			}
			s = &MDNSService{Instance: termsafe.Clean(strings.TrimSuffix(name, ".")), TXT: map[string]string{}, From: from}
			byName[k] = s
		}
		return s
	}
	for _, rr := range msg.records {
		switch rr.typ {
		case dnsTypePTR:
			if strings.ToLower(rr.name) == qname {
				get(rr.target)
			}
		case dnsTypeSRV:
			if strings.HasSuffix(strings.ToLower(rr.name), "."+qname) {
				s := get(rr.name)
				s.Host, s.Port = termsafe.Clean(strings.TrimSuffix(rr.target, ".")), rr.port
			}
		case dnsTypeTXT:
			if strings.HasSuffix(strings.ToLower(rr.name), "."+qname) {
				s := get(rr.name)
				for _, kv := range rr.txt {
					k, v, _ := strings.Cut(kv, "=")
					if k = termsafe.Clean(strings.ToLower(k)); len(s.TXT) < maxMDNSTXT || s.TXT[k] != "" {
						s.TXT[k] = termsafe.Clean(v)
					}
				}
			}
		case dnsTypeA, dnsTypeAAAA:
			if !rr.addr.IsValid() {
				continue // address data of the wrong length
			}
			k := termsafe.Clean(strings.ToLower(strings.TrimSuffix(rr.name, ".")))
			if len(hosts[k]) < maxMDNSAddrs && (hosts[k] != nil || len(hosts) < maxMDNSInstances) {
				hosts[k] = append(hosts[k], rr.addr)
			}
		}
	}
}

func buildQuery(id uint16, name string, qtype uint16) []byte {
	b := make([]byte, 12, 64)
	binary.BigEndian.PutUint16(b[0:], id)
	binary.BigEndian.PutUint16(b[4:], 1) // QDCOUNT
	b = appendName(b, name)
	b = binary.BigEndian.AppendUint16(b, qtype)
	return binary.BigEndian.AppendUint16(b, 0x8001) // class IN, unicast response wanted
}

func appendName(b []byte, name string) []byte {
	for _, label := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		b = append(b, byte(len(label)))
		b = append(b, label...)
	}
	return append(b, 0)
}

type dnsRR struct {
	name   string
	typ    uint16
	target string // PTR, SRV
	port   int    // SRV
	txt    []string
	addr   netip.Addr
}

type dnsMsg struct {
	id       uint16
	response bool
	records  []dnsRR // answers and additionals alike
}

var errDNS = errors.New("malformed DNS message")

func parseDNS(b []byte) (*dnsMsg, error) {
	if len(b) < 12 {
		return nil, errDNS
	}
	m := &dnsMsg{id: binary.BigEndian.Uint16(b), response: b[2]&0x80 != 0}
	qd := int(binary.BigEndian.Uint16(b[4:]))
	rrs := int(binary.BigEndian.Uint16(b[6:])) + int(binary.BigEndian.Uint16(b[8:])) + int(binary.BigEndian.Uint16(b[10:]))
	off := 12
	for range qd {
		_, n, err := readName(b, off)
		if err != nil || n+4 > len(b) {
			return nil, errDNS
		}
		off = n + 4
	}
	for range rrs {
		name, n, err := readName(b, off)
		if err != nil || n+10 > len(b) {
			return nil, errDNS
		}
		rr := dnsRR{name: name, typ: binary.BigEndian.Uint16(b[n:])}
		rdlen := int(binary.BigEndian.Uint16(b[n+8:]))
		start := n + 10
		if start+rdlen > len(b) {
			return nil, errDNS
		}
		data := b[start : start+rdlen]
		switch rr.typ {
		case dnsTypePTR:
			rr.target, _, err = readName(b, start)
		case dnsTypeSRV:
			if rdlen < 7 {
				return nil, errDNS
			}
			rr.port = int(binary.BigEndian.Uint16(data[4:]))
			rr.target, _, err = readName(b, start+6)
		case dnsTypeTXT:
			for i := 0; i < len(data); {
				l := int(data[i])
				if i+1+l > len(data) {
					return nil, errDNS
				}
				if l > 0 {
					rr.txt = append(rr.txt, string(data[i+1:i+1+l]))
				}
				i += 1 + l
			}
		case dnsTypeA, dnsTypeAAAA:
			if a, ok := netip.AddrFromSlice(data); ok {
				rr.addr = a
			}
		}
		if err != nil {
			return nil, errDNS
		}
		m.records = append(m.records, rr)
		off = start + rdlen
	}
	return m, nil
}

// readName reads a possibly compressed name at off; it returns the name
// with a trailing dot and the offset after the name's bytes in place.
// Names longer than DNS allows (255 bytes, RFC 1035 §2.3.4) are refused.
func readName(b []byte, off int) (string, int, error) {
	var labels []string
	size := 0
	end := -1
	for jumps := 0; ; {
		if off >= len(b) {
			return "", 0, errDNS
		}
		l := int(b[off])
		switch {
		case l == 0:
			if end < 0 {
				end = off + 1
			}
			return strings.Join(labels, ".") + ".", end, nil
		case l&0xC0 == 0xC0:
			if off+1 >= len(b) || jumps > 16 {
				return "", 0, errDNS
			}
			if end < 0 {
				end = off + 2
			}
			off = int(binary.BigEndian.Uint16(b[off:]) & 0x3FFF)
			jumps++
		case l&0xC0 != 0:
			return "", 0, errDNS
		default:
			if size += 1 + l; off+1+l > len(b) || size > 255 {
				return "", 0, errDNS
			}
			labels = append(labels, string(b[off+1:off+1+l]))
			off += 1 + l
		}
	}
}

func formatTXT(t map[string]string) string {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + t[k]
	}
	return strings.Join(parts, " ")
}

// mdnsLookup finds the ESPHome instance that is this device: the answer
// came from its address, lists its address, or carries its name.
func (p *prober) mdnsLookup(ctx context.Context, res *Result) (MDNSService, bool) {
	ips := map[netip.Addr]bool{}
	for _, s := range []string{p.name, p.remoteIP()} {
		if a, err := netip.ParseAddr(s); err == nil {
			ips[a.Unmap()] = true
		}
	}
	name := strings.ToLower(strings.TrimSuffix(strings.TrimSuffix(p.name, "."), ".local"))
	isDevice := func(s MDNSService) bool {
		if ips[s.From] {
			return true
		}
		for _, a := range s.Addrs {
			if ips[a.Unmap()] {
				return true
			}
		}
		host := strings.ToLower(strings.TrimSuffix(s.Host, ".local"))
		inst, _, _ := strings.Cut(strings.ToLower(s.Instance), ".")
		return name != "" && (host == name || inst == name)
	}
	svcs, err := BrowseMDNS(ctx, ESPHomeService, MDNSOptions{Addr: p.opts.MDNSAddr, Wait: min(p.opts.timeout(), 1500*time.Millisecond), Match: isDevice})
	if i := slices.IndexFunc(svcs, isDevice); i >= 0 {
		return svcs[i], true
	}
	if err != nil {
		res.saw("mDNS: %v", err)
	} else {
		res.saw("mDNS: %d %s instance(s) answered, none is this device", len(svcs), ESPHomeService)
	}
	return MDNSService{}, false
}
