package store

import (
	"math/bits"
	"sync/atomic"

	"github.com/coalesce-go/coalesce/internal/keyhash"
)

// The frequency sketch estimates how often each key was requested recently:
// a count-min sketch of 4-bit counters, as in TinyLFU (Einziger et al.) and
// Caffeine, which the eviction policy consults before letting a key into
// the main queue. It remembers keys long after they left the store, which
// is what finds the stable subset of a loop larger than the cache.
//
// Each index part carries the sketch of the keys it picks, allocated at its
// full size once the part's table has grown to a sixteenth of its own
// (sketchStart), or at the first Set of one of its keys after the shard
// first evicted, whichever comes first (values larger than expected fill
// the arena before the tables grow); until then its keys are not counted
// and estimate 0. So an empty store holds no sketch, and no Set allocates
// more than one part's (at most 26 KiB). Counters are packed 16 to a uint64 in blocks of 8 words (one cache line);
// a key picks a block and one counter in each of 4 pairs of its words. Its
// estimate is the least of its 4 counters. Once sampleFactor increments per
// entry of the shard have changed a counter, every counter is halved, so
// that old popularity fades; the halving sweeps the parts a few at a time
// over the next Sets (aging), so that no Set halves a whole shard's sketch.
//
// Readers increment under the shard's read lock with a CAS per word, so
// concurrent increments may be lost (an estimate, after all); halving and
// growth run under the write lock.
type sketch struct {
	on    bool
	adds  atomic.Int64
	limit int64 // adds before halving
	sweep int   // the next part to halve, or -1 when no halving is due
}

const (
	// sketchBytes is the sketch's cost per entry: eight 4-bit counters
	// (Caffeine: 16). Fewer counters make estimates noisy where distinct
	// keys far outnumber entries, as in a loop: on the LIRS traces,
	// loop:20000 and cache2k_web07, the mean gap to OPT was 8.1 points with
	// 2 counters per entry and 7.4 with 8 (both without admitMargin); over
	// all of docs/HITRATIO.md, 6.66 and 6.46 with it. 4 B costs about 2.5%
	// of the entries per GiB.
	sketchBytes = 4
	// sampleFactor is requests per entry between halvings (Caffeine: 10).
	sampleFactor = 10
	counterMax   = 15
	// blockWords is the words of a block, one cache line.
	blockWords = 8
	// sweepWords is how many sketch words one Set halves at least while a
	// halving sweeps (a part holds at most maxPartSlots × 0.95 × sketchBytes
	// / 8 words).
	sweepWords = 4096
	// sketchStart is the share of its full size (as a divisor) that a
	// part's table reaches before its sketch is allocated. Counting only
	// from there, by when a shard is about 3% full, lost nothing on
	// docs/HITRATIO.md's traces (mean gap to OPT 6.27 points, 6.29 with
	// every sketch allocated by New), while a sketch grown with the table,
	// merging counters at each doubling (6.33) or resetting them as
	// Caffeine's ensureCapacity does (6.33), kept or lost what the small
	// sketch had counted: collisions while it was small persisted, or the
	// counts of the fill were lost.
	sketchStart = 16
)

// sketchBlocks is the blocks of the sketch of a part of n slots at load.
func sketchBlocks(n int, load float64) int {
	return max(int(float64(n)*load)*sketchBytes/(blockWords*8), 1)
}

func newSketch(on bool, entries int) sketch {
	return sketch{on: on, limit: int64(max(sampleFactor*entries, 16)), sweep: -1}
}

// spread mixes both halves of the key, whose top and low bits the shards,
// index and ghost already use.
func spread(k keyhash.Key) uint64 {
	h := (k.Hi ^ bits.RotateLeft64(k.Lo, 29)) * 0x9e3779b97f4a7c15
	return h ^ h>>31
}

// counters returns the word and nibble shift of k's 4 counters in a sketch
// of blocks blocks. The block comes from the hash's low half by
// multiply-shift, the counters within it from the high half, so that a key
// keeps its counters' places within a block when the sketch grows.
func counters(k keyhash.Key, blocks uint64) (w [4]uint64, sh [4]uint64) {
	h := spread(k)
	block := uint64(uint32(h)) * blocks >> 32 * blockWords
	c := h >> 32
	for i := range uint64(4) {
		x := c >> (i * 8)
		w[i] = block + i*2 + x&1
		sh[i] = (x >> 1 & 15) * 4
	}
	return w, sh
}

// estimate returns k's approximate request count, 0..15. Words are loaded
// atomically: readers may be incrementing under the read lock.
func (p *part) estimate(k keyhash.Key) uint64 {
	if p.blocks == 0 {
		return 0
	}
	w, sh := counters(k, p.blocks)
	est := uint64(counterMax)
	for i := range 4 {
		est = min(est, atomic.LoadUint64(&p.sketch[w[i]])>>sh[i]&counterMax)
	}
	return est
}

// increment counts one request for k and reports whether a counter changed.
// It increments only the counters at k's current minimum (conservative
// update), which keeps two counters per entry from saturating.
func (p *part) increment(k keyhash.Key) bool {
	if p.blocks == 0 {
		return false
	}
	w, sh := counters(k, p.blocks)
	var v [4]uint64
	est := uint64(counterMax)
	for i := range 4 {
		v[i] = atomic.LoadUint64(&p.sketch[w[i]])
		est = min(est, v[i]>>sh[i]&counterMax)
	}
	if est == counterMax {
		return false
	}
	for i := range 4 {
		q := &p.sketch[w[i]]
		for x := v[i]; x>>sh[i]&counterMax == est; x = atomic.LoadUint64(q) {
			if atomic.CompareAndSwapUint64(q, x, x+1<<sh[i]) {
				break
			}
		}
	}
	return true
}

// age advances the halving: it starts a sweep once enough requests were
// counted, and halves the next parts of a sweep in progress. The caller
// holds the write lock.
func (f *sketch) age(parts []part) {
	if !f.on {
		return
	}
	if f.sweep < 0 {
		if f.adds.Load() < f.limit {
			return
		}
		f.adds.Store(f.adds.Load() / 2)
		f.sweep = 0
	}
	for done := 0; done < sweepWords && f.sweep < len(parts); f.sweep++ {
		words := parts[f.sweep].sketch
		for i, x := range words {
			words[i] = x >> 1 & 0x7777777777777777
		}
		done += len(words)
	}
	if f.sweep == len(parts) {
		f.sweep = -1
	}
}
