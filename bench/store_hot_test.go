package bench

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coalesce-go/coalesce/internal/store"
)

// BenchmarkStoreHotSet is eviction's worst case: a 1 GiB store filled with
// 128-byte values, every entry hit until its access count is at the top,
// then new keys stored one after another while another goroutine hits old
// keys. Exact CLOCK would walk main's whole queue before dropping anything;
// the store bounds each Set's work instead. It reports the latency of each
// Set and of the concurrent hits (one iteration is one Set):
//
//	cd bench && go test -run XXX -bench StoreHotSet -benchtime 400000x -timeout 30m
//
// Filling and heating take a minute; the Sets are timed one by one, so the
// clock's own cost (tens of nanoseconds) is in every figure.
func BenchmarkStoreHotSet(b *testing.B) {
	s, err := store.New(store.Config{MaxBytes: budget})
	if err != nil {
		b.Fatal(err)
	}
	v := make([]byte, valueSize)
	var n uint64
	for ; s.Stats().Evictions == 0 || n%1_000_000 != 0; n++ {
		_ = s.Set(testKey(n), v)
	}
	// Two more fills' worth of new keys, so that main holds most entries
	// and small is at its share, as in a store that has run for a while.
	for end := n + 2*uint64(s.Stats().Entries); n < end; n++ {
		_ = s.Set(testKey(n), v)
	}
	var dst []byte
	hot := 0
	for i := range n {
		if !s.Contains(testKey(i)) {
			continue
		}
		hot++
		for range 3 {
			dst, _ = s.Get(testKey(i), dst[:0])
		}
	}
	st := s.Stats()
	runtime.GC()

	var stop atomic.Bool
	var hits []time.Duration
	var hitCount, missCount int
	var wg sync.WaitGroup
	wg.Go(func() {
		var dst []byte
		var ok bool
		for i := uint64(0); !stop.Load(); i++ {
			k := testKey(splitmix(i) % n)
			t0 := time.Now()
			dst, ok = s.Get(k, dst[:0])
			d := time.Since(t0)
			if ok {
				hits = append(hits, d)
				hitCount++
			} else {
				missCount++
			}
		}
	})
	sets := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		k := testKey(n)
		n++
		t0 := time.Now()
		_ = s.Set(k, v)
		sets = append(sets, time.Since(t0))
	}
	b.StopTimer()
	stop.Store(true)
	wg.Wait()

	pct := func(d []time.Duration, p float64) time.Duration {
		return d[min(int(float64(len(d))*p), len(d)-1)]
	}
	slices.Sort(sets)
	slices.Sort(hits)
	b.ReportMetric(float64(pct(sets, 0.99).Nanoseconds()), "set-p99-ns")
	b.ReportMetric(float64(pct(sets, 0.999).Nanoseconds()), "set-p99.9-ns")
	b.ReportMetric(float64(sets[len(sets)-1].Nanoseconds()), "set-max-ns")
	if len(hits) > 0 {
		b.ReportMetric(float64(pct(hits, 0.999).Nanoseconds()), "hit-p99.9-ns")
		b.ReportMetric(float64(hits[len(hits)-1].Nanoseconds()), "hit-max-ns")
	}
	fmt.Printf("\n%d entries of %d B made hot (%d of them main's), then %d Sets of new keys\n", hot, valueSize, st.MainEntries, len(sets))
	fmt.Printf("Set: p50 %v, p99 %v, p99.9 %v, max %v\n", pct(sets, 0.5), pct(sets, 0.99), pct(sets, 0.999), sets[len(sets)-1].Round(time.Microsecond))
	if len(hits) > 0 {
		fmt.Printf("concurrent Get: %d hits, %d misses; hit p50 %v, p99 %v, p99.9 %v, max %v\n", hitCount, missCount,
			pct(hits, 0.5), pct(hits, 0.99), pct(hits, 0.999), hits[len(hits)-1].Round(time.Microsecond))
	}
	runtime.KeepAlive(s)
}
