package trace

import "math"

// LRU is an exact least-recently-used cache of keys, counted in entries: the
// baseline every policy is compared against. It is deliberately plain (a map
// and a doubly linked list in one slice) so that its hit counts can be
// trusted. An LRU is not safe for concurrent use.
type LRU struct {
	capacity int
	index    map[uint64]int32
	lists    // one list
}

// NewLRU returns an empty LRU that holds up to capacity keys; a capacity
// below 1 holds nothing and never hits.
func NewLRU(capacity int) *LRU {
	// Node indexes are int32; a capacity beyond them is unbounded in practice.
	capacity = min(max(capacity, 0), math.MaxInt32-1)
	// Preallocation is capped: a huge capacity on a short trace should not
	// cost its full size up front.
	prealloc := min(capacity, 1<<20)
	return &LRU{
		capacity: capacity,
		index:    make(map[uint64]int32, prealloc),
		lists:    newLists(1, prealloc),
	}
}

// Access requests key and reports whether it was resident. On a miss the key
// is inserted, evicting the least recently used key if the LRU is full.
func (c *LRU) Access(key uint64) bool {
	if i, ok := c.index[key]; ok {
		c.move(i, 0)
		return true
	}
	if c.capacity == 0 {
		return false
	}
	var i int32
	if len(c.index) < c.capacity {
		i = c.add(key)
	} else {
		i = c.back(0)
		c.unlink(i)
		delete(c.index, c.nodes[i].key)
		c.nodes[i].key = key
	}
	c.index[key] = i
	c.push(i, 0)
	return false
}

// Len returns the number of resident keys.
func (c *LRU) Len() int { return len(c.index) }
