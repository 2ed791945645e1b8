package client

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The tests talk to the real daemon: TestMain builds `coalesce` once, each
// daemon a test needs is started on first use, and every one is stopped
// before the package's goroutines are checked for leaks.

var (
	binPath string // the coalesce binary
	tmpDir  string // the binary, the daemons' sockets, ready and token files

	daemonsMu sync.Mutex
	daemons   = map[string]*daemon{}
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "coalesce-client-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	tmpDir = dir
	binPath = filepath.Join(dir, "coalesce")
	build := exec.Command("go", "build", "-o", binPath, "github.com/coalesce-go/coalesce/cmd/coalesce")
	build.Dir = ".." // the repository's root, in the workspace
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the daemon: %v\n%s", err, out)
		return 1
	}
	code := m.Run()
	stopDaemons()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			return 1
		}
	}
	return code
}

// daemon is a running `coalesce serve`.
type daemon struct {
	name   string
	url    string // http://127.0.0.1:PORT
	socket string // its --socket
	token  string // its --token-file's token, or ""
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited
	log    *os.File
}

// The daemons the tests share, by name, with their flags.
var daemonFlags = map[string][]string{
	// fast: the default demo executor (15-30 ms); idle connections closed
	// after 250 ms, so that a kept-alive connection goes stale between
	// calls.
	"fast": {"--idle-timeout", "250ms"},
	// slow: every computation takes 1 s, so that concurrent requests
	// collapse and a respond-async result is still pending when polled.
	"slow": {"--demo-min", "1s", "--demo-max", "1s"},
	// strict: a token, small limits, and a task timeout far below the
	// 1 s computation, so that every computation times out.
	"strict": {"--demo-min", "1s", "--demo-max", "1s", "--task-timeout", "50ms", "--max-input", "64", "--max-batch", "4"},
	// tight: one worker, a queue of one, one waiter at most.
	"tight": {"--demo-min", "2s", "--demo-max", "2s", "--workers", "1", "--queue", "1", "--max-waiters", "1"},
	// durable: the defaults, for the tests that delete namespaces and
	// restart the daemon on its disk tier without disturbing the others.
	"durable": {},
}

const strictToken = "s3cret-token"

// startDaemon returns the daemon named name, starting it on first use.
func startDaemon(t testing.TB, name string) *daemon {
	t.Helper()
	daemonsMu.Lock()
	defer daemonsMu.Unlock()
	if d, ok := daemons[name]; ok {
		return d
	}
	flags, ok := daemonFlags[name]
	if !ok {
		t.Fatalf("no daemon %q", name)
	}
	d := &daemon{name: name, socket: filepath.Join(tmpDir, name+".sock"), exited: make(chan struct{})}
	ready := filepath.Join(tmpDir, name+".ready")
	os.Remove(ready) // a restarted daemon's previous one
	// Each daemon has a disk tier of its own: one directory serves one
	// daemon at a time, and the default one is the user's.
	args := []string{"serve", "--addr", "127.0.0.1:0", "--socket", d.socket, "--ready-file", ready, "--grace", "1s", "--log-level", "warn",
		"--data-dir", filepath.Join(tmpDir, name+".data")}
	if name == "strict" {
		d.token = strictToken
		tf := filepath.Join(tmpDir, "token")
		if err := os.WriteFile(tf, []byte(d.token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--token-file", tf)
	}
	args = append(args, flags...)
	// Appended to, so that a restarted daemon's log follows its
	// predecessor's.
	log, err := os.OpenFile(filepath.Join(tmpDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	d.log = log
	d.cmd = exec.Command(binPath, args...)
	d.cmd.Stdout, d.cmd.Stderr = log, log
	d.cmd.Env = cleanEnv()
	d.cmd.SysProcAttr = daemonProcAttr()
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("starting the daemon: %v", err)
	}
	go func() {
		d.cmd.Wait()
		close(d.exited)
	}()
	daemons[name] = d
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, err := os.ReadFile(ready)
		if err == nil && bytes.HasSuffix(b, []byte("\n")) {
			d.url = strings.TrimSpace(string(b))
			return d
		}
		select {
		case <-d.exited:
			out, _ := os.ReadFile(log.Name())
			t.Fatalf("daemon %s exited before it was ready: %v\n%s", name, d.cmd.ProcessState, out)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon %s wrote no ready file within 20 s", name)
		}
	}
}

// cleanEnv is the test's environment without COALESCE_ settings, which
// the daemon would read as flags.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "COALESCE_") {
			env = append(env, kv)
		}
	}
	return env
}

// restartDaemon stops the daemon named name with SIGTERM, as a service
// manager would, and starts it again on the same flags and disk tier. The
// new one listens on another port: use the returned daemon.
func restartDaemon(t testing.TB, name string) *daemon {
	t.Helper()
	daemonsMu.Lock()
	d, ok := daemons[name]
	if ok {
		delete(daemons, name)
	}
	daemonsMu.Unlock()
	if ok {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(10 * time.Second):
			d.cmd.Process.Kill()
			<-d.exited
			t.Fatalf("daemon %s did not stop on SIGTERM within 10 s", name)
		}
		d.log.Close()
		if !d.cmd.ProcessState.Success() {
			t.Fatalf("daemon %s exited with %v on SIGTERM", name, d.cmd.ProcessState)
		}
	}
	return startDaemon(t, name)
}

// stopDaemons stops every daemon: SIGTERM to all, then SIGKILL to any
// still running 10 s later.
func stopDaemons() {
	daemonsMu.Lock()
	defer daemonsMu.Unlock()
	for _, d := range daemons {
		d.cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for name, d := range daemons {
		select {
		case <-d.exited:
		case <-deadline.Done():
			fmt.Fprintf(os.Stderr, "daemon %s did not stop on SIGTERM within 10 s; killing it\n", name)
			d.cmd.Process.Kill()
			<-d.exited
		}
		d.log.Close()
		delete(daemons, name)
	}
}
