package sim

import (
	"context"
	"fmt"
)

// Kind is how a design served one request.
type Kind uint8

// The kinds of service. A design that does not say reports what its code
// path shows: Hit when the result came from a cache without waiting for a
// computation, Joined when the request waited for a computation another
// request started, Miss when its own computation ran.
const (
	Hit Kind = iota
	Joined
	Miss
	numKinds
)

func (k Kind) String() string {
	switch k {
	case Hit:
		return "hit"
	case Joined:
		return "joined"
	case Miss:
		return "miss"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// taskFunc computes the result of an input; every design calls it for each
// computation, and the replay counts the calls.
type taskFunc func(ctx context.Context, input []byte) ([]byte, error)

// design is one implementation under comparison. get is called from many
// goroutines at once; close is called once, after every get has returned,
// and must stop every goroutine the design started.
type design interface {
	get(ctx context.Context, input []byte) ([]byte, Kind, error)
	close()
}

// getFunc is the get of a design.
type getFunc func(ctx context.Context, input []byte) ([]byte, Kind, error)

// agentDesign is a design whose agents each hold their own handle to it,
// as separate programs each hold their own connections to a daemon. The
// replay calls forAgent once per agent before the run's clock starts, with
// the agent's share of InFlight, and sends the agent's requests through
// the function it returns instead of get.
type agentDesign interface {
	design
	forAgent(agent, slots int) (getFunc, error)
}

// designParams is what every design is built from: the same task, worker
// count and cache budget for all.
type designParams struct {
	task         taskFunc
	workers      int
	cacheEntries int // CacheBytes divided by the size of an entry
	cacheBytes   int64
	maxInput     int    // the longest input of the stream
	output       int    // the size of every result
	redis        string // the cluster design's Redis, host:port
	nodes        int    // the cluster design's nodes
}

// designSpec names a design and builds it.
type designSpec struct {
	name  string // short, for flags and tables
	title string // one line, for reports
	build func(designParams) (design, error)
}

// designs lists the compared designs in the order they run.
var designs = []designSpec{
	{"none", "no coalescing: every request computed by a bounded pool", newNoCoalescing},
	{"user", "the user's design: N queues, consistent hashing, adjacent coalescing, per-worker cache behind the queue", newUserDesign},
	{"singleflight", "golang.org/x/sync/singleflight + hashicorp/golang-lru/v2, semaphore of workers", newSingleflightLRU},
	{"otter", "maypok86/otter/v2 with its loader, semaphore of workers inside the loader", newOtterLoader},
	{"coalesce", "this project's library (github.com/coalesce-go/coalesce)", newCoalesce},
	{"daemon", "the same library behind its daemon: server.New on 127.0.0.1, each agent a client.Client over HTTP keep-alive", newDaemon},
	{"cluster", "the library on N nodes sharing one Redis through the cluster tier, the agents spread over the nodes", newCluster},
}

// DefaultDesigns returns the designs a run has when none are named: all of
// them, except cluster when there is no Redis to run it on.
func DefaultDesigns(redis bool) []string {
	var names []string
	for _, d := range designs {
		if d.name != "cluster" || redis {
			names = append(names, d.name)
		}
	}
	return names
}

// DesignNames returns the names of the designs, in the order they run.
func DesignNames() []string {
	names := make([]string, len(designs))
	for i, d := range designs {
		names[i] = d.name
	}
	return names
}

func lookupDesign(name string) (designSpec, bool) {
	for _, d := range designs {
		if d.name == name {
			return d, true
		}
	}
	return designSpec{}, false
}

// entryOverhead estimates the bytes a cache spends per entry beyond the
// result: a 16-byte hashed key and the map and list bookkeeping. It turns
// the cache budget into the entry count the entry-counting caches take.
const entryOverhead = 96
