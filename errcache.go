package coalesce

import (
	"sync"
	"time"

	"github.com/coalesce-go/coalesce/internal/keyhash"
)

// errorCache remembers failed computations for Options.ErrorTTL, bounded in
// count; the oldest entry goes first. It is separate from the result cache
// because errors are values of any type, not bytes.
type errorCache struct {
	mu    sync.Mutex
	ttl   time.Duration
	max   int
	m     map[keyhash.Key]errorEntry
	order []errorRef // insertion order; may hold entries since replaced or removed
	seq   uint64
}

// errorRef names one insertion; it is stale once the key's entry has
// another seq.
type errorRef struct {
	key keyhash.Key
	seq uint64
}

type errorEntry struct {
	err     error
	expires time.Time
	seq     uint64
}

func newErrorCache(ttl time.Duration, max int) *errorCache {
	return &errorCache{ttl: ttl, max: max, m: make(map[keyhash.Key]errorEntry)}
}

func (c *errorCache) get(k keyhash.Key) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		return nil
	}
	if time.Now().After(e.expires) {
		delete(c.m, k)
		return nil
	}
	return e.err
}

func (c *errorCache) put(k keyhash.Key, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	c.m[k] = errorEntry{err: err, expires: time.Now().Add(c.ttl), seq: c.seq}
	c.order = append(c.order, errorRef{k, c.seq})
	for len(c.m) > c.max && len(c.order) > 0 {
		c.dropIfCurrent(c.order[0])
		c.order = c.order[1:]
	}
	// Stale refs are compacted away once they make up most of order.
	if len(c.order) > 2*c.max+16 {
		live := c.order[:0]
		for _, r := range c.order {
			if e, ok := c.m[r.key]; ok && e.seq == r.seq {
				live = append(live, r)
			}
		}
		c.order = live
	}
}

func (c *errorCache) dropIfCurrent(r errorRef) {
	if e, ok := c.m[r.key]; ok && e.seq == r.seq {
		delete(c.m, r.key)
	}
}

func (c *errorCache) delete(k keyhash.Key) {
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}
