package coalesce

import (
	"context"
	"time"
)

// A Tier is a store of results behind a Group's memory cache: a durable one
// on disk (module github.com/coalesce-go/coalesce/disk) or one shared
// between machines (module github.com/coalesce-go/coalesce/cluster). The
// tiers live in modules of their own so that a program that needs neither
// does not link their dependencies. Options.Tiers lists them, nearest
// first.
//
// On a memory miss the Group calls Load on each tier in turn, once per
// input however many requests wait for it, in a goroutine of its own and
// outside every lock, before the input is queued for a worker: a slow tier
// delays only the requests for that input, and never holds a worker. The
// first tier that finds the result answers every waiter; the result is
// then saved in the nearer tiers (Outcome.Lease nil) and cached in memory.
// If no tier has it, the input is computed, and Save is called on every
// tier with the outcome and the lease that tier's Load returned, before
// the waiters are answered: a tier that makes results durable before Save
// returns (disk with sync=always) thus makes every answered result
// durable.
//
// Tiers are keyed by TierKey; a Group with tiers needs Options.Secret, so
// that the keys mean the same in the next process and on other machines.
//
// Implementations must be safe for concurrent use. An error returned by
// Load or Save is counted (Stats.TierErrors) and otherwise ignored: the
// Group serves from memory and computes as if the tier were absent. A tier
// that must fail closed says so with TierResult.Err instead.
type Tier interface {
	// Load looks key up. ctx ends when every waiter has left, when
	// Options.TaskTimeout passes, or when the Group closes. The returned
	// Value is the caller's to keep.
	Load(ctx context.Context, key TierKey) (TierResult, error)

	// Save records the outcome of a computation of key (out.Err non-nil if
	// it failed), or a result found in a farther tier. out.Value is only
	// valid until Save returns. Save is called with a context that no
	// caller can cancel: a tier bounds its own waits.
	Save(ctx context.Context, key TierKey, out Outcome) error
}

// TierKey names a result in a Tier.
type TierKey struct {
	// Namespace is the request's namespace, "" for the default one.
	Namespace string
	// Version is the computation's version (Options.Version, or the one a
	// Namespace handle was made with).
	Version string
	// Key is the keyed hash of the namespace, the version and the input,
	// so a tier that ignores the two strings still keeps them apart.
	Key Key
}

// TierResult is what a Tier's Load found.
type TierResult struct {
	// Found reports that Value is the input's result.
	Found bool
	Value []byte
	// Expires, if not zero, is when the result goes stale (a namespace's
	// TTL); the memory cache drops it then.
	Expires time.Time
	// Err, if not nil, is delivered to every waiter instead of computing:
	// an error another process's computation of the input returned, or a
	// tier's refusal to let the input be computed without it (failing
	// closed).
	Err error
	// Lease is handed back to this tier's Save after the computation:
	// whatever the tier needs to recognise its own claim on the input
	// (a fencing token, say). Nil for none.
	Lease any
}

// Outcome is what a Tier's Save records.
type Outcome struct {
	Value []byte
	Err   error
	// Expires, if not zero, is when the result goes stale.
	Expires time.Time
	// Lease is what this tier's Load returned for the computation, or nil
	// if Save is promoting a result found in a farther tier.
	Lease any
}

// A TierPeeker is a Tier that can answer for a key without taking part in
// its computation: Peek reports what Load would find (a result, or an
// error the tier keeps for the key), but takes no lease, never waits for
// another process's computation and starts none. FindKey asks the tiers
// that are TierPeekers, so that a result kept only by a tier (on disk
// after a restart, say) can be found by its key alone.
type TierPeeker interface {
	Peek(ctx context.Context, key TierKey) (TierResult, error)
}

// A Toucher is a Tier that wants to know which results are used while
// they are in memory, so that its own eviction counts memory hits as uses.
// The Group calls Touched from one goroutine with batches of keys sampled
// from its hits: each key at most about once per TouchInterval, and hits
// are dropped rather than slowed when the Toucher falls behind.
type Toucher interface {
	Touched(keys []TierKey)
}

// TouchInterval is how often, at most, a Toucher hears of the same key.
const TouchInterval = time.Minute
