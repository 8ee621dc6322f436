package firmware

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/firmware/fwtest"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/internal/safefile"
	"github.com/tuyaflash/tuyaflash/internal/safefile/safefiletest"
)

// lanClient sends every request, whatever its host, to srv: the test's
// stand-in for a mirror on the LAN at a non-loopback address.
func lanClient(srv *httptest.Server) *http.Client {
	tr := srv.Client().Transport.(*http.Transport).Clone()
	addr := srv.Listener.Addr().String()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	return &http.Client{Transport: tr}
}

func TestCheckURL(t *testing.T) {
	for _, tc := range []struct {
		url   string
		allow bool
		ok    bool
	}{
		{"https://github.com/x/releases/download/v1/a.bin", false, true},
		{"http://github.com/x/a.bin", false, false},
		{"http://github.com/x/a.bin", true, true},
		{"http://192.168.1.10/a.bin", false, false},
		{"http://127.0.0.1:8080/a.bin", false, true},
		{"http://[::1]:8080/a.bin", false, true},
		{"http://localhost/a.bin", false, true},
		{"http://localhost.evil.example/a.bin", false, false},
		{"ftp://example.com/a.bin", true, false},
		{"file:///etc/passwd", true, false},
		{"HTTPS://GITHUB.COM/a.bin", false, true},
	} {
		err := CheckURL(tc.url, tc.allow)
		if (err == nil) != tc.ok {
			t.Errorf("CheckURL(%q, allow=%v) = %v, want ok=%v", tc.url, tc.allow, err, tc.ok)
		}
		if err != nil && (!errors.Is(err, ErrInsecureURL) || !errors.Is(err, flasher.ErrRefused)) {
			t.Errorf("CheckURL(%q): %v does not match ErrInsecureURL and ErrRefused", tc.url, err)
		}
	}
	if err := CheckURL("http://user:hunter2@mirror.lan/a.bin", false); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the refusal shows the URL's password: %v", err)
	}
}

// TestDownloadsOnlyOverHTTPS: a plain-HTTP address off this machine is
// refused before any request unless AllowHTTP; HTTPS (a TLS test server)
// works; an HTTPS address that redirects to plain HTTP is refused.
func TestDownloadsOnlyOverHTTPS(t *testing.T) {
	img := fwtest.ESPImage(3, 0x20, 100)
	var plainHits atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plainHits.Add(1)
		w.Write(img)
	}))
	defer plain.Close()
	req := Request{URL: "http://mirror.lan/tasmota.bin", SHA256: shaHex(img), Format: FormatESPApp}

	c := &Cache{Dir: t.TempDir(), Client: lanClient(plain)}
	_, err := c.Fetch(context.Background(), req)
	if !errors.Is(err, ErrInsecureURL) || !strings.Contains(hintOf(err), "--allow-http") {
		t.Fatalf("http on the LAN: %v (hint %q), want a refusal naming --allow-http", err, hintOf(err))
	}
	if plainHits.Load() != 0 {
		t.Fatal("a request went out before the refusal")
	}
	c.AllowHTTP = true
	if res, err := c.Fetch(context.Background(), req); err != nil || res.Status != StatusVerified {
		t.Fatalf("with AllowHTTP: %+v %v", res, err)
	}

	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved.bin" {
			http.Redirect(w, r, "http://mirror.lan/tasmota.bin", http.StatusFound)
			return
		}
		w.Write(img)
	}))
	defer tlsSrv.Close()
	c = &Cache{Dir: t.TempDir(), Client: tlsSrv.Client()}
	if res, err := c.Fetch(context.Background(), Request{URL: tlsSrv.URL + "/tasmota.bin", SHA256: shaHex(img)}); err != nil || res.Status != StatusVerified {
		t.Fatalf("https: %+v %v", res, err)
	}
	plainHits.Store(0)
	_, err = c.Fetch(context.Background(), Request{URL: tlsSrv.URL + "/moved.bin", SHA256: shaHex(img)})
	if !errors.Is(err, ErrInsecureURL) || !strings.Contains(err.Error(), "redirected") {
		t.Fatalf("https redirected to http: %v, want a refusal", err)
	}

	// The catalogue follows the same rule.
	if _, err := Load(context.Background(), lanClient(plain), "http://mirror.lan/manifest.json", false); !errors.Is(err, ErrInsecureURL) {
		t.Fatalf("manifest over http: %v", err)
	}
}

func hintOf(err error) string {
	var h *flasher.HintError
	if errors.As(err, &h) {
		return h.Hint
	}
	return ""
}

// TestChecksumIsEnforced: a catalogue entry with a sha256 never accepts
// other bytes, from the network or from the cache; a pin made on first
// download is reported and enforced the same way.
func TestChecksumIsEnforced(t *testing.T) {
	good := fwtest.ESPImage(3, 0x20, 100)
	evil := fwtest.ESPImage(3, 0x21, 100) // a valid image, other bytes
	fs := newFileServer(t)
	fs.set("/t.bin", evil)
	c := newCache(t, fs)
	_, err := c.Fetch(context.Background(), Request{URL: fs.url("/t.bin"), SHA256: shaHex(good), Format: FormatESPApp})
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("other bytes than the catalogue's: %v", err)
	}
	if _, err := os.Lstat(c.Path(fs.url("/t.bin"))); err == nil {
		t.Fatal("the refused file was kept in the cache")
	}
	// A cached file replaced behind tuyaflash's back is refused offline.
	fs.set("/t.bin", good)
	if _, err := c.Fetch(context.Background(), Request{URL: fs.url("/t.bin"), SHA256: shaHex(good)}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(c.Path(fs.url("/t.bin")), evil, 0o644)
	c.Offline = true
	if _, err := c.Fetch(context.Background(), Request{URL: fs.url("/t.bin"), SHA256: shaHex(good)}); !errors.Is(err, ErrChecksum) {
		t.Fatalf("tampered cache file: %v", err)
	}
	// Pin on first download: reported, written to PinsPath, enforced.
	c.Offline = false
	fs.set("/p.bin", good)
	res, err := c.Fetch(context.Background(), Request{URL: fs.url("/p.bin")})
	if err != nil || res.Status != StatusPinned {
		t.Fatalf("first download: %+v %v", res, err)
	}
	if b, err := os.ReadFile(c.PinsPath()); err != nil || !strings.Contains(string(b), shaHex(good)) {
		t.Fatalf("pins file %s: %q %v", c.PinsPath(), b, err)
	}
	os.Remove(c.Path(fs.url("/p.bin")))
	fs.set("/p.bin", evil)
	if _, err := c.Fetch(context.Background(), Request{URL: fs.url("/p.bin")}); !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "pinned") {
		t.Fatalf("changed file after the pin: %v", err)
	}
}

// TestHostileServersAreCutOff: a server that announces or streams more
// than any image, or stops sending, ends the download with a clear error.
func TestHostileServersAreCutOff(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/announced.bin":
			w.Header().Set("Content-Length", "1073741824")
			w.Write(make([]byte, 4096))
		case "/endless.bin":
			buf := make([]byte, 64<<10)
			for i := 0; i < 1<<14; i++ { // up to 1 GiB, unless the client hangs up
				if _, err := w.Write(buf); err != nil {
					return
				}
			}
		case "/stall.bin":
			w.Header().Set("Content-Length", "100000")
			w.Write(make([]byte, 1000))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		case "/manifest.json":
			w.Header().Set("Content-Length", "1073741824")
			w.Write([]byte("{"))
		}
	}))
	defer srv.Close()
	c := &Cache{Dir: t.TempDir(), Client: srv.Client(), StallTimeout: 300 * time.Millisecond, Retries: 1}
	for _, tc := range []struct{ path, want string }{
		{"/announced.bin", "more than any firmware image"},
		{"/endless.bin", "larger than 16 MiB"},
		{"/stall.bin", "no data received for 300ms"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, err := c.Fetch(context.Background(), Request{URL: srv.URL + tc.path})
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got %v, want %q", err, tc.want)
				}
			case <-time.After(60 * time.Second):
				t.Fatal("the download was not cut off")
			}
			if st, err := os.Stat(c.Path(srv.URL+tc.path) + ".part"); err == nil && st.Size() > MaxImageSize {
				t.Errorf("%d bytes kept", st.Size())
			}
		})
	}
	if _, err := Load(context.Background(), srv.Client(), srv.URL+"/manifest.json", false); err == nil || !strings.Contains(err.Error(), "larger than 4 MiB") {
		t.Errorf("huge manifest: %v", err)
	}
}

// TestCacheNamesStayInTheCache: hostile addresses (traversal, absolute
// paths, Windows separators, NUL, very long names) give a plain name
// inside the cache folder.
func TestCacheNamesStayInTheCache(t *testing.T) {
	dir := t.TempDir()
	c := &Cache{Dir: dir}
	for _, u := range []string{
		"https://x/a/../../../etc/passwd", "https://x/..", "https://x/%2e%2e", "https://x/a/..%2F..%2Fetc",
		"https://x/C:%5CWindows%5Csystem32", `https://x/..\..\boot.ini`, "https://x/a%00.bin", "https://x//etc/passwd",
		"https://x/" + strings.Repeat("A", 400) + ".bin", "https://x/", "https://x/%0d%0aSet-Cookie",
	} {
		p := c.Path(u)
		if filepath.Dir(p) != dir || strings.ContainsAny(filepath.Base(p), "/\\\x00\r\n") || len(filepath.Base(p)) > 120 {
			t.Errorf("%q -> %q: not a plain name in the cache", u, p)
		}
	}
}

// TestCacheWritersIgnorePlantedLinks: links planted in a shared cache
// folder at a download's .part file, its validator, the cached file or
// pins.json never redirect a write.
func TestCacheWritersIgnorePlantedLinks(t *testing.T) {
	img := fwtest.ESPImage(3, 0x20, 100)
	for _, where := range []string{".part", ".part.json", ""} {
		t.Run("at "+where, func(t *testing.T) {
			fs := newFileServer(t)
			fs.set("/t.bin", img)
			c := newCache(t, fs)
			u := fs.url("/t.bin")
			at := c.Path(u) + where
			victim := safefiletest.Plant(t, at)
			res, err := c.Fetch(context.Background(), Request{URL: u})
			safefiletest.Untouched(t, victim)
			if where == ".part" {
				if !errors.Is(err, safefile.ErrSymlink) || !strings.Contains(hintOf(err), "keep the cache folder private") {
					t.Fatalf("a link at the .part file: %v (hint %q)", err, hintOf(err))
				}
				return
			}
			if err != nil || res.Status != StatusPinned {
				t.Fatalf("%+v %v", res, err)
			}
			if safefiletest.IsLink(t, c.Path(u)) {
				t.Error("a link is still in place")
			}
		})
	}
	t.Run("at pins.json, another user's", func(t *testing.T) {
		fs := newFileServer(t)
		fs.set("/t.bin", img)
		c := newCache(t, fs)
		victim := safefiletest.Plant(t, c.PinsPath())
		if os.Geteuid() != 0 || os.Lchown(c.PinsPath(), 4242, 4242) != nil {
			t.Skip("a link owned by another user needs root to plant")
		}
		if _, err := c.Fetch(context.Background(), Request{URL: fs.url("/t.bin")}); !errors.Is(err, safefile.ErrSymlink) {
			t.Fatalf("got %v, want safefile.ErrSymlink", err)
		}
		safefiletest.Untouched(t, victim)
	})
}

// TestSharedCacheIsNotTrusted: a cache folder everybody may write to, or
// a pins file of another user, could get any bytes accepted as pinned:
// both are refused.
func TestSharedCacheIsNotTrusted(t *testing.T) {
	img := fwtest.ESPImage(3, 0x20, 100)
	fs := newFileServer(t)
	fs.set("/t.bin", img)
	c := newCache(t, fs)
	if err := os.Chmod(c.Dir, 0o777); err != nil {
		t.Skip(err)
	}
	_, err := c.Fetch(context.Background(), Request{URL: fs.url("/t.bin")})
	if !errors.Is(err, safefile.ErrShared) || !strings.Contains(hintOf(err), "--cache-dir") {
		t.Fatalf("world-writable cache: %v", err)
	}
	os.Chmod(c.Dir, 0o755)
	if os.Geteuid() != 0 {
		t.Skip("a file owned by another user needs root")
	}
	os.WriteFile(c.PinsPath(), []byte(`{"pins":{}}`), 0o644)
	os.Chown(c.PinsPath(), 4242, 4242)
	if _, err := c.Fetch(context.Background(), Request{URL: fs.url("/t.bin")}); !errors.Is(err, safefile.ErrShared) {
		t.Fatalf("pins of another user: %v", err)
	}
}
