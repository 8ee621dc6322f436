package serve

import (
	"io/fs"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestAPIDocumented: docs/api.md has a section for every endpoint and
// none for an endpoint that does not exist.
func TestAPIDocumented(t *testing.T) {
	b, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	heading := regexp.MustCompile("(?m)^### `(GET|POST|PUT|DELETE) ([^`?\\[]+)[^`]*`$")
	documented := map[Route]bool{}
	for _, m := range heading.FindAllStringSubmatch(string(b), -1) {
		documented[Route{m[1], m[2]}] = true
	}
	for _, rt := range Routes() {
		if !documented[rt] {
			t.Errorf("docs/api.md has no section for %s %s", rt.Method, rt.Path)
		}
		delete(documented, rt)
	}
	for rt := range documented {
		t.Errorf("docs/api.md documents %s %s, which the server does not have", rt.Method, rt.Path)
	}
}

// TestPageIsSelfContained: the page loads nothing from elsewhere (it
// works offline, and the CSP would block it anyway) and every embedded
// file is used.
func TestPageIsSelfContained(t *testing.T) {
	static := Static()
	index, err := fs.ReadFile(static, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	fs.WalkDir(static, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(static, p)
		total += len(b)
		if p != "index.html" && !strings.Contains(string(index), `"`+p+`"`) {
			t.Errorf("%s is embedded but index.html does not load it", p)
		}
		// The only absolute URLs: the SVG namespace and links to the
		// devices' own pages.
		text := strings.ReplaceAll(string(b), "http://www.w3.org/2000/svg", "")
		text = strings.ReplaceAll(text, "'http://' + ", "")
		for _, bad := range []string{"http://", "https://", "//cdn", "@import", "url("} {
			if strings.Contains(text, bad) {
				t.Errorf("%s loads from elsewhere (%q)", p, bad)
			}
		}
		if strings.Contains(text, "innerHTML") || strings.Contains(text, "eval(") || strings.Contains(text, " style=") {
			t.Errorf("%s builds markup from strings, evaluates code or has inline styles (the CSP refuses them)", p)
		}
		return nil
	})
	t.Logf("page weight: %d bytes", total)
	if total > 64<<10 {
		t.Errorf("the page weighs %d bytes; keep it small", total)
	}
	ts := newTestServer(t)
	w := ts.request(t, "GET", "/", "")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `<script src="app.js">`) || w.Header().Get("Cache-Control") != "no-cache" {
		t.Errorf("GET /: %d %s", w.Code, w.Header())
	}
	if w := ts.request(t, "GET", "/app.js", ""); w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/javascript") {
		t.Errorf("GET /app.js: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
}
