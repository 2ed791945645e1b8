package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coalesce-go/coalesce"
	"golang.org/x/sync/singleflight"
)

// BenchmarkWake measures how long after a computation returns its waiters
// are back in their own code: 50 callers ask for one fresh input, the
// computation holds until all of them wait, then stamps the time and
// returns; each waiter stamps the time when Get returns. The metrics are
// the median and worst of those gaps over all waiters of all iterations
// (wake-p50-µs, wake-max-µs). nginx's proxy_cache_lock polls, so its
// waiters return up to 500 ms late; singleflight is the reference for a
// wake-up without polling.
func BenchmarkWake(b *testing.B) {
	const waiters = 50
	impls := []struct {
		name string
		make func(fn func([]byte) []byte) (get func([]byte), closeFn func())
	}{
		{"coalesce", func(fn func([]byte) []byte) (func([]byte), func()) {
			g, err := coalesce.New(func(_ context.Context, in []byte) ([]byte, error) { return fn(in), nil },
				coalesce.Options{CacheBytes: 64 << 20, Workers: 2})
			if err != nil {
				b.Fatal(err)
			}
			return func(in []byte) {
				if _, err := g.Get(context.Background(), in); err != nil {
					b.Error(err)
				}
			}, func() { g.Close() }
		}},
		{"singleflight", func(fn func([]byte) []byte) (func([]byte), func()) {
			var sf singleflight.Group
			return func(in []byte) {
				sf.Do(string(in), func() (any, error) { return fn(in), nil })
			}, func() {}
		}},
	}
	for _, impl := range impls {
		b.Run("impl="+impl.name, func(b *testing.B) {
			var entered atomic.Int32
			var doneAt atomic.Int64
			fn := func(in []byte) []byte {
				// Hold until every caller has entered Get; then give them a
				// moment to park, so the measured wake-up is from sleep.
				for entered.Load() < waiters {
					time.Sleep(10 * time.Microsecond)
				}
				time.Sleep(200 * time.Microsecond)
				doneAt.Store(time.Now().UnixNano())
				return in
			}
			get, closeFn := impl.make(fn)
			defer closeFn()
			gaps := make([]time.Duration, 0, b.N*waiters)
			var mu sync.Mutex
			for i := 0; b.Loop(); i++ {
				entered.Store(0)
				in := []byte(fmt.Sprintf("wake-%d", i))
				var wg sync.WaitGroup
				for range waiters {
					wg.Add(1)
					go func() {
						defer wg.Done()
						entered.Add(1)
						get(in)
						back := time.Now().UnixNano()
						mu.Lock()
						gaps = append(gaps, time.Duration(back-doneAt.Load()))
						mu.Unlock()
					}()
				}
				wg.Wait()
			}
			slices.Sort(gaps)
			if len(gaps) > 0 {
				b.ReportMetric(float64(gaps[len(gaps)/2].Nanoseconds())/1e3, "wake-p50-µs")
				b.ReportMetric(float64(gaps[len(gaps)*99/100].Nanoseconds())/1e3, "wake-p99-µs")
				b.ReportMetric(float64(gaps[len(gaps)-1].Nanoseconds())/1e3, "wake-max-µs")
			}
		})
	}
}
