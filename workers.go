package coalesce

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"
)

// queue is the FIFO of flights waiting for a worker. It holds each distinct
// input once; identical requests join the flight instead. A flight abandoned
// while queued stays in the slice until a worker pops and skips it, but it
// stops counting against the limit at once.
type queue struct {
	mu     sync.Mutex
	cond   sync.Cond
	items  []*flight
	head   int
	live   int // queued flights not yet started or abandoned
	limit  int
	closed bool
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
	if !block && q.live >= q.limit {
		return fmt.Errorf("%w (%d inputs queued; Options.QueueSize is %d)", ErrOverloaded, q.live, q.limit)
	}
	q.items = append(q.items, f)
	q.live++
	q.cond.Signal()
	return nil
}

// pop blocks until a flight is queued and returns it, or returns nil once
// the queue is closed.
func (q *queue) pop() *flight {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		if q.head < len(q.items) {
			f := q.items[q.head]
			q.items[q.head] = nil
			q.head++
			if q.head == len(q.items) {
				q.items, q.head = q.items[:0], 0
			}
			return f
		}
		if q.closed {
			return nil
		}
		q.cond.Wait()
	}
}

// leave records that a queued flight started or was abandoned. The caller
// holds the flight's wait-shard lock and has just moved it out of queued, so
// each flight leaves exactly once.
func (q *queue) leave() {
	q.mu.Lock()
	q.live--
	q.mu.Unlock()
}

func (q *queue) length() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.live
}

// close stops the queue and returns the flights still in it.
func (q *queue) close() []*flight {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	rest := append([]*flight(nil), q.items[q.head:]...)
	clear(q.items)
	q.items, q.head = nil, 0
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
		g.run(f)
	}
}

// run computes one flight and delivers its outcome.
func (g *Group) run(f *flight) {
	sh := g.waits.shard(f.key)
	sh.mu.Lock()
	if f.state != queued { // abandoned or failed by Close while queued
		sh.mu.Unlock()
		return
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
	g.queue.leave()
	sh.mu.Unlock()
	defer cancel()
	g.stats.queueWait.Record(time.Since(f.queuedAt))

	// When the context ends (timeout, Close's grace expiring, or the last
	// waiter leaving), the waiters are answered at once, even if fn does not
	// return for a while. The callback runs in a goroutine of its own; the
	// worker waits for it below so that Close never leaves one behind.
	callbackDone := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(callbackDone)
		g.finish(f, nil, g.contextFailure(ctx))
	})

	start := time.Now()
	val, err := g.call(ctx, f.input)
	g.stats.computeTime.Record(time.Since(start))
	if !stop() {
		<-callbackDone
	}
	if err != nil && ctx.Err() != nil {
		err = g.contextFailure(ctx)
	}
	g.finish(f, val, err)
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

// finish delivers the outcome of a running flight, unless another path (a
// timeout, Close, the last waiter leaving) already did. A result is stored
// in the cache before the flight leaves the wait table, both under the
// shard lock, so a request arriving in between finds one or the other and
// never starts a second computation.
func (g *Group) finish(f *flight, val []byte, err error) {
	sh := g.waits.shard(f.key)
	sh.mu.Lock()
	if f.state != running {
		sh.mu.Unlock()
		return
	}
	f.state = finished
	if err == nil {
		if len(val) > g.opts.MaxResultSize {
			err = fmt.Errorf("%w: %d bytes; Options.MaxResultSize is %d", ErrResultTooLarge, len(val), g.opts.MaxResultSize)
		} else if serr := g.store.Set(f.key, val); serr != nil {
			err = fmt.Errorf("%w: the cache refused it: %v", ErrResultTooLarge, serr)
		}
	}
	if err == nil {
		g.stats.computed.Add(1)
	} else {
		g.countFailure(err)
		if g.errs != nil && !errors.Is(err, ErrClosed) && !errors.Is(err, context.Canceled) {
			g.errs.put(f.key, err)
		}
	}
	f.val, f.err = val, err
	g.removeLocked(sh, f)
	sh.mu.Unlock()
	close(f.done)
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

// removeLocked takes a finished flight out of the wait table; its remaining
// waiters stop counting. The caller holds sh.mu.
func (g *Group) removeLocked(sh *waitShard, f *flight) {
	if sh.m[f.key] == f {
		delete(sh.m, f.key)
		g.stats.inFlight.Add(-1)
	}
	g.stats.waiters.Add(-int64(f.waiters))
	f.waiters = 0
}

// leave is called by a waiter whose context ended before the result came.
func (g *Group) leave(f *flight) {
	sh := g.waits.shard(f.key)
	sh.mu.Lock()
	if f.state == finished {
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
	if f.state == queued {
		g.queue.leave()
	} else {
		f.cancel()
	}
	f.state = finished
	f.err = context.Canceled
	g.removeLocked(sh, f)
	g.stats.abandoned.Add(1)
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
	f.state = finished
	f.err = fmt.Errorf("%w: the input was still queued", ErrClosed)
	g.queue.leave()
	g.removeLocked(sh, f)
	sh.mu.Unlock()
	close(f.done)
}
