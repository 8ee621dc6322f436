package firmware

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/tuyaflash/tuyaflash/firmware/fwtest"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
)

// fileServer serves files with Range support (http.ServeContent, which
// also honours If-Range against the ETag) and can cut connections.
type fileServer struct {
	mu       sync.Mutex
	files    map[string][]byte
	cuts     map[string]int // how many more requests to cut
	cutAfter int            // bytes sent before a cut
	requests []string       // "path range"
	srv      *httptest.Server
}

func newFileServer(t *testing.T) *fileServer {
	fs := &fileServer{files: map[string][]byte{}, cuts: map[string]int{}, cutAfter: 10000}
	fs.srv = httptest.NewServer(fs)
	t.Cleanup(fs.srv.Close)
	return fs
}

func (fs *fileServer) set(path string, data []byte) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.files[path] = data
}

func (fs *fileServer) url(path string) string { return fs.srv.URL + path }

func (fs *fileServer) log() []string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]string(nil), fs.requests...)
}

func (fs *fileServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fs.mu.Lock()
	data, ok := fs.files[r.URL.Path]
	cut := fs.cuts[r.URL.Path] > 0
	if cut {
		fs.cuts[r.URL.Path]--
	}
	fs.requests = append(fs.requests, strings.TrimSpace(r.URL.Path+" "+r.Header.Get("Range")))
	fs.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	sum := sha256.Sum256(data)
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:8])+`"`)
	var out http.ResponseWriter = w
	if cut {
		out = &cutter{ResponseWriter: w, left: fs.cutAfter}
	}
	http.ServeContent(out, r, "", time.Time{}, bytes.NewReader(data))
}

// cutter sends left bytes, then drops the connection.
type cutter struct {
	http.ResponseWriter
	left int
}

func (c *cutter) Write(p []byte) (int, error) {
	if len(p) > c.left {
		c.ResponseWriter.Write(p[:c.left])
		c.ResponseWriter.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	c.left -= len(p)
	return c.ResponseWriter.Write(p)
}

func shaHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func newCache(t *testing.T, fs *fileServer) *Cache {
	return &Cache{Dir: t.TempDir(), Client: fs.srv.Client(), UserAgent: "tuyaflash-test",
		Now: func() time.Time { return time.Date(2026, 8, 20, 12, 0, 0, 0, time.UTC) }}
}

// cacheFiles lists the cache folder.
func cacheFiles(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestFetchVerifiesAndServesFromCache(t *testing.T) {
	fs := newFileServer(t)
	img := fwtest.App(fwtest.SigTuya, 0x10000, 1)
	fs.set("/rel/ua.bin", img)
	c := newCache(t, fs)
	req := Request{URL: fs.url("/rel/ua.bin"), SHA256: shaHex(img), Size: len(img), Format: FormatBekenUA}
	res, err := c.Fetch(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != StatusVerified || res.FromCache || res.SHA256 != shaHex(img) {
		t.Errorf("first fetch: %+v", res)
	}
	if got, _ := os.ReadFile(res.Path); !bytes.Equal(got, img) {
		t.Error("cached file differs from the served one")
	}
	res2, err := c.Fetch(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !res2.FromCache || res2.Status != StatusVerified {
		t.Errorf("second fetch: %+v", res2)
	}
	if n := len(fs.log()); n != 1 {
		t.Errorf("%d requests, want 1 (the second fetch comes from the cache)", n)
	}
	if slices := cacheFiles(t, c.Dir); len(slices) != 1 {
		t.Errorf("cache holds %v, want the one file (no pin file for a catalogue checksum)", slices)
	}
}

func TestFetchRefusesChecksumMismatchAndKeepsNothing(t *testing.T) {
	fs := newFileServer(t)
	img := fwtest.App(fwtest.SigTuya, 0x4000, 2)
	fs.set("/a.bin", img)
	c := newCache(t, fs)
	for _, req := range []Request{
		{URL: fs.url("/a.bin"), SHA256: strings.Repeat("0", 64)},
		{URL: fs.url("/a.bin"), SHA256: shaHex(img), Size: len(img) + 1},
		{URL: fs.url("/a.bin"), Format: FormatBekenQIO}, // a UA, not the QIO the catalogue says
	} {
		_, err := c.Fetch(context.Background(), req)
		if !errors.Is(err, ErrChecksum) || !errors.Is(err, flasher.ErrRefused) {
			t.Errorf("%+v: err = %v, want a checksum refusal", req, err)
		}
		if h := flasher.Hint(err); !strings.Contains(h, "deleted") {
			t.Errorf("hint %q does not say the file was deleted", h)
		}
		if fl := cacheFiles(t, c.Dir); len(fl) != 0 {
			t.Errorf("the bad file was kept: %v", fl)
		}
	}
}

func TestFetchPinsUnknownChecksumOnFirstDownload(t *testing.T) {
	fs := newFileServer(t)
	img := fwtest.ESPImage(3, 0x20, 5000)
	fs.set("/t/tasmota.bin", img)
	c := newCache(t, fs)
	req := Request{URL: fs.url("/t/tasmota.bin"), Format: FormatESPApp, Label: "tasmota 1.0"}
	res, err := c.Fetch(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != StatusPinned || res.PinnedAt.IsZero() {
		t.Errorf("first download: status %s pinned %v, want pinned now", res.Status, res.PinnedAt)
	}
	pins, err := c.Pins()
	if err != nil {
		t.Fatal(err)
	}
	if p := pins[req.URL]; p.SHA256 != shaHex(img) || p.Size != int64(len(img)) || p.Label != "tasmota 1.0" {
		t.Errorf("pin %+v", p)
	}
	res, err = c.Fetch(context.Background(), req)
	if err != nil || res.Status != StatusPinMatched || !res.FromCache {
		t.Fatalf("second fetch: %+v %v", res, err)
	}
	// The published file changes under the same address; a new download
	// no longer matches the pin.
	os.Remove(res.Path)
	fs.set("/t/tasmota.bin", fwtest.ESPImage(3, 0x20, 5001))
	_, err = c.Fetch(context.Background(), req)
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "pinned on its first download (2026-08-20)") {
		t.Errorf("changed file: %v", err)
	}
	if _, err := os.Stat(res.Path); !errors.Is(err, os.ErrNotExist) {
		t.Error("the mismatching file was kept")
	}
}

func TestFetchResumesAfterCutConnection(t *testing.T) {
	fs := newFileServer(t)
	img := fwtest.App(fwtest.SigTuya, 0x10000, 3) // 69632 bytes
	fs.set("/big.bin", img)
	fs.cuts["/big.bin"] = 1
	c := newCache(t, fs)
	res, err := c.Fetch(context.Background(), Request{URL: fs.url("/big.bin"), SHA256: shaHex(img)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Resumed != 10000 {
		t.Errorf("resumed %d bytes, want 10000", res.Resumed)
	}
	if got, _ := os.ReadFile(res.Path); !bytes.Equal(got, img) {
		t.Fatal("resumed file differs from the served one")
	}
	if log := fs.log(); len(log) != 2 || log[1] != "/big.bin bytes=10000-" {
		t.Errorf("requests %q, want a full one, then a Range request from byte 10000", log)
	}
}

// cutTwice serves data at path, cutting the first two requests, to a
// cache that tries twice per Fetch: the first Fetch fails half-way.
func cutTwice(t *testing.T, path string, data []byte) (*fileServer, *Cache) {
	fs := newFileServer(t)
	fs.set(path, data)
	fs.cuts[path] = 2
	c := newCache(t, fs)
	c.Retries = 1
	return fs, c
}

func TestFetchResumesAcrossRuns(t *testing.T) {
	img := fwtest.App(fwtest.SigTuya, 0x10000, 4)
	fs, c := cutTwice(t, "/big.bin", img)
	req := Request{URL: fs.url("/big.bin"), Format: FormatBekenUA}
	_, err := c.Fetch(context.Background(), req)
	if err == nil || !strings.Contains(flasher.Hint(err), "resume") {
		t.Fatalf("err = %v (hint %q), want a cut download that says it resumes", err, flasher.Hint(err))
	}
	part := c.Path(req.URL) + ".part"
	if st, err := os.Stat(part); err != nil || st.Size() != 20000 {
		t.Fatalf("partial file: %v %v, want 20000 bytes kept", st, err)
	}
	res, err := c.Fetch(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Resumed != 20000 || res.Status != StatusPinned {
		t.Errorf("second run: resumed %d status %s", res.Resumed, res.Status)
	}
	if got, _ := os.ReadFile(res.Path); !bytes.Equal(got, img) {
		t.Fatal("file differs")
	}
	if _, err := os.Stat(part); !errors.Is(err, os.ErrNotExist) {
		t.Error("partial file left behind")
	}
}

// A file replaced on the server between a cut and the resume must not be
// spliced: If-Range makes the server send the whole new file.
func TestFetchResumeNeverSplicesTwoVersions(t *testing.T) {
	fs, c := cutTwice(t, "/f.bin", fwtest.App(fwtest.SigTuya, 0x8000, 5))
	req := Request{URL: fs.url("/f.bin")}
	if _, err := c.Fetch(context.Background(), req); err == nil {
		t.Fatal("expected the cut download to fail")
	}
	fresh := fwtest.App(fwtest.SigTuya, 0x8000, 6)
	fs.set("/f.bin", fresh)
	res, err := c.Fetch(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(res.Path); !bytes.Equal(got, fresh) {
		t.Fatal("cached file is a splice of two versions")
	}
	if res.Resumed != 0 || res.SHA256 != shaHex(fresh) {
		t.Errorf("resumed %d, sha %s", res.Resumed, res.SHA256)
	}
}

func TestFetchOfflineUsesTheCache(t *testing.T) {
	fs := newFileServer(t)
	img := fwtest.App(fwtest.SigTuya, 0x4000, 7)
	fs.set("/x.bin", img)
	c := newCache(t, fs)
	req := Request{URL: fs.url("/x.bin"), SHA256: shaHex(img)}
	if _, err := c.Fetch(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	fs.srv.Close()
	off := &Cache{Dir: c.Dir, Offline: true}
	res, err := off.Fetch(context.Background(), req)
	if err != nil || !res.FromCache || res.Status != StatusVerified {
		t.Fatalf("offline: %+v %v", res, err)
	}
	_, err = off.Fetch(context.Background(), Request{URL: fs.url("/other.bin")})
	if !errors.Is(err, ErrNotCached) || !strings.Contains(flasher.Hint(err), "online") {
		t.Errorf("offline, not cached: %v", err)
	}
	// A damaged cached copy is refused offline, not used.
	os.WriteFile(res.Path, append(img, 0), 0o644)
	if _, err := off.Fetch(context.Background(), req); !errors.Is(err, ErrChecksum) {
		t.Errorf("offline, damaged copy: %v", err)
	}
}

func TestFetchMovingAlias(t *testing.T) {
	fs := newFileServer(t)
	fs.set("/release/tasmota.bin", fwtest.ESPImage(3, 0x20, 100))
	c := newCache(t, fs)
	req := Request{URL: fs.url("/release/tasmota.bin"), Moving: true, Format: FormatESPApp}
	for i := range 2 {
		res, err := c.Fetch(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != StatusUnpinned || res.FromCache {
			t.Errorf("fetch %d: %+v", i, res)
		}
		fs.set("/release/tasmota.bin", fwtest.ESPImage(3, 0x20, 200)) // a new release
	}
	if n := len(fs.log()); n != 2 {
		t.Errorf("%d requests, want 2 (a moving alias is fetched afresh)", n)
	}
	if pins, _ := c.Pins(); len(pins) != 0 {
		t.Errorf("moving alias pinned: %v", pins)
	}
	off := &Cache{Dir: c.Dir, Offline: true}
	if res, err := off.Fetch(context.Background(), req); err != nil || res.Status != StatusUnpinned || !res.FromCache {
		t.Errorf("offline moving alias: %+v %v", res, err)
	}
}

func TestFetchHTTPErrorIsNotRetried(t *testing.T) {
	fs := newFileServer(t)
	c := newCache(t, fs)
	_, err := c.Fetch(context.Background(), Request{URL: fs.url("/gone.bin")})
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("err = %v", err)
	}
	if n := len(fs.log()); n != 1 {
		t.Errorf("%d requests for a 404, want 1", n)
	}
}

func TestCachePathAndDefaultDir(t *testing.T) {
	c := &Cache{Dir: "/c"}
	a, b := c.Path("https://x/1.0/tasmota.bin"), c.Path("https://x/2.0/tasmota.bin")
	if a == b || !strings.HasSuffix(a, "-tasmota.bin") || filepath.Dir(a) != "/c" {
		t.Errorf("paths %s %s", a, b)
	}
	if p := c.Path("https://x/a/..%2F..%2Fetc"); filepath.Dir(p) != "/c" {
		t.Errorf("path escapes the cache: %s", p)
	}
	t.Setenv(CacheDirEnv, "/tmp/fwcache")
	if d, _ := DefaultCacheDir(); d != "/tmp/fwcache" {
		t.Errorf("DefaultCacheDir = %s", d)
	}
	t.Setenv(CacheDirEnv, "")
	if d, err := DefaultCacheDir(); err == nil && !strings.HasSuffix(d, filepath.Join("tuyaflash", "firmware")) {
		t.Errorf("DefaultCacheDir = %s", d)
	}
}

func ExampleCache_Fetch() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(fwtest.ESPImage(3, 0x20, 100))
	}))
	defer srv.Close()
	dir, _ := os.MkdirTemp("", "fwcache")
	defer os.RemoveAll(dir)
	c := &Cache{Dir: dir, Client: srv.Client()}
	res, err := c.Fetch(context.Background(), Request{URL: srv.URL + "/tasmota.bin", Format: FormatESPApp})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Status, res.Size)
	// Output: pinned-now 192
}
