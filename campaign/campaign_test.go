//go:build linux

package campaign

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/tuyaflash/tuyaflash/internal/testbin"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/firmware/demo"
	"github.com/tuyaflash/tuyaflash/firmware/fwtest"
)

var (
	runsFlag     = flag.Int("campaign.runs", 0, "number of runs (0: the short mode CI runs)")
	firstFlag    = flag.Int64("campaign.first", 1, "seed of the first run")
	seedFlag     = flag.Int64("campaign.seed", 0, "replay this one seed, printing everything")
	parallelFlag = flag.Int("campaign.parallel", 0, "runs at a time (they mostly wait; 0: 4 in the short mode, 10 in a long one)")
	keepFlag     = flag.Bool("campaign.keep", false, "keep each run's folder (flashes, store) for a look after a replay")
	outFlag      = flag.String("campaign.out", "", "also write the summary and the violations to this `file` (testdata/campaign.txt feeds README)")
)

// shortRuns is the default: a few runs that CI affords.
const shortRuns = 10

// Environment of the wrapper mode of the test binary: it applies a limit or
// a read-only mount to itself, then becomes tuyaflash (exec), so the limit
// is the product's own process's, as a full disk or a read-only folder is.
const (
	envWrap  = "TUYAFLASH_CAMPAIGN_EXEC"   // tuyaflash binary to exec
	envFSize = "TUYAFLASH_CAMPAIGN_FSIZE"  // RLIMIT_FSIZE in bytes
	envRO    = "TUYAFLASH_CAMPAIGN_RO_DIR" // folder to bind-mount read-only
)

var bin string

func TestMain(m *testing.M) {
	if exe := os.Getenv(envWrap); exe != "" {
		wrapMain(exe)
	}
	var remove func()
	var err error
	if bin, remove, err = testbin.Build("tuyaflash-campaign-", "../cmd/tuyaflash"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	remove()
	os.Exit(code)
}

// wrapMain is the test binary as the wrapper of one tuyaflash run: it runs
// in a mount namespace of its own when asked for a read-only folder.
func wrapMain(exe string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "campaign wrapper:", err)
		os.Exit(125)
	}
	if dir := os.Getenv(envRO); dir != "" {
		if err := syscall.Mount(dir, dir, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
			fail(fmt.Errorf("bind mount %s: %w", dir, err))
		}
		if err := syscall.Mount("", dir, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
			fail(fmt.Errorf("remount %s read-only: %w", dir, err))
		}
	}
	if s := os.Getenv(envFSize); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			fail(err)
		}
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
			fail(err)
		}
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TUYAFLASH_CAMPAIGN_") {
			env = append(env, kv)
		}
	}
	if len(os.Args) > 1 && os.Args[1] == "probe-ro" {
		// Whether the mount took: a file created there must fail.
		err := os.WriteFile(filepath.Join(os.Getenv(envRO), "probe"), nil, 0o600)
		if errors.Is(err, syscall.EROFS) {
			os.Exit(0)
		}
		fail(fmt.Errorf("the read-only mount let a file be created: %v", err))
	}
	fail(syscall.Exec(exe, append([]string{exe}, os.Args[1:]...), env))
}

// bench is what every run shares: the binary, the chips' baseline flashes,
// the pre-seeded store and the fault-free references.
type bench struct {
	dir   string
	base  map[string]*baseline // by chip
	store string               // pre-seeded store: b/ (backups), d/inventory.json
	refs  sync.Map             // Plan.Key → *reference
	net   atomic.Int64
	roWhy string // why read-only folders cannot be made here ("" when they can)
	log   func(format string, args ...any)
}

// baseline is one chip's flashes: stock (what the simulator starts from,
// and the pre-seeded backup) and written (after the image file was written:
// where a restore starts).
type baseline struct {
	stock, written []byte
	stockFile      string
	writtenFile    string
	image          string // the image file of write --image file
	backup         string // the stock backup, relative to the store's b/
}

// reference is a fault-free run of one plan key.
type reference struct {
	once  sync.Once
	err   error
	final []byte
	facts string
	took  time.Duration
}

type outcome struct {
	code           int
	stdout, stderr string
	killed, hung   bool
	took           time.Duration
}

func (o outcome) String() string {
	return fmt.Sprintf("exit %d (killed %v, hung %v, %.1f s)\n--- stdout\n%s--- stderr\n%s", o.code, o.killed, o.hung, o.took.Seconds(), tail(o.stdout), tail(o.stderr))
}

func tail(s string) string {
	const n = 3000
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// chips are the simulators the targets run on (Targets, one each).
var chips = func() []string {
	var out []string
	for _, t := range Targets {
		if !slices.Contains(out, t.Chip) {
			out = append(out, t.Chip)
		}
	}
	return out
}()

func TestCampaign(t *testing.T) {
	start := time.Now()
	root := t.TempDir()
	if *keepFlag {
		root, _ = os.MkdirTemp("", "tuyaflash-campaign-kept-")
	}
	b := &bench{dir: root, base: map[string]*baseline{}, log: t.Logf}
	b.roWhy = b.probeReadOnly()
	if b.roWhy != "" {
		t.Logf("read-only backup folder runs are skipped: %s", b.roWhy)
	}
	if err := b.setup(); err != nil {
		t.Fatal(err)
	}
	var seeds []int64
	switch {
	case *seedFlag != 0:
		seeds = []int64{*seedFlag}
	default:
		n := *runsFlag
		if n <= 0 {
			n = shortRuns
		}
		for i := range int64(n) {
			seeds = append(seeds, *firstFlag+i)
		}
	}
	if *parallelFlag <= 0 {
		// The short mode runs inside go test ./..., beside the e2e
		// tests on the same two cores: it takes a smaller share.
		*parallelFlag = 4
		if len(seeds) > shortRuns {
			*parallelFlag = 10
		}
	}
	s := NewSummary()
	var mu sync.Mutex
	var violations []string
	jobs := make(chan int64)
	var wg sync.WaitGroup
	for range max(1, *parallelFlag) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seed := range jobs {
				p := Draw(seed)
				if p.ReadOnlyBackups && b.roWhy != "" {
					mu.Lock()
					s.Skipped[ReadOnly] = b.roWhy
					mu.Unlock()
					p.Kinds = slices.DeleteFunc(p.Kinds, func(k Kind) bool { return k == ReadOnly })
					p.ReadOnlyBackups = false
				}
				found, failed, log := b.run(p, *seedFlag != 0)
				if *seedFlag != 0 {
					t.Log(log)
				}
				mu.Lock()
				s.Add(p, len(found), failed)
				for _, v := range found {
					line := fmt.Sprintf("seed %d: %s — replay: %s", p.Seed, v, ReplayCommand(p.Seed))
					violations = append(violations, line)
					if *seedFlag != 0 {
						t.Error(line) // the log is above
					} else {
						t.Errorf("%s\n%s\n%s", line, p, log)
					}
				}
				mu.Unlock()
			}
		}()
	}
	for _, seed := range seeds {
		jobs <- seed
	}
	close(jobs)
	wg.Wait()
	s.Wall = time.Since(start)
	t.Log(s.Line())
	fmt.Println(s.Line())
	if *outFlag != "" {
		var buf bytes.Buffer
		fmt.Fprintln(&buf, s.Line())
		fmt.Fprintf(&buf, "command: go test ./campaign -run Campaign -campaign.runs %d -campaign.first %d -campaign.parallel %d -campaign.out %s\n",
			len(seeds), seeds[0], *parallelFlag, *outFlag)
		fmt.Fprintf(&buf, "machine: %d runs at a time on a %d-core %s/%s machine\n", *parallelFlag, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
		for k, why := range s.Skipped {
			fmt.Fprintf(&buf, "skipped %s: %s\n", k, why)
		}
		slices.Sort(violations)
		for _, v := range violations {
			fmt.Fprintln(&buf, "violation", strings.ReplaceAll(v, "\n", " | "))
		}
		if err := os.WriteFile(*outFlag, buf.Bytes(), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// probeReadOnly finds out whether a read-only bind mount can be made for
// the child (root with CAP_SYS_ADMIN): chmod alone does not stop root.
func (b *bench) probeReadOnly() string {
	dir := filepath.Join(b.dir, "probe")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err.Error()
	}
	cmd := exec.Command(os.Args[0], "probe-ro")
	cmd.Env = append(os.Environ(), envWrap+"=/bin/false", envRO+"="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Sprintf("a read-only bind mount in a private mount namespace failed (needs root with CAP_SYS_ADMIN; chmod does not stop root): %v %s", err, bytes.TrimSpace(out))
	}
	return ""
}

// setup makes each chip's stock flash, its backup in the pre-seeded store,
// and its flash after the image file was written.
func (b *bench) setup() error {
	b.store = filepath.Join(b.dir, "seed-store")
	for _, d := range []string{"b", "d", "cache"} {
		if err := os.MkdirAll(filepath.Join(b.store, d), 0o700); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(chips))
	for i, chip := range chips {
		bl := &baseline{}
		b.base[chip] = bl
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.setupChip(chip, bl)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (b *bench) setupChip(chip string, bl *baseline) error {
	dir := filepath.Join(b.dir, "base-"+chip)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var img []byte
	name := "OpenBK7231_UA_1.17.999.bin"
	switch chip {
	case "esp8266", "esp8285":
		img, name = fwtest.ESPImage(3, 0x00, 200*1024), "tasmota-demo-like.bin"
	case "bk7231t", "bk7231n":
		img = fwtest.App(fwtest.SigTuya, 256*1024, 7)
	default:
		// The other Beken chips take the demo build made for them (an
		// image made for a T/N is refused there, rightly).
		var err error
		if img, err = demo.For(chip); err != nil {
			return err
		}
		name = "openbeken-demo-" + chip + ".bin"
	}
	bl.image = filepath.Join(dir, name)
	if err := os.WriteFile(bl.image, img, 0o644); err != nil {
		return err
	}
	bl.stockFile = filepath.Join(dir, "stock.bin")
	env := storeEnv(b.store)
	s, err := b.startSim(dir, chip, "", bl.stockFile, "", nil)
	if err != nil {
		return err
	}
	o := b.tuyaflash(env, append([]string{"backup", "--port", s.tty, "--timeout", "10s"}, named(chip)...), nil, 0, nil)
	s.stop()
	if o.code != 0 {
		return fmt.Errorf("%s: the fault-free backup of the baseline failed: %s", chip, o)
	}
	if bl.stock, err = os.ReadFile(bl.stockFile); err != nil {
		return fmt.Errorf("%s: %w\n%s", chip, err, s.out)
	}
	dumps, _ := filepath.Glob(filepath.Join(b.store, "b", chip+"-*", "*.bin"))
	if len(dumps) != 1 {
		return fmt.Errorf("%s: %d backups in the seed store", chip, len(dumps))
	}
	if got, _ := os.ReadFile(dumps[0]); !bytes.Equal(got, bl.stock) {
		return fmt.Errorf("%s: the baseline backup differs from the flash", chip)
	}
	bl.backup, _ = filepath.Rel(filepath.Join(b.store, "b"), dumps[0])

	bl.writtenFile = filepath.Join(dir, "written.bin")
	s, err = b.startSim(dir, chip, bl.stockFile, bl.writtenFile, "", nil)
	if err != nil {
		return err
	}
	o = b.tuyaflash(storeEnv(filepath.Join(dir, "scratch")), append([]string{"write", "--port", s.tty, "--timeout", "10s", "--yes", bl.image}, named(chip)...), nil, 0, nil)
	s.stop()
	if o.code != 0 {
		return fmt.Errorf("%s: the baseline write failed: %s", chip, o)
	}
	bl.written, err = os.ReadFile(bl.writtenFile)
	return err
}

func storeEnv(store string) []string {
	return append(os.Environ(), "TUYAFLASH_BACKUP_DIR="+filepath.Join(store, "b"), "TUYAFLASH_DATA_DIR="+filepath.Join(store, "d"),
		"TUYAFLASH_CACHE_DIR="+filepath.Join(store, "cache"), "TUYAFLASH_SIM_UNPACED=1", "TUYAFLASH_WIFI_PASSWORD=")
}

type simProc struct {
	cmd    *exec.Cmd
	tty    string
	out    *testbin.Buffer
	stdin  io.WriteCloser
	done   chan error
	exited bool
}

// boot is the bench user releasing GPIO0 and power-cycling the module
// into its firmware (the simulator's stdin command).
func (s *simProc) boot() {
	io.WriteString(s.stdin, "boot\n")
}

// lineWatcher collects a process's output and calls onLine with every
// complete line as it arrives.
type lineWatcher struct {
	mu     sync.Mutex
	all    bytes.Buffer
	part   []byte
	onLine func(string)
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.all.Write(p)
	w.part = append(w.part, p...)
	var lines []string
	for {
		i := bytes.IndexByte(w.part, '\n')
		if i < 0 {
			break
		}
		lines = append(lines, string(w.part[:i]))
		w.part = w.part[i+1:]
	}
	w.mu.Unlock()
	if w.onLine != nil {
		for _, l := range lines {
			w.onLine(l)
		}
	}
	return len(p), nil
}

func (w *lineWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all.String()
}

// follow is the bench user reading what tuyaflash prints during a migrate
// on an ESP8266: told to release GPIO0 and power-cycle, they do (after a
// write the migration waits for the firmware; on its re-run the write is
// found done and only the instruction remains).
func follow(p Plan, s *simProc) func(string) {
	if p.Op != Migrate || !p.Target.ESP() || s == nil {
		return nil
	}
	return func(line string) {
		if strings.Contains(line, "release GPIO0") {
			s.boot()
		}
	}
}

// netAddr is a loopback address of its own for a device: a host of the
// 127.77/16 block and a port free on it. The faulty run and the re-run of
// a plan serve the device there, as a real device keeps its address across
// power cycles (its DHCP lease).
func (b *bench) netAddr() (string, error) {
	n := b.net.Add(1)
	l, err := net.Listen("tcp", fmt.Sprintf("127.77.%d.%d:0", 1+n/250%250, 1+n%250))
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startSim serves chip on a pty in dir, from flash ("" the stock image),
// saving to save when it stops, with the firmware's network side at addr
// ("" a new address) and the fault flags given.
func (b *bench) startSim(dir, chip, flash, save, addr string, faults []string) (*simProc, error) {
	if addr == "" {
		var err error
		if addr, err = b.netAddr(); err != nil {
			return nil, err
		}
	}
	tty := filepath.Join(dir, fmt.Sprintf("tty%d", b.net.Add(1)))
	args := []string{"sim", "--chip", chip, "--unpaced", "--link", tty, "--auto-reset", "30ms", "--save", save, "--net", addr}
	if flash != "" {
		args = append(args, "--flash", flash)
	}
	if strings.HasPrefix(chip, "esp") {
		// The bench user releases GPIO0 and power-cycles when tuyaflash
		// says so (see follow), not on a guess of the simulator's.
		args = append(args, "--no-timing", "--release-after", "0")
	}
	cmd := exec.Command(bin, append(args, faults...)...)
	out := &testbin.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &simProc{cmd: cmd, tty: tty, out: out, stdin: stdin, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Lstat(tty); err == nil {
			return s, nil
		}
		select {
		case err := <-s.done:
			s.exited = true
			return nil, fmt.Errorf("simulator exited early: %v\n%s", err, out)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.cmd.Process.Kill()
			<-s.done
			return nil, fmt.Errorf("simulator did not come up:\n%s", out)
		}
	}
}

// stop interrupts the simulator (it saves --save then) and waits for it.
func (s *simProc) stop() error {
	if s.exited {
		return nil
	}
	s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		s.exited = true
		return fmt.Errorf("simulator did not stop on SIGINT:\n%s", s.out)
	}
	s.exited = true
	return nil
}

// hangLimit is how long a command may take before it counts as hung.
const hangLimit = 4 * time.Minute

// tuyaflash runs one command. With a plan it applies the plan's limits
// (through the wrapper) and its SIGKILL after kill.
func (b *bench) tuyaflash(env, args []string, p *Plan, kill time.Duration, onLine func(string)) outcome {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	if p != nil && (p.Has(FullDisk) || p.ReadOnlyBackups) {
		cmd = exec.Command(os.Args[0], args...)
		cmd.Env = append(env, envWrap+"="+bin)
		if p.Has(FullDisk) {
			cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%d", envFSize, p.FileLimit))
		}
		if p.ReadOnlyBackups {
			cmd.Env = append(cmd.Env, envRO+"="+envValue(env, "TUYAFLASH_BACKUP_DIR"))
			cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
		}
	}
	o, e := &lineWatcher{onLine: onLine}, &lineWatcher{onLine: onLine}
	cmd.Stdout, cmd.Stderr = o, e
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return outcome{code: -1, stderr: err.Error()}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var killC <-chan time.Time
	if p != nil && p.Has(Kill) {
		killC = time.After(kill)
	}
	res := outcome{}
	var err error
wait:
	for {
		select {
		case err = <-done:
			break wait
		case <-killC:
			killC = nil
			if cmd.Process.Signal(syscall.SIGKILL) == nil {
				res.killed = true
			}
		case <-time.After(hangLimit):
			res.hung = true
			cmd.Process.Kill()
			err = <-done
			break wait
		}
	}
	res.took = time.Since(start)
	res.stdout, res.stderr = o.String(), e.String()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			res.killed = false // it ended before the signal
		}
	case err != nil:
		res.code = -1
	default:
		res.killed = false
	}
	return res
}

func envValue(env []string, name string) string {
	for _, kv := range slices.Backward(env) {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

// runDir is one run's folder: its store, the user's files, its flashes.
type runDir struct {
	dir, store, user string
	seeded           map[string]string // pre-existing files → sha256
	devices          []string          // inventory device keys before
	backupPaths      []string          // inventory backup paths before
}

// prepare makes a run folder with the pre-seeded store: every chip's stock
// backup (but this device's unless p.OwnBackup) and the inventory that
// lists them, a tinytuya devices.json of other devices, and for restore a
// copy of the device's stock backup in the user's folder.
func (b *bench) prepare(p Plan, dir string) (*runDir, error) {
	r := &runDir{dir: dir, store: filepath.Join(dir, "store"), user: filepath.Join(dir, "user"), seeded: map[string]string{}}
	own := filepath.Dir(b.base[p.Target.Chip].backup)
	err := filepath.WalkDir(b.store, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(b.store, path)
		if !p.OwnBackup && (rel == filepath.Join("b", own) || strings.HasPrefix(rel, filepath.Join("b", own)+string(filepath.Separator))) {
			return fs.SkipDir
		}
		if d.IsDir() && (d.Name() == ".partial" || rel == "cache") {
			return fs.SkipDir
		}
		to := filepath.Join(r.store, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o700)
		}
		if strings.HasPrefix(d.Name(), ".") {
			return nil // locks
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if rel == filepath.Join("d", "inventory.json") {
			if data, err = seedInventory(data, b.store, r.store, p.OwnBackup, own); err != nil {
				return err
			}
		}
		return os.WriteFile(to, data, 0o600)
	})
	if err != nil {
		return nil, err
	}
	os.MkdirAll(filepath.Join(r.store, "cache"), 0o700)
	if err := os.MkdirAll(r.user, 0o755); err != nil {
		return nil, err
	}
	tiny := `[{"name": "desk lamp", "id": "bf0000000000000000aa01", "key": "0123456789abcdef", "mac": "aa:bb:cc:dd:ee:01", "ip": "192.168.1.9", "version": "3.3"},
 {"name": "kettle", "id": "bf0000000000000000aa02", "key": "fedcba9876543210", "mac": "aa:bb:cc:dd:ee:02", "ip": "192.168.1.10", "version": "3.4"}]
`
	if err := os.WriteFile(filepath.Join(r.user, "devices.json"), []byte(tiny), 0o644); err != nil {
		return nil, err
	}
	if p.Op == Restore {
		src := filepath.Join(b.store, "b", b.base[p.Target.Chip].backup)
		for _, ext := range []string{"", ".json"} {
			data, err := os.ReadFile(src + ext)
			if err != nil {
				return nil, err
			}
			if err := os.WriteFile(filepath.Join(r.user, "stock.bin"+ext), data, 0o600); err != nil {
				return nil, err
			}
		}
	}
	for _, root := range []string{filepath.Join(r.store, "b"), r.user} {
		for path, s := range files(root) {
			r.seeded[path] = s
		}
	}
	r.devices, r.backupPaths, err = inventoryKeys(filepath.Join(r.store, "d", "inventory.json"))
	return r, err
}

// seedInventory points the seed inventory's paths at the run's store and
// leaves out the device of folder own unless it is to stay.
func seedInventory(data []byte, from, to string, keepOwn bool, own string) ([]byte, error) {
	data = bytes.ReplaceAll(data, []byte(from), []byte(to))
	if keepOwn {
		return data, nil
	}
	var inv map[string]any
	if err := json.Unmarshal(data, &inv); err != nil {
		return nil, err
	}
	devs, _ := inv["devices"].([]any)
	inv["devices"] = slices.DeleteFunc(devs, func(d any) bool {
		return strings.Contains(fmt.Sprint(d), string(filepath.Separator)+own+string(filepath.Separator))
	})
	return json.MarshalIndent(inv, "", "  ")
}

func inventoryKeys(path string) (devices, backups []string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var inv struct {
		Devices []struct {
			Key     string
			Backups []struct{ Path string }
		}
	}
	if err := json.Unmarshal(data, &inv); err != nil {
		return nil, nil, fmt.Errorf("inventory %s: %w", path, err)
	}
	for _, d := range inv.Devices {
		devices = append(devices, d.Key)
		for _, b := range d.Backups {
			backups = append(backups, b.Path)
		}
	}
	return devices, backups, nil
}

// files lists the regular files below dir with their sha256.
func files(dir string) map[string]string {
	m := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, err := os.ReadFile(p); err == nil {
				m[p] = sum(b)
			}
		}
		return nil
	})
	return m
}

// named is --chip for the chips a user must name: the BK7231U and the
// BK7252 answer with one bootloader that tuyaflash cannot tell apart (it
// says so and asks for --chip).
func named(chip string) []string {
	if chip == "bk7231u" || chip == "bk7252" {
		return []string{"--chip", chip}
	}
	return nil
}

// args is the command of plan p on port tty.
func (b *bench) args(p Plan, r *runDir, tty string, jsonMode bool) []string {
	a := append([]string{string(p.Op), "--port", tty, "--timeout", "10s"}, named(p.Target.Chip)...)
	if jsonMode {
		a = append(a, "--json")
	}
	if p.Target.ROM {
		a = append(a, "--no-stub")
	}
	switch p.Op {
	case Write:
		a = append(a, "--yes")
		if p.Image == "file" {
			a = append(a, b.base[p.Target.Chip].image)
		} else {
			a = append(a, "--firmware", "demo")
		}
	case Restore:
		a = append(a, filepath.Join(r.user, "stock.bin"))
	case Migrate:
		a = append(a, "--yes", "--firmware", "demo", "--ssid", "tuyaflash-virtual", "--wifi-password", "virtual-bench",
			"--tinytuya", filepath.Join(r.user, "devices.json"), "--wait", "90s")
	}
	return a
}

// startFlash is the flash a run of p starts from.
func (b *bench) startFlash(p Plan) (string, []byte) {
	bl := b.base[p.Target.Chip]
	if p.Op == Restore {
		return bl.writtenFile, bl.written
	}
	return bl.stockFile, bl.stock
}

// planSectors are the sectors the command of p is asked to write: the
// image's, or for a restore the whole flash (above the bootloader of a
// chip that keeps it). An interrupted write may leave any of them erased or half
// programmed; the re-run must then finish them.
func (b *bench) planSectors(p Plan, size int) map[int]bool {
	from, end := 0, 0
	switch p.Op {
	case Restore:
		end = size
		if KeepsBootloader(p.Target.Chip) {
			from = BootloaderEnd
		}
	case Write, Migrate:
		var img []byte
		var err error
		if p.Op == Write && p.Image == "file" {
			img, err = os.ReadFile(b.base[p.Target.Chip].image)
		} else {
			img, err = demo.For(p.Target.Chip)
		}
		if err != nil {
			panic(err)
		}
		if !p.Target.ESP() {
			from = BootloaderEnd
		}
		end = from + len(img)
	}
	out := map[int]bool{}
	for off := from; off < end; off += SectorSize {
		out[off/SectorSize] = true
	}
	return out
}

// ref runs plan p's key without faults, once per key.
func (b *bench) ref(p Plan) *reference {
	v, _ := b.refs.LoadOrStore(p.Key(), &reference{})
	ref := v.(*reference)
	ref.once.Do(func() {
		clean := p
		clean.Kinds, clean.SimArgs, clean.ReadOnlyBackups = nil, nil, false
		dir, err := os.MkdirTemp(b.dir, "ref-")
		if err != nil {
			ref.err = err
			return
		}
		defer os.RemoveAll(dir)
		r, err := b.prepare(clean, dir)
		if err != nil {
			ref.err = err
			return
		}
		startFile, _ := b.startFlash(clean)
		final := filepath.Join(dir, "final.bin")
		s, err := b.startSim(dir, p.Target.Chip, startFile, final, "", nil)
		if err != nil {
			ref.err = err
			return
		}
		o := b.tuyaflash(storeEnv(r.store), b.args(clean, r, s.tty, false), nil, 0, follow(clean, s))
		serr := s.stop()
		if o.code != 0 || serr != nil {
			ref.err = fmt.Errorf("the fault-free run of %s failed: %v %s\n%s", p.Key(), serr, o, s.out)
			return
		}
		ref.took = o.took
		if *keepFlag {
			os.WriteFile(filepath.Join(b.dir, "ref-"+strings.NewReplacer("/", "_", "=", "-").Replace(p.Key())+".bin"), mustRead(final), 0o644)
		}
		if ref.final, err = os.ReadFile(final); err != nil {
			ref.err = err
			return
		}
		inv, err := os.ReadFile(filepath.Join(r.store, "d", "inventory.json"))
		if err == nil {
			ref.facts, err = Facts(inv)
		}
		ref.err = err
	})
	return ref
}

// run runs one plan: the faulty run, the checks, the clean re-run, the
// checks again. It returns the violations and a log of what happened.
func (b *bench) run(p Plan, verbose bool) (violations []string, failed bool, log string) {
	var lg strings.Builder
	logf := func(format string, args ...any) { fmt.Fprintf(&lg, format+"\n", args...) }
	ref := b.ref(p)
	if ref.err != nil {
		return []string{"harness: " + ref.err.Error()}, false, ""
	}
	dir, err := os.MkdirTemp(b.dir, fmt.Sprintf("run-%d-", p.Seed))
	if err != nil {
		return []string{"harness: " + err.Error()}, false, ""
	}
	if *keepFlag {
		b.log("run folder of seed %d kept: %s", p.Seed, dir)
	} else {
		defer os.RemoveAll(dir)
	}
	r, err := b.prepare(p, dir)
	if err != nil {
		return []string{"harness: " + err.Error()}, false, ""
	}
	startFile, start := b.startFlash(p)
	allowed := ChangedSectors(start, ref.final)
	for sec := range b.planSectors(p, len(start)) {
		allowed[sec] = true
	}
	bad := func(phase string, lines ...string) {
		for _, l := range lines {
			violations = append(violations, phase+": "+l)
		}
	}

	// The faulty run.
	mid := filepath.Join(dir, "mid.bin")
	addr, err := b.netAddr()
	if err != nil {
		return []string{"harness: " + err.Error()}, false, ""
	}
	s, err := b.startSim(dir, p.Target.Chip, startFile, mid, addr, p.SimArgs)
	if err != nil {
		return []string{"harness: " + err.Error()}, false, ""
	}
	kill := time.Duration(p.KillAfter * float64(ref.took))
	args := b.args(p, r, s.tty, p.JSON)
	logf("%s\n$ tuyaflash %s", p, strings.Join(args, " "))
	o := b.tuyaflash(storeEnv(r.store), args, &p, kill, follow(p, s))
	if err := s.stop(); err != nil {
		bad("faulty run", "simulator: "+err.Error())
	}
	logf("%s\n--- simulator\n%s", o, tail(s.out.String()))
	if o.code == 125 {
		return []string{"harness: the wrapper failed: " + o.stderr}, false, lg.String()
	}
	failed = o.code != 0 || o.killed
	if o.hung {
		bad("faulty run", fmt.Sprintf("tuyaflash did not end within %s", hangLimit))
	}
	midFlash, err := os.ReadFile(mid)
	if err != nil {
		return append(violations, "harness: the simulator saved no flash: "+err.Error()), failed, lg.String()
	}
	if !o.killed {
		bad("faulty run", FailureOutput(p.Op, p.JSON, o.code, o.stdout, o.stderr)...)
	}
	bad("faulty run", b.stateChecks(p, r, start, midFlash, allowed, nil)...)
	before := files(filepath.Join(r.store, "b"))

	// The same command without faults, on the flash the faulty run left.
	final := filepath.Join(dir, "final.bin")
	s, err = b.startSim(dir, p.Target.Chip, mid, final, addr, nil)
	if err != nil {
		return append(violations, "harness: "+err.Error()), failed, lg.String()
	}
	args = b.args(p, r, s.tty, p.JSON)
	logf("$ tuyaflash %s   (clean re-run)", strings.Join(args, " "))
	o2 := b.tuyaflash(storeEnv(r.store), args, nil, 0, follow(p, s))
	if err := s.stop(); err != nil {
		bad("re-run", "simulator: "+err.Error())
	}
	logf("%s", o2)
	if o2.code != 0 {
		bad("re-run", fmt.Sprintf("the clean re-run failed (exit %d): %s", o2.code, firstLine(o2.stderr)))
		bad("re-run", FailureOutput(p.Op, p.JSON, o2.code, o2.stdout, o2.stderr)...)
	}
	finalFlash, err := os.ReadFile(final)
	if err != nil {
		return append(violations, "harness: the simulator saved no flash: "+err.Error()), failed, lg.String()
	}
	bad("re-run", b.stateChecks(p, r, start, finalFlash, allowed, &reRun{mid: midFlash, before: before})...)
	if !SameEndState(finalFlash, ref.final) {
		diff := ChangedSectors(finalFlash, ref.final)
		var secs []int
		for s := range diff {
			secs = append(secs, s)
		}
		slices.Sort(secs)
		bad("re-run", fmt.Sprintf("the final flash differs from a fault-free run's in %d sectors (first 0x%06X)", len(secs), secs[0]*SectorSize))
	}
	inv, err := os.ReadFile(filepath.Join(r.store, "d", "inventory.json"))
	if err != nil {
		bad("re-run", "inventory: "+err.Error())
	} else if facts, err := Facts(inv); err != nil {
		bad("re-run", err.Error())
	} else if facts != ref.facts {
		bad("re-run", fmt.Sprintf("the inventory's facts differ from a fault-free run's:\n got %s\nwant %s", facts, ref.facts))
	}
	if verbose {
		logf("final flash %s, reference %s", sum(finalFlash)[:12], sum(ref.final)[:12])
	}
	return violations, failed, lg.String()
}

// reRun is what the re-run's checks know of the faulty run: the flash it
// left (the re-run's start), and the backup folder's files after it.
type reRun struct {
	mid    []byte
	before map[string]string
}

// stateChecks checks invariants 1-3 on the store, the user's files and the
// flash after a run.
func (b *bench) stateChecks(p Plan, r *runDir, start, flash []byte, allowed map[int]bool, rerun *reRun) []string {
	var out []string
	// 1. Every backup is byte-identical to the flash it claims: the flash
	// when its run began (nothing a run writes comes before its backup).
	claimed := start
	for path, s := range files(filepath.Join(r.store, "b")) {
		rel, _ := filepath.Rel(r.store, path)
		if _, pre := r.seeded[path]; pre || strings.Contains(rel, ".partial") || !strings.HasSuffix(path, ".bin") {
			continue
		}
		if rerun != nil {
			if _, old := rerun.before[path]; old {
				continue // checked after the faulty run
			}
			claimed = rerun.mid
		}
		if s != sum(claimed) {
			out = append(out, fmt.Sprintf("backup %s is not the flash it claims (sha256 %s, flash %s)", rel, s[:12], sum(claimed)[:12]))
		}
		var side struct {
			SHA256 string `json:"sha256"`
		}
		data, err := os.ReadFile(path + ".json")
		if err != nil {
			out = append(out, fmt.Sprintf("backup %s has no sidecar: %v", rel, err))
		} else if json.Unmarshal(data, &side) != nil || side.SHA256 != s {
			out = append(out, fmt.Sprintf("backup %s: its sidecar's sha256 %q is not the file's", rel, side.SHA256))
		}
	}
	// 2. No pre-existing backup or user file is lost, truncated or changed;
	// the inventory keeps its devices and their backups.
	now := files(filepath.Join(r.store, "b"))
	for path, s := range files(r.user) {
		now[path] = s
	}
	for path, s := range r.seeded {
		switch got, ok := now[path]; {
		case !ok:
			out = append(out, "pre-existing file lost: "+path)
		case got != s:
			out = append(out, "pre-existing file changed: "+path)
		}
	}
	devices, backups, err := inventoryKeys(filepath.Join(r.store, "d", "inventory.json"))
	if err != nil {
		out = append(out, err.Error())
	}
	for _, d := range r.devices {
		if !slices.Contains(devices, d) {
			out = append(out, "the inventory lost device "+d)
		}
	}
	for _, bp := range r.backupPaths {
		if !slices.Contains(backups, bp) {
			out = append(out, "the inventory lost backup "+bp)
		}
	}
	// 3. Nothing written outside the plan.
	out = append(out, OutsidePlan(p.Target.Chip, start, flash, allowed)...)
	return out
}

func mustRead(p string) []byte {
	b, _ := os.ReadFile(p)
	return b
}

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "tuyaflash ") || strings.Contains(l, "failed") {
			return l
		}
	}
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
