package trace

import "math"

// ARC is Megiddo and Modha's Adaptive Replacement Cache ("ARC: A
// Self-Tuning, Low Overhead Replacement Cache", FAST '03), counted in
// entries and following the paper's pseudo-code step for step, so that it
// can serve as a reference: two LRU lists of resident keys, T1 (seen once
// recently) and T2 (seen at least twice), two ghost lists B1 and B2 of keys
// recently evicted from them, and a target p for the size of T1 that hits
// in the ghosts move. Only T1 and T2 count towards the capacity; the ghosts
// remember up to as many keys again. An ARC is not safe for concurrent use.
type ARC struct {
	capacity int
	// p is real, as in the paper, where the steps are ratios of ghost list
	// sizes: many implementations truncate them to integers, which moves
	// hit ratios by a few hundredths of a percent. Only additions, divisions
	// and comparisons touch it, so replays are reproducible everywhere.
	p     float64
	index map[uint64]int32
	lists // arcT1, arcT2, arcB1, arcB2
}

// The lists of an ARC.
const (
	arcT1 = iota
	arcT2
	arcB1
	arcB2
)

// NewARC returns an empty ARC that holds up to capacity keys; a capacity
// below 1 holds nothing and never hits.
func NewARC(capacity int) *ARC {
	// Node indexes are int32 and the lists hold up to twice the capacity.
	capacity = min(max(capacity, 0), (math.MaxInt32-4)/2)
	// Preallocation is capped: a huge capacity on a short trace should not
	// cost its full size up front.
	prealloc := min(2*capacity, 1<<20)
	return &ARC{
		capacity: capacity,
		index:    make(map[uint64]int32, prealloc),
		lists:    newLists(4, prealloc),
	}
}

// Access requests key and reports whether it was resident (in T1 or T2).
// On a miss the key is inserted, evicting a key if the ARC is full.
func (c *ARC) Access(key uint64) bool {
	if c.capacity == 0 {
		return false
	}
	if i, ok := c.index[key]; ok {
		switch c.nodes[i].list {
		case arcT1, arcT2: // case I
			c.move(i, arcT2)
			return true
		case arcB1: // case II: T1 was too small, so grow its target
			c.p = min(c.p+max(float64(c.size[arcB2])/float64(c.size[arcB1]), 1), float64(c.capacity))
			c.replace(false)
			c.move(i, arcT2)
			return false
		default: // case III: T2 was too small, so shrink T1's target
			c.p = max(c.p-max(float64(c.size[arcB1])/float64(c.size[arcB2]), 1), 0)
			c.replace(true)
			c.move(i, arcT2)
			return false
		}
	}

	// Case IV. At most one node leaves the lists here; the new key reuses it.
	free := int32(-1)
	l1 := c.size[arcT1] + c.size[arcB1]
	total := l1 + c.size[arcT2] + c.size[arcB2]
	switch {
	case l1 == c.capacity:
		if c.size[arcT1] < c.capacity {
			free = c.drop(arcB1)
			c.replace(false)
		} else {
			// B1 is empty and T1 fills the cache: there is no ghost to
			// forget, so T1's oldest key goes without leaving one.
			free = c.drop(arcT1)
		}
	case total >= c.capacity:
		if total == 2*c.capacity {
			free = c.drop(arcB2)
		}
		c.replace(false)
	}
	if free < 0 {
		free = c.add(key)
	} else {
		c.nodes[free].key = key
	}
	c.index[key] = free
	c.push(free, arcT1)
	return false
}

// Len returns the number of resident keys, those in T1 and T2.
func (c *ARC) Len() int { return c.size[arcT1] + c.size[arcT2] }

// replace is the paper's REPLACE: it moves the LRU key of T1 or T2 to its
// ghost list, leaving room for one key. The list it takes from is never
// empty: the cache is always full when it is called (ghosts exist, or the
// lists reach the capacity, only once T1 and T2 fill it), and T2 is empty
// only when T1 fills the cache, which leaves B1 empty (|T1|+|B1| ≤
// capacity); then only case III calls it, and |T1| = capacity ≥ p sends it
// to T1.
func (c *ARC) replace(inB2 bool) {
	t1 := float64(c.size[arcT1])
	if t1 > 0 && (t1 > c.p || (inB2 && t1 == c.p)) {
		c.move(c.back(arcT1), arcB1)
	} else {
		c.move(c.back(arcT2), arcB2)
	}
}

// drop forgets the LRU key of list l and returns its node for reuse.
func (c *ARC) drop(l int32) int32 {
	i := c.back(l)
	c.unlink(i)
	delete(c.index, c.nodes[i].key)
	return i
}
