package executor

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
)

// Bounds of what is kept of a worker's stderr: a line longer than
// maxLogLine is logged in pieces, and the last line quoted in errors is cut
// to maxLastLine bytes, so a worker that writes megabytes without a newline
// costs neither memory nor huge error messages.
const (
	maxLogLine  = 4096
	maxLastLine = 512
)

// stderrLog is the io.Writer a worker's stderr is copied to: it logs each
// line and remembers the last non-blank one, which start and crash errors
// quote. Write is called by os/exec's copying goroutine, lastLine by the pool.
type stderrLog struct {
	log *slog.Logger
	pid int

	mu   sync.Mutex
	buf  []byte // an incomplete line
	last string
}

func (s *stderrLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		end := i
		if i < 0 {
			end = len(p)
		}
		take := min(end, maxLogLine-len(s.buf))
		s.buf = append(s.buf, p[:take]...)
		p = p[take:]
		if take == end && i >= 0 {
			p = p[1:] // the newline
			s.emit()
		} else if len(s.buf) == maxLogLine {
			s.emit()
		}
	}
	return n, nil
}

// flush logs an unterminated last line; called once the process has exited
// and its stderr has been copied.
func (s *stderrLog) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.buf) > 0 {
		s.emit()
	}
}

func (s *stderrLog) emit() {
	line := strings.ToValidUTF8(strings.TrimRight(string(s.buf), "\r"), "\uFFFD")
	s.buf = s.buf[:0]
	if strings.TrimSpace(line) == "" {
		return
	}
	s.log.Info("worker stderr", "pid", s.pid, "line", line)
	if len(line) > maxLastLine {
		line = strings.ToValidUTF8(line[:maxLastLine], "") + "…"
	}
	s.last = line
}

// setPID names the process in the log once it has started; its first
// lines may already be arriving.
func (s *stderrLog) setPID(pid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pid = pid
}

// lastLine returns the last non-blank line the worker wrote to stderr.
func (s *stderrLog) lastLine() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}
