package coalesce

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stressFunc computes sha256(input) after a short random delay, and fails
// for some inputs by design: every 17th key returns errStress, every 23rd
// panics. It counts its calls per input.
type stressFunc struct {
	mu        sync.Mutex
	calls     map[string]int
	successes map[string]int // returned a result without seeing cancellation
}

var errStress = errors.New("injected error")

func keyNumber(in []byte) int {
	var n int
	fmt.Sscanf(string(in), "key-%d", &n)
	return n
}

func (s *stressFunc) fn(ctx context.Context, in []byte) ([]byte, error) {
	s.mu.Lock()
	s.calls[string(in)]++
	s.mu.Unlock()
	select {
	case <-time.After(time.Duration(rand.IntN(300)) * time.Microsecond):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	n := keyNumber(in)
	switch {
	case n%23 == 0:
		panic(fmt.Sprintf("injected panic for %s", in))
	case n%17 == 0:
		return nil, errStress
	}
	s.mu.Lock()
	s.successes[string(in)]++
	s.mu.Unlock()
	sum := sha256.Sum256(in)
	return sum[:], nil
}

// zipfIndex draws from a Zipf distribution over n keys with skew 1 by
// inverting a precomputed CDF, so that the test is self-contained.
func zipfCDF(n int) []float64 {
	cdf := make([]float64, n)
	var total float64
	for i := range n {
		total += 1 / math.Pow(float64(i+1), 1.0)
		cdf[i] = total
	}
	for i := range cdf {
		cdf[i] /= total
	}
	return cdf
}

func draw(r *rand.Rand, cdf []float64) int {
	u := r.Float64()
	lo, hi := 0, len(cdf)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if cdf[mid] < u {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// callerContext is a caller's context: one in ten is cancelled within
// 200 µs, at a random moment of its request.
func callerContext(r *rand.Rand) (context.Context, context.CancelFunc, bool) {
	if r.IntN(10) != 0 {
		return context.Background(), func() {}, false
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(time.Duration(r.IntN(200))*time.Microsecond, cancel)
	return ctx, cancel, true
}

// TestStress runs many goroutines over a Zipf mix of keys through Get,
// GetMany and Start, cancelling a share of the requests at random, and then
// checks exact counts: each successful key computed once, every caller that
// was not cancelled got the right value or the injected failure, nothing
// left in flight, and (through TestMain) no goroutine left behind.
func TestStress(t *testing.T) {
	for _, policy := range []Policy{S3FIFO, LRU} {
		for _, keep := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/KeepAbandoned=%v", policy, keep), func(t *testing.T) { stress(t, policy, keep) })
		}
	}
}

func stress(t *testing.T, policy Policy, keepAbandoned bool) {
	const (
		goroutines = 24
		perG       = 250
		keys       = 300
	)
	sf := &stressFunc{calls: map[string]int{}, successes: map[string]int{}}
	g := newGroup(t, sf.fn, Options{Workers: 4, BlockWhenFull: true, KeepAbandoned: keepAbandoned, CacheBytes: 32 << 20, Policy: policy})
	cdf := zipfCDF(keys)

	var cancelled, served atomic.Int64
	var failures sync.Map // description → true
	fail := func(format string, args ...any) { failures.Store(fmt.Sprintf(format, args...), true) }

	check := func(in []byte, r Result, err error, wasCancelled bool) {
		n := keyNumber(in)
		switch {
		case wasCancelled && errors.Is(err, context.Canceled):
			cancelled.Add(1)
			return
		case n%23 == 0:
			var pe *PanicError
			if !errors.As(err, &pe) {
				fail("%s: want a PanicError, got %v", in, err)
			}
		case n%17 == 0:
			if !errors.Is(err, errStress) {
				fail("%s: want the injected error, got %v", in, err)
			}
		case err != nil:
			fail("%s: unexpected error %v", in, err)
		default:
			want := sha256.Sum256(in)
			if string(r.Value) != string(want[:]) {
				fail("%s: wrong value", in)
			}
		}
		served.Add(1)
	}

	var wg sync.WaitGroup
	for gi := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(gi), 99))
			input := func() []byte { return []byte(fmt.Sprintf("key-%d", draw(r, cdf)+1)) }
			for range perG {
				ctx, cancel, willCancel := callerContext(r)
				switch r.IntN(4) {
				case 0, 1:
					in := input()
					res, err := g.Get(ctx, in)
					check(in, res, err, willCancel)
				case 2:
					ins := [][]byte{input(), input(), input()}
					res, errs := g.GetMany(ctx, ins)
					for i := range ins {
						check(ins[i], res[i], errs[i], willCancel)
					}
				case 3:
					in := input()
					fu, err := g.Start(in)
					if err != nil {
						check(in, Result{}, err, willCancel)
						break
					}
					res, err := fu.Wait(ctx)
					if err != nil && willCancel {
						fu.Cancel()
					}
					check(in, res, err, willCancel)
				}
				cancel()
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(2 * time.Minute):
		t.Fatal("callers hung: some waiter was never woken")
	}
	failures.Range(func(k, _ any) bool { t.Error(k); return true })

	eventually(t, "wait table empty", func() bool {
		st := g.Stats()
		return st.InFlight == 0 && st.Queued == 0 && st.Waiters == 0
	})
	st := g.Stats()
	if st.Evictions != 0 {
		t.Fatalf("the cache evicted %d entries; the exact counts below assume it holds every key", st.Evictions)
	}
	sf.mu.Lock()
	defer sf.mu.Unlock()
	cached := 0
	for k := 1; k <= keys; k++ {
		in := fmt.Sprintf("key-%d", k)
		status, _, _ := g.Peek([]byte(in))
		if k%17 == 0 || k%23 == 0 {
			if status == Ready {
				t.Errorf("%s failed by design but is cached", in)
			}
			continue
		}
		if status == Ready {
			cached++
		}
		if keepAbandoned && sf.calls[in] > 1 {
			t.Errorf("%s computed %d times", in, sf.calls[in])
		}
		if keepAbandoned && sf.calls[in] == 1 && status != Ready {
			t.Errorf("%s computed but not cached", in)
		}
	}
	if int(st.Computed) != cached {
		t.Errorf("Stats.Computed = %d but %d distinct keys are cached: some key was computed twice", st.Computed, cached)
	}
	if cached == 0 || served.Load() == 0 {
		t.Fatal("the stress run served nothing")
	}
	t.Logf("served %d, cancelled %d, computed %d, joined %d, hits %d, abandoned %d, errors %d (panics %d)",
		served.Load(), cancelled.Load(), st.Computed, st.Joined, st.Hits, st.Abandoned, st.Errors, st.Panics)
}

// misbehaving is a Func that does everything a caller's function can do
// wrong, by key number, and watches that no two calls of one input ever
// overlap: keys n%61 == 0 ignore their context and return after longer
// than TaskTimeout; keys 29 and 58 hang, ignoring their context, until the
// test releases them; n%19 calls runtime.Goexit; n%13 returns a result
// over MaxResultSize; n%23 panics and n%17 fails, as in stressFunc; the
// rest return sha256(input) at once.
type misbehaving struct {
	mu       sync.Mutex
	running  map[string]int
	calls    map[string]int
	overlaps []string
	release  chan struct{}
	slow     time.Duration
}

const misbehavingResultLimit = 64

func misbehavingKind(n int) string {
	switch {
	case n == 29 || n == 58:
		return "hang"
	case n%61 == 0:
		return "late"
	case n%19 == 0:
		return "goexit"
	case n%13 == 0:
		return "oversize"
	case n%23 == 0:
		return "panic"
	case n%17 == 0:
		return "error"
	}
	return "ok"
}

func (m *misbehaving) fn(ctx context.Context, in []byte) ([]byte, error) {
	m.mu.Lock()
	m.calls[string(in)]++
	if m.running[string(in)]++; m.running[string(in)] > 1 {
		m.overlaps = append(m.overlaps, string(in))
	}
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.running[string(in)]--
		m.mu.Unlock()
	}()
	sum := sha256.Sum256(in)
	switch misbehavingKind(keyNumber(in)) {
	case "hang":
		<-m.release
	case "late":
		time.Sleep(m.slow)
	case "goexit":
		runtime.Goexit()
	case "oversize":
		return bytes.Repeat(sum[:], 3), nil
	case "panic":
		panic("injected")
	case "error":
		return nil, errStress
	}
	return sum[:], nil
}

// TestStressMisbehavingFunctions drives the Group as TestStress does, with
// a function that hangs, ignores its context, Goexits and returns oversized
// results, and checks exact counts: no two calls of one input overlapped,
// every late and hung input was called once, every oversized result was
// delivered and counted uncached, every Goexit was reported, the pool kept
// its workers, and nothing was left in flight.
func TestStressMisbehavingFunctions(t *testing.T) {
	const (
		goroutines = 16
		perG       = 150
		keys       = 300
		timeout    = 100 * time.Millisecond
	)
	m := &misbehaving{running: map[string]int{}, calls: map[string]int{}, release: make(chan struct{}), slow: timeout + 50*time.Millisecond}
	released := false
	defer func() {
		if !released {
			close(m.release)
		}
	}()
	g := newGroup(t, m.fn, Options{Workers: 6, BlockWhenFull: true, TaskTimeout: timeout, MaxResultSize: misbehavingResultLimit, CacheBytes: 32 << 20})
	cdf := zipfCDF(keys)

	var failures sync.Map
	fail := func(format string, args ...any) { failures.Store(fmt.Sprintf(format, args...), true) }
	check := func(in []byte, r Result, err error, wasCancelled bool) {
		want := sha256.Sum256(in)
		kind := misbehavingKind(keyNumber(in))
		var pe *PanicError
		switch {
		case wasCancelled && errors.Is(err, context.Canceled):
		case kind == "hang" && errors.Is(err, ErrTimeout):
		case kind == "late" && errors.Is(err, ErrTimeout):
		case kind == "goexit" && errors.Is(err, ErrGoexit):
		case kind == "panic" && errors.As(err, &pe):
		case kind == "error" && errors.Is(err, errStress):
		case kind == "oversize" && err == nil && bytes.Equal(r.Value, bytes.Repeat(want[:], 3)):
		case (kind == "ok" || kind == "late") && err == nil && bytes.Equal(r.Value, want[:]):
		default:
			fail("%s (%s): got %d bytes, %v", in, kind, len(r.Value), err)
		}
	}

	var wg sync.WaitGroup
	for gi := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(gi), 7))
			input := func() []byte { return []byte(fmt.Sprintf("key-%d", draw(r, cdf)+1)) }
			for range perG {
				ctx, cancel, willCancel := callerContext(r)
				if r.IntN(2) == 0 {
					in := input()
					res, err := g.Get(ctx, in)
					check(in, res, err, willCancel)
				} else {
					ins := [][]byte{input(), input()}
					res, errs := g.GetMany(ctx, ins)
					for i := range ins {
						check(ins[i], res[i], errs[i], willCancel)
					}
				}
				cancel()
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(3 * time.Minute):
		t.Fatal("callers hung: some waiter was never woken")
	}
	failures.Range(func(k, _ any) bool { t.Error(k); return true })

	// The hung calls still hold their workers; the rest of the pool serves.
	if st := g.Stats(); st.Overdue < 1 {
		t.Errorf("Stats.Overdue = %d while the hung calls run; want them counted", st.Overdue)
	}
	if r, err := g.Get(context.Background(), []byte("key-1")); err != nil || r.Source != Hit {
		t.Errorf("key-1 after the run: %v, %v", r.Source, err)
	}
	close(m.release)
	released = true
	eventually(t, "every call returned and every table empty", func() bool {
		st := g.Stats()
		return st.Overdue == 0 && st.InFlight == 0 && st.Queued == 0 && st.Waiters == 0
	})

	st := g.Stats()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.overlaps) > 0 {
		t.Errorf("calls of one input overlapped: %v", m.overlaps)
	}
	var oversizeCalls, goexitCalls int
	cached := 0
	for k := 1; k <= keys; k++ {
		in := fmt.Sprintf("key-%d", k)
		calls := m.calls[in]
		status, _, _ := g.Peek([]byte(in))
		switch kind := misbehavingKind(k); kind {
		case "hang", "late":
			// Each ignores its context, so even abandoned it returns a
			// result, which is cached: one call, however many requests.
			if calls > 1 {
				t.Errorf("%s (%s) called %d times, want at most 1", in, kind, calls)
			}
			if calls == 1 && status != Ready {
				t.Errorf("%s (%s) returned a result that was not cached", in, kind)
			}
		case "oversize":
			oversizeCalls += calls
			if status == Ready {
				t.Errorf("%s: an oversized result was cached", in)
			}
		case "goexit":
			goexitCalls += calls
		}
		if status == Ready {
			cached++
		}
	}
	if int(st.Uncached) != oversizeCalls {
		t.Errorf("Stats.Uncached = %d, but oversized results were returned %d times", st.Uncached, oversizeCalls)
	}
	if int(st.Computed) != cached+oversizeCalls {
		t.Errorf("Stats.Computed = %d, want %d cached + %d uncached: some input was computed twice", st.Computed, cached, oversizeCalls)
	}
	if goexitCalls == 0 || oversizeCalls == 0 || st.Timeouts == 0 {
		t.Errorf("the run missed a case: %d Goexits, %d oversized, %d timeouts", goexitCalls, oversizeCalls, st.Timeouts)
	}
	if st.Evictions != 0 {
		t.Fatalf("the cache evicted %d entries; the exact counts assume it holds every key", st.Evictions)
	}
	t.Logf("computed %d (uncached %d), joined %d, hits %d, abandoned %d, errors %d, timeouts %d, goexits %d",
		st.Computed, st.Uncached, st.Joined, st.Hits, st.Abandoned, st.Errors, st.Timeouts, goexitCalls)
}
