package sim

import (
	"context"

	"github.com/maypok86/otter/v2"
	"golang.org/x/sync/semaphore"
)

// otterLoader uses otter v2's loading Get, which coalesces concurrent loads
// of a key itself; the loader takes a slot of a semaphore of workers so
// that computations are bounded like in every other design.
//
// Accounting: otter does not say how a Get was served, so the design first
// peeks with GetIfPresent (a hit), and otherwise counts the request whose
// loader ran as the miss and the rest as joined. A result stored between
// the peek and the Get is counted as joined although otter served it from
// the cache; that errs in otter's disfavour by a few requests at most.
type otterLoader struct {
	task  taskFunc
	cache *otter.Cache[string, []byte]
	sem   *semaphore.Weighted
}

func newOtterLoader(p designParams) (design, error) {
	cache, err := otter.New(&otter.Options[string, []byte]{MaximumSize: p.cacheEntries})
	if err != nil {
		return nil, err
	}
	return &otterLoader{task: p.task, cache: cache, sem: semaphore.NewWeighted(int64(p.workers))}, nil
}

func (d *otterLoader) get(ctx context.Context, input []byte) ([]byte, Kind, error) {
	key := string(input)
	if v, ok := d.cache.GetIfPresent(key); ok {
		return v, Hit, nil
	}
	leader := false
	v, err := d.cache.Get(ctx, key, otter.LoaderFunc[string, []byte](func(ctx context.Context, _ string) ([]byte, error) {
		leader = true
		if err := d.sem.Acquire(ctx, 1); err != nil {
			return nil, err
		}
		defer d.sem.Release(1)
		return d.task(ctx, input)
	}))
	kind := Joined
	if leader {
		kind = Miss
	}
	return v, kind, err
}

func (d *otterLoader) close() { d.cache.StopAllGoroutines() }
