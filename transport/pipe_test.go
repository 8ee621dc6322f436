package transport

import (
	"bytes"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestPipeDelivery(t *testing.T) {
	tests := []struct {
		name         string
		paced        bool
		hostBaud     int
		devBaud      int
		n            int
		wantSame     bool
		wantDuration time.Duration
	}{
		{"unpaced same rate", false, 115200, 115200, 1000, true, 0},
		{"paced 115200", true, 115200, 115200, 1152, true, 100 * time.Millisecond},
		{"paced 921600", true, 921600, 921600, 4111, true, WireTime(4111, 921600)},
		{"rate mismatch garbles", false, 115200, 921600, 64, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				host, dev := Pipe(LinkOptions{Paced: tc.paced})
				host.SetBaudRate(tc.hostBaud)
				dev.SetBaudRate(tc.devBaud)
				msg := make([]byte, tc.n)
				for i := range msg {
					msg[i] = byte(i * 7)
				}
				start := time.Now()
				if _, err := dev.Write(msg); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, tc.n)
				if _, err := ReadFull(host, got, time.Now().Add(10*time.Second)); err != nil {
					t.Fatal(err)
				}
				if el := time.Since(start); el != tc.wantDuration {
					t.Errorf("delivery took %v, want %v", el, tc.wantDuration)
				}
				if same := bytes.Equal(got, msg); same != tc.wantSame {
					t.Errorf("bytes identical = %v, want %v", same, tc.wantSame)
				}
			})
		})
	}
}

func TestReadFullTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		host, dev := Pipe(LinkOptions{})
		dev.Write([]byte{1, 2, 3})
		buf := make([]byte, 8)
		start := time.Now()
		n, err := ReadFull(host, buf, time.Now().Add(500*time.Millisecond))
		if !errors.Is(err, ErrTimeout) || n != 3 {
			t.Fatalf("ReadFull = %d, %v; want 3 bytes and ErrTimeout", n, err)
		}
		if el := time.Since(start); el != 500*time.Millisecond {
			t.Errorf("timed out after %v", el)
		}
	})
}

func TestPipeCloseEndsPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		host, dev := Pipe(LinkOptions{})
		dev.Write([]byte("last"))
		dev.Close()
		buf := make([]byte, 16)
		host.SetReadTimeout(time.Second)
		n, err := host.Read(buf)
		if err != nil || string(buf[:n]) != "last" {
			t.Fatalf("first read = %q, %v; want the bytes in flight", buf[:n], err)
		}
		if _, err := host.Read(buf); !errors.Is(err, ErrClosed) {
			t.Fatalf("second read err = %v, want ErrClosed", err)
		}
		if _, err := host.Write([]byte{1}); !errors.Is(err, ErrClosed) {
			t.Fatalf("write to closed peer err = %v, want ErrClosed", err)
		}
	})
}

func TestWriteAllHandlesShortWrites(t *testing.T) {
	p := &shortWriter{max: 5}
	if err := WriteAll(p, []byte("hello, world")); err != nil {
		t.Fatal(err)
	}
	if p.got.String() != "hello, world" {
		t.Fatalf("got %q", p.got.String())
	}
	stuck := &shortWriter{max: 0}
	if err := WriteAll(stuck, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("stalled write err = %v, want ErrClosed", err)
	}
}

type shortWriter struct {
	PipePort
	max int
	got bytes.Buffer
}

func (s *shortWriter) Write(b []byte) (int, error) {
	n := min(len(b), s.max)
	s.got.Write(b[:n])
	return n, nil
}

func TestTraceDumpsTraffic(t *testing.T) {
	host, dev := Pipe(LinkOptions{})
	var log bytes.Buffer
	tp := Trace(host, &log)
	tp.Write([]byte{0x01, 0xE0, 0xFC, 0x01, 0x00})
	dev.Write([]byte{0x04, 0x0E})
	buf := make([]byte, 2)
	ReadFull(tp, buf, time.Now().Add(time.Second))
	for _, want := range []string{"TX     5 | 01 E0 FC 01 00", "RX     2 | 04 0E"} {
		if !bytes.Contains(log.Bytes(), []byte(want)) {
			t.Errorf("trace lacks %q:\n%s", want, log.String())
		}
	}
}

func TestAdapterName(t *testing.T) {
	tests := []struct{ vid, pid, want string }{
		{"1a86", "7523", "WCH CH340"},
		{"10C4", "EA60", "Silicon Labs CP210x"},
		{"0x403", "0x6001", "FTDI FT232R"},
		{"067b", "2303", "Prolific PL2303"},
		{"dead", "beef", ""},
	}
	for _, tc := range tests {
		if got := AdapterName(tc.vid, tc.pid); got != tc.want {
			t.Errorf("AdapterName(%s,%s) = %q, want %q", tc.vid, tc.pid, got, tc.want)
		}
	}
}
