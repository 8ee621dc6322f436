package serve

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tuyaflash/tuyaflash/internal/netguard"
	"github.com/tuyaflash/tuyaflash/internal/virtual"
	"github.com/tuyaflash/tuyaflash/inventory"
	"github.com/tuyaflash/tuyaflash/transport"
)

// DefaultAddr is where the server listens unless told otherwise.
const DefaultAddr = "127.0.0.1:8231"

// Defaults of Config.
const (
	DefaultPollInterval = time.Second
	// DefaultStopWait is how long Serve waits, once its context ends,
	// for the jobs to stop (the commands stop within 0.8 s of an
	// interruption).
	DefaultStopWait = 900 * time.Millisecond
	// DefaultKeepJobs is how many finished jobs are listed.
	DefaultKeepJobs = 100
)

// Config configures a Server.
type Config struct {
	// Runner runs the jobs (required).
	Runner Runner
	// ListPorts lists the serial ports (transport.ListPorts when nil).
	ListPorts func() ([]transport.PortInfo, error)
	// ExtraPorts are offered besides the ports the system lists: the
	// virtual devices ("sim:bk7231n" …) and ports named on the command
	// line (pseudo-terminals, which the system does not list).
	ExtraPorts []string
	// VirtualDir is the data folder whose kept virtual devices
	// (virtual.List) are offered besides ExtraPorts, and from which
	// POST /api/virtual/forget deletes them ("" = virtual.DataDir(), as
	// the command line's sim: ports use).
	VirtualDir string
	// InventoryPath is the inventory (inventory.DefaultPath when "").
	InventoryPath string
	// Version is tuyaflash's version, shown on the page.
	Version string
	// Firmware are the firmware names the migrate form suggests.
	Firmware []string
	// Token guards the API (a random one when ""): required on every
	// API request when the server is exposed beyond loopback, and on
	// state-changing requests that do not come from the page itself.
	Token string
	// PollInterval is how often ports and the inventory are looked at
	// (DefaultPollInterval).
	PollInterval time.Duration
	// Throttle is the shortest time between two updates of one job
	// sent to the page (DefaultThrottle).
	Throttle time.Duration
	// StopWait is how long Serve waits for the jobs once its context
	// ends (DefaultStopWait).
	StopWait time.Duration
	// KeepJobs is how many finished jobs are kept (DefaultKeepJobs).
	KeepJobs int
	// Logf logs what happens (jobs started and ended, refused requests);
	// nil logs nothing. Nothing secret is ever logged.
	Logf func(format string, a ...any)
}

// Server is the web app: static page, JSON API, server-sent events and the
// jobs it runs.
type Server struct {
	cfg  Config
	jobs jobs
	hub  *hub
	mux  *http.ServeMux

	// exposed: listening beyond loopback; every API request needs the
	// token.
	exposed bool
	// hosts are the Host names accepted when not exposed (DNS
	// rebinding defence).
	hosts map[string]bool

	// base is the context jobs run under (Serve's).
	baseMu sync.Mutex
	base   context.Context

	ports   *portWatch
	devices *deviceWatch
}

// New makes a server from cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Runner == nil {
		return nil, errors.New("serve: Config.Runner is required")
	}
	if cfg.ListPorts == nil {
		cfg.ListPorts = transport.ListPorts
	}
	if cfg.InventoryPath == "" {
		p, err := inventory.DefaultPath()
		if err != nil {
			return nil, err
		}
		cfg.InventoryPath = p
	}
	if cfg.Token == "" {
		b := make([]byte, 16)
		rand.Read(b)
		cfg.Token = hex.EncodeToString(b)
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.Throttle <= 0 {
		cfg.Throttle = DefaultThrottle
	}
	if cfg.StopWait <= 0 {
		cfg.StopWait = DefaultStopWait
	}
	if cfg.KeepJobs <= 0 {
		cfg.KeepJobs = DefaultKeepJobs
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	s := &Server{cfg: cfg, hosts: map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true}, base: context.Background()}
	s.jobs = jobs{busy: map[string]*job{}, keep: cfg.KeepJobs}
	s.hub = newHub(cfg.Throttle)
	s.ports = &portWatch{s: s}
	s.devices = &deviceWatch{s: s}
	s.routes()
	return s, nil
}

// Token is the API token (for scripts, and for the URL when exposed).
func (s *Server) Token() string { return s.cfg.Token }

// Exposed reports whether the server listens beyond loopback.
func (s *Server) Exposed() bool { return s.exposed }

// Handler is the server's HTTP handler (tests).
func (s *Server) Handler() http.Handler { return s.guard(s.mux) }

// Listen opens addr (DefaultAddr when "") and tells the server how it is
// reached: beyond loopback, every API request needs the token.
func (s *Server) Listen(addr string) (net.Listener, error) {
	if addr == "" {
		addr = DefaultAddr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	// An address beyond loopback was asked for in so many words (--addr):
	// the token guards it. The address the listener got decides (a name
	// may resolve elsewhere).
	s.exposed = netguard.CheckListen(addr, false, "") != nil || netguard.CheckListener(ln, false, "") != nil
	if host, _, err := net.SplitHostPort(addr); err == nil && host != "" {
		s.hosts[strings.ToLower(strings.Trim(host, "[]"))] = true
	}
	return ln, nil
}

// URL is the page's address on ln, with the token when the server is
// exposed.
func (s *Server) URL(ln net.Listener) string {
	a := ln.Addr().(*net.TCPAddr)
	host := a.IP.String()
	switch {
	case a.IP.IsUnspecified():
		host = "localhost"
		if s.exposed {
			host = hostName()
		}
	case a.IP.To4() == nil:
		host = "[" + host + "]"
	}
	u := fmt.Sprintf("http://%s:%d/", host, a.Port)
	if s.exposed {
		u += "?token=" + s.cfg.Token
	}
	return u
}

// hostName is this computer's name, for the URL printed when the server
// listens on every interface.
func hostName() string {
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
				return n.IP.String()
			}
		}
	}
	return "localhost"
}

// Serve answers on ln until ctx ends; then it stops every job (as Ctrl-C
// stops a command, with ctx's cause), waits up to StopWait for them,
// closes the connections and returns the jobs as they ended.
func (s *Server) Serve(ctx context.Context, ln net.Listener) ([]JobView, error) {
	s.baseMu.Lock()
	s.base = ctx
	s.baseMu.Unlock()
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.ports.run(ctx) }()
	go func() { defer wg.Done(); s.devices.run(ctx) }()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	// The jobs run under ctx: they are stopping now.
	wctx, cancel := context.WithTimeout(context.Background(), s.cfg.StopWait)
	s.jobs.wait(wctx)
	cancel()
	s.hub.close()
	sctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	srv.Shutdown(sctx)
	cancel()
	srv.Close()
	wg.Wait()
	var out []JobView
	for _, j := range s.jobs.list() {
		out = append(out, j.view())
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return out, err
}

func (s *Server) baseContext() context.Context {
	s.baseMu.Lock()
	defer s.baseMu.Unlock()
	return s.base
}

// jobChanged sends the job to the page (throttled) and, when it ended,
// looks at the inventory at once.
func (s *Server) jobChanged(j *job) {
	s.hub.publishJob(j)
	if !j.running() {
		s.devices.poke()
		if virtual.IsSpec(j.req.Port) {
			// Its first job made a virtual device: the port list
			// shows it kept.
			s.ports.update()
		}
	}
}

// apiError is the error object of the API.
type apiError struct {
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Hint    *string `json:"hint"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// API error codes besides the command line's.
const (
	codeUsage     = "usage"
	codeNotFound  = "not_found"
	codeBusy      = "busy"
	codeForbidden = "forbidden"
)

func writeError(w http.ResponseWriter, status int, code, msg, hint string) {
	e := apiError{Code: code, Message: msg}
	if hint != "" {
		e.Hint = &hint
	}
	writeJSON(w, status, map[string]any{"error": e})
}
