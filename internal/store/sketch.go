package store

import (
	"math/bits"
	"sync/atomic"

	"github.com/coalesce-go/coalesce/internal/keyhash"
)

// sketch estimates how often each key was requested recently: a count-min
// sketch of 4-bit counters, as in TinyLFU (Einziger et al.) and Caffeine,
// which the eviction policy consults before letting a key into the main
// queue. It remembers keys long after they left the store, which is what
// finds the stable subset of a loop larger than the cache.
//
// Counters are packed 16 to a uint64 in blocks of 8 words (one cache line);
// a key picks a block and one counter in each of 4 pairs of its words. Its
// estimate is the least of its 4 counters. Once sampleFactor increments per
// entry of the shard have changed a counter, the next Set halves every
// counter, so that old popularity fades.
//
// Readers increment under the shard's read lock with a CAS per word, so
// concurrent increments may be lost (an estimate, after all); halving runs
// under the write lock.
type sketch struct {
	words  []uint64
	blocks uint64
	adds   atomic.Int64
	limit  int64 // adds before halving
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
)

func sketchWords(entries int) int {
	return max(entries*sketchBytes/(blockWords*8), 1) * blockWords
}

// newSketch returns a sketch of n words for a shard of entries, or an empty
// one (nil words) for n zero.
func newSketch(n int, entries int) sketch {
	if n == 0 {
		return sketch{}
	}
	return sketch{
		words:  make([]uint64, n),
		blocks: uint64(n / blockWords),
		limit:  int64(max(sampleFactor*entries, 16)),
	}
}

// spread mixes both halves of the key, whose top and low bits the shards,
// index and ghost already use.
func spread(k keyhash.Key) uint64 {
	h := (k.Hi ^ bits.RotateLeft64(k.Lo, 29)) * 0x9e3779b97f4a7c15
	return h ^ h>>31
}

// counters returns the word and nibble shift of k's 4 counters.
func (f *sketch) counters(k keyhash.Key) (w [4]uint64, sh [4]uint64) {
	h := spread(k)
	block := uint64(uint32(h)) * f.blocks >> 32 * blockWords
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
func (f *sketch) estimate(k keyhash.Key) uint64 {
	w, sh := f.counters(k)
	est := uint64(counterMax)
	for i := range 4 {
		est = min(est, atomic.LoadUint64(&f.words[w[i]])>>sh[i]&counterMax)
	}
	return est
}

// increment counts one request for k. It increments only the counters at
// k's current minimum (conservative update), which keeps two counters per
// entry from saturating.
func (f *sketch) increment(k keyhash.Key) {
	w, sh := f.counters(k)
	var v [4]uint64
	est := uint64(counterMax)
	for i := range 4 {
		v[i] = atomic.LoadUint64(&f.words[w[i]])
		est = min(est, v[i]>>sh[i]&counterMax)
	}
	if est == counterMax {
		return
	}
	for i := range 4 {
		p := &f.words[w[i]]
		for x := v[i]; x>>sh[i]&counterMax == est; x = atomic.LoadUint64(p) {
			if atomic.CompareAndSwapUint64(p, x, x+1<<sh[i]) {
				break
			}
		}
	}
	f.adds.Add(1)
}

// due reports whether the sketch has counted enough to be halved.
func (f *sketch) due() bool { return f.words != nil && f.adds.Load() >= f.limit }

// halve divides every counter by two. The caller holds the write lock.
func (f *sketch) halve() {
	for i, x := range f.words {
		f.words[i] = x >> 1 & 0x7777777777777777
	}
	f.adds.Store(f.adds.Load() / 2)
}
