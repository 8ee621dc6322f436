package serve

import (
	"errors"
	"net/http"

	"github.com/tuyaflash/tuyaflash/internal/virtual"
	"github.com/tuyaflash/tuyaflash/transport"
)

// ForgetView is POST /api/virtual/forget's answer.
type ForgetView struct {
	// Port is the device's canonical port (sim:CHIP[#NAME]).
	Port string `json:"port"`
	// Forgotten is false when the data folder kept nothing for it.
	Forgotten bool `json:"forgotten"`
}

// handleForget is POST /api/virtual/forget: start a virtual device over,
// as `tuyaflash sim --forget CHIP[#NAME]` does (virtual.Forget): its flash
// and identity are deleted and its next job makes it anew. A device a job
// or a command is using is not deleted.
func (s *Server) handleForget(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Port string `json:"port"`
	}
	if err := decodeBody(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, codeUsage, err.Error(), "")
		return
	}
	spec, err := virtual.ParseSpec(req.Port)
	if err != nil {
		writeError(w, http.StatusBadRequest, codeUsage, err.Error(), "")
		return
	}
	if spec.File != "" {
		writeError(w, http.StatusBadRequest, codeUsage, req.Port+": name the device as sim:CHIP[#NAME], without a flash file", "")
		return
	}
	if j := s.jobs.running(spec.String()); j != nil {
		writeError(w, http.StatusConflict, codeBusy, (&BusyError{Port: spec.String(), Job: j.id, Kind: j.req.Kind}).Error(), "wait for it to end, or stop it")
		return
	}
	forgotten, err := virtual.Forget(spec, s.cfg.VirtualDir)
	switch {
	case errors.Is(err, transport.ErrBusy):
		writeError(w, http.StatusConflict, codeBusy, err.Error(), "another program (a terminal's tuyaflash) uses it: let it end first")
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, "failure", err.Error(), "")
		return
	}
	if forgotten {
		s.cfg.Logf("virtual device %s forgotten", spec)
	}
	s.ports.update()
	writeJSON(w, http.StatusOK, ForgetView{Port: spec.String(), Forgotten: forgotten})
}
