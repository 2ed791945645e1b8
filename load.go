package coalesce

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/coalesce-go/coalesce/internal/keyhash"
)

// A TierDeleter is a Tier that can delete one result: Delete then removes
// it there too.
type TierDeleter interface {
	Delete(key TierKey) (bool, error)
}

// errStale is the outcome a tier is told of when Delete ran during the
// computation: the result may predate what was deleted, so it is not
// stored, and the computation counts as cancelled (a lease is released,
// not turned into a negative entry).
var errStale = fmt.Errorf("%w: Delete ran during the computation, so its result is not stored", context.Canceled)

func (n *Namespace) tierKey(tk keyhash.Key) TierKey {
	return TierKey{Namespace: n.name, Version: n.version, Key: Key{tk}}
}

// loadContext is the context of a flight's tier loads: it ends when every
// waiter leaves (its cancel), at Options.TaskTimeout, or at Shutdown.
func (g *Group) loadContext() (context.Context, context.CancelFunc) {
	if d := g.opts.TaskTimeout; d > 0 {
		return context.WithTimeout(g.loadBase, d)
	}
	return context.WithCancel(g.loadBase)
}

// startLoad looks a loading flight up in the tiers in a goroutine of its
// own: a tier's wait (a disk read, another machine's computation) then
// delays only this input's requests, never a worker or a hit.
func (g *Group) startLoad(f *flight) {
	g.loadGate.RLock()
	if g.closed.Load() {
		g.loadGate.RUnlock()
		g.endLoad(f, TierResult{}, false, nil)
		return
	}
	g.loads.Add(1)
	g.loadGate.RUnlock()
	go func() {
		defer g.loads.Done()
		g.load(f)
	}()
}

// load asks each tier in turn, stopping at the first that answers.
func (g *Group) load(f *flight) {
	defer f.cancel()
	tk := f.ns.tierKey(f.tkey)
	tiers := g.opts.Tiers
	leases := make([]any, len(tiers))
	var res TierResult
	answered := -1
	for i, t := range tiers {
		r, err := loadFrom(t, f.loadCtx, tk)
		if err != nil {
			if f.loadCtx.Err() != nil {
				break
			}
			g.stats.tierErrors.Add(1)
			continue
		}
		leases[i] = r.Lease
		if r.Found || r.Err != nil {
			res, answered = r, i
			break
		}
	}
	if answered >= 0 && res.Found {
		res.Value = res.Value[:len(res.Value):len(res.Value)] // callers may append to their Value
		for j := range answered {
			g.saveTo(tiers[j], tk, Outcome{Value: res.Value, Expires: res.Expires, Lease: leases[j]})
		}
	} else if answered >= 0 {
		g.releaseLeases(tk, leases[:answered], res.Err)
	}
	if !g.endLoad(f, res, answered >= 0, leases) && answered < 0 {
		g.releaseLeases(tk, leases, context.Canceled)
	}
}

// endLoad moves a flight on once the tiers have been asked: answered
// (ended) with what a tier found, or queued to be computed. It reports
// whether the flight was queued (and so will tell the tiers its outcome).
func (g *Group) endLoad(f *flight, res TierResult, ended bool, leases []any) (queuedToCompute bool) {
	sh := g.waits.shard(f.key)
	sh.mu.Lock()
	switch {
	case f.state == loading && !ended:
		f.leases = leases
		f.state = queued
		f.queuedAt = time.Now() // the queue wait starts now; the tiers' time is not it
		if err := g.queue.loaded(f, true); err != nil {
			g.failLocked(sh, f, fmt.Errorf("%w: the input was being looked up in Options.Tiers", err))
			sh.mu.Unlock()
			close(f.done)
			return false
		}
		sh.mu.Unlock()
		return true
	case f.state == loading:
		g.queue.loaded(f, false)
		if res.Found {
			g.stats.loaded.Add(1)
			g.storeLocked(f, res.Value, res.Expires)
			f.val, f.loaded = res.Value, true
		} else {
			g.stats.cachedErrors.Add(uint64(f.waiters))
			f.err = res.Err
		}
		if sh.m[f.key] == f {
			delete(sh.m, f.key)
		}
		g.stats.inFlight.Add(-1)
		g.finishLocked(f)
		sh.mu.Unlock()
		close(f.done)
		return false
	}
	// Every waiter left while the tiers were asked (leave answered the
	// flight, and closed done): the flight leaves the table, and requests
	// that came meanwhile, waiting in its successor, get what was found or
	// a computation of their own.
	g.queue.loaded(f, false)
	if sh.m[f.key] == f {
		delete(sh.m, f.key)
	}
	if res.Found {
		g.stats.loaded.Add(1)
		g.storeLocked(f, res.Value, res.Expires)
	}
	g.handOnUnlock(sh, f, res.Value, res.Found)
	return false
}

// saveTiers tells every tier the outcome of f's computation, before its
// waiters are answered (see Tier).
func (g *Group) saveTiers(f *flight, val []byte, err error) {
	tiers := g.opts.Tiers
	if len(tiers) == 0 {
		return
	}
	sh := g.waits.shard(f.key)
	sh.mu.Lock()
	deleted := f.deleted
	sh.mu.Unlock()
	if deleted && err == nil {
		val, err = nil, errStale
	}
	tk := f.ns.tierKey(f.tkey)
	out := Outcome{Value: val, Err: err, Expires: f.ns.expiry()}
	for i, t := range tiers {
		out.Lease = nil
		if f.leases != nil {
			out.Lease = f.leases[i]
		}
		if err != nil && out.Lease == nil {
			continue // nothing to record, nothing to release
		}
		g.saveTo(t, tk, out)
	}
}

// releaseLeases tells the tiers that took a lease that no computation
// follows.
func (g *Group) releaseLeases(tk TierKey, leases []any, err error) {
	for i, l := range leases {
		if l != nil {
			g.saveTo(g.opts.Tiers[i], tk, Outcome{Err: err, Lease: l})
		}
	}
}

// loadFrom calls t.Load, turning a panic into an error: a broken tier
// costs a computation, not a goroutine.
func loadFrom(t Tier, ctx context.Context, tk TierKey) (r TierResult, err error) {
	defer func() {
		if p := recover(); p != nil {
			r, err = TierResult{}, fmt.Errorf("coalesce: Tier.Load panicked: %v", p)
		}
	}()
	return t.Load(ctx, tk)
}

// saveTo calls t.Save with a context no caller can cancel, counting its
// failure or panic.
func (g *Group) saveTo(t Tier, tk TierKey, out Outcome) {
	defer func() {
		if recover() != nil {
			g.stats.tierErrors.Add(1)
		}
	}()
	if err := t.Save(context.Background(), tk, out); err != nil {
		g.stats.tierErrors.Add(1)
	}
}

// touchSlots is the size of the toucher's filter of recently reported
// keys: a hot key costs one atomic load per hit once reported.
const touchSlots = 1 << 14

// toucher reports memory hits to the tiers that are Touchers, at most
// about once per TouchInterval per key, dropping reports rather than
// slowing a hit when they fall behind.
type toucher struct {
	tiers   []Toucher
	seen    [touchSlots]atomic.Uint64
	salt    atomic.Uint64 // redrawn every TouchInterval, which forgets seen
	ch      chan TierKey
	done    chan struct{}
	stopped chan struct{}
}

func newToucher(tiers []Tier) *toucher {
	var ts []Toucher
	for _, t := range tiers {
		if x, ok := t.(Toucher); ok {
			ts = append(ts, x)
		}
	}
	if len(ts) == 0 {
		return nil
	}
	t := &toucher{tiers: ts, ch: make(chan TierKey, 4096), done: make(chan struct{}), stopped: make(chan struct{})}
	t.salt.Store(rand.Uint64())
	go t.loop()
	return t
}

// hit notes a memory hit on tk in n.
func (t *toucher) hit(n *Namespace, tk keyhash.Key) {
	if t == nil {
		return
	}
	tag := (tk.Lo ^ t.salt.Load()) | 1 // never 0, the empty slot
	slot := &t.seen[tk.Hi%touchSlots]
	if slot.Load() == tag {
		return
	}
	slot.Store(tag)
	select {
	case t.ch <- n.tierKey(tk):
	default:
	}
}

func (t *toucher) loop() {
	defer close(t.stopped)
	forget := time.NewTicker(TouchInterval)
	defer forget.Stop()
	flush := time.NewTicker(100 * time.Millisecond)
	defer flush.Stop()
	batch := make([]TierKey, 0, 256)
	send := func() {
		if len(batch) == 0 {
			return
		}
		for _, x := range t.tiers {
			touchSafely(x, batch)
		}
		batch = batch[:0]
	}
	for {
		select {
		case <-t.done:
			// Reports still buffered go out too: hits before Close count.
			for {
				select {
				case k := <-t.ch:
					if batch = append(batch, k); len(batch) == cap(batch) {
						send()
					}
				default:
					send()
					return
				}
			}
		case k := <-t.ch:
			if batch = append(batch, k); len(batch) == cap(batch) {
				send()
			}
		case <-flush.C:
			send()
		case <-forget.C:
			t.salt.Store(rand.Uint64())
		}
	}
}

func touchSafely(x Toucher, keys []TierKey) {
	defer func() { _ = recover() }() // a report lost is a use not counted, nothing worse
	x.Touched(keys)
}

// stop ends the loop after a last report.
func (t *toucher) stop() {
	if t == nil {
		return
	}
	close(t.done)
	<-t.stopped
}
