package bench

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coalesce-go/coalesce/internal/histogram"
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
// clock's own cost (tens of nanoseconds) is in every figure, and quantiles
// are histogram buckets' upper bounds (within 12.5%).
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

	// Sets, busy loops and hits are recorded in histograms, which allocate
	// nothing: the slices this used to append to were "preallocated" with
	// b.N, which is 1 until b.Loop has run, so they grew (copying up to
	// tens of MiB at a time) in the timed loop.
	//
	// The busy loop is the machine's share of the tail: a computation
	// without memory traffic as long as the median Set, timed the same way
	// after every Set. On the shared 2-core VM this was written on, a
	// thread that only reads the clock loses 20-100 µs more than 1,000
	// times a second, so about 1% of 5 µs operations, whatever they do,
	// take 20-100 µs longer, and the slowest take milliseconds.
	work := calibrateBurn(s, v, &n)
	var stop atomic.Bool
	var sets, burns, hits histogram.Histogram
	var missCount atomic.Int64
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
				hits.Record(d)
			} else {
				missCount.Add(1)
			}
		}
	})
	b.ResetTimer()
	for b.Loop() {
		k := testKey(n)
		n++
		t0 := time.Now()
		_ = s.Set(k, v)
		t1 := time.Now()
		sets.Record(t1.Sub(t0))
		burnSink += burn(work)
		burns.Record(time.Since(t1))
	}
	b.StopTimer()
	stop.Store(true)
	wg.Wait()

	ss, bs, hs := sets.Summary(), burns.Summary(), hits.Summary()
	b.ReportMetric(float64(ss.P99.Nanoseconds()), "set-p99-ns")
	b.ReportMetric(float64(ss.P999.Nanoseconds()), "set-p99.9-ns")
	b.ReportMetric(float64(ss.Max.Nanoseconds()), "set-max-ns")
	b.ReportMetric(float64(bs.P999.Nanoseconds()), "loop-p99.9-ns")
	if hs.Count > 0 {
		b.ReportMetric(float64(hs.P999.Nanoseconds()), "hit-p99.9-ns")
		b.ReportMetric(float64(hs.Max.Nanoseconds()), "hit-max-ns")
	}
	fmt.Printf("\n%d entries of %d B made hot (%d of them main's), then %d Sets of new keys\n", hot, valueSize, st.MainEntries, ss.Count)
	fmt.Printf("Set: p50 %v, p99 %v, p99.9 %v, max %v\n", ss.P50, ss.P99, ss.P999, ss.Max.Round(time.Microsecond))
	fmt.Printf("records processed at the queues' tails by one Set, at most (since New, the fill included): %d\n", s.Stats().MaxSetSteps)
	fmt.Printf("busy loop as long as the median Set: p50 %v, p99 %v, p99.9 %v, max %v\n", bs.P50, bs.P99, bs.P999, bs.Max.Round(time.Microsecond))
	if hs.Count > 0 {
		fmt.Printf("concurrent Get: %d hits, %d misses; hit p50 %v, p99 %v, p99.9 %v, max %v\n", hs.Count, missCount.Load(),
			hs.P50, hs.P99, hs.P999, hs.Max.Round(time.Microsecond))
	}
	runtime.KeepAlive(s)
}

// calibrateBurn stores 20,000 new keys (untimed by the benchmark) to find
// the median Set, and returns the iterations of burn that take as long.
func calibrateBurn(s *store.Store, v []byte, n *uint64) int {
	var sets histogram.Histogram
	for range 20_000 {
		t0 := time.Now()
		_ = s.Set(testKey(*n), v)
		sets.Record(time.Since(t0))
		*n++
	}
	target := sets.Summary().P50
	work := 64
	for {
		var h histogram.Histogram
		for range 2_000 {
			t0 := time.Now()
			burnSink += burn(work)
			h.Record(time.Since(t0))
		}
		if h.Summary().P50 >= target || work > 1<<24 {
			return work
		}
		work += work / 4
	}
}

// burn is n rounds of xorshift: time on the processor and nothing else.
func burn(n int) uint64 {
	x := uint64(n) | 1
	for range n {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

var burnSink uint64
