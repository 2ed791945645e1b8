// Package lru is a byte-bounded least-recently-used result store guarded by
// one mutex. It is the simple policy kept beside the pointer-free store as an
// option and a baseline: every entry is a heap object, so the garbage
// collector scans all of them, and every hit takes the lock to move its entry
// to the front.
//
// The budget bounds the live heap the store holds, not an estimate of it:
// Stats.Bytes is the sum of the allocations the store owns (entry nodes,
// values rounded up to their allocation size, and the index), so it is what
// runtime.MemStats sees the store hold after a collection.
package lru

import (
	"errors"
	"fmt"
	"sync"

	"github.com/coalesce-go/coalesce/internal/keyhash"
)

// nodeSize is what the allocator takes for one entry node: the struct is 56
// bytes (key 16, value header 24, links 16), served from the 64-byte size
// class; a test keeps the two in step.
const nodeSize = 64

// slotSize is one index slot: a pointer to the entry. It is a literal, not
// unsafe.Sizeof, so that EntryOverhead stays an untyped constant as it
// always was; a test checks it against the pointer size.
const slotSize = 8

// The index is an open-addressing table of our own rather than a Go map
// because a map's memory cannot be known or bounded from outside: it never
// shrinks, it grows by doubling (a swiss-table directory splits at 7/8 load
// into halves at 7/16), and under the evict-one-insert-one churn of a full
// cache its tombstones make it grow further still. Measured on Go 1.26 with
// 75,000 live entries, map[keyhash.Key]*entry held about 93 bytes per
// entry, three times the estimate this package once charged, and the store
// overshot a 16 MiB budget by 4.3 MiB. A table we resize ourselves costs
// exactly len(slots)*slotSize, which Bytes charges as it changes.
//
// Linear probing with backward-shift deletion leaves no tombstones, so the
// table's size follows the live count alone: it doubles when an insert
// would pass 3/4 load (probe chains stay short: 2.5 probes per hit, 8.5 per
// miss on average) and halves below 1/4, so it never holds more than 4 slots
// per entry, and growing and shrinking are a factor 2 apart so that one
// entry coming and going at a boundary does not resize every time.
const (
	minSlots = 4
	maxLoadN = 3 // grow when entries would exceed maxLoadN/maxLoadD of the slots
	maxLoadD = 4
	minLoadD = 4 // shrink when entries fall below 1/minLoadD of the slots
)

// EntryOverhead is the most one entry costs beyond its value's allocation:
// its node and its share of the index at the index's lowest load (4 slots
// per entry). A budget of maxValue+EntryOverhead holds a value of maxValue
// bytes whenever that length is a size the allocator serves exactly (any
// multiple of 16 up to 128 bytes, and most larger powers of two); otherwise
// the value's allocation is rounded up and counted as such.
const EntryOverhead = nodeSize + minLoadD*slotSize

// ErrTooLarge reports a value longer than the store's per-entry limit, or one
// whose allocation does not fit the budget even alone.
var ErrTooLarge = errors.New("lru: value too large")

type entry struct {
	key        keyhash.Key
	value      []byte
	prev, next *entry
}

// Store is a byte-bounded LRU. It is safe for concurrent use.
type Store struct {
	mu        sync.Mutex
	slots     []*entry // nil when empty; else a power of two long, at most 3/4 full
	shift     uint     // 64 - log2(len(slots))
	n         int      // entries
	head      entry    // sentinel: head.next is the most recent, head.prev the least
	bytes     int64    // nodes, value allocations and slots
	maxBytes  int64
	maxValue  int
	evictions uint64
}

// New returns a store whose allocations stay within maxBytes and that
// accepts values up to maxValue bytes.
func New(maxBytes int64, maxValue int) (*Store, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("lru: budget is %d bytes; it must be positive", maxBytes)
	}
	if maxValue < 0 {
		return nil, fmt.Errorf("lru: value limit %d is negative", maxValue)
	}
	// A small value is charged its tiny block (see cost), so the smallest
	// budget that holds one is larger than its length suggests.
	charged := int64(maxValue)
	if charged > 0 && charged < tinySize {
		charged = tinySize
	}
	if need := charged + EntryOverhead; need > maxBytes {
		return nil, fmt.Errorf("lru: value limit %d does not fit the budget of %d bytes: the minimum budget for it is %d (each entry also costs up to %d bytes)", maxValue, maxBytes, need, EntryOverhead)
	}
	s := &Store{maxBytes: maxBytes, maxValue: maxValue}
	s.head.next, s.head.prev = &s.head, &s.head
	return s, nil
}

// home is the first slot probed for k. Keys are keyed hashes, but mixing
// both halves through a multiplication keeps the table sound for keys that
// are not (tests use small integers), at one multiply per lookup.
func (s *Store) home(k keyhash.Key) int {
	return int(((k.Hi ^ k.Lo) * 0x9e3779b97f4a7c15) >> s.shift)
}

// find returns k's slot and entry, or the empty slot that ends its probe
// sequence and nil. The table is never full, so the loop ends.
func (s *Store) find(k keyhash.Key) (int, *entry) {
	if len(s.slots) == 0 {
		return -1, nil
	}
	mask := len(s.slots) - 1
	for i := s.home(k); ; i = (i + 1) & mask {
		e := s.slots[i]
		if e == nil || e.key == k {
			return i, e
		}
	}
}

// resize moves every entry into a table of size slots (0 frees it).
func (s *Store) resize(size int) {
	old := s.slots
	s.bytes += int64(size-len(old)) * slotSize
	s.slots = nil
	if size == 0 {
		return
	}
	s.slots = make([]*entry, size)
	s.shift = 64
	for n := size; n > 1; n >>= 1 {
		s.shift--
	}
	for _, e := range old {
		if e != nil {
			i, _ := s.find(e.key)
			s.slots[i] = e
		}
	}
}

// growth is how many bytes the index would add to hold one more entry.
func (s *Store) growth() int64 {
	if (s.n+1)*maxLoadD <= len(s.slots)*maxLoadN {
		return 0
	}
	return int64(max(minSlots, 2*len(s.slots))-len(s.slots)) * slotSize
}

// insert adds e, whose key is absent.
func (s *Store) insert(e *entry) {
	if s.growth() > 0 {
		s.resize(max(minSlots, 2*len(s.slots)))
	}
	i, _ := s.find(e.key)
	s.slots[i] = e
	s.n++
	s.bytes += cost(e)
	s.pushFront(e)
}

// removeAt deletes e, which is in slot i. Backward-shift deletion (Knuth's
// Algorithm R) moves later members of the probe run into the hole, so no
// lookup ever has to step over a deleted slot.
func (s *Store) removeAt(i int, e *entry) {
	s.unlink(e)
	s.n--
	s.bytes -= cost(e)
	mask := len(s.slots) - 1
	for j := (i + 1) & mask; s.slots[j] != nil; j = (j + 1) & mask {
		h := s.home(s.slots[j].key)
		// The entry at j may fill the hole at i unless its home lies
		// cyclically in (i, j], where it would no longer be reachable.
		if (i < j && (h <= i || h > j)) || (i > j && h <= i && h > j) {
			s.slots[i] = s.slots[j]
			i = j
		}
	}
	s.slots[i] = nil
	switch {
	case s.n == 0:
		s.resize(0)
	case len(s.slots) > minSlots && s.n*minLoadD < len(s.slots):
		s.resize(len(s.slots) / 2)
	}
}

func (s *Store) unlink(e *entry) {
	e.prev.next, e.next.prev = e.next, e.prev
}

func (s *Store) pushFront(e *entry) {
	e.prev, e.next = &s.head, s.head.next
	s.head.next.prev = e
	s.head.next = e
}

// cost counts the value's capacity, not its length: the copy in Set is
// rounded up to the allocator's size class, and cap reports that size.
// Values under tinySize come from 16-byte blocks the allocator shares
// between small pointer-free objects; one live value keeps its whole block,
// so each is charged the block (the race detector's allocator gives them a
// block each anyway).
func cost(e *entry) int64 {
	v := int64(cap(e.value))
	if v > 0 && v < tinySize {
		v = tinySize
	}
	return nodeSize + v
}

const tinySize = 16

// Get appends the value of k to dst and marks k most recently used.
func (s *Store) Get(k keyhash.Key, dst []byte) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, e := s.find(k)
	if e == nil {
		return dst, false
	}
	s.unlink(e)
	s.pushFront(e)
	return append(dst, e.value...), true
}

// Contains reports whether k is present, without marking it used.
func (s *Store) Contains(k keyhash.Key) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, e := s.find(k)
	return e != nil
}

// Set stores a copy of v under k, evicting the least recently used entries
// until it fits. A value that cannot fit even in an empty store (possible
// only when maxValue is within the allocator's rounding of the whole budget)
// is refused with ErrTooLarge, and any older value of k is dropped, since it
// is stale.
func (s *Store) Set(k keyhash.Key, v []byte) error {
	if len(v) > s.maxValue {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(v), s.maxValue)
	}
	e := &entry{key: k, value: append([]byte(nil), v...)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, old := s.find(k); old != nil {
		s.removeAt(i, old)
	}
	for s.n > 0 && s.bytes+cost(e)+s.growth() > s.maxBytes {
		s.evict()
	}
	if need := cost(e) + s.growth(); s.bytes+need > s.maxBytes {
		return fmt.Errorf("%w: %d bytes take %d with the entry and its index slots, more than the whole budget of %d", ErrTooLarge, len(v), need, s.maxBytes)
	}
	s.insert(e)
	return nil
}

func (s *Store) evict() {
	e := s.head.prev
	i, _ := s.find(e.key)
	s.removeAt(i, e)
	s.evictions++
}

// Delete removes k and reports whether it was present.
func (s *Store) Delete(k keyhash.Key) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, e := s.find(k)
	if e != nil {
		s.removeAt(i, e)
	}
	return e != nil
}

// Stats describes the store's contents.
type Stats struct {
	Entries int
	// Bytes is what the store's allocations take: entry nodes, values as
	// allocated (rounded up to their size class) and the index.
	Bytes     int64
	Capacity  int64
	Evictions uint64
}

// Stats returns the current counts.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Entries: s.n, Bytes: s.bytes, Capacity: s.maxBytes, Evictions: s.evictions}
}
