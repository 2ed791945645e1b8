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
			s, n := hotStore(t, tc.cfg, tc.value)
			maxSteps, mean := setSteps(t, s, n, tc.value, 5000)
			bound := maxStepsPerSet(s.l, recordSize(tc.value))
			t.Logf("records processed per Set: max %d, mean %.1f, bound %d (%d records per segment)",
				maxSteps, mean, bound, s.l.segSize/recordSize(tc.value))
			if maxSteps > bound {
				t.Fatalf("a Set processed %d records at the queues' tails, above the bound of %d", maxSteps, bound)
			}
			// Stats reports the most of any Set since New, the fill and the
			// heating included, which the bound covers too.
			if st := s.Stats(); st.MaxSetSteps < maxSteps || st.MaxSetSteps > bound {
				t.Fatalf("Stats.MaxSetSteps %d; want between the measured %d and the bound %d", st.MaxSetSteps, maxSteps, bound)
			}
			checkInvariants(t, s)
		})
	}
}

// TestNoSetDrainsASegment is TestEvictionBoundedWhenAllHot's byte-bound
// case in a shard large enough for the cleaner's full lead (leadSegs), as
// in a 1 GiB store: the cleaner must keep ahead, so that no store finds
// only the reserve and drains the rest of a segment itself. A Set then
// processes its moves and what it frees for its own record, at most two
// records' worth, and the victim admission may drop. On the old cleaner
// (twice a Set's bytes, from a segment before the reserve), 1 Set in
// about 1,500 processed 200 to 1,100 records.
func TestNoSetDrainsASegment(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a 42 MiB store three times")
	}
	const value = 128
	s, n := hotStore(t, Config{MaxBytes: 42 << 20, Shards: 1}, value)
	if s.l.leadSegs < 4 {
		t.Fatalf("%d segments of %d B: lead %d, want a layout with the full lead", s.l.segs, s.l.segSize, s.l.leadSegs)
	}
	maxSteps, mean := setSteps(t, s, n, value, 20000)
	bound := s.shards[0].keepLimit() + 3
	t.Logf("%d segments, lead %d: records processed per Set: max %d, mean %.1f, bound %d (%d records per segment)",
		s.l.segs, s.l.leadSegs, maxSteps, mean, bound, s.l.segSize/recordSize(value))
	if maxSteps > bound {
		t.Fatalf("a Set processed %d records at the queues' tails, above its moves and its own drops (%d): it drained a segment", maxSteps, bound)
	}
	checkInvariants(t, s)
}

// hotStore fills a one-shard store with values of the given size until it
// evicts, stores a few more fills so that main holds most entries, and
// hits every resident key to the top access count. It returns the store
// and the number of keys stored so far.
func hotStore(t *testing.T, cfg Config, value int) (*Store, uint64) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sh := s.shards[0]
	v := make([]byte, value)
	n := uint64(0)
	for ; sh.evictions == 0; n++ {
		if err := s.Set(hotKey(n), v); err != nil {
			t.Fatal(err)
		}
	}
	for end := 3 * n; n < end; n++ {
		_ = s.Set(hotKey(n), v)
	}
	hot := 0
	for i := range n {
		if s.Contains(hotKey(i)) {
			hot++
			for range freqMax {
				s.Get(hotKey(i), nil)
			}
		}
	}
	if sh.q[qMain].entries < hot/2 {
		t.Fatalf("main holds %d of %d entries: the test does not exercise main's eviction", sh.q[qMain].entries, hot)
	}
	t.Logf("%d hot entries, %d in main", hot, sh.q[qMain].entries)
	return s, n
}

// setSteps stores sets new keys after the first n and returns the most
// records one Set processed at the queues' tails and the mean.
func setSteps(t *testing.T, s *Store, n uint64, value, sets int) (maxSteps int, mean float64) {
	t.Helper()
	sh := s.shards[0]
	v := make([]byte, value)
	total := 0
	for i := range uint64(sets) {
		if err := s.Set(hotKey(n+i), v); err != nil {
			t.Fatal(err)
		}
		maxSteps = max(maxSteps, sh.steps)
		total += sh.steps
	}
	return maxSteps, float64(total) / float64(sets)
}

func hotKey(i uint64) keyhash.Key {
	return keyhash.Key{Hi: i * 0x9e3779b97f4a7c15, Lo: (i ^ 0x5555) * 0xbf58476d1ce4e5b9}
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
