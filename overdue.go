package coalesce

import (
	"fmt"
	"time"
)

// A call is overdue when its waiters have been answered (Options.TaskTimeout
// expired, every waiter left, or Close cancelled it) but Func has not
// returned. It keeps the input's entry in the wait table until it returns,
// so that at most one call of an input runs at any moment, whatever
// happened to its waiters: a client that retries a slow input must not
// take the whole pool.
//
// Requests that arrive meanwhile wait in the overdue call's successor, a
// flight that is neither queued nor running. When the call returns a
// result, it is cached and handed to them (they report Joined); when it
// returns without one (an error, a cancellation, a result Delete made
// stale), the successor is queued first in line and computes afresh. With
// Options.TaskTimeout, a successor waits at most that long for the overdue
// call, then fails with ErrTimeout; each waiter is also bounded by its own
// context.

// successorLocked registers a request as a waiter of f's successor, making
// one if f has none. It returns the successor and the request's Source:
// Computed for the request that made it (it is the one that will start
// the next call if one is needed), Joined for the others. The caller holds
// f's shard lock; f is answered.
func (g *Group) successorLocked(f *flight, input []byte) (*flight, Source) {
	g.stats.waiters.Add(1)
	if s := f.next; s != nil {
		s.waiters++
		return s, Joined
	}
	s := &flight{
		key:      f.key,
		tkey:     f.tkey,
		ns:       f.ns,
		input:    append([]byte(nil), input...),
		queuedAt: time.Now(),
		done:     make(chan struct{}),
		waiters:  1,
		state:    deferred,
		prev:     f,
	}
	f.next = s
	if d := g.opts.TaskTimeout; d > 0 {
		s.timer = time.AfterFunc(d, func() { g.expireSuccessor(s) })
	}
	return s, Computed
}

// expireSuccessor fails a successor still waiting for its predecessor's
// call after Options.TaskTimeout.
func (g *Group) expireSuccessor(s *flight) {
	sh := g.waits.shard(s.key)
	sh.mu.Lock()
	if s.state != deferred {
		sh.mu.Unlock()
		return
	}
	s.err = fmt.Errorf("%w after %v (Options.TaskTimeout): an earlier call of this input is still running past its own deadline", ErrTimeout, g.opts.TaskTimeout)
	s.prev.next, s.prev = nil, nil
	g.finishLocked(s)
	sh.mu.Unlock()
	close(s.done)
}

// failSuccessors fails, for Close, every request waiting behind an overdue
// call: the Group will start no call for them.
func (g *Group) failSuccessors() {
	for i := range g.waits.shards {
		sh := &g.waits.shards[i]
		sh.mu.Lock()
		var failed []*flight
		for _, f := range sh.m {
			s := f.next
			if s == nil {
				continue
			}
			f.next, s.prev = nil, nil
			if s.timer != nil {
				s.timer.Stop()
			}
			s.err = fmt.Errorf("%w: the input was waiting for an earlier call of it", ErrClosed)
			g.finishLocked(s)
			failed = append(failed, s)
		}
		sh.mu.Unlock()
		for _, s := range failed {
			close(s.done)
		}
	}
}
