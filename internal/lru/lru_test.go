package lru

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/coalesce-go/coalesce/internal/keyhash"
)

func key(i int) keyhash.Key { return keyhash.Key{Hi: uint64(i) * 0x9e3779b97f4a7c15, Lo: uint64(i)} }

func TestBadConfig(t *testing.T) {
	for _, c := range []struct {
		bytes int64
		value int
	}{{0, 1}, {-1, 1}, {100, 10}, {1000, -1}} {
		if _, err := New(c.bytes, c.value); err == nil {
			t.Errorf("New(%d, %d): want an error", c.bytes, c.value)
		}
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
	if st := s.Stats(); st.Entries != 3 || st.Evictions != 1 || st.Bytes != 3*(EntryOverhead+4) {
		t.Fatalf("stats %+v", st)
	}
	if err := s.Set(key(9), make([]byte, 17)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize value: %v", err)
	}
}

// TestModel replays random operations against a map and a recency list.
func TestModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const capEntries = 20
	s, _ := New(capEntries*(EntryOverhead+8), 8)
	var order []int // least recent first
	model := map[int][]byte{}
	touch := func(k int) {
		for i, o := range order {
			if o == k {
				order = append(order[:i], order[i+1:]...)
				break
			}
		}
		order = append(order, k)
	}
	for op := 0; op < 20000; op++ {
		k := r.IntN(40)
		switch r.IntN(3) {
		case 0:
			v := []byte{byte(k), byte(op), 0, 0, 0, 0, 0, 0}
			s.Set(key(k), v)
			model[k] = v
			touch(k)
			if len(order) > capEntries {
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
			for i, o := range order {
				if o == k {
					order = append(order[:i], order[i+1:]...)
					break
				}
			}
		}
		if st := s.Stats(); st.Entries != len(model) || st.Bytes != int64(len(model))*(EntryOverhead+8) {
			t.Fatalf("op %d: stats %+v, model has %d", op, st, len(model))
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
