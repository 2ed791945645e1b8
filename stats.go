package coalesce

import (
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/coalesce-go/coalesce/internal/histogram"
)

// Stats is a snapshot of a Group's counters. Counters only grow; gauges
// (Entries, Bytes, InFlight, Queued, Waiters) are read at the moment of the
// call.
type Stats struct {
	Requests     uint64 // Get and Start calls, and inputs of GetMany
	Hits         uint64 // requests answered from the cache
	Joined       uint64 // requests that waited for another's computation
	Computed     uint64 // computations that returned a result
	Uncached     uint64 // results delivered but not cached: over Options.MaxResultSize
	Errors       uint64 // computations that failed (panics and timeouts included)
	Panics       uint64 // computations that panicked
	Timeouts     uint64 // computations that exceeded Options.TaskTimeout
	CachedErrors uint64 // requests answered with a cached error (Options.ErrorTTL), or a tier's (TierResult.Err)
	Overloaded   uint64 // requests refused with ErrOverloaded
	Abandoned    uint64 // computations dropped because every waiter left
	Peeks        uint64 // Peek calls
	Evictions    uint64 // results evicted from the cache to make room
	Loaded       uint64 // results found in a Tier on a memory miss (Options.Tiers)
	TierErrors   uint64 // failed or panicking calls of a Tier's Load, Save or Delete

	Entries    int   // results in the cache
	Bytes      int64 // memory the cache holds, bookkeeping included
	CacheBytes int64 // the cache's budget (Options.CacheBytes)
	InFlight   int   // computations queued or running
	Queued     int   // computations waiting for a worker
	Waiters    int   // callers and Futures waiting for a computation
	// Overdue counts calls of Func still running after their waiters were
	// answered (TaskTimeout, abandonment, Close). A call that ignores its
	// context stays here until it returns, holding its worker: a value that
	// stays above zero names a hung function.
	Overdue int

	QueueWait   Latency // from queueing a computation to a worker starting it
	ComputeTime Latency // time spent in Func
}

// Latency summarizes a distribution of durations. Quantiles are upper
// bounds of log-linear buckets: within 12.5% of the true value.
type Latency struct {
	Count                    uint64
	Mean, P50, P90, P99, Max time.Duration
}

// Stats returns a snapshot of the Group's counters.
func (g *Group) Stats() Stats {
	if g.fn == nil {
		return Stats{}
	}
	c := &g.stats
	var others, hits uint64
	for i := range c.stripes {
		others += c.stripes[i].others.Load()
		hits += c.stripes[i].hits.Load()
	}
	su := g.store.usage()
	return Stats{
		Requests:     hits + others,
		Hits:         hits,
		Joined:       c.joined.Load(),
		Computed:     c.computed.Load(),
		Uncached:     c.uncached.Load(),
		Errors:       c.errors.Load(),
		Panics:       c.panics.Load(),
		Timeouts:     c.timeouts.Load(),
		CachedErrors: c.cachedErrors.Load(),
		Overloaded:   c.overloaded.Load(),
		Abandoned:    c.abandoned.Load(),
		Peeks:        c.peeks.Load(),
		Evictions:    su.evictions,
		Loaded:       c.loaded.Load(),
		TierErrors:   c.tierErrors.Load(),
		Entries:      su.entries,
		Bytes:        su.bytes,
		CacheBytes:   g.opts.CacheBytes,
		InFlight:     int(c.inFlight.Load()),
		Queued:       g.queue.length(),
		Waiters:      int(c.waiters.Load()),
		Overdue:      int(c.overdue.Load()),
		QueueWait:    latency(c.queueWait.Summary()),
		ComputeTime:  latency(c.computeTime.Summary()),
	}
}

func latency(s histogram.Summary) Latency {
	return Latency{Count: s.Count, Mean: s.Mean, P50: s.P50, P90: s.P90, P99: s.P99, Max: s.Max}
}

// counterStripes spreads the per-request counters, which every hit bumps,
// over cache lines so that cores serving hits do not contend on one.
const counterStripes = 16

// counterStripe counts requests as hits and others, so that a request costs
// one atomic add; Requests is their sum.
type counterStripe struct {
	hits   atomic.Uint64
	others atomic.Uint64
	_      [48]byte
}

type counters struct {
	stripes [counterStripes]counterStripe

	joined, computed, errors, panics, timeouts atomic.Uint64
	cachedErrors, overloaded, abandoned, peeks atomic.Uint64
	uncached, loaded, tierErrors               atomic.Uint64
	inFlight, waiters, overdue                 atomic.Int64
	queueWait, computeTime                     histogram.Histogram
}

// stripe picks a stripe with the runtime's per-thread generator: cheaper
// than any shared state, and spread across cores.
func (c *counters) stripe() *counterStripe {
	return &c.stripes[rand.Uint32()%counterStripes]
}

// request counts one request, a hit or not.
func (c *counters) request(hit bool) {
	if hit {
		c.stripe().hits.Add(1)
	} else {
		c.stripe().others.Add(1)
	}
}

// Options returns the options the Group runs with, defaults filled in
// (the Secret left out).
func (g *Group) Options() Options {
	o := g.opts
	o.Secret = nil
	return o
}
