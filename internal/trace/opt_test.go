package trace

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// bruteOPT tries every decision a cache can make on a miss (bypass, insert
// into free room, or insert evicting any resident key) and returns the most
// hits any sequence of decisions achieves.
func bruteOPT(keys []uint64, capacity int) int {
	type state struct {
		i   int
		set uint32 // bit k: key k resident; keys are below 32
	}
	memo := map[state]int{}
	var best func(i int, set uint32) int
	best = func(i int, set uint32) int {
		if i == len(keys) {
			return 0
		}
		st := state{i, set}
		if v, ok := memo[st]; ok {
			return v
		}
		bit := uint32(1) << keys[i]
		var v int
		if set&bit != 0 {
			v = 1 + best(i+1, set)
		} else {
			v = best(i+1, set) // bypass
			if popcount(set) < capacity {
				v = max(v, best(i+1, set|bit))
			}
			for k := uint32(0); k < 32; k++ {
				if set&(1<<k) != 0 {
					v = max(v, best(i+1, set&^(1<<k)|bit))
				}
			}
		}
		memo[st] = v
		return v
	}
	return best(0, 0)
}

func popcount(x uint32) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}

func TestOPTMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 400 {
		n := 1 + r.IntN(14)
		alphabet := 1 + r.IntN(6)
		keys := make([]uint64, n)
		for i := range keys {
			keys[i] = uint64(r.IntN(alphabet))
		}
		o, err := NewOPT(keys)
		if err != nil {
			t.Fatal(err)
		}
		for capacity := 0; capacity <= alphabet+1; capacity++ {
			got, want := o.Hits(capacity), bruteOPT(keys, capacity)
			if got != want {
				t.Fatalf("trial %d: OPT(%v, capacity %d) = %d hits, brute force finds %d", trial, keys, capacity, got, want)
			}
		}
	}
}

// TestOPTLong exercises the heap compaction, which small sequences never
// reach, against the bounds OPT must respect.
func TestOPTLong(t *testing.T) {
	keys, _ := ZipfKeys(5, 0.8, 5000, 100_000)
	o, err := NewOPT(keys)
	if err != nil {
		t.Fatal(err)
	}
	distinct := map[uint64]bool{}
	for _, k := range keys {
		distinct[k] = true
	}
	prev := -1
	for _, capacity := range []int{1, 10, 100, 1000, 5000} {
		hits := o.Hits(capacity)
		lru := NewLRU(capacity)
		lruHits := 0
		for _, k := range keys {
			if lru.Access(k) {
				lruHits++
			}
		}
		if hits < lruHits || hits < prev || hits > len(keys)-len(distinct) {
			t.Fatalf("capacity %d: OPT %d hits, LRU %d, at smaller capacity %d, upper bound %d", capacity, hits, lruHits, prev, len(keys)-len(distinct))
		}
		prev = hits
	}
	if got, want := o.Hits(len(distinct)), len(keys)-len(distinct); got != want {
		t.Fatalf("OPT with room for every key = %d hits, want every non-first request %d", got, want)
	}
}

func TestOPTLoop(t *testing.T) {
	// Cycling through n keys with capacity c, OPT keeps c-1 keys fixed and
	// cycles the last slot: after the first pass it hits c-1 of every n.
	const n, c, passes = 10, 4, 50
	keys, _ := LoopKeys(n, n*passes)
	o, _ := NewOPT(keys)
	got := o.Hits(c)
	if want := (passes - 1) * (c - 1); got < want {
		t.Fatalf("OPT on a loop of %d keys at capacity %d = %d hits, want at least %d", n, c, got, want)
	}
}

func ExampleOPT() {
	keys := []uint64{1, 2, 3, 1, 2, 3, 1, 2, 3}
	o, _ := NewOPT(keys)
	lru := NewLRU(2)
	lruHits := 0
	for _, k := range keys {
		if lru.Access(k) {
			lruHits++
		}
	}
	fmt.Println("LRU:", lruHits, "OPT:", o.Hits(2))
	// Output: LRU: 0 OPT: 4
}
