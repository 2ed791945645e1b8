package sim

import (
	"context"

	"golang.org/x/sync/semaphore"
)

// noCoalescing computes every request, at most workers at a time, in the
// order they arrive: the baseline every other design improves on.
type noCoalescing struct {
	task taskFunc
	sem  *semaphore.Weighted
}

func newNoCoalescing(p designParams) (design, error) {
	return &noCoalescing{task: p.task, sem: semaphore.NewWeighted(int64(p.workers))}, nil
}

func (d *noCoalescing) get(ctx context.Context, input []byte) ([]byte, Kind, error) {
	if err := d.sem.Acquire(ctx, 1); err != nil {
		return nil, Miss, err
	}
	defer d.sem.Release(1)
	v, err := d.task(ctx, input)
	return v, Miss, err
}

func (d *noCoalescing) close() {}
