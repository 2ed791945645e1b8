package coalesce

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/coalesce-go/coalesce/internal/keyhash"
)

// ErrPending is returned by Future.Poll while the result is not ready.
var ErrPending = errors.New("coalesce: result not ready yet")

// Status is what Peek found for an input.
type Status uint8

const (
	// Absent: the input is neither cached nor being computed.
	Absent Status = iota
	// Pending: a computation for the input is queued or running.
	Pending
	// Ready: the result is cached.
	Ready
)

func (s Status) String() string {
	switch s {
	case Absent:
		return "absent"
	case Pending:
		return "pending"
	case Ready:
		return "ready"
	}
	return "Status(?)"
}

// Peek never waits and never starts a computation: it returns Ready with
// the cached value, Pending if a computation is in flight, or Absent. A
// Ready answer counts as an access to the cached entry. The error is
// non-nil only for an input that is too large or a closed Group.
func (g *Group) Peek(input []byte) (Status, []byte, error) {
	if g.def == nil {
		return Absent, nil, ErrNotInitialized
	}
	return g.def.Peek(input)
}

// Peek is Group.Peek in the namespace. It looks in memory only: a result
// kept only by a Tier is Absent until a request loads it (FindKey, by key,
// asks the tiers).
func (n *Namespace) Peek(input []byte) (Status, []byte, error) {
	n.g.stats.peeks.Add(1)
	_, k, err := n.key(input)
	if err != nil {
		return Absent, nil, err
	}
	st, v := n.peek(k)
	return st, v, nil
}

func (n *Namespace) peek(k keyhash.Key) (Status, []byte) {
	g := n.g
	if v, ok := n.fromMemory(k); ok {
		return Ready, v
	}
	sh := g.waits.shard(k)
	sh.mu.Lock()
	_, pending := sh.m[k]
	sh.mu.Unlock()
	if pending {
		return Pending, nil
	}
	return Absent, nil
}

// Future is the handle Start returns for a result that may not be ready.
// Until it is done or cancelled it counts as one waiter of its computation,
// so the computation is not abandoned while a Future is held. A Future is
// safe for concurrent use.
type Future struct {
	g        *Group
	f        *flight // nil if the result was ready when Start returned
	res      Result
	released atomic.Bool
}

// closedChan is returned by Done for futures that were ready at once.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// Start returns at once with a Future for input's result. If the result is
// cached the Future is already done; if a computation is in flight the
// Future joins it; otherwise Start queues a computation and the Future's
// First reports true. Start fails only for bad input, a closed Group, a
// cached error (Options.ErrorTTL), or a full queue (ErrOverloaded).
func (g *Group) Start(input []byte) (*Future, error) {
	if g.def == nil {
		return nil, ErrNotInitialized
	}
	return g.def.Start(input)
}

// Start is Group.Start in the namespace. With tiers, the lookup there
// runs in the background too.
func (n *Namespace) Start(input []byte) (*Future, error) {
	t, err := n.acquire(nil, input)
	if err != nil {
		return nil, err
	}
	return &Future{g: n.g, f: t.f, res: t.res}, nil
}

// First reports whether this Future's Start queued the computation (or,
// with tiers, its lookup there), rather than finding the result cached or
// joining a computation in flight.
func (fu *Future) First() bool { return fu.res.Source == Computed }

// Done returns a channel that is closed when the result is ready.
func (fu *Future) Done() <-chan struct{} {
	if fu.f == nil {
		return closedChan
	}
	return fu.f.done
}

// Poll returns the result if it is ready, or ErrPending without waiting.
func (fu *Future) Poll() (Result, error) {
	if fu.f == nil {
		return fu.res, nil
	}
	select {
	case <-fu.f.done:
		return fu.outcome()
	default:
		return Result{}, ErrPending
	}
}

// Wait blocks until the result is ready or ctx ends. A Wait cut short by
// ctx leaves the Future a waiter: call Wait again later, or Cancel.
func (fu *Future) Wait(ctx context.Context) (Result, error) {
	if fu.f == nil {
		return fu.res, nil
	}
	select {
	case <-fu.f.done:
		return fu.outcome()
	case <-ctx.Done():
		select {
		case <-fu.f.done:
			return fu.outcome()
		default:
			return Result{}, ctx.Err()
		}
	}
}

// Cancel gives up the Future's claim on the result. If it was the last
// waiter, the computation is abandoned (see Options.KeepAbandoned). Cancel
// is idempotent and does nothing once the result is ready.
func (fu *Future) Cancel() {
	if fu.f == nil || !fu.released.CompareAndSwap(false, true) {
		return
	}
	fu.g.leave(fu.f)
}

func (fu *Future) outcome() (Result, error) { return fu.f.outcome(fu.res.Source) }
