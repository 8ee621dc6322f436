package serve

import (
	"crypto/subtle"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// The token travels in this header (scripts), this cookie (the page, once
// opened with ?token=) or the token query parameter.
const (
	TokenHeader = "X-Tuyaflash-Token"
	tokenCookie = "tuyaflash_token"
)

// guard applies the server's safety rules to every request:
//   - security headers on every answer (no framing, no referrer — the
//     page links to devices on the network —, scripts and styles from the
//     page's own origin only);
//   - when not exposed, the Host must be a loopback name or the address
//     listened on (a web page cannot reach the API through DNS
//     rebinding);
//   - API requests from another site's pages are refused;
//   - when exposed, every API request needs the token;
//   - a request that changes something (any method but GET and HEAD)
//     needs the token or to come from the page itself (same origin).
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		if !s.exposed && !s.hosts[strings.ToLower(hostOnly(r.Host))] {
			s.refuse(w, r, "unexpected Host "+r.Host+": open the page at the address printed when the server started")
			return
		}
		hasToken := s.hasToken(r)
		if hasToken && r.URL.Query().Get("token") != "" && !strings.HasPrefix(r.URL.Path, "/api/") {
			// The page was opened with the token: keep it in a
			// cookie for the page's own requests.
			http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: s.cfg.Token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		}
		if strings.HasPrefix(r.URL.Path, "/api/") {
			switch site := r.Header.Get("Sec-Fetch-Site"); {
			case site != "" && site != "same-origin" && site != "none":
				s.refuse(w, r, "request from another site's page ("+site+") refused")
				return
			case s.exposed && !hasToken:
				s.refuse(w, r, "this server is reachable from the network: the API needs the token printed when it started")
				return
			case r.Method != http.MethodGet && r.Method != http.MethodHead && !hasToken && !sameOrigin(r):
				s.refuse(w, r, "a request that changes something needs the token (header "+TokenHeader+") or to come from the page itself")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) refuse(w http.ResponseWriter, r *http.Request, msg string) {
	s.cfg.Logf("refused %s %s: %s", r.Method, r.URL.Path, msg)
	writeError(w, http.StatusForbidden, codeForbidden, msg, "")
}

// hasToken reports whether r carries the token.
func (s *Server) hasToken(r *http.Request) bool {
	candidates := []string{r.Header.Get(TokenHeader), r.URL.Query().Get("token")}
	if c, err := r.Cookie(tokenCookie); err == nil {
		candidates = append(candidates, c.Value)
	}
	for _, c := range candidates {
		if c != "" && subtle.ConstantTimeCompare([]byte(c), []byte(s.cfg.Token)) == 1 {
			return true
		}
	}
	return false
}

// sameOrigin reports whether a browser says r comes from a page of this
// server: Sec-Fetch-Site, or for browsers without it an Origin naming
// this host.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin"
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return false
	}
	u, err := url.Parse(o)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

// hostOnly strips the port from a Host header.
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}
