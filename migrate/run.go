package migrate

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/tuyaflash/tuyaflash/export"
)

// Results of a port's run.
const (
	// ResultMigrated: every step through record is done.
	ResultMigrated = "migrated"
	// ResultStopped: the steps up to --until are done.
	ResultStopped = "stopped"
	// ResultPlanned: --dry-run.
	ResultPlanned = "planned"
	// ResultFailed: a step failed (Error, Hint).
	ResultFailed = "failed"
	// ResultFlagged: the device that answered on the network is not the
	// one that was flashed; it was not recorded as migrated.
	ResultFlagged = "flagged"
	// ResultDuplicate: the port is the same adapter, or holds the same
	// device, as another port of the run, which does the work.
	ResultDuplicate = "duplicate"
)

// Report is what a run did on every port.
type Report struct {
	DryRun  bool          `json:"dry_run,omitempty"`
	Started time.Time     `json:"started"`
	Elapsed float64       `json:"elapsed_s"`
	Ports   []*PortResult `json:"ports"`
	// Failed counts the ports whose result is failed or flagged.
	Failed int `json:"failed"`
}

// PortResult is what a run did on one port.
type PortResult struct {
	Port    string `json:"port"`
	Chip    string `json:"chip,omitempty"`
	MAC     string `json:"mac,omitempty"`
	Virtual bool   `json:"virtual,omitempty"`
	// Key is the device's inventory record.
	Key          string `json:"key,omitempty"`
	Backup       string `json:"backup,omitempty"`
	BackupReused bool   `json:"backup_reused,omitempty"`
	// Firmware is the image written ("openbeken 1.17.670").
	Firmware string `json:"firmware,omitempty"`
	// Host is where the new firmware answers.
	Host   string `json:"host,omitempty"`
	Result string `json:"result"`
	Error  string `json:"error,omitempty"`
	Hint   string `json:"hint,omitempty"`
	// Err is the failure, for exit codes (not marshalled).
	Err   error        `json:"-"`
	Steps []StepResult `json:"steps"`
	// Templates are the pin template files saved beside the backup.
	Templates []string `json:"templates,omitempty"`
	// TinyTuya are the tinytuya files updated.
	TinyTuya []*export.Result `json:"tinytuya,omitempty"`
	// HomeAssistant says how the device gets into Home Assistant (also
	// saved beside the backup).
	HomeAssistant *export.HAHint `json:"home_assistant,omitempty"`
	Elapsed       float64        `json:"elapsed_s"`
}

// StepResult is how one step ended.
type StepResult struct {
	Step    Step    `json:"step"`
	Status  Status  `json:"status"`
	Message string  `json:"message,omitempty"`
	Elapsed float64 `json:"elapsed_s"`
}

// Step returns the result of step s, nil when it did not run.
func (p *PortResult) Step(s Step) *StepResult {
	for i := range p.Steps {
		if p.Steps[i].Step == s {
			return &p.Steps[i]
		}
	}
	return nil
}

// Run migrates the devices on o.Ports, each port in its own goroutine. It
// returns an error, having touched no device, when the options or the
// checks made before connecting fail (a *UsageError for bad options);
// otherwise a Report, whose Failed counts the ports that failed. One
// port's failure never stops the others; ctx ends them all.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	ports, err := o.expandPorts()
	if err != nil {
		return nil, err
	}
	if err := o.precheck(ctx, ports); err != nil {
		return nil, err
	}
	rep := &Report{DryRun: o.DryRun, Started: time.Now()}
	h := &hub{obs: o.Observer}
	reg := newRegistry()
	var wg sync.WaitGroup
	seenSim := map[string]int{}
	for _, port := range ports {
		label := port
		if IsVirtualPort(port) {
			// Each sim: port is a virtual device of its own: a repeated
			// one is the next instance of its chip (sim:bk7231n#2; an
			// instance name gets -2), and the Connector opens that.
			seenSim[port]++
			if n := seenSim[port]; n > 1 {
				sep := "#"
				if strings.Contains(port, "#") {
					sep = "-"
				}
				label = fmt.Sprintf("%s%s%d", port, sep, n)
			}
			port = label
		}
		res := &PortResult{Port: label}
		rep.Ports = append(rep.Ports, res)
		file := label
		if !IsVirtualPort(port) {
			if f, err := o.ResolvePort(port); err == nil {
				file = f
			}
		}
		if other, dup := reg.adapter(file, label); dup {
			res.Result = ResultDuplicate
			res.Error = fmt.Sprintf("same adapter as %s (%s): not opened twice", other, file)
			h.emit(Event{Time: time.Now(), Port: label, Kind: KindPortEnd, Message: res.Error, Result: res})
			continue
		}
		r := &runner{o: &o, port: port, label: label, file: file, hub: h, reg: reg, res: res}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.run(ctx)
		}()
	}
	wg.Wait()
	for _, p := range rep.Ports {
		if p.Result == ResultFailed || p.Result == ResultFlagged {
			rep.Failed++
		}
	}
	rep.Elapsed = time.Since(rep.Started).Seconds()
	return rep, nil
}

// Table renders the summary table: port, chip, MAC, backup, firmware, IP,
// result.
func (r *Report) Table() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PORT\tCHIP\tMAC\tBACKUP\tFIRMWARE\tIP\tRESULT")
	for _, p := range r.Ports {
		bk := filepath.Base(p.Backup)
		if p.Backup == "" {
			bk = ""
		}
		if p.BackupReused && bk != "" {
			bk += " (reused)"
		}
		res := p.Result
		if p.Error != "" {
			res += ": " + p.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Port, dash(p.Chip), dash(p.MAC), dash(bk), dash(p.Firmware), dash(p.Host), res)
	}
	tw.Flush()
	return b.String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// registry is what the ports of one run share: which adapter each opened,
// which device identity each works on, and the computer's Wi-Fi (joining a
// real device's access point is one at a time).
type registry struct {
	mu       sync.Mutex
	adapters map[string]string // device file → port label
	owners   map[string]*claim // device identity → the port working on it
	ap       sync.Mutex
}

type claim struct {
	port string
	done chan struct{}
}

func newRegistry() *registry {
	return &registry{adapters: map[string]string{}, owners: map[string]*claim{}}
}

// adapter registers a device file; dup reports another port of the run
// with the same file.
func (g *registry) adapter(file, port string) (other string, dup bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if other, ok := g.adapters[file]; ok {
		return other, true
	}
	g.adapters[file] = port
	return "", false
}

// claim makes port the owner of identity id. When another port owns it,
// claim returns that port and a channel closed when it is done instead.
func (g *registry) claim(id, port string) (release func(), other string, wait <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c, ok := g.owners[id]; ok {
		return nil, c.port, c.done
	}
	c := &claim{port: port, done: make(chan struct{})}
	g.owners[id] = c
	return func() {
		g.mu.Lock()
		delete(g.owners, id)
		g.mu.Unlock()
		close(c.done)
	}, "", nil
}
