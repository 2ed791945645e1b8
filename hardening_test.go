package coalesce

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// These tests pin what the library promises to callers that retry, give up
// and misbehave (issue #8). Each failed on the code before the fix.

// liveHeap is the heap in use after a collection.
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// overlapFunc records, per input, how many calls run at once and at most,
// and blocks every call until release is closed, ignoring its context: the
// worst function a caller can hand us.
type overlapFunc struct {
	mu      sync.Mutex
	running map[string]int
	maxRun  map[string]int
	calls   atomic.Int64
	release chan struct{}
}

func newOverlapFunc() *overlapFunc {
	return &overlapFunc{running: map[string]int{}, maxRun: map[string]int{}, release: make(chan struct{})}
}

func (o *overlapFunc) fn(_ context.Context, in []byte) ([]byte, error) {
	o.calls.Add(1)
	o.mu.Lock()
	o.running[string(in)]++
	o.maxRun[string(in)] = max(o.maxRun[string(in)], o.running[string(in)])
	o.mu.Unlock()
	<-o.release
	o.mu.Lock()
	o.running[string(in)]--
	o.mu.Unlock()
	return []byte("v:" + string(in)), nil
}

func (o *overlapFunc) maxOverlap(in string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.maxRun[in]
}

// Point 1: a queued flight whose every waiter left must not stay in the
// queue with its copy of the input until a worker gets to it.
func TestAbandonedQueuedWorkIsReleased(t *testing.T) {
	b := newBlocker()
	g := newGroup(t, b.fn, Options{Workers: 1, QueueSize: 4})
	busy, err := g.Start([]byte("busy"))
	if err != nil {
		t.Fatal(err)
	}
	<-b.started
	defer func() { close(b.release); busy.Wait(context.Background()) }()

	const n, size = 2000, 16 << 10
	before := liveHeap()
	input := make([]byte, size)
	overloaded := 0
	for i := range n {
		copy(input, fmt.Sprintf("input %d", i))
		fu, err := g.Start(input)
		if errors.Is(err, ErrOverloaded) {
			overloaded++
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		fu.Cancel()
	}
	grown := liveHeap() - before
	if overloaded != 0 {
		t.Errorf("%d requests refused as overloaded, though every earlier one had left", overloaded)
	}
	if st := g.Stats(); st.Queued != 0 || st.Waiters != 1 {
		t.Errorf("Queued %d, Waiters %d; want 0 and 1", st.Queued, st.Waiters)
	}
	// n abandoned inputs of 16 KiB are 31 MiB; a bounded queue holds at most
	// QueueSize of them.
	if limit := int64(4 << 20); grown > limit {
		t.Errorf("heap grew %d MiB after %d abandoned queued inputs of %d KiB; want at most %d MiB",
			grown>>20, n, size>>10, limit>>20)
	}
}

// Point 2: a queue that never drains must not keep the dead prefix of its
// history: one live flight after many pushes and pops holds one slot.
func TestQueueMemoryFollowsItsLength(t *testing.T) {
	var q queue
	q.init(4)
	q.push(&flight{}, false)
	before := liveHeap()
	for range 1 << 20 {
		if err := q.push(&flight{}, false); err != nil {
			t.Fatal(err)
		}
		q.pop()
	}
	grown := liveHeap() - before
	runtime.KeepAlive(&q)
	if grown > 1<<20 {
		t.Errorf("a queue holding 1 flight after 2^20 push/pop pairs grew the heap by %d KiB; want under 1 MiB", grown>>10)
	}
	if got := q.length(); got != 1 {
		t.Errorf("length %d, want 1", got)
	}
}

// Point 3: once its waiters are answered (timeout or abandonment), a call
// still counts as running until the function returns, and a new request
// for the input waits for it instead of starting a second call.
func TestOneCallPerInputAfterTimeoutOrAbandonment(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"TaskTimeout", Options{Workers: 4, TaskTimeout: 20 * time.Millisecond}},
		{"abandoned", Options{Workers: 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOverlapFunc()
			g := newGroup(t, o.fn, tc.opts)
			released := false
			defer func() {
				if !released {
					close(o.release)
				}
			}()
			in := []byte("slow input")
			for i := range 4 {
				ctx, cancel := context.WithTimeout(context.Background(), 40*time.Millisecond)
				_, err := g.Get(ctx, in)
				cancel()
				if err == nil {
					t.Fatalf("request %d: got a result from a call that cannot have returned", i)
				}
			}
			if c := o.calls.Load(); c != 1 {
				t.Errorf("%d calls of one input started; want 1 (a retry joins the call still running)", c)
			}
			if m := o.maxOverlap(string(in)); m != 1 {
				t.Errorf("%d calls of one input ran at once", m)
			}
			if st := g.Stats(); st.Overdue != 1 {
				t.Errorf("Stats.Overdue = %d, want 1: the call runs on past its deadline", st.Overdue)
			}

			// A request waiting when the call finally returns gets its result,
			// which is also cached.
			fu, err := g.Start(in)
			if err != nil {
				t.Fatal(err)
			}
			close(o.release)
			released = true
			r, err := fu.Wait(context.Background())
			if err != nil || string(r.Value) != "v:slow input" || r.Source != Joined {
				t.Fatalf("the request waiting behind the late call got %q, %v, %v; want its result, Joined", r.Value, r.Source, err)
			}
			eventually(t, "the late call returned", func() bool { return g.Stats().Overdue == 0 })
			if r, err := g.Get(context.Background(), in); err != nil || r.Source != Hit {
				t.Fatalf("after the late result: %v, %v; want a hit", r.Source, err)
			}
			if c := o.calls.Load(); c != 1 {
				t.Errorf("%d calls in all, want 1", c)
			}
		})
	}
}

// Point 3, the other way out: a call that ends without a result leaves
// the requests that waited behind it to a fresh call.
func TestRequestBehindFailedLateCallStartsAFreshOne(t *testing.T) {
	var calls atomic.Int64
	release := make(chan struct{})
	fn := func(ctx context.Context, in []byte) ([]byte, error) {
		if calls.Add(1) == 1 {
			<-release // ignore the context, then fail
			return nil, errors.New("first call failed")
		}
		return []byte("second"), nil
	}
	g := newGroup(t, fn, Options{Workers: 2, TaskTimeout: 10 * time.Millisecond})
	in := []byte("x")
	if _, err := g.Get(context.Background(), in); !errors.Is(err, ErrTimeout) {
		t.Fatalf("first request: %v, want ErrTimeout", err)
	}
	fu, err := g.Start(in)
	if err != nil {
		t.Fatal(err)
	}
	if !fu.First() {
		t.Error("the request behind the late call should report that it started the next one")
	}
	close(release)
	r, err := fu.Wait(context.Background())
	if err != nil || string(r.Value) != "second" || r.Source != Computed {
		t.Fatalf("got %q, %v, %v; want the fresh call's result, Computed", r.Value, r.Source, err)
	}
	if c := calls.Load(); c != 2 {
		t.Errorf("%d calls, want 2", c)
	}
}

// Point 3: a request waiting behind a late call is bounded by TaskTimeout
// too, not only by its own context.
func TestRequestBehindHungCallTimesOut(t *testing.T) {
	o := newOverlapFunc()
	defer close(o.release)
	g := newGroup(t, o.fn, Options{Workers: 2, TaskTimeout: 10 * time.Millisecond})
	in := []byte("hung")
	if _, err := g.Get(context.Background(), in); !errors.Is(err, ErrTimeout) {
		t.Fatalf("first request: %v, want ErrTimeout", err)
	}
	_, err := g.Get(context.Background(), in)
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "still running") {
		t.Fatalf("request behind the hung call: %v; want ErrTimeout saying the earlier call is still running", err)
	}
	if c := o.calls.Load(); c != 1 {
		t.Errorf("%d calls, want 1", c)
	}
}

// Point 4: runtime.Goexit in the function (t.FailNow, say) answers the
// waiters with ErrGoexit and costs the pool no worker.
func TestGoexitIsDeliveredAndWorkerReplaced(t *testing.T) {
	fn := func(ctx context.Context, in []byte) ([]byte, error) {
		if string(in) == "exit" {
			runtime.Goexit()
		}
		return in, nil
	}
	g := newGroup(t, fn, Options{Workers: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Errors are not cached by default: each request calls again.
	for i := range 3 {
		_, err := g.Get(ctx, []byte("exit"))
		if !errors.Is(err, ErrGoexit) {
			t.Fatalf("call %d: %v, want ErrGoexit", i, err)
		}
	}
	r, err := g.Get(ctx, []byte("fine"))
	if err != nil || string(r.Value) != "fine" {
		t.Fatalf("after Goexit the only worker is gone: %v", err)
	}
}

// Point 7: sizes are bounded above, and the errors name the limit.
func TestOptionsUpperBounds(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"CacheBytes", Options{CacheBytes: math.MaxInt64}, "to 1 TiB"},
		{"CacheBytes 1<<50", Options{CacheBytes: 1 << 50}, "to 1 TiB"},
		{"Workers", Options{Workers: LimitWorkers + 1}, "to 65536"},
		{"QueueSize", Options{QueueSize: math.MaxInt}, "to 16777216"},
		{"MaxInputSize", Options{MaxInputSize: math.MaxInt}, "to 1 GiB"},
		{"MaxResultSize", Options{MaxResultSize: math.MaxInt}, "to 1 GiB"},
		{"MaxCachedErrors", Options{MaxCachedErrors: math.MaxInt}, "to 16777216"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := New(upper, tc.o)
			if err == nil {
				g.Close()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.name[:strings.IndexByte(tc.name+" ", ' ')]) {
				t.Fatalf("error %q should name the field and its limit", err)
			}
		})
	}
}

// Point 8: a worker that pops a flight after Close cancelled every
// computation (CloseGrace < 0) does not call the function with a dead
// context: the waiters get ErrClosed.
func TestNoCallOnDoneContext(t *testing.T) {
	var calls atomic.Int64
	fn := func(ctx context.Context, in []byte) ([]byte, error) {
		calls.Add(1)
		return in, nil
	}
	g := newGroup(t, fn, Options{Workers: 1})
	// The state a worker finds when Close lands between its pop and its
	// call: the flight queued, the Group's context cancelled.
	k := g.def.hasher.Sum([]byte("x"))
	f := &flight{key: k, tkey: k, ns: g.def, input: []byte("x"), done: make(chan struct{}), waiters: 1, queuedAt: time.Now()}
	sh := g.waits.shard(k)
	sh.mu.Lock()
	sh.m[k] = f
	sh.mu.Unlock()
	g.stats.inFlight.Add(1)
	g.stats.waiters.Add(1)
	g.baseCancel()
	g.run(f)
	<-f.done
	if c := calls.Load(); c != 0 {
		t.Errorf("the function was called %d times with its context already done", c)
	}
	if !errors.Is(f.err, ErrClosed) {
		t.Errorf("the waiters got %v, want ErrClosed", f.err)
	}
}

// Point 8: Shutdown bounds the wait for a function that ignores its context.
func TestShutdownReturnsWhileFuncIgnoresContext(t *testing.T) {
	o := newOverlapFunc()
	g, err := New(o.fn, Options{Workers: 1, CacheBytes: 1 << 20, CloseGrace: -1})
	if err != nil {
		t.Fatal(err)
	}
	fu, err := g.Start([]byte("stuck"))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the call started", func() bool { return o.calls.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := g.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want the context's deadline", err)
	}
	if _, err := fu.Wait(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("the waiter: %v, want ErrClosed", err)
	}
	close(o.release)
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
}

// Point 8: a duplicate of a hit in one GetMany is a hit.
func TestGetManyCountsDuplicateOfHitAsHit(t *testing.T) {
	g := newGroup(t, upper, Options{})
	if _, err := g.Get(context.Background(), []byte("a")); err != nil {
		t.Fatal(err)
	}
	before := g.Stats()
	res, errs := g.GetMany(context.Background(), [][]byte{[]byte("a"), []byte("a")})
	for i := range res {
		if errs[i] != nil || res[i].Source != Hit {
			t.Errorf("input %d: %v, %v; want a hit", i, res[i].Source, errs[i])
		}
	}
	st := g.Stats()
	if st.Hits-before.Hits != 2 || st.Joined != before.Joined {
		t.Errorf("hits +%d, joined +%d; want +2 and +0", st.Hits-before.Hits, st.Joined-before.Joined)
	}
}

// Point 8: Delete during a computation keeps its possibly stale result out
// of the cache; the waiters still get it.
func TestDeleteDuringComputationDropsItsResult(t *testing.T) {
	b := newBlocker()
	g := newGroup(t, b.fn, Options{Workers: 1})
	in := []byte("k")
	fu, err := g.Start(in)
	if err != nil {
		t.Fatal(err)
	}
	<-b.started
	g.Delete(in)
	close(b.release)
	if _, err := fu.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := g.Peek(in); st == Ready {
		t.Error("the result of a computation that started before Delete was cached")
	}
}

// Point 8: a result over MaxResultSize is delivered, uncached.
func TestOversizeResultDeliveredUncached(t *testing.T) {
	big := func(_ context.Context, in []byte) ([]byte, error) { return make([]byte, 2048), nil }
	g := newGroup(t, big, Options{MaxResultSize: 1024})
	r, err := g.Get(context.Background(), []byte("x"))
	if err != nil || len(r.Value) != 2048 {
		t.Fatalf("got %d bytes, %v; want the 2048-byte result", len(r.Value), err)
	}
	if st, _, _ := g.Peek([]byte("x")); st == Ready {
		t.Error("an oversize result was cached")
	}
	if st := g.Stats(); st.Uncached != 1 {
		t.Errorf("Stats.Uncached = %d, want 1", st.Uncached)
	}
}

// Point 8: callers sharing a computed result may append to it without
// racing (run under -race), and the function may reuse its buffer.
func TestResultValueIsCallersOwnToAppend(t *testing.T) {
	buf := make([]byte, 4, 64)
	b := newBlocker()
	fn := func(ctx context.Context, in []byte) ([]byte, error) {
		b.fn(ctx, in)
		copy(buf, "abcd")
		return buf[:4], nil
	}
	g := newGroup(t, fn, Options{})
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := g.Get(context.Background(), []byte("k"))
			if err != nil {
				t.Error(err)
				return
			}
			_ = append(r.Value, byte(i))
		}()
	}
	<-b.started
	eventually(t, "both waiting", func() bool { return g.Stats().Waiters == 2 })
	close(b.release)
	wg.Wait()
	copy(buf, "zzzz") // the function reuses its buffer
	if r, _ := g.Get(context.Background(), []byte("k")); string(r.Value) != "abcd" {
		t.Errorf("cached value %q", r.Value)
	}
}

// Point 8: a panic's message carries no stack; the stack stays in the field.
func TestPanicErrorMessageHasNoStack(t *testing.T) {
	g := newGroup(t, func(context.Context, []byte) ([]byte, error) { panic("boom") }, Options{})
	_, err := g.Get(context.Background(), []byte("x"))
	var pe *PanicError
	if !errors.As(err, &pe) || len(pe.Stack) == 0 {
		t.Fatalf("%v", err)
	}
	if strings.Contains(err.Error(), "goroutine") || strings.Contains(err.Error(), "\n") {
		t.Errorf("the message carries the stack: %q", err)
	}
}

// Point 8: too small a cache is refused with the minimum to use.
func TestTooSmallCacheNamesTheMinimum(t *testing.T) {
	for _, p := range []Policy{S3FIFO, LRU} {
		_, err := New(upper, Options{CacheBytes: 100, Policy: p})
		if err == nil || !strings.Contains(err.Error(), "minimum") {
			t.Errorf("%v: %v; want an error that gives the minimum", p, err)
		}
		for _, word := range []string{"shard", "ghost", "sketch"} {
			if err != nil && strings.Contains(err.Error(), word) {
				t.Errorf("%v: the error speaks of %ss: %v", p, word, err)
			}
		}
	}
}

// Point 8: the zero Group says it was not made by New.
func TestZeroGroup(t *testing.T) {
	var g Group
	_, err := g.Get(context.Background(), []byte("x"))
	if !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("Get: %v, want ErrNotInitialized", err)
	}
	if _, err := g.Start([]byte("x")); !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("Start: %v", err)
	}
	if _, _, err := g.Peek([]byte("x")); !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("Peek: %v", err)
	}
	g.Delete([]byte("x"))
	_ = g.Stats()
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
}

// MaxOverdue: a worker held by an overdue call is replaced, up to the
// bound; beyond it, hung calls hold their workers.
func TestMaxOverdueReplacesStuckWorkers(t *testing.T) {
	o := newOverlapFunc()
	released := false
	defer func() {
		if !released {
			close(o.release)
		}
	}()
	fn := func(ctx context.Context, in []byte) ([]byte, error) {
		if strings.HasPrefix(string(in), "hang") {
			return o.fn(ctx, in)
		}
		return in, nil
	}
	g := newGroup(t, fn, Options{Workers: 1, MaxOverdue: 1, TaskTimeout: 10 * time.Millisecond})
	ctx := context.Background()
	if _, err := g.Get(ctx, []byte("hang 1")); !errors.Is(err, ErrTimeout) {
		t.Fatalf("hang 1: %v", err)
	}
	if r, err := g.Get(ctx, []byte("fine")); err != nil || string(r.Value) != "fine" {
		t.Fatalf("with the only worker hung and MaxOverdue 1, a new input got %v", err)
	}
	if _, err := g.Get(ctx, []byte("hang 2")); !errors.Is(err, ErrTimeout) {
		t.Fatalf("hang 2: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if _, err := g.Get(short, []byte("queued")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("beyond MaxOverdue a new input must wait for a worker; got %v", err)
	}
	if st := g.Stats(); st.Overdue != 2 {
		t.Errorf("Overdue %d, want 2", st.Overdue)
	}
	close(o.release)
	released = true
	eventually(t, "the hung calls returned", func() bool { return g.Stats().Overdue == 0 })
	if r, err := g.Get(ctx, []byte("after")); err != nil || string(r.Value) != "after" {
		t.Fatalf("after the hung calls returned: %v", err)
	}
	if n := g.replacements.Load(); n != 0 {
		t.Errorf("%d replacements still counted", n)
	}
}

func TestKeys(t *testing.T) {
	g := newGroup(t, upper, Options{})
	in := []byte("abc")
	k, err := g.KeyOf(in)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := g.PeekKey(k); st != Absent {
		t.Fatalf("before: %v", st)
	}
	if _, err := g.Get(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	p, err := ParseKey(k.String())
	if err != nil || p != k {
		t.Fatalf("ParseKey(%s) = %v, %v", k, p, err)
	}
	if st, v := g.PeekKey(p); st != Ready || string(v) != "ABC" {
		t.Fatalf("after: %v %q", st, v)
	}
	for _, bad := range []string{"", "xyz", strings.Repeat("g", 32), strings.Repeat("0", 33)} {
		if _, err := ParseKey(bad); !errors.Is(err, ErrBadKey) {
			t.Errorf("ParseKey(%q): %v", bad, err)
		}
	}
}

func FuzzParseKey(f *testing.F) {
	f.Add("00112233445566778899aabbccddeeff")
	f.Add("")
	f.Add("zz")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err == nil && k.String() != strings.ToLower(s) {
			t.Fatalf("ParseKey(%q).String() = %s", s, k)
		}
	})
}

func TestLookup(t *testing.T) {
	var calls atomic.Int64
	g := newGroup(t, func(ctx context.Context, in []byte) ([]byte, error) {
		calls.Add(1)
		return upper(ctx, in)
	}, Options{})
	r, k, ok, err := g.Lookup([]byte("x"))
	if ok || err != nil || r.Source != 0 || calls.Load() != 0 || g.Stats().Requests != 0 {
		t.Fatalf("miss: %v %v %v, %d calls, %d requests", r, ok, err, calls.Load(), g.Stats().Requests)
	}
	if _, err := g.Get(context.Background(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	r, k2, ok, err := g.Lookup([]byte("x"))
	if !ok || err != nil || string(r.Value) != "X" || r.Source != Hit || k2 != k {
		t.Fatalf("hit: %v %v %v", r, ok, err)
	}
	if st := g.Stats(); st.Requests != 2 || st.Hits != 1 {
		t.Fatalf("requests %d hits %d; want 2 and 1", st.Requests, st.Hits)
	}
	if _, _, _, err := g.Lookup(make([]byte, 1<<20)); !errors.Is(err, ErrInputTooLarge) {
		t.Fatalf("%v", err)
	}
}

// Point 7: the zero Options (a 1 GiB cache) cost little heap until results
// arrive.
func TestDefaultOptionsCostLittleUntilUsed(t *testing.T) {
	before := liveHeap()
	g, err := New(upper, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	grown := liveHeap() - before
	runtime.KeepAlive(g)
	if grown > 64<<20 {
		t.Errorf("New(Options{}) holds %d MiB of heap before anything is cached; want at most 64 MiB", grown>>20)
	}
}
