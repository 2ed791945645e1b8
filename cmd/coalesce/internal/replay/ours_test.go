package replay

import (
	"testing"

	"github.com/coalesce-go/coalesce/internal/trace"
)

// TestOursHoldsAtMostCapacity guards the fairness of the comparison: a
// store that kept more entries than the size it is reported at would win
// hits it did not earn.
func TestOursHoldsAtMostCapacity(t *testing.T) {
	keys, _ := trace.ZipfKeys(1, 0.7, 20_000, 60_000)
	for _, capacity := range []int{100, 1000, 5000} {
		p, err := newOurs(capacity)
		if err != nil {
			t.Fatal(err)
		}
		o := p.(*ours)
		for i, k := range keys {
			o.Access(k)
			if i%500 == 0 || i == len(keys)-1 {
				if n := o.s.Stats().Entries; n > capacity {
					t.Fatalf("capacity %d: the store holds %d entries after %d requests", capacity, n, i+1)
				}
			}
		}
	}
}
