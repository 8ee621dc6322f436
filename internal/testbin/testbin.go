// Package testbin serves the tests that run tuyaflash as a user does (e2e,
// campaign): it builds the binary once per test binary — with -race when
// TUYAFLASH_E2E_RACE=1, as CI asks for a second run — and collects a
// process's output safely while the test reads it.
package testbin

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// Build compiles ./cmd/tuyaflash (pkg is its path from the calling test's
// directory, e.g. "../cmd/tuyaflash") into a new temporary folder named
// after prefix and returns the binary and a function that removes it.
func Build(prefix, pkg string) (bin string, remove func(), err error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, err
	}
	bin = filepath.Join(dir, "tuyaflash")
	args := []string{"build", "-o", bin}
	if os.Getenv("TUYAFLASH_E2E_RACE") == "1" {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, pkg)...)
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("build tuyaflash: %w", err)
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

// Buffer is a bytes.Buffer that a process's output pipes write while the
// test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
