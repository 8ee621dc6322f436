//go:build linux

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/tuyaflash/tuyaflash/firmware/fwtest"
	"github.com/tuyaflash/tuyaflash/transport"
)

// `tuyaflash serve` as a person uses it: the page in a real (headless)
// Chromium, against virtual devices; and the server's own promises
// (Ctrl-C, the port lock) from outside.

// server is a running `tuyaflash serve`.
type server struct {
	p     *proc
	url   string
	token string
}

var (
	urlLine   = regexp.MustCompile(`tuyaflash serve: (http://\S+)`)
	tokenLine = regexp.MustCompile(`X-Tuyaflash-Token: ([0-9a-f]+)`)
)

// startServe runs `tuyaflash serve` on a free loopback port.
func startServe(t *testing.T, store string, args ...string) *server {
	t.Helper()
	p := start(t, store, append([]string{"serve", "--addr", "127.0.0.1:0", "--no-open"}, args...)...)
	p.waitUntil(t, "the address", func() bool { return urlLine.MatchString(p.stdout.String()) && tokenLine.MatchString(p.stderr.String()) })
	t.Cleanup(func() {
		if t.Failed() { // what the server said, for the failure's reader
			t.Logf("tuyaflash serve's stderr:\n%s", p.stderr.String())
		}
	})
	return &server{p: p, url: urlLine.FindStringSubmatch(p.stdout.String())[1], token: tokenLine.FindStringSubmatch(p.stderr.String())[1]}
}

// api calls the API as a script does (with the token) and decodes the
// answer into out.
func (s *server) api(t *testing.T, method, path string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, strings.TrimSuffix(s.url, "/")+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Tuyaflash-Token", s.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return resp.StatusCode
}

// events opens the event stream as the page does, reads the start of its
// first event and leaves it open until the test ends.
func (s *server) events(t *testing.T) {
	t.Helper()
	req, err := http.NewRequest("GET", strings.TrimSuffix(s.url, "/")+"/api/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Tuyaflash-Token", s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	first := make([]byte, len("event: "))
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "event: " {
		t.Fatalf("event stream: %d %q %v", resp.StatusCode, first, err)
	}
}

// screenshotDir is where the browser tests leave their screenshots for a
// reviewer: $TUYAFLASH_SCREENSHOTS, else tuyaflash-screenshots in the
// temporary folder (never in the repository).
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("TUYAFLASH_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "tuyaflash-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// port is the selector of a port's card on the Adapters page.
func port(name string) string { return fmt.Sprintf(`.port[data-port=%q]`, name) }

// TestServeInBrowser drives the page in headless Chromium: two virtual
// devices are migrated at once; a backup on an adapter (a simulated chip
// on a pseudo-terminal, with the real chip's timing) is watched, stopped
// and resumed; the power-cycle prompt waits on an adapter where nothing
// answers; a device's local key is revealed; templates, flash layout and
// wiring are shown. Screenshots of each view go to screenshotDir.
// (TestServeCtrlC measures how fast Ctrl-C ends the server with the page
// connected: measurements run serially.)
func TestServeInBrowser(t *testing.T) {
	needBrowser(t)
	t.Parallel()
	store := t.TempDir()
	// Paced at the wire's speed: a backup there takes about 30 s, long
	// enough to stop it halfway on a loaded machine (unpaced, it ended
	// in 10 s before the test's stop click: CI).
	slow := startPacedSim(t, "--chip", "bk7231n", "--timing", "--mac", "D8:1F:12:00:00:42")
	silent, err := transport.OpenPTY(115200)
	if err != nil {
		t.Skip(err)
	}
	defer silent.Close()
	srv := startServe(t, store, "--port", slow.tty, "--port", silent.SlavePath())
	b := startBrowser(t, 1280, 900)
	shots := screenshotDir(t)
	b.navigate(srv.url)
	b.waitFor("the live connection", `document.querySelector("#conn.live")`)
	b.waitFor("the adapter given with --port", `document.querySelector(`+jsString(port(slow.tty))+`)`)
	b.waitFor("the virtual devices", `document.querySelector(`+jsString(port("sim:esp8266"))+`)`)
	if got := b.text(port(slow.tty) + " .adapter"); got != "given with --port" {
		t.Errorf("the pseudo-terminal is described as %q", got)
	}

	t.Run("two migrations at once up to the reboot", func(t *testing.T) {
		b.t = t
		dir := t.TempDir()
		ua := filepath.Join(dir, "OpenBK7231N_UA_1.17.999.bin")
		esp := filepath.Join(dir, "tasmota.bin")
		os.WriteFile(ua, fwtest.App(fwtest.SigTuya, 300000, 7), 0o644)
		os.WriteFile(esp, fwtest.ESPImage(3, 0x20, 200000), 0o644)
		for _, m := range []struct{ port, fw string }{{"sim:esp8266", esp}, {"sim:bk7231n", ua}} {
			card := port(m.port)
			b.click(card + ` [data-act=migrate]`)
			b.typeInto(card+` .migrate-form [name=firmware]`, m.fw)
			b.value(`(() => { const s = document.querySelector(`+jsString(card+` .migrate-form [name=until]`)+`); s.value = "reboot"; s.dispatchEvent(new Event("change")) })()`, nil)
			b.click(card + ` .migrate-form button[type=submit]`)
		}
		for _, p := range []string{"sim:bk7231n", "sim:esp8266"} {
			b.waitFor(p+" migrated up to the reboot", `document.querySelector(`+jsString(port(p)+` .job[data-state=done]`)+`)`)
			steps := b.text(port(p) + " .job .steps")
			for _, st := range []string{"✓ detect", "✓ backup", "firmware", "✓ write", "✓ reboot", "– provision"} {
				if !strings.Contains(steps, st) {
					t.Errorf("%s: steps %q lack %q", p, steps, st)
				}
			}
		}
	})

	t.Run("restore from the page", func(t *testing.T) {
		b.t = t
		card := port("sim:bk7231n")
		b.click(card + ` [data-act=restore]`)
		var options []string
		b.value(`[...document.querySelectorAll(`+jsString(card+` .restore-form option`)+`)].map(o => o.textContent)`, &options)
		pick := ""
		for _, o := range options {
			if strings.Contains(o, "02:42:4B:72:31:01") && strings.Contains(o, "bk7231n-") {
				pick = o
			}
		}
		if pick == "" {
			t.Fatalf("the virtual BK7231N's backup is not offered: %q", options)
		}
		b.value(`(() => { const s = document.querySelector(`+jsString(card+` .restore-form select`)+`);
			s.value = [...s.options].find(o => o.textContent === `+jsString(pick)+`).value; })()`, nil)
		b.click(card + ` .restore-form button[type=submit]`)
		b.waitFor("the restore", `(() => { const j = document.querySelector(`+jsString(card+` .job`)+`); return j && j.querySelector(".title").innerText.endsWith("restore") && j.dataset.state === "done" })()`)
		if s := b.text(card + " .job .summary"); !strings.Contains(s, "Restored and verified") {
			t.Errorf("restore: %q", s)
		}
	})

	t.Run("migrations verified on the virtual network", func(t *testing.T) {
		b.t = t
		for _, p := range []string{"sim:bk7231n", "sim:esp8266"} {
			b.click(port(p) + ` [data-act=migrate]`)
			b.value(`(() => { const s = document.querySelector(`+jsString(port(p)+` .migrate-form [name=until]`)+`); s.value = ""; const f = document.querySelector(`+jsString(port(p)+` .migrate-form [name=firmware]`)+`); f.value = "" })()`, nil)
			b.click(port(p) + ` .migrate-form button[type=submit]`)
		}
		for _, p := range []string{"sim:bk7231n", "sim:esp8266"} {
			b.waitFor(p+" migrated", `(() => { const j = document.querySelector(`+jsString(port(p)+` .job`)+`); return j && j.dataset.state === "done" && j.querySelector(".steps").innerText.includes("✓ record") })()`)
		}
		b.click(`nav a[data-view=devices]`)
		for _, fam := range []string{"BK7231N", "ESP8266"} {
			b.waitFor("the virtual "+fam+" verified in the device list", `[...document.querySelectorAll("#virtual-device-list .device")].some(c =>
				c.querySelector(".badge.good") && c.querySelector(".badge.good").innerText === "verified" &&
				c.querySelector("dd").innerText.startsWith(`+jsString(fam)+`) && c.innerText.includes("✓ verified"))`)
		}
		b.screenshot(shots, "devices-verified")
		b.click(`nav a[data-view=adapters]`)
	})

	t.Run("backup stopped and resumed, the power-cycle prompt", func(t *testing.T) {
		b.t = t
		card := port(slow.tty)
		b.value(`(() => {
			window.__probe = {t0: 0, shown: 0, first: 0, seen: []};
			document.addEventListener("click", () => { if (!__probe.t0) __probe.t0 = performance.now() }, {capture: true, once: true});
			new MutationObserver(() => {
				if (!__probe.shown && document.querySelector(`+jsString(card+" .job")+`)) __probe.shown = performance.now();
				const p = document.querySelector(`+jsString(card+" .progress")+`);
				if (!p || p.hidden) return;
				const d = +p.dataset.done;
				if (d > 0 && !__probe.first) __probe.first = performance.now();
				if (d > 0 && __probe.seen[__probe.seen.length - 1] !== d) __probe.seen.push(d);
			}).observe(document.body, {subtree: true, childList: true, attributes: true});
		})()`, nil)
		b.click(card + ` [data-act=backup]`)
		b.waitFor("the progress advancing", `__probe.seen.length >= 3`)
		var probe struct {
			T0, Shown, First float64
			Seen             []int64
		}
		b.value(`__probe`, &probe)
		t.Logf("click to the job on the page: %.0f ms; to its first progress update: %.0f ms (the link-up, then %d bytes read)", probe.Shown-probe.T0, probe.First-probe.T0, probe.Seen[0])
		for i := 1; i < len(probe.Seen); i++ {
			if probe.Seen[i] <= probe.Seen[i-1] {
				t.Errorf("progress went back: %v", probe.Seen)
			}
		}
		if text := b.text(card + " .ptext"); !strings.Contains(text, "of 2 MiB") || !strings.Contains(text, "kB/s") || !strings.Contains(text, "left") {
			t.Errorf("progress line %q lacks size, rate or time left", text)
		}
		b.screenshot(shots, "adapters-backup-running")
		var first string
		b.value(`document.querySelector(`+jsString(card+" .job")+`).dataset.job`, &first)
		b.click(card + ` .job .stop`)
		b.waitFor("the job stopped", `document.querySelector(`+jsString(card+` .job[data-state=stopped]`)+`)`)
		if got := b.text(card + " .job .state"); got != "stopped · resumable" {
			t.Errorf("state badge %q", got)
		}
		if msg := b.text(card + " .job .emsg"); msg != "interrupted by the stop button" {
			t.Errorf("error %q", msg)
		}
		hint := b.text(card + " .job .ehint")
		for _, want := range []string{"the partial backup (0x000000-0x", "is kept in", "run the same command again to resume"} {
			if !strings.Contains(hint, want) {
				t.Errorf("hint %q lacks %q", hint, want)
			}
		}
		if partialSize(store) <= 0 {
			t.Fatalf("no partial backup kept in %s", store)
		}
		b.screenshot(shots, "adapters-backup-stopped")
		b.click(card + ` .job .again`)
		b.waitFor("the resumed backup running", `(() => { const j = document.querySelector(`+jsString(card+" .job")+`); return j && j.dataset.job !== `+jsString(first)+` && +j.querySelector(".progress").dataset.done > 0 })()`)

		// Nothing answers on this adapter: the tool waits for the
		// power-cycle, and the page says so, big.
		quiet := port(silent.SlavePath())
		b.click(quiet + ` [data-act=detect]`)
		b.waitFor("the power-cycle prompt", `(() => { const p = document.querySelector(`+jsString(quiet+" .job .prompt")+`); return p && !p.hidden && p.innerText.includes("power-cycle the module now") })()`)
		var title string
		b.value(`document.title`, &title)
		if !strings.HasPrefix(title, "⚡ (") || !strings.HasSuffix(title, ") tuyaflash") {
			t.Errorf("the tab's title %q does not say that a job waits", title)
		}
		var fontPx float64
		b.value(`parseFloat(getComputedStyle(document.querySelector(`+jsString(quiet+" .job .prompt")+`)).fontSize)`, &fontPx)
		if fontPx < 20 {
			t.Errorf("the prompt is %.0f px: not big", fontPx)
		}
		b.click(`nav a[data-view=jobs]`)
		b.waitFor("the jobs page", `!document.getElementById("jobs").hidden`)
		// README's picture (docs/serve.png is a copy of it).
		if p := b.screenshotView(shots, "readme", 1000, 640); fileSize(p) > 200<<10 {
			t.Errorf("%s has %d bytes: too heavy for README", p, fileSize(p))
		}
		b.screenshot(shots, "jobs")
		b.click(`nav a[data-view=adapters]`)
		b.click(quiet + ` .job .stop`)
		b.waitFor("the wait stopped", `document.querySelector(`+jsString(quiet+` .job[data-state=stopped]`)+`)`)
		if got := b.text(quiet + " .job .failure"); !strings.Contains(got, "interrupted by the stop button") || !strings.Contains(got, "nothing was read or written") {
			t.Errorf("stopped while waiting: %q", got)
		}
		b.waitFor("the resumed backup to finish", `(() => { const j = document.querySelector(`+jsString(card+" .job")+`); return j && j.dataset.job !== `+jsString(first)+` && j.dataset.state === "done" })()`)
		if s := b.text(card + " .job .summary"); !strings.Contains(s, "Backup saved") || !strings.Contains(s, "resumed after") {
			t.Errorf("the second run did not resume: %q", s)
		}
	})

	t.Run("devices: local key, templates, layout", func(t *testing.T) {
		b.t = t
		b.click(`nav a[data-view=devices]`)
		b.waitFor("a device with a Tuya config in the list", `document.querySelector("#devices .device .reveal")`)
		type device struct {
			Key  string
			Tuya *struct {
				LocalKey string `json:"local_key"`
			}
		}
		var inv struct {
			Devices        []device
			VirtualDevices []device `json:"virtual_devices"`
		}
		r := mustRun(t, store, "inventory", "--json", "--show-secrets")
		if err := json.Unmarshal([]byte(r.stdout), &inv); err != nil {
			t.Fatal(err)
		}
		key, local := "", ""
		for _, d := range append(inv.Devices, inv.VirtualDevices...) {
			if d.Tuya != nil && d.Tuya.LocalKey != "" {
				key, local = d.Key, d.Tuya.LocalKey
			}
		}
		if local == "" {
			t.Fatalf("no device with a local key in the inventory:\n%s", r.stdout)
		}
		var page string
		b.value(`document.body.innerText`, &page)
		var api json.RawMessage
		srv.api(t, "GET", "/api/devices", nil, &api)
		if strings.Contains(page, local) || strings.Contains(string(api), local) {
			t.Fatal("the local key is shown before it was asked for")
		}
		dev := fmt.Sprintf(`.device[data-key=%q]`, key)
		b.screenshot(shots, "devices")
		b.click(dev + ` .reveal`)
		b.waitFor("the local key", `document.querySelector(`+jsString(dev+` .secret-shown`)+`)`)
		if got := b.text(dev + ` .secret-shown`); got != local {
			t.Errorf("revealed %q, the inventory holds another key", got)
		}
		b.click(dev + ` .templates button`)
		b.waitFor("the pin templates", `document.querySelector(`+jsString(dev+` .template pre`)+`)`)
		if s := b.text(dev + ` .templates`); !strings.Contains(s, "obk") || !strings.Contains(s, "esphome") || !strings.Contains(s, "Download") {
			t.Errorf("templates: %q", s)
		}
		var segs []string
		b.value(`[...document.querySelectorAll(`+jsString(dev+` .layout-bar .seg`)+`)].map(s => s.className)`, &segs)
		if strings.Join(segs, ",") != "seg bootloader,seg app,seg rf,seg config,seg tuya" {
			t.Errorf("flash layout segments %v", segs)
		}
		b.screenshot(shots, "devices-revealed")
	})

	t.Run("wiring of the detected chip", func(t *testing.T) {
		b.t = t
		b.click(`nav a[data-view=adapters]`)
		card := port("sim:bk7231n")
		b.click(card + ` [data-act=wiring]`)
		// The virtual BK7231N's Tuya config says it is a CB2S.
		b.waitFor("the CB2S drawing", `document.querySelector(`+jsString(card+` .wiring svg.module[aria-label^="CB2S "]`)+`)`)
		if s := b.text(card + " .wiring figcaption"); !strings.Contains(s, "CB2S (BK7231N)") || !strings.Contains(s, "RX1 (P10)\tpin 5\t→ adapter TX") {
			t.Errorf("wiring: %q", s)
		}
		b.screenshot(shots, "adapters-wiring")
		b.click(card + ` .module-picker [data-module=CB3S]`)
		b.waitFor("the CB3S drawing", `document.querySelector(`+jsString(card+` .wiring svg.module[aria-label^="CB3S "]`)+`)`)
		b.click(card + ` .module-picker [data-module=CBLC5]`)
		b.waitFor("the CBLC5's pads, without a drawing", `(() => { const w = document.querySelector(`+jsString(card+` .wiring`)+`);
			return !w.querySelector("svg") && w.innerText.includes("pad TRX1") })()`)
	})
	b.t = t
	b.checkProblems()
	var weight int
	b.value(`performance.getEntriesByType("resource").concat(performance.getEntriesByType("navigation"))
		.filter(e => !e.name.includes("/api/")).reduce((n, e) => n + e.decodedBodySize, 0)`, &weight)
	t.Logf("page weight: %d bytes of HTML, CSS and JavaScript; screenshots in %s", weight, shots)

	// Ctrl-C with the page still connected.
	code, took := srv.p.interrupt(t, syscall.SIGINT)
	t.Logf("ended %v after Ctrl-C", took)
	if code != 0 || strings.Contains(srv.p.stderr.String(), "DATA RACE") {
		t.Errorf("exit %d after %v:\n%s", code, took, srv.p.stderr)
	}
}

// TestServeExposedInBrowser: beyond loopback the server warns, the
// printed address carries the token, the page works with it, and the API
// refuses whoever does not have it.
func TestServeExposedInBrowser(t *testing.T) {
	needBrowser(t)
	t.Parallel()
	store := t.TempDir()
	p := start(t, store, "serve", "--addr", "0.0.0.0:0", "--no-open")
	// The warning goes to stderr before the address goes to stdout, then
	// the scripts' line: two pipes, read apart, so wait for that line
	// (after the warning on stderr) as well as the address.
	p.waitUntil(t, "the address", func() bool {
		return urlLine.MatchString(p.stdout.String()) && tokenLine.MatchString(p.stderr.String())
	})
	url := urlLine.FindStringSubmatch(p.stdout.String())[1]
	if !strings.Contains(p.stderr.String(), "warning: 0.0.0.0:0 is reachable from the network") || !strings.Contains(url, "?token=") {
		t.Fatalf("no warning or no token:\n%s\n%s", url, p.stderr)
	}
	bare := url[:strings.Index(url, "?")]
	resp, err := http.Get(bare + "api/devices")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("the API without the token: %d", resp.StatusCode)
	}
	b := startBrowser(t, 1000, 700)
	b.navigate(url)
	b.waitFor("the live connection with the token", `document.querySelector("#conn.live") && document.querySelector(`+jsString(port("sim:bk7231n"))+`)`)
	b.click(port("sim:bk7231n") + ` [data-act=detect]`)
	b.waitFor("a detect through the cookie", `document.querySelector(`+jsString(port("sim:bk7231n")+` .job[data-state=done]`)+`)`)
	b.checkProblems()
}

// TestServeCtrlC: Ctrl-C ends the server and its running backup within a
// second, with a page connected to its event stream, and leaves the
// partial backup to resume from a terminal; while the page's job holds the
// adapter, a terminal cannot take it.
func TestServeCtrlC(t *testing.T) {
	store := t.TempDir()
	slow := startPacedSim(t, "--chip", "bk7231n", "--timing") // a backup of 30 s, to interrupt
	srv := startServe(t, store, "--port", slow.tty)
	var job struct{ ID string }
	if code := srv.api(t, "POST", "/api/jobs", map[string]any{"kind": "backup", "port": slow.tty}, &job); code != http.StatusAccepted {
		t.Fatalf("start: %d", code)
	}
	srv.p.waitUntil(t, "64 KiB of verified data", func() bool { return partialSize(store) >= 64<<10 })

	r := run(t, store, "detect", "--port", slow.tty)
	if r.code != 3 || !strings.Contains(r.stderr, "serve") || !strings.Contains(r.stderr, fmt.Sprint(srv.p.cmd.Process.Pid)) {
		t.Errorf("a terminal took the adapter the page's job holds:\n%s", r)
	}

	// A page stays connected to the event stream, as a browser's tab
	// does, until the server ends.
	srv.events(t)
	code, took := srv.p.interrupt(t, syscall.SIGINT)
	t.Logf("ended %v after Ctrl-C", took)
	if code != 0 || took > endsWithin || strings.Contains(srv.p.stderr.String(), "DATA RACE") {
		t.Fatalf("exit %d after %v, want 0 within %v:\n%s", code, took, endsWithin, srv.p.stderr)
	}
	out := srv.p.stderr.String()
	for _, want := range []string{"job 1 (backup on " + slow.tty + "): interrupted by Ctrl-C (SIGINT)", "the partial backup (0x000000-0x", "run the same command again to resume"} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr lacks %q:\n%s", want, out)
		}
	}
	r = mustRun(t, store, "backup", "--port", slow.tty)
	if !strings.Contains(r.stderr, "resuming an interrupted backup") {
		t.Errorf("the terminal's backup did not resume the page's:\n%s", r)
	}
}

func fileSize(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return -1
	}
	return st.Size()
}

// TestServeVirtualDevicesInBrowser: the page offers the virtual devices as
// the command line has them — one kept by an earlier command in a
// terminal, another added on the page and made by its first job (and then
// listed by `tuyaflash sim --list`), and Start over deleting it as `sim
// --forget` does.
func TestServeVirtualDevicesInBrowser(t *testing.T) {
	needBrowser(t)
	t.Parallel()
	store := t.TempDir()
	mustRun(t, store, "detect", "--port", "sim:esp8266#bench")
	srv := startServe(t, store)
	b := startBrowser(t, 1000, 800)
	b.navigate(srv.url)
	b.waitFor("the live connection", `document.querySelector("#conn.live")`)

	// listed is the MAC `tuyaflash sim --list` gives the device spec
	// ("" when it is not kept).
	listed := func(spec string) string {
		for _, l := range strings.Split(mustRun(t, store, "sim", "--list").stdout, "\n") {
			if f := strings.Fields(l); len(f) > 2 && f[0] == spec && f[1] == "MAC" {
				return f[2]
			}
		}
		return ""
	}
	bench := port("sim:esp8266#bench")
	b.waitFor("the device kept by the terminal's command", `document.querySelector(`+jsString(bench)+`)`)
	if mac, info := listed("sim:esp8266#bench"), b.text(bench+" .sim-info"); mac == "" || !strings.Contains(info, "MAC "+mac) {
		t.Errorf("the kept device's card says %q; sim --list gives MAC %q", info, mac)
	}

	b.value(`(() => { const s = document.querySelector("#new-sim [name=chip]"); s.value = "bk7231t" })()`, nil)
	b.typeInto(`#new-sim [name=name]`, "2")
	b.click(`#new-sim button[type=submit]`)
	card := port("sim:bk7231t#2")
	b.waitFor("the added device", `document.querySelector(`+jsString(card)+`)`)
	if info := b.text(card + " .sim-info"); !strings.Contains(info, "Not made yet") {
		t.Errorf("a device no job has made: %q", info)
	}
	b.click(card + ` [data-act=detect]`)
	b.waitFor("its detect", `document.querySelector(`+jsString(card+` .job[data-state=done]`)+`)`)
	if s := b.text(card + " .job .summary"); !strings.Contains(s, "BK7231T") {
		t.Errorf("detect on sim:bk7231t#2: %q", s)
	}
	mac := listed("sim:bk7231t#2")
	if mac == "" {
		t.Fatal("sim --list does not list the device the page made")
	}
	b.waitFor("its MAC on the card", `document.querySelector(`+jsString(card+" .sim-info")+`).innerText.includes(`+jsString("MAC "+mac)+`)`)
	b.screenshot(screenshotDir(t), "adapters-virtual")

	b.click(card + ` [data-act=forget]`)
	if got := b.text(card + ` [data-act=forget]`); got != "Delete its flash and identity" {
		t.Errorf("Start over asks %q before deleting", got)
	}
	b.click(card + ` [data-act=forget]`)
	b.waitFor("the device gone from the page", `!document.querySelector(`+jsString(card)+`)`)
	if mac := listed("sim:bk7231t#2"); mac != "" {
		t.Errorf("sim --list still lists sim:bk7231t#2 (MAC %s) after Start over", mac)
	}
	if listed("sim:esp8266#bench") == "" {
		t.Error("Start over of one device deleted another")
	}
	b.checkProblems()
}
