package executor

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a log destination that tests can read while the pool
// writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testPool starts a pool of this test binary as workers in the given mode;
// it is closed when the test ends, and its log is printed if the test
// failed.
func testPool(t *testing.T, mode string, opts ProcessOptions, env ...string) (*Process, *syncBuffer) {
	t.Helper()
	p, logs, err := newTestPool(t, mode, opts, env...)
	if err != nil {
		t.Fatalf("NewProcess: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p, logs
}

func newTestPool(t *testing.T, mode string, opts ProcessOptions, env ...string) (*Process, *syncBuffer, error) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pool log:\n%s", logs)
		}
	})
	opts.Command = []string{exe}
	opts.Env = append(append(opts.Env, testWorkerEnv+"="+mode), env...)
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if opts.Workers == 0 {
		opts.Workers = 1
	}
	p, err := NewProcess(opts)
	return p, logs, err
}

// marker returns the environment entry of a fresh marker file's path.
func marker(t *testing.T) string {
	return testMarkerEnv + "=" + filepath.Join(t.TempDir(), "marker")
}

// eventually polls cond until it holds, failing the test after a bound that
// only guards against a hang.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not true after 20 s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// livePIDs returns the process ids of the pool's live workers.
func livePIDs(p *Process) []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var pids []int
	for _, w := range p.live {
		pids = append(pids, w.pid)
	}
	return pids
}

// inflight returns the places taken in the pool's live workers.
func inflight(p *Process) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, w := range p.live {
		n += w.inflight
	}
	return n
}

func wantErrContains(t *testing.T, err error, target error, parts ...string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v; want one matching %v", err, target)
	}
	for _, s := range parts {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}
