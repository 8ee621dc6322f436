package postflash

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tuyaflash/tuyaflash/internal/termsafe"
)

// maxBody bounds what is read of a reply; Status 0 is about 3 KiB.
const maxBody = 1 << 20

// prober talks HTTP to one device.
type prober struct {
	host   string // host[:port] as addressed, without scheme or path
	name   string // host without port
	opts   Options
	client *http.Client

	// base ends with the Identify call; net/http dials, which outlive
	// their request, end with it.
	base context.Context

	mu     sync.Mutex
	remote string // IP of the last connection, when known
}

// splitHost accepts "192.168.1.5", "192.168.1.5:8080", "plug.local",
// "http://192.168.1.5/" and returns host[:port] and the bare host name.
func splitHost(host string) (string, string, error) {
	h := strings.TrimSpace(host)
	if i := strings.Index(h, "://"); i >= 0 {
		h = h[i+3:]
	}
	if i := strings.IndexAny(h, "/?#"); i >= 0 {
		h = h[:i]
	}
	if h == "" {
		return "", "", fmt.Errorf("no device address given (want an IP address or host name, e.g. 192.168.1.50)")
	}
	u, err := url.Parse("http://" + h)
	if err != nil || u.Hostname() == "" || u.User != nil {
		return "", "", fmt.Errorf("%q is not a device address (want an IP address or host name, e.g. 192.168.1.50)", host)
	}
	return u.Host, u.Hostname(), nil
}

func newProber(host string, opts Options) (*prober, error) {
	h, name, err := splitHost(host)
	if err != nil {
		return nil, err
	}
	p := &prober{host: h, name: name, opts: opts, base: context.Background()}
	p.client = opts.Client
	if p.client == nil {
		p.client = &http.Client{
			Transport: &http.Transport{
				Proxy:                  nil, // a device on the LAN is never behind the user's proxy
				DialContext:            p.dialRecord,
				DisableKeepAlives:      true,
				DisableCompression:     true,
				MaxResponseHeaderBytes: 64 << 10,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return p, nil
}

// dialRecord dials and remembers the peer's IP, which the Referer retry and
// Result.IP use when the device was addressed by name. The dial has its own
// timeout and ends with the Identify call: net/http lets a dial outlive its
// request, and a dead device would keep it going for the system's two
// minutes.
func (p *prober) dialRecord(ctx context.Context, network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.timeout())
	defer cancel()
	stop := context.AfterFunc(p.base, cancel)
	defer stop()
	c, err := p.opts.dial(ctx, network, addr)
	if err == nil {
		if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			p.mu.Lock()
			p.remote = ta.IP.String()
			p.mu.Unlock()
		}
	}
	return c, err
}

func (p *prober) remoteIP() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.remote
}

// reply is a complete HTTP answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r *reply) contentType() string {
	ct := r.header.Get("Content-Type")
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.TrimSpace(ct)
}

// snippet is the start of the body for messages, on one line.
func (r *reply) snippet() string {
	s := strings.Join(strings.Fields(string(r.body)), " ")
	if len(s) > 60 {
		s = strings.ToValidUTF8(s[:60], "") + "…"
	}
	return termsafe.Clean(s)
}

// authMode says how a request authenticates.
type authMode int

const (
	authNone      authMode = iota
	authBasic              // send Basic up front when a password is known (Tasmota, OpenBeken)
	authChallenge          // answer a 401 challenge (Basic or Digest) when a password is known (ESPHome)
)

// request describes one HTTP exchange.
type request struct {
	method string
	path   string // escaped path and query
	op     string // what messages call it, without credentials
	header http.Header
	auth   authMode
	// firstEvent reads only the first server-sent event of an endless
	// text/event-stream body.
	firstEvent bool
}

// do performs r and reads the whole reply. Failures come back as
// *ProbeError.
func (p *prober) do(ctx context.Context, r request) (*reply, error) {
	if r.method == "" {
		r.method = http.MethodGet
	}
	rep, err := p.once(ctx, r, "")
	if err != nil || rep.status != http.StatusUnauthorized || r.auth != authChallenge || p.opts.Password == "" {
		return rep, err
	}
	authz, err := p.answerChallenge(rep.header.Values("WWW-Authenticate"), r)
	if err != nil {
		return rep, nil // caller reports the 401
	}
	return p.once(ctx, r, authz)
}

func (p *prober) answerChallenge(values []string, r request) (string, error) {
	for _, ch := range parseChallenges(values) {
		switch ch.scheme {
		case "digest":
			return digestAuthorization(ch, r.method, uriOf(r.path), p.opts.user(), p.opts.Password, newCnonce())
		case "basic":
			req := &http.Request{Header: http.Header{}}
			req.SetBasicAuth(p.opts.user(), p.opts.Password)
			return req.Header.Get("Authorization"), nil
		}
	}
	return "", errors.New("no usable challenge")
}

func uriOf(path string) string {
	if path == "" {
		return "/"
	}
	return path
}

func (p *prober) once(ctx context.Context, r request, authz string) (*reply, error) {
	timeout := p.opts.timeout()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var connected atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { connected.Store(true) },
	})
	req, err := http.NewRequestWithContext(ctx, r.method, "http://"+p.host+r.path, nil)
	if err != nil {
		return nil, &ProbeError{Host: p.host, Op: r.op, Kind: KindNotFirmware, Msg: "bad request: " + err.Error(), Err: err}
	}
	req.Header.Set("User-Agent", "tuyaflash")
	for k, v := range r.header {
		req.Header[k] = v
	}
	switch {
	case authz != "":
		req.Header.Set("Authorization", authz)
	case r.auth == authBasic && p.opts.Password != "":
		req.SetBasicAuth(p.opts.user(), p.opts.Password)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, netProbeError(p.host, r.op, netKind(err, connected.Load()), err, timeout.String())
	}
	defer resp.Body.Close()
	var body []byte
	if r.firstEvent && resp.StatusCode == http.StatusOK {
		body, err = readFirstEvent(io.LimitReader(resp.Body, maxBody))
	} else {
		body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody))
	}
	if err != nil && len(body) == 0 {
		return nil, netProbeError(p.host, r.op, netKind(err, true), err, timeout.String())
	}
	return &reply{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// cmEscape encodes a Tasmota command for the query: spaces as %20, ";" as
// %3B, as the Tasmota documentation writes them.
func cmEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// cm sends a command to the Tasmota-style /cm endpoint (Tasmota and
// OpenBeken), always with the Referer Tasmota's SetOption128 gate wants,
// and with the password both as Basic auth and as user/password parameters
// (Tasmota accepts either, OpenBeken only Basic).
func (p *prober) cm(ctx context.Context, cmnd, referer string) (*reply, error) {
	q := ""
	if p.opts.Password != "" {
		q = "user=" + cmEscape(p.opts.user()) + "&password=" + cmEscape(p.opts.Password) + "&"
	}
	if referer == "" {
		referer = "http://" + p.host + "/"
	}
	return p.do(ctx, request{
		path:   "/cm?" + q + "cmnd=" + cmEscape(cmnd),
		op:     "GET /cm?cmnd=" + cmnd,
		header: http.Header{"Referer": {referer}},
		auth:   authBasic,
	})
}

// dialProbe opens a TCP connection to port on the device, bounded by the
// probe timeout.
func (p *prober) dialProbe(ctx context.Context, port string) (net.Conn, error) {
	return p.dialRecord(ctx, "tcp", net.JoinHostPort(p.name, port))
}

// deadline is the absolute time a raw TCP exchange must end by.
func (p *prober) deadline() time.Time { return time.Now().Add(p.opts.timeout()) }
