package coalesce

import (
	"context"
	"sync"
	"time"

	"github.com/coalesce-go/coalesce/internal/keyhash"
)

type flightState uint8

const (
	queued flightState = iota
	running
	finished
)

// A flight is one computation in progress and everything its waiters share.
// It is reachable from the wait table only until it finishes; afterwards the
// waiters hold the last references, so nothing of it (the channel included)
// outlives them.
type flight struct {
	key      keyhash.Key
	input    []byte
	queuedAt time.Time
	done     chan struct{} // closed once val and err are set

	// val and err are written once, before done is closed, and only read
	// after it is closed.
	val []byte
	err error

	// Guarded by the wait-table shard that holds the key.
	state   flightState
	waiters int
	cancel  context.CancelFunc // set when running
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
