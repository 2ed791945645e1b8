package bench

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coalesce-go/coalesce/internal/keyhash"
	"github.com/coalesce-go/coalesce/internal/store"
	"github.com/maypok86/otter/v2"
)

// The hit path: parallel Get of a Zipf-distributed key stream over a
// prefilled cache that holds every key, so every Get hits. Compare with
//
//	cd bench && go test -run XXX -bench 'GetZipf' -count 8 > /tmp/get.txt
//	go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da -col /cache /tmp/get.txt
const (
	zipfKeys   = 500_000
	zipfStream = 1 << 20
)

var zipfSetup = sync.OnceValues(func() ([]keyhash.Key, []uint32) {
	keys := make([]keyhash.Key, zipfKeys)
	for i := range keys {
		keys[i] = testKey(uint64(i))
	}
	z := rand.NewZipf(rand.New(rand.NewPCG(1, 1)), 1.1, 1, zipfKeys-1)
	stream := make([]uint32, zipfStream)
	for i := range stream {
		stream[i] = uint32(z.Uint64())
	}
	return keys, stream
})

var (
	zipfStore = sync.OnceValue(func() *store.Store {
		keys, _ := zipfSetup()
		s, err := store.New(store.Config{MaxBytes: 256 << 20})
		if err != nil {
			panic(err)
		}
		v := make([]byte, valueSize)
		for _, k := range keys {
			_ = s.Set(k, v)
		}
		return s
	})
	zipfOtter = sync.OnceValue(func() *otter.Cache[keyhash.Key, []byte] {
		keys, _ := zipfSetup()
		c := otter.Must(&otter.Options[keyhash.Key, []byte]{
			MaximumWeight: 256 << 20,
			Weigher:       func(_ keyhash.Key, v []byte) uint32 { return uint32(16 + len(v)) },
		})
		for _, k := range keys {
			c.Set(k, make([]byte, valueSize))
		}
		return c
	})
)

// BenchmarkGetZipf copies the value out in both cases: the store must (its
// arena is reused), and a caller of otter that hands results to other
// goroutines would too; /cache=otter-nocopy shows otter returning its slice.
func BenchmarkGetZipf(b *testing.B) {
	keys, stream := zipfSetup()
	var seed atomic.Uint64
	run := func(b *testing.B, get func(k keyhash.Key, dst []byte) ([]byte, bool)) {
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := int(seed.Add(7919) * 104729 % zipfStream)
			dst := make([]byte, 0, valueSize)
			misses := 0
			for pb.Next() {
				var ok bool
				if dst, ok = get(keys[stream[i]], dst[:0]); !ok {
					misses++
				}
				if i++; i == zipfStream {
					i = 0
				}
			}
			if misses > 0 {
				b.Errorf("%d misses on a cache holding every key", misses)
			}
		})
	}
	b.Run("cache=coalesce-store", func(b *testing.B) {
		s := zipfStore()
		run(b, s.Get)
	})
	b.Run("cache=otter", func(b *testing.B) {
		c := zipfOtter()
		run(b, func(k keyhash.Key, dst []byte) ([]byte, bool) {
			v, ok := c.GetIfPresent(k)
			return append(dst, v...), ok
		})
	})
	b.Run("cache=otter-nocopy", func(b *testing.B) {
		c := zipfOtter()
		run(b, func(k keyhash.Key, dst []byte) ([]byte, bool) {
			v, ok := c.GetIfPresent(k)
			return v, ok
		})
	})
}
