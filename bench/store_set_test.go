package bench

import (
	"testing"

	"github.com/coalesce-go/coalesce/internal/store"
)

// BenchmarkStoreSetFull measures Set of new keys into a full store, where
// every Set evicts.
func BenchmarkStoreSetFull(b *testing.B) {
	s, err := store.New(store.Config{MaxBytes: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	v := make([]byte, valueSize)
	for i := range uint64(1_000_000) {
		_ = s.Set(testKey(i), v)
	}
	b.ResetTimer()
	i := uint64(1_000_000)
	for b.Loop() {
		_ = s.Set(testKey(i), v)
		i++
	}
}
