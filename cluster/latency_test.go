package cluster

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coalesce-go/coalesce"
)

// TestLatencyReport is a benchmark, not a test: the latency the Redis
// tier adds to a miss, and what a remote hit costs, against local-only
// Groups, on loopback: one caller and functions that return at once
// (nothing but the path), then 50 callers and functions of 15-30 ms (the
// simulator's load: ~50 in flight, 15-30 ms tasks). docs/CLUSTER.md has
// its output.
//
//	COALESCE_BENCH=1 go test -run TestLatencyReport -v ./cluster
func TestLatencyReport(t *testing.T) {
	if os.Getenv("COALESCE_BENCH") == "" {
		t.Skip("a benchmark: COALESCE_BENCH=1 go test -run TestLatencyReport -v ./cluster")
	}
	addr := needRedis(t)
	const n = 20000
	const taskMin = 15 * time.Millisecond // tasks take 15-30 ms
	o := testOptions(t, addr)
	o.Timeout = time.Second
	o.LivenessTTL, o.LivenessRefresh = 3*time.Second, time.Second
	secret := make([]byte, 32)
	fn := func(_ context.Context, in []byte) ([]byte, error) {
		if in[24] == 1 {
			// Uniform like the simulator's tasks: identical ones would keep
			// the 50 callers in lock-step, their round trips in bursts.
			time.Sleep(taskMin + rand.N(taskMin))
		}
		out := make([]byte, 128) // the simulator's result size
		copy(out, in)
		return out, nil
	}
	group := func(tiers ...coalesce.Tier) *coalesce.Group {
		g, err := coalesce.New(fn, coalesce.Options{Workers: 64, Tiers: tiers, Secret: secret, CacheBytes: 256 << 20})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Close() })
		return g
	}
	ta, tb := newTier(t, o), newTier(t, o)
	timed := &timedTier{Tier: ta}
	local, nodeA, nodeB := group(), group(timed), group(tb)

	input := func(round, i int) []byte {
		b := make([]byte, 512) // the simulator's input size
		binary.LittleEndian.PutUint64(b, uint64(round))
		binary.LittleEndian.PutUint64(b[8:], uint64(i))
		binary.LittleEndian.PutUint64(b[16:], rand.Uint64())
		b[24] = byte(round) // round 1's take 15-30 ms
		return b
	}
	measure := func(name string, g *coalesce.Group, ins [][]byte, conc int, want coalesce.Source) []time.Duration {
		lat := make([]time.Duration, len(ins))
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range conc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= len(ins) {
						return
					}
					t0 := time.Now()
					r, err := g.Get(context.Background(), ins[i])
					lat[i] = time.Since(t0)
					if err != nil || r.Source != want {
						t.Errorf("%s: Get = %v, %v; want %v", name, r.Source, err, want)
						return
					}
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		slices.Sort(lat)
		q := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
		t.Logf("%-34s conc %2d  p50 %7.1f µs  p99 %7.1f µs  p99.9 %7.1f µs  %7.0f ops/s",
			name, conc, us(q(.5)), us(q(.99)), us(q(.999)), float64(len(ins))/elapsed.Seconds())
		return lat
	}
	// The floor: one round trip of a plain GET on this machine, this run.
	rtt := make([]time.Duration, n/4)
	c := raw(t, addr)
	for i := range rtt {
		t0 := time.Now()
		c.Do(context.Background(), c.B().Get().Key("rtt").Build())
		rtt[i] = time.Since(t0)
	}
	slices.Sort(rtt)
	t.Logf("%-34s conc  1  p50 %7.1f µs  p99 %7.1f µs  p99.9 %7.1f µs", "Redis round trip (a plain GET)",
		us(rtt[len(rtt)/2]), us(rtt[len(rtt)*99/100]), us(rtt[len(rtt)*999/1000]))
	for round, conc := range []int{1, 50} {
		n := n
		if round == 1 {
			n /= 4 // 50 callers of 15-30 ms tasks: ~2,200 misses/s
		}
		ins := make([][]byte, n)
		for i := range ins {
			ins[i] = input(round, i)
		}
		// Warm up connections, scripts and pools on other inputs.
		warm := make([][]byte, 200)
		for i := range warm {
			warm[i] = input(round+100, i)
		}
		for _, g := range []*coalesce.Group{local, nodeA} {
			for _, in := range warm {
				g.Get(context.Background(), in)
			}
		}
		for _, in := range warm {
			nodeB.Get(context.Background(), in)
		}
		lm := measure("miss, local only", local, ins, conc, coalesce.Computed)
		timed.reset()
		cm := measure("miss, with the Redis tier", nodeA, ins, conc, coalesce.Computed)
		timed.report(t)
		rh := measure("remote hit (other node's result)", nodeB, ins, conc, coalesce.Loaded)
		measure("memory hit, with the Redis tier", nodeB, ins, conc, coalesce.Hit)
		d := func(a, b []time.Duration, p float64) float64 {
			i := int(p * float64(len(a)-1))
			return us(a[i] - b[i])
		}
		t.Logf("added per miss: p50 %+.1f µs, p99 %+.1f µs; a remote hit against a local miss: p50 %+.1f µs, p99 %+.1f µs",
			d(cm, lm, .5), d(cm, lm, .99), d(rh, lm, .5), d(rh, lm, .99))
	}
	s := ta.Stats()
	t.Logf("node A's tier: %+v", s)
	fmt.Fprintln(os.Stderr)
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// timedTier times a Tier's Load and Save, to tell the tier's round trips
// from the Group's hand-offs in a miss's added time.
type timedTier struct {
	*Tier
	mu           sync.Mutex
	loads, saves []time.Duration
}

func (tt *timedTier) Load(ctx context.Context, k coalesce.TierKey) (coalesce.TierResult, error) {
	t0 := time.Now()
	r, err := tt.Tier.Load(ctx, k)
	d := time.Since(t0)
	tt.mu.Lock()
	tt.loads = append(tt.loads, d)
	tt.mu.Unlock()
	return r, err
}

func (tt *timedTier) Save(ctx context.Context, k coalesce.TierKey, out coalesce.Outcome) error {
	t0 := time.Now()
	err := tt.Tier.Save(ctx, k, out)
	d := time.Since(t0)
	tt.mu.Lock()
	tt.saves = append(tt.saves, d)
	tt.mu.Unlock()
	return err
}

func (tt *timedTier) reset() {
	tt.mu.Lock()
	tt.loads, tt.saves = nil, nil
	tt.mu.Unlock()
}

func (tt *timedTier) report(t *testing.T) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	for _, x := range []struct {
		name string
		d    []time.Duration
	}{{"  of which the tier's Load (GET, claim)", tt.loads}, {"  and its Save (write)", tt.saves}} {
		if len(x.d) == 0 {
			continue
		}
		slices.Sort(x.d)
		q := func(p float64) time.Duration { return x.d[int(p*float64(len(x.d)-1))] }
		t.Logf("%-34s          p50 %7.1f µs  p99 %7.1f µs  p99.9 %7.1f µs", x.name, us(q(.5)), us(q(.99)), us(q(.999)))
	}
}
