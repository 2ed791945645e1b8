package main

import (
	"fmt"
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
