package cluster

import "sync/atomic"

// Stats counts what a Tier did since New.
type Stats struct {
	// RemoteHits: Load found the result already in Redis.
	RemoteHits uint64
	// RemoteJoins: Load waited for another node's computation and got
	// its result.
	RemoteJoins uint64
	// NegativeHits: Load found another computation's error, and
	// delivered it instead of computing.
	NegativeHits uint64
	// LeasesTaken: Load took an input's lease, so this node computed it
	// (LeasesStolen included).
	LeasesTaken uint64
	// LeasesStolen: leases taken over from a node found dead.
	LeasesStolen uint64
	// LeasesLost: outcomes rejected because another node had taken the
	// lease meanwhile (this node was taken for dead, or its computation
	// outlived LeaseTTL): fencing at work.
	LeasesLost uint64
	// LeasesReleased: leases given back unused (the computation was
	// cancelled, or its result was not to be stored).
	LeasesReleased uint64
	// Writes: results and errors stored.
	Writes uint64
	// Wakeups: waits ended by an invalidation rather than by polling.
	Wakeups uint64
	// NamespacesDeleted: DeleteNamespace calls that succeeded on this
	// node; NamespacesForgotten: deletions by other nodes passed to the
	// OnForget function.
	NamespacesDeleted, NamespacesForgotten uint64
	// RedisErrors: round trips that failed (timeouts and connection
	// errors included); each one made the Group compute on its own, or,
	// with FailClosed, fail.
	RedisErrors uint64
}

type stats struct {
	remoteHits, remoteJoins, negativeHits      atomic.Uint64
	leasesTaken, leasesStolen, leasesLost      atomic.Uint64
	leasesReleased, writes, wakeups, redisErrs atomic.Uint64
	nsDeleted, nsForgotten                     atomic.Uint64
}

// Stats returns the counters.
func (t *Tier) Stats() Stats {
	s := &t.stats
	return Stats{
		RemoteHits:     s.remoteHits.Load(),
		RemoteJoins:    s.remoteJoins.Load(),
		NegativeHits:   s.negativeHits.Load(),
		LeasesTaken:    s.leasesTaken.Load(),
		LeasesStolen:   s.leasesStolen.Load(),
		LeasesLost:     s.leasesLost.Load(),
		LeasesReleased: s.leasesReleased.Load(),
		Writes:         s.writes.Load(),
		Wakeups:        s.wakeups.Load(),
		RedisErrors:    s.redisErrs.Load(),

		NamespacesDeleted:   s.nsDeleted.Load(),
		NamespacesForgotten: s.nsForgotten.Load(),
	}
}
