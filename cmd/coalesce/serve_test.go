package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coalesce-go/coalesce/server/executor"
)

// daemon is a `coalesce serve` process started by a test: the test binary
// itself, re-executed as the command (see TestMain).
type daemon struct {
	url    string
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
}

// syncBuffer is a bytes.Buffer safe for the process's writer goroutine and
// the test reading it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startDaemon runs `coalesce serve ARGS --addr 127.0.0.1:0` and waits until
// it serves. The test's cleanup stops it with SIGTERM (SIGKILL if it does not
// stop within 20 s) and reports its log if the test failed.
func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	args = append([]string{"serve", "--addr", "127.0.0.1:0", "--ready-file", ready, "--grace", "2s"}, args...)
	cmd := exec.Command(os.Args[0], args...)
	// Each daemon keeps its results in a store of its own unless the test
	// names one (--data-dir on the command line wins).
	cmd.Env = append(os.Environ(), "COALESCE_TEST_RUN_MAIN=1", "COALESCE_DATA_DIR="+filepath.Join(dir, "data"))
	d := &daemon{cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		d.stop(t)
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.stderr.String())
		}
	})
	deadline := time.After(30 * time.Second)
	for {
		if b, err := os.ReadFile(ready); err == nil && bytes.HasSuffix(b, []byte("\n")) {
			d.url = strings.TrimSpace(string(b))
			return d
		}
		select {
		case <-d.done:
			t.Fatalf("the daemon exited before serving: %s", d.stderr.String())
		case <-deadline:
			t.Fatalf("the daemon did not serve within 30 s: %s", d.stderr.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (d *daemon) stop(t *testing.T) {
	select {
	case <-d.done:
		return
	default:
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		// A graceful shutdown exits 0 and says so.
		if code := d.cmd.ProcessState.ExitCode(); code != 0 || !strings.Contains(d.stderr.String(), "msg=stopped") {
			t.Errorf("after SIGTERM the daemon exited %d; log:\n%s", code, d.stderr.String())
		}
	case <-time.After(20 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
		t.Errorf("the daemon did not stop within 20 s of SIGTERM")
	}
}

func (d *daemon) stats(t *testing.T) map[string]any {
	t.Helper()
	resp, err := http.Get(d.url + "/v1/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func (d *daemon) stat(t *testing.T, name string) int {
	v, _ := d.stats(t)[name].(float64)
	return int(v)
}

// until polls cond; it asserts no duration, only that the state is reached.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never reached: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func postTo(client *http.Client, url, body string, header ...string) (int, http.Header, []byte, error) {
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

func codeOf(b []byte) string {
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	json.Unmarshal(b, &e)
	return e.Error.Code
}

// TestServeManyClientsOneComputationPerInput is the first
// acceptance test: 200 concurrent clients over a mix of inputs get the right
// bytes, and the executor ran once per distinct input.
func TestServeManyClientsOneComputationPerInput(t *testing.T) {
	d := startDaemon(t, "--demo-min", "5ms", "--demo-max", "10ms", "--workers", "4")
	demo, err := executor.NewDemo(executor.DemoOptions{Min: time.Microsecond, Max: time.Microsecond})
	if err != nil {
		t.Fatal(err)
	}
	defer demo.Close()
	const clients, perClient, distinct = 200, 5, 40
	want := make([][]byte, distinct)
	for i := range want {
		want[i], _ = demo.Compute(context.Background(), []byte(fmt.Sprintf("input-%d", i)))
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	var bad atomic.Int64
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perClient {
				i := (c*7 + j*13) % distinct
				status, _, body, err := postTo(client, d.url+"/v1/compute", fmt.Sprintf("input-%d", i))
				if err != nil || status != 200 || !bytes.Equal(body, want[i]) {
					if bad.Add(1) < 5 {
						t.Errorf("input-%d: %d %v (%d bytes)", i, status, err, len(body))
					}
				}
			}
		}()
	}
	wg.Wait()
	st := d.stats(t)
	if int(st["Computed"].(float64)) != distinct || int(st["Requests"].(float64)) != clients*perClient {
		t.Fatalf("computed %v for %d distinct inputs, %v requests for %d", st["Computed"], distinct, st["Requests"], clients*perClient)
	}
}

func TestServeUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "c.sock")
	d := startDaemon(t, "--socket", sock, "--demo-min", "1ms", "--demo-max", "1ms")
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("socket mode %v, want 0600", perm)
	}
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	defer client.CloseIdleConnections()
	status, h, body, err := postTo(client, "http://unix/v1/compute", "over the socket")
	if err != nil || status != 200 || len(body) != executor.DemoResultSize {
		t.Fatalf("%d %v %d bytes", status, err, len(body))
	}
	_, h2, body2, _ := postTo(http.DefaultClient, d.url+"/v1/compute", "over the socket")
	if !bytes.Equal(body, body2) || h2.Get("Cache-Status") != "coalesce; hit" || h.Get("Coalesce-Key") != h2.Get("Coalesce-Key") {
		t.Fatalf("TCP after socket: %q, %q", h2.Get("Cache-Status"), h2.Get("Coalesce-Key"))
	}
	d.stop(t)
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("the socket file outlived the daemon: %v", err)
	}
}

func TestServeAsyncPollAndBatch(t *testing.T) {
	d := startDaemon(t, "--demo-min", "20ms", "--demo-max", "20ms")
	status, h, body, err := postTo(http.DefaultClient, d.url+"/v1/compute", "async", "Prefer", "respond-async")
	if err != nil || status != 202 {
		t.Fatalf("%d %v %s", status, err, body)
	}
	key := h.Get("Coalesce-Key")
	until(t, "the async result", func() bool {
		resp, err := http.Get(d.url + "/v1/results/" + key)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	var frame []byte
	for _, in := range []string{"async", "b", "b"} {
		frame = binary.BigEndian.AppendUint32(frame, uint32(len(in)))
		frame = append(frame, in...)
	}
	status, _, body, err = postTo(http.DefaultClient, d.url+"/v1/compute/batch", string(frame), "Content-Type", "application/vnd.coalesce.batch")
	if err != nil || status != 200 {
		t.Fatalf("batch: %d %v", status, err)
	}
	var outcomes []byte
	for len(body) >= 5 {
		n := binary.BigEndian.Uint32(body[1:5])
		outcomes = append(outcomes, body[0])
		body = body[5+n:]
	}
	if !bytes.Equal(outcomes, []byte{0, 2, 1}) {
		t.Fatalf("outcomes %v, want hit, computed, joined", outcomes)
	}
}

func TestServeClientDisconnectFreesWaiters(t *testing.T) {
	d := startDaemon(t, "--demo-min", "2s", "--demo-max", "2s")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, "POST", d.url+"/v1/compute", strings.NewReader(fmt.Sprint("slow ", i%3)))
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	until(t, "10 waiters", func() bool { return d.stat(t, "Waiters") == 10 })
	cancel()
	wg.Wait()
	until(t, "the waiters gauge back to 0", func() bool {
		st := d.stats(t)
		return st["Waiters"].(float64) == 0 && st["HTTPWaiters"].(float64) == 0
	})
	if a := d.stat(t, "Abandoned"); a != 3 {
		t.Errorf("Abandoned %d, want 3 (one per distinct input)", a)
	}
}

// TestServeLimits checks each limit's documented error.
func TestServeLimits(t *testing.T) {
	d := startDaemon(t, "--demo-min", "1s", "--demo-max", "1s", "--workers", "1", "--queue", "1",
		"--max-input", "64", "--max-batch", "2", "--max-waiters", "3", "--max-header-bytes", "1024")
	// Input and batch sizes.
	status, _, body, _ := postTo(http.DefaultClient, d.url+"/v1/compute", strings.Repeat("x", 65))
	if status != 413 || codeOf(body) != "input_too_large" {
		t.Errorf("input over --max-input: %d %s", status, body)
	}
	status, _, body, _ = postTo(http.DefaultClient, d.url+"/v1/compute/batch", `{"inputs":["YQ==","Yg==","Yw=="]}`, "Content-Type", "application/json")
	if status != 413 || codeOf(body) != "batch_too_large" {
		t.Errorf("batch over --max-batch: %d %s", status, body)
	}
	req, _ := http.NewRequest("GET", d.url+"/healthz", nil)
	// net/http allows MaxHeaderBytes plus 4 KiB of slop, and on a reused
	// connection up to its read buffer more: 64 KiB is beyond either.
	req.Header.Set("X-Big", strings.Repeat("h", 64<<10))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 431 {
		t.Errorf("headers over --max-header-bytes: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// The queue: one running, one queued, the next distinct input refused.
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, in := range []string{"q1", "q2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			postTo(http.DefaultClient, d.url+"/v1/compute", in)
		}()
		until(t, "queued "+in, func() bool { return d.stat(t, "Waiters") >= 1 && (in == "q1" || d.stat(t, "Queued") == 1) })
	}
	status, h, body, _ := postTo(http.DefaultClient, d.url+"/v1/compute", "q3")
	if status != 503 || codeOf(body) != "overloaded" || h.Get("Retry-After") == "" {
		t.Errorf("queue full: %d %s", status, body)
	}
	// Waiters: two are waiting; a third joins, a fourth is refused.
	wg.Add(1)
	go func() {
		defer wg.Done()
		postTo(http.DefaultClient, d.url+"/v1/compute", "q1")
	}()
	until(t, "3 HTTP waiters", func() bool { return d.stat(t, "HTTPWaiters") == 3 })
	status, _, body, _ = postTo(http.DefaultClient, d.url+"/v1/compute", "q1")
	if status != 503 || codeOf(body) != "too_many_waiters" {
		t.Errorf("over --max-waiters: %d %s", status, body)
	}
}

func TestServeTokenAndAddress(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600)
	d := startDaemon(t, "--token-file", tokenFile, "--demo-min", "1ms", "--demo-max", "1ms")
	if status, _, body, _ := postTo(http.DefaultClient, d.url+"/v1/compute", "a"); status != 401 || codeOf(body) != "unauthorized" {
		t.Errorf("no token: %d %s", status, body)
	}
	if status, _, _, _ := postTo(http.DefaultClient, d.url+"/v1/compute", "a", "Authorization", "Bearer nope"); status != 401 {
		t.Errorf("wrong token: %d", status)
	}
	if status, _, _, _ := postTo(http.DefaultClient, d.url+"/v1/compute", "a", "Authorization", "Bearer s3cret"); status != 200 {
		t.Errorf("right token: %d", status)
	}

	// Beyond loopback without a token: refused at start-up, in-process.
	var stderr bytes.Buffer
	code := run([]string{"serve", "--addr", "0.0.0.0:0"}, io.Discard, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "set a bearer token") {
		t.Errorf("0.0.0.0 without a token: exit %d, %q", code, stderr.String())
	}
}

// TestServeUpstreamFailures: an upstream that fails, stalls or resets gives
// 502 or 504 with a JSON error, and the daemon serves on.
func TestServeUpstreamFailures(t *testing.T) {
	var calls atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		switch string(body) {
		case "fail":
			http.Error(w, "upstream says no", http.StatusInternalServerError)
		case "stall":
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		case "reset":
			conn, _, _ := w.(http.Hijacker).Hijack()
			if tc, ok := conn.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			conn.Close()
		default:
			w.Write(bytes.ToUpper(body))
		}
	}))
	defer up.Close()
	d := startDaemon(t, "--upstream", up.URL, "--upstream-timeout", "200ms")
	for _, tc := range []struct {
		in     string
		status int
		code   string
	}{
		{"fail", 502, "executor_failed"},
		{"stall", 504, "timeout"},
		{"reset", 502, "executor_failed"},
		{"fine", 200, ""},
	} {
		status, _, body, err := postTo(http.DefaultClient, d.url+"/v1/compute", tc.in)
		if err != nil || status != tc.status || (tc.code != "" && codeOf(body) != tc.code) || (tc.code == "" && string(body) != "FINE") {
			t.Errorf("%s: %d %v %s", tc.in, status, err, body)
		}
	}
}

// TestServeOddFlags: every bad value exits non-zero at once with one line
// that names the flag and what is allowed.
func TestServeOddFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--workers", "100000000"}, "--workers 100000000: allowed 0 to 65536"},
		{[]string{"--cache-mib", "0"}, "--cache-mib 0: allowed 1 to"},
		{[]string{"--cache-mib", "100000000000"}, "--cache-mib 100000000000: allowed 1 to 1048576"},
		{[]string{"--queue", "-1"}, "--queue -1: allowed 1 to"},
		{[]string{"--max-input", "0"}, "--max-input 0: allowed 1 to"},
		{[]string{"--task-timeout", "-1s"}, "--task-timeout -1s: allowed"},
		{[]string{"--write-timeout", "0"}, "--write-timeout 0s: allowed 1s to"},
		{[]string{"--log-format", "xml"}, `--log-format "xml": allowed text or json`},
		{[]string{"--log-level", "loud"}, `--log-level "loud": allowed debug`},
		{[]string{"--exec", "a", "--upstream", "http://x"}, "choose one executor"},
		{[]string{"--exec", `python3 "unterminated`}, "unterminated double quote"},
		{[]string{"--upstream", "ftp://x"}, "--upstream"},
		{[]string{"--addr", ""}, "nothing to listen on"},
		{[]string{"--addr", "nonsense"}, "--addr"},
		{[]string{"--demo-min", "2s", "--demo-max", "1s"}, "--demo-min/--demo-max"},
		{[]string{"--token-file", "/nonexistent/token"}, "--token-file"},
		{[]string{"--pprof", "0.0.0.0:6060"}, "--pprof"},
		{[]string{"stray"}, `unexpected argument "stray"`},
		{[]string{"--no-such-flag"}, "flag provided but not defined"},
		{[]string{"--data-dir", ""}, `--data-dir "": give a directory, or "none"`},
		{[]string{"--disk-max-gib", "0"}, "--disk-max-gib 0: allowed 0.0625"},
		{[]string{"--sync", "sometimes"}, `--sync "sometimes": allowed group or always`},
		{[]string{"--version", "has space"}, "Options.Version"},
		{[]string{"--namespace-ttl", "a"}, `"a" is not NAME=DURATION`},
		{[]string{"--namespace-ttl", "a=-1s"}, "the duration must be positive"},
		{[]string{"--namespace-ttl", "a=1s,a=2s"}, `namespace "a" given twice`},
		{[]string{"--namespace-ttl", "bad name=1s"}, "Options.NamespaceTTL"},
		{[]string{"--redis-wait", "-1s"}, "--redis-wait -1s: allowed"},
		{[]string{"--redis-wait", "2h"}, "--redis-wait 2h0m0s: allowed"},
	} {
		var stderr bytes.Buffer
		code := run(append([]string{"serve"}, tc.args...), io.Discard, &stderr)
		if code == 0 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: exit %d, %q; want an error containing %q", tc.args, code, stderr.String(), tc.want)
		}
	}
	t.Setenv("COALESCE_WORKERS", "abc")
	var stderr bytes.Buffer
	if code := run([]string{"serve"}, io.Discard, &stderr); code == 0 || !strings.Contains(stderr.String(), "COALESCE_WORKERS") {
		t.Errorf("bad environment value: exit %d, %q", code, stderr.String())
	}
}

func TestSplitCommand(t *testing.T) {
	for in, want := range map[string][]string{
		`python3 worker.py`:            {"python3", "worker.py"},
		`  a   'b c'  "d \"e\"" f\ g `: {"a", "b c", `d "e"`, "f g"},
		`x ''`:                         {"x", ""},
	} {
		got, err := splitCommand(in)
		if err != nil || strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "   ", `a 'b`, `a "b`, `a\`} {
		if _, err := splitCommand(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestServeExecWorkerFailures: an --exec worker that crashes, hangs or
// writes garbage fails its request with a JSON error, is replaced, and the
// next request is served.
func TestServeExecWorkerFailures(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed: the --exec worker of this test is a Python script")
	}
	d := startDaemon(t, "--exec", python+" testdata/misbehaving_worker.py", "--exec-workers", "1", "--task-timeout", "2s")
	// ok asserts that the input is served, allowing a few tries: on a loaded
	// machine the replacement worker's start-up (a Python interpreter) may
	// take longer than the task timeout.
	ok := func(in string) {
		t.Helper()
		var status int
		var body []byte
		var err error
		for range 5 {
			status, _, body, err = postTo(http.DefaultClient, d.url+"/v1/compute", in)
			if err == nil && status != 504 {
				break
			}
		}
		sum := sha256.Sum256([]byte(in))
		if err != nil || status != 200 || string(body) != hex.EncodeToString(sum[:]) {
			t.Fatalf("%s: %d %v %s", in, status, err, body)
		}
	}
	ok("first")
	for i, tc := range []struct {
		in     string
		status int
		code   string
	}{
		{"crash", 502, "executor_failed"},
		{"hang", 504, "timeout"},
		{"garbage", 502, "executor_failed"},
	} {
		status, _, body, err := postTo(http.DefaultClient, d.url+"/v1/compute", tc.in)
		if err != nil || status != tc.status || codeOf(body) != tc.code {
			t.Errorf("%s: %d %v %s; want %d %s", tc.in, status, err, body, tc.status, tc.code)
		}
		ok(fmt.Sprint("after ", tc.in, i))
	}
}

// TestServeGracefulShutdown: on SIGTERM, a request in flight finishes
// within the grace and gets its result; new connections are refused.
func TestServeGracefulShutdown(t *testing.T) {
	d := startDaemon(t, "--demo-min", "500ms", "--demo-max", "500ms")
	type answer struct {
		status int
		body   []byte
		err    error
	}
	got := make(chan answer, 1)
	go func() {
		status, _, body, err := postTo(&http.Client{}, d.url+"/v1/compute", "in flight")
		got <- answer{status, body, err}
	}()
	until(t, "the request waiting", func() bool { return d.stat(t, "Waiters") == 1 })
	d.cmd.Process.Signal(syscall.SIGTERM)
	a := <-got
	if a.err != nil || a.status != 200 || len(a.body) != executor.DemoResultSize {
		t.Fatalf("the request in flight at SIGTERM: %d %v %q", a.status, a.err, a.body)
	}
	<-d.done
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if _, err := http.Get(d.url + "/healthz"); err == nil {
		t.Fatal("the daemon still accepts connections after shutting down")
	}
}
