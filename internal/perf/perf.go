// Package perf is the harness of tuyaflash's speed suite (issue 13): rows
// that run a whole command — link-up included — against a simulated chip
// over a paced link, inside a testing/synctest bubble so that the link and
// the simulator's flash timing advance a fake clock (the modelled wall
// time), while CPU time is measured with the real clock. Results are
// printed in Go's benchmark format, compared with recorded values in CI,
// and turned into README's table by internal/benchtable.
//
// The modelled time is honest about what it leaves out: fake time only
// advances when every goroutine of the bubble is blocked, so host CPU time
// is not in it. Rows therefore report CPU per MiB beside it.
package perf

import (
	"context"
	"fmt"

	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tuyaflash/tuyaflash/transport"
)

// Result is what one row measured.
type Result struct {
	// Name is the row's name: chip/operation/adapter/baud, e.g.
	// "bk7231n/backup-2MiB/ch340/921600".
	Name string
	// Clock is "model" (fake time in a synctest bubble) or "real".
	Clock string
	// Wall is the time of the whole command as a user runs it, link-up
	// included.
	Wall time.Duration
	// LinkUp is the part of Wall until the chip was connected,
	// identified and switched to the transfer rate.
	LinkUp time.Duration
	// Data is how many image bytes the command handles (read, written
	// or checked), for the effective rate.
	Data int64
	// Wire is how many payload bytes must cross the wire at Baud at the
	// least (the compressed stream for a compressed write, 0 for an
	// identical re-write).
	Wire int64
	// Baud is the transfer rate the payload moves at.
	Baud int
	// Busy is the chip's busy time that cannot overlap the transfer (flash
	// erase and program, the chip's own checksum over the data).
	Busy time.Duration
	// LimitWithLinkUp adds LinkUp to the limit: for rows that move no
	// payload (identical re-writes), whose limit is link-up plus the
	// chip's checksum time.
	LimitWithLinkUp bool
	// CPU is the process's CPU time (user + system) during the row,
	// simulator and link model included: an upper bound of the client's.
	CPU time.Duration
}

// Limit is the row's physical limit: the payload's wire time plus the
// busy time that cannot overlap it (plus link-up where LimitWithLinkUp).
func (r Result) Limit() time.Duration {
	l := transport.WireTime(r.Wire, r.Baud) + r.Busy
	if r.LimitWithLinkUp {
		l += r.LinkUp
	}
	return l
}

// Share is Limit over Wall, in percent.
func (r Result) Share() float64 {
	if r.Wall <= 0 {
		return 0
	}
	return 100 * r.Limit().Seconds() / r.Wall.Seconds()
}

// Rate is the effective rate in kB/s (image bytes over wall time).
func (r Result) Rate() float64 {
	if r.Wall <= 0 {
		return 0
	}
	return float64(r.Data) / r.Wall.Seconds() / 1000
}

// CPUPerMiB is the CPU time per MiB of image handled, in milliseconds.
func (r Result) CPUPerMiB() float64 {
	if r.Data <= 0 {
		return 0
	}
	return r.CPU.Seconds() * 1000 / (float64(r.Data) / (1 << 20))
}

// benchPrefix starts every result line.
const benchPrefix = "BenchmarkPerf/"

// Line formats r as one line of Go's benchmark format: ns/op is the wall
// time, the other metrics follow with their units.
func (r Result) Line() string {
	name := r.Name
	if r.Clock == "real" {
		name += "/realtime"
	}
	var b strings.Builder
	b.WriteString(benchPrefix + name + " 1")
	for _, m := range r.metrics() {
		fmt.Fprintf(&b, " %s %s", strconv.FormatFloat(m.v, 'f', m.prec, 64), m.unit)
	}
	return b.String()
}

// metric is one value of a result line, with its unit and the decimals it
// is written with.
type metric struct {
	v    float64
	unit string
	prec int
}

// metrics are r's values in the order of a result line (ns/op first).
func (r Result) metrics() []metric {
	return []metric{
		{float64(r.Wall.Nanoseconds()), "ns/op", 0},
		{r.Share(), "%limit", 1},
		{r.Limit().Seconds(), "limit-s", 2},
		{r.LinkUp.Seconds(), "linkup-s", 2},
		{r.Rate(), "kB/s", 1},
		{r.CPUPerMiB(), "cpu-ms/MiB", 1},
		{float64(r.Data), "data-B", 0},
		{float64(r.Wire), "wire-B", 0},
		{float64(r.Baud), "baud", 0},
		{r.Busy.Seconds(), "busy-s", 3},
	}
}

// Parsed is a result line read back: the row's name and its metrics by
// unit ("ns/op", "%limit", …).
type Parsed struct {
	Name    string
	Real    bool
	Metrics map[string]float64
}

// ParseLine reads a line written by Result.Line (or by go test -bench with
// a "-N" CPU suffix on the name); ok is false for any other line.
func ParseLine(s string) (p Parsed, ok bool) {
	f := strings.Fields(s)
	if len(f) < 4 || !strings.HasPrefix(f[0], benchPrefix) || len(f)%2 != 0 {
		return p, false
	}
	name := strings.TrimPrefix(f[0], benchPrefix)
	if i := strings.LastIndexByte(name, '-'); i > 0 && i > strings.LastIndexByte(name, '/') {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			name = name[:i] // GOMAXPROCS suffix
		}
	}
	if n, found := strings.CutSuffix(name, "/realtime"); found {
		p.Real, name = true, n
	}
	p.Name = name
	p.Metrics = map[string]float64{}
	for i := 2; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return Parsed{}, false
		}
		p.Metrics[f[i+1]] = v
	}
	return p, true
}

// Wall returns the parsed wall time.
func (p Parsed) Wall() time.Duration { return time.Duration(p.Metrics["ns/op"]) }

// Regression compares a result with its recorded value on the same model
// and describes a drop of the share of the limit by more than tolerance
// (0.10: 10 %); "" when there is none.
func Regression(got Result, recorded Parsed, tolerance float64) string {
	want := recorded.Metrics["%limit"]
	if want <= 0 {
		return ""
	}
	if got.Share() < want*(1-tolerance) {
		return fmt.Sprintf("%s: %.1f %% of the limit (%.2f s), recorded %.1f %% (%.2f s): more than %.0f %% below",
			got.Name, got.Share(), got.Wall.Seconds(), want, recorded.Wall().Seconds(), 100*tolerance)
	}
	return ""
}

// SortNames sorts row names in suite order: by everything but the baud
// rate, then by baud rate numerically.
func SortNames(names []string) {
	sort.SliceStable(names, func(i, j int) bool {
		pi, bi := splitBaud(names[i])
		pj, bj := splitBaud(names[j])
		if pi != pj {
			return pi < pj
		}
		return bi < bj
	})
}

func splitBaud(name string) (string, int) {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return name, 0
	}
	b, err := strconv.Atoi(name[i+1:])
	if err != nil {
		return name, 0
	}
	return name[:i], b
}

// Adapter is one USB adapter model of the suite (transport.ParseAdapter's
// names), with its latency timer lowered or not.
type Adapter struct {
	Model      string
	LowLatency bool
}

// String names the adapter in row names: "ch340", "ftdi",
// "ftdi-lowlatency".
func (a Adapter) String() string {
	if a.LowLatency {
		return a.Model + "-lowlatency"
	}
	return a.Model
}

// Link returns the options of a paced link through a at baud.
func (a Adapter) Link(baud int) (transport.LinkOptions, error) {
	ad, err := transport.ParseAdapter(a.Model)
	if err != nil {
		return transport.LinkOptions{}, err
	}
	return transport.LinkOptions{Baud: baud, Paced: true, Adapter: ad, LowLatency: a.LowLatency}, nil
}

// Adapters are the suite's adapter models: a CH340, an FTDI FT232R at its
// default 16 ms latency timer, and the FTDI with the timer lowered to 1 ms.
var Adapters = []Adapter{{"ch340", false}, {"ftdi", false}, {"ftdi", true}}

// Rates are the suite's transfer rates.
var Rates = []int{115200, 460800, 921600, 1500000, 2000000}

// Serve makes a paced link through a (both ends at baud), runs serve — a
// simulator's Serve — on the device end and returns the host end with a
// function that stops the simulator and waits for it (defer it: a
// synctest bubble ends only when every goroutine has).
func (a Adapter) Serve(baud int, serve func(ctx context.Context, dev *transport.PipePort)) (*transport.PipePort, func(), error) {
	link, err := a.Link(baud)
	if err != nil {
		return nil, nil, err
	}
	host, dev := transport.Pipe(link)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { serve(ctx, dev); close(served) }()
	return host, func() {
		cancel()
		host.Close()
		dev.Close()
		<-served
	}, nil
}
