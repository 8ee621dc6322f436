//go:build linux

// Package e2e runs the built tuyaflash binary the way a user does: against
// "tuyaflash sim" serving a pseudo-terminal, opened through go.bug.st/serial
// like /dev/ttyUSB0.
package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"github.com/tuyaflash/tuyaflash/internal/testbin"
	"github.com/tuyaflash/tuyaflash/internal/testshared"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var bin string

func TestMain(m *testing.M) {
	var remove func()
	var err error
	// CI runs the end-to-end tests once more against a -race build.
	if bin, remove, err = testbin.Build("tuyaflash-e2e-", "../cmd/tuyaflash"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Most end-to-end scenarios wait: on the simulated user, the
	// firmware's delays, the clients' polling. Run more of the parallel
	// ones at a time than the two cores would say (-parallel still wins).
	flag.Parse()
	if !parallelGiven() {
		flag.Set("test.parallel", "8")
	}
	code := m.Run()
	remove()
	os.Exit(code)
}

// parallelGiven reports whether -parallel is on the command line.
func parallelGiven() bool {
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	return given
}

// sharedDumps is ../shared/testdata/bk7231, or skips the test.
func sharedDumps(t *testing.T) string { return testshared.Dir(t, "testdata", "bk7231") }

type sim struct {
	cmd    *exec.Cmd
	tty    string
	out    *testbin.Buffer
	done   chan error
	linked chan string // the pseudo-terminal the link first pointed to
	exited bool
}

// startSim runs "tuyaflash sim" unpaced (bytes cross at once; ESP8266
// flash operations instant unless the test asks for --timing) and waits
// for its pty link.
func startSim(t *testing.T, args ...string) *sim {
	t.Helper()
	extra := []string{"--unpaced"}
	for i, a := range args {
		if a == "--chip" && i+1 < len(args) && strings.HasPrefix(args[i+1], "esp") && !slices.Contains(args, "--no-timing") {
			extra = append(extra, "--no-timing")
		}
	}
	return startPacedSim(t, append(extra, args...)...)
}

// startPacedSim runs "tuyaflash sim" as a user does: paced at the wire's
// speed through the adapter model (for the tests that measure wire time).
func startPacedSim(t *testing.T, args ...string) *sim {
	t.Helper()
	tty := filepath.Join(t.TempDir(), "tty")
	full := append([]string{"sim", "--link", tty, "--auto-reset", "30ms"}, args...)
	cmd := exec.Command(bin, full...)
	out := &testbin.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &sim{cmd: cmd, tty: tty, out: out, done: make(chan error, 1), linked: make(chan string, 1)}
	go func() {
		err := cmd.Wait()
		// A simulator that dies (killed, crashed) leaves its link to a
		// pseudo-terminal number the kernel gives to the next one: another
		// test's device. Remove it, so that a command of this test finds
		// no device instead.
		select {
		case dst := <-s.linked:
			if now, lerr := os.Readlink(tty); lerr == nil && now == dst {
				os.Remove(tty)
			}
		default:
		}
		s.done <- err
	}()
	sims.Store(s, true)
	t.Cleanup(func() { sims.Delete(s) })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if dst, err := os.Readlink(tty); err == nil {
			s.linked <- dst
			if err := s.ownLink(); err != nil {
				t.Fatalf("%v\n%s", err, simsList())
			}
			break
		}
		select {
		case err := <-s.done:
			s.exited = true
			t.Fatalf("simulator exited early: %v\n%s", err, out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("simulator did not come up:\n%s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Cleanup(func() { s.stop(t) })
	return s
}

// stop interrupts the simulator and waits for it (it saves --save then).
// A simulator that crashed (a panic, a fatal runtime error, a data race in
// a -race build) fails the test: it would leave its link to a
// pseudo-terminal the kernel then gives to the next simulator.
func (s *sim) stop(t *testing.T) {
	if s.exited {
		return
	}
	select {
	case err := <-s.done:
		// Tests whose simulator ends by itself (a fault) call wait.
		s.exited = true
		t.Errorf("the simulator ended before the test stopped it (%v):\n%s", err, s.out)
		return
	default:
	}
	if _, err := os.Lstat(s.tty); err == nil {
		if err := s.ownLink(); err != nil {
			t.Errorf("%v\n%s", err, simsList())
		}
	}
	s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-s.done:
		// Ctrl-C is how a simulator is stopped: it ends with 0.
		if err != nil {
			t.Errorf("the simulator ended with %v on SIGINT:\n%s", err, s.out)
		}
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		t.Errorf("simulator did not stop on SIGINT:\n%s", s.out)
	}
	s.exited = true
	if out := s.out.String(); crashed(out) {
		t.Errorf("the simulator crashed:\n%s", out)
	}
}

// crashed reports whether a process's output shows a Go crash or a race.
func crashed(out string) bool {
	for _, sign := range []string{"panic: ", "fatal error: ", "WARNING: DATA RACE", "race: limit", "ThreadSanitizer"} {
		if strings.Contains(out, sign) {
			return true
		}
	}
	return false
}

// wait waits for a simulator that ends by itself (disconnect fault).
func (s *sim) wait(t *testing.T) {
	select {
	case <-s.done:
		s.exited = true
	case <-time.After(10 * time.Second):
		t.Fatalf("simulator still running:\n%s", s.out)
	}
}

// storeEnv is the environment of a tuyaflash run on the store: backups,
// inventory, cache and virtual devices in it, virtual devices unpaced
// (the tests that measure wire time use paced ones: pacedEnv).
func storeEnv(store string) []string {
	return append(pacedEnv(store), "TUYAFLASH_SIM_UNPACED=1")
}

// pacedEnv is storeEnv with the virtual devices paced, as users run them.
func pacedEnv(store string) []string {
	return append(os.Environ(), "TUYAFLASH_BACKUP_DIR="+store, "TUYAFLASH_DATA_DIR="+store, "TUYAFLASH_CACHE_DIR="+filepath.Join(store, "cache"), "TUYAFLASH_SIM_UNPACED=0")
}

type result struct {
	stdout, stderr string
	code           int
	sims           string // simsReport taken when the command ended
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s%s", r.code, r.stdout, r.stderr, r.sims)
}

// run runs tuyaflash with the backup store in store.
func run(t *testing.T, store string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = storeEnv(store)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Start()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(120 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("tuyaflash %v hung:\n%s\n%s", args, o.String(), e.String())
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{o.String(), e.String(), code, simsReport(o.String() + e.String())}
}

func mustRun(t *testing.T, store string, args ...string) result {
	t.Helper()
	r := run(t, store, args...)
	if r.code != 0 {
		t.Fatalf("tuyaflash %s failed:\n%s", strings.Join(args, " "), r)
	}
	return r
}

// sims are the simulators running for the tests (for simsReport).
var sims sync.Map

// simsReport, for a command whose output says its port was busy, lists the running
// simulators: their link, the device it points to, whether the process
// still runs, and the end of their output (two tests' links on one
// device have been seen once in CI; this says which).
func simsReport(stderr string) string {
	if !strings.Contains(stderr, "port busy") {
		return ""
	}
	return simsList()
}

// simsList lists the running simulators (see simsReport).
func simsList() string {
	var b strings.Builder
	b.WriteString("\n--- simulators running now:\n")
	sims.Range(func(k, _ any) bool {
		s := k.(*sim)
		dst, err := os.Readlink(s.tty)
		if err != nil {
			dst = err.Error()
		}
		alive := "running"
		if s.cmd.Process.Signal(syscall.Signal(0)) != nil {
			alive = "ended"
		}
		out := s.out.String()
		if len(out) > 900 {
			// The first line names its pseudo-terminal.
			first, _, _ := strings.Cut(out, "\n")
			out = first + "\n…" + out[len(out)-600:]
		}
		fmt.Fprintf(&b, "%s -> %s %s (pid %d, %s; its terminals: %s)\n%s\n", s.tty, dst, fileID(s.tty), s.cmd.Process.Pid, alive, heldTerminals(s.cmd.Process.Pid), out)
		return true
	})
	return b.String()
}

// ownLink checks that the simulator's link leads to a terminal the
// simulator holds (a link to another simulator's terminal has been seen in
// CI as "port busy" and as a line that never answered and then hung up).
func (s *sim) ownLink() error {
	link, err := os.Stat(s.tty)
	if err != nil {
		return fmt.Errorf("the simulator's link %s: %v", s.tty, err)
	}
	dir := fmt.Sprintf("/proc/%d/fd", s.cmd.Process.Pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil // not Linux's /proc, or the process is gone: nothing to tell
	}
	for _, e := range ents {
		if st, err := os.Stat(filepath.Join(dir, e.Name())); err == nil && os.SameFile(st, link) {
			return nil
		}
	}
	return fmt.Errorf("the simulator's link %s leads to a terminal the simulator does not hold", s.tty)
}

// fileID is a file's identity, [device inode], or why it has none.
func fileID(path string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return "[" + err.Error() + "]"
	}
	return fmt.Sprintf("[dev %#x ino %d]", st.Dev, st.Ino)
}

// heldTerminals lists the pseudo-terminals process pid has open, each with
// its identity: a link leads to its simulator's only if they match.
func heldTerminals(pid int) string {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err.Error()
	}
	var held []string
	for _, e := range ents {
		fd := filepath.Join(dir, e.Name())
		if l, err := os.Readlink(fd); err == nil && (strings.HasPrefix(l, "/dev/pts/") || strings.HasPrefix(l, "/dev/ptmx")) {
			held = append(held, l+" "+fileID(fd))
		}
	}
	if len(held) == 0 {
		return "none"
	}
	return strings.Join(held, ", ")
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// backupPath finds the dump path in backup's output.
func backupPath(t *testing.T, r result) string {
	t.Helper()
	for _, line := range strings.Split(r.stdout, "\n") {
		if p, ok := strings.CutPrefix(line, "Backup saved: "); ok {
			return p
		}
	}
	t.Fatalf("no backup path in output:\n%s", r)
	return ""
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// files lists every file below dir with its sha256.
func files(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			b, _ := os.ReadFile(p)
			m[p] = sha(b)
		}
		return nil
	})
	return m
}

// releaseServer serves body at path, with range requests, as a release
// host does.
func releaseServer(t *testing.T, path string, body []byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// qioManifest writes a one-entry catalogue to file: firmware "obk" version
// ver, a BK7231N QIO image at url with the given sha256 ("" unknown).
func qioManifest(t *testing.T, file, url, ver, sha string) string {
	t.Helper()
	err := os.WriteFile(file, []byte(`{"name": "local", "firmwares": [{"name": "obk", "kind": "openbeken", "version": "`+ver+`",
	  "builds": [{"chipFamily": "BK7231N", "parts": [{"path": "`+url+`",
	  "offset": 0, "skip": 69632, "format": "beken-qio", "sha256": "`+sha+`"}]}]}]}`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	return file
}

// writeIn writes b to dir/name and returns the path.
func writeIn(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
