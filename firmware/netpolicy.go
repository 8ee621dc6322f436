package firmware

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/internal/netguard"
)

// Downloads (the catalogue from --manifest URL, firmware images into the
// cache) go over HTTPS. Plain HTTP is taken only when the user allows it
// (--allow-http: a mirror on the LAN) or when the address is this machine
// (a loopback address or "localhost": nothing crosses a network), and the
// rule holds for every redirect too: an HTTPS address that redirects to
// HTTP elsewhere is refused. Checksums protect pinned files either way;
// HTTPS protects what is pinned on first download and the catalogue itself.

// ErrInsecureURL: a download address is not HTTPS (nor allowed HTTP).
var ErrInsecureURL = errors.New("not an HTTPS address")

// StallTimeout is how long a download may go without receiving a byte
// before it is cut (and resumed by the next attempt).
const StallTimeout = 60 * time.Second

// manifestTimeout bounds the whole download of a catalogue (at most 4 MiB).
const manifestTimeout = 2 * time.Minute

// CheckURL tells whether rawURL may be downloaded from: https, or http
// when allowHTTP or the host is this machine. The error matches
// ErrInsecureURL and flasher.ErrRefused and names the flag.
func CheckURL(rawURL string, allowHTTP bool) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("%q: %w", rawURL, err)
	}
	return checkURL(u, allowHTTP)
}

func checkURL(u *url.URL, allowHTTP bool) error {
	switch strings.ToLower(u.Scheme) {
	case "https":
		return nil
	case "http":
		if allowHTTP || netguard.IsLoopback(u.Hostname()) {
			return nil
		}
		return &flasher.HintError{
			Err:  fmt.Errorf("%s: %w: plain HTTP can be changed by anyone on the way: %w", redactURL(u), ErrInsecureURL, flasher.ErrRefused),
			Hint: "use the https:// address; for a mirror on your own network that has no HTTPS, pass --allow-http",
		}
	}
	return fmt.Errorf("%s: %w: only https:// (and http:// with --allow-http) can be downloaded: %w", redactURL(u), ErrInsecureURL, flasher.ErrRefused)
}

// redactURL drops a password from an address before it is printed.
func redactURL(u *url.URL) string { return u.Redacted() }

// NewHTTPClient is the client downloads use when the caller gives none:
// the system's proxy settings, 30 s to connect and to get the reply's
// headers (a slow download is not cut as long as bytes flow; StallTimeout
// cuts one that stops), at most 10 redirects, each checked by CheckURL.
func NewHTTPClient(allowHTTP bool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 30 * time.Second
	tr.TLSHandshakeTimeout = 30 * time.Second
	tr.MaxResponseHeaderBytes = 64 << 10
	tr.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return withPolicy(&http.Client{Transport: tr}, allowHTTP)
}

// withPolicy returns a copy of c whose redirects are checked by CheckURL
// (after c's own redirect rule, or the default limit of 10).
func withPolicy(c *http.Client, allowHTTP bool) *http.Client {
	if c == nil {
		return NewHTTPClient(allowHTTP)
	}
	cc := *c
	prev := c.CheckRedirect
	cc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if err := checkURL(req.URL, allowHTTP); err != nil {
			return fmt.Errorf("redirected to an address that is refused: %w", err)
		}
		if prev != nil {
			return prev(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &cc
}

// errStalled ends a download that stopped sending.
var errStalled = errors.New("no data received")

// stallReader cuts a body that delivers nothing for timeout: every read
// that returns data re-arms the timer; when it fires, cancel ends the
// request, which unblocks the read.
type stallReader struct {
	r       io.Reader
	timer   *time.Timer
	timeout time.Duration
}

func newStallReader(r io.Reader, timeout time.Duration, cancel context.CancelCauseFunc) *stallReader {
	return &stallReader{r: r, timeout: timeout, timer: time.AfterFunc(timeout, func() {
		cancel(fmt.Errorf("%w for %s", errStalled, timeout))
	})}
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.timer.Reset(s.timeout)
	}
	return n, err
}

func (s *stallReader) stop() { s.timer.Stop() }
