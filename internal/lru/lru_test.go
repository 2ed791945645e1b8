package lru

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/coalesce-go/coalesce/internal/keyhash"
)

func key(i int) keyhash.Key { return keyhash.Key{Hi: uint64(i) * 0x9e3779b97f4a7c15, Lo: uint64(i)} }

func TestBadConfig(t *testing.T) {
	for _, c := range []struct {
		bytes int64
		value int
	}{{0, 1}, {-1, 1}, {100, 10}, {1000, -1}, {EntryOverhead + 15, 4}} {
		if _, err := New(c.bytes, c.value); err == nil {
			t.Errorf("New(%d, %d): want an error", c.bytes, c.value)
		}
	}
	// The smallest budget for a tiny value holds one.
	s, err := New(EntryOverhead+tinySize, 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Set(key(1), []byte("abcd")); err != nil {
		t.Fatalf("the minimum budget refuses its value: %v", err)
	}
}

func TestEvictsLeastRecentlyUsed(t *testing.T) {
	s, err := New(3*(EntryOverhead+4), 16)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		s.Set(key(i), []byte("abcd"))
	}
	s.Get(key(1), nil) // 2 is now the least recent
	s.Set(key(4), []byte("abcd"))
	if _, ok := s.Get(key(2), nil); ok {
		t.Fatal("key 2 should have been evicted")
	}
	for _, i := range []int{1, 3, 4} {
		if _, ok := s.Get(key(i), nil); !ok {
			t.Fatalf("key %d missing", i)
		}
	}
	// Three nodes, three 4-byte values charged a 16-byte tiny block each,
	// four slots.
	if st := s.Stats(); st.Entries != 3 || st.Evictions != 1 || st.Bytes != 3*(nodeSize+tinySize)+4*slotSize {
		t.Fatalf("stats %+v", st)
	}
	if err := s.Set(key(9), make([]byte, 17)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize value: %v", err)
	}
}

// TestModel replays random operations against a recency list. The model
// does not know when the store must evict; it checks that the store keeps
// exactly the most recent entries, at least as many as EntryOverhead
// promises, and that its own accounting matches its allocations.
func TestModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const capEntries = 20
	s, _ := New(capEntries*(EntryOverhead+16), 16)
	var order []int // least recent first
	model := map[int][]byte{}
	drop := func(k int) {
		for i, o := range order {
			if o == k {
				order = append(order[:i], order[i+1:]...)
				break
			}
		}
	}
	touch := func(k int) {
		drop(k)
		order = append(order, k)
	}
	for op := 0; op < 50000; op++ {
		k := r.IntN(40)
		switch r.IntN(3) {
		case 0:
			v := append([]byte{byte(k), byte(op)}, make([]byte, 14)...)[:1+r.IntN(16)]
			if err := s.Set(key(k), v); err != nil {
				t.Fatal(err)
			}
			model[k] = v
			touch(k)
			n := s.Stats().Entries
			if n < min(len(order), capEntries) {
				t.Fatalf("op %d: %d entries left, the budget promises %d", op, n, capEntries)
			}
			for len(order) > n {
				delete(model, order[0])
				order = order[1:]
			}
		case 1:
			got, ok := s.Get(key(k), nil)
			want, wok := model[k]
			if ok != wok || !bytes.Equal(got, want) {
				t.Fatalf("op %d Get(%d) = %v,%v want %v,%v", op, k, got, ok, want, wok)
			}
			if ok {
				touch(k)
			}
		case 2:
			_, wok := model[k]
			if s.Delete(key(k)) != wok {
				t.Fatalf("op %d Delete(%d) disagrees with the model", op, k)
			}
			delete(model, k)
			drop(k)
		}
		if st := s.Stats(); st.Entries != len(model) {
			t.Fatalf("op %d: stats %+v, model has %d", op, st, len(model))
		}
		checkInvariants(t, s)
	}
}

// checkInvariants recomputes what Stats reports from the store's structures.
func checkInvariants(t *testing.T, s *Store) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var listed int
	held := int64(len(s.slots)) * slotSize
	for e := s.head.next; e != &s.head; e = e.next {
		listed++
		held += cost(e)
		if _, f := s.find(e.key); f != e {
			t.Fatalf("entry %v is listed but the index does not find it", e.key)
		}
	}
	var indexed int
	for _, e := range s.slots {
		if e != nil {
			indexed++
		}
	}
	switch {
	case listed != s.n || indexed != s.n:
		t.Fatalf("%d entries counted, %d listed, %d indexed", s.n, listed, indexed)
	case held != s.bytes:
		t.Fatalf("bytes %d, the allocations add up to %d", s.bytes, held)
	case s.bytes > s.maxBytes:
		t.Fatalf("bytes %d over the budget %d", s.bytes, s.maxBytes)
	case s.n == 0 && s.slots != nil:
		t.Fatalf("an empty store keeps %d slots", len(s.slots))
	case s.n > 0 && (s.n*maxLoadD > len(s.slots)*maxLoadN || len(s.slots) > max(minSlots, minLoadD*s.n)):
		t.Fatalf("%d entries in %d slots: outside the load bounds", s.n, len(s.slots))
	}
}

// TestSizes ties the constants to the types they stand for: a node must come
// from the 64-byte size class (structs of 49 to 64 bytes do) and a slot be no
// larger than slotSize, or Bytes would undercount the heap.
func TestSizes(t *testing.T) {
	if n := unsafe.Sizeof(entry{}); n <= 48 || n > nodeSize {
		t.Errorf("entry is %d bytes; nodeSize %d assumes the 64-byte size class", n, nodeSize)
	}
	if n := unsafe.Sizeof((*entry)(nil)); n > slotSize {
		t.Errorf("a slot is %d bytes; slotSize is %d", n, slotSize)
	}
	// A value's copy is charged by its capacity, which must be what the
	// allocator rounded it to, not its length.
	s, _ := New(1<<20, 1<<10)
	s.Set(key(1), make([]byte, 100))
	if st := s.Stats(); st.Bytes != nodeSize+112+minSlots*slotSize {
		t.Errorf("a 100-byte value: Bytes %d, want node %d + 112 (its size class) + %d slots", st.Bytes, nodeSize, minSlots)
	}
}

// TestValueFillingTheBudget covers the value that fits the limit but not the
// budget once the allocator rounds it up: it is refused, not looped on.
func TestValueFillingTheBudget(t *testing.T) {
	s, err := New(100+EntryOverhead, 100) // 100 bytes are allocated as 112
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Set(key(1), make([]byte, 96)); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(key(1), make([]byte, 100)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Set of a value whose allocation exceeds the budget: %v", err)
	}
	if st := s.Stats(); st.Entries != 0 || st.Bytes != 0 {
		t.Fatalf("the stale value is kept: %+v", st)
	}
	checkInvariants(t, s)
}

// TestChurnKeepsIndexBounded grows and empties the store repeatedly: the
// index must shrink back rather than keep its largest size.
func TestChurnKeepsIndexBounded(t *testing.T) {
	s, _ := New(1<<20, 64)
	for round := range 3 {
		for i := range 5000 {
			s.Set(key(round*5000+i), []byte("v"))
		}
		checkInvariants(t, s)
		for i := range 5000 {
			if !s.Delete(key(round*5000 + i)) {
				t.Fatalf("round %d: key %d missing", round, i)
			}
			if i%97 == 0 {
				checkInvariants(t, s)
			}
		}
		if st := s.Stats(); st.Bytes != 0 {
			t.Fatalf("round %d: an empty store holds %d bytes", round, st.Bytes)
		}
	}
}

func TestContainsDoesNotTouch(t *testing.T) {
	s, _ := New(2*(EntryOverhead+1), 1)
	s.Set(key(1), []byte{1})
	s.Set(key(2), []byte{2})
	if !s.Contains(key(1)) || s.Contains(key(3)) {
		t.Fatal("Contains disagrees with the contents")
	}
	s.Set(key(3), []byte{3}) // 1 is still the least recently used
	if s.Contains(key(1)) || !s.Contains(key(2)) {
		t.Fatal("Contains marked key 1 as used")
	}
}
