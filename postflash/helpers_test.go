package postflash

import (
	"bufio"
	"context"
	"fmt"
	"github.com/tuyaflash/tuyaflash/internal/testshared"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// sharedDir returns ../shared/<sub> or skips the test when it is absent.
func sharedDir(t *testing.T, sub string) string { return testshared.Dir(t, sub) }

// fakeNet maps "host:port" to behaviours; anything unmapped refuses the
// connection, so no test ever reaches a real port of this machine.
type fakeNet struct {
	mu     sync.Mutex
	routes map[string]route
	dials  []string
}

type route struct {
	blackhole bool             // never answers: the dial waits for its context
	serve     func(c net.Conn) // in-memory connection served by a goroutine
	forward   string           // real loopback address (httptest, raw listeners)
}

func newFakeNet() *fakeNet { return &fakeNet{routes: map[string]route{}} }

func (f *fakeNet) set(addr string, r route) {
	f.mu.Lock()
	f.routes[addr] = r
	f.mu.Unlock()
}

func refused() error {
	return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
}

func (f *fakeNet) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	f.mu.Lock()
	r, ok := f.routes[addr]
	f.dials = append(f.dials, addr)
	f.mu.Unlock()
	switch {
	case !ok:
		return nil, refused()
	case r.blackhole:
		<-ctx.Done()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: ctx.Err()}
	case r.serve != nil:
		a, b := net.Pipe()
		go r.serve(b)
		return a, nil
	default:
		var d net.Dialer
		return d.DialContext(ctx, network, r.forward)
	}
}

// httpServer starts an httptest server and maps addr to it.
func (f *fakeNet) httpServer(t *testing.T, addr string, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	f.set(addr, route{forward: s.Listener.Addr().String()})
	return s
}

// rawServer starts a loopback listener that reads one request per
// connection and writes back whatever answer returns, byte for byte, then
// closes; nil closes without a reply.
func (f *fakeNet) rawServer(t *testing.T, addr string, answer func(*http.Request) []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go pipeHTTP(answer)(c)
		}
	}()
	f.set(addr, route{forward: ln.Addr().String()})
}

// pipeHTTP serves one HTTP request per connection (in-memory or TCP) with
// h; h returning nil closes the connection without a reply.
func pipeHTTP(h func(*http.Request) []byte) func(net.Conn) {
	return func(c net.Conn) {
		defer c.Close()
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		if b := h(req); b != nil {
			c.Write(b)
		}
	}
}

// httpReply formats a minimal HTTP/1.1 reply.
func httpReply(status int, header map[string]string, body string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", status, http.StatusText(status))
	for k, v := range header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	return []byte(b.String())
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
