package sim

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestDaemonExact sends 400 requests over 12 keys, all due at once,
// through the daemon design: every key must be computed exactly once (the
// cache holds them all), every answer must be right, every request but the
// first of its key a hit or joined, and the agents must have kept their
// connections alive rather than opened one per request. Closing the design
// must leave no goroutine behind. One agent with 120 slots has more than
// the client's own pool of 100 idle connections would keep.
func TestDaemonExact(t *testing.T) {
	for _, tt := range []struct{ agents, inFlight int }{{4, 8}, {1, 120}} {
		t.Run(fmt.Sprintf("%d agents %d slots", tt.agents, tt.inFlight), func(t *testing.T) {
			defer goleak.VerifyNone(t)
			const keys, requests = 12, 400
			var sends []send
			for i := range requests {
				sends = append(sends, send{agent: i % tt.agents, key: uint64(1000 + (i*7)%keys)})
			}
			cfg, w := fixedWorkload(t, tt.agents, tt.inFlight, sends)
			spec, _ := lookupDesign("daemon")
			var built *daemonDesign
			build := spec.build
			spec.build = func(p designParams) (design, error) {
				d, err := build(p)
				built, _ = d.(*daemonDesign)
				return d, err
			}
			res, err := replay(context.Background(), cfg, w, spec)
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors != 0 || res.NotSent != 0 {
				t.Errorf("%d errors and %d requests not sent; want none", res.Errors, res.NotSent)
			}
			got := countsOf(res)
			want := counts{requests: requests, computations: keys, distinct: keys, duplicates: 0,
				hits: got.hits, joined: got.joined, misses: keys}
			if got != want || got.hits+got.joined != requests-keys {
				t.Errorf("counts\n got %+v\nwant %+v with hits + joined = %d", got, want, requests-keys)
			}
			// An agent opens a connection only when all of its own are
			// busy, so it holds about its slots; twice that allows for a
			// dial that lost its race to a connection freed meanwhile.
			if n := built.connections(); n < 1 || n > int64(2*tt.inFlight) {
				t.Errorf("the daemon accepted %d connections for %d requests from agents with %d slots in all; want 1 to %d (keep-alive)",
					n, requests, tt.inFlight, 2*tt.inFlight)
			}
		})
	}
}

// TestDaemonRun runs the daemon design alone through Run, on the default
// workload's shape with few keys and a short duration: nothing is evicted,
// so it computes each key it was sent exactly once, and every answer is
// right (Run fails otherwise).
func TestDaemonRun(t *testing.T) {
	defer goleak.VerifyNone(t)
	rep, err := Run(context.Background(), Config{Duration: 300 * time.Millisecond, Keys: 20, Workers: 2,
		Agents: 5, InFlight: 10, TaskMin: time.Millisecond, TaskMax: 2 * time.Millisecond, CacheBytes: 16 << 20,
		Designs: []string{"daemon"}})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Results[0]
	if r.Errors != 0 || r.Duplicates != 0 || r.Computations != int64(r.DistinctComputed) || int64(r.Misses) != r.Computations {
		t.Errorf("%d errors, %d computations of %d distinct keys (%d duplicates), %d misses; want no errors and each key computed once by its miss",
			r.Errors, r.Computations, r.DistinctComputed, r.Duplicates, r.Misses)
	}
	if r.Hits+r.Joined+r.Misses != r.Requests || r.Requests+r.NotSent != rep.Stream.Requests {
		t.Errorf("%d hits + %d joined + %d misses, %d requests + %d not sent; stream %d", r.Hits, r.Joined, r.Misses, r.Requests, r.NotSent, rep.Stream.Requests)
	}
	if r.NotSent == 0 && r.DistinctComputed != rep.Stream.DistinctKeys {
		t.Errorf("the whole stream was sent but %d of its %d keys were computed", r.DistinctComputed, rep.Stream.DistinctKeys)
	}
}

// TestDaemonInFlightBound checks that an InFlight the daemon design cannot
// hold as loopback connections fails before the run, naming the design.
func TestDaemonInFlightBound(t *testing.T) {
	err := Config{InFlight: daemonMaxInFlight + 1, Designs: []string{"coalesce", "daemon"}}.Defaults().Validate()
	if err == nil || !strings.Contains(err.Error(), "--in-flight 10001 with design daemon") {
		t.Errorf("Validate = %v; want the daemon design's bound on --in-flight", err)
	}
	if err := (Config{InFlight: daemonMaxInFlight + 1, Designs: []string{"coalesce"}}).Defaults().Validate(); err != nil {
		t.Errorf("without the daemon design: %v; want it accepted", err)
	}
}
