package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/tuyaflash/tuyaflash/firmware"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/internal/session"
	"github.com/tuyaflash/tuyaflash/internal/termsafe"
	"github.com/tuyaflash/tuyaflash/migrate"
	"github.com/tuyaflash/tuyaflash/serve"
)

func init() { register(serveCmd()) }

func serveCmd() *command {
	var addr string
	var noOpen bool
	var ports []string
	c := &command{name: "serve", summary: "the bench in a browser: adapters, jobs and devices, live",
		noJSON: "serve prints no result; its API answers in JSON (docs/api.md)", interrupts: true,
		long: `Starts a local web app (printed, and opened in the browser when run in a
terminal) that shows the adapters as they are plugged in, runs detect, backup,
migrate and restore on them (one job per adapter, several adapters at once)
with live progress, and lists the devices in the inventory. The jobs are the
commands themselves: same checks, same files, same port lock as in a terminal.
It listens on 127.0.0.1 only; --addr on another interface needs a token (in the
printed address). Ctrl-C stops the server and its jobs within a second, leaving
what Ctrl-C leaves in a command (a partial backup to resume, the journal).
The API is documented in docs/api.md.`}
	c.flags = func(fs *pflag.FlagSet) {
		fs.StringVar(&addr, "addr", serve.DefaultAddr, "`host:port` to listen on (another interface than loopback needs the token printed in the address)")
		fs.BoolVar(&noOpen, "no-open", false, "do not open the page in a browser")
		fs.StringArrayVarP(&ports, "port", "p", nil, "also offer this serial `device` (pseudo-terminals are not listed by the system), or a virtual device sim:CHIP[:FLASHFILE]; repeatable")
	}
	c.run = func(e *env, args []string) error {
		if len(args) > 0 {
			return usagef("serve takes no arguments")
		}
		for _, p := range ports {
			if _, _, err := simSpec(p); err != nil {
				return err
			}
		}
		srv, err := serve.New(serve.Config{Runner: jobRunner{}, ExtraPorts: append(virtualPorts(), ports...),
			Version: version(), Firmware: firmwareNames(e.ctx), Logf: logTo(e.stderr)})
		if err != nil {
			return err
		}
		ln, err := srv.Listen(addr)
		if err != nil {
			hint := "choose another address with --addr"
			if errors.Is(err, syscall.EADDRINUSE) {
				hint = "another program uses this address (perhaps another 'tuyaflash serve': open its page), or choose another with --addr"
			}
			return &flasher.HintError{Err: fmt.Errorf("listen on %s: %w", addr, err), Hint: hint}
		}
		url := srv.URL(ln)
		if srv.Exposed() {
			fmt.Fprintf(e.stderr, "warning: %s is reachable from the network: anyone who has the address below (with its token) can use your adapters and see your devices\n", addr)
		}
		fmt.Fprintf(e.stdout, "tuyaflash serve: %s\n", url)
		fmt.Fprintf(e.stderr, "scripts: send the header %s: %s (docs/api.md); Ctrl-C stops the server and its jobs\n", serve.TokenHeader, srv.Token())
		if !noOpen && e.terminal(e.stdout) {
			openBrowser(e, url)
		}
		stopped := make(chan time.Time, 1)
		context.AfterFunc(e.ctx, func() { stopped <- time.Now() })
		views, err := srv.Serve(e.ctx, ln)
		var at time.Time
		select {
		case at = <-stopped:
		default:
		}
		// What the server's end left behind, as each command would
		// say after Ctrl-C.
		for _, v := range views {
			if v.State == serve.StateRunning || v.State == serve.StateStopping || !at.IsZero() && v.Ended.After(at) && v.State != serve.StateDone {
				fmt.Fprintln(e.stderr, jobEndLine(v))
			}
		}
		return err
	}
	return c
}

// logTo is the server's log on w: a line each, with the time. Ports and
// messages come from requests and devices: control characters are shown
// as escapes (termsafe), never sent to the terminal.
func logTo(w io.Writer) func(format string, a ...any) {
	return func(format string, a ...any) {
		fmt.Fprintf(w, "%s %s\n", time.Now().Format("15:04:05"), termsafe.Clean(fmt.Sprintf(format, a...)))
	}
}

// jobEndLine is the line the server prints, once stopped, for a job
// that did not end by itself.
func jobEndLine(v serve.JobView) string {
	return termsafe.Clean(fmt.Sprintf("job %s (%s on %s): %s", v.ID, v.Request.Kind, v.Request.Port, jobEnd(v)))
}

// jobEnd says how a job was left when the server stopped.
func jobEnd(v serve.JobView) string {
	switch {
	case v.Error == nil:
		return "did not stop in time; its state is unknown"
	case v.Error.Hint != nil:
		return v.Error.Message + "; " + *v.Error.Hint
	}
	return v.Error.Message
}

// virtualPorts are the built-in virtual devices the page offers: one per
// simulated chip.
func virtualPorts() []string {
	var out []string
	for _, n := range simNames() {
		out = append(out, "sim:"+n)
	}
	return out
}

// firmwareNames are the catalogue's names (and demo), for the migrate form.
func firmwareNames(ctx context.Context) []string {
	names := []string{migrate.DemoFirmware}
	m, err := firmware.Default()
	if err != nil {
		return names
	}
	for _, f := range m.Firmwares {
		if !slices.Contains(names, f.Name) {
			names = append(names, f.Name)
		}
	}
	return names
}

// openBrowser opens url in the desktop's browser, unless tuyaflash runs as
// root through sudo (the browser would run as root too).
func openBrowser(e *env, url string) {
	if os.Geteuid() == 0 && os.Getenv("SUDO_USER") != "" {
		fmt.Fprintf(e.stderr, "(running as root through sudo: open the address in your browser yourself)\n")
		return
	}
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return
		}
		cmd = exec.Command("xdg-open", url)
	}
	if err := cmd.Start(); err == nil {
		go cmd.Wait()
	}
}

// jobRunner runs serve's jobs as the commands themselves, in this process:
// the same flags, checks, port lock and files, the same JSON document, and
// on an interruption (the stop button, Ctrl-C of the server) the same
// state left behind and the same message.
type jobRunner struct{}

// stopButton is the "signal" a job's stop button sends.
type stopButton struct{}

func (stopButton) String() string { return "the stop button" }
func (stopButton) Signal()        {}

// interruption turns the cause of a job's end into the command line's
// interruption.
func interruption(cause error) error {
	var ie *interruptError
	switch {
	case errors.As(cause, &ie):
		return ie
	case errors.Is(cause, serve.ErrStopped):
		return &interruptError{sig: stopButton{}}
	}
	return &interruptError{}
}

// jobArgs is the command line of a job: what a script would run.
func jobArgs(req serve.Request) []string {
	args := []string{string(req.Kind), "--port", req.Port, "--json"}
	switch req.Kind {
	case serve.KindMigrate:
		args = append(args, "--events")
		for _, f := range []struct{ flag, v string }{{"firmware", req.Firmware}, {"ssid", req.SSID}, {"host", req.Host}, {"until", req.Until}} {
			if f.v != "" {
				args = append(args, "--"+f.flag+"="+f.v)
			}
		}
		if req.WiFiPassword != "" {
			args = append(args, "--wifi-password="+req.WiFiPassword)
		}
	case serve.KindRestore:
		if req.Force {
			args = append(args, "--force")
		}
		if req.Yes {
			args = append(args, "--yes")
		}
		args = append(args, "--", req.Backup)
	}
	return args
}

func (jobRunner) Run(ctx context.Context, req serve.Request, obs migrate.Observer) json.RawMessage {
	jctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancel(nil)
	stop := context.AfterFunc(ctx, func() { cancel(interruption(context.Cause(ctx))) })
	defer stop()
	var doc bytes.Buffer
	lines := session.LinesTo((&jobLines{obs: obs, report: "tuyaflash " + string(req.Kind) + ":"}).line)
	runWith(jctx, jobArgs(req), strings.NewReader(""), &doc, lines, func(e *env) {
		e.progressTo, e.notifyTo = &jobProgress{obs: obs}, jobNotify(obs)
	})
	lines.Flush()
	return doc.Bytes()
}

// jobNotify turns a command's instructions, warnings and notes into
// events.
func jobNotify(obs migrate.Observer) flasher.Notify {
	return func(e flasher.Event) {
		k := migrate.KindNote
		switch e.Kind {
		case flasher.Action:
			k = migrate.KindAction
		case flasher.Warning:
			k = migrate.KindWarning
		}
		obs.Observe(migrate.Event{Kind: k, Message: e.Message})
	}
}

// jobLines turns what a command still prints on stderr into events, a
// line at a time (session.LinesTo): migrate's --events lines as they are,
// "warning: " lines as warnings, other lines as notes. The failure report
// at the end (from "tuyaflash KIND:" on) is in the JSON document and left
// out.
type jobLines struct {
	obs    migrate.Observer
	report string
	failed bool
}

func (w *jobLines) line(l string) {
	var ev migrate.Event
	switch {
	case strings.HasPrefix(l, "{") && json.Unmarshal([]byte(l), &ev) == nil && ev.Kind != "":
	case w.failed || strings.HasPrefix(l, w.report):
		w.failed = true
		return
	case strings.HasPrefix(l, "warning: "):
		ev = migrate.Event{Kind: migrate.KindWarning, Message: strings.TrimPrefix(l, "warning: ")}
	case strings.TrimSpace(l) != "":
		ev = migrate.Event{Kind: migrate.KindNote, Message: strings.TrimSpace(l)}
	default:
		return
	}
	w.obs.Observe(ev)
}

// jobProgress turns a command's transfer progress into events.
type jobProgress struct {
	obs   migrate.Observer
	mu    sync.Mutex
	op    string
	addr  uint32
	done  int64
	total int64
}

func (p *jobProgress) Begin(op string, addr uint32, total int64) {
	p.mu.Lock()
	p.op, p.addr, p.done, p.total = op, addr, 0, total
	p.mu.Unlock()
	p.obs.Observe(migrate.Event{Kind: migrate.KindProgress, Op: op, Addr: addr, Total: total})
}

func (p *jobProgress) Advance(n int64) {
	p.mu.Lock()
	p.done = min(max(p.done+n, 0), max(p.total, 0))
	ev := migrate.Event{Kind: migrate.KindProgress, Op: p.op, Addr: p.addr, Done: p.done, Total: p.total}
	p.mu.Unlock()
	p.obs.Observe(ev)
}

func (p *jobProgress) End(error) {}
