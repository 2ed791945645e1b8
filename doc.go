// Package coalesce computes each distinct input once, hands the one result to
// every caller that asked for it, and keeps results in a memory-bounded cache.
//
// A [Group] joins three things that usually come separately: a result table
// in front of the workers (a hit is answered at once, never queued behind
// work), a wait table that lets every identical request in flight share one
// computation (not only adjacent ones), and a bounded pool of workers that
// runs the computations. An entry of the wait table lives exactly as long as
// its computation: the result is stored in the cache before the entry is
// removed, so no second computation can start in between, and all waiters
// are woken at once by closing one channel.
//
// # Concurrency and cancellation
//
// All methods of a Group are safe for concurrent use. A computation never
// runs on a caller's context: it runs on a context of the Group's own, so a
// caller that gives up does not fail the others. A caller whose context ends
// returns that context's error at once; the other callers keep waiting. When
// the last caller waiting for a computation has left, the computation's
// context is cancelled (or, with [Options.KeepAbandoned], it runs on to fill
// the cache).
//
// At most one call of Func per input runs at any moment, counting a call as
// running until Func returns, whatever happened to its waiters. When a
// call's waiters have been answered early ([Options.TaskTimeout], every
// waiter gone, or Close) but Func has not returned, the call is overdue
// ([Stats].Overdue): a request for the same input waits for it, bounded by
// its own context and by TaskTimeout, and gets its result if it returns one;
// if it returns none, the waiting requests start a fresh call. A Func that
// ignores its context therefore holds one worker per hung input: with
// Workers distinct inputs hung, misses wait in the queue (hits are still
// answered) until a call returns. [Options.MaxOverdue] lets the pool start
// a worker in place of one held by an overdue call, for that many such
// calls at a time; beyond the bound, hung calls hold their workers, so that
// they cannot grow without limit. Bound Func with its context, and watch
// Stats.Overdue.
//
// [Group.Close] stops new work, fails queued work with [ErrClosed], lets
// running computations finish (or cancels them after [Options.CloseGrace])
// and returns once no goroutine of the Group is left; [Group.Shutdown] does
// the same with a deadline, for a Func that ignores its context.
//
// Keys are 128-bit keyed HighwayHash values of the inputs; see [Options.Secret]
// for why a caller cannot poison another caller's result through a collision.
//
// # Namespaces, versions and tiers
//
// Every request belongs to a [Namespace] and a version of the computation
// ([Options.Version]); both are hashed into the key, so results of one are
// never served for another, and bumping the version retires every older
// result at once. Behind the memory cache, [Options.Tiers] lists slower
// stores: a disk that keeps results across restarts and crashes (module
// github.com/coalesce-go/coalesce/disk) and a Redis shared by several
// machines, so that each input is computed once across all of them (module
// github.com/coalesce-go/coalesce/cluster). A tier is asked once per
// missed input, in a goroutine of its own, before the input is queued; a
// tier's failure costs a computation, never an answer. See [Tier].
package coalesce
