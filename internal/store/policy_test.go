package store

import (
	"container/list"
	"math/rand/v2"
	"testing"

	"github.com/coalesce-go/coalesce/internal/keyhash"
)

// lru is the reference policy: a textbook LRU of n keys.
type lru struct {
	n     int
	order *list.List
	pos   map[uint64]*list.Element
}

func newLRU(n int) *lru {
	return &lru{n: n, order: list.New(), pos: map[uint64]*list.Element{}}
}

// access reports a hit, inserting the key on a miss.
func (c *lru) access(k uint64) bool {
	if e, ok := c.pos[k]; ok {
		c.order.MoveToFront(e)
		return true
	}
	if c.order.Len() >= c.n {
		old := c.order.Back()
		c.order.Remove(old)
		delete(c.pos, old.Value.(uint64))
	}
	c.pos[k] = c.order.PushFront(k)
	return false
}

// replay runs a key stream through the store as a cache, setting on a miss,
// and returns the hit ratio.
func replay(t *testing.T, s *Store, stream []uint64) float64 {
	t.Helper()
	hits := 0
	var dst []byte
	for _, x := range stream {
		k := keyhash.Key{Hi: x * 0x9e3779b97f4a7c15, Lo: (x ^ 0x5555) * 0xbf58476d1ce4e5b9}
		var ok bool
		if dst, ok = s.Get(k, dst[:0]); ok {
			hits++
			continue
		}
		if err := s.Set(k, nil); err != nil {
			t.Fatal(err)
		}
	}
	return float64(hits) / float64(len(stream))
}

// TestScanResistance replays a hot set interleaved with long scans of keys
// seen once: LRU lets every scan flush the hot set, S3-FIFO must not.
func TestScanResistance(t *testing.T) {
	const size, hot = 1000, 700
	rng := rand.New(rand.NewPCG(3, 4))
	var stream []uint64
	next := uint64(1 << 40)
	for range 60 {
		for range 3000 {
			stream = append(stream, uint64(rng.IntN(hot)))
		}
		for range 1500 { // a scan longer than the cache
			stream = append(stream, next)
			next++
		}
	}
	s, err := New(Config{MaxEntries: size})
	if err != nil {
		t.Fatal(err)
	}
	got := replay(t, s, stream)
	ref := newLRU(size)
	hits := 0
	for _, x := range stream {
		if ref.access(x) {
			hits++
		}
	}
	lruRatio := float64(hits) / float64(len(stream))
	t.Logf("hit ratio: S3-FIFO %.4f, LRU %.4f", got, lruRatio)
	if got < lruRatio {
		t.Fatalf("S3-FIFO hit ratio %.4f below LRU's %.4f on a scan-plus-hot-set stream", got, lruRatio)
	}
}

// lruHitRatio replays stream through an exact LRU of size keys.
func lruHitRatio(stream []uint64, size int) float64 {
	ref := newLRU(size)
	hits := 0
	for _, x := range stream {
		if ref.access(x) {
			hits++
		}
	}
	return float64(hits) / float64(len(stream))
}

// TestLoopAdmission replays a loop over more keys than the cache holds,
// LRU's worst case (no hit at all) and plain S3-FIFO's (every key drops from
// small before it comes back). The frequency sketch's admission must keep a
// stable subset in main instead of churning, so that a good share of each
// pass hits, as OPT's (size-1)/keys would.
func TestLoopAdmission(t *testing.T) {
	const size, keys, passes = 1000, 2000, 12
	var stream []uint64
	for range passes {
		for x := range uint64(keys) {
			stream = append(stream, x)
		}
	}
	if r := lruHitRatio(stream, size); r != 0 {
		t.Fatalf("LRU hit ratio %.4f on a loop larger than the cache, want 0", r)
	}
	plain, err := New(Config{MaxEntries: size, noAdmit: true})
	if err != nil {
		t.Fatal(err)
	}
	plainRatio := replay(t, plain, stream)
	s, err := New(Config{MaxEntries: size})
	if err != nil {
		t.Fatal(err)
	}
	got := replay(t, s, stream)
	t.Logf("hit ratio on a %d-key loop, %d entries: admission %.4f, plain S3-FIFO %.4f, LRU 0, OPT ≤ %.4f",
		keys, size, got, plainRatio, float64(size)/keys)
	if got < 0.3 {
		t.Fatalf("admission hit ratio %.4f on the loop, want ≥ 0.3 (a stable subset of about half the loop)", got)
	}
	if got < plainRatio+0.2 {
		t.Fatalf("admission %.4f does not beat plain S3-FIFO's %.4f on a loop by 0.2", got, plainRatio)
	}
}

// recencyStream is a workload shaped mostly by recency: half its requests
// go to a Zipf-popular set of hot keys, the other half to keys that are new
// when first requested and come back one to three times, each after a
// random number of requests up to reach. The sketch has seen a returning
// key no more often than main's lukewarm victims.
func recencyStream(n, hot, reach int, seed uint64) []uint64 {
	rng := rand.New(rand.NewPCG(seed, 7))
	zipf := rand.NewZipf(rng, 1.3, 1, uint64(hot-1))
	due := make([][]uint64, n+reach+1)
	var stream []uint64
	next := uint64(1 << 40)
	for t := 0; len(stream) < n; t++ {
		if t < len(due) && len(due[t]) > 0 {
			stream = append(stream, due[t]...)
			due[t] = nil
			continue
		}
		if rng.IntN(2) == 0 {
			stream = append(stream, zipf.Uint64())
			continue
		}
		x := next
		next++
		stream = append(stream, x)
		at := len(stream)
		for range 1 + rng.IntN(3) {
			at += 1 + rng.IntN(reach)
			if at < len(due) {
				due[at] = append(due[at], x)
			}
		}
	}
	return stream[:n]
}

// TestRecencyAdaptation replays a recency-heavy stream whose returning keys
// come back after up to 3 cache sizes of requests: LRU keeps those due
// within its size; the fixed policy's 10% small queue drops them unaccessed
// and main's admission, having seen them about as often as its victims,
// refuses them, which puts it below LRU. The adaptation must notice the
// keys coming back from small's ghost, grow small and relax the margin, and
// so beat both.
func TestRecencyAdaptation(t *testing.T) {
	const size = 2000
	stream := recencyStream(400_000, 50*size, 3*size, 5)
	lruRatio := lruHitRatio(stream, size)
	fixed, err := New(Config{MaxEntries: size, noAdapt: true})
	if err != nil {
		t.Fatal(err)
	}
	fixedRatio := replay(t, fixed, stream)
	s, err := New(Config{MaxEntries: size})
	if err != nil {
		t.Fatal(err)
	}
	got := replay(t, s, stream)
	sh := s.shards[0]
	t.Logf("hit ratio on a recency stream, %d entries: adaptive %.4f (small %d, margin %d), fixed %.4f, LRU %.4f",
		size, got, sh.small, sh.margin, fixedRatio, lruRatio)
	if got < lruRatio {
		t.Fatalf("adaptive hit ratio %.4f below LRU's %.4f on a recency stream", got, lruRatio)
	}
	if got < fixedRatio+0.01 {
		t.Fatalf("adaptive hit ratio %.4f does not beat the fixed policy's %.4f by a point", got, fixedRatio)
	}
}

// TestFirstFillKeepsAccesses fills one shard with keys, hits every other one
// twice, then forces the first eviction: small, which holds every key after
// a fill, drains into main while main has room, and the keys hit during the
// fill must arrive there with their counts, so that main's CLOCK keeps them over
// the keys never hit. Once main is full, a key leaving small starts at zero
// again, as in S3-FIFO.
func TestFirstFillKeepsAccesses(t *testing.T) {
	const n = 1000
	s, err := New(Config{MaxEntries: n, Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	key := func(i uint64) keyhash.Key {
		return keyhash.Key{Hi: i * 0x9e3779b97f4a7c15, Lo: (i ^ 0x5555) * 0xbf58476d1ce4e5b9}
	}
	for i := range uint64(n) {
		if err := s.Set(key(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	for i := uint64(0); i < n; i += 2 {
		s.Get(key(i), nil)
		s.Get(key(i), nil)
	}
	if err := s.Set(key(n), nil); err != nil { // the first eviction
		t.Fatal(err)
	}
	sh := s.shards[0]
	if sh.q[qMain].entries == 0 {
		t.Fatal("the first eviction moved nothing from small to main")
	}
	carried, moved := 0, 0
	for i := uint64(0); i < n; i += 2 {
		_, _, slot, ok := sh.find(key(i))
		if !ok || sh.segQ[sh.segOf(slotOff(slot))] != qMain {
			continue
		}
		moved++
		if slotFreq(slot) > 0 {
			carried++
		}
	}
	// A few may have reached main after it filled up, at count 0.
	if moved < n/4 || carried*10 < moved*9 {
		t.Fatalf("%d keys hit twice during the fill reached main with a count, of %d that reached it", carried, moved)
	}
	// Keep inserting new keys until main has been full for a while: keys hit
	// in small then reach it at count 0.
	for i := uint64(n + 1); i < 4*n; i++ {
		if err := s.Set(key(i), nil); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			s.Get(key(i), nil)
		}
	}
	if !sh.mainFull() {
		t.Fatal("main is not full after three fills of new keys")
	}
	before := sh.q[qMain].entries
	promoted := 0
	for i := uint64(4 * n); i < 5*n && promoted == 0; i++ {
		if err := s.Set(key(i), nil); err != nil {
			t.Fatal(err)
		}
		for j := uint64(n + 1); j < i; j += 3 {
			_, _, slot, ok := sh.find(key(j))
			if ok && sh.segQ[sh.segOf(slotOff(slot))] == qMain && slotFreq(slot) == 0 {
				promoted++
			}
		}
	}
	if promoted == 0 {
		t.Fatalf("no key hit in small reached a full main at count 0 (main had %d entries)", before)
	}
}

// TestSpliceKeepsMainsHead moves small's tail segment into main while main's
// head is partly filled, as when records moved to main since the last
// splice. The segment must join main before its head, which keeps taking
// appends: made main's head instead, it left the old head's rest unused,
// and with a splice after every few moves main's segments held a few
// records each (a 128 MiB shard fell from 820,000 entries to 470,000).
func TestSpliceKeepsMainsHead(t *testing.T) {
	s, err := New(Config{MaxEntries: 20000, Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	sh := s.shards[0]
	v := make([]byte, 100)
	size := recordSize(len(v))
	n := uint64(0)
	for ; sh.q[qSmall].segs < 5; n++ {
		_ = s.Set(hotKey(n), v)
	}
	for range 3 {
		// A few records appended at main's head, then a splice, twice over.
		for range 5 {
			sh.insert(hotKey(n), v, size, qMain, 0)
			n++
		}
		head, used := sh.q[qMain].head, sh.segUsed[sh.q[qMain].head]
		sh.splice(sh.q[qSmall].tail)
		if sh.q[qMain].head != head {
			t.Fatalf("the splice made segment %d main's head, leaving %d of segment %d's %d bytes unused", sh.q[qMain].head, s.l.segSize-int(used), head, s.l.segSize)
		}
		checkInvariants(t, s)
	}
	for seg := sh.q[qMain].tail; seg != sh.q[qMain].head; seg = sh.segNext[seg] {
		if rest := s.l.segSize - int(sh.segUsed[seg]); rest >= size {
			t.Fatalf("main's segment %d has %d bytes unused behind its head", seg, rest)
		}
	}
}
