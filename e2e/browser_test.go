//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"github.com/tuyaflash/tuyaflash/internal/testbin"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// A headless Chromium driven over the Chrome DevTools Protocol, through
// the pipe Chromium opens on file descriptors 3 and 4 with
// --remote-debugging-pipe (JSON messages ended by a NUL byte): no
// WebSocket, no driver library. Clicks and typing are real input events.

// chromiumBinary finds Chromium: $TUYAFLASH_CHROMIUM, else Debian's
// chromium (or another name it goes by).
func chromiumBinary() string {
	if p := os.Getenv("TUYAFLASH_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

type cdpMessage struct {
	ID        int             `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *cdpError       `json:"error,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
}

type cdpError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// browser is one Chromium with one page.
type browser struct {
	t       *testing.T
	cmd     *exec.Cmd
	w       *os.File
	mu      sync.Mutex
	next    int
	waiting map[int]chan cdpMessage
	session string
	// problems are the page's uncaught exceptions and console errors.
	problems []string
	done     chan struct{}
	stderr   *testbin.Buffer
	// width and height are the window's size.
	width, height int
}

// requireBrowser = "1" (CI sets it) makes a missing Chromium a failure
// instead of a skip: the browser tests must run there.
const requireBrowser = "TUYAFLASH_REQUIRE_BROWSER"

// needBrowser skips the test when there is no Chromium (failing instead
// when requireBrowser is set) and returns its path.
func needBrowser(t *testing.T) string {
	t.Helper()
	bin := chromiumBinary()
	if bin == "" {
		msg := "no Chromium: install Debian's chromium package (apt-get install chromium) or set TUYAFLASH_CHROMIUM to run the browser tests"
		if os.Getenv(requireBrowser) == "1" {
			t.Fatalf("%s (%s=1: the browser tests must run)", msg, requireBrowser)
		}
		t.Skip(msg)
	}
	return bin
}

// startBrowser launches headless Chromium with one page of width×height
// (needBrowser: without one the test skips, or fails in CI).
func startBrowser(t *testing.T, width, height int) *browser {
	t.Helper()
	bin := needBrowser(t)
	toChrome, ours, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	theirs, fromChrome, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--disable-dev-shm-usage", "--mute-audio", "--hide-scrollbars",
		"--user-data-dir="+t.TempDir(), "--remote-debugging-pipe", "about:blank")
	cmd.ExtraFiles = []*os.File{toChrome, fromChrome}
	b := &browser{t: t, cmd: cmd, w: ours, waiting: map[int]chan cdpMessage{}, done: make(chan struct{}), stderr: &testbin.Buffer{}, width: width, height: height}
	cmd.Stdout, cmd.Stderr = b.stderr, b.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	toChrome.Close()
	fromChrome.Close()
	go b.read(bufio.NewReader(theirs))
	t.Cleanup(b.close)

	var target struct{ TargetID string }
	if err := b.call("", "Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		t.Fatalf("chromium: %v\n%s", err, b.stderr)
	}
	var att struct{ SessionID string }
	if err := b.call("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att); err != nil {
		t.Fatal(err)
	}
	b.session = att.SessionID
	for _, m := range []string{"Page.enable", "Runtime.enable", "Log.enable"} {
		b.must(m, nil, nil)
	}
	b.must("Emulation.setDeviceMetricsOverride", map[string]any{"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}, nil)
	return b
}

func (b *browser) read(r *bufio.Reader) {
	defer close(b.done)
	for {
		raw, err := r.ReadBytes(0)
		if err != nil {
			return
		}
		var m cdpMessage
		if json.Unmarshal(raw[:len(raw)-1], &m) != nil {
			continue
		}
		if m.ID != 0 {
			b.mu.Lock()
			ch := b.waiting[m.ID]
			delete(b.waiting, m.ID)
			b.mu.Unlock()
			if ch != nil {
				ch <- m
			}
			continue
		}
		switch m.Method {
		case "Runtime.exceptionThrown":
			var p struct {
				ExceptionDetails struct {
					Text      string
					Exception struct{ Description string }
				}
			}
			json.Unmarshal(m.Params, &p)
			b.problem("exception: " + p.ExceptionDetails.Text + " " + p.ExceptionDetails.Exception.Description)
		case "Log.entryAdded":
			var p struct {
				Entry struct{ Level, Source, Text, URL string }
			}
			json.Unmarshal(m.Params, &p)
			if p.Entry.Level == "error" || p.Entry.Level == "warning" {
				b.problem("log " + p.Entry.Level + " (" + p.Entry.Source + "): " + p.Entry.Text + " " + p.Entry.URL)
			}
		case "Runtime.consoleAPICalled":
			var p struct {
				Type string
				Args []struct {
					Value       any
					Description string
				}
			}
			json.Unmarshal(m.Params, &p)
			if p.Type == "error" || p.Type == "warning" {
				var parts []string
				for _, a := range p.Args {
					parts = append(parts, fmt.Sprint(a.Value, a.Description))
				}
				b.problem("console." + p.Type + ": " + strings.Join(parts, " "))
			}
		}
	}
}

func (b *browser) problem(s string) {
	b.mu.Lock()
	b.problems = append(b.problems, s)
	b.mu.Unlock()
}

// call sends a command (to the page's session unless session is "") and
// decodes its result.
func (b *browser) call(session, method string, params, result any) error {
	if params == nil {
		params = map[string]any{}
	}
	p, err := json.Marshal(params)
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.next++
	id := b.next
	ch := make(chan cdpMessage, 1)
	b.waiting[id] = ch
	b.mu.Unlock()
	msg, _ := json.Marshal(cdpMessage{ID: id, Method: method, Params: p, SessionID: session})
	if _, err := b.w.Write(append(msg, 0)); err != nil {
		return err
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			return fmt.Errorf("%s: %s", method, m.Error.Message)
		}
		if result != nil {
			return json.Unmarshal(m.Result, result)
		}
		return nil
	case <-b.done:
		return fmt.Errorf("%s: chromium ended", method)
	case <-time.After(60 * time.Second):
		return fmt.Errorf("%s: no answer from chromium in 60 s", method)
	}
}

func (b *browser) must(method string, params, result any) {
	b.t.Helper()
	if err := b.call(b.session, method, params, result); err != nil {
		b.t.Fatal(err)
	}
}

func (b *browser) close() {
	b.call("", "Browser.close", nil, nil)
	select {
	case <-b.done:
	case <-time.After(5 * time.Second):
		b.cmd.Process.Kill()
	}
	b.cmd.Wait()
	b.w.Close()
}

// eval evaluates a JavaScript expression in the page (awaiting a promise)
// and decodes its value into out (nil: ignored).
func (b *browser) eval(expr string, out any) error {
	var r struct {
		Result struct {
			Value json.RawMessage
		}
		ExceptionDetails *struct {
			Text      string
			Exception struct{ Description string }
		}
	}
	if err := b.call(b.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &r); err != nil {
		return err
	}
	if e := r.ExceptionDetails; e != nil {
		return fmt.Errorf("%s: %s %s", expr, e.Text, e.Exception.Description)
	}
	if out != nil && len(r.Result.Value) > 0 {
		return json.Unmarshal(r.Result.Value, out)
	}
	return nil
}

func (b *browser) value(expr string, out any) {
	b.t.Helper()
	if err := b.eval(expr, out); err != nil {
		b.t.Fatal(err)
	}
}

// text is the visible text of the first element sel matches ("" when
// none).
func (b *browser) text(sel string) string {
	b.t.Helper()
	var s string
	b.value(fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e ? e.innerText : "" })()`, sel), &s)
	return s
}

// waitFor waits until the expression is true (up to a minute: the
// machine may be loaded), failing with what and the page's text.
func (b *browser) waitFor(what, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var ok bool
		if err := b.eval("!!("+expr+")", &ok); err != nil {
			b.t.Fatal(err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			b.mu.Lock()
			problems := strings.Join(b.problems, "\n")
			b.mu.Unlock()
			b.t.Fatalf("%s: not seen in 60 s; the page shows:\n%s\nscript errors:\n%s", what, b.text("main"), problems)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// navigate opens url and waits for the page to load.
func (b *browser) navigate(url string) {
	b.t.Helper()
	b.must("Page.navigate", map[string]any{"url": url}, nil)
	b.waitFor("page loaded", `document.readyState === "complete" && location.href.startsWith(`+jsString(url)+`)`)
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// click clicks the first visible element sel matches, with the mouse, once
// it stands still (live updates move things around) and nothing covers it.
// The element is scrolled to the top of the window, so that the browser's
// scroll anchoring keeps it in place when something above it grows; a
// click that still missed it (the page moved between aiming and clicking)
// is made again.
func (b *browser) click(sel string) {
	b.t.Helper()
	b.waitFor("a visible "+sel, fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e && e.offsetParent !== null && !e.disabled })()`, sel))
	aim := fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.scrollIntoView({block: "start"});
		const r = e.getBoundingClientRect(), x = r.left + r.width / 2, y = r.top + r.height / 2;
		const at = document.elementFromPoint(x, y);
		if (!e.__watched) { e.__watched = true; e.addEventListener("click", () => { window.__clicked = e }, {capture: true}) }
		window.__clicked = null; window.__aimed = e;
		return {x, y, hit: !!at && (at === e || e.contains(at))} })()`, sel)
	for try := 0; ; try++ {
		var pos, before struct {
			X, Y float64
			Hit  bool
		}
		for deadline := time.Now().Add(10 * time.Second); ; {
			b.value(aim, &before)
			time.Sleep(40 * time.Millisecond)
			b.value(aim, &pos)
			if pos.Hit && pos.X == before.X && pos.Y == before.Y {
				break
			}
			if time.Now().After(deadline) {
				b.t.Fatalf("%s does not stand still or is covered", sel)
			}
		}
		for _, typ := range []string{"mouseMoved", "mousePressed", "mouseReleased"} {
			b.must("Input.dispatchMouseEvent", map[string]any{"type": typ, "x": pos.X, "y": pos.Y, "button": "left", "clickCount": 1}, nil)
		}
		// The element aimed at, not what sel matches now: a click that
		// started a job has replaced the card it was on.
		var ok bool
		b.value(`window.__clicked !== null && window.__clicked === window.__aimed`, &ok)
		if ok {
			return
		}
		if try == 2 {
			b.t.Fatalf("clicks on %s keep missing it", sel)
		}
		b.t.Logf("the page moved under the pointer; clicking %s again", sel)
	}
}

// typeInto clicks a field and types text into it.
func (b *browser) typeInto(sel, text string) {
	b.t.Helper()
	b.click(sel)
	b.value(fmt.Sprintf(`document.querySelector(%q).select && document.querySelector(%q).select()`, sel, sel), nil)
	b.must("Input.insertText", map[string]any{"text": text}, nil)
}

// screenshot saves the whole page as a PNG in dir and returns its path.
func (b *browser) screenshot(dir, name string) string {
	b.t.Helper()
	var m struct {
		CSSContentSize struct{ Width, Height float64 }
	}
	b.must("Page.getLayoutMetrics", nil, &m)
	return b.capture(dir, name, map[string]any{"format": "png", "captureBeyondViewport": true,
		"clip": map[string]any{"x": 0, "y": 0, "width": m.CSSContentSize.Width, "height": m.CSSContentSize.Height, "scale": 1}})
}

// screenshotView saves what a window of width×height shows.
func (b *browser) screenshotView(dir, name string, width, height int) string {
	b.t.Helper()
	b.must("Emulation.setDeviceMetricsOverride", map[string]any{"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}, nil)
	defer b.must("Emulation.setDeviceMetricsOverride", map[string]any{"width": b.width, "height": b.height, "deviceScaleFactor": 1, "mobile": false}, nil)
	b.value(`window.scrollTo(0, 0)`, nil)
	return b.capture(dir, name, map[string]any{"format": "png"})
}

// capture takes a screenshot and saves it, compressed as far as PNG goes.
func (b *browser) capture(dir, name string, params map[string]any) string {
	var shot struct{ Data string }
	b.must("Page.captureScreenshot", params, &shot)
	raw, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		b.t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		b.t.Fatal(err)
	}
	var out bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&out, img); err != nil {
		b.t.Fatal(err)
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, out.Bytes(), 0o644); err != nil {
		b.t.Fatal(err)
	}
	return p
}

// checkProblems fails the test on any script error the page had.
func (b *browser) checkProblems() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.problems) > 0 {
		b.t.Errorf("the page had script errors:\n%s", strings.Join(b.problems, "\n"))
	}
}
