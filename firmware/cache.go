package firmware

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/internal/safefile"
)

// CacheDirEnv names the environment variable that moves the cache.
const CacheDirEnv = "TUYAFLASH_CACHE_DIR"

// DefaultCacheDir is $TUYAFLASH_CACHE_DIR, else <user cache dir>/tuyaflash/firmware.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv(CacheDirEnv); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache folder (%v): set %s", err, CacheDirEnv)
	}
	return filepath.Join(d, "tuyaflash", "firmware"), nil
}

// Cache is the download cache: one file per address, a ".part" file while
// it downloads (resumed with an HTTP Range request), and pins.json holding
// the sha256 of every file whose checksum the catalogue does not give,
// recorded on its first download.
type Cache struct {
	Dir string
	// Client makes the requests (nil: NewHTTPClient). Whatever it is,
	// every address and redirect must pass CheckURL.
	Client *http.Client
	// AllowHTTP lets plain http:// addresses through (--allow-http).
	AllowHTTP bool
	// StallTimeout cuts a download that receives nothing for that long
	// (default StallTimeout); the next attempt resumes it.
	StallTimeout time.Duration
	// UserAgent is sent with every request.
	UserAgent string
	// Offline serves only what the cache holds.
	Offline bool
	// Retries is how often a cut download is resumed within one Fetch
	// (default 3).
	Retries int
	// Now stamps pins (time.Now when nil).
	Now func() time.Time
}

// Request is one file to fetch.
type Request struct {
	URL string
	// SHA256 and Size are what the catalogue says ("" and 0 when it does
	// not know).
	SHA256 string
	Size   int
	// Moving marks an alias whose content changes with every release:
	// never pinned, always downloaded again when online.
	Moving bool
	// Format, when set, is what the file must be detected as; a file
	// that is something else (an error page, the wrong asset) is refused
	// and not kept.
	Format Format
	// Label names the file in the pin file ("tasmota 15.5.0").
	Label string
}

// Status says how a fetched file was checked.
type Status string

// The statuses.
const (
	// StatusVerified: the sha256 matches the catalogue.
	StatusVerified Status = "verified"
	// StatusPinned: the catalogue has no checksum; this download's
	// sha256 was pinned now, and later downloads must match it.
	StatusPinned Status = "pinned-now"
	// StatusPinMatched: the sha256 matches the one pinned earlier.
	StatusPinMatched Status = "pin-matched"
	// StatusUnpinned: a moving alias, checked by content only.
	StatusUnpinned Status = "unpinned"
)

// Result describes a fetched file.
type Result struct {
	Path      string `json:"path"`
	URL       string `json:"url"`
	SHA256    string `json:"sha256"`
	Size      int64  `json:"size"`
	Status    Status `json:"status"`
	FromCache bool   `json:"from_cache"`
	// Resumed is how many bytes came from an earlier, cut download.
	Resumed int64 `json:"resumed_bytes,omitempty"`
	// PinnedAt is when the pin this file was checked against was made.
	PinnedAt time.Time `json:"pinned_at,omitzero"`
}

// Pin is a checksum recorded on first download.
type Pin struct {
	SHA256   string    `json:"sha256"`
	Size     int64     `json:"size"`
	Label    string    `json:"label,omitempty"`
	PinnedAt time.Time `json:"pinned_at"`
}

type pinFile struct {
	Note string         `json:"note"`
	Pins map[string]Pin `json:"pins"`
}

const pinFileName = "pins.json"

// partMeta remembers the validator of a partial download so a resume
// fetches the rest of the same file (If-Range).
type partMeta struct {
	URL          string `json:"url"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Path is where the cache keeps the file of an address:
// <dir>/<12 hex digits of the address' sha256>-<file name>. The file name
// comes from the address (outside data): only letters, digits, '.', '_'
// and '-' are kept, at most 100 of them, behind the hash, so that the
// result is always a plain name inside dir.
func (c *Cache) Path(rawURL string) string {
	h := sha256.Sum256([]byte(rawURL))
	name := "file"
	if u, err := url.Parse(rawURL); err == nil {
		if b := path.Base(u.Path); b != "." && b != "/" {
			name = b
		}
	}
	name = unsafeName.ReplaceAllString(name, "_")
	if len(name) > 100 {
		name = name[len(name)-100:]
	}
	return filepath.Join(c.Dir, hex.EncodeToString(h[:6])+"-"+name)
}

// PinsPath is the file holding the checksums pinned on first download
// (JSON, readable: the address, sha256, size, label and date of each).
func (c *Cache) PinsPath() string { return filepath.Join(c.Dir, pinFileName) }

// Pins returns the pin file's entries.
func (c *Cache) Pins() (map[string]Pin, error) {
	pf, err := c.readPins()
	if err != nil {
		return nil, err
	}
	return pf.Pins, nil
}

func (c *Cache) readPins() (*pinFile, error) {
	pf := &pinFile{Pins: map[string]Pin{}}
	// Pins decide which bytes are accepted: only the user may have
	// written them (and the folder the cached files sit in).
	for _, p := range []string{c.Dir, c.PinsPath()} {
		if err := safefile.CheckTrusted(p); err != nil {
			return nil, &flasher.HintError{Err: fmt.Errorf("firmware cache: %w", err),
				Hint: "anyone who can change the cache can have other firmware written to your device: use a folder only you can write to (--cache-dir or $" + CacheDirEnv + ")"}
		}
	}
	b, err := os.ReadFile(c.PinsPath())
	if errors.Is(err, os.ErrNotExist) {
		return pf, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, pf); err != nil {
		return nil, &flasher.HintError{Err: fmt.Errorf("firmware cache pin file %s is damaged: %w", filepath.Join(c.Dir, pinFileName), err),
			Hint: "fix or delete it (deleting forgets the pinned checksums)"}
	}
	if pf.Pins == nil {
		pf.Pins = map[string]Pin{}
	}
	return pf, nil
}

func (c *Cache) writePin(rawURL string, p Pin) error {
	pf, err := c.readPins()
	if err != nil {
		return err
	}
	pf.Note = "sha256 of firmware files whose checksum the catalogue does not give, recorded on their first download; later downloads must match"
	pf.Pins[rawURL] = p
	b, err := json.MarshalIndent(pf, "", "  ")
	if err != nil {
		return err
	}
	return safefile.Replace(c.PinsPath(), append(b, '\n'), 0o644)
}

func (c *Cache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Fetch returns the file at r.URL from the cache, downloading (or resuming)
// it when needed. Every file is checked before it is used: against the
// catalogue's sha256 and size, else against the pin recorded on its first
// download (a file without either is pinned now and reported so), and by
// its content when r.Format is set. A file that fails a check is deleted
// and refused with an error matching ErrChecksum (and flasher.ErrRefused).
func (c *Cache) Fetch(ctx context.Context, r Request) (*Result, error) {
	if c.Dir == "" {
		return nil, errors.New("firmware cache: no folder")
	}
	if err := CheckURL(r.URL, c.AllowHTTP); err != nil {
		return nil, err
	}
	if err := safefile.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("firmware cache: %w", err)
	}
	pins, err := c.readPins()
	if err != nil {
		return nil, err
	}
	want := &expect{sha: strings.ToLower(r.SHA256), size: int64(r.Size), status: StatusVerified}
	if want.sha == "" && !r.Moving {
		if p, ok := pins.Pins[r.URL]; ok {
			want.sha, want.size, want.status, want.pinnedAt = p.SHA256, p.Size, StatusPinMatched, p.PinnedAt
		}
	}
	final := c.Path(r.URL)
	if res, err := c.cached(final, r, want); res != nil || err != nil {
		return res, err
	}
	if c.Offline {
		return nil, &flasher.HintError{Err: fmt.Errorf("%s: %w", r.URL, ErrNotCached),
			Hint: "run 'tuyaflash firmware fetch NAME' once while online, or pass the image file instead"}
	}
	res, err := c.download(ctx, r, final)
	if err != nil {
		return nil, err
	}
	if err := c.check(final+".part", res, r, want); err != nil {
		os.Remove(final + ".part")
		os.Remove(final + ".part.json")
		return nil, err
	}
	if err := os.Rename(final+".part", final); err != nil {
		return nil, fmt.Errorf("firmware cache: %w", err)
	}
	os.Remove(final + ".part.json")
	res.Path = final
	if res.Status == StatusPinned {
		if err := c.writePin(r.URL, Pin{SHA256: res.SHA256, Size: res.Size, Label: r.Label, PinnedAt: res.PinnedAt}); err != nil {
			os.Remove(final)
			return nil, fmt.Errorf("firmware cache: record the pin: %w", err)
		}
	}
	return res, nil
}

// expect is what a file must match.
type expect struct {
	sha      string
	size     int64
	status   Status
	pinnedAt time.Time
}

// cached serves a complete file from the cache when it passes its check.
// It returns (nil, nil) when the file must be downloaded.
func (c *Cache) cached(final string, r Request, want *expect) (*Result, error) {
	if st, err := os.Lstat(final); err != nil {
		return nil, nil
	} else if !st.Mode().IsRegular() {
		// Not put there by tuyaflash (a link, a folder): never read,
		// replaced by the download.
		if os.Remove(final) != nil || c.Offline {
			return nil, fmt.Errorf("firmware cache: %s: %w", final, safefile.ErrNotRegular)
		}
		return nil, nil
	}
	switch {
	case r.Moving && !c.Offline:
		return nil, nil // fetch the newest
	case want.sha == "" && !r.Moving:
		// Complete but never pinned (interrupted between rename and
		// pin): not trusted; a download replaces it.
		return nil, nil
	}
	res := &Result{Path: final, URL: r.URL, FromCache: true}
	if err := c.check(final, res, r, want); err != nil {
		os.Remove(final)
		if c.Offline {
			return nil, err
		}
		return nil, nil // damaged copy: download again
	}
	return res, nil
}

// check hashes file and compares it with want; it fills res.
func (c *Cache) check(file string, res *Result, r Request, want *expect) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("firmware cache: %w", err)
	}
	sum := sha256.Sum256(data)
	res.SHA256, res.Size = hex.EncodeToString(sum[:]), int64(len(data))
	redo := fmt.Sprintf("the file was deleted; run the command again to download it afresh, and if it keeps differing the file at %s changed and the catalogue needs an update", r.URL)
	if want.size > 0 && res.Size != want.size {
		return checksumf(redo, "%s is %d bytes, expected %d", r.URL, res.Size, want.size)
	}
	switch {
	case r.Moving:
		res.Status = StatusUnpinned
	case want.sha == "":
		res.Status, res.PinnedAt = StatusPinned, c.now().UTC().Truncate(time.Second)
	case res.SHA256 != want.sha:
		what := "the catalogue's"
		if want.status == StatusPinMatched {
			what = fmt.Sprintf("the one pinned on its first download (%s)", want.pinnedAt.Format(time.DateOnly))
		}
		return checksumf(redo, "%s has sha256 %s, not %s %s", r.URL, res.SHA256, what, want.sha)
	default:
		res.Status, res.PinnedAt = want.status, want.pinnedAt
	}
	if r.Format != "" {
		det, err := Detect(data, path.Base(r.URL))
		if err != nil || det.Format != r.Format {
			got := string(det.Format)
			if err != nil {
				got += " (" + err.Error() + ")"
			}
			return checksumf(redo, "%s is not the %s image the catalogue describes: it is %s", r.URL, r.Format, got)
		}
	}
	return nil
}

// download fetches r.URL into final+".part", resuming what an earlier
// attempt left, and retries cut transfers.
func (c *Cache) download(ctx context.Context, r Request, final string) (*Result, error) {
	part := final + ".part"
	if r.Moving {
		os.Remove(part) // a moving address may serve another file by now
	}
	retries := c.Retries
	if retries <= 0 {
		retries = 3
	}
	res := &Result{URL: r.URL}
	var lastErr error
	for attempt := 0; attempt <= retries; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		resumed, err := c.attempt(ctx, r.URL, part)
		if err == nil {
			res.Resumed = resumed
			return res, nil
		}
		lastErr = err
		var perm *permanentError
		if errors.As(err, &perm) {
			break
		}
	}
	return nil, &flasher.HintError{Err: fmt.Errorf("download %s: %w", r.URL, lastErr), Hint: downloadHint(lastErr, part)}
}

// downloadHint says what to do after a failed download: resume only what
// can be resumed.
func downloadHint(err error, part string) string {
	var perm *permanentError
	if errors.Is(err, safefile.ErrSymlink) || errors.Is(err, safefile.ErrNotRegular) {
		return fmt.Sprintf("%s is not a partial download tuyaflash made (another user's link?): remove it, and keep the cache folder private", part)
	}
	if errors.As(err, &perm) {
		return "the server refused the file, so running the command again will not help: check the address (a release may have moved; --manifest FILE|URL gives another catalogue), or download the image yourself and pass the file"
	}
	if st, serr := os.Stat(part); serr == nil && st.Size() > 0 {
		return fmt.Sprintf("the %d KiB already downloaded are kept; run the same command again to resume (check the network)", st.Size()/1024)
	}
	return "check the network and run the same command again; with no network, pass an image file or use files already in the cache (--offline)"
}

// permanentError is a download failure retrying will not fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// attempt makes one request, appending to part when it exists; it returns
// how many bytes were already there.
func (c *Cache) attempt(ctx context.Context, rawURL, part string) (int64, error) {
	var have int64
	if st, err := os.Lstat(part); err == nil && st.Mode().IsRegular() {
		have = st.Size()
	}
	meta := partMeta{URL: rawURL}
	if b, err := os.ReadFile(part + ".json"); err == nil && json.Unmarshal(b, &meta) == nil && meta.URL != rawURL {
		have, meta = 0, partMeta{URL: rawURL}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return 0, &permanentError{err}
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
		if v := cmp.Or(meta.ETag, meta.LastModified); v != "" {
			req.Header.Set("If-Range", v)
		}
	}
	resp, err := withPolicy(c.Client, c.AllowHTTP).Do(req)
	if err != nil {
		if errors.Is(err, ErrInsecureURL) {
			return have, &permanentError{err}
		}
		return have, err
	}
	defer resp.Body.Close()
	if resp.ContentLength > MaxImageSize-have {
		os.Remove(part)
		return have, &permanentError{fmt.Errorf("the server announces %d bytes, more than any firmware image (16 MiB)", resp.ContentLength)}
	}
	flags := os.O_WRONLY | os.O_CREATE
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		start, ok := contentRangeStart(resp.Header.Get("Content-Range"))
		if !ok || start != have {
			return have, &permanentError{fmt.Errorf("the server resumed at byte %d, not %d", start, have)}
		}
		flags |= os.O_APPEND
	case resp.StatusCode == http.StatusOK:
		flags |= os.O_TRUNC
		have = 0
		meta.ETag, meta.LastModified = resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
		mb, _ := json.Marshal(meta)
		if err := safefile.Replace(part+".json", mb, 0o644); err != nil {
			return 0, &permanentError{err}
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		os.Remove(part) // start over on the next attempt
		return 0, fmt.Errorf("HTTP %s for a resume at byte %d", resp.Status, have)
	default:
		return have, &permanentError{fmt.Errorf("HTTP %s", resp.Status)}
	}
	f, err := safefile.OpenFile(part, flags, 0o644)
	if err != nil {
		return have, &permanentError{err}
	}
	stall := c.StallTimeout
	if stall <= 0 {
		stall = StallTimeout
	}
	body := newStallReader(resp.Body, stall, cancel)
	n, err := io.Copy(f, io.LimitReader(body, MaxImageSize+1-have))
	body.stop()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, errStalled) {
			err = cause
		}
		return have, err
	}
	if have+n > MaxImageSize {
		os.Remove(part)
		return have, &permanentError{fmt.Errorf("the file is larger than 16 MiB, no firmware image")}
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return have, fmt.Errorf("connection closed after %d of %d bytes", n, resp.ContentLength)
	}
	return have, nil
}

// contentRangeStart reads the first byte position of "bytes a-b/n".
func contentRangeStart(h string) (int64, bool) {
	rest, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, false
	}
	a, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(a, 10, 64)
	return n, err == nil
}
