package serve

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/tuyaflash/tuyaflash/backup"
	"github.com/tuyaflash/tuyaflash/internal/virtual"
	"github.com/tuyaflash/tuyaflash/transport"
)

// PortView is one serial port the page offers.
type PortView struct {
	transport.PortInfo
	// Virtual: a virtual device served inside tuyaflash ("sim:…").
	Virtual bool `json:"virtual"`
	// Given: named on the command line (--port), not listed by the
	// system.
	Given bool `json:"given,omitempty"`
	// Sim is what the data folder keeps of a virtual device (nil when
	// none is kept yet: its first job makes it).
	Sim *SimView `json:"sim,omitempty"`
}

// SimView is a virtual device kept in the data folder (virtual.List): its
// flash and identity persist from one job, or one command, to the next.
type SimView struct {
	// Spec is the device's canonical port (sim:CHIP[#NAME]).
	Spec string `json:"spec"`
	MAC  string `json:"mac"`
	// Station is where its firmware's web server appears once online.
	Station string `json:"station,omitempty"`
	// Origin is what its flash was first made from.
	Origin  string    `json:"origin"`
	Created time.Time `json:"created"`
}

// PortsView is the port list.
type PortsView struct {
	Ports []PortView `json:"ports"`
	// Error is why the system's list could not be read (the virtual
	// and given ports are still listed).
	Error string `json:"error,omitempty"`
}

// portWatch polls the system's port list, so that the page sees adapters
// as they are plugged and unplugged.
type portWatch struct {
	s *Server
	// updating makes the updates one at a time, so that a list read
	// earlier never replaces (or goes out after) one read later.
	updating sync.Mutex
	mu       sync.Mutex
	last     *PortsView
	json     []byte
}

// list reads the ports now.
func (p *portWatch) list() *PortsView {
	v := &PortsView{Ports: []PortView{}}
	sys, err := p.s.cfg.ListPorts()
	if err != nil {
		v.Error = "list ports: " + err.Error()
	}
	seen := map[string]bool{}
	for _, pi := range sys {
		pi.VID, pi.PID = backup.HexID(pi.VID), backup.HexID(pi.PID)
		v.Ports = append(v.Ports, PortView{PortInfo: pi})
		seen[pi.Name] = true
	}
	// The adapters bench flashing uses first, then the other serial
	// ports, in the system's order.
	slices.SortStableFunc(v.Ports, func(a, b PortView) int {
		return rank(a) - rank(b)
	})
	// Then the virtual devices: those offered (one per chip, and any
	// given with --port) and those the data folder keeps (sim:CHIP#NAME
	// made by an earlier job or command), in the simulators' chip order.
	stored, err := virtual.List(p.s.cfg.VirtualDir)
	if err != nil && v.Error == "" {
		v.Error = "list virtual devices: " + err.Error()
	}
	kept := map[string]*SimView{}
	for _, d := range stored {
		kept[d.Spec] = &SimView{Spec: d.Spec, MAC: d.MAC, Station: d.Station, Origin: d.Origin, Created: d.Created}
	}
	var sims, given []PortView
	for _, name := range p.s.cfg.ExtraPorts {
		if seen[name] {
			continue
		}
		seen[name] = true
		if !virtual.IsSpec(name) {
			given = append(given, PortView{PortInfo: transport.PortInfo{Name: name}, Given: true})
			continue
		}
		pv := PortView{PortInfo: transport.PortInfo{Name: name}, Virtual: true}
		if spec, err := virtual.ParseSpec(name); err == nil {
			pv.Sim = kept[spec.String()]
			seen[spec.String()] = true
		}
		sims = append(sims, pv)
	}
	for _, d := range stored {
		if !seen[d.Spec] {
			seen[d.Spec] = true
			sims = append(sims, PortView{PortInfo: transport.PortInfo{Name: d.Spec}, Virtual: true, Sim: kept[d.Spec]})
		}
	}
	slices.SortStableFunc(sims, func(a, b PortView) int { return simOrder(a.Name) - simOrder(b.Name) })
	v.Ports = append(append(v.Ports, sims...), given...)
	return v
}

// simOrder places a virtual device by its chip in virtual.Chips()'s order
// (unknown chips last).
func simOrder(port string) int {
	spec, err := virtual.ParseSpec(port)
	if err != nil {
		return len(virtual.Chips())
	}
	if i := slices.Index(virtual.Chips(), spec.Chip); i >= 0 {
		return i
	}
	return len(virtual.Chips())
}

func rank(p PortView) int {
	switch {
	case p.Likely:
		return 0
	case p.USB:
		return 1
	}
	return 2
}

// current is the last list read (reading it when there is none yet).
func (p *portWatch) current() *PortsView {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == nil {
		p.last = p.list()
		p.json, _ = json.Marshal(p.last)
	}
	return p.last
}

// update reads the list and sends it to the page when it changed.
func (p *portWatch) update() {
	p.updating.Lock()
	defer p.updating.Unlock()
	v := p.list()
	b, _ := json.Marshal(v)
	p.mu.Lock()
	changed := string(b) != string(p.json)
	p.last, p.json = v, b
	p.mu.Unlock()
	if changed {
		p.s.hub.publish("ports", v)
	}
}

func (p *portWatch) run(ctx context.Context) { p.s.poll(ctx, p.update, nil) }

// poll calls f now, then every PollInterval and whenever poke has
// something, until ctx ends.
func (s *Server) poll(ctx context.Context, f func(), poke <-chan struct{}) {
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		f()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-poke:
		}
	}
}

// handlePorts is GET /api/ports.
func (s *Server) handlePorts(w http.ResponseWriter, r *http.Request) {
	s.ports.update()
	writeJSON(w, http.StatusOK, s.ports.current())
}
