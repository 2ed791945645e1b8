package sim

import (
	"context"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/semaphore"
	"golang.org/x/sync/singleflight"
)

// singleflightLRU is the common Go idiom: look in a thread-safe LRU cache,
// and on a miss run the computation through singleflight so that requests
// for the same key in flight share one call; a semaphore of workers bounds
// the calls running at once.
//
// It is written the way the idiom usually is, with no second look at the
// cache inside the singleflight call. That leaves a window: a request that
// missed the cache just before a call stored its result, and reaches
// singleflight just after the call finished, starts a new computation. The
// duplicates column shows how often that happens.
//
// Accounting: a cache hit is a hit; the request whose function singleflight
// ran is the miss; the others that shared its call joined.
type singleflightLRU struct {
	task  taskFunc
	cache *lru.Cache[string, []byte]
	group singleflight.Group
	sem   *semaphore.Weighted
}

func newSingleflightLRU(p designParams) (design, error) {
	cache, err := lru.New[string, []byte](p.cacheEntries)
	if err != nil {
		return nil, err
	}
	return &singleflightLRU{task: p.task, cache: cache, sem: semaphore.NewWeighted(int64(p.workers))}, nil
}

func (d *singleflightLRU) get(ctx context.Context, input []byte) ([]byte, Kind, error) {
	key := string(input)
	if v, ok := d.cache.Get(key); ok {
		return v, Hit, nil
	}
	leader := false
	v, err, _ := d.group.Do(key, func() (any, error) {
		leader = true
		if err := d.sem.Acquire(ctx, 1); err != nil {
			return nil, err
		}
		defer d.sem.Release(1)
		v, err := d.task(ctx, input)
		if err == nil {
			d.cache.Add(key, v)
		}
		return v, err
	})
	kind := Joined
	if leader {
		kind = Miss
	}
	if err != nil {
		return nil, kind, err
	}
	return v.([]byte), kind, nil
}

func (d *singleflightLRU) close() {}
