package store

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coalesce-go/coalesce/internal/keyhash"
)

// selfValue is a value that carries its own checksum: its length and every
// byte derive from the key, so a reader can tell a torn or foreign value.
func selfValue(k keyhash.Key, maxLen int) []byte {
	n := int(k.Hi % uint64(maxLen+1))
	v := make([]byte, n)
	for i := range v {
		v[i] = byte(k.Lo>>(i%8*8)) ^ byte(i)
	}
	return v
}

func checkSelfValue(k keyhash.Key, v []byte, maxLen int) error {
	if want := int(k.Hi % uint64(maxLen+1)); len(v) != want {
		return fmt.Errorf("key %x: value of %d bytes, want %d", k, len(v), want)
	}
	for i, b := range v {
		if b != byte(k.Lo>>(i%8*8))^byte(i) {
			return fmt.Errorf("key %x: byte %d is %#x, want %#x", k, i, b, byte(k.Lo>>(i%8*8))^byte(i))
		}
	}
	return nil
}

// TestConcurrentChecksums runs Get, Set, Delete and Contains from several
// goroutines on a store small enough to evict all the time, and checks every
// value read against its checksum.
func TestConcurrentChecksums(t *testing.T) {
	for _, cfg := range []Config{
		{MaxBytes: 256 << 10, Shards: 2},
		{MaxEntries: 300},
		{MaxBytes: 2 << 20, Shards: 8},
	} {
		t.Run(fmt.Sprintf("%+v", cfg), func(t *testing.T) {
			const workers, ops, nkeys, maxLen = 6, 15000, 3000, 300
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			keys := make([]keyhash.Key, nkeys)
			rng := rand.New(rand.NewPCG(7, 7))
			for i := range keys {
				keys[i] = keyhash.Key{Hi: rng.Uint64(), Lo: rng.Uint64()}
			}
			var hits, failures atomic.Int64
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(w), 99))
					var dst []byte
					for range ops {
						k := keys[rng.IntN(nkeys)]
						switch r := rng.IntN(10); {
						case r < 5:
							var ok bool
							dst, ok = s.Get(k, dst[:0])
							if ok {
								hits.Add(1)
								if err := checkSelfValue(k, dst, maxLen); err != nil {
									if failures.Add(1) == 1 {
										t.Error(err)
									}
								}
							}
						case r < 8:
							if err := s.Set(k, selfValue(k, maxLen)); err != nil {
								t.Error(err)
								return
							}
						case r < 9:
							s.Delete(k)
						default:
							s.Contains(k)
						}
					}
				})
			}
			// A reader of Stats runs alongside, as a monitoring loop would.
			done := make(chan struct{})
			var statsWG sync.WaitGroup
			statsWG.Go(func() {
				for {
					select {
					case <-done:
						return
					default:
						if st := s.Stats(); st.Entries < 0 || st.Bytes > st.Capacity {
							t.Errorf("bad stats: %+v", st)
						}
					}
				}
			})
			wg.Wait()
			close(done)
			statsWG.Wait()
			checkInvariants(t, s)
			if hits.Load() == 0 {
				t.Fatal("no hits: the test does not exercise reads of present keys")
			}
		})
	}
}

// TestConcurrentHitsCountOnce checks that frequency bumps racing under the
// read lock neither lose the entry nor exceed the 2-bit counter.
func TestConcurrentHitsCountOnce(t *testing.T) {
	s, err := New(Config{MaxEntries: 64})
	if err != nil {
		t.Fatal(err)
	}
	k := keyhash.Key{Hi: 5, Lo: 6}
	v := make([]byte, 8)
	binary.LittleEndian.PutUint64(v, 42)
	if err := s.Set(k, v); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				if got, ok := s.Get(k, nil); !ok || binary.LittleEndian.Uint64(got) != 42 {
					t.Error("lost the hot key")
					return
				}
			}
		})
	}
	wg.Wait()
	sh := s.shard(k)
	_, _, slot, _ := sh.find(k)
	if slotFreq(slot) != freqMax {
		t.Fatalf("frequency %d after 4000 hits, want %d", slotFreq(slot), freqMax)
	}
}
