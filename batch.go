package coalesce

import (
	"context"

	"github.com/coalesce-go/coalesce/internal/keyhash"
)

// GetMany gets the results of several inputs at once and returns them, and
// their errors, in the order of inputs. Every missing input is queued before
// GetMany waits for any, so the computations run in parallel. Duplicates
// inside the batch share one entry (the later ones report Joined, or Hit
// if the first was a hit), and
// inputs already in flight are joined. An error for one input does not fail
// the others. If ctx ends, the inputs not yet done get ctx.Err().
func (g *Group) GetMany(ctx context.Context, inputs [][]byte) ([]Result, []error) {
	if g.def == nil {
		errs := make([]error, len(inputs))
		for i := range errs {
			errs[i] = ErrNotInitialized
		}
		return make([]Result, len(inputs)), errs
	}
	return g.def.GetMany(ctx, inputs)
}

// GetMany is Group.GetMany in the namespace.
func (n *Namespace) GetMany(ctx context.Context, inputs [][]byte) ([]Result, []error) {
	g := n.g
	results := make([]Result, len(inputs))
	errs := make([]error, len(inputs))
	first := make(map[keyhash.Key]int, len(inputs)) // key → index of its first input
	dupOf := make([]int, len(inputs))
	pending := make([]int, 0, len(inputs))
	flights := make([]*flight, len(inputs))

	for i, in := range inputs {
		dupOf[i] = -1
		tk, k, err := n.key(in)
		if err != nil {
			g.stats.request(false)
			errs[i] = err
			continue
		}
		if j, ok := first[k]; ok {
			dupOf[i] = j // counted below, as what its first turns out to be
			continue
		}
		first[k] = i
		t, err := n.acquireKey(ctx, tk, k, in)
		switch {
		case err != nil:
			errs[i] = err
		case t.f == nil:
			results[i] = t.res
		default:
			results[i].Source = t.res.Source
			flights[i] = t.f
			pending = append(pending, i)
		}
	}

	for n, i := range pending {
		results[i], errs[i] = g.wait(ctx, flights[i], results[i].Source)
		if ctx.Err() != nil && errs[i] == ctx.Err() {
			// Leave every flight not yet waited on, so none is kept alive
			// for a caller that has gone.
			for _, j := range pending[n+1:] {
				select {
				case <-flights[j].done:
					results[j], errs[j] = g.wait(ctx, flights[j], results[j].Source)
				default:
					g.leave(flights[j])
					results[j], errs[j] = Result{}, ctx.Err()
				}
			}
			break
		}
	}

	// A duplicate is a hit if its first was one, and otherwise joined the
	// first's computation.
	for i, j := range dupOf {
		switch {
		case j < 0:
		case errs[j] != nil:
			errs[i] = errs[j]
			g.stats.request(false)
		case results[j].Source == Hit:
			results[i] = results[j]
			g.stats.request(true)
		default:
			results[i] = Result{Value: results[j].Value, Source: Joined}
			g.stats.request(false)
			g.stats.joined.Add(1)
		}
	}
	return results, errs
}
