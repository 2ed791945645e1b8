package coalesce

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"
)

// queue is the FIFO of flights waiting for a worker: an intrusive doubly
// linked list, so that a flight abandoned while queued leaves it at once
// (its input with it), nothing is ever copied under the lock, and the
// memory held is exactly the flights in line. It holds each distinct input
// once; identical requests join the flight instead.
type queue struct {
	mu         sync.Mutex
	cond       sync.Cond
	head, tail *flight // head is popped next
	n          int
	// loading counts flights being looked up in the tiers: they hold a
	// place under limit, so that a burst of misses is bounded before the
	// tiers are asked, not after.
	loading int
	limit   int
	closed  bool
}

func (q *queue) init(limit int) {
	q.cond.L = &q.mu
	q.limit = limit
}

// push appends f, or fails with ErrClosed, or with ErrOverloaded if the
// queue is full and block is false. The caller holds f's wait-shard lock.
func (q *queue) push(f *flight, block bool) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	if !block && q.n+q.loading >= q.limit {
		return fmt.Errorf("%w (%d inputs queued; Options.QueueSize is %d)", ErrOverloaded, q.n+q.loading, q.limit)
	}
	if f.state == loading {
		q.loading++ // linked by loaded, once the tiers have not found it
		return nil
	}
	q.link(f, false)
	return nil
}

// loaded gives up the place a loading flight held, linking f in it if
// link is set. It fails only with ErrClosed, when link is set.
func (q *queue) loaded(f *flight, link bool) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.loading--
	if !link {
		return nil
	}
	if q.closed {
		return ErrClosed
	}
	q.link(f, false)
	return nil
}

// pushFront puts f first in line whatever the limit: it is a successor
// whose waiters were admitted while its predecessor ran, and have waited
// for a worker already. It fails only with ErrClosed.
func (q *queue) pushFront(f *flight) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	q.link(f, true)
	return nil
}

func (q *queue) link(f *flight, front bool) {
	switch {
	case q.head == nil:
		q.head, q.tail = f, f
	case front:
		f.qnext, q.head.qprev, q.head = q.head, f, f
	default:
		f.qprev, q.tail.qnext, q.tail = q.tail, f, f
	}
	f.inQueue = true
	q.n++
	q.cond.Signal()
}

func (q *queue) unlink(f *flight) {
	if f.qprev != nil {
		f.qprev.qnext = f.qnext
	} else {
		q.head = f.qnext
	}
	if f.qnext != nil {
		f.qnext.qprev = f.qprev
	} else {
		q.tail = f.qprev
	}
	f.qprev, f.qnext, f.inQueue = nil, nil, false
	q.n--
}

// pop blocks until a flight is queued and returns it, or returns nil once
// the queue is closed.
func (q *queue) pop() *flight {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.head == nil {
		if q.closed {
			return nil
		}
		q.cond.Wait()
	}
	f := q.head
	q.unlink(f)
	return f
}

// remove takes f out of the queue and reports whether it was still there:
// false means a worker has popped it and will find it no longer queued.
// The caller holds f's wait-shard lock.
func (q *queue) remove(f *flight) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !f.inQueue {
		return false
	}
	q.unlink(f)
	return true
}

func (q *queue) length() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// close stops the queue and returns the flights still in it.
func (q *queue) close() []*flight {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	var rest []*flight
	for q.head != nil {
		f := q.head
		q.unlink(f)
		rest = append(rest, f)
	}
	q.cond.Broadcast()
	return rest
}

// work is the loop of one worker goroutine.
func (g *Group) work() {
	defer g.wg.Done()
	for {
		f := g.queue.pop()
		if f == nil {
			return
		}
		if g.run(f) {
			return
		}
	}
}

// run computes one flight and delivers its outcome. It reports whether
// its worker was replaced while the call was overdue, and must exit.
func (g *Group) run(f *flight) (replaced bool) {
	sh := g.waits.shard(f.key)
	sh.mu.Lock()
	if f.state != queued { // abandoned, or failed by Close, after the pop
		sh.mu.Unlock()
		return false
	}
	f.state = running
	var ctx context.Context
	var cancel context.CancelFunc
	if g.opts.TaskTimeout > 0 {
		ctx, cancel = context.WithTimeout(g.baseCtx, g.opts.TaskTimeout)
	} else {
		ctx, cancel = context.WithCancel(g.baseCtx)
	}
	f.cancel = cancel
	sh.mu.Unlock()
	defer cancel()
	g.stats.queueWait.Record(time.Since(f.queuedAt))
	if ctx.Err() != nil {
		// Close cancelled everything between the pop and now: a function
		// handed a dead context could only fail, or ignore it and run on.
		g.complete(f, nil, g.contextFailure(ctx))
		return false
	}

	// When the context ends (timeout, Close's grace expiring, or the last
	// waiter leaving), the waiters are answered at once, even if fn does not
	// return for a while; the flight keeps its place in the wait table
	// until fn returns. The callback runs in a goroutine of its own; the
	// worker waits for it below so that Close never leaves one behind.
	callbackDone := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(callbackDone)
		g.answer(f, g.contextFailure(ctx))
	})

	returned := false
	defer func() {
		if returned {
			return
		}
		// fn called runtime.Goexit (t.FailNow, say): recover cannot stop
		// it, so this goroutine ends once its deferred calls have run. Its
		// waiters learn why, and a new worker takes its place.
		if !stop() {
			<-callbackDone
		}
		if !g.complete(f, nil, ErrGoexit) {
			g.wg.Add(1) // this goroutine has not called Done yet, so Close still waits
			go g.work()
		}
	}()
	start := time.Now()
	f.scoped = scopedContext{ctx, f.ns}
	val, err := g.call(&f.scoped, f.input)
	returned = true
	g.stats.computeTime.Record(time.Since(start))
	if !stop() {
		<-callbackDone
	}
	if err != nil && ctx.Err() != nil {
		err = g.contextFailure(ctx)
	}
	if err == nil {
		// The function may reuse its buffer, and callers may append to the
		// Value they share: each gets the exact-size copy, no spare capacity.
		val = bytes.Clone(val)
		val = val[:len(val):len(val)]
	}
	g.saveTiers(f, val, err)
	return g.complete(f, val, err)
}

// call runs fn, turning a panic into a *PanicError.
func (g *Group) call(ctx context.Context, input []byte) (val []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return g.fn(ctx, input)
}

// contextFailure names why a computation's context ended.
func (g *Group) contextFailure(ctx context.Context) error {
	switch {
	case g.baseCtx.Err() != nil:
		return fmt.Errorf("%w: the computation was cancelled after Options.CloseGrace", ErrClosed)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%w after %v (Options.TaskTimeout)", ErrTimeout, g.opts.TaskTimeout)
	}
	return ctx.Err()
}

// answer delivers err to a running flight's waiters before its function
// has returned (a timeout, Close's grace, or the last waiter leaving). The
// flight stays in the wait table, answered, until complete: the call still
// runs, and a second one must not start beside it.
func (g *Group) answer(f *flight, err error) {
	sh := g.waits.shard(f.key)
	sh.mu.Lock()
	if f.state != running {
		sh.mu.Unlock()
		return
	}
	g.failedLocked(f, err)
	f.err = err
	g.answerLocked(f)
	sh.mu.Unlock()
	close(f.done)
}

// answerLocked moves a running flight to answered: its waiters stop
// counting, and it counts as overdue until its function returns. The
// caller holds the shard lock and closes f.done after releasing it.
func (g *Group) answerLocked(f *flight) {
	f.state = answered
	g.stats.inFlight.Add(-1)
	g.stats.overdue.Add(1)
	g.stats.waiters.Add(-int64(f.waiters))
	f.waiters = 0
	if g.closed.Load() {
		return
	}
	for n := g.replacements.Load(); n < int64(g.opts.MaxOverdue); n = g.replacements.Load() {
		if g.replacements.CompareAndSwap(n, n+1) {
			f.replaced = true
			g.wg.Add(1) // f's worker has not called Done, so the count is positive
			go g.work()
			return
		}
	}
}

// failedLocked counts a computation's failure and caches it for
// Options.ErrorTTL: failures of the computation are cached, cancellations
// by callers or Close are not. The caller holds f's shard lock.
func (g *Group) failedLocked(f *flight, err error) {
	g.countFailure(err)
	if g.errs != nil && !errors.Is(err, ErrClosed) && !errors.Is(err, context.Canceled) {
		g.errs.put(f.key, err)
	}
}

// complete handles the return of a flight's function (or its failure to
// start). A result is stored in the cache before the flight leaves the
// wait table, both under the shard lock, so a request arriving in between
// finds one or the other and never starts a second computation. If the
// waiters were answered already (the flight is answered), a result still
// fills the cache, and the successor's waiters, if any, get it; without a
// result, the successor is queued first in line. complete reports whether
// the calling worker was replaced meanwhile (Options.MaxOverdue).
func (g *Group) complete(f *flight, val []byte, err error) (replaced bool) {
	sh := g.waits.shard(f.key)
	sh.mu.Lock()
	late := f.state == answered
	if !late && f.state != running {
		sh.mu.Unlock()
		return false
	}
	if err == nil {
		g.stats.computed.Add(1)
		g.storeLocked(f, val, time.Time{})
	} else if !late {
		g.failedLocked(f, err)
	}
	if sh.m[f.key] == f {
		delete(sh.m, f.key)
	}
	if late {
		g.stats.overdue.Add(-1)
		if f.replaced {
			g.replacements.Add(-1)
		}
		g.handOnUnlock(sh, f, val, err == nil)
		return f.replaced
	}
	f.val, f.err = val, err
	g.stats.inFlight.Add(-1)
	g.finishLocked(f)
	sh.mu.Unlock()
	close(f.done)
	return false
}

// storeLocked caches a result, unless Delete ran during its computation or
// the cache will not take it: then it is delivered uncached.
func (g *Group) storeLocked(f *flight, val []byte, expires time.Time) {
	if f.deleted {
		return
	}
	if f.ns.ttl > 0 {
		// The memory cache knows no expiry: the namespace's values carry
		// theirs (Namespace.fresh).
		if expires.IsZero() {
			expires = time.Now().Add(f.ns.ttl)
		}
		val = binary.LittleEndian.AppendUint64(append(make([]byte, 0, len(val)+expiryTrailer), val...), uint64(expires.UnixNano()))
	}
	if len(val) > g.opts.MaxResultSize || g.store.Set(f.key, val) != nil {
		g.stats.uncached.Add(1)
		return
	}
	if g.errs != nil {
		g.errs.delete(f.key)
	}
}

// finishLocked answers a flight that is out of the wait table and the
// queue: its waiters stop counting. The caller holds the shard lock and
// closes f.done after releasing it.
func (g *Group) finishLocked(f *flight) {
	f.state = finished
	g.stats.waiters.Add(-int64(f.waiters))
	f.waiters = 0
}

// handOnUnlock finishes an answered flight whose call (or load) has
// ended, and hands on to the requests that arrived meanwhile, waiting in
// its successor: val if ok (and Delete did not make it stale), or a fresh
// start. The caller holds the shard lock, which handOnUnlock releases.
func (g *Group) handOnUnlock(sh *waitShard, f *flight, val []byte, ok bool) {
	f.state = finished
	succ := f.next
	f.next = nil
	if succ == nil {
		sh.mu.Unlock()
		return
	}
	succ.prev = nil
	if succ.timer != nil {
		succ.timer.Stop()
	}
	if ok && !f.deleted {
		succ.val, succ.inherited = val, true
		g.finishLocked(succ)
		sh.mu.Unlock()
		close(succ.done)
		return
	}
	g.startSuccessorLocked(sh, succ)
	sh.mu.Unlock()
}

// failLocked answers a flight of the wait table with err, taking it out.
// The caller holds the shard lock and closes f.done after releasing it.
func (g *Group) failLocked(sh *waitShard, f *flight, err error) {
	f.err = err
	delete(sh.m, f.key)
	g.stats.inFlight.Add(-1)
	g.finishLocked(f)
}

// startSuccessorLocked puts a successor whose predecessor returned without
// a usable result in the wait table and first in the queue, unless an
// error cached meanwhile (Options.ErrorTTL) answers it. The caller holds
// the shard lock.
func (g *Group) startSuccessorLocked(sh *waitShard, s *flight) {
	if g.errs != nil {
		if err := g.errs.get(s.key); err != nil {
			g.stats.cachedErrors.Add(uint64(s.waiters))
			s.err = err
			g.finishLocked(s)
			close(s.done)
			return
		}
	}
	s.state = queued
	s.queuedAt = time.Now()
	if err := g.queue.pushFront(s); err != nil {
		s.err = fmt.Errorf("%w: the input was waiting for an earlier call of it", err)
		g.finishLocked(s)
		close(s.done)
		return
	}
	sh.m[s.key] = s
	g.stats.inFlight.Add(1)
}

func (g *Group) countFailure(err error) {
	g.stats.errors.Add(1)
	var pe *PanicError
	switch {
	case errors.As(err, &pe):
		g.stats.panics.Add(1)
	case errors.Is(err, ErrTimeout):
		g.stats.timeouts.Add(1)
	}
}

// leave is called by a waiter whose context ended before the result came.
func (g *Group) leave(f *flight) {
	sh := g.waits.shard(f.key)
	sh.mu.Lock()
	if f.state == finished || f.state == answered {
		sh.mu.Unlock()
		return
	}
	f.waiters--
	g.stats.waiters.Add(-1)
	if f.waiters > 0 || g.opts.KeepAbandoned {
		sh.mu.Unlock()
		return
	}
	// Nobody is left to receive the result: free the worker (or the queue
	// slot) for work somebody is waiting for.
	g.stats.abandoned.Add(1)
	f.err = context.Canceled
	switch f.state {
	case queued:
		g.queue.remove(f) // if a worker popped it already, run skips it
		delete(sh.m, f.key)
		g.stats.inFlight.Add(-1)
		f.state = finished
	case running:
		// The call counts as running until fn returns (complete).
		g.answerLocked(f)
		f.cancel()
	case loading:
		// The load stops; its goroutine takes the flight out of the table.
		f.state = answered
		f.loadAbandoned = true
		g.stats.inFlight.Add(-1)
		if f.cancel != nil {
			f.cancel()
		}
	case deferred:
		f.prev.next, f.prev = nil, nil
		if f.timer != nil {
			f.timer.Stop()
		}
		f.state = finished
	}
	sh.mu.Unlock()
	close(f.done)
}

// failQueued fails a flight that Close took off the queue.
func (g *Group) failQueued(f *flight) {
	sh := g.waits.shard(f.key)
	sh.mu.Lock()
	if f.state != queued {
		sh.mu.Unlock()
		return
	}
	g.failLocked(sh, f, fmt.Errorf("%w: the input was still queued", ErrClosed))
	sh.mu.Unlock()
	close(f.done)
}
