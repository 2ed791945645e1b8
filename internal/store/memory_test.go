package store

import (
	"runtime"
	"testing"

	"github.com/coalesce-go/coalesce/internal/keyhash"
)

// TestNewCostsLittle checks that an empty store does not hold its budget:
// New with 1 GiB must leave at most 64 MiB more live heap, and the heap
// must grow as results arrive.
func TestNewCostsLittle(t *testing.T) {
	const budget, limit = 1 << 30, 64 << 20
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	s, err := New(Config{MaxBytes: budget})
	if err != nil {
		t.Fatal(err)
	}
	empty := heap() - before
	st := s.Stats()
	t.Logf("heap after New(%d MiB): %.1f MiB; Stats.Bytes %.1f MiB of %.1f MiB", budget>>20, float64(empty)/(1<<20), float64(st.Bytes)/(1<<20), float64(st.Capacity)/(1<<20))
	if empty > limit {
		t.Fatalf("New with a 1 GiB budget holds %.1f MiB of heap, want ≤ %d MiB until results arrive", float64(empty)/(1<<20), limit>>20)
	}
	if st.Bytes > int64(empty)+1<<20 {
		t.Fatalf("Stats.Bytes %d counts more than the %d bytes allocated", st.Bytes, empty)
	}
	v := make([]byte, 128)
	for i := range uint64(200_000) {
		_ = s.Set(keyFor(i), v)
	}
	filled := heap() - before
	st = s.Stats()
	t.Logf("after 200,000 entries: heap %.1f MiB, Stats.Bytes %.1f MiB", float64(filled)/(1<<20), float64(st.Bytes)/(1<<20))
	if filled <= empty || filled > 2*limit {
		t.Fatalf("heap %.1f MiB after 200,000 entries of 128 B (empty: %.1f MiB): it should follow use", float64(filled)/(1<<20), float64(empty)/(1<<20))
	}
	runtime.KeepAlive(s)
}

func keyFor(i uint64) keyhash.Key {
	return keyhash.Key{Hi: i * 0x9e3779b97f4a7c15, Lo: (i ^ 0x5555) * 0xbf58476d1ce4e5b9}
}
