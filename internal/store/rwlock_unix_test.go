//go:build unix

package store

import (
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestRWLockBlocksPastSpin holds the lock for 2,000 times spinFor: the
// waiting reader and writer must stop retrying after spinFor and block,
// which the process's processor time shows (retrying all along, they
// would use about the hold's length each), then get the lock once it is
// released.
func TestRWLockBlocksPastSpin(t *testing.T) {
	const hold = 2000 * spinFor
	l := rwlock{spin: true}
	l.Lock()
	var got atomic.Int32
	var wg sync.WaitGroup
	wg.Go(func() { l.RLock(); got.Add(1); l.RUnlock() })
	wg.Go(func() { l.Lock(); got.Add(1); l.Unlock() })
	before := cpuTime(t)
	time.Sleep(hold)
	used := cpuTime(t) - before
	if n := got.Load(); n != 0 {
		t.Fatalf("%d waiters got a lock that is held", n)
	}
	l.Unlock()
	wg.Wait()
	if n := got.Load(); n != 2 {
		t.Fatalf("%d of 2 waiters got the lock after its release", n)
	}
	if used > hold/4 {
		t.Errorf("the process used %v of processor time while two waiters waited %v: they did not block", used, hold)
	}
}

func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
