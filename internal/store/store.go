// Package store holds computed results in memory under a byte budget, with
// no pointer per entry for the garbage collector to scan, and evicts with
// S3-FIFO (Yang et al., SOSP 2023) guarded by TinyLFU admission (Einziger et
// al.), which resists scans and loops and lets hits run without a global
// lock.
//
// The one thing to know: the budget is allocated up front and covers
// everything the store uses (arenas, index, ghost, sketch and metadata), so
// the store never grows or rehashes; the operating system backs the arenas
// with memory only as they fill.
//
// Each shard keeps its records (key, value length, value) in an arena cut
// into segments. Segments belong to one of two FIFO queues, small and main,
// which share the arena, so eviction starts only when the shard is full. New
// keys enter small; keys dropped from either queue are remembered by a ghost
// of two rotating Bloom filters per queue, and enter main if they come back.
// Eviction processes records at a queue's tail: from small, accessed keys
// move to main (keeping their access counts while main has room, as after
// the first fill, whole segments at a time when main has room for them);
// from main, accessed keys are re-appended with one access less and the
// others drop. Every Set's eviction work is bounded whatever the counts: it
// moves at most keepRecords records, then drops what is at small's tail
// (main's if small is empty), and the byte-bound eviction runs a segment
// ahead, freeing twice what each Set stores, instead of draining a whole
// segment in one Set. A count-min sketch of 4-bit counters estimates
// how often every key, resident or not, was requested lately: an unaccessed
// key leaving small, or a ghost hit, takes a place in a full main queue only
// if its estimate beats main's victim's by a margin, which keeps a stable
// subset of a loop larger than the cache. As in ARC, keys coming back from
// the ghosts adapt small's share and the margin, so that recency-heavy
// workloads are not held to a fixed small window. An index of uint64 slots (offset, 30-bit tag, 2-bit
// access count) maps keys to records; Get bumps the count and the sketch
// atomically under the shard's read lock.
package store

import (
	"fmt"
	"math/bits"

	"github.com/coalesce-go/coalesce/internal/keyhash"
)

// Store maps keys to byte values under a fixed budget. All methods are safe
// for concurrent use: Get and Contains take a shard's read lock, Set and
// Delete its write lock; no operation takes a lock across shards.
type Store struct {
	shards []*shard
	l      layout
}

// Stats is a snapshot of a store's contents and accounting.
type Stats struct {
	// Entries is the number of keys held.
	Entries int
	// Bytes is the memory the store accounts for: index, ghost, sketch and
	// metadata in full, plus every arena segment in use, including the
	// garbage left by overwrites and deletes that eviction has not yet
	// reclaimed and the unused tails of segments.
	Bytes int64
	// LiveBytes is the arena bytes of live records (16-byte key, length,
	// value).
	LiveBytes int64
	// Capacity is the whole budget: what Bytes reaches when the store is
	// full.
	Capacity int64
	// Evictions counts entries dropped to make room; deletes and overwrites
	// are not evictions.
	Evictions uint64
	// SmallEntries and MainEntries split Entries by S3-FIFO queue.
	SmallEntries, MainEntries int
	// Shards is the number of shards; IndexSlots their index slots in all;
	// MaxEntries the entry cap in all (the index's, or Config.MaxEntries').
	Shards, IndexSlots, MaxEntries int
}

// New returns an empty store sized by cfg, or an error saying which field is
// out of range and what is allowed.
func New(cfg Config) (*Store, error) {
	l, err := cfg.layout()
	if err != nil {
		return nil, err
	}
	s := &Store{shards: make([]*shard, l.shards), l: l}
	for i := range s.shards {
		s.shards[i] = newShard(&s.l)
	}
	return s, nil
}

// shard picks by the top bits of Key.Hi, which neither the index (Key.Lo's
// top bits) nor the ghost (Key.Lo's low and Key.Hi's low bits) uses.
func (s *Store) shard(k keyhash.Key) *shard {
	hi, _ := bits.Mul64(k.Hi, uint64(len(s.shards)))
	return s.shards[hi]
}

// MaxValueSize returns the largest value Set accepts.
func (s *Store) MaxValueSize() int { return s.l.maxValueSize }

// Get appends k's value to dst and reports whether k was present. A hit
// or a miss counts as one request for the eviction policy.
func (s *Store) Get(k keyhash.Key, dst []byte) ([]byte, bool) {
	return s.shard(k).get(k, dst)
}

// Contains reports whether k is present, without recording an access.
func (s *Store) Contains(k keyhash.Key) bool {
	return s.shard(k).contains(k)
}

// Set stores a copy of v under k, replacing any previous value. Storing is
// not an access: a key earns its place in the main queue by later hits. Set
// fails only for a value longer than MaxValueSize, with an error wrapping
// ErrTooLarge.
func (s *Store) Set(k keyhash.Key, v []byte) error {
	if len(v) > s.l.maxValueSize {
		return fmt.Errorf("%w: %d bytes, above the limit of %d (Config.MaxValueSize)", ErrTooLarge, len(v), s.l.maxValueSize)
	}
	s.shard(k).set(k, v)
	return nil
}

// Delete removes k and reports whether it was present.
func (s *Store) Delete(k keyhash.Key) bool {
	return s.shard(k).delete(k)
}

// Stats returns the store's counters, summed over shards one at a time (so
// not an atomic snapshot while other goroutines write).
func (s *Store) Stats() Stats {
	st := Stats{Capacity: s.l.capacity, Shards: len(s.shards)}
	fixed := s.l.fixedBytes() + int64(s.l.segs)*segMetaBytes
	for _, sh := range s.shards {
		sh.mu.RLock()
		st.Entries += sh.entries
		st.SmallEntries += sh.q[qSmall].entries
		st.MainEntries += sh.q[qMain].entries
		st.LiveBytes += sh.q[qSmall].liveBytes + sh.q[qMain].liveBytes
		st.Bytes += fixed + int64(s.l.segs-sh.freeSegs)*int64(s.l.segSize)
		st.Evictions += sh.evictions
		st.IndexSlots += s.l.slots
		st.MaxEntries += s.l.maxEntries
		sh.mu.RUnlock()
	}
	return st
}
