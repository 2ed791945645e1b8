// Package lru is a byte-bounded least-recently-used result store guarded by
// one mutex. It is the simple policy kept beside the pointer-free store as an
// option and a baseline: every entry is a heap object, so the garbage
// collector scans all of them, and every hit takes the lock to move its entry
// to the front.
package lru

import (
	"errors"
	"fmt"
	"sync"

	"github.com/coalesce-go/coalesce/internal/keyhash"
)

// EntryOverhead is what one entry costs beyond its value bytes: the list
// node (key, two links, slice header: 64 B once rounded to its allocation
// class) and its share of the map (key, pointer and control byte over the
// map's load factor, about 32 B). It was chosen so that Bytes stays close to
// the heap the store really holds; see the package test that checks it.
const EntryOverhead = 96

// ErrTooLarge reports a value longer than the store's per-entry limit.
var ErrTooLarge = errors.New("lru: value too large")

type entry struct {
	key        keyhash.Key
	value      []byte
	prev, next *entry
}

// Store is a byte-bounded LRU. It is safe for concurrent use.
type Store struct {
	mu        sync.Mutex
	items     map[keyhash.Key]*entry
	head      entry // sentinel: head.next is the most recent, head.prev the least
	bytes     int64
	maxBytes  int64
	maxValue  int
	evictions uint64
}

// New returns a store that holds at most maxBytes, counting EntryOverhead
// per entry, and accepts values up to maxValue bytes.
func New(maxBytes int64, maxValue int) (*Store, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("lru: budget is %d bytes; it must be positive", maxBytes)
	}
	if maxValue < 0 || int64(maxValue)+EntryOverhead > maxBytes {
		return nil, fmt.Errorf("lru: value limit %d does not fit the budget of %d bytes (each entry also costs %d bytes)", maxValue, maxBytes, EntryOverhead)
	}
	s := &Store{items: make(map[keyhash.Key]*entry), maxBytes: maxBytes, maxValue: maxValue}
	s.head.next, s.head.prev = &s.head, &s.head
	return s, nil
}

func (s *Store) unlink(e *entry) {
	e.prev.next, e.next.prev = e.next, e.prev
}

func (s *Store) pushFront(e *entry) {
	e.prev, e.next = &s.head, s.head.next
	s.head.next.prev = e
	s.head.next = e
}

func cost(e *entry) int64 { return int64(len(e.value)) + EntryOverhead }

// Get appends the value of k to dst and marks k most recently used.
func (s *Store) Get(k keyhash.Key, dst []byte) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.items[k]
	if !ok {
		return dst, false
	}
	s.unlink(e)
	s.pushFront(e)
	return append(dst, e.value...), true
}

// Contains reports whether k is present, without marking it used.
func (s *Store) Contains(k keyhash.Key) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.items[k]
	return ok
}

// Set stores a copy of v under k, evicting the least recently used entries
// until it fits.
func (s *Store) Set(k keyhash.Key, v []byte) error {
	if len(v) > s.maxValue {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(v), s.maxValue)
	}
	e := &entry{key: k, value: append([]byte(nil), v...)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.items[k]; ok {
		s.remove(old)
	}
	for s.bytes+cost(e) > s.maxBytes {
		s.remove(s.head.prev)
		s.evictions++
	}
	s.items[k] = e
	s.pushFront(e)
	s.bytes += cost(e)
	return nil
}

func (s *Store) remove(e *entry) {
	s.unlink(e)
	delete(s.items, e.key)
	s.bytes -= cost(e)
}

// Delete removes k and reports whether it was present.
func (s *Store) Delete(k keyhash.Key) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.items[k]
	if ok {
		s.remove(e)
	}
	return ok
}

// Stats describes the store's contents.
type Stats struct {
	Entries   int
	Bytes     int64
	Capacity  int64
	Evictions uint64
}

// Stats returns the current counts.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Entries: len(s.items), Bytes: s.bytes, Capacity: s.maxBytes, Evictions: s.evictions}
}
