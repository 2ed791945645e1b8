package coalesce

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coalesce-go/coalesce/internal/keyhash"
)

// Func computes the result for one input. It must be idempotent: the Group
// calls it once per distinct input while the result is cached, but again
// after an eviction or an error. ctx belongs to the Group, not to any
// caller; it ends on timeout, on Close's grace, or when every waiter left.
// The input must not be retained or modified after Func returns.
type Func func(ctx context.Context, input []byte) ([]byte, error)

// Source tells how a request was served.
type Source uint8

const (
	// Computed: this request started the computation of its result.
	Computed Source = iota + 1
	// Joined: the request waited for a computation another request started.
	Joined
	// Hit: the result was in the cache.
	Hit
	// Loaded: the result came from a Tier behind the memory cache (disk,
	// or another machine's computation).
	Loaded
)

func (s Source) String() string {
	switch s {
	case Computed:
		return "computed"
	case Joined:
		return "joined"
	case Hit:
		return "hit"
	case Loaded:
		return "loaded"
	}
	return fmt.Sprintf("Source(%d)", uint8(s))
}

// Result is a computed value and how it was obtained. Value may be shared
// with the other callers of the same computation: treat it as read-only.
type Result struct {
	Value  []byte
	Source Source
}

// Group coalesces requests for a Func and caches its results. Make one with
// New; the zero Group is not usable. All methods are safe for concurrent
// use; see the package documentation for the cancellation contract.
type Group struct {
	fn     Func
	opts   Options
	hasher keyhash.Hasher
	store  resultStore
	waits  waitTable
	queue  queue
	errs   *errorCache // nil unless Options.ErrorTTL > 0
	def    *Namespace  // the default namespace, with Options.Version
	spaces namespaces
	touch  *toucher // nil unless a tier is a Toucher

	// loadGate orders starting a tier load against Shutdown, so that
	// Shutdown's wait for loads never races with one starting.
	loadGate sync.RWMutex
	loads    sync.WaitGroup

	// baseCtx parents every computation's context; Close cancels it once
	// the grace period is over.
	baseCtx    context.Context
	baseCancel context.CancelFunc
	// loadBase parents the tiers' loads; Shutdown cancels it at once.
	loadBase  context.Context
	loadStop  context.CancelFunc
	closed    atomic.Bool
	closeOnce sync.Once
	wg        sync.WaitGroup // workers
	stopped   chan struct{}  // closed when every worker has exited
	// replacements counts the workers started in place of ones held by an
	// overdue call (Options.MaxOverdue), until those calls return.
	replacements atomic.Int64

	stats counters
}

// New returns a Group that computes results with fn. It starts
// Options.Workers goroutines, which Close stops.
func New(fn Func, opts Options) (*Group, error) {
	if fn == nil {
		return nil, errors.New("coalesce: New needs a non-nil Func")
	}
	resultSizeSet := opts.MaxResultSize != 0
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	hasher, err := keyhash.New(opts.Secret)
	if err != nil {
		return nil, fmt.Errorf("coalesce: %w", err)
	}
	store, maxResult, err := newResultStore(opts, resultSizeSet)
	if err != nil {
		return nil, err
	}
	opts.MaxResultSize = maxResult
	g := &Group{fn: fn, opts: opts, hasher: hasher, store: store}
	g.def = g.newNamespace(hasher, "", opts.Version)
	if opts.ErrorTTL > 0 {
		g.errs = newErrorCache(opts.ErrorTTL, opts.MaxCachedErrors)
	}
	g.waits.init()
	g.queue.init(opts.QueueSize)
	g.baseCtx, g.baseCancel = context.WithCancel(context.Background())
	g.loadBase, g.loadStop = context.WithCancel(context.Background())
	g.stopped = make(chan struct{})
	g.touch = newToucher(opts.Tiers)
	g.wg.Add(opts.Workers)
	for range opts.Workers {
		go g.work()
	}
	return g, nil
}

// Get returns the result for input: from the cache, by joining the
// computation already in flight for the same input, or by starting one and
// waiting for it. If ctx ends first, Get returns ctx.Err() at once and the
// computation goes on for the other waiters.
func (g *Group) Get(ctx context.Context, input []byte) (Result, error) {
	if g.def == nil {
		return Result{}, ErrNotInitialized
	}
	return g.def.Get(ctx, input)
}

// Get is Group.Get in the namespace.
func (n *Namespace) Get(ctx context.Context, input []byte) (Result, error) {
	t, err := n.acquire(ctx, input)
	if err != nil || t.f == nil {
		return t.res, err
	}
	return n.g.wait(ctx, t.f, t.res.Source)
}

// ticket is the outcome of acquire: either a finished result (f == nil) or
// a flight the caller now waits on as Computed or Joined.
type ticket struct {
	key keyhash.Key
	res Result
	f   *flight
}

// acquire answers a request from the cache, or registers the caller as a
// waiter of the input's flight, starting one if there is none.
func (n *Namespace) acquire(ctx context.Context, input []byte) (ticket, error) {
	tk, mk, err := n.key(input)
	if err != nil {
		n.g.stats.request(false)
		return ticket{}, err
	}
	return n.acquireKey(ctx, tk, mk, input)
}

// checkInput checks that g was made by New and that input is not too
// large.
func (g *Group) checkInput(input []byte) error {
	if g.fn == nil {
		return ErrNotInitialized
	}
	if len(input) > g.opts.MaxInputSize {
		return fmt.Errorf("%w: %d bytes; Options.MaxInputSize is %d", ErrInputTooLarge, len(input), g.opts.MaxInputSize)
	}
	return nil
}

// acquireKey is acquire once the request has been checked and hashed (tk
// is its key in the tiers, k in memory); it counts the request. ctx may be
// nil (Start), in which case it is not consulted.
func (n *Namespace) acquireKey(ctx context.Context, tk, k keyhash.Key, input []byte) (t ticket, err error) {
	g := n.g
	defer func() { g.stats.request(err == nil && t.res.Source == Hit) }()
	t.key = k
	if v, ok := n.fromMemory(k); ok {
		g.touch.hit(n, tk)
		t.res = Result{Value: v, Source: Hit}
		return t, nil
	}
	if ctx != nil && ctx.Err() != nil {
		return t, ctx.Err()
	}

	sh := g.waits.shard(k)
	sh.mu.Lock()
	// The gauges move under the lock, as complete and leave move them, so a
	// Stats call never sees them below zero.
	f := sh.m[k]
	if f != nil && f.state != answered {
		f.waiters++
		g.stats.waiters.Add(1)
		sh.mu.Unlock()
		g.stats.joined.Add(1)
		t.f, t.res.Source = f, Joined
		return t, nil
	}
	// The result may have been stored, and its flight removed, between the
	// lookup above and taking the lock; complete does both under this lock.
	// Contains first: the lookup above already counted this request as an
	// access, and the policy must see one request once.
	if g.store.Contains(k) {
		if v, ok := n.fromMemory(k); ok {
			sh.mu.Unlock()
			t.res = Result{Value: v, Source: Hit}
			return t, nil
		}
	}
	if g.errs != nil {
		if err := g.errs.get(k); err != nil {
			sh.mu.Unlock()
			g.stats.cachedErrors.Add(1)
			return t, err
		}
	}
	if f != nil {
		// The input's last call still runs after its waiters were answered:
		// wait for it in its successor rather than start a second call.
		t.f, t.res.Source = g.successorLocked(f, input)
		sh.mu.Unlock()
		if t.res.Source == Joined {
			g.stats.joined.Add(1)
		}
		return t, nil
	}
	f = &flight{
		key:      k,
		tkey:     tk,
		ns:       n,
		input:    append([]byte(nil), input...),
		queuedAt: time.Now(),
		done:     make(chan struct{}),
		waiters:  1,
	}
	load := len(g.opts.Tiers) > 0
	if load {
		f.state = loading
		f.loadCtx, f.cancel = g.loadContext()
	}
	if err := g.queue.push(f, g.opts.BlockWhenFull); err != nil {
		sh.mu.Unlock()
		if f.cancel != nil {
			f.cancel()
		}
		if errors.Is(err, ErrOverloaded) {
			g.stats.overloaded.Add(1)
		}
		return t, err
	}
	sh.m[k] = f
	g.stats.inFlight.Add(1)
	g.stats.waiters.Add(1)
	sh.mu.Unlock()
	if load {
		g.startLoad(f)
	}
	t.f, t.res.Source = f, Computed
	return t, nil
}

// wait blocks until f finishes or ctx ends.
func (g *Group) wait(ctx context.Context, f *flight, src Source) (Result, error) {
	select {
	case <-f.done:
	case <-ctx.Done():
		select {
		case <-f.done: // finished at the same moment: prefer the result
		default:
			g.leave(f)
			return Result{}, ctx.Err()
		}
	}
	return f.outcome(src)
}

// outcome is a finished flight's answer to a waiter that joined it as src.
func (f *flight) outcome(src Source) (Result, error) {
	if f.err != nil {
		return Result{}, f.err
	}
	if f.inherited {
		src = Joined
	}
	if f.loaded && src == Computed {
		src = Loaded
	}
	return Result{Value: f.val, Source: src}, nil
}

// Delete removes the cached result (and any cached error) for input, and
// reports whether a result was cached. A computation of input already
// running when Delete is called may have read what the caller is deleting
// for: its result still goes to its waiters, but is not cached.
func (g *Group) Delete(input []byte) bool {
	if g.def == nil {
		return false
	}
	return g.def.Delete(input)
}

// Delete is Group.Delete in the namespace. With tiers, the result is
// deleted from every tier that can delete (see TierDeleter) too; their
// errors are counted in Stats.TierErrors.
func (n *Namespace) Delete(input []byte) bool {
	g := n.g
	tk := n.hasher.Sum(input)
	k := n.memKey(tk)
	found := false
	for _, t := range g.opts.Tiers {
		if d, ok := t.(TierDeleter); ok {
			ok, err := d.Delete(n.tierKey(tk))
			if err != nil {
				g.stats.tierErrors.Add(1)
			}
			found = found || ok
		}
	}
	sh := g.waits.shard(k)
	sh.mu.Lock()
	if f := sh.m[k]; f != nil && (f.state == loading || f.state == running || f.state == answered) {
		f.deleted = true
	}
	sh.mu.Unlock()
	if g.errs != nil {
		g.errs.delete(k)
	}
	return g.store.Delete(k) || found
}

// Close is Shutdown without a deadline: it returns only when every call of
// Func has returned. Close must not be called from inside Func, which it
// would wait for.
func (g *Group) Close() error {
	return g.Shutdown(context.Background())
}

// Shutdown stops accepting requests (they fail with ErrClosed), fails the
// inputs still queued, and the requests waiting behind an overdue call,
// with ErrClosed, lets running computations finish (cancelling their
// contexts after Options.CloseGrace, which answers their waiters with
// ErrClosed at once), and returns nil when every goroutine the Group
// started has exited. If ctx ends first, Shutdown returns ctx.Err() and the
// Group goes on closing in the background: a Func that ignores its context
// keeps its worker until it returns. Calling Shutdown or Close again waits
// again.
func (g *Group) Shutdown(ctx context.Context) error {
	if g.fn == nil {
		return nil
	}
	g.closeOnce.Do(func() {
		g.loadGate.Lock()
		g.closed.Store(true)
		g.loadGate.Unlock()
		for _, f := range g.queue.close() {
			g.failQueued(f)
		}
		// After the queue is closed, so that a cancelled load cannot slip
		// its input in before: it fails with ErrClosed instead.
		g.loadStop()
		g.failSuccessors()
		if g.opts.CloseGrace < 0 {
			g.baseCancel()
		}
		go func() {
			if grace := g.opts.CloseGrace; grace > 0 {
				timer := time.AfterFunc(grace, g.baseCancel)
				g.wg.Wait()
				timer.Stop()
			} else {
				g.wg.Wait()
			}
			g.loads.Wait()
			g.touch.stop()
			g.baseCancel()
			close(g.stopped)
		}()
	})
	select {
	case <-g.stopped:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
