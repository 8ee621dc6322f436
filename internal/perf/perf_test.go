package perf

import (
	"testing"
	"time"
)

// TestLineRoundTrip: what Line writes, ParseLine reads back, with go test's
// GOMAXPROCS suffix and the real-time marker.
func TestLineRoundTrip(t *testing.T) {
	r := Result{Name: "bk7231n/backup-2MiB/ch340/921600", Clock: "model", Wall: 29 * time.Second, LinkUp: 700 * time.Millisecond,
		Data: 2 << 20, Wire: 2 << 20, Baud: 921600, Busy: 5243 * time.Millisecond, CPU: 40 * time.Millisecond}
	for _, tc := range []struct {
		line string
		real bool
	}{
		{r.Line(), false},
		{func() string { q := r; q.Clock = "real"; return q.Line() }(), true},
	} {
		p, ok := ParseLine(tc.line)
		if !ok || p.Name != r.Name || p.Real != tc.real {
			t.Fatalf("ParseLine(%q) = %+v, %v", tc.line, p, ok)
		}
		if p.Wall() != r.Wall || p.Metrics["%limit"] != 96.5 || p.Metrics["cpu-ms/MiB"] != 20 {
			t.Errorf("metrics %v", p.Metrics)
		}
	}
	// As go test -bench prints Bench's rows: tabs, padding, the
	// metrics in its own order.
	bench := "BenchmarkPerf/bk7231n/rewrite-identical-1MiB/ch340/2000000/realtime-2         \t       1\t3441379073 ns/op\t        98.58 %limit\t   2000000 baud\t         2.621 busy-s\t         0.7712 linkup-s"
	if p, ok := ParseLine(bench); !ok || !p.Real || p.Name != "bk7231n/rewrite-identical-1MiB/ch340/2000000" || p.Wall() != 3441379073 || p.Metrics["%limit"] != 98.58 || p.Metrics["baud"] != 2000000 {
		t.Errorf("a go test -bench line: %+v %v", p, ok)
	}
	if _, ok := ParseLine("BenchmarkPerf/x-2 1 100 ns/op 5"); ok {
		t.Error("odd field count accepted")
	}
	if p, ok := ParseLine("BenchmarkPerf/a/b/c/921600-2 1 100 ns/op"); !ok || p.Name != "a/b/c/921600" {
		t.Errorf("GOMAXPROCS suffix: %+v %v", p, ok)
	}
}

// TestLimitAndShare: the limit is the payload's wire time plus the busy
// time (plus link-up for rows that move no payload).
func TestLimitAndShare(t *testing.T) {
	r := Result{Wall: 4 * time.Second, LinkUp: time.Second, Wire: 92160, Baud: 921600, Busy: time.Second}
	if got := r.Limit(); got != 2*time.Second {
		t.Errorf("limit %v, want 2s", got)
	}
	if got := r.Share(); got != 50 {
		t.Errorf("share %v, want 50", got)
	}
	r.LimitWithLinkUp = true
	if got := r.Share(); got != 75 {
		t.Errorf("share with link-up %v, want 75", got)
	}
}

// TestRegression fails a row more than 10 % below its recorded share.
func TestRegression(t *testing.T) {
	rec := Parsed{Name: "x", Metrics: map[string]float64{"%limit": 90, "ns/op": 1e9}}
	for _, tc := range []struct {
		share float64
		fail  bool
	}{{95, false}, {90, false}, {81.1, false}, {80.9, true}, {40, true}} {
		// Limit 1 s: the wall time that gives the share.
		got := Result{Name: "x", Wall: time.Duration(float64(time.Second) * 100 / tc.share), Busy: time.Second}
		if msg := Regression(got, rec, Tolerance); (msg != "") != tc.fail {
			t.Errorf("share %.1f %%: %q", tc.share, msg)
		}
	}
}
