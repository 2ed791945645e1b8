package sim

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// send is one request of a hand-written stream.
type send struct {
	agent int
	key   uint64
}

// fixedWorkload builds a stream of sends, all due at once, whose tasks take
// no time: the order of service is then decided by the agents' slots and
// the test's hooks alone, never by durations.
func fixedWorkload(t *testing.T, agents, inFlight int, sends []send) (Config, *workload) {
	t.Helper()
	cfg := Config{Agents: agents, InFlight: inFlight, Workers: 1, Duration: time.Hour, TaskDist: "fixed"}.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	// Tasks of no time, which Validate rejects because the arrival rate
	// derives from them; this stream has no arrival times to derive.
	cfg.TaskMin, cfg.TaskMax = 0, 0
	sample, err := durationSampler(cfg.TaskDist, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	w := &workload{cfg: cfg, perAgent: make([][]int32, agents)}
	index := map[uint64]int32{}
	for _, s := range sends {
		idx, ok := index[s.key]
		if !ok {
			idx = int32(len(w.keys))
			index[s.key] = idx
			w.addKey(s.key, sample)
		}
		w.perAgent[s.agent] = append(w.perAgent[s.agent], int32(len(w.reqs)))
		w.reqs = append(w.reqs, request{agent: int32(s.agent), idx: idx})
	}
	return cfg, w
}

// counts is the part of a Result that must be exact.
type counts struct {
	requests, computations, distinct, duplicates, hits, joined, misses int
}

func countsOf(r Result) counts {
	return counts{r.Requests, int(r.Computations), r.DistinctComputed, int(r.Duplicates), r.Hits, r.Joined, r.Misses}
}

// TestAccountingSequential sends ten requests over five keys one at a time
// (one agent, one slot), so nothing can be joined and every repeat must be
// a hit for a design with a cache, and a computation for the design without.
func TestAccountingSequential(t *testing.T) {
	keys := []uint64{1, 2, 1, 3, 1, 2, 4, 1, 5, 5}
	var sends []send
	for _, k := range keys {
		sends = append(sends, send{0, k})
	}
	cached := counts{requests: 10, computations: 5, distinct: 5, duplicates: 0, hits: 5, joined: 0, misses: 5}
	want := map[string]counts{
		"none":         {requests: 10, computations: 10, distinct: 5, duplicates: 5, hits: 0, joined: 0, misses: 10},
		"user":         cached,
		"singleflight": cached,
		"otter":        cached,
		"coalesce":     cached,
		"daemon":       cached,
		"cluster":      cached, // one agent: all on the first node
	}
	for _, spec := range designs {
		t.Run(spec.name, func(t *testing.T) {
			cfg, w := fixedWorkload(t, 1, 1, sends)
			if spec.name == "cluster" {
				cfg.Redis = startRedis(t)
			}
			res, err := replay(context.Background(), cfg, w, spec)
			if err != nil {
				t.Fatal(err)
			}
			if got := countsOf(res); got != want[spec.name] {
				t.Errorf("counts\n got %+v\nwant %+v", got, want[spec.name])
			}
			if res.Errors != 0 || res.NotSent != 0 {
				t.Errorf("%d errors and %d requests not sent; want none", res.Errors, res.NotSent)
			}
		})
	}
}

// TestAccountingJoins holds the only worker on a computation of key B
// until four requests for key A are all waiting in the design, then lets it
// go: every coalescing design must compute A once, count the first A as
// the miss and the three others as joined; the design without coalescing
// computes A four times.
func TestAccountingJoins(t *testing.T) {
	const keyB, keyA = 100, 200
	sends := []send{{0, keyB}, {1, keyA}, {2, keyA}, {3, keyA}, {4, keyA}}
	coalesced := counts{requests: 5, computations: 2, distinct: 2, duplicates: 0, hits: 0, joined: 3, misses: 2}
	tests := []struct {
		design string
		want   counts
		// waiting reports whether the four A requests are all inside
		// the design, where a release of B can no longer change how
		// they are served.
		waiting func(design) bool
	}{
		{"none", counts{requests: 5, computations: 5, distinct: 2, duplicates: 3, hits: 0, joined: 0, misses: 5},
			func(design) bool { return true }},
		{"user", coalesced, func(d design) bool {
			q := d.(*userDesign).queues[0]
			q.mu.Lock()
			defer q.mu.Unlock()
			return len(q.items)-q.head == 4
		}},
		{"singleflight", coalesced, func(design) bool {
			return goroutinesIn("singleflight.(*Group).Do", "sync.(*WaitGroup).Wait") == 3 &&
				goroutinesIn("singleflight.(*Group).doCall", "semaphore.(*Weighted).Acquire") == 1
		}},
		{"otter", coalesced, func(design) bool {
			return goroutinesIn("otter/v2.(*call[...]).wait") == 3 &&
				goroutinesIn("otter/v2", "semaphore.(*Weighted).Acquire") == 1
		}},
		{"coalesce", coalesced, func(d design) bool {
			st := d.(*coalesceGroup).g.Stats()
			return st.Joined == 3 && st.Queued == 1
		}},
		{"daemon", coalesced, func(d design) bool {
			st := d.(*daemonDesign).g.Stats()
			return st.Joined == 3 && st.Queued == 1
		}},
	}
	for _, tt := range tests {
		t.Run(tt.design, func(t *testing.T) {
			spec, _ := lookupDesign(tt.design)
			cfg, w := fixedWorkload(t, 5, 5, sends)
			var built design
			build := spec.build
			spec.build = func(p designParams) (design, error) {
				d, err := build(p)
				built = d
				return d, err
			}
			bStarted := make(chan struct{})
			var once sync.Once
			w.beforeSend = func(i int) {
				if i > 0 {
					<-bStarted // the A requests go out only once B holds the worker
				}
			}
			w.onCompute = func(idx int) {
				if w.keys[idx] != keyB {
					return
				}
				once.Do(func() {
					close(bStarted)
					// Poll the state, not the clock: the bound only turns
					// a bug into a failure instead of a hang.
					for deadline := time.Now().Add(20 * time.Second); !tt.waiting(built); {
						if time.Now().After(deadline) {
							t.Errorf("the four A requests never all waited in the design")
							return
						}
						time.Sleep(time.Millisecond)
					}
				})
			}
			res, err := replay(context.Background(), cfg, w, spec)
			if err != nil {
				t.Fatal(err)
			}
			if got := countsOf(res); got != tt.want {
				t.Errorf("counts\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// goroutinesIn counts the goroutines whose stack contains every one of
// frames.
func goroutinesIn(frames ...string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
next:
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		for _, f := range frames {
			if !strings.Contains(string(g), f) {
				continue next
			}
		}
		count++
	}
	return count
}

// TestRunSmall runs every design briefly on the default workload shape and
// checks the invariants that hold whatever the timing.
func TestRunSmall(t *testing.T) {
	rep, err := Run(context.Background(), Config{Duration: 300 * time.Millisecond, Keys: 30, Workers: 2,
		TaskMin: time.Millisecond, TaskMax: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if want := len(DefaultDesigns(false)); len(rep.Results) != want {
		t.Fatalf("%d results; want one per design but cluster, which needs a Redis (%d)", len(rep.Results), want)
	}
	for _, r := range rep.Results {
		if r.Requests+r.NotSent != rep.Stream.Requests {
			t.Errorf("%s: %d sent + %d not sent != %d in the stream", r.Design, r.Requests, r.NotSent, rep.Stream.Requests)
		}
		if r.Hits+r.Joined+r.Misses != r.Requests {
			t.Errorf("%s: %d hits + %d joined + %d misses != %d requests", r.Design, r.Hits, r.Joined, r.Misses, r.Requests)
		}
		if int64(r.Misses) != r.Computations {
			t.Errorf("%s: %d misses but %d computations; each computation has exactly one request that started it", r.Design, r.Misses, r.Computations)
		}
		if r.Design != "none" && r.Design != "singleflight" && r.Duplicates != 0 {
			t.Errorf("%s: %d duplicate computations with a cache that holds every key; want 0", r.Design, r.Duplicates)
		}
	}
	var buf bytes.Buffer
	if err := rep.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteHTML(&buf, "coalesce sim"); err != nil {
		t.Fatal(err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{Agents: -1}, "--agents -1: allowed 1 to 65536"},
		{Config{ZipfS: 0.5}, "--zipf 0.5"},
		{Config{Task: "gpu"}, `--task "gpu"`},
		{Config{TaskDist: "pareto"}, "pareto"},
		{Config{TaskMin: 30 * time.Millisecond, TaskMax: 10 * time.Millisecond}, "--task-max 10ms: at least --task-min (30ms)"},
		{Config{Designs: []string{"nope"}}, `unknown design "nope"`},
		{Config{Designs: []string{"user", "user"}}, `"user" is listed twice`},
		{Config{InFlight: 5}, "--agents 20 with --in-flight 5"},
		{Config{Designs: []string{"coalesce", "cluster"}}, "--designs coalesce,cluster: the cluster design needs a Redis server: give --redis HOST:PORT"},
		{Config{Nodes: MaxNodes + 1, Redis: "127.0.0.1:6379"}, "--nodes 65: allowed 1 to 64"},
		{Config{InputMin: 8, InputMax: 9}, "header"},
		{Config{Workers: 1 << 20}, "--workers 1048576: allowed 1 to 65536"},
		{Config{CacheBytes: 1 << 40}, "--cache-mib 1048576: allowed 1 to 65536"},
		{Config{OutputSize: 1 << 31}, "--output 2147483648: allowed 1 to 1073741824"},
		{Config{OutputSize: 1 << 30}, "the simulator allows 2 GiB"},
		{Config{Rate: 1e-9}, "at least 1 is needed"},
		{Config{Rate: 1e9}, "at most 20000000 are allowed"},
		{Config{TaskMax: 1000 * time.Hour}, "--task-max 1000h0m0s: allowed above 0 and at most 1m0s"},
		{Config{TraceKeys: []uint64{1, 2, 3, 4, 5, 1, 2}, InputMin: 16, InputMax: 1 << 29}, "--trace (5 distinct keys)"},
	} {
		err := tt.cfg.Defaults().Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate = %v; want an error mentioning %q", err, tt.want)
		}
	}
	// A long trace over few keys holds only those keys' inputs.
	few := Config{TraceKeys: make([]uint64, 100_000), InputMin: 16, InputMax: 1 << 29}
	if err := few.Defaults().Validate(); err != nil {
		t.Errorf("a trace of one key with 512 MiB inputs: %v; want it accepted", err)
	}
}

// TestRunInterrupted checks that a design cut short is left out: its
// figures cover part of the stream and would not compare with the others'.
func TestRunInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep, err := Run(ctx, Config{Duration: 50 * time.Millisecond, Keys: 10, Designs: []string{"coalesce"},
		TaskMin: time.Millisecond, TaskMax: 2 * time.Millisecond})
	var ie *InterruptedError
	if !errors.As(err, &ie) || ie.Design != "coalesce" || ie.Finished != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Run with a cancelled context: %v; want an InterruptedError in design coalesce wrapping context.Canceled", err)
	}
	if rep == nil || len(rep.Results) != 0 {
		t.Errorf("results %+v; want none", rep)
	}
}
