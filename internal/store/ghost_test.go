package store

import (
	"testing"

	"github.com/coalesce-go/coalesce/internal/keyhash"
)

// TestGhostClearsInSteps checks that no add clears more than a bounded
// number of filter words, whatever the ghost's size: clearing a whole
// filter at the turn took one Set ~550 KiB of memclr in a 1 GiB store. It
// also checks what the ghost must still do: remember every key of its
// current filter and of the older one, except those that the clearing
// ahead of the turn forgets a little early, and start each turn with a
// clean filter.
func TestGhostClearsInSteps(t *testing.T) {
	const capacity = 1 << 20
	g := newGhost(capacity, defaultGhostBits)
	key := func(i uint64) keyhash.Key {
		return keyhash.Key{Hi: i * 0x9e3779b97f4a7c15, Lo: (i ^ 0x5555) * 0xbf58476d1ce4e5b9}
	}
	// Keys added within this many adds are remembered: the older filter
	// is cleared at most ghostClearWords words per add before its turn.
	early := (g.words + ghostClearWords - 1) / ghostClearWords
	remembered := g.half - early
	maxWiped := 0
	for i := range uint64(3 * capacity) {
		turn := g.added >= g.half
		g.add(key(i))
		maxWiped = max(maxWiped, g.wiped)
		if turn {
			kw, km := g.block(key(i))
			for w, x := range g.filters[g.cur] {
				if x != 0 && (w != kw || x != km) {
					t.Fatalf("add %d: the filter starting its turn has word %d set (%#x), stale from two turns ago", i, w, x)
				}
			}
		}
		if i%99991 == 0 && i > uint64(remembered) {
			for j := i - uint64(remembered) + 1; j <= i; j++ {
				if !g.contains(key(j)) {
					t.Fatalf("after add %d: key %d, added %d adds ago, forgotten (remembered: %d)", i, j, i-j, remembered)
				}
			}
		}
	}
	t.Logf("ghost of %d keys, %d words per filter: at most %d words cleared by one add", capacity, g.words, maxWiped)
	if maxWiped > ghostClearWords {
		t.Fatalf("one add cleared %d words (%d KiB), want at most %d", maxWiped, maxWiped*8>>10, ghostClearWords)
	}
}
