package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/coalesce-go/coalesce/internal/redistest"
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

func haveRedisServer() bool { return redistest.Installed() }

// needRedis returns the shared Redis' address, or skips.
func needRedis(t testing.TB) string {
	t.Helper()
	if sharedAddr == "" {
		t.Skip(skipNoRedis)
	}
	return sharedAddr
}

// redisServer is a redis-server this test binary started and may kill
// or restart.
type redisServer struct {
	s    *redistest.Server
	addr string
	port int
	dir  string
}

// startRedis starts redis-server on 127.0.0.1:port (a free one for 0),
// with no persistence and the extra arguments, and waits until it
// answers.
func startRedis(dir string, port int, extra ...string) (*redisServer, error) {
	s, err := redistest.Start(dir, port, extra...)
	if err != nil {
		return nil, err
	}
	return &redisServer{s: s, addr: s.Addr, port: s.Port, dir: dir}, nil
}

// kill stops the server at once (SIGKILL: what a crash looks like to the
// clients) and waits for it to exit.
func (s *redisServer) kill() { s.s.Kill() }

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

// hangBound is how long a test lets a call that must return promptly take
// before it calls it hung: far above any honest latency on a loaded
// machine, far below the waits (LeaseTTL, a poll of a minute) that a
// broken mechanism would fall back on.
const hangBound = 20 * time.Second

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
