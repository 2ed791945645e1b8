package cluster

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/coalesce-go/coalesce"
)

// TestRedisCluster: the tier on a Redis Cluster of three primaries, as it
// is: every script touches one slot (an input and its fencing counter
// share a hash tag), rueidis routes by slot, and inputs spread over the
// primaries.
func TestRedisCluster(t *testing.T) {
	if !haveRedisServer() {
		t.Skip("this test starts a Redis Cluster: install redis-server (scripts/redis install)")
	}
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skip("this test needs redis-cli to form the cluster")
	}
	var addrs []string
	for range 3 {
		s, err := startRedis(t.TempDir(), 0, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.kill)
		addrs = append(addrs, s.addr)
	}
	out, err := exec.Command("redis-cli", append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	// Every primary must see the whole cluster before the tiers connect:
	// one that does not yet answers CLUSTERDOWN.
	deadline := time.Now().Add(20 * time.Second)
	for _, addr := range addrs {
		for {
			host, port, _ := strings.Cut(addr, ":")
			info, _ := exec.Command("redis-cli", "-h", host, "-p", port, "cluster", "info").Output()
			if strings.Contains(string(info), "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the cluster did not form at %s:\n%s", addr, info)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	o := testOptions(t, addrs[0])
	var a, b *Tier
	for {
		var err error
		if a, err = New(context.Background(), o); err == nil {
			break
		}
		if !strings.Contains(err.Error(), "CLUSTERDOWN") || time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(a.Close)
	b = newTier(t, o)
	if _, err := a.SharedSecret(context.Background()); err != nil {
		t.Fatal(err)
	}
	const n = 60
	for i := range n {
		k := tierKey(1000 + i*997)
		r := load(t, a, k)
		if r.Lease == nil {
			t.Fatalf("%d: Load = %+v", i, r)
		}
		if i%3 == 0 {
			// b waits for a's lease, and is woken by the write, across the
			// cluster's connections.
			done := make(chan coalesce.TierResult, 1)
			go func() { done <- load(t, b, k) }()
			time.Sleep(20 * time.Millisecond)
			save(t, a, k, coalesce.Outcome{Value: []byte(fmt.Sprint(i)), Lease: r.Lease})
			if r := <-done; string(r.Value) != fmt.Sprint(i) {
				t.Fatalf("%d: b's Load = %+v", i, r)
			}
			continue
		}
		save(t, a, k, coalesce.Outcome{Value: []byte(fmt.Sprint(i)), Lease: r.Lease})
		if r := load(t, b, k); string(r.Value) != fmt.Sprint(i) {
			t.Fatalf("%d: b's Load = %+v", i, r)
		}
	}
	// The inputs landed on every primary.
	for _, addr := range addrs {
		host, port, _ := strings.Cut(addr, ":")
		out, err := exec.Command("redis-cli", "-h", host, "-p", port, "dbsize").Output()
		if err != nil || strings.TrimSpace(string(out)) == "0" {
			t.Errorf("primary %s holds no key (%v)", addr, err)
		}
	}
	if s := a.Stats(); s.RedisErrors != 0 || s.Writes != n {
		t.Errorf("a's stats %+v", s)
	}
	// Deleting the namespace scans every primary.
	if d, err := a.DeleteNamespace(context.Background(), "ns", ""); err != nil || d != n {
		t.Fatalf("DeleteNamespace = %d, %v; want %d, nil", d, err, n)
	}
	if r := load(t, b, tierKey(1000)); r.Found || r.Lease == nil {
		t.Fatalf("Load after DeleteNamespace = %+v, want a lease", r)
	}
}
