// Package store holds computed results in memory under a byte budget, with
// no pointer per entry for the garbage collector to scan, and evicts with
// S3-FIFO (Yang et al., SOSP 2023) guarded by TinyLFU admission (Einziger et
// al.), which resists scans and loops and lets hits run without a global
// lock.
//
// The one thing to know: the budget covers everything the store allocates
// (arenas, index, ghosts, sketch and metadata) and is never exceeded, but
// it is allocated as the store fills, in bounded steps: 64 KiB (72 KiB in
// Go's pages) arena segments the first time each is used, index parts of
// at most 8,192 slots that double independently, a part's sketch once the
// part has grown to a sixteenth of its size, and the ghosts at a shard's
// first drop. An empty store of 1 GiB holds under 1 MiB.
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
// (main's if small is empty), and the byte-bound eviction runs a few
// segments ahead, each Set freeing what it stores, instead of draining a
// whole segment in one Set. A count-min sketch of 4-bit counters estimates
// how often every key, resident or not, was requested lately (halved a few
// index parts per Set once enough requests were counted): an unaccessed key
// leaving small, or a ghost hit, takes a place in a full main queue only if
// its estimate beats main's victim's by a margin, which keeps a stable
// subset of a loop larger than the cache. As in ARC, keys coming back from
// the ghosts adapt small's share and the margin, so that recency-heavy
// workloads are not held to a fixed small window. An index of uint64 slots
// (offset, 30-bit tag, 2-bit access count) maps keys to records; Get bumps
// the count and the sketch atomically under the shard's read lock.
package store

import (
	"fmt"
	"math/bits"
	"runtime"

	"github.com/coalesce-go/coalesce/internal/keyhash"
)

// Store maps keys to byte values under a byte budget. All methods are safe
// for concurrent use: Get and Contains take a shard's read lock, Set and
// Delete its write lock; no operation takes a lock across shards. A
// caller that finds its shard's lock taken retries for up to 100 µs,
// yielding between tries, before it blocks (see rwlock).
type Store struct {
	shards []*shard
	l      layout
}

// Stats is a snapshot of a store's contents and accounting.
type Stats struct {
	// Entries is the number of keys held.
	Entries int
	// Bytes is the memory the store has allocated, which grows as it
	// fills: per-segment metadata, the index's parts and sketch as they
	// have grown, the ghosts once the store first dropped a key, and every
	// arena segment allocated so far (segments are kept once allocated),
	// including the garbage left by overwrites and deletes that eviction
	// has not yet reclaimed and the unused tails of segments.
	Bytes int64
	// LiveBytes is the arena bytes of live records (16-byte key, length,
	// value).
	LiveBytes int64
	// Capacity is the whole budget: what Bytes reaches when the store is
	// full, and never exceeds.
	Capacity int64
	// Evictions counts entries dropped to make room; deletes and overwrites
	// are not evictions.
	Evictions uint64
	// SmallEntries and MainEntries split Entries by S3-FIFO queue.
	SmallEntries, MainEntries int
	// MaxSetSteps is the most records a single Set has processed at the
	// queues' tails (moved, dropped, or skipped as garbage) since New, in
	// any shard: eviction's work per Set, which keepRecords and the byte
	// cleaner's pace bound whatever the entries' access counts.
	MaxSetSteps int
	// Shards is the number of shards; IndexSlots their index slots
	// allocated so far in all; MaxEntries the entry cap in all (the
	// index's, or Config.MaxEntries').
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
	spin := runtime.GOMAXPROCS(0) > 1
	for i := range s.shards {
		s.shards[i] = newShard(&s.l)
		s.shards[i].mu.spin = spin
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
	meta := int64(s.l.segs)*segMetaBytes + int64(s.l.parts)*partBytes
	for _, sh := range s.shards {
		sh.mu.RLock()
		st.Entries += sh.entries
		st.SmallEntries += sh.q[qSmall].entries
		st.MainEntries += sh.q[qMain].entries
		st.LiveBytes += sh.q[qSmall].liveBytes + sh.q[qMain].liveBytes
		st.Bytes += meta + int64(sh.usedSegs)*int64(s.l.segSize) + sh.idx.bytes + sh.ghost.allocated() + sh.mghost.allocated()
		st.Evictions += sh.evictions
		st.MaxSetSteps = max(st.MaxSetSteps, sh.maxSteps)
		st.IndexSlots += sh.idx.slots
		st.MaxEntries += s.l.maxEntries
		sh.mu.RUnlock()
	}
	return st
}
