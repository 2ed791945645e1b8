package store

import "github.com/coalesce-go/coalesce/internal/keyhash"

// ghost remembers the keys recently dropped from a queue, so that a key
// that comes back soon after is admitted straight to the main queue and
// counts as evidence for the policy's adaptation. A
// map of keys would cost more than a cached value; this is two blocked Bloom
// filters that take turns: inserts go to the current one, lookups check both,
// and when the current one has taken half the ghost's capacity the older one
// is cleared and becomes current. A key is therefore remembered for between
// one half and one whole capacity of later drops, at about bitsPerKey/2 bits
// per remembered key, with a small false-positive rate (a false positive only
// admits a new key to main instead of small). The filters are allocated at
// the first drop: a store that has not filled yet has nothing to remember.
//
// The older filter is cleared ghostClearWords words per add over the last
// adds before its turn, not at once: clearing a whole filter (550 KiB in a
// 1 GiB store) was one Set's tens of microseconds. Keys in the words
// cleared early are forgotten up to words/ghostClearWords adds early, 0.3%
// of a half at 12 bits per key.
type ghost struct {
	filters [2][]uint64
	cur     int
	added   int // keys added to the current filter
	half    int // keys a filter takes before the two swap roles
	words   int // words per filter; 0 for an empty ghost
	clean   int // words of the older filter cleared for its next turn
	wiped   int // words the last add cleared, for tests
}

// ghostClearWords is the words of the older filter one add clears ahead of
// its turn (512 B).
const ghostClearWords = 64

// ghostHashes is how many bits a key sets within its 64-bit block.
const ghostHashes = 4

// newGhost returns a ghost of capacity keys, or an empty one (never added
// to) for capacity zero. It allocates nothing until the first add.
func newGhost(capacity int, bitsPerKey int) ghost {
	if capacity == 0 {
		return ghost{}
	}
	half := max(capacity/2, 1)
	return ghost{half: half, words: max((half*bitsPerKey+63)/64, 1)}
}

// allocated is the bytes of the filters allocated so far.
func (g *ghost) allocated() int64 {
	if g.filters[0] == nil {
		return 0
	}
	return int64(2 * g.words * 8)
}

func ghostBytes(capacity int, bitsPerKey int) int64 {
	if capacity == 0 {
		return 0
	}
	half := max(capacity/2, 1)
	words := max((half*bitsPerKey+63)/64, 1)
	return int64(2 * words * 8)
}

// block picks a word from the low half of Key.Lo (the index uses its top
// bits) and a mask of bits from Key.Hi's low bits (shards use its top bits).
func (g *ghost) block(k keyhash.Key) (word int, mask uint64) {
	word = int(uint64(uint32(k.Lo)) * uint64(g.words) >> 32)
	h := k.Hi
	for range ghostHashes {
		mask |= 1 << (h & 63)
		h >>= 6
	}
	return word, mask
}

func (g *ghost) add(k keyhash.Key) {
	if g.filters[0] == nil {
		if g.words == 0 {
			return
		}
		g.filters = [2][]uint64{make([]uint64, g.words), make([]uint64, g.words)}
		g.clean = g.words
	}
	g.wiped = 0
	if g.added >= g.half {
		// The older filter was cleared on the way here but for its last
		// ghostClearWords words at most (words ≤ half × ghostClearWords,
		// since bitsPerKey ≤ 64): a ghost of that size or less is cleared
		// at the turn, as it was.
		g.wipe(g.words - g.clean)
		g.cur ^= 1
		g.added, g.clean = 0, 0
	}
	w, m := g.block(k)
	g.filters[g.cur][w] |= m
	g.added++
	if rest := g.words - g.clean; rest > (g.half-g.added+1)*ghostClearWords {
		g.wipe(min(rest, ghostClearWords))
	}
}

// wipe clears the next n words of the filter that is not current.
func (g *ghost) wipe(n int) {
	clear(g.filters[g.cur^1][g.clean : g.clean+n])
	g.clean += n
	g.wiped += n
}

func (g *ghost) contains(k keyhash.Key) bool {
	if g.filters[0] == nil {
		return false
	}
	w, m := g.block(k)
	return g.filters[0][w]&m == m || g.filters[1][w]&m == m
}

// containsRecent reports whether k is in the current filter: dropped within
// the last half capacity of drops.
func (g *ghost) containsRecent(k keyhash.Key) bool {
	if g.filters[0] == nil {
		return false
	}
	w, m := g.block(k)
	return g.filters[g.cur][w]&m == m
}
