// Package cluster is a shared Tier for coalesce on Redis (or any server
// that speaks its protocol: Valkey, KeyDB, Dragonfly): each distinct input
// is computed once across machines, and a result computed anywhere is a
// hit everywhere.
//
// Put a Tier behind every node's Group, with the same Options.Secret on
// all of them (SharedSecret hands one out through Redis):
//
//	t, err := cluster.New(ctx, cluster.Options{Addr: "10.0.0.5:6379"})
//	secret, err := t.SharedSecret(ctx)
//	g, err := coalesce.New(fn, coalesce.Options{Tiers: []coalesce.Tier{t}, Secret: secret})
//
// The one thing to know: the cross-node lease only saves duplicate work.
// The computations are idempotent, so a lease lost to a crash, a pause or
// Redis itself costs at most one extra computation, never a wrong answer;
// and when Redis is unreachable each node computes on its own (or refuses,
// with Options.FailClosed). docs/CLUSTER.md has the protocol and its
// failure cases.
package cluster
