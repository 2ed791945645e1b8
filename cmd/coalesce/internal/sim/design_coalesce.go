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
	g, err := coalesce.New(coalesce.Func(p.task), coalesceOptions(p))
	if err != nil {
		return nil, err
	}
	return &coalesceGroup{g: g}, nil
}

// coalesceOptions are the library's options in every design that uses it,
// in-process or behind the daemon, so that the two differ only by the
// process boundary.
func coalesceOptions(p designParams) coalesce.Options {
	opts := coalesce.Options{
		Workers:       p.workers,
		CacheBytes:    p.cacheBytes,
		BlockWhenFull: true,
	}
	// Beyond the library's 64 KiB defaults every request would fail, where
	// the other designs accept any size. Below them the defaults stay, as
	// a user would leave them (the result limit shapes the store's layout).
	if p.maxInput > libraryDefaultSize {
		opts.MaxInputSize = p.maxInput
	}
	if p.output > libraryDefaultSize {
		opts.MaxResultSize = p.output
	}
	return opts
}

// libraryDefaultSize is the default of Options.MaxInputSize and
// MaxResultSize, as documented there.
const libraryDefaultSize = 64 << 10

func (d *coalesceGroup) get(ctx context.Context, input []byte) ([]byte, Kind, error) {
	return kindOf(d.g.Get(ctx, input))
}

// kindOf turns the library's answer into the simulator's: Result.Source
// says how the request was served.
func kindOf(res coalesce.Result, err error) ([]byte, Kind, error) {
	switch res.Source {
	case coalesce.Hit:
		return res.Value, Hit, err
	case coalesce.Joined:
		return res.Value, Joined, err
	case coalesce.Computed:
		return res.Value, Miss, err
	case coalesce.Loaded:
		// A result from a tier: in the cluster design, one that another
		// node computed, found in Redis or waited for there. This node ran
		// no computation for it, so it is not a miss (the replay counts
		// one miss per computation, cluster-wide); nor is it a hit, which
		// the simulator keeps for answers from memory without waiting for
		// a computation: it reused a computation another request started,
		// which is what Joined counts. Its latency is also reported apart
		// (Result.RemoteLat).
		return res.Value, Joined, err
	}
	if err == nil {
		err = fmt.Errorf("the library answered with an unknown source %v", res.Source)
	}
	return nil, Miss, err
}

func (d *coalesceGroup) close() { d.g.Close() }
