package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coalesce-go/coalesce"
)

// The multi-process tests run nodes that are copies of this test binary:
// TestMain sees nodeEnv and runs runNode instead of the tests. A node is a
// coalesce.Group with a Tier on the test's Redis, driven by lines on its
// stdin, answering with lines on its stdout:
//
//	get IN              → "result IN VALUE SOURCE MS" or "error IN MESSAGE"
//	burst N DISTINCT S P → N concurrent Gets of inputs P-0 … P-(DISTINCT-1),
//	                       drawn with seed S; "burst {values, errors}" (JSON)
//	stats               → "stats {computed, tier}" (JSON)
//	quit, or EOF        → close the Group and the Tier, exit
//
// and "computing IN" when its function starts on IN, which then takes
// the node's task time (slowTask for inputs that start with "slow"). The function's
// value depends on the input only (the computations are idempotent), so
// every node must answer alike whoever computed.
const (
	nodeEnv     = "COALESCE_CLUSTER_NODE"
	nodeAddr    = "COALESCE_CLUSTER_NODE_ADDR"
	nodePrefix  = "COALESCE_CLUSTER_NODE_PREFIX"
	nodeTask    = "COALESCE_CLUSTER_NODE_TASK"
	nodeLive    = "COALESCE_CLUSTER_NODE_LIVENESS"
	nodeTimeout = "COALESCE_CLUSTER_NODE_TIMEOUT"
)

const slowTask = 2 * time.Second

func valueOf(input string) string { return "value-of-" + input }

type burstReport struct {
	Values map[string]string `json:"values"`
	Errors []string          `json:"errors"`
}

type statsReport struct {
	Computed   uint64 `json:"computed"`
	Loaded     uint64 `json:"loaded"`
	TierErrors uint64 `json:"tier_errors"`
	Tier       Stats  `json:"tier"`
}

func runNode() int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "node:", err)
		return 1
	}
	task, err := time.ParseDuration(os.Getenv(nodeTask))
	if err != nil {
		return fail(err)
	}
	live, err := time.ParseDuration(os.Getenv(nodeLive))
	if err != nil {
		return fail(err)
	}
	timeout, err := time.ParseDuration(os.Getenv(nodeTimeout))
	if err != nil {
		return fail(err)
	}
	ctx := context.Background()
	tier, err := New(ctx, Options{
		Addr:            os.Getenv(nodeAddr),
		Prefix:          os.Getenv(nodePrefix),
		LeaseTTL:        time.Minute,
		LivenessTTL:     live,
		LivenessRefresh: live / 5,
		PollInterval:    100 * time.Millisecond,
		NegativeTTL:     time.Second,
		Timeout:         timeout,
	})
	if err != nil {
		return fail(err)
	}
	secret, err := tier.SharedSecret(ctx)
	if err != nil {
		return fail(err)
	}
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		outMu.Lock()
		fmt.Printf(format+"\n", args...)
		outMu.Unlock()
	}
	g, err := coalesce.New(func(ctx context.Context, in []byte) ([]byte, error) {
		say("computing %s", in)
		d := task
		if strings.HasPrefix(string(in), "slow") {
			d = slowTask
		}
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return []byte(valueOf(string(in))), nil
	}, coalesce.Options{Workers: 16, Tiers: []coalesce.Tier{tier}, Secret: secret, CacheBytes: 64 << 20})
	if err != nil {
		return fail(err)
	}
	var wg sync.WaitGroup
	sc := bufio.NewScanner(os.Stdin)
	say("ready %s", tier.Node())
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "get":
			in := f[1]
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(ctx, time.Minute)
				defer cancel()
				start := time.Now()
				r, err := g.Get(ctx, []byte(in))
				if err != nil {
					say("error %s %v", in, err)
					return
				}
				say("result %s %s %s %d", in, r.Value, r.Source, time.Since(start).Milliseconds())
			}()
		case "burst":
			n, _ := strconv.Atoi(f[1])
			distinct, _ := strconv.Atoi(f[2])
			seed, _ := strconv.ParseUint(f[3], 10, 64)
			rng := rand.New(rand.NewPCG(seed, 1))
			rep := burstReport{Values: map[string]string{}}
			var mu sync.Mutex
			var bw sync.WaitGroup
			for range n {
				in := fmt.Sprintf("%s-%d", f[4], rng.IntN(distinct))
				bw.Add(1)
				go func() {
					defer bw.Done()
					ctx, cancel := context.WithTimeout(ctx, time.Minute)
					defer cancel()
					r, err := g.Get(ctx, []byte(in))
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						rep.Errors = append(rep.Errors, in+": "+err.Error())
						return
					}
					if v, ok := rep.Values[in]; ok && v != string(r.Value) {
						rep.Errors = append(rep.Errors, fmt.Sprintf("%s: two answers on one node: %q, %q", in, v, r.Value))
					}
					rep.Values[in] = string(r.Value)
				}()
			}
			bw.Wait()
			b, _ := json.Marshal(rep)
			say("burst %s", b)
		case "stats":
			s := g.Stats()
			b, _ := json.Marshal(statsReport{Computed: s.Computed, Loaded: s.Loaded, TierErrors: s.TierErrors, Tier: tier.Stats()})
			say("stats %s", b)
		case "quit":
			wg.Wait()
			g.Close()
			tier.Close()
			return 0
		}
	}
	wg.Wait()
	g.Close()
	tier.Close()
	return 0
}

// node is a running node process, seen from the test.
type node struct {
	t       *testing.T
	name    string
	id      string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	lines   chan string
	pending []string
	exited  chan struct{}
}

type nodeConfig struct {
	addr, prefix string
	task         time.Duration
	liveness     time.Duration
	timeout      time.Duration
}

func startNode(t *testing.T, name string, c nodeConfig) *node {
	t.Helper()
	if c.liveness == 0 {
		c.liveness = time.Second
	}
	if c.timeout == 0 {
		c.timeout = 2 * time.Second
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		nodeEnv+"="+name, nodeAddr+"="+c.addr, nodePrefix+"="+c.prefix,
		nodeTask+"="+c.task.String(), nodeLive+"="+c.liveness.String(), nodeTimeout+"="+c.timeout.String())
	cmd.Stderr = &testWriter{t: t, prefix: name + ": "}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, name: name, cmd: cmd, stdin: stdin, lines: make(chan string, 1024), exited: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			n.lines <- sc.Text()
		}
		cmd.Wait()
		close(n.exited)
		close(n.lines)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT)
		stdin.Close()
		select {
		case <-n.exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-n.exited
		}
	})
	n.id = strings.TrimPrefix(n.expect("ready ", 20*time.Second), "ready ")
	return n
}

// testWriter passes a node's stderr to the test's log.
type testWriter struct {
	t      *testing.T
	prefix string
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s%s", w.prefix, strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (n *node) send(format string, args ...any) {
	n.t.Helper()
	if _, err := fmt.Fprintf(n.stdin, format+"\n", args...); err != nil {
		n.t.Fatalf("%s: %v", n.name, err)
	}
}

// expect returns the first line that starts with prefix, keeping the
// others for later expects.
func (n *node) expect(prefix string, timeout time.Duration) string {
	n.t.Helper()
	return n.expectFunc(prefix, func(l string) bool { return strings.HasPrefix(l, prefix) }, timeout)
}

func (n *node) expectFunc(what string, match func(string) bool, timeout time.Duration) string {
	n.t.Helper()
	for i, l := range n.pending {
		if match(l) {
			n.pending = append(n.pending[:i], n.pending[i+1:]...)
			return l
		}
	}
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-n.lines:
			if !ok {
				n.t.Fatalf("%s exited while the test waited for %q", n.name, what)
			}
			if match(l) {
				return l
			}
			n.pending = append(n.pending, l)
		case <-deadline:
			n.t.Fatalf("%s: no %q line within %v (other lines: %q)", n.name, what, timeout, n.pending)
		}
	}
}

func (n *node) stats() statsReport {
	n.t.Helper()
	n.send("stats")
	var s statsReport
	if err := json.Unmarshal([]byte(strings.TrimPrefix(n.expect("stats ", 10*time.Second), "stats ")), &s); err != nil {
		n.t.Fatal(err)
	}
	return s
}

// result waits for in's answer, checks it, and returns its source and
// the time it took.
func (n *node) result(in string, timeout time.Duration) (string, time.Duration) {
	n.t.Helper()
	l := n.expectFunc("answer for "+in, func(l string) bool {
		f := strings.Fields(l)
		return len(f) >= 2 && (f[0] == "result" || f[0] == "error") && f[1] == in
	}, timeout)
	f := strings.Fields(l)
	if f[0] == "error" || len(f) < 5 {
		n.t.Fatalf("%s: %s", n.name, l)
	}
	if f[2] != valueOf(in) {
		n.t.Errorf("%s answered %s with %q", n.name, in, f[2])
	}
	ms, _ := strconv.Atoi(f[4])
	return f[3], time.Duration(ms) * time.Millisecond
}
