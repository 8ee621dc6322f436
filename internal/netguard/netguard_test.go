package netguard

import (
	"errors"
	"net"
	"strings"
	"testing"
)

func TestCheckListen(t *testing.T) {
	for _, tc := range []struct {
		addr  string
		allow bool
		ok    bool
	}{
		{"127.0.0.1:0", false, true},
		{"127.0.0.2:8080", false, true},
		{"[::1]:80", false, true},
		{"localhost:80", false, true},
		{"[::ffff:127.0.0.1]:80", false, true},
		{"0.0.0.0:80", false, false},
		{":80", false, false},
		{"[::]:80", false, false},
		{"192.168.1.10:80", false, false},
		{"192.168.1.10:80", true, true},
		{"0.0.0.0:80", true, true},
		{"localhost.example.com:80", false, false},
	} {
		err := CheckListen(tc.addr, tc.allow, "--listen-any")
		if (err == nil) != tc.ok {
			t.Errorf("CheckListen(%q, %v) = %v, want ok=%v", tc.addr, tc.allow, err, tc.ok)
		}
		if err != nil && (!errors.Is(err, ErrNotLoopback) && !strings.Contains(err.Error(), "missing port")) {
			t.Errorf("%q: %v does not match ErrNotLoopback", tc.addr, err)
		}
		if err != nil && errors.Is(err, ErrNotLoopback) && !strings.Contains(err.Error(), "--listen-any") {
			t.Errorf("%q: %v does not name the flag", tc.addr, err)
		}
	}
	if CheckListen("80", false, "") == nil {
		t.Error("an address without host:port passed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skip(err)
	}
	defer l.Close()
	if err := CheckListener(l, false, ""); err != nil {
		t.Errorf("loopback listener: %v", err)
	}
}
