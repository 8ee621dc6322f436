package perf

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

var (
	flagAll    = flag.Bool("perf.all", false, "speed suite: run every row (minutes; hours as benchmarks), not only the CI rows")
	flagRun    = flag.String("perf.run", "", "speed suite: run only the rows whose name matches this regular expression")
	flagUpdate = flag.Bool("perf.update", false, "speed suite: record this run's CI-row results in the package's recorded file")
)

// Tolerance is how far below its recorded share of the limit a CI row may
// fall before the suite fails.
const Tolerance = 0.10

// Row is one row of the suite.
type Row struct {
	// Name is chip/operation/adapter/baud.
	Name string
	// CI rows run by default (go test ./..., -short) and are compared
	// with their recorded values; the others run with -perf.all or
	// -perf.run.
	CI bool
	// Run runs the whole command once and returns what it measured
	// (everything but Name and Clock, which the suite fills in; CPU
	// too when Run leaves it 0: then the row's setup counts). It
	// runs inside a synctest bubble (Suite), or in real time as a
	// benchmark (Bench), and must leave no goroutine behind.
	Run func(t testing.TB) Result
}

// Suite runs the selected rows, prints each result as a benchmark line on
// stdout (visible with go test -v), and fails a row whose share of the
// limit dropped more than Tolerance below the value recorded in the file
// recorded (benchmark lines; -perf.update rewrites it from this run).
func Suite(t *testing.T, recorded string, rows []Row) {
	var sel *regexp.Regexp
	if *flagRun != "" {
		var err error
		if sel, err = regexp.Compile(*flagRun); err != nil {
			t.Fatalf("-perf.run: %v", err)
		}
	}
	want, err := ReadRecorded(recorded)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("recorded speed figures: %v", err)
	}
	var lines []string
	for _, row := range rows {
		switch {
		case sel != nil:
			if !sel.MatchString(row.Name) {
				continue
			}
		case !*flagAll && !row.CI:
			continue
		}
		t.Run(row.Name, func(t *testing.T) {
			res := runRow(t, row)
			if t.Failed() {
				return
			}
			fmt.Println(res.Line())
			t.Logf("%.2f s (limit %.2f s, link-up %.2f s): %.1f %% of the limit, %.1f kB/s, CPU %.1f ms/MiB",
				res.Wall.Seconds(), res.Limit().Seconds(), res.LinkUp.Seconds(), res.Share(), res.Rate(), res.CPUPerMiB())
			if row.CI {
				lines = append(lines, res.Line())
			}
			if rec, ok := want[row.Name]; ok && !*flagUpdate {
				if msg := Regression(res, rec, Tolerance); msg != "" {
					t.Error(msg)
				}
			} else if row.CI && !*flagUpdate {
				t.Errorf("%s has no recorded value in %s: run go test -run TestPerf -perf.update and commit the file", row.Name, recorded)
			}
		})
	}
	if *flagUpdate && !t.Failed() && len(lines) > 0 {
		if err := writeRecorded(recorded, lines); err != nil {
			t.Fatal(err)
		}
	}
}

// runRow runs one row in a bubble (the modelled clock) and measures its
// CPU.
func runRow(t *testing.T, row Row) Result {
	var res Result
	cpu := CPUTime()
	synctest.Test(t, func(t *testing.T) { res = row.Run(t) })
	res.Clock = "model"
	if res.CPU == 0 {
		res.CPU = CPUTime() - cpu
	}
	res.Name = row.Name
	return res
}

// Bench runs rows as benchmarks (go test -bench), in real time: the same
// command, simulator and paced link as Suite's rows, on the wall clock.
// Each row is a sub-benchmark named after it plus "/realtime"; each
// iteration runs the whole command once, and the row reports, besides
// ns/op (the command's mean wall time, link-up included, without the
// simulator's setup), the suite's metrics: %limit (the share of the
// physical limit), limit-s, linkup-s, kB/s, cpu-ms/MiB, data-B, wire-B,
// baud and busy-s — the lines internal/benchtable reads.
//
// A row takes as long as the command does (a 2 MiB backup at 921600 about
// 30 s), so Bench runs the CI rows unless -bench names rows (a pattern
// with a "/"), -perf.run selects some, or -perf.all asks for every row.
func Bench(b *testing.B, rows []Row) {
	var sel *regexp.Regexp
	if *flagRun != "" {
		var err error
		if sel, err = regexp.Compile(*flagRun); err != nil {
			b.Fatalf("-perf.run: %v", err)
		}
	}
	named := false
	if f := flag.Lookup("test.bench"); f != nil {
		named = strings.Contains(f.Value.String(), "/")
	}
	for _, row := range rows {
		switch {
		case sel != nil:
			if !sel.MatchString(row.Name) {
				continue
			}
		case !*flagAll && !named && !row.CI:
			continue
		}
		b.Run(row.Name+"/realtime", func(b *testing.B) {
			var sum Result
			n := 0
			for b.Loop() {
				cpu := CPUTime()
				res := row.Run(b)
				if res.CPU == 0 {
					res.CPU = CPUTime() - cpu
				}
				n++
				sum.Wall += res.Wall
				sum.LinkUp += res.LinkUp
				sum.CPU += res.CPU
				sum.Busy, sum.Data, sum.Wire, sum.Baud, sum.LimitWithLinkUp = res.Busy, res.Data, res.Wire, res.Baud, res.LimitWithLinkUp
			}
			if n == 0 || b.Failed() {
				return
			}
			mean := sum
			mean.Wall /= time.Duration(n)
			mean.LinkUp /= time.Duration(n)
			mean.CPU /= time.Duration(n)
			mean.Name, mean.Clock = row.Name, "real"
			for _, m := range mean.metrics() {
				b.ReportMetric(m.v, m.unit)
			}
		})
	}
}

// ReadRecorded reads a file of benchmark lines into results by row name
// (model-clock lines only).
func ReadRecorded(path string) (map[string]Parsed, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]Parsed{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if p, ok := ParseLine(sc.Text()); ok && !p.Real {
			out[p.Name] = p
		}
	}
	return out, sc.Err()
}

const recordedHeader = `# Speed suite: recorded CI rows (go test -run TestPerf -perf.update).
# A row fails when its share of the limit (%limit) drops more than 10 % below
# the value here. Re-record after a deliberate change of the link or
# simulator model, and say so in the commit.
`

func writeRecorded(path string, lines []string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(recordedHeader+strings.Join(lines, "\n")+"\n"), 0o644)
}
