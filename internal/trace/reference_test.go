package trace

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// cache is what the reference policies share with LRU.
type cache interface {
	Access(key uint64) bool
	Len() int
}

// wantHits replays keys on c and fails unless the hits are exactly hits.
func wantHits(t *testing.T, c cache, keys []uint64, hits []bool) {
	t.Helper()
	if len(keys) != len(hits) {
		t.Fatalf("test table: %d keys, %d outcomes", len(keys), len(hits))
	}
	for i, k := range keys {
		if got := c.Access(k); got != hits[i] {
			t.Fatalf("request %d for key %d: hit = %v, want %v", i, k, got, hits[i])
		}
	}
}

// Outcomes are written with these so that tables line up with their keys.
const (
	H = true
	M = false
)

// arcLists returns the keys of list l of c, MRU first.
func arcLists(c *ARC) [4][]uint64 {
	var out [4][]uint64
	for l := range int32(4) {
		for i := c.nodes[l].next; i != l; i = c.nodes[i].next {
			out[l] = append(out[l], c.nodes[i].key)
		}
	}
	return out
}

func TestARCByHand(t *testing.T) {
	// Capacity 2; lists are written MRU first.
	//  1 M  IV, room: T1=[1]
	//  2 M  IV, room: T1=[2 1]
	//  3 M  IV-A, |T1| = c: 1 is dropped without a ghost; T1=[3 2]
	//  1 M  IV-A again: 2 dropped; T1=[1 3]
	//  1 H  I: T2=[1], T1=[3]
	//  2 M  IV-B (|L1| = 1, total 2 ≥ c): REPLACE, |T1| = 1 > p = 0, so
	//       3 goes to B1; T1=[2] T2=[1] B1=[3]
	//  3 M  II: p = 0 + max(0/1, 1) = 1; REPLACE: |T1| = 1 is not > 1, so
	//       T2's 1 goes to B2; T1=[2] T2=[3] B2=[1]
	//  1 M  III: p = 1 − max(0/1, 1) = 0; REPLACE: |T1| = 1 > 0, 2 to B1;
	//       T2=[1 3] B1=[2]
	//  2 M  II: p = 1; REPLACE: T1 is empty, T2's 3 to B2; T2=[2 1] B2=[3]
	//  3 M  III: p = 0; REPLACE: T2's 1 to B2; T2=[3 2] B2=[1]
	//  1 M  III: p = 0; REPLACE: T2's 2 to B2; T2=[1 3] B2=[2]
	c := NewARC(2)
	wantHits(t, c, []uint64{1, 2, 3, 1, 1, 2, 3, 1, 2, 3, 1}, []bool{M, M, M, M, H, M, M, M, M, M, M})
	if got, want := arcLists(c), [4][]uint64{nil, {1, 3}, nil, {2}}; fmt.Sprint(got) != fmt.Sprint(want) || c.p != 0 {
		t.Fatalf("capacity 2: T1, T2, B1, B2 = %v, p = %v; want %v, p = 0", got, c.p, want)
	}

	// Capacity 3: a step of 2 in p, and the tie of REPLACE (a hit in B2
	// with |T1| = p takes from T1).
	//  1 M 1 H 2 M 2 H 3 M 3 H  T2=[3 2 1]
	//  4 M  IV-B: T1 empty, so REPLACE sends 1 to B2; T1=[4] T2=[3 2]
	//  4 H  T2=[4 3 2]
	//  5 M  2 to B2; 5 H: T2=[5 4 3] B2=[2 1]
	//  6 M  3 to B2; T1=[6] T2=[5 4] B2=[3 2 1]
	//  7 M  IV-B, total = 2c: forget B2's 1; REPLACE: |T1| = 1 > 0, 6 to
	//       B1; T1=[7] T2=[5 4] B1=[6] B2=[3 2]
	//  6 M  II: p = 0 + 2/1 = 2; REPLACE: |T1| = 1 ≤ 2, T2's 4 to B2;
	//       T1=[7] T2=[6 5] B2=[4 3 2]
	//  8 M  IV-B, total = 2c: forget 2; REPLACE: T2's 5 to B2;
	//       T1=[8 7] T2=[6] B2=[5 4 3]
	//  3 M  III: p = 2 − 1 = 1; REPLACE: |T1| = 2 > 1, 7 to B1;
	//       T1=[8] T2=[3 6] B1=[7] B2=[5 4]
	//  7 M  II: p = 1 + 2/1 = 3; REPLACE: T2's 6 to B2;
	//       T1=[8] T2=[7 3] B2=[6 5 4]
	//  6 M  III: p = 3 − 1 = 2; REPLACE: |T1| = 1 ≠ 2, T2's 3 to B2;
	//       T1=[8] T2=[6 7] B2=[3 5 4]
	//  5 M  III: p = 1; REPLACE: the tie |T1| = p with 5 in B2 sends 8 to
	//       B1; T2=[5 6 7] B1=[8] B2=[3 4]
	//  7 H  (without the tie, 7 would have gone to B2 and missed)
	c = NewARC(3)
	wantHits(t, c,
		[]uint64{1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 7, 6, 8, 3, 7, 6, 5, 7},
		[]bool{M, H, M, H, M, H, M, H, M, H, M, M, M, M, M, M, M, M, H})
	if got, want := arcLists(c), [4][]uint64{nil, {7, 5, 6}, {8}, {3, 4}}; fmt.Sprint(got) != fmt.Sprint(want) || c.p != 1 {
		t.Fatalf("capacity 3: T1, T2, B1, B2 = %v, p = %v; want %v, p = 1", got, c.p, want)
	}
	if c.Len() != 3 {
		t.Fatalf("capacity 3: Len = %d, want 3", c.Len())
	}
}

func TestSLRUByHand(t *testing.T) {
	for _, tt := range []struct{ capacity, protected int }{{1, 0}, {2, 1}, {9, 1}, {10, 1}, {19, 1}, {20, 2}, {25, 2}, {1000, 100}} {
		if got := NewSLRU(tt.capacity).protectedCap; got != tt.protected {
			t.Errorf("capacity %d: protected segment %d, want %d", tt.capacity, got, tt.protected)
		}
	}

	// Capacity 3, so protected holds 1; segments are written MRU first.
	//  1 M  probation=[1]
	//  1 H  protected=[1]
	//  2 M  probation=[2]
	//  3 M  probation=[3 2]
	//  3 H  protected=[3 1] overflows: 1 returns to probation's MRU end;
	//       probation=[1 2] protected=[3]
	//  4 M  full: probation's LRU 2 goes; probation=[4 1]
	//  1 H  (had 1 been demoted to the LRU end, it would have gone instead)
	//       protected=[1 3] overflows: probation=[3 4] protected=[1]
	//  2 M  4 goes; probation=[2 3]
	//  3 H  protected=[3 1]: probation=[1 2] protected=[3]
	//  5 M  2 goes; 6 M 1 goes; 7 M 5 goes: probation=[7 6]
	//  3 H  3 outlived the scan 5, 6, 7, which LRU's 3 entries would not
	wantHits(t, NewSLRU(3),
		[]uint64{1, 1, 2, 3, 3, 4, 1, 2, 3, 5, 6, 7, 3},
		[]bool{M, H, M, M, H, M, H, M, H, M, M, M, H})

	// Capacity 1 has no protected segment: a hit goes there and straight
	// back, so it is LRU of one key.
	wantHits(t, NewSLRU(1), []uint64{1, 1, 2, 1, 1}, []bool{M, H, M, M, H})
}

func TestClockByHand(t *testing.T) {
	// Capacity 3; slots are written in ring order with their bits, and h
	// marks the hand.
	//  1 M 2 M 3 M  h[1 2 3]
	//  3 H 2 H 1 H  h[1' 2' 3']
	//  4 M  the hand clears all three bits, comes round to 1 and evicts
	//       it: [4 h2 3] (LRU would have evicted 3)
	//  3 H  [4 h2 3']
	//  1 M  2 has no bit: [4 1 h3']
	//  2 M  3 is cleared and kept, 4 goes: [2 h1 3]
	//  3 H  (LRU would have evicted 3 for 2)
	wantHits(t, NewClock(3),
		[]uint64{1, 2, 3, 3, 2, 1, 4, 3, 1, 2, 3},
		[]bool{M, M, M, H, H, H, M, H, M, M, H})

	//  1 M 2 M 3 M  h[1 2 3]
	//  1 H  h[1' 2 3]
	//  4 M  1 is cleared, 2 goes: [1 4 h3]
	//  2 M  3 goes: h[1 4 2]
	//  4 H  h[1 4' 2]
	//  5 M  1 goes: [5 h4' 2]
	//  1 M  4 is cleared, 2 goes: h[5 4 1]
	//  4 H  h[5 4' 1]
	//  2 M  5 goes: [2 h4' 1]
	//  4 H
	wantHits(t, NewClock(3),
		[]uint64{1, 2, 3, 1, 4, 2, 4, 5, 1, 4, 2, 4},
		[]bool{M, M, M, H, M, M, H, M, M, H, M, H})
}

// TestReferenceTinyCapacities checks that a capacity below 1 holds nothing
// and that a capacity of 1 hits exactly on a repeat of the previous key,
// the only possible behaviour of a policy that admits every key.
func TestReferenceTinyCapacities(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, p := range []struct {
		name string
		new  func(int) cache
	}{
		{"arc", func(n int) cache { return NewARC(n) }},
		{"slru", func(n int) cache { return NewSLRU(n) }},
		{"clock", func(n int) cache { return NewClock(n) }},
	} {
		for _, capacity := range []int{-1, 0} {
			c := p.new(capacity)
			for range 100 {
				if c.Access(uint64(r.IntN(3))) || c.Len() != 0 {
					t.Fatalf("%s, capacity %d: a hit, or Len = %d", p.name, capacity, c.Len())
				}
			}
		}
		c := p.new(1)
		prev := uint64(99)
		for i := range 2000 {
			k := uint64(r.IntN(3))
			if got := c.Access(k); got != (k == prev) {
				t.Fatalf("%s, capacity 1, request %d for key %d after %d: hit = %v", p.name, i, k, prev, got)
			}
			if c.Len() != 1 {
				t.Fatalf("%s, capacity 1: Len = %d", p.name, c.Len())
			}
			prev = k
		}
	}
}

// arcModel is ARC written from the paper with a slice per list (MRU first)
// and linear searches.
type arcModel struct {
	c              int
	p              float64
	t1, t2, b1, b2 []uint64
}

func remove(s []uint64, k uint64) []uint64 {
	return slices.DeleteFunc(s, func(x uint64) bool { return x == k })
}

func (m *arcModel) replace(inB2 bool) {
	if len(m.t1) > 0 && (float64(len(m.t1)) > m.p || (inB2 && float64(len(m.t1)) == m.p)) {
		k := m.t1[len(m.t1)-1]
		m.t1 = m.t1[:len(m.t1)-1]
		m.b1 = slices.Insert(m.b1, 0, k)
	} else {
		k := m.t2[len(m.t2)-1]
		m.t2 = m.t2[:len(m.t2)-1]
		m.b2 = slices.Insert(m.b2, 0, k)
	}
}

func (m *arcModel) access(k uint64) bool {
	if m.c <= 0 {
		return false
	}
	b1, b2 := float64(len(m.b1)), float64(len(m.b2))
	switch {
	case slices.Contains(m.t1, k) || slices.Contains(m.t2, k):
		m.t1, m.t2 = remove(m.t1, k), remove(m.t2, k)
		m.t2 = slices.Insert(m.t2, 0, k)
		return true
	case slices.Contains(m.b1, k):
		delta := 1.0
		if b1 < b2 {
			delta = b2 / b1
		}
		m.p = min(m.p+delta, float64(m.c))
		m.replace(false)
		m.b1 = remove(m.b1, k)
		m.t2 = slices.Insert(m.t2, 0, k)
		return false
	case slices.Contains(m.b2, k):
		delta := 1.0
		if b2 < b1 {
			delta = b1 / b2
		}
		m.p = max(m.p-delta, 0)
		m.replace(true)
		m.b2 = remove(m.b2, k)
		m.t2 = slices.Insert(m.t2, 0, k)
		return false
	}
	l1 := len(m.t1) + len(m.b1)
	total := l1 + len(m.t2) + len(m.b2)
	if l1 == m.c {
		if len(m.t1) < m.c {
			m.b1 = m.b1[:len(m.b1)-1]
			m.replace(false)
		} else {
			m.t1 = m.t1[:len(m.t1)-1]
		}
	} else if total >= m.c {
		if total == 2*m.c {
			m.b2 = m.b2[:len(m.b2)-1]
		}
		m.replace(false)
	}
	m.t1 = slices.Insert(m.t1, 0, k)
	return false
}

// slruModel is SLRU with a slice per segment, MRU first.
type slruModel struct {
	c, protected          int
	probation, protection []uint64
}

func (m *slruModel) access(k uint64) bool {
	if slices.Contains(m.probation, k) || slices.Contains(m.protection, k) {
		m.probation, m.protection = remove(m.probation, k), remove(m.protection, k)
		m.protection = slices.Insert(m.protection, 0, k)
		if len(m.protection) > m.protected {
			last := m.protection[len(m.protection)-1]
			m.protection = m.protection[:len(m.protection)-1]
			m.probation = slices.Insert(m.probation, 0, last)
		}
		return true
	}
	if m.c <= 0 {
		return false
	}
	if len(m.probation)+len(m.protection) == m.c {
		if len(m.probation) > 0 {
			m.probation = m.probation[:len(m.probation)-1]
		} else {
			m.protection = m.protection[:len(m.protection)-1]
		}
	}
	m.probation = slices.Insert(m.probation, 0, k)
	return false
}

// clockModel is CLOCK as a queue that starts at the hand: a referenced key
// at the front loses its bit and goes to the back, the first one without
// is evicted, and a new key joins at the back, where the hand reaches it
// last.
type clockModel struct {
	c    int
	keys []uint64
	bits []bool
}

func (m *clockModel) access(k uint64) bool {
	if i := slices.Index(m.keys, k); i >= 0 {
		m.bits[i] = true
		return true
	}
	if m.c <= 0 {
		return false
	}
	if len(m.keys) == m.c {
		for m.bits[0] {
			m.keys = append(m.keys[1:], m.keys[0])
			m.bits = append(m.bits[1:], false)
		}
		m.keys, m.bits = m.keys[1:], m.bits[1:]
	}
	m.keys = append(m.keys, k)
	m.bits = append(m.bits, false)
	return false
}

// TestReferenceMatchModels replays random keys on each policy and its
// model, from a key range a little larger than the capacity (hits and
// evictions both common) to several times it.
func TestReferenceMatchModels(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, capacity := range []int{1, 2, 3, 4, 5, 7, 10, 16, 25, 64} {
		for _, keyRange := range []int{capacity + 1, 2 * capacity, 4*capacity + 3} {
			keys := make([]uint64, 20_000)
			for i := range keys {
				// Half the requests go to a hot fifth of the keys, so that
				// the lists that favour repeats have repeats to favour.
				if r.IntN(2) == 0 {
					keys[i] = uint64(r.IntN(max(keyRange/5, 1)))
				} else {
					keys[i] = uint64(r.IntN(keyRange))
				}
			}
			protected := capacity / 10
			if capacity >= 2 {
				protected = max(protected, 1)
			}
			am, sm, cm := &arcModel{c: capacity}, &slruModel{c: capacity, protected: protected}, &clockModel{c: capacity}
			a, s, c := NewARC(capacity), NewSLRU(capacity), NewClock(capacity)
			for i, k := range keys {
				check := func(name string, got, want bool, n, wantN int) {
					t.Helper()
					if got != want {
						t.Fatalf("%s, capacity %d, keys below %d, request %d for key %d: hit = %v, want %v",
							name, capacity, keyRange, i, k, got, want)
					}
					if n != wantN || n > capacity {
						t.Fatalf("%s, capacity %d, request %d: Len = %d, want %d", name, capacity, i, n, wantN)
					}
				}
				got, want := a.Access(k), am.access(k)
				check("arc", got, want, a.Len(), len(am.t1)+len(am.t2))
				got, want = s.Access(k), sm.access(k)
				check("slru", got, want, s.Len(), len(sm.probation)+len(sm.protection))
				got, want = c.Access(k), cm.access(k)
				check("clock", got, want, c.Len(), len(cm.keys))
				// ARC's ghosts and target must follow the paper too, and
				// its lists keep the paper's bounds.
				sizes := [4]int{len(am.t1), len(am.t2), len(am.b1), len(am.b2)}
				if !slices.Equal(a.size, sizes[:]) || a.p != am.p {
					t.Fatalf("arc, capacity %d, request %d: sizes %v, p = %v; model %v, p = %v", capacity, i, a.size, a.p, sizes, am.p)
				}
				if all := sizes[0] + sizes[1] + sizes[2] + sizes[3]; sizes[0]+sizes[2] > capacity || all > 2*capacity || len(a.index) != all {
					t.Fatalf("arc, capacity %d, request %d: sizes %v, %d indexed", capacity, i, sizes, len(a.index))
				}
				if sm.protected < len(sm.protection) || s.size[slruProtected] != len(sm.protection) {
					t.Fatalf("slru, capacity %d, request %d: protected holds %d, model %d of %d", capacity, i, s.size[slruProtected], len(sm.protection), sm.protected)
				}
			}
			// A full comparison of ARC's lists at the end catches an order
			// the sizes alone would miss.
			if got, want := arcLists(a), [4][]uint64{am.t1, am.t2, am.b1, am.b2}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("arc, capacity %d: lists %v, model %v", capacity, got, want)
			}
		}
	}
}
