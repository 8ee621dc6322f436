// Package campaign is the randomized fault campaign of issue 14: every
// operation (detect, backup, write, restore, migrate) on every virtual chip
// (BK7231T, BK7231N, ESP8266 through the ROM loader and through the stub),
// each under a fault plan drawn from a seeded RNG out of everything the
// virtual bench can do, followed by the same command without faults, with
// the invariants of the issue checked after both.
//
// The package holds what the harness (campaign_test.go) and the README
// generator (campaign/readme) share: the plans (Draw), the checks that do not
// need a process (flash regions, inventory facts, error output) and the
// summary format. Run it with
//
//	go test ./campaign -run Campaign                      # short mode, as CI does
//	go test ./campaign -run Campaign -campaign.runs 1000  # the long campaign
//	go test ./campaign -run Campaign -campaign.seed N -v  # replay one run
package campaign

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// Op is one tuyaflash operation.
type Op string

// The operations of the campaign.
const (
	Detect  Op = "detect"
	Backup  Op = "backup"
	Write   Op = "write"
	Restore Op = "restore"
	Migrate Op = "migrate"
)

// Ops lists every operation in summary order.
var Ops = []Op{Detect, Backup, Write, Restore, Migrate}

// Target is a simulated chip and the way the client talks to it.
type Target struct {
	// Chip is the simulator's --chip name.
	Chip string
	// ROM makes the client use the ESP8266 ROM loader only (--no-stub).
	ROM bool
}

// String names the target as the summary does: bk7231t, bk7231n,
// esp8266-stub, esp8266-rom.
func (t Target) String() string {
	switch {
	case !t.ESP():
		return t.Chip
	case t.ROM:
		return t.Chip + "-rom"
	}
	return t.Chip + "-stub"
}

// ESP reports whether the target is an ESP8266.
func (t Target) ESP() bool { return strings.HasPrefix(t.Chip, "esp") }

// Targets lists every target in summary order: the Beken chips the
// simulator models (BK7231M left out: it is a BK7231N with another eFuse
// key, reported as one) and the ESP8266 with its stub and with the ROM
// loader alone, and the ESP8285 with the stub.
var Targets = []Target{{Chip: "bk7231t"}, {Chip: "bk7231n"}, {Chip: "bk7231u"}, {Chip: "bk7252"}, {Chip: "bk7238"}, {Chip: "bk7252n"},
	{Chip: "esp8266"}, {Chip: "esp8266", ROM: true}, {Chip: "esp8285"}}

// Supports reports whether the operation exists on the target: the ESP8266
// ROM loader cannot read flash, so it has no backup (and no migrate, whose
// second step is a backup).
func (t Target) Supports(op Op) bool {
	return !t.ROM || op == Detect || op == Write || op == Restore
}

// Kind is one kind of fault.
type Kind string

// The fault kinds: everything the virtual bench can do to a run.
const (
	Drop       Kind = "drop"          // bytes the chip sends are lost
	Corrupt    Kind = "corrupt"       // bytes the chip sends are changed
	Dup        Kind = "dup"           // bytes the chip sends arrive twice
	RxDrop     Kind = "rx-drop"       // bytes the host sends are lost
	RxCorrupt  Kind = "rx-corrupt"    // bytes the host sends are changed
	RxDup      Kind = "rx-dup"        // bytes the host sends arrive twice
	Delay      Kind = "delay"         // replies held back past the client's timeouts
	MaxBaud    Kind = "max-baud"      // an adapter that cannot hold the requested rate
	Disconnect Kind = "disconnect"    // the cable is pulled
	Unplug     Kind = "unplug"        // the USB adapter is pulled
	Reset      Kind = "reset"         // the chip resets in the middle of a command
	PowerLoss  Kind = "power-loss"    // power cut in the middle of an erase or a program
	Kill       Kind = "sigkill"       // tuyaflash is killed with SIGKILL
	FullDisk   Kind = "full-disk"     // writes fail with EFBIG past a file size limit
	ReadOnly   Kind = "read-only-dir" // the backup folder is on a read-only mount
)

// Kinds lists every fault kind in summary order.
var Kinds = []Kind{Drop, Corrupt, Dup, RxDrop, RxCorrupt, RxDup, Delay, MaxBaud, Disconnect, Unplug, Reset, PowerLoss, Kill, FullDisk, ReadOnly}

// Applies reports whether a fault kind can happen during op: a power loss
// needs an erase or a program, which only write, restore and migrate do.
func (k Kind) Applies(op Op) bool {
	return k != PowerLoss || op == Write || op == Restore || op == Migrate
}

// Plan is one run of the campaign: what is run, on what, with which faults.
type Plan struct {
	Seed   int64
	Op     Op
	Target Target
	// JSON runs the command with --json (one document expected).
	JSON bool
	// OwnBackup pre-seeds a verified backup of the device in the backup
	// folder and the inventory (migrate then reuses it; write needs no
	// --yes); without it only the other devices' backups are there.
	OwnBackup bool
	// Image is the write operation's image: "demo" (--firmware demo) or
	// "file" (a larger generated image file).
	Image string
	// Kinds are the fault kinds of the run (one, sometimes two).
	Kinds []Kind
	// SimArgs are the fault flags of `tuyaflash sim`.
	SimArgs []string
	// KillAfter is when tuyaflash gets SIGKILL, as a fraction of the
	// fault-free run's duration (Kill only).
	KillAfter float64
	// FileLimit is the child's RLIMIT_FSIZE in bytes (FullDisk only).
	FileLimit int64
	// ReadOnlyBackups mounts the backup folder read-only (ReadOnly only).
	ReadOnlyBackups bool
}

// Key names the fault-free run the plan is compared with: the same
// operation on the same target from the same files.
func (p Plan) Key() string {
	return fmt.Sprintf("%s/%s/own=%v/image=%s", p.Op, p.Target, p.OwnBackup, p.Image)
}

// Has reports whether the plan holds fault kind k.
func (p Plan) Has(k Kind) bool {
	for _, x := range p.Kinds {
		if x == k {
			return true
		}
	}
	return false
}

// String is the plan on one line.
func (p Plan) String() string {
	s := fmt.Sprintf("seed %d: %s on %s (json=%v, own backup=%v", p.Seed, p.Op, p.Target, p.JSON, p.OwnBackup)
	if p.Image != "" {
		s += ", image " + p.Image
	}
	s += ") faults " + joinKinds(p.Kinds)
	if len(p.SimArgs) > 0 {
		s += " sim " + strings.Join(p.SimArgs, " ")
	}
	if p.Has(Kill) {
		s += fmt.Sprintf(" kill at %.0f%% of the clean run", p.KillAfter*100)
	}
	if p.Has(FullDisk) {
		s += fmt.Sprintf(" RLIMIT_FSIZE %d", p.FileLimit)
	}
	return s
}

func joinKinds(ks []Kind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, "+")
}

// Draw makes the plan of seed: the same seed gives the same plan.
func Draw(seed int64) Plan {
	r := rand.New(rand.NewPCG(uint64(seed), 0x7475796166))
	p := Plan{Seed: seed}
	for {
		p.Op = Ops[r.IntN(len(Ops))]
		p.Target = Targets[r.IntN(len(Targets))]
		if p.Target.Supports(p.Op) {
			break
		}
	}
	p.JSON = r.IntN(2) == 0
	p.OwnBackup = r.IntN(2) == 0
	if p.Op == Write {
		p.Image = "demo"
		if r.IntN(2) == 0 {
			p.Image = "file"
		}
	}
	n := 1
	if r.IntN(4) == 0 {
		n = 2
	}
	for len(p.Kinds) < n {
		k := Kinds[r.IntN(len(Kinds))]
		if k.Applies(p.Op) && !p.Has(k) && !(len(p.Kinds) == 1 && exclusive(p.Kinds[0], k)) {
			p.Kinds = append(p.Kinds, k)
		}
	}
	for _, k := range p.Kinds {
		p.SimArgs = append(p.SimArgs, p.draw(r, k)...)
	}
	if p.Has(Drop) || p.Has(Corrupt) || p.Has(Dup) || p.Has(RxDrop) || p.Has(RxCorrupt) || p.Has(RxDup) || p.Has(Delay) {
		p.SimArgs = append(p.SimArgs, "--seed", fmt.Sprint(1+r.Int64N(1<<30)))
	}
	return p
}

// exclusive reports whether two kinds cannot share a run: both end the link
// (the second would never fire), or both are limits of the sim's one
// rate-fault start.
func exclusive(a, b Kind) bool {
	ends := map[Kind]bool{Disconnect: true, Unplug: true, Kill: true}
	rate := map[Kind]bool{Drop: true, Corrupt: true, Dup: true, RxDrop: true, RxCorrupt: true, RxDup: true, Delay: true}
	return ends[a] && ends[b] || rate[a] && rate[b]
}

// logUniform draws from [lo, hi) with a uniform logarithm.
func logUniform(r *rand.Rand, lo, hi float64) float64 {
	return math.Exp(math.Log(lo) + r.Float64()*(math.Log(hi)-math.Log(lo)))
}

// hostBytes is about how many bytes the host sends in op, to place the
// byte-counted faults inside the run.
func (p Plan) hostBytes() int64 {
	switch p.Op {
	case Detect:
		return 600
	case Backup:
		if p.Target.ESP() {
			return 12000
		}
		return 4000
	case Write:
		if p.Image == "file" {
			return 300000
		}
		return 12000
	case Restore:
		return 300000
	}
	return 20000
}

// draw returns the sim flags of one fault kind and sets the plan's fields.
func (p *Plan) draw(r *rand.Rand, k Kind) []string {
	g := func(v float64) string { return fmt.Sprintf("%.3g", v) }
	after := fmt.Sprint(r.Int64N(p.hostBytes() / 2))
	switch k {
	case Drop, Corrupt, Dup:
		// Chip to host: a backup moves megabytes that way, the rest little.
		return []string{"--" + string(k) + "-rate", g(logUniform(r, 2e-6, 2e-4)), "--fault-after", after}
	case RxDrop, RxCorrupt, RxDup:
		return []string{"--" + string(k) + "-rate", g(logUniform(r, 5e-6, 5e-4)), "--fault-after", after}
	case Delay:
		d := []string{"1500ms", "4s"}[r.IntN(2)]
		return []string{"--delay", d, "--delay-rate", g(logUniform(r, 2e-4, 5e-3)), "--fault-after", after}
	case MaxBaud:
		// Between the standard rates: an adapter model's actual rates
		// lie a little above the nominal ones (a CH340 at "230400" runs
		// 230769), so a limit on a standard rate would break that rate too.
		return []string{"--max-baud", fmt.Sprint([]int{150000, 300000, 600000}[r.IntN(3)])}
	case Disconnect, Unplug:
		return []string{"--" + string(k) + "-after", fmt.Sprint(1 + r.Int64N(p.hostBytes()))}
	case Reset:
		return []string{"--reset-at", fmt.Sprint(1 + r.IntN(40))}
	case PowerLoss:
		if p.Target.ESP() {
			op := []string{"erase", "program"}[r.IntN(2)]
			n := 1 + r.IntN(8)
			if op == "program" {
				n = 1 + r.IntN(200)
			}
			return []string{"--power-loss-at", fmt.Sprint(n), "--power-loss-op", op}
		}
		return []string{"--power-loss-at", fmt.Sprint(1 + r.IntN(12))}
	case Kill:
		p.KillAfter = r.Float64() * 1.1
	case FullDisk:
		// Below one dump: the backup, the inventory or a sidecar fails.
		p.FileLimit = []int64{0, 512, 4096, 100000, 1 << 20, 2<<20 - 1}[r.IntN(6)]
	case ReadOnly:
		p.ReadOnlyBackups = true
	}
	return nil
}

// ReplayCommand is the one-line command that replays a seed.
func ReplayCommand(seed int64) string {
	return fmt.Sprintf("go test ./campaign -run Campaign -campaign.seed %d -v", seed)
}

// Summary is the campaign's result, one line in the test's output and the
// figure of README.
type Summary struct {
	Runs int
	// Failed counts the runs whose faulty command failed or was killed
	// (the others recovered from their faults, or the faults never hit).
	Failed int
	Kinds  map[Kind]int
	// KindsFailed counts, per kind, the runs with that kind whose faulty
	// command failed or was killed.
	KindsFailed map[Kind]int
	Ops         map[Op]int
	Targets     map[string]int
	Violations  int
	Skipped     map[Kind]string // kinds that could not run here, with why
	Wall        time.Duration
}

// NewSummary returns an empty summary.
func NewSummary() *Summary {
	return &Summary{Kinds: map[Kind]int{}, KindsFailed: map[Kind]int{}, Ops: map[Op]int{}, Targets: map[string]int{}, Skipped: map[Kind]string{}}
}

// Add counts one run; failed says its faulty command failed or was
// killed.
func (s *Summary) Add(p Plan, violations int, failed bool) {
	s.Runs++
	if failed {
		s.Failed++
	}
	for _, k := range p.Kinds {
		s.Kinds[k]++
		if failed {
			s.KindsFailed[k]++
		}
	}
	s.Ops[p.Op]++
	s.Targets[p.Target.String()]++
	s.Violations += violations
}

// Line is the summary on one line:
//
//	campaign: 1000 runs, 420 failed, 0 violations, wall 7m3s; faults (runs/failed): drop 70/12, …; operations: detect 190, …; targets: bk7231t 260, …
func (s *Summary) Line() string {
	var kinds, ops, targets []string
	for _, k := range Kinds {
		kinds = append(kinds, fmt.Sprintf("%s %d/%d", k, s.Kinds[k], s.KindsFailed[k]))
	}
	for _, o := range Ops {
		ops = append(ops, fmt.Sprintf("%s %d", o, s.Ops[o]))
	}
	for _, t := range Targets {
		targets = append(targets, fmt.Sprintf("%s %d", t, s.Targets[t.String()]))
	}
	return fmt.Sprintf("campaign: %d runs, %d failed, %d violations, wall %s; faults (runs/failed): %s; operations: %s; targets: %s",
		s.Runs, s.Failed, s.Violations, s.Wall.Round(time.Second), strings.Join(kinds, ", "), strings.Join(ops, ", "), strings.Join(targets, ", "))
}

// ParseLine reads a summary line that Line printed.
func ParseLine(line string) (*Summary, error) {
	s := NewSummary()
	head, rest, ok := strings.Cut(strings.TrimSpace(line), "; faults (runs/failed): ")
	if !ok || !strings.HasPrefix(head, "campaign: ") {
		return nil, fmt.Errorf("not a campaign summary line: %q", line)
	}
	var wall string
	if _, err := fmt.Sscanf(head, "campaign: %d runs, %d failed, %d violations, wall %s", &s.Runs, &s.Failed, &s.Violations, &wall); err != nil {
		return nil, fmt.Errorf("summary %q: %w", head, err)
	}
	d, err := time.ParseDuration(wall)
	if err != nil {
		return nil, fmt.Errorf("summary wall time %q: %w", wall, err)
	}
	s.Wall = d
	parts := strings.SplitN(rest, "; operations: ", 2)
	if len(parts) != 2 {
		return nil, fmt.Errorf("summary without operations: %q", line)
	}
	ops, targets, ok := strings.Cut(parts[1], "; targets: ")
	if !ok {
		return nil, fmt.Errorf("summary without targets: %q", line)
	}
	for _, f := range []struct {
		text string
		put  func(name string, n int)
	}{
		{parts[0], nil},
		{ops, func(name string, n int) { s.Ops[Op(name)] = n }},
		{targets, func(name string, n int) { s.Targets[name] = n }},
	} {
		for _, item := range strings.Split(f.text, ", ") {
			i := strings.LastIndexByte(item, ' ')
			if i < 0 {
				return nil, fmt.Errorf("summary item %q: want NAME COUNT", item)
			}
			if f.put == nil {
				// A fault kind: NAME RUNS/FAILED.
				var n, failed int
				if _, err := fmt.Sscanf(item[i+1:], "%d/%d", &n, &failed); err != nil {
					return nil, fmt.Errorf("summary item %q: %w", item, err)
				}
				s.Kinds[Kind(item[:i])], s.KindsFailed[Kind(item[:i])] = n, failed
				continue
			}
			var n int
			if _, err := fmt.Sscan(item[i+1:], &n); err != nil {
				return nil, fmt.Errorf("summary item %q: %w", item, err)
			}
			f.put(item[:i], n)
		}
	}
	return s, nil
}
