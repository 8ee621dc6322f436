package serve

import (
	"embed"
	"errors"
	"io/fs"
	"net/http"
	"path/filepath"
	"slices"

	"github.com/tuyaflash/tuyaflash/inventory"
	"github.com/tuyaflash/tuyaflash/migrate"
)

//go:embed static
var staticFiles embed.FS

// Static is the page: HTML, CSS and JavaScript, no build step, nothing
// loaded from elsewhere.
func Static() fs.FS {
	sub, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err)
	}
	return sub
}

// Route is one API endpoint (docs/api.md describes each).
type Route struct {
	Method, Path string
}

// routeTable is the API: each endpoint and its handler.
var routeTable = []struct {
	Route
	handle func(*Server, http.ResponseWriter, *http.Request)
}{
	{Route{"GET", "/api/info"}, (*Server).handleInfo},
	{Route{"GET", "/api/ports"}, (*Server).handlePorts},
	{Route{"GET", "/api/jobs"}, (*Server).handleJobs},
	{Route{"POST", "/api/jobs"}, (*Server).handleStart},
	{Route{"GET", "/api/jobs/{id}"}, (*Server).handleJob},
	{Route{"POST", "/api/jobs/{id}/stop"}, (*Server).handleStop},
	{Route{"GET", "/api/devices"}, (*Server).handleDevices},
	{Route{"POST", "/api/devices/reveal"}, (*Server).handleReveal},
	{Route{"GET", "/api/devices/templates"}, (*Server).handleTemplates},
	{Route{"GET", "/api/devices/template"}, (*Server).handleTemplate},
	{Route{"POST", "/api/virtual/forget"}, (*Server).handleForget},
	{Route{"GET", "/api/layout"}, (*Server).handleLayout},
	{Route{"GET", "/api/modules"}, (*Server).handleModules},
	{Route{"GET", "/api/events"}, (*Server).events},
}

// Routes lists the API's endpoints.
func Routes() []Route {
	out := make([]Route, len(routeTable))
	for i, rt := range routeTable {
		out[i] = rt.Route
	}
	return out
}

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	for _, rt := range routeTable {
		s.mux.HandleFunc(rt.Method+" "+rt.Path, func(w http.ResponseWriter, r *http.Request) { rt.handle(s, w, r) })
	}
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, codeNotFound, "no such API endpoint: "+r.Method+" "+r.URL.Path, "docs/api.md lists the endpoints")
	})
	files := http.FileServerFS(Static())
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

// InfoView is GET /api/info.
type InfoView struct {
	Version string `json:"version"`
	// TokenRequired: the server is reachable from the network and every
	// API request needs the token.
	TokenRequired bool     `json:"token_required"`
	Inventory     string   `json:"inventory"`
	Kinds         []Kind   `json:"kinds"`
	Steps         []string `json:"steps"`
	Firmware      []string `json:"firmware"`
	// VirtualSSID is the network the virtual devices join.
	VirtualSSID string `json:"virtual_ssid"`
}

func (s *Server) info() InfoView {
	v := InfoView{Version: s.cfg.Version, TokenRequired: s.exposed, Inventory: s.cfg.InventoryPath, Kinds: Kinds,
		Firmware: s.cfg.Firmware, VirtualSSID: migrate.VirtualSSID}
	if v.Firmware == nil {
		v.Firmware = []string{}
	}
	for _, st := range migrate.Steps {
		v.Steps = append(v.Steps, string(st))
	}
	return v
}

func (s *Server) handleInfo(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.info())
}

// handleJobs is GET /api/jobs: every job, newest first.
func (s *Server) handleJobs(w http.ResponseWriter, r *http.Request) {
	views := []JobView{}
	for _, j := range s.jobs.list() {
		views = append(views, j.view())
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": views})
}

func (s *Server) jobOf(w http.ResponseWriter, r *http.Request) *job {
	j := s.jobs.get(r.PathValue("id"))
	if j == nil {
		writeError(w, http.StatusNotFound, codeNotFound, "no job "+r.PathValue("id"), "GET /api/jobs lists the jobs")
	}
	return j
}

// handleJob is GET /api/jobs/{id}.
func (s *Server) handleJob(w http.ResponseWriter, r *http.Request) {
	if j := s.jobOf(w, r); j != nil {
		writeJSON(w, http.StatusOK, j.view())
	}
}

// handleStart is POST /api/jobs: start a job.
func (s *Server) handleStart(w http.ResponseWriter, r *http.Request) {
	var req Request
	if err := decodeBody(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, codeUsage, err.Error(), "")
		return
	}
	if err := req.check(); err != nil {
		writeError(w, http.StatusBadRequest, codeUsage, err.Error(), "")
		return
	}
	if req.Kind == KindRestore {
		if err := s.knownBackup(req.Backup); err != nil {
			writeError(w, http.StatusBadRequest, codeUsage, err.Error(), "restore takes the backups the inventory lists ('tuyaflash restore' in a terminal takes any file)")
			return
		}
	}
	j, err := s.jobs.start(s.baseContext(), req, s.cfg.Runner, s.jobChanged)
	var busy *BusyError
	if errors.As(err, &busy) {
		writeError(w, http.StatusConflict, codeBusy, err.Error(), "wait for it to end, or stop it")
		return
	}
	s.cfg.Logf("job %s: %s on %s started", j.id, req.Kind, req.Port)
	go func() {
		<-j.done
		v := j.view()
		msg := v.State
		if v.Error != nil {
			msg += ": " + v.Error.Message
		}
		s.cfg.Logf("job %s: %s on %s %s", j.id, req.Kind, req.Port, msg)
	}()
	writeJSON(w, http.StatusAccepted, j.view())
}

// knownBackup checks that path is a backup the inventory lists.
func (s *Server) knownBackup(path string) error {
	inv, err := inventory.Open(s.cfg.InventoryPath)
	if err != nil {
		return err
	}
	clean := filepath.Clean(path)
	for _, d := range inv.Devices() {
		if slices.ContainsFunc(d.Backups, func(b inventory.BackupRef) bool { return filepath.Clean(b.Path) == clean }) {
			return nil
		}
	}
	return errors.New("backup " + path + " is not in the inventory")
}

// handleStop is POST /api/jobs/{id}/stop: stop a job as Ctrl-C stops the
// command (it keeps what the command keeps: a partial backup, the sectors
// written, the migration journal).
func (s *Server) handleStop(w http.ResponseWriter, r *http.Request) {
	j := s.jobOf(w, r)
	if j == nil {
		return
	}
	if j.running() {
		j.stop()
		s.cfg.Logf("job %s: stop pressed", j.id)
	}
	writeJSON(w, http.StatusAccepted, j.view())
}
