package sim

import (
	"bytes"
	"context"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"go.uber.org/goleak"

	"github.com/coalesce-go/coalesce/internal/redistest"
)

// startRedis starts a redis-server of the test's own, killed when it ends,
// and returns its address; the test skips when redis-server is missing.
func startRedis(t *testing.T) string {
	t.Helper()
	if !redistest.Installed() {
		t.Skip("redis-server is not installed: the cluster design needs a real Redis (scripts/redis install installs Debian's)")
	}
	r, err := redistest.Start(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Kill)
	t.Cleanup(func() { waitRueidisGone(t) }) // runs first: before Redis goes
	return r.Addr
}

// waitRueidisGone waits until no goroutine of rueidis is left: after its
// client is closed, rueidis may still sleep out a reconnect back-off (its
// DelayDo, about a second), which the next test's leak check would count.
// It fails the test if one is still there after 10 s: a real leak.
func waitRueidisGone(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		n := runtime.Stack(buf, true)
		if !bytes.Contains(buf[:n], []byte("github.com/redis/rueidis")) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("rueidis goroutines still running 10 s after the test:\n%s", buf[:n])
			return
		}
	}
}

// TestClusterRun runs the cluster design alone through Run, 3 nodes on one
// real Redis, on the default workload's shape with few keys, short tasks
// and a short duration: every input must be computed once in the whole
// cluster (computations == distinct inputs), each by the request that
// took its lease, the nodes must have answered some requests with one
// another's results, and closing the design must delete its keys and
// leave no goroutine behind.
func TestClusterRun(t *testing.T) {
	addr := startRedis(t)
	// The goroutine that waits for redis-server ends with the test.
	defer goleak.VerifyNone(t, goleak.IgnoreAnyFunction("github.com/coalesce-go/coalesce/internal/redistest.Start.func1"))
	defer waitRueidisGone(t)
	rep, err := Run(context.Background(), Config{Duration: 400 * time.Millisecond, Keys: 40, Workers: 2,
		Agents: 6, InFlight: 12, TaskMin: time.Millisecond, TaskMax: 3 * time.Millisecond, CacheBytes: 16 << 20,
		Designs: []string{"cluster"}, Redis: addr, Nodes: 3})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Results[0]
	c := r.Cluster
	if c == nil || c.Nodes != 3 {
		t.Fatalf("cluster figures %+v; want those of 3 nodes", c)
	}
	if r.Errors != 0 || r.Computations != int64(r.DistinctSent) || r.Duplicates != 0 || r.ComputationsPerInput != 1 {
		// A Redis round trip past cluster.Options.Timeout (a Redis
		// error) makes a node compute on its own: say so if it happened.
		t.Errorf("%d errors, %d computations of %d distinct inputs sent (%d duplicates, %.3f per input; %d Redis errors); want no errors and each input computed once across the nodes",
			r.Errors, r.Computations, r.DistinctSent, r.Duplicates, r.ComputationsPerInput, c.RedisErrors)
	}
	if int64(r.Misses) != r.Computations || c.LeasesTaken != uint64(r.Computations) {
		t.Errorf("%d misses, %d leases taken, %d computations; want one of each per computation", r.Misses, c.LeasesTaken, r.Computations)
	}
	if r.Hits+r.Joined+r.Misses != r.Requests || r.Requests+r.NotSent != rep.Stream.Requests {
		t.Errorf("%d hits + %d joined + %d misses, %d requests + %d not sent; stream %d", r.Hits, r.Joined, r.Misses, r.Requests, r.NotSent, rep.Stream.Requests)
	}
	remote := c.RemoteHits + c.RemoteJoins
	if remote == 0 || r.RemoteLat.N != int(remote) || r.RemoteLat.N > r.Joined {
		t.Errorf("%d remote hits + %d remote joins, %d requests answered with another node's result, %d joined; want some, as many, and counted as joined",
			c.RemoteHits, c.RemoteJoins, r.RemoteLat.N, r.Joined)
	}
	if c.RedisPerMiss.N != int(r.Computations) || c.LeasesLost != 0 || c.RedisErrors != 0 {
		t.Errorf("Redis timed on %d misses of %d; %d leases lost, %d Redis errors; want every miss timed and nothing lost",
			c.RedisPerMiss.N, r.Computations, c.LeasesLost, c.RedisErrors)
	}
	if left := redisKeys(t, addr, "coalesce-sim:*"); len(left) != 0 {
		t.Errorf("%d keys left in Redis after the run, such as %q; want the design's prefix deleted", len(left), left[0])
	}
	var out strings.Builder
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cluster      remote", "computations ÷ distinct inputs (1.000: each input computed once): cluster 1.000", "cluster (3 nodes, one Redis)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the table has no %q:\n%s", want, out.String())
		}
	}
}

// TestClusterNoRedis checks that the cluster design, named without a
// Redis, fails before any run and says how to start one; and that a Redis
// that does not answer fails before any run too, naming --redis.
func TestClusterNoRedis(t *testing.T) {
	defer waitRueidisGone(t) // a client that failed to connect may still back off
	_, err := Run(context.Background(), Config{Duration: 100 * time.Millisecond, Designs: []string{"cluster"}})
	if err == nil || !strings.Contains(err.Error(), "scripts/redis") {
		t.Errorf("Run without Redis = %v; want an error saying how to start one (scripts/redis)", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	_, err = Run(context.Background(), Config{Duration: 100 * time.Millisecond, Designs: []string{"cluster"}, Redis: addr})
	if err == nil || !strings.Contains(err.Error(), "design cluster: --redis "+addr) {
		t.Errorf("Run with nothing at %s = %v; want an error naming --redis", addr, err)
	}
}

// redisKeys lists the keys matching pattern.
func redisKeys(t *testing.T, addr, pattern string) []string {
	t.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	keys, err := c.Do(context.Background(), c.B().Keys().Pattern(pattern).Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	return keys
}
