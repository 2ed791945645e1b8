package store

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestRWLockExcludes has writers and readers, spinning and not, check
// that no writer ever shares the lock: a writer finding anyone inside, or
// a reader finding a writer inside, fails. The counter is written without
// atomics, so -race also sees any overlap.
func TestRWLockExcludes(t *testing.T) {
	for _, spin := range []bool{true, false} {
		l := rwlock{spin: spin}
		var writers, readers atomic.Int32
		var counter, overlaps int
		var bad atomic.Int32
		var wg sync.WaitGroup
		for w := range 6 {
			wg.Go(func() {
				for i := range 3000 {
					if (w+i)%4 == 0 {
						l.Lock()
						if writers.Add(1) != 1 || readers.Load() != 0 {
							overlaps++
						}
						counter++
						writers.Add(-1)
						l.Unlock()
						continue
					}
					l.RLock()
					readers.Add(1)
					if writers.Load() != 0 {
						bad.Add(1)
					}
					_ = counter
					readers.Add(-1)
					l.RUnlock()
				}
			})
		}
		wg.Wait()
		if overlaps != 0 || bad.Load() != 0 {
			t.Errorf("spin %v: %d writers shared the lock, %d readers met a writer", spin, overlaps, bad.Load())
		}
		if want := 6 * 3000 / 4; counter != want {
			t.Errorf("spin %v: counter %d, want %d", spin, counter, want)
		}
	}
}
