package coalesce

import (
	"context"
	"sync"
	"time"

	"github.com/coalesce-go/coalesce/internal/keyhash"
)

type flightState uint8

const (
	// queued: in the queue, waiting for a worker.
	queued flightState = iota
	// loading: looked up in the tiers (Options.Tiers) by a goroutine of
	// its own, before it is queued; it holds a place in the queue's bound
	// meanwhile, but no worker.
	loading
	// running: a worker is calling Func; the waiters wait.
	running
	// answered: the waiters have been answered (timeout, abandonment,
	// Close), but Func has not returned. The flight stays in the wait table
	// until it does, so that no second call of the input starts meanwhile;
	// requests that arrive wait in its successor (next).
	answered
	// deferred: a successor, waiting for its predecessor's call to return.
	// It is in neither the wait table nor the queue: its predecessor holds it.
	deferred
	// finished: done is closed and the flight is out of every table.
	finished
)

// A flight is one computation and everything its waiters share. It is
// reachable from the wait table while its call may run, and from the queue
// while it waits for a worker; afterwards the waiters hold the last
// references, so nothing of it (the channel included) outlives them.
type flight struct {
	key      keyhash.Key // in the memory cache and the wait table
	tkey     keyhash.Key // in the tiers: key without the namespace's generation
	ns       *Namespace
	input    []byte
	queuedAt time.Time
	done     chan struct{} // closed once val and err are set

	// val and err are written once, before done is closed, and only read
	// after it is closed.
	val []byte
	err error
	// inherited: the result came from the predecessor's late call, so
	// every waiter joined a computation (Source Joined).
	inherited bool
	// loaded: the result came from a tier (Source Loaded).
	loaded bool
	// leases are what each tier's Load returned, for its Save; nil if the
	// flight was not looked up in the tiers.
	leases []any

	// Guarded by the wait-table shard that holds the key.
	state   flightState
	waiters int
	cancel  context.CancelFunc // set when loading or running
	// loadCtx is the context of the tiers' Loads; loadAbandoned marks a
	// flight answered because every waiter left while it was loading.
	loadCtx       context.Context
	loadAbandoned bool
	// scoped is the context Func runs with, kept here so that telling
	// Func its namespace costs no allocation. Written by the worker before
	// the call.
	scoped scopedContext
	// deleted: Delete ran while Func ran, so its result may predate the
	// deletion: it is delivered but not cached.
	deleted bool
	// replaced: the pool started a worker in place of the one running this
	// overdue call (Options.MaxOverdue), which exits once Func returns.
	replaced bool
	// next is the successor of an answered flight, prev a successor's
	// predecessor; timer bounds a successor's wait by Options.TaskTimeout.
	next, prev *flight
	timer      *time.Timer

	// Guarded by the queue's lock: the links of the queue's list.
	qprev, qnext *flight
	inQueue      bool
}

// waitShards spreads the wait table over independent locks. Misses only
// touch it; hits never do.
const waitShards = 64

type waitShard struct {
	mu sync.Mutex
	m  map[keyhash.Key]*flight
	_  [40]byte // keeps two shards' locks off one cache line
}

// waitTable maps the key of every input being computed to its flight.
type waitTable struct {
	shards [waitShards]waitShard
}

func (t *waitTable) init() {
	for i := range t.shards {
		t.shards[i].m = make(map[keyhash.Key]*flight)
	}
}

func (t *waitTable) shard(k keyhash.Key) *waitShard {
	// Hi, not Lo: the store shards on Lo, and keeping the two independent
	// avoids correlated hot spots.
	return &t.shards[k.Hi%waitShards]
}
