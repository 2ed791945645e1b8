// Package redistest starts real redis-server processes for tests: on a
// loopback port, in a directory of the test's, with no persistence, killed
// with the test process.
package redistest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// ErrNoRedis is returned by Start when redis-server is not installed.
var ErrNoRedis = errors.New("redis-server is not installed (scripts/redis install installs it)")

// Server is a redis-server a test started and may kill.
type Server struct {
	Addr string // 127.0.0.1:PORT
	Port int
	cmd  *exec.Cmd
	done chan struct{}
}

// Installed reports whether redis-server is on PATH.
func Installed() bool {
	_, err := exec.LookPath("redis-server")
	return err == nil
}

// Start starts redis-server on 127.0.0.1:port, or on a free port for 0,
// with the extra arguments (--cluster-enabled yes, say), and waits until
// it accepts connections.
func Start(dir string, port int, extra ...string) (*Server, error) {
	if !Installed() {
		return nil, ErrNoRedis
	}
	for attempt := 0; attempt < 5; attempt++ {
		p := port
		if p == 0 {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			p = l.Addr().(*net.TCPAddr).Port
			l.Close()
		}
		s := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", p), Port: p, done: make(chan struct{})}
		s.cmd = exec.Command("redis-server", "--bind", "127.0.0.1", "--port", fmt.Sprint(p),
			"--dir", dir, "--save", "", "--appendonly", "no",
			"--logfile", filepath.Join(dir, fmt.Sprintf("redis-%d.log", p)))
		s.cmd.Args = append(s.cmd.Args, extra...)
		s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := s.cmd.Start(); err != nil {
			return nil, err
		}
		go func() { s.cmd.Wait(); close(s.done) }()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			select {
			case <-s.done:
				deadline = time.Time{} // it exited: the port was taken
				continue
			default:
			}
			if c, err := net.DialTimeout("tcp", s.Addr, 100*time.Millisecond); err == nil {
				c.Close()
				return s, nil
			}
		}
		s.Kill()
		if port != 0 {
			return nil, fmt.Errorf("redis-server did not start on port %d", port)
		}
	}
	return nil, errors.New("redis-server did not start on a free port in 5 tries")
}

// Kill stops the server at once, as a crash would, and waits for it.
func (s *Server) Kill() {
	s.cmd.Process.Signal(os.Kill)
	<-s.done
}

// Signal sends sig to the server: SIGSTOP pauses it, as a stalled server
// would be, SIGCONT resumes it.
func (s *Server) Signal(sig os.Signal) error { return s.cmd.Process.Signal(sig) }
