package trace

import "math"

// SLRU is a segmented LRU cache of keys, counted in entries: a key enters a
// probationary segment and moves to a protected one when it is requested
// again there, so that keys seen once cannot flush those seen twice. The
// protected segment holds 10% of the capacity (rounded down, at least 1
// when the capacity is 2 or more), the figure SLRU is usually quoted with;
// keys it pushes out return to probation rather than leave. It is a
// reference for replays, not a tuned policy. An SLRU is not safe for
// concurrent use.
type SLRU struct {
	capacity, protectedCap int
	index                  map[uint64]int32
	lists                  // slruProbation and slruProtected
}

// The segments of an SLRU, as lists.
const (
	slruProbation = iota
	slruProtected
)

// NewSLRU returns an empty SLRU that holds up to capacity keys; a capacity
// below 1 holds nothing and never hits.
func NewSLRU(capacity int) *SLRU {
	// Node indexes are int32; a capacity beyond them is unbounded in practice.
	capacity = min(max(capacity, 0), math.MaxInt32-2)
	protected := capacity / 10
	if capacity >= 2 {
		protected = max(protected, 1)
	}
	// Preallocation is capped: a huge capacity on a short trace should not
	// cost its full size up front.
	prealloc := min(capacity, 1<<20)
	return &SLRU{
		capacity:     capacity,
		protectedCap: protected,
		index:        make(map[uint64]int32, prealloc),
		lists:        newLists(2, prealloc),
	}
}

// Access requests key and reports whether it was resident. On a miss the
// key is inserted into probation, evicting a key if the SLRU is full.
func (c *SLRU) Access(key uint64) bool {
	if i, ok := c.index[key]; ok {
		c.move(i, slruProtected)
		if c.size[slruProtected] > c.protectedCap {
			c.move(c.back(slruProtected), slruProbation)
		}
		return true
	}
	if c.capacity == 0 {
		return false
	}
	var i int32
	if len(c.index) < c.capacity {
		i = c.add(key)
	} else {
		// Probation is empty only if protected takes the whole capacity,
		// which the 10% share never does; the fallback keeps the rule total.
		from := int32(slruProbation)
		if c.size[slruProbation] == 0 {
			from = slruProtected
		}
		i = c.back(from)
		c.unlink(i)
		delete(c.index, c.nodes[i].key)
		c.nodes[i].key = key
	}
	c.index[key] = i
	c.push(i, slruProbation)
	return false
}

// Len returns the number of resident keys.
func (c *SLRU) Len() int { return len(c.index) }
