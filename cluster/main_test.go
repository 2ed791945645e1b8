package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// sharedAddr is the Redis the tests share: COALESCE_REDIS_ADDR (scripts/test
// starts one), or one TestMain started, or "" when there is no Redis here.
var sharedAddr string

// skipNoRedis is why tests that need Redis skip, when they do.
const skipNoRedis = "no Redis: set COALESCE_REDIS_ADDR (scripts/redis starts one), or install redis-server so that the tests start their own"

func TestMain(m *testing.M) {
	if os.Getenv(nodeEnv) != "" {
		os.Exit(runNode())
	}
	sharedAddr = os.Getenv("COALESCE_REDIS_ADDR")
	var own *redisServer
	if sharedAddr == "" && haveRedisServer() {
		dir, err := os.MkdirTemp("", "cluster-test-redis")
		if err == nil {
			own, err = startRedis(dir, 0)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "cluster tests: starting redis-server:", err)
			os.Exit(1)
		}
		sharedAddr = own.addr
		defer os.RemoveAll(dir)
	}
	code := m.Run()
	if own != nil {
		own.kill()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func haveRedisServer() bool {
	_, err := exec.LookPath("redis-server")
	return err == nil
}

// needRedis returns the shared Redis' address, or skips.
func needRedis(t testing.TB) string {
	t.Helper()
	if sharedAddr == "" {
		t.Skip(skipNoRedis)
	}
	return sharedAddr
}

// redisServer is a redis-server this test binary started and may kill.
type redisServer struct {
	cmd  *exec.Cmd
	addr string
	port int
	dir  string
	done chan struct{}
}

// startRedis starts redis-server on 127.0.0.1:port (a free one for 0),
// with no persistence and the extra arguments, and waits until it
// answers.
func startRedis(dir string, port int, extra ...string) (*redisServer, error) {
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
		s := &redisServer{addr: fmt.Sprintf("127.0.0.1:%d", p), port: p, dir: dir, done: make(chan struct{})}
		s.cmd = exec.Command("redis-server", "--bind", "127.0.0.1", "--port", fmt.Sprint(p),
			"--dir", dir, "--save", "", "--appendonly", "no",
			"--logfile", filepath.Join(dir, fmt.Sprintf("redis-%d.log", p)))
		s.cmd.Args = append(s.cmd.Args, extra...)
		s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := s.cmd.Start(); err != nil {
			return nil, err
		}
		go func() { s.cmd.Wait(); close(s.done) }()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-s.done:
				deadline = time.Time{} // exited: the port was taken; try another
				continue
			default:
			}
			if c, err := net.DialTimeout("tcp", s.addr, 100*time.Millisecond); err == nil {
				c.Close()
				return s, nil
			}
			time.Sleep(20 * time.Millisecond)
		}
		s.kill()
		if port != 0 {
			return nil, fmt.Errorf("redis-server did not start on port %d", port)
		}
	}
	return nil, fmt.Errorf("redis-server did not start")
}

// kill stops the server at once (SIGKILL: what a crash looks like to the
// clients) and waits for it to exit.
func (s *redisServer) kill() {
	s.cmd.Process.Kill()
	<-s.done
}

// ownRedis starts a Redis for one test, which may kill and restart it.
func ownRedis(t *testing.T) *redisServer {
	t.Helper()
	if !haveRedisServer() {
		t.Skip("this test kills its own Redis: install redis-server (scripts/redis install)")
	}
	s, err := startRedis(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.kill)
	return s
}

// restart starts the server again on the same port, empty.
func (s *redisServer) restart(t *testing.T) {
	t.Helper()
	var err error
	for i := 0; i < 50; i++ {
		var n *redisServer
		if n, err = startRedis(s.dir, s.port); err == nil {
			*s = *n
			return
		}
		time.Sleep(100 * time.Millisecond) // the port may linger a moment
	}
	t.Fatal(err)
}

// testPrefix is a Prefix of its own for each test, so that tests sharing
// a Redis (and leftovers of earlier runs) never meet.
func testPrefix(t testing.TB) string {
	b := make([]byte, 4)
	rand.Read(b)
	name := strings.NewReplacer("/", ".", "{", "", "}", "").Replace(t.Name())
	return "ctest:" + name + ":" + hex.EncodeToString(b) + ":"
}

// testOptions are Options for a test against addr: short waits, so that
// the failure cases take seconds.
func testOptions(t testing.TB, addr string) Options {
	return Options{
		Addr:            addr,
		Prefix:          testPrefix(t),
		LeaseTTL:        time.Minute,
		LivenessTTL:     time.Second,
		LivenessRefresh: 200 * time.Millisecond,
		PollInterval:    100 * time.Millisecond,
		NegativeTTL:     time.Second,
		Timeout:         500 * time.Millisecond,
		Logger:          slog.New(slog.NewTextHandler(testLog{t}, nil)),
	}
}

// testLog sends a Tier's log lines to the test's log.
type testLog struct{ t testing.TB }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func newTier(t testing.TB, o Options) *Tier {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tr, err := New(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	return tr
}
