package coalesce

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coalesce-go/coalesce/internal/keyhash"
)

// upper is a Func whose result is easy to check.
func upper(_ context.Context, in []byte) ([]byte, error) { return bytes.ToUpper(in), nil }

// newGroup makes a Group closed at the end of the test. Tests use a small
// cache unless they say otherwise: the store reserves its whole budget up
// front, and re-making 1 GiB stores in a loop only measures page zeroing.
func newGroup(t *testing.T, fn Func, o Options) *Group {
	t.Helper()
	if o.CacheBytes == 0 {
		o.CacheBytes = 16 << 20
	}
	g, err := New(fn, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// eventually polls cond; it fails the test only if cond never holds, so it
// asserts no duration, only that the state is reached.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never reached: %s", what)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func TestSecretFixesKeys(t *testing.T) {
	secret := bytes.Repeat([]byte{9}, 32)
	a := newGroup(t, upper, Options{Secret: secret})
	b := newGroup(t, upper, Options{Secret: secret})
	c := newGroup(t, upper, Options{})
	in := []byte("same input")
	if a.hasher.Sum(in) != b.hasher.Sum(in) {
		t.Fatal("two Groups with one secret disagree on a key")
	}
	if a.hasher.Sum(in) == c.hasher.Sum(in) {
		t.Fatal("a random secret gave the configured secret's key")
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	cases := []struct {
		name string
		fn   Func
		o    Options
		want string
	}{
		{"nil func", nil, Options{}, "non-nil Func"},
		{"workers", upper, Options{Workers: -1}, "Workers"},
		{"queue", upper, Options{QueueSize: -5}, "QueueSize"},
		{"input", upper, Options{MaxInputSize: -1}, "MaxInputSize"},
		{"result", upper, Options{MaxResultSize: -1}, "MaxResultSize"},
		{"cache", upper, Options{CacheBytes: -1}, "CacheBytes"},
		{"cache too small for result", upper, Options{CacheBytes: 100, MaxResultSize: 1000}, "CacheBytes"},
		{"policy", upper, Options{Policy: 9}, "Policy"},
		{"timeout", upper, Options{TaskTimeout: -time.Second}, "TaskTimeout"},
		{"error ttl", upper, Options{ErrorTTL: -1}, "ErrorTTL"},
		{"max errors", upper, Options{MaxCachedErrors: -1}, "MaxCachedErrors"},
		{"secret", upper, Options{Secret: []byte("short")}, "32 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g, err := New(c.fn, c.o)
			if err == nil {
				g.Close()
				t.Fatal("want an error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not mention %q", err, c.want)
			}
		})
	}
}

func TestComputeOnceThenHit(t *testing.T) {
	var calls atomic.Int32
	g := newGroup(t, func(ctx context.Context, in []byte) ([]byte, error) {
		calls.Add(1)
		return upper(ctx, in)
	}, Options{})
	ctx := context.Background()
	r, err := g.Get(ctx, []byte("abc"))
	if err != nil || string(r.Value) != "ABC" || r.Source != Computed {
		t.Fatalf("first Get = %q, %v, %v", r.Value, r.Source, err)
	}
	r, err = g.Get(ctx, []byte("abc"))
	if err != nil || string(r.Value) != "ABC" || r.Source != Hit {
		t.Fatalf("second Get = %q, %v, %v", r.Value, r.Source, err)
	}
	if calls.Load() != 1 {
		t.Fatalf("computed %d times", calls.Load())
	}
	if !g.Delete([]byte("abc")) || g.Delete([]byte("abc")) {
		t.Fatal("Delete should report true once")
	}
	if r, _ := g.Get(ctx, []byte("abc")); r.Source != Computed || calls.Load() != 2 {
		t.Fatalf("after Delete: %v, %d calls", r.Source, calls.Load())
	}
	st := g.Stats()
	if st.Requests != 3 || st.Hits != 1 || st.Computed != 2 || st.Entries != 1 || st.InFlight != 0 || st.Waiters != 0 {
		t.Fatalf("stats %+v", st)
	}
	if st.ComputeTime.Count != 2 || st.QueueWait.Count != 2 || st.ComputeTime.Max < st.ComputeTime.P50 {
		t.Fatalf("latency summaries %+v %+v", st.ComputeTime, st.QueueWait)
	}
	if st.Bytes <= 0 || st.CacheBytes != 16<<20 {
		t.Fatalf("cache accounting: %d bytes of %d", st.Bytes, st.CacheBytes)
	}
}

// blocker is a Func that holds every computation until released.
type blocker struct {
	calls   atomic.Int32
	started chan string
	release chan struct{}
	ctxErrs chan error // what each computation saw when its context ended
}

func newBlocker() *blocker {
	return &blocker{started: make(chan string, 100), release: make(chan struct{}), ctxErrs: make(chan error, 100)}
}

func (b *blocker) fn(ctx context.Context, in []byte) ([]byte, error) {
	b.calls.Add(1)
	b.started <- string(in)
	select {
	case <-b.release:
		return bytes.ToUpper(in), nil
	case <-ctx.Done():
		b.ctxErrs <- ctx.Err()
		return nil, ctx.Err()
	}
}

func TestAllIdenticalRequestsShareOneComputation(t *testing.T) {
	b := newBlocker()
	g := newGroup(t, b.fn, Options{Workers: 4})
	const n = 50
	var wg sync.WaitGroup
	results := make([]Result, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = g.Get(context.Background(), []byte("same"))
		}()
	}
	eventually(t, "50 waiters", func() bool { return g.Stats().Waiters == n })
	if st, _, _ := g.Peek([]byte("same")); st != Pending {
		t.Fatalf("Peek while computing = %v", st)
	}
	close(b.release)
	wg.Wait()
	sources := map[Source]int{}
	for i := range n {
		if errs[i] != nil || string(results[i].Value) != "SAME" {
			t.Fatalf("caller %d: %q %v", i, results[i].Value, errs[i])
		}
		sources[results[i].Source]++
	}
	if b.calls.Load() != 1 || sources[Computed] != 1 || sources[Joined] != n-1 {
		t.Fatalf("calls %d sources %v", b.calls.Load(), sources)
	}
	if st := g.Stats(); st.InFlight != 0 || st.Waiters != 0 || st.Joined != n-1 {
		t.Fatalf("stats after: %+v", st)
	}
}

func TestHitIsNotQueuedBehindWork(t *testing.T) {
	b := newBlocker()
	g := newGroup(t, func(ctx context.Context, in []byte) ([]byte, error) {
		if string(in) == "cached" {
			return in, nil
		}
		return b.fn(ctx, in)
	}, Options{Workers: 1})
	if _, err := g.Get(context.Background(), []byte("cached")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 5 { // the one worker is busy and four inputs are queued
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.Get(context.Background(), []byte(fmt.Sprint("busy", i)))
		}()
	}
	eventually(t, "worker busy and queue filled", func() bool { return g.Stats().Queued == 4 })
	r, err := g.Get(context.Background(), []byte("cached"))
	if err != nil || r.Source != Hit {
		t.Fatalf("hit while busy: %v %v", r.Source, err)
	}
	close(b.release)
	wg.Wait()
}

func TestWaiterCancellation(t *testing.T) {
	b := newBlocker()
	g := newGroup(t, b.fn, Options{})
	ctx1, cancel1 := context.WithCancel(context.Background())
	done1 := make(chan error, 1)
	go func() { _, err := g.Get(ctx1, []byte("x")); done1 <- err }()
	done2 := make(chan Result, 1)
	go func() { r, _ := g.Get(context.Background(), []byte("x")); done2 <- r }()
	eventually(t, "two waiters", func() bool { return g.Stats().Waiters == 2 })

	cancel1()
	if err := <-done1; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter got %v", err)
	}
	if st := g.Stats(); st.Waiters != 1 || st.InFlight != 1 {
		t.Fatalf("the other waiter should still wait: %+v", st)
	}
	close(b.release)
	if r := <-done2; string(r.Value) != "X" {
		t.Fatalf("remaining waiter got %q", r.Value)
	}
}

func TestLastWaiterLeavingCancelsComputation(t *testing.T) {
	b := newBlocker()
	g := newGroup(t, b.fn, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := g.Get(ctx, []byte("x")); done <- err }()
	<-b.started
	cancel()
	<-done
	if err := <-b.ctxErrs; !errors.Is(err, context.Canceled) {
		t.Fatalf("computation's context ended with %v", err)
	}
	eventually(t, "abandoned", func() bool { return g.Stats().Abandoned == 1 && g.Stats().InFlight == 0 })
	// A new request computes afresh instead of joining the cancelled one.
	close(b.release)
	r, err := g.Get(context.Background(), []byte("x"))
	if err != nil || r.Source != Computed || string(r.Value) != "X" {
		t.Fatalf("after abandonment: %v %v %v", r.Source, r.Value, err)
	}
}

func TestKeepAbandonedFillsCache(t *testing.T) {
	b := newBlocker()
	g := newGroup(t, b.fn, Options{KeepAbandoned: true})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := g.Get(ctx, []byte("x")); done <- err }()
	<-b.started
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("waiter got %v", err)
	}
	close(b.release)
	eventually(t, "cached", func() bool { st, _, _ := g.Peek([]byte("x")); return st == Ready })
	if b.calls.Load() != 1 || len(b.ctxErrs) != 0 {
		t.Fatal("the computation should have run on, once")
	}
}

func TestTaskTimeoutAnswersWaitersAtOnce(t *testing.T) {
	release := make(chan struct{})
	g := newGroup(t, func(ctx context.Context, in []byte) ([]byte, error) {
		<-release // ignores its context on purpose
		return in, nil
	}, Options{TaskTimeout: 20 * time.Millisecond})
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := g.Get(context.Background(), []byte("slow")); !errors.Is(err, ErrTimeout) {
				t.Errorf("got %v, want ErrTimeout", err)
			}
		}()
	}
	wg.Wait() // returns although the function has not
	if st := g.Stats(); st.Timeouts != 1 || st.Overdue != 1 {
		t.Fatalf("Timeouts %d, Overdue %d; want 1 and 1", st.Timeouts, st.Overdue)
	}
	close(release)
	// The call was idempotent work done: its late result fills the cache.
	eventually(t, "the late call returned", func() bool { return g.Stats().Overdue == 0 })
	if st, _, _ := g.Peek([]byte("slow")); st != Ready {
		t.Fatalf("a result returned after the timeout was not cached: %v", st)
	}
}

func TestPanicIsDeliveredAndWorkerLives(t *testing.T) {
	var calls atomic.Int32
	g := newGroup(t, func(ctx context.Context, in []byte) ([]byte, error) {
		calls.Add(1)
		if string(in) == "boom" {
			panic(fmt.Errorf("wrapped %w", context.DeadlineExceeded))
		}
		return in, nil
	}, Options{Workers: 1})
	for range 2 { // not cached: computed twice
		_, err := g.Get(context.Background(), []byte("boom"))
		var pe *PanicError
		if !errors.As(err, &pe) || !bytes.Contains(pe.Stack, []byte("group_test.go")) {
			t.Fatalf("want a PanicError with a stack, got %v", err)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal("PanicError should unwrap to the panic's error")
		}
	}
	if r, err := g.Get(context.Background(), []byte("fine")); err != nil || string(r.Value) != "fine" {
		t.Fatalf("worker did not survive: %v", err)
	}
	if st := g.Stats(); calls.Load() != 3 || st.Panics != 2 || st.Errors != 2 {
		t.Fatalf("calls %d stats %+v", calls.Load(), st)
	}
}

func TestErrorTTLCachesErrors(t *testing.T) {
	var calls atomic.Int32
	errBad := errors.New("bad input")
	g := newGroup(t, func(ctx context.Context, in []byte) ([]byte, error) {
		calls.Add(1)
		return nil, errBad
	}, Options{ErrorTTL: time.Hour})
	for range 3 {
		if _, err := g.Get(context.Background(), []byte("x")); !errors.Is(err, errBad) {
			t.Fatalf("got %v", err)
		}
	}
	if calls.Load() != 1 || g.Stats().CachedErrors != 2 {
		t.Fatalf("calls %d, stats %+v", calls.Load(), g.Stats())
	}
	g.Delete([]byte("x"))
	g.Get(context.Background(), []byte("x"))
	if calls.Load() != 2 {
		t.Fatal("Delete should drop the cached error")
	}
}

func TestErrorCacheBounded(t *testing.T) {
	c := newErrorCache(time.Hour, 3)
	e := errors.New("e")
	for i := range 10 {
		c.put(key(i), e)
		c.put(key(0), e) // key 0 is refreshed each time and must survive
	}
	if len(c.m) != 3 || c.get(key(0)) == nil || c.get(key(9)) == nil || c.get(key(1)) != nil {
		t.Fatalf("cache holds %d entries", len(c.m))
	}
	if len(c.order) > 2*3+16 {
		t.Fatalf("order not compacted: %d", len(c.order))
	}
	short := newErrorCache(time.Nanosecond, 3)
	short.put(key(1), e)
	time.Sleep(time.Millisecond)
	if short.get(key(1)) != nil {
		t.Fatal("expired error returned")
	}
}

func TestOverloadAndBlockWhenFull(t *testing.T) {
	for _, block := range []bool{false, true} {
		t.Run(fmt.Sprint("block=", block), func(t *testing.T) {
			b := newBlocker()
			g := newGroup(t, b.fn, Options{Workers: 1, QueueSize: 1, BlockWhenFull: block})
			results := make(chan error, 3)
			get := func(in string) { _, err := g.Get(context.Background(), []byte(in)); results <- err }
			go get("running")
			<-b.started
			go get("queued")
			eventually(t, "one queued", func() bool { return g.Stats().Queued == 1 })
			go get("third")
			if !block {
				if err := <-results; !errors.Is(err, ErrOverloaded) {
					t.Fatalf("want ErrOverloaded, got %v", err)
				}
				close(b.release)
				for range 2 {
					if err := <-results; err != nil {
						t.Fatal(err)
					}
				}
				if g.Stats().Overloaded != 1 {
					t.Fatal("overload not counted")
				}
				return
			}
			eventually(t, "two queued", func() bool { return g.Stats().Queued == 2 })
			close(b.release)
			for range 3 {
				if err := <-results; err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestCloseFailsQueuedAndLetsRunningFinish(t *testing.T) {
	b := newBlocker()
	g, err := New(b.fn, Options{Workers: 1, CacheBytes: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	running := make(chan error, 1)
	go func() { _, err := g.Get(context.Background(), []byte("running")); running <- err }()
	<-b.started
	queued := make(chan error, 1)
	go func() { _, err := g.Get(context.Background(), []byte("queued")); queued <- err }()
	eventually(t, "queued", func() bool { return g.Stats().Queued == 1 })
	closed := make(chan struct{})
	go func() { g.Close(); close(closed) }()
	if err := <-queued; !errors.Is(err, ErrClosed) {
		t.Fatalf("queued request got %v", err)
	}
	select {
	case <-closed:
		t.Fatal("Close returned while a computation was running")
	default:
	}
	close(b.release)
	if err := <-running; err != nil {
		t.Fatalf("running request got %v", err)
	}
	<-closed
	if _, err := g.Get(context.Background(), []byte("after")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if _, err := g.Start([]byte("after")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close: %v", err)
	}
	g.Close() // idempotent
}

func TestCloseGraceCancelsRunning(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	g, _ := New(func(ctx context.Context, in []byte) ([]byte, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}, Options{CloseGrace: 10 * time.Millisecond, CacheBytes: 16 << 20})
	fu, err := g.Start([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "running", func() bool { return g.Stats().Queued == 0 })
	g.Close()
	if _, err := fu.Wait(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("waiter got %v, want ErrClosed", err)
	}
}

func TestOversizeInputAndResult(t *testing.T) {
	g := newGroup(t, func(ctx context.Context, in []byte) ([]byte, error) {
		return bytes.Repeat(in, 100), nil
	}, Options{MaxInputSize: 10, MaxResultSize: 50})
	if _, err := g.Get(context.Background(), make([]byte, 11)); !errors.Is(err, ErrInputTooLarge) || !strings.Contains(err.Error(), "11 bytes") {
		t.Fatalf("oversize input: %v", err)
	}
	if r, err := g.Get(context.Background(), []byte("ab")); err != nil || len(r.Value) != 200 {
		t.Fatalf("oversize result: %d bytes, %v; want it delivered", len(r.Value), err)
	}
	if st := g.Stats(); st.Uncached != 1 || st.Entries != 0 {
		t.Fatalf("oversize result: Uncached %d, Entries %d; want 1 and 0", st.Uncached, st.Entries)
	}
	if _, _, err := g.Peek(make([]byte, 11)); !errors.Is(err, ErrInputTooLarge) {
		t.Fatalf("Peek oversize: %v", err)
	}
}

func TestFutures(t *testing.T) {
	b := newBlocker()
	g := newGroup(t, b.fn, Options{})
	if st, _, _ := g.Peek([]byte("f")); st != Absent {
		t.Fatalf("Peek before = %v", st)
	}
	f1, err := g.Start([]byte("f"))
	if err != nil || !f1.First() {
		t.Fatalf("first Start: first=%v err=%v", f1.First(), err)
	}
	f2, _ := g.Start([]byte("f"))
	if f2.First() {
		t.Fatal("second Start claims to be first")
	}
	if _, err := f1.Poll(); !errors.Is(err, ErrPending) {
		t.Fatalf("Poll before done: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if _, err := f2.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with an expired context: %v", err)
	}
	f2.Cancel()
	f2.Cancel()
	if g.Stats().Waiters != 1 {
		t.Fatalf("waiters %d after one Cancel", g.Stats().Waiters)
	}
	close(b.release)
	<-f1.Done()
	r, err := f1.Poll()
	if err != nil || string(r.Value) != "F" || r.Source != Computed {
		t.Fatalf("Poll after done: %q %v %v", r.Value, r.Source, err)
	}
	f3, _ := g.Start([]byte("f"))
	if r, _ := f3.Wait(context.Background()); r.Source != Hit || f3.First() {
		t.Fatalf("Start of a cached input: %v", r.Source)
	}
	if st, v, _ := g.Peek([]byte("f")); st != Ready || string(v) != "F" {
		t.Fatalf("Peek after = %v %q", st, v)
	}
}

func TestFutureCancelAbandons(t *testing.T) {
	b := newBlocker()
	g := newGroup(t, b.fn, Options{})
	f, _ := g.Start([]byte("x"))
	<-b.started
	f.Cancel()
	if err := <-b.ctxErrs; !errors.Is(err, context.Canceled) {
		t.Fatalf("computation's context: %v", err)
	}
	if _, err := f.Poll(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Poll after Cancel: %v", err)
	}
}

func TestGetMany(t *testing.T) {
	errOdd := errors.New("odd")
	var calls atomic.Int32
	g := newGroup(t, func(ctx context.Context, in []byte) ([]byte, error) {
		calls.Add(1)
		if string(in) == "odd" {
			return nil, errOdd
		}
		return bytes.ToUpper(in), nil
	}, Options{MaxInputSize: 8})
	g.Get(context.Background(), []byte("cached"))
	inputs := [][]byte{[]byte("a"), []byte("b"), []byte("a"), []byte("odd"), []byte("cached"), make([]byte, 9), []byte("b")}
	res, errs := g.GetMany(context.Background(), inputs)
	want := []struct {
		v   string
		src Source
		err error
	}{{"A", Computed, nil}, {"B", Computed, nil}, {"A", Joined, nil}, {"", 0, errOdd}, {"CACHED", Hit, nil}, {"", 0, ErrInputTooLarge}, {"B", Joined, nil}}
	for i, w := range want {
		if w.err != nil {
			if !errors.Is(errs[i], w.err) {
				t.Errorf("input %d: error %v, want %v", i, errs[i], w.err)
			}
			continue
		}
		if errs[i] != nil || string(res[i].Value) != w.v || res[i].Source != w.src {
			t.Errorf("input %d: %q %v %v, want %q %v", i, res[i].Value, res[i].Source, errs[i], w.v, w.src)
		}
	}
	if calls.Load() != 4 { // cached, a, b, odd
		t.Fatalf("calls %d", calls.Load())
	}
}

func TestGetManyCancelled(t *testing.T) {
	b := newBlocker()
	g := newGroup(t, b.fn, Options{Workers: 1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan []error, 1)
	go func() {
		_, errs := g.GetMany(ctx, [][]byte{[]byte("p"), []byte("q"), []byte("r")})
		done <- errs
	}()
	<-b.started
	eventually(t, "queued", func() bool { return g.Stats().Queued == 2 })
	cancel()
	for i, err := range <-done {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("input %d: %v", i, err)
		}
	}
	eventually(t, "all abandoned", func() bool {
		st := g.Stats()
		return st.InFlight == 0 && st.Queued == 0 && st.Waiters == 0 && st.Abandoned == 3
	})
}

func key(i int) keyhash.Key { return keyhash.Key{Hi: uint64(i), Lo: uint64(i) * 7} }

func TestSmallCacheLowersDefaultResultLimit(t *testing.T) {
	for _, p := range []Policy{S3FIFO, LRU} {
		g := newGroup(t, func(ctx context.Context, in []byte) ([]byte, error) {
			return make([]byte, 100<<10), nil
		}, Options{CacheBytes: 1 << 20, Policy: p})
		if _, err := g.Get(context.Background(), []byte("big")); err != nil || g.Stats().Uncached != 1 {
			t.Fatalf("%v: a result larger than a small cache holds: %v, Uncached %d; want it delivered uncached", p, err, g.Stats().Uncached)
		}
		if _, err := New(upper, Options{CacheBytes: 1 << 20, MaxResultSize: 1 << 20, Policy: p}); err == nil || !strings.Contains(err.Error(), "MaxResultSize") {
			t.Fatalf("%v: an explicit limit the cache cannot hold: %v", p, err)
		}
	}
}
