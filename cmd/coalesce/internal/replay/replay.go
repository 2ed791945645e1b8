// Package replay measures hit ratios: it replays key sequences against this
// project's store, an exact LRU, otter v2 and Belady's OPT, at several cache
// sizes, and reports them as a table, JSON or charts.
//
// The one thing to know: every policy sees exactly the same requests, and a
// request is one Get followed, on a miss, by one insert; sizes count
// entries, not bytes.
package replay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/coalesce-go/coalesce/internal/trace"
)

// Options configure Run. The zero value replays the policies of Policies()
// at the default sizes, using every core.
type Options struct {
	// Sizes are the cache sizes in entries, each at least 1. Empty means
	// DefaultSizes of each workload's distinct keys.
	Sizes []int
	// Policies selects and orders the policies reported, from
	// AllPolicies(); empty means Policies().
	Policies []string
	// Parallel bounds the replays running at once. Zero means GOMAXPROCS.
	Parallel int
	// Progress, if not nil, receives a line as each workload completes.
	Progress io.Writer
}

// Result is the outcome of one policy on one workload at one size.
type Result struct {
	Trace    string  `json:"trace"`
	Size     int     `json:"size"`
	Policy   string  `json:"policy"`
	HitRatio float64 `json:"hit_ratio"`
	Hits     int     `json:"hits"`
	Requests int     `json:"requests"`
	// Distinct is the number of distinct keys in the workload.
	Distinct int `json:"distinct_keys"`
	// Error, if not empty, says why the policy could not run at this size
	// (a store that rejects the configuration); HitRatio and Hits are zero.
	// One policy failing does not stop the replay of the others.
	Error string `json:"error,omitempty"`
}

// DefaultSizes returns cache sizes from 1% to 50% of distinct keys, rounded
// to two significant digits so that they read well in a table.
func DefaultSizes(distinct int) []int {
	var sizes []int
	for _, f := range []float64{0.01, 0.02, 0.05, 0.10, 0.25, 0.50} {
		sizes = append(sizes, roundSignificant(f*float64(distinct)))
	}
	return slices.Compact(sizes)
}

func roundSignificant(x float64) int {
	if x < 1 {
		return 1
	}
	scale := math.Pow(10, math.Floor(math.Log10(x))-1)
	return max(1, int(math.Round(x/scale)*scale))
}

// Run replays each workload at each size under each policy, running up to
// opts.Parallel replays at once, and returns the results ordered by
// workload (as given), size and policy. It holds at most a few workloads in
// memory at a time. It stops at the first error or when ctx is done.
func Run(ctx context.Context, workloads []Workload, opts Options) ([]Result, error) {
	policies := opts.Policies
	if len(policies) == 0 {
		policies = Policies()
	}
	for _, p := range policies {
		if !slices.Contains(AllPolicies(), p) {
			return nil, fmt.Errorf("unknown policy %q: choose from %v", p, AllPolicies())
		}
	}
	for _, s := range opts.Sizes {
		if s < 1 {
			return nil, fmt.Errorf("cache size %d is not allowed: sizes are entries, at least 1", s)
		}
	}
	parallel := opts.Parallel
	if parallel < 1 {
		parallel = runtime.GOMAXPROCS(0)
	}

	parent := ctx
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	var (
		mu      sync.Mutex
		results []Result
	)
	order := func(r Result) int { return slices.Index(policies, r.Policy) }
	rank := map[string]int{}
	for wi, w := range workloads {
		rank[w.Name] = wi
		if ctx.Err() != nil {
			break
		}
		// Loading runs here, beside the replays of the previous workload,
		// which keeps the cores busy; g.Go blocking below keeps this loop
		// from loading more than one workload ahead.
		start := time.Now()
		keys, err := w.Load()
		if err != nil {
			g.Go(func() error { return fmt.Errorf("%s: %w", w.Name, err) })
			break
		}
		if len(keys) == 0 {
			g.Go(func() error { return fmt.Errorf("%s: the workload has no requests", w.Name) })
			break
		}
		opt, err := trace.NewOPT(keys)
		if err != nil {
			g.Go(func() error { return fmt.Errorf("%s: %w", w.Name, err) })
			break
		}
		sizes := opts.Sizes
		if len(sizes) == 0 {
			sizes = DefaultSizes(opt.Distinct())
		}
		sizes = slices.Compact(slices.Sorted(slices.Values(sizes)))
		remaining := atomic.Int64{}
		remaining.Store(int64(len(sizes) * len(policies)))
		for _, size := range sizes {
			for _, p := range policies {
				g.Go(func() error {
					r := Result{Trace: w.Name, Size: size, Policy: p, Requests: len(keys), Distinct: opt.Distinct()}
					hits, err := replayOne(ctx, p, size, keys, opt)
					var unavailable *unavailableError
					switch {
					case errors.As(err, &unavailable):
						r.Error = unavailable.Error()
					case err != nil:
						return fmt.Errorf("%s at size %d, policy %s: %w", w.Name, size, p, err)
					default:
						r.Hits = hits
						r.HitRatio = float64(hits) / float64(len(keys))
					}
					mu.Lock()
					results = append(results, r)
					mu.Unlock()
					if remaining.Add(-1) == 0 && opts.Progress != nil {
						fmt.Fprintf(opts.Progress, "replayed %s: %d requests, %d distinct keys, %d sizes in %v\n",
							w.Name, len(keys), opt.Distinct(), len(sizes), time.Since(start).Round(time.Millisecond))
					}
					return nil
				})
			}
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	// The group's context is always done after Wait; only the caller's
	// tells an interrupted run from a complete one.
	if err := parent.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(results, func(a, b Result) int {
		return cmp.Or(cmp.Compare(rank[a.Trace], rank[b.Trace]), cmp.Compare(a.Size, b.Size), cmp.Compare(order(a), order(b)))
	})
	return results, nil
}

// replayOne returns the hits of policy p with size entries on keys.
func replayOne(ctx context.Context, p string, size int, keys []uint64, opt *trace.OPT) (int, error) {
	if p == OPT {
		return opt.Hits(size), nil
	}
	c, err := newPolicy(p, size)
	if err != nil {
		return 0, &unavailableError{err}
	}
	hits := 0
	for i, k := range keys {
		// Checking every request would cost more than the replay itself.
		if i&(1<<16-1) == 0 && ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if c.Access(k) {
			hits++
		}
	}
	return hits, nil
}

// unavailableError reports a policy that cannot be built at some size.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return e.err.Error() }
func (e *unavailableError) Unwrap() error { return e.err }
