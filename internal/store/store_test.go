package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/coalesce-go/coalesce/internal/keyhash"
)

// value returns the deterministic value of key number i at version ver with
// length n, so that a wrong or stale value is detected by content.
func value(i, ver uint64, n int) []byte {
	v := make([]byte, n)
	for j := range v {
		v[j] = byte(i*131 + ver*7 + uint64(j))
	}
	return v
}

// checkInvariants recounts a store from its index and segments and compares
// with its counters and with the layout.
func checkInvariants(t *testing.T, s *Store) {
	t.Helper()
	var total Stats
	for si, sh := range s.shards {
		var qEntries [2]int
		var qBytes [2]int64
		segN := make([]int32, s.l.segs)
		segLive := make([]int32, s.l.segs)
		entries, slots := 0, 0
		var tableBytes int64
		for pi := range sh.idx.parts {
			p := &sh.idx.parts[pi]
			slots += int(p.n)
			tableBytes += int64(p.n)*8 + int64(len(p.sketch))*8
			if p.n != uint64(len(p.slots)) || p.n > uint64(s.l.partSlots) || p.n < uint64(min(minPartSlots, s.l.partSlots)) {
				t.Fatalf("shard %d part %d: %d slots (n %d), want within [%d, %d]", si, pi, len(p.slots), p.n, minPartSlots, s.l.partSlots)
			}
			if len(p.sketch) != int(p.blocks)*blockWords || p.sketch != nil && int(p.blocks) != s.l.sketchWords/s.l.parts/blockWords ||
				p.sketch == nil && s.l.sketchWords > 0 && p.n*sketchStart >= uint64(s.l.partSlots) || s.l.sketchWords == 0 && p.sketch != nil {
				t.Fatalf("shard %d part %d: sketch of %d words in %d blocks for %d slots", si, pi, len(p.sketch), p.blocks, p.n)
			}
			inPart := 0
			for pos, sl := range p.slots {
				if sl == 0 {
					continue
				}
				entries++
				inPart++
				off := slotOff(sl)
				seg := sh.segOf(off)
				qi := sh.segQ[seg]
				if qi == qFree || !sh.allocated(seg) {
					t.Fatalf("shard %d part %d slot %d points into free segment %d", si, pi, pos, seg)
				}
				in := int32(off & s.l.segMask)
				if in < sh.segRead[seg] || in >= sh.segUsed[seg] {
					t.Fatalf("shard %d part %d slot %d: offset %d outside segment %d's live range [%d, %d)", si, pi, pos, in, seg, sh.segRead[seg], sh.segUsed[seg])
				}
				k, _, _, size := sh.record(off)
				if tagOf(k) != slotTag(sl) || sh.idx.part(tagOf(k)) != p {
					t.Fatalf("shard %d part %d slot %d: tag mismatch", si, pi, pos)
				}
				if fp, fpos, _, ok := sh.find(k); !ok || fp != p || fpos != uint64(pos) {
					t.Fatalf("shard %d part %d slot %d: key not reachable from its home (found %v at %d)", si, pi, pos, ok, fpos)
				}
				if s.shard(k) != sh {
					t.Fatalf("shard %d holds a key of another shard", si)
				}
				qEntries[qi]++
				qBytes[qi] += int64(size)
				segN[seg]++
				segLive[seg] += int32(size)
			}
			if inPart != p.entries || inPart >= int(p.n) {
				t.Fatalf("shard %d part %d: %d slots in use of %d, counter says %d", si, pi, inPart, p.n, p.entries)
			}
		}
		if slots != sh.idx.slots || tableBytes != sh.idx.bytes {
			t.Fatalf("shard %d: %d slots and %d table bytes, counters say %d and %d", si, slots, tableBytes, sh.idx.slots, sh.idx.bytes)
		}
		used := 0
		for seg := range s.l.segs {
			if sh.allocated(int32(seg)) {
				used++
			}
			if segN[seg] != sh.segN[seg] || segLive[seg] != sh.segLive[seg] {
				t.Fatalf("shard %d segment %d: recount %d records of %d bytes, counters %d and %d", si, seg, segN[seg], segLive[seg], sh.segN[seg], sh.segLive[seg])
			}
		}
		if used != sh.usedSegs {
			t.Fatalf("shard %d: %d segments allocated, counter says %d", si, used, sh.usedSegs)
		}
		if entries != sh.entries {
			t.Fatalf("shard %d: %d slots in use, counter says %d", si, entries, sh.entries)
		}
		if entries > s.l.maxEntries {
			t.Fatalf("shard %d: %d entries above the cap %d", si, entries, s.l.maxEntries)
		}
		segs := sh.freeSegs
		for qi := range sh.q {
			q := &sh.q[qi]
			if qEntries[qi] != q.entries || qBytes[qi] != q.liveBytes {
				t.Fatalf("shard %d queue %d: recount %d entries %d bytes, counters %d %d", si, qi, qEntries[qi], qBytes[qi], q.entries, q.liveBytes)
			}
			n := 0
			prev := int32(noSeg)
			for seg := q.tail; seg != noSeg; prev, seg = seg, sh.segNext[seg] {
				if int(sh.segQ[seg]) != qi {
					t.Fatalf("shard %d: segment %d in queue %d is marked %d", si, seg, qi, sh.segQ[seg])
				}
				n++
				if seg == q.head && sh.segNext[seg] != noSeg {
					t.Fatalf("shard %d: queue %d's head has a successor", si, qi)
				}
			}
			if prev != q.head || q.beforeHead != noSeg && sh.segNext[q.beforeHead] != q.head || q.beforeHead == noSeg && q.tail != q.head {
				t.Fatalf("shard %d queue %d: head %d, tail %d, last linked %d, the segment before the head %d", si, qi, q.head, q.tail, prev, q.beforeHead)
			}
			if n != q.segs {
				t.Fatalf("shard %d queue %d: %d segments linked, counter %d", si, qi, n, q.segs)
			}
			segs += n
		}
		if sh.freq.on != (s.l.sketchWords > 0) || sh.freq.adds.Load() < 0 || sh.freq.sweep < -1 || sh.freq.sweep >= s.l.parts {
			t.Fatalf("shard %d: sketch on %v (layout %d words), %d adds (halving at %d), sweep at %d", si, sh.freq.on, s.l.sketchWords, sh.freq.adds.Load(), sh.freq.limit, sh.freq.sweep)
		}
		if sh.small < s.l.smallMin || sh.small > s.l.smallMax || s.l.smallMin < 1 || s.l.smallMax >= s.l.maxEntries && s.l.maxEntries > 1 {
			t.Fatalf("shard %d: small's target %d outside [%d, %d] of %d entries", si, sh.small, s.l.smallMin, s.l.smallMax, s.l.maxEntries)
		}
		if sh.margin < minMargin || sh.margin > maxMargin || sh.evidence <= -marginEvidence || sh.evidence >= marginEvidence {
			t.Fatalf("shard %d: admission margin %d, evidence %d", si, sh.margin, sh.evidence)
		}
		if !s.l.adapt && (sh.small != s.l.smallEntries || sh.margin != admitMargin || sh.mghost.filters[0] != nil || sh.mghost.words != 0) {
			t.Fatalf("shard %d adapted without adaptation: small %d, margin %d", si, sh.small, sh.margin)
		}
		if s.l.adapt && (sh.mghost.words != sh.ghost.words || sh.mghost.added > sh.mghost.half) {
			t.Fatalf("shard %d: main ghost of %d words (small's %d), %d added of %d", si, sh.mghost.words, sh.ghost.words, sh.mghost.added, sh.mghost.half)
		}
		for _, g := range []*ghost{&sh.ghost, &sh.mghost} {
			if g.filters[0] != nil && (len(g.filters[0]) != g.words || len(g.filters[1]) != g.words) || g.filters[0] == nil && g.added != 0 {
				t.Fatalf("shard %d: ghost filters of %d and %d words, want %d (%d added)", si, len(g.filters[0]), len(g.filters[1]), g.words, g.added)
			}
		}
		if segs != s.l.segs {
			t.Fatalf("shard %d: %d segments accounted, have %d", si, segs, s.l.segs)
		}
		total.Entries += entries
	}
	st := s.Stats()
	if st.Entries != total.Entries {
		t.Fatalf("Stats.Entries %d, recount %d", st.Entries, total.Entries)
	}
	if st.Bytes > st.Capacity || st.LiveBytes > st.Bytes {
		t.Fatalf("accounting: live %d, bytes %d, capacity %d", st.LiveBytes, st.Bytes, st.Capacity)
	}
}

type modelConfig struct {
	name     string
	cfg      Config
	keys     int  // distinct keys drawn from
	maxValue int  // largest value set
	ops      int  // operations
	noEvict  bool // the budget holds every key: nothing may be evicted
	fewTags  bool // keys share a handful of index tags, forcing long probes
}

// TestModel runs random operations against a store and a map that never
// forgets, checking every answer the store gives against the map.
func TestModel(t *testing.T) {
	for _, mc := range []modelConfig{
		{name: "one shard, roomy", cfg: Config{MaxBytes: 4 << 20, Shards: 1}, keys: 3000, maxValue: 300, ops: 40000, noEvict: true},
		{name: "many shards, roomy", cfg: Config{MaxBytes: 8 << 20, Shards: 16}, keys: 3000, maxValue: 300, ops: 40000, noEvict: true},
		{name: "one shard, tiny", cfg: Config{MaxBytes: 64 << 10, Shards: 1}, keys: 3000, maxValue: 300, ops: 40000},
		{name: "many shards, tiny", cfg: Config{MaxBytes: 256 << 10, Shards: 8}, keys: 5000, maxValue: 200, ops: 40000},
		{name: "entries", cfg: Config{MaxEntries: 100}, keys: 400, maxValue: 128, ops: 40000},
		{name: "entries and bytes, roomy", cfg: Config{MaxEntries: 1000, MaxBytes: 2 << 20}, keys: 900, maxValue: 128, ops: 20000, noEvict: true},
		{name: "entries, shards", cfg: Config{MaxEntries: 500, Shards: 4}, keys: 2000, maxValue: 160, ops: 30000},
		{name: "entries and bytes", cfg: Config{MaxBytes: 1 << 20, MaxEntries: 300, Shards: 2}, keys: 2000, maxValue: 1000, ops: 30000},
		{name: "max-size values", cfg: Config{MaxBytes: 1 << 20, MaxValueSize: 8000, Shards: 2}, keys: 1000, maxValue: 8000, ops: 20000},
		{name: "small values", cfg: Config{MaxBytes: 64 << 10, Shards: 1}, keys: 5000, maxValue: 8, ops: 40000},
		{name: "tag collisions", cfg: Config{MaxBytes: 1 << 20, Shards: 1}, keys: 2000, maxValue: 64, ops: 30000, noEvict: true, fewTags: true},
		{name: "tag collisions, tiny", cfg: Config{MaxEntries: 200}, keys: 1000, maxValue: 64, ops: 30000, fewTags: true},
		{name: "promote at 2", cfg: Config{MaxEntries: 300, promoteAt: 2, smallShare: 0.25}, keys: 1000, maxValue: 100, ops: 30000},
		{name: "fixed small share and margin", cfg: Config{MaxEntries: 300, noAdapt: true}, keys: 1000, maxValue: 100, ops: 30000},
		{name: "fixed, bytes", cfg: Config{MaxBytes: 256 << 10, Shards: 2, noAdapt: true}, keys: 5000, maxValue: 200, ops: 30000},
		{name: "plain S3-FIFO", cfg: Config{MaxEntries: 300, noAdmit: true}, keys: 1000, maxValue: 100, ops: 30000},
		{name: "plain S3-FIFO, bytes", cfg: Config{MaxBytes: 256 << 10, Shards: 2, noAdmit: true}, keys: 5000, maxValue: 200, ops: 30000},
	} {
		t.Run(mc.name, func(t *testing.T) { runModel(t, mc) })
	}
}

func runModel(t *testing.T, mc modelConfig) {
	s, err := New(mc.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if mc.maxValue > s.MaxValueSize() {
		mc.maxValue = s.MaxValueSize()
	}
	rng := rand.New(rand.NewPCG(1, uint64(len(mc.name))))
	keys := make([]keyhash.Key, mc.keys)
	for i := range keys {
		keys[i] = keyhash.Key{Hi: rng.Uint64(), Lo: rng.Uint64()}
		if mc.fewTags {
			keys[i].Lo = uint64(i%7)<<tagShift | keys[i].Lo&(1<<tagShift-1)
		}
	}
	type entry struct {
		ver uint64
		n   int
	}
	model := map[int]entry{}
	var ver uint64
	var dst []byte
	for op := range mc.ops {
		i := rng.IntN(len(keys))
		// Skew towards a hot subset so that the policy has hits to work with.
		if rng.IntN(2) == 0 {
			i = rng.IntN(max(len(keys)/10, 1))
		}
		k := keys[i]
		switch r := rng.IntN(100); {
		case r < 40:
			ver++
			n := rng.IntN(mc.maxValue + 1)
			if rng.IntN(4) == 0 {
				n = 100 // same-size overwrites take the in-place path
			}
			n = min(n, mc.maxValue)
			sh := s.shard(k)
			full := sh.entries >= s.l.maxEntries || sh.freeSegs <= reserveSegs+1
			ev := sh.evictions
			if err := s.Set(k, value(uint64(i), ver, n)); err != nil {
				t.Fatalf("op %d: Set(%d bytes): %v", op, n, err)
			}
			if sh.evictions != ev && !full {
				t.Fatalf("op %d: Set evicted from a shard that was not full (%d/%d entries, %d free segments)", op, sh.entries, s.l.maxEntries, sh.freeSegs)
			}
			model[i] = entry{ver, n}
			if _, ok := s.Get(k, nil); !ok {
				t.Fatalf("op %d: key %d absent right after Set", op, i)
			}
		case r < 75:
			var ok bool
			dst, ok = s.Get(k, dst[:0])
			e, inModel := model[i]
			if ok && !inModel {
				t.Fatalf("op %d: Get returned key %d, which was deleted or never set", op, i)
			}
			if ok && !bytes.Equal(dst, value(uint64(i), e.ver, e.n)) {
				t.Fatalf("op %d: Get(key %d) returned a value other than the last one set", op, i)
			}
			if !ok && inModel && mc.noEvict {
				t.Fatalf("op %d: key %d lost though the store never filled", op, i)
			}
		case r < 90:
			ok := s.Delete(k)
			_, inModel := model[i]
			if ok && !inModel {
				t.Fatalf("op %d: Delete found key %d, which was deleted or never set", op, i)
			}
			if !ok && inModel && mc.noEvict {
				t.Fatalf("op %d: Delete missed key %d though the store never filled", op, i)
			}
			delete(model, i)
			if s.Contains(k) {
				t.Fatalf("op %d: key %d present after Delete", op, i)
			}
		default:
			ok := s.Contains(k)
			if _, inModel := model[i]; ok && !inModel {
				t.Fatalf("op %d: Contains(key %d) after delete", op, i)
			}
		}
		if op%5000 == 0 {
			checkInvariants(t, s)
		}
	}
	checkInvariants(t, s)
	st := s.Stats()
	if mc.noEvict && (st.Evictions != 0 || st.Entries != len(model)) {
		t.Fatalf("roomy store: %d evictions, %d entries, model has %d", st.Evictions, st.Entries, len(model))
	}
	if !mc.noEvict && st.Evictions == 0 {
		t.Fatalf("tiny store never evicted: the test does not exercise eviction (%+v)", st)
	}
	if !mc.noEvict && s.l.adapt {
		moved := false
		for _, sh := range s.shards {
			moved = moved || sh.small != s.l.smallEntries || sh.margin != admitMargin
		}
		if !moved {
			t.Fatalf("tiny store never adapted: the test does not exercise the adaptation")
		}
	}
	// Every entry the store holds must be the model's latest.
	for i, k := range keys {
		v, ok := s.Get(k, nil)
		e, inModel := model[i]
		if ok && (!inModel || !bytes.Equal(v, value(uint64(i), e.ver, e.n))) {
			t.Fatalf("final: key %d holds a stale or deleted value", i)
		}
	}
	t.Logf("%+v", st)
}

func TestTooLarge(t *testing.T) {
	s, err := New(Config{MaxBytes: 1 << 20, MaxValueSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Set(keyhash.Key{Lo: 1}, make([]byte, 1001))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Set of 1001 bytes: %v, want ErrTooLarge", err)
	}
	if err := s.Set(keyhash.Key{Lo: 1}, make([]byte, 1000)); err != nil {
		t.Fatalf("Set of exactly MaxValueSize: %v", err)
	}
}

// TestFillHoldsBudget fills a store with distinct keys and checks that it
// ends up nearly full by both measures and never above its budget.
func TestFillHoldsBudget(t *testing.T) {
	const budget = 8 << 20
	s, err := New(Config{MaxBytes: budget})
	if err != nil {
		t.Fatal(err)
	}
	v := make([]byte, 128)
	var k keyhash.Key
	for i := range 200000 {
		binary.LittleEndian.PutUint64(v, uint64(i))
		k = keyhash.Key{Hi: uint64(i) * 0x9e3779b97f4a7c15, Lo: (uint64(i) + 1) * 0xbf58476d1ce4e5b9}
		if err := s.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	st := s.Stats()
	checkInvariants(t, s)
	perEntry := float64(budget) / float64(st.Entries)
	t.Logf("%+v, %.1f bytes per entry", st, perEntry)
	if st.Capacity > budget || st.Bytes > budget {
		t.Fatalf("over budget: %+v", st)
	}
	// 145 B record, 10 B index, 2×1.35 B ghosts, 4 B sketch: 161.7 B, plus
	// the segment waste that is larger in small stores.
	if perEntry > 174 {
		t.Fatalf("%.1f bytes per 128-byte entry, want ≤ 174 (segment waste is larger in small stores)", perEntry)
	}
	if got, ok := s.Get(k, nil); !ok || !bytes.Equal(got, v) {
		t.Fatal("last key set is missing")
	}
}

func ExampleStore() {
	s, err := New(Config{MaxBytes: 64 << 20})
	if err != nil {
		fmt.Println(err)
		return
	}
	k := keyhash.Key{Hi: 1, Lo: 2}
	_ = s.Set(k, []byte("result"))
	v, ok := s.Get(k, nil)
	fmt.Println(string(v), ok)
	// Output: result true
}
