package session

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/tuyaflash/tuyaflash/transport"
)

// summarize wraps p so that every command sent and every reply is
// summed up in one line on w (-vv): size, the first bytes, and for a
// reply how long it took.
func summarize(p transport.Port, w io.Writer) transport.Port {
	return &summaryPort{Port: p, w: w}
}

type summaryPort struct {
	transport.Port
	mu     sync.Mutex
	w      io.Writer
	sent   time.Time
	rx     int
	rxHead []byte
}

const summaryBytes = 12

func head(b []byte) string {
	var sb strings.Builder
	for i, c := range b[:min(len(b), summaryBytes)] {
		if i > 0 {
			sb.WriteByte(' ')
		}
		fmt.Fprintf(&sb, "%02X", c)
	}
	if len(b) > summaryBytes {
		sb.WriteString(" …")
	}
	return sb.String()
}

// flush prints the reply gathered since the last command.
func (s *summaryPort) flush() {
	if s.rx == 0 {
		return
	}
	fmt.Fprintf(s.w, "  <- %5d B after %4d ms  %s\n", s.rx, time.Since(s.sent).Milliseconds(), head(s.rxHead))
	s.rx, s.rxHead = 0, s.rxHead[:0]
}

func (s *summaryPort) Write(b []byte) (int, error) {
	s.mu.Lock()
	s.flush()
	fmt.Fprintf(s.w, "  -> %5d B                 %s\n", len(b), head(b))
	s.sent = time.Now()
	s.mu.Unlock()
	return s.Port.Write(b)
}

func (s *summaryPort) Read(b []byte) (int, error) {
	n, err := s.Port.Read(b)
	if n > 0 {
		s.mu.Lock()
		if len(s.rxHead) < summaryBytes+1 {
			s.rxHead = append(s.rxHead, b[:min(n, summaryBytes+1-len(s.rxHead))]...)
		}
		s.rx += n
		s.mu.Unlock()
	}
	return n, err
}

func (s *summaryPort) SetBaudRate(baud int) error {
	s.mu.Lock()
	s.flush()
	fmt.Fprintf(s.w, "  -- baud %d\n", baud)
	s.mu.Unlock()
	return s.Port.SetBaudRate(baud)
}

// Unwrap gives the port under the summary (transport.Latency looks
// through it).
func (s *summaryPort) Unwrap() transport.Port { return s.Port }

func (s *summaryPort) Close() error {
	s.mu.Lock()
	s.flush()
	s.mu.Unlock()
	return s.Port.Close()
}
