package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coalesce-go/coalesce/internal/redistest"
)

// startCluster starts a Redis of the test's own and n daemons sharing it.
func startCluster(t *testing.T, n int, args ...string) (*redistest.Server, []*daemon) {
	t.Helper()
	r, err := redistest.Start(t.TempDir(), 0)
	if err != nil {
		t.Skipf("no Redis to test the cluster mode with: %v", err)
	}
	t.Cleanup(r.Kill)
	var nodes []*daemon
	for range n {
		nodes = append(nodes, startDaemon(t, append([]string{"--redis", r.Addr, "--redis-liveness", "500ms"}, args...)...))
	}
	return r, nodes
}

func computed(t *testing.T, nodes []*daemon) (sum int) {
	for _, d := range nodes {
		sum += d.stat(t, "Computed")
	}
	return sum
}

// TestServeClusterOneComputationPerInput: three daemons sharing one Redis,
// 100 concurrent requests each over a shared set of inputs: each input is
// computed once across the three, and every node answers alike.
func TestServeClusterOneComputationPerInput(t *testing.T) {
	_, nodes := startCluster(t, 3)
	const distinct = 25
	answers := make([]map[string]string, len(nodes))
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, 300)
	for i, d := range nodes {
		answers[i] = map[string]string{}
		for j := range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				in := fmt.Sprintf("shared %d", (j*7+i)%distinct)
				code, _, body, err := postTo(http.DefaultClient, d.url+"/v1/compute", in)
				if err != nil || code != 200 {
					errs <- fmt.Errorf("node %d %q: %d %s %v", i, in, code, body, err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if prev, ok := answers[i][in]; ok && prev != string(body) {
					errs <- fmt.Errorf("node %d answered %q two ways", i, in)
				}
				answers[i][in] = string(body)
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if c := computed(t, nodes); c != distinct {
		t.Fatalf("%d computations across 3 nodes for %d distinct inputs; want %d", c, distinct, distinct)
	}
	for in, v := range answers[0] {
		for i := 1; i < len(nodes); i++ {
			if answers[i][in] != v {
				t.Fatalf("input %q: node 0 and node %d answered differently", in, i)
			}
		}
	}
}

// TestServeClusterSurvivesRedis: Redis killed, the daemons answer on
// their own and say so in /readyz; Redis back on the same address, they
// reconnect and coalesce again without a restart.
func TestServeClusterSurvivesRedis(t *testing.T) {
	r, nodes := startCluster(t, 2)
	port := r.Port
	if _, src := computeAll(t, nodes[0], []string{"before"}); src["computed"] != 1 {
		t.Fatalf("sources %v", src)
	}
	r.Kill()
	for i, d := range nodes {
		code, _, body, err := postTo(http.DefaultClient, d.url+"/v1/compute", fmt.Sprintf("during %d", i))
		if err != nil || code != 200 {
			t.Fatalf("node %d with Redis down: %d %s %v", i, code, body, err)
		}
	}
	until(t, "/readyz reports Redis", func() bool {
		_, body := getBody(t, nodes[0].url+"/readyz")
		return strings.Contains(body, "redis:")
	})
	r2, err := redistest.Start(t.TempDir(), port)
	if err != nil {
		t.Fatalf("restarting Redis on port %d: %v", port, err)
	}
	t.Cleanup(r2.Kill)
	// Each round posts a fresh input to both nodes at once; once they
	// have reconnected, it is computed once.
	round := 0
	until(t, "the nodes coalesce through Redis again", func() bool {
		round++
		before := computed(t, nodes)
		in := fmt.Sprintf("after %d %d", round, time.Now().UnixNano())
		var wg sync.WaitGroup
		for _, d := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				postTo(http.DefaultClient, d.url+"/v1/compute", in)
			}()
		}
		wg.Wait()
		return computed(t, nodes)-before == 1
	})
}

// TestServeClusterDeleteNamespace: a namespace deleted through one daemon
// is gone from Redis and from that daemon's disk, and the other daemon,
// which holds it in memory and on its own disk, is told to forget it:
// its next request for the input is computed, not served from its copies.
func TestServeClusterDeleteNamespace(t *testing.T) {
	_, nodes := startCluster(t, 2)
	a, b := nodes[0], nodes[1]
	ask := func(d *daemon, in string) string {
		t.Helper()
		code, h, body, err := postTo(http.DefaultClient, d.url+"/v1/compute", in, "Coalesce-Namespace", "docs")
		if err != nil || code != 200 {
			t.Fatalf("%s: %d %s %v", in, code, body, err)
		}
		return h.Get("Coalesce-Source")
	}
	if src := ask(a, "x"); src != "computed" {
		t.Fatalf("first request on a: %s", src)
	}
	if src := ask(b, "x"); src != "loaded" {
		t.Fatalf("first request on b: %s, want loaded from Redis", src)
	}
	if src := ask(b, "x"); src != "hit" {
		t.Fatalf("second request on b: %s, want a memory hit", src)
	}
	// Another namespace stays.
	code, _, body, err := postTo(http.DefaultClient, a.url+"/v1/compute", "x", "Coalesce-Namespace", "other")
	if err != nil || code != 200 {
		t.Fatalf("other namespace: %d %s %v", code, body, err)
	}

	req, _ := http.NewRequest("DELETE", a.url+"/v1/namespaces/docs", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var del struct{ Deleted int64 }
	json.NewDecoder(resp.Body).Decode(&del)
	resp.Body.Close()
	// a's disk and Redis held the result (b's disk is b's to delete).
	if resp.StatusCode != 200 || del.Deleted != 2 {
		t.Fatalf("DELETE: %d, deleted %d; want 200, 2", resp.StatusCode, del.Deleted)
	}
	// The message reaches b asynchronously: until then b may still hit.
	deadline := time.Now().Add(20 * time.Second)
	for {
		src := ask(b, "x")
		if src == "computed" {
			break
		}
		if src != "hit" || time.Now().After(deadline) {
			t.Fatalf("b answered from %q after the namespace was deleted through a", src)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if src := ask(a, "x"); src != "loaded" {
		t.Fatalf("a after b computed again: %s, want loaded from Redis", src)
	}
	code, h, _, err := postTo(http.DefaultClient, b.url+"/v1/compute", "x", "Coalesce-Namespace", "other")
	if err != nil || code != 200 || h.Get("Coalesce-Source") != "loaded" {
		t.Fatalf("the other namespace on b: %d %s %v, want loaded", code, h.Get("Coalesce-Source"), err)
	}
	if !strings.Contains(b.stderr.String(), "another daemon deleted a namespace; forgotten here") {
		t.Errorf("b's log does not say it forgot the namespace:\n%s", b.stderr.String())
	}
}

// TestServeClusterWaitsForRedis: a daemon started before its Redis keeps
// trying (--redis-wait) and joins once Redis is up; with nothing to join
// within --redis-wait it exits with an error that says so.
func TestServeClusterWaitsForRedis(t *testing.T) {
	if !redistest.Installed() {
		t.Skip("no redis-server to test the cluster mode with")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	var stderr bytes.Buffer
	start := time.Now()
	code := run([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", "none", "--redis", addr, "--redis-wait", "300ms"}, io.Discard, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "--redis-wait") || time.Since(start) > 20*time.Second {
		t.Fatalf("no Redis within --redis-wait: exit %d after %v, %q", code, time.Since(start), stderr.String())
	}

	dir := t.TempDir()
	started := make(chan *redistest.Server, 1)
	go func() {
		time.Sleep(time.Second)
		r, err := redistest.Start(dir, port)
		if err != nil {
			t.Error(err)
		}
		started <- r
	}()
	a := startDaemon(t, "--redis", addr, "--redis-liveness", "500ms")
	r := <-started
	if r == nil {
		t.FailNow()
	}
	t.Cleanup(r.Kill)
	if !strings.Contains(a.stderr.String(), "cannot reach Redis yet") {
		t.Errorf("the daemon did not say it waited for Redis:\n%s", a.stderr.String())
	}
	b := startDaemon(t, "--redis", addr, "--redis-liveness", "500ms")
	if _, h, _, err := postTo(http.DefaultClient, a.url+"/v1/compute", "x"); err != nil || h.Get("Coalesce-Source") != "computed" {
		t.Fatalf("a: %v %q", err, h.Get("Coalesce-Source"))
	}
	if _, h, _, err := postTo(http.DefaultClient, b.url+"/v1/compute", "x"); err != nil || h.Get("Coalesce-Source") != "loaded" {
		t.Fatalf("b: %v %q; want loaded from the Redis a joined late", err, h.Get("Coalesce-Source"))
	}
}
