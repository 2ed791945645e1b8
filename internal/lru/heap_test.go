package lru

import (
	"fmt"
	"runtime"
	"testing"
)

// TestHeapWithinBudget measures what the store really holds, since Bytes is
// only the store's own account of it: a store filled and then churned with
// far more distinct keys than fit must not grow the live heap beyond its
// budget, and Bytes must agree with the heap.
func TestHeapWithinBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a 16 MiB store many times over")
	}
	const (
		budget = 16 << 20
		// The runtime and the testing package allocate and free a little of
		// their own while the test runs (timers, profiling buckets, the
		// sweeper's bookkeeping); HeapAlloc moves by about 40 KiB between
		// the two readings for that alone. 256 KiB, 1.6% of the budget, is
		// well above that noise and well below any per-entry error worth
		// catching: 1 byte per entry is already 80 KiB at 128-byte values,
		// and the error this test was written for was 4.3 MiB.
		slack = 256 << 10
	)
	// 128 bytes is the size the issue measured; 100 is rounded up to 112 by
	// the allocator; 8 makes the nodes and the index most of the cost.
	for _, c := range []struct{ size, churn int }{{128, 10}, {100, 3}, {8, 3}} {
		size := c.size
		t.Run(fmt.Sprintf("%dB", size), func(t *testing.T) {
			v := make([]byte, size)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			s, err := New(budget, 1<<10)
			if err != nil {
				t.Fatal(err)
			}
			// Many times the keys that fit, so most Sets evict: that churn,
			// not the first fill, is what left a Go map larger than its
			// live entries need. Ten times at the size the issue measured;
			// three elsewhere keeps the race-detector run short.
			fit := budget / (size + EntryOverhead)
			for i := range c.churn * fit {
				if err := s.Set(key(i), v); err != nil {
					t.Fatal(err)
				}
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			st := s.Stats()
			runtime.KeepAlive(s)
			grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
			t.Logf("%d entries, Stats.Bytes %d (%.2f MiB), heap grew %d (%.2f MiB), %.1f B/entry beside the %d-byte values",
				st.Entries, st.Bytes, float64(st.Bytes)/(1<<20), grew, float64(grew)/(1<<20),
				float64(grew-int64(st.Entries*size))/float64(st.Entries), size)
			if grew > budget+slack {
				t.Errorf("heap grew %d bytes (%.2f MiB) for a budget of %d (%.2f MiB)", grew, float64(grew)/(1<<20), budget, float64(budget)/(1<<20))
			}
			// Bytes may overstate tiny values, which are charged a whole
			// 16-byte block though the allocator may pack two in one; it
			// must never understate.
			if d := grew - st.Bytes; d > slack || (size >= tinySize && d < -slack) {
				t.Errorf("heap grew %d bytes but Stats.Bytes is %d", grew, st.Bytes)
			}
		})
	}
}
