package sim

import (
	"context"
	"fmt"

	"github.com/coalesce-go/coalesce"
)

// coalesceGroup is this project's library with the same workers and cache
// budget as the others. BlockWhenFull makes a burst of distinct inputs wait
// in line instead of failing with ErrOverloaded, as the other designs do.
//
// Accounting: the library says how it served each request (Result.Source).
type coalesceGroup struct {
	g *coalesce.Group
}

func newCoalesce(p designParams) (design, error) {
	g, err := coalesce.New(coalesce.Func(p.task), coalesce.Options{
		Workers:       p.workers,
		CacheBytes:    p.cacheBytes,
		BlockWhenFull: true,
	})
	if err != nil {
		return nil, err
	}
	return &coalesceGroup{g: g}, nil
}

func (d *coalesceGroup) get(ctx context.Context, input []byte) ([]byte, Kind, error) {
	res, err := d.g.Get(ctx, input)
	switch res.Source {
	case coalesce.Hit:
		return res.Value, Hit, err
	case coalesce.Joined:
		return res.Value, Joined, err
	case coalesce.Computed:
		return res.Value, Miss, err
	}
	if err == nil {
		err = fmt.Errorf("the library answered with an unknown source %v", res.Source)
	}
	return nil, Miss, err
}

func (d *coalesceGroup) close() { d.g.Close() }
