package coalesce

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// mapTier is a Tier kept in a map: the contract's test double. The tiers
// users run (disk, cluster) are tested against real stores in their own
// modules.
type mapTier struct {
	mu      sync.Mutex
	m       map[TierKey][]byte
	loads   atomic.Int64
	saves   []Outcome
	touched map[TierKey]int

	loadErr  error         // returned by Load
	answer   error         // returned as TierResult.Err
	lease    any           // returned as TierResult.Lease on a miss
	block    chan struct{} // if set, Load waits for it (or ctx, unless deaf)
	deaf     bool          // Load ignores ctx while it waits for block
	onSave   func()        // called at the start of Save
	loadCtxs chan context.Context
}

func newMapTier() *mapTier {
	return &mapTier{m: map[TierKey][]byte{}, touched: map[TierKey]int{}}
}

func (t *mapTier) Load(ctx context.Context, k TierKey) (TierResult, error) {
	t.loads.Add(1)
	if t.loadCtxs != nil {
		t.loadCtxs <- ctx
	}
	if t.block != nil && t.deaf {
		<-t.block
	} else if t.block != nil {
		select {
		case <-t.block:
		case <-ctx.Done():
			return TierResult{}, ctx.Err()
		}
	}
	if t.loadErr != nil {
		return TierResult{}, t.loadErr
	}
	r := t.lookup(k)
	if !r.Found && r.Err == nil {
		r.Lease = t.lease
	}
	return r, nil
}

// lookup is what the tier keeps for k: its answer, a copy of the value,
// or nothing.
func (t *mapTier) lookup(k TierKey) TierResult {
	if t.answer != nil {
		return TierResult{Err: t.answer}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if v, ok := t.m[k]; ok {
		return TierResult{Found: true, Value: bytes.Clone(v)}
	}
	return TierResult{}
}

func (t *mapTier) Save(ctx context.Context, k TierKey, out Outcome) error {
	if t.onSave != nil {
		t.onSave()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	out.Value = bytes.Clone(out.Value)
	t.saves = append(t.saves, out)
	if out.Err == nil {
		t.m[k] = out.Value
	}
	return nil
}

func (t *mapTier) Delete(k TierKey) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.m[k]
	delete(t.m, k)
	return ok, nil
}

func (t *mapTier) Touched(keys []TierKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		t.touched[k]++
	}
}

func (t *mapTier) savesCopy() []Outcome {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Outcome(nil), t.saves...)
}

var testSecret = bytes.Repeat([]byte{7}, 32)

func echo(calls *atomic.Int64) Func {
	return func(ctx context.Context, in []byte) ([]byte, error) {
		calls.Add(1)
		return append([]byte("r:"), in...), nil
	}
}

func TestTiersNeedASecret(t *testing.T) {
	_, err := New(echo(new(atomic.Int64)), Options{Tiers: []Tier{newMapTier()}})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("Secret")) {
		t.Fatalf("New with tiers and no secret: %v; want an error naming Options.Secret", err)
	}
	if _, err := New(echo(new(atomic.Int64)), Options{Tiers: []Tier{nil}, Secret: testSecret}); err == nil {
		t.Fatal("New with a nil tier: want an error")
	}
}

func TestComputedResultIsSavedBeforeWaitersAreAnswered(t *testing.T) {
	tier := newMapTier()
	tier.lease = "my-lease"
	var calls atomic.Int64
	var answered atomic.Bool
	tier.onSave = func() {
		if answered.Load() {
			t.Error("Save ran after a waiter was answered")
		}
	}
	g := newGroup(t, echo(&calls), Options{Tiers: []Tier{tier}, Secret: testSecret, Version: "v1"})
	r, err := g.Get(context.Background(), []byte("a"))
	answered.Store(true)
	tier.onSave = nil
	if err != nil || r.Source != Computed || string(r.Value) != "r:a" {
		t.Fatalf("Get: %v %v %q", err, r.Source, r.Value)
	}
	saves := tier.savesCopy()
	if len(saves) != 1 || string(saves[0].Value) != "r:a" || saves[0].Lease != "my-lease" {
		t.Fatalf("saves %+v; want one with the value and the Load's lease", saves)
	}
	// A second Group with the same secret and tier (the next process) loads
	// it instead of computing.
	var calls2 atomic.Int64
	g2 := newGroup(t, echo(&calls2), Options{Tiers: []Tier{tier}, Secret: testSecret, Version: "v1"})
	r, err = g2.Get(context.Background(), []byte("a"))
	if err != nil || r.Source != Loaded || string(r.Value) != "r:a" || calls2.Load() != 0 {
		t.Fatalf("Get in the next Group: %v %v %q, %d calls; want Loaded without a call", err, r.Source, r.Value, calls2.Load())
	}
	if r, _ := g2.Get(context.Background(), []byte("a")); r.Source != Hit {
		t.Fatalf("a loaded result is then a memory hit; got %v", r.Source)
	}
	if st := g2.Stats(); st.Loaded != 1 || st.Computed != 0 {
		t.Fatalf("Stats Loaded %d Computed %d; want 1, 0", st.Loaded, st.Computed)
	}
	// Another version finds nothing.
	g3 := newGroup(t, echo(&calls2), Options{Tiers: []Tier{tier}, Secret: testSecret, Version: "v2"})
	if r, _ := g3.Get(context.Background(), []byte("a")); r.Source != Computed {
		t.Fatalf("another version: %v; want Computed", r.Source)
	}
}

func TestOneLoadPerInput(t *testing.T) {
	tier := newMapTier()
	tier.block = make(chan struct{})
	var calls atomic.Int64
	g := newGroup(t, echo(&calls), Options{Tiers: []Tier{tier}, Secret: testSecret})
	var wg sync.WaitGroup
	srcs := make([]Source, 20)
	for i := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := g.Get(context.Background(), []byte("same"))
			if err != nil {
				t.Error(err)
			}
			srcs[i] = r.Source
		}()
	}
	eventually(t, "20 waiters", func() bool { return g.Stats().Waiters == 20 })
	close(tier.block)
	wg.Wait()
	if n := tier.loads.Load(); n != 1 {
		t.Errorf("%d loads for one input; want 1", n)
	}
	if calls.Load() != 1 {
		t.Errorf("%d calls; want 1", calls.Load())
	}
}

func TestLoadFromFartherTierIsPromoted(t *testing.T) {
	near, far := newMapTier(), newMapTier()
	near.lease = "near-lease"
	var calls atomic.Int64
	g0 := newGroup(t, echo(&calls), Options{Tiers: []Tier{far}, Secret: testSecret})
	if _, err := g0.Get(context.Background(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	g := newGroup(t, echo(&calls), Options{Tiers: []Tier{near, far}, Secret: testSecret})
	r, err := g.Get(context.Background(), []byte("x"))
	if err != nil || r.Source != Loaded || calls.Load() != 1 {
		t.Fatalf("Get: %v %v, %d calls", err, r.Source, calls.Load())
	}
	saves := near.savesCopy()
	if len(saves) != 1 || string(saves[0].Value) != "r:x" || saves[0].Lease != "near-lease" {
		t.Fatalf("near tier saves %+v; want the far tier's value with the near tier's lease", saves)
	}
}

func TestTierFailureFallsBackToComputing(t *testing.T) {
	tier := newMapTier()
	tier.loadErr = errors.New("disk on fire")
	var calls atomic.Int64
	g := newGroup(t, echo(&calls), Options{Tiers: []Tier{tier}, Secret: testSecret})
	r, err := g.Get(context.Background(), []byte("x"))
	if err != nil || r.Source != Computed {
		t.Fatalf("Get: %v %v; want Computed despite the tier", err, r.Source)
	}
	if st := g.Stats(); st.TierErrors != 1 {
		t.Fatalf("TierErrors %d; want 1", st.TierErrors)
	}
}

func TestTierAnswerIsDelivered(t *testing.T) {
	tier := newMapTier()
	tier.answer = errors.New("another node's computation failed")
	var calls atomic.Int64
	g := newGroup(t, echo(&calls), Options{Tiers: []Tier{tier}, Secret: testSecret})
	_, err := g.Get(context.Background(), []byte("x"))
	if err == nil || err.Error() != "another node's computation failed" || calls.Load() != 0 {
		t.Fatalf("Get: %v with %d calls; want the tier's answer and no call", err, calls.Load())
	}
}

func TestAbandonedLoadReleasesItsLease(t *testing.T) {
	tier := newMapTier()
	tier.block = make(chan struct{})
	tier.deaf = true // the load returns a lease after its waiters have gone
	tier.lease = "L"
	tier.loadCtxs = make(chan context.Context, 2)
	var calls atomic.Int64
	g := newGroup(t, echo(&calls), Options{Tiers: []Tier{tier}, Secret: testSecret})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := g.Get(ctx, []byte("x"))
		done <- err
	}()
	lctx := <-tier.loadCtxs
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Get: %v", err)
	}
	<-lctx.Done() // the load is cancelled with its last waiter
	eventually(t, "nothing in flight", func() bool { return g.Stats().InFlight == 0 })
	close(tier.block)
	eventually(t, "the lease released", func() bool {
		saves := tier.savesCopy()
		return len(saves) == 1 && saves[0].Lease == "L" && errors.Is(saves[0].Err, context.Canceled)
	})
	// The next request loads again and computes.
	if r, err := g.Get(context.Background(), []byte("x")); err != nil || r.Source != Computed {
		t.Fatalf("Get after abandonment: %v %v", err, r.Source)
	}
}

func TestShutdownEndsLoads(t *testing.T) {
	tier := newMapTier()
	tier.block = make(chan struct{})
	var calls atomic.Int64
	g, err := New(echo(&calls), Options{Tiers: []Tier{tier}, Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, err := g.Get(context.Background(), []byte("x"))
		done <- err
	}()
	eventually(t, "a load", func() bool { return tier.loads.Load() == 1 })
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("Get during Close: %v; want ErrClosed", err)
	}
}

func TestNamespacesAndVersionsKeepResultsApart(t *testing.T) {
	var calls atomic.Int64
	var scopes sync.Map
	fn := func(ctx context.Context, in []byte) ([]byte, error) {
		calls.Add(1)
		s, ok := RequestScope(ctx)
		if !ok {
			t.Error("RequestScope: no scope in a computation's context")
		}
		scopes.Store(s, true)
		return []byte(s.Namespace + "/" + s.Version + ":" + string(in)), nil
	}
	g := newGroup(t, fn, Options{Version: "v1"})
	a, err := g.Namespace("a", "")
	if err != nil {
		t.Fatal(err)
	}
	b2, err := g.Namespace("b", "v2")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		get  func(context.Context, []byte) (Result, error)
		want string
	}{{g.Get, "/v1:x"}, {a.Get, "a/v1:x"}, {b2.Get, "b/v2:x"}} {
		r, err := c.get(context.Background(), []byte("x"))
		if err != nil || string(r.Value) != c.want {
			t.Errorf("got %q, %v; want %q", r.Value, err, c.want)
		}
	}
	if calls.Load() != 3 {
		t.Errorf("%d calls for one input in 3 namespaces; want 3", calls.Load())
	}
	ka, _ := a.KeyOf([]byte("x"))
	kd, _ := g.KeyOf([]byte("x"))
	if ka == kd {
		t.Error("one key for an input in two namespaces")
	}
	if again, _ := g.Namespace("a", "v1"); again != a {
		t.Error("Namespace made a second handle for the same pair")
	}
	for _, bad := range []struct{ ns, v string }{{"has space", ""}, {"ok", "tab\t"}, {"_", ""}, {string(make([]byte, LimitNameLength+1)), ""}} {
		if _, err := g.Namespace(bad.ns, bad.v); !errors.Is(err, ErrBadNamespace) {
			t.Errorf("Namespace(%q, %q): %v; want ErrBadNamespace", bad.ns, bad.v, err)
		}
	}
	// Forget makes the memory's results unreachable.
	a.Forget()
	if r, _ := a.Get(context.Background(), []byte("x")); r.Source != Computed {
		t.Errorf("after Forget: %v; want Computed", r.Source)
	}
}

func TestNamespaceLimit(t *testing.T) {
	g := newGroup(t, echo(new(atomic.Int64)), Options{})
	var err error
	for i := 0; i < LimitNamespaces && err == nil; i++ {
		_, err = g.Namespace(fmt.Sprint("n", i), "")
	}
	if !errors.Is(err, ErrBadNamespace) {
		t.Fatalf("after %d namespaces: %v; want ErrBadNamespace", LimitNamespaces, err)
	}
}

func TestNamespaceTTL(t *testing.T) {
	tier := newMapTier()
	var calls atomic.Int64
	g := newGroup(t, echo(&calls), Options{NamespaceTTL: map[string]time.Duration{"short": 30 * time.Millisecond}, Tiers: []Tier{tier}, Secret: testSecret})
	n, _ := g.Namespace("short", "")
	if r, _ := n.Get(context.Background(), []byte("x")); r.Source != Computed || string(r.Value) != "r:x" {
		t.Fatalf("first: %v %q", r.Source, r.Value)
	}
	if r, _ := n.Get(context.Background(), []byte("x")); r.Source != Hit || string(r.Value) != "r:x" {
		t.Fatalf("second: %v %q; want a hit without the expiry", r.Source, r.Value)
	}
	saves := tier.savesCopy()
	if len(saves) != 1 || saves[0].Expires.IsZero() {
		t.Fatalf("saves %+v; want one with an expiry", saves)
	}
	time.Sleep(40 * time.Millisecond)
	if st, _, _ := n.Peek([]byte("x")); st != Absent {
		t.Fatalf("after the TTL: Peek %v; want Absent", st)
	}
	if _, err := New(echo(&calls), Options{NamespaceTTL: map[string]time.Duration{"x": -1}}); err == nil {
		t.Error("a negative TTL: want an error")
	}
}

func TestMemoryHitsAreTouched(t *testing.T) {
	tier := newMapTier()
	var calls atomic.Int64
	g, err := New(echo(&calls), Options{Tiers: []Tier{tier}, Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if _, err := g.Get(context.Background(), []byte("hot")); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Close(); err != nil { // Close sends the last reports
		t.Fatal(err)
	}
	k, _ := g.KeyOf([]byte("hot"))
	tier.mu.Lock()
	defer tier.mu.Unlock()
	if n := tier.touched[TierKey{Key: k}]; n != 1 {
		t.Fatalf("touched %d times for 99 hits; want once per TouchInterval", n)
	}
}

func TestDeleteReachesTheTiers(t *testing.T) {
	tier := newMapTier()
	var calls atomic.Int64
	g := newGroup(t, echo(&calls), Options{Tiers: []Tier{tier}, Secret: testSecret})
	g.Get(context.Background(), []byte("x"))
	if !g.Delete([]byte("x")) {
		t.Fatal("Delete: false")
	}
	tier.mu.Lock()
	n := len(tier.m)
	tier.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d results left in the tier after Delete", n)
	}
}
