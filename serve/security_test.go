package serve

import (
	"net/http"
	"strings"
	"testing"
)

// TestGuard: what a request needs, on loopback and beyond.
func TestGuard(t *testing.T) {
	ts := newTestServer(t)
	for _, tc := range []struct {
		name         string
		method, path string
		headers      []string
		want         int
	}{
		{"the page", "GET", "/", nil, 200},
		{"a read from the page", "GET", "/api/info", []string{"Sec-Fetch-Site", "same-origin"}, 200},
		{"a read typed in the address bar", "GET", "/api/info", []string{"Sec-Fetch-Site", "none"}, 200},
		{"a read by a script (no browser headers)", "GET", "/api/devices", nil, 200},
		{"a read from another site's page", "GET", "/api/devices", []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"a read from another port on this machine", "GET", "/api/devices", []string{"Sec-Fetch-Site", "same-site"}, 403},
		{"DNS rebinding: another Host", "GET", "/api/devices", []string{"Host", "attacker.example:8231"}, 403},
		{"DNS rebinding of the page", "GET", "/", []string{"Host", "attacker.example"}, 403},
		{"localhost", "GET", "/api/info", []string{"Host", "localhost:8231"}, 200},
		{"IPv6 loopback", "GET", "/api/info", []string{"Host", "[::1]:8231"}, 200},
		{"a job from the page", "POST", "/api/jobs", nil, 202},
		{"a job from an older browser (Origin only)", "POST", "/api/jobs", []string{"Sec-Fetch-Site", "", "Origin", "http://127.0.0.1:8231"}, 202},
		{"a job from another site (Origin only)", "POST", "/api/jobs", []string{"Sec-Fetch-Site", "", "Origin", "http://attacker.example"}, 403},
		{"a job from another site", "POST", "/api/jobs", []string{"Sec-Fetch-Site", "cross-site", "Origin", "http://attacker.example"}, 403},
		{"a job by a script without the token", "POST", "/api/jobs", []string{"Sec-Fetch-Site", ""}, 403},
		{"a job by a script with the token", "POST", "/api/jobs", []string{"Sec-Fetch-Site", "", TokenHeader, "TOKEN"}, 202},
		{"a job by a script with a wrong token", "POST", "/api/jobs", []string{"Sec-Fetch-Site", "", TokenHeader, "0000"}, 403},
		{"a stop from another site, even with the token", "POST", "/api/jobs/1/stop", []string{"Sec-Fetch-Site", "cross-site", TokenHeader, "TOKEN"}, 403},
		{"a reveal by a script without the token", "POST", "/api/devices/reveal", []string{"Sec-Fetch-Site", ""}, 403},
		{"the page is not posted to", "POST", "/", nil, 405},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := append([]string(nil), tc.headers...)
			for i := range h {
				if h[i] == "TOKEN" {
					h[i] = ts.Token()
				}
			}
			body := ""
			if tc.method == "POST" && strings.HasPrefix(tc.path, "/api/") {
				// A port of its own: the jobs of earlier cases may run.
				body = `{"kind": "detect", "port": "/dev/tty-` + strings.ReplaceAll(tc.name, " ", "-") + `"}`
				if strings.Contains(tc.path, "reveal") {
					body = `{"key": "` + testBKKey + `"}`
				}
			}
			if tc.method == "POST" && strings.HasSuffix(tc.path, "/stop") {
				body = ""
			}
			host := ""
			for i := 0; i+1 < len(h); i += 2 {
				if h[i] == "Host" {
					host = h[i+1]
					h = append(h[:i], h[i+2:]...)
					break
				}
			}
			w := ts.requestHost(t, host, tc.method, tc.path, body, h...)
			if w.Code != tc.want {
				t.Fatalf("%d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if w.Code == 403 && !strings.Contains(w.Body.String(), `"code":"forbidden"`) {
				t.Errorf("refusal without an error object: %s", w.Body)
			}
			for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"} {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s: %q", k, got)
				}
			}
			if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe") {
				t.Errorf("CSP %q", csp)
			}
		})
	}
	if l := ts.log(); !strings.Contains(l, "refused") || strings.Contains(l, ts.Token()) {
		t.Errorf("log: %s", l)
	}
}

// TestExposed: beyond loopback every API request needs the token, which
// the page gets in its address and keeps in a cookie.
func TestExposed(t *testing.T) {
	ts := newTestServer(t)
	ln, err := ts.Listen("0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if !ts.Exposed() || !strings.Contains(ts.URL(ln), "?token="+ts.Token()) {
		t.Fatalf("exposed %v, URL %s", ts.Exposed(), ts.URL(ln))
	}
	host := "192.168.1.20:8231"
	if w := ts.requestHost(t, host, "GET", "/api/info", "", "Sec-Fetch-Site", "same-origin"); w.Code != 403 {
		t.Errorf("a read without the token: %d", w.Code)
	}
	if w := ts.requestHost(t, host, "GET", "/api/info?token=nope", ""); w.Code != 403 {
		t.Errorf("a read with a wrong token: %d", w.Code)
	}
	w := ts.requestHost(t, host, "GET", "/?token="+ts.Token(), "")
	var cookie *http.Cookie
	for _, c := range w.Result().Cookies() {
		if c.Name == tokenCookie {
			cookie = c
		}
	}
	if w.Code != 200 || cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Value != ts.Token() {
		t.Fatalf("the page with its token: %d, cookie %+v", w.Code, cookie)
	}
	if w := ts.requestHost(t, host, "GET", "/api/info", "", "Cookie", tokenCookie+"="+ts.Token()); w.Code != 200 {
		t.Errorf("the page's read with the cookie: %d %s", w.Code, w.Body)
	}
	if w := ts.requestHost(t, host, "POST", "/api/jobs", `{"kind": "detect", "port": "sim:bk7231n"}`, "Cookie", tokenCookie+"="+ts.Token()); w.Code != 202 {
		t.Errorf("the page's job with the cookie: %d %s", w.Code, w.Body)
	}
	if w := ts.requestHost(t, host, "POST", "/api/jobs", `{"kind": "detect", "port": "sim:esp8266"}`, "Sec-Fetch-Site", "same-origin"); w.Code != 403 {
		t.Errorf("a same-origin job without the token: %d", w.Code)
	}
}

// TestListenDecidesExposure: only loopback addresses go without the
// token.
func TestListenDecidesExposure(t *testing.T) {
	for addr, exposed := range map[string]bool{"127.0.0.1:0": false, "localhost:0": false, "127.0.0.2:0": false, "0.0.0.0:0": true, ":0": true} {
		ts := newTestServer(t)
		ln, err := ts.Listen(addr)
		if err != nil {
			t.Logf("%s: %v (not on this machine)", addr, err)
			continue
		}
		ln.Close()
		if ts.Exposed() != exposed || strings.Contains(ts.URL(ln), "token=") != exposed {
			t.Errorf("%s: exposed %v, URL %s", addr, ts.Exposed(), ts.URL(ln))
		}
	}
}
