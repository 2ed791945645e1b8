package trace

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestLRUMatchesModel replays random keys against a slice kept in recency
// order, the most obvious LRU there is.
func TestLRUMatchesModel(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, capacity := range []int{0, 1, 2, 5, 50} {
		c := NewLRU(capacity)
		var model []uint64 // most recent first
		for i := range 20_000 {
			k := uint64(r.IntN(80))
			j := slices.Index(model, k)
			want := j >= 0
			if want {
				model = slices.Delete(model, j, j+1)
			}
			if capacity > 0 {
				model = slices.Insert(model, 0, k)
				if len(model) > capacity {
					model = model[:capacity]
				}
			}
			if got := c.Access(k); got != want {
				t.Fatalf("capacity %d, request %d for key %d: hit = %v, want %v", capacity, i, k, got, want)
			}
			if c.Len() != len(model) {
				t.Fatalf("capacity %d: Len = %d, want %d", capacity, c.Len(), len(model))
			}
		}
	}
}
