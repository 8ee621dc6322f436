package postflash

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// TestRefusedNamesThePortGiven: a host given with a port is reported with
// that port, not port 80.
func TestRefusedNamesThePortGiven(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skip(err)
	}
	host := l.Addr().String()
	l.Close() // nothing listens there now
	_, port, _ := net.SplitHostPort(host)
	_, err = Identify(context.Background(), host, Options{Timeout: 2 * time.Second})
	if err == nil {
		t.Fatal("a closed port identified")
	}
	if msg := err.Error(); !strings.Contains(msg, "port "+port) || strings.Contains(msg, "port 80") {
		t.Errorf("%q does not name port %s", msg, port)
	}
}
