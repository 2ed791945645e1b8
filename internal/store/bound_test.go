package store

import (
	"testing"

	"github.com/coalesce-go/coalesce/internal/keyhash"
)

// TestEvictionBoundedWhenAllHot fills one shard, hits every entry until its
// access count is at the top, then stores new keys. Exact CLOCK would walk
// main's whole queue up to freqMax times before dropping anything, under
// the write lock; every Set must instead process a bounded number of
// records at the queues' tails, whatever the counts. The bound is counted,
// not timed.
func TestEvictionBoundedWhenAllHot(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   Config
		value int
	}{
		{"entries", Config{MaxEntries: 20000, Shards: 1}, 1},
		{"bytes", Config{MaxBytes: 8 << 20, Shards: 1}, 128},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			sh := s.shards[0]
			key := func(i uint64) keyhash.Key {
				return keyhash.Key{Hi: i * 0x9e3779b97f4a7c15, Lo: (i ^ 0x5555) * 0xbf58476d1ce4e5b9}
			}
			v := make([]byte, tc.value)
			n := uint64(0)
			for ; sh.evictions == 0; n++ {
				if err := s.Set(key(n), v); err != nil {
					t.Fatal(err)
				}
			}
			// A few more fills so that main holds most entries, then every
			// resident key is hit to the top count.
			for end := 3 * n; n < end; n++ {
				_ = s.Set(key(n), v)
			}
			hot := 0
			for i := range n {
				if s.Contains(key(i)) {
					hot++
					for range freqMax {
						s.Get(key(i), nil)
					}
				}
			}
			if sh.q[qMain].entries < hot/2 {
				t.Fatalf("main holds %d of %d entries: the test does not exercise main's eviction", sh.q[qMain].entries, hot)
			}
			maxSteps, total := 0, 0
			const sets = 5000
			for i := range uint64(sets) {
				if err := s.Set(key(n+i), v); err != nil {
					t.Fatal(err)
				}
				maxSteps = max(maxSteps, sh.steps)
				total += sh.steps
			}
			perSeg := s.l.segSize / recordSize(tc.value)
			bound := maxStepsPerSet(s.l, recordSize(tc.value))
			t.Logf("%d hot entries, %d in main; records processed per Set: max %d, mean %.1f, bound %d (%d records per segment)",
				hot, sh.q[qMain].entries, maxSteps, float64(total)/sets, bound, perSeg)
			if maxSteps > bound {
				t.Fatalf("a Set processed %d records at the queues' tails, above the bound of %d", maxSteps, bound)
			}
			checkInvariants(t, s)
		})
	}
}

// maxStepsPerSet is the most records one Set of a record of size rec may
// process at the queues' tails in a store of layout l holding records of
// that size: its moves (keepRecords), fewer than a segment of records
// carried to a main queue with less room than a segment, what the cleaner
// drops for it (twice its size), and, when a store finds only the reserve
// free, the rest of the segment being drained and of one more if moves
// filled main's head meanwhile.
func maxStepsPerSet(l layout, rec int) int {
	return keepRecords + 3*l.segSize/rec + 2 + 16
}
