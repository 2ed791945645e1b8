package trace

import "math"

// Clock is the CLOCK (second chance) cache of keys, counted in entries: the
// keys sit in a ring with one reference bit each, which a hit sets; on a
// miss with the ring full, a hand sweeps from where it stopped, clearing
// set bits as it passes and evicting the first key whose bit is clear. It
// approximates LRU without moving anything on a hit, which is why real
// systems use it, and serves here as a reference. A Clock is not safe for
// concurrent use.
type Clock struct {
	capacity int
	index    map[uint64]int32
	slots    []clockSlot
	// hand is the next slot to examine; the slot before it holds the newest
	// key, so a new key is examined last.
	hand int32
}

type clockSlot struct {
	key        uint64
	referenced bool
}

// NewClock returns an empty Clock that holds up to capacity keys; a
// capacity below 1 holds nothing and never hits.
func NewClock(capacity int) *Clock {
	// Slot indexes are int32; a capacity beyond them is unbounded in practice.
	capacity = min(max(capacity, 0), math.MaxInt32)
	// Preallocation is capped: a huge capacity on a short trace should not
	// cost its full size up front.
	prealloc := min(capacity, 1<<20)
	return &Clock{
		capacity: capacity,
		index:    make(map[uint64]int32, prealloc),
		slots:    make([]clockSlot, 0, prealloc),
	}
}

// Access requests key and reports whether it was resident. On a miss the
// key is inserted with its bit clear, evicting a key if the Clock is full.
func (c *Clock) Access(key uint64) bool {
	if i, ok := c.index[key]; ok {
		c.slots[i].referenced = true
		return true
	}
	if c.capacity == 0 {
		return false
	}
	if len(c.slots) < c.capacity {
		// While the ring fills the hand stays at slot 0, so appending puts
		// the key just behind it, where a replacement would.
		c.index[key] = int32(len(c.slots))
		c.slots = append(c.slots, clockSlot{key: key})
		return false
	}
	// The sweep ends within one turn: it clears every bit it passes.
	for c.slots[c.hand].referenced {
		c.slots[c.hand].referenced = false
		c.hand = c.next(c.hand)
	}
	delete(c.index, c.slots[c.hand].key)
	c.slots[c.hand] = clockSlot{key: key}
	c.index[key] = c.hand
	c.hand = c.next(c.hand)
	return false
}

// Len returns the number of resident keys.
func (c *Clock) Len() int { return len(c.slots) }

func (c *Clock) next(i int32) int32 {
	if int(i)+1 == len(c.slots) {
		return 0
	}
	return i + 1
}
