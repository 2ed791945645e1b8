package store

import (
	"encoding/binary"
	"sync/atomic"

	"github.com/coalesce-go/coalesce/internal/keyhash"
)

// A record in the arena is the key (Hi then Lo, little-endian), the value
// length as a uvarint, then the value. Records never span segments.

const (
	qSmall = 0
	qMain  = 1
	qFree  = 2
	noSeg  = -1
)

// queue is a FIFO of segments: records are appended at the head segment and
// evicted from the tail segment's read cursor.
type queue struct {
	head, tail int32
	beforeHead int32 // the segment linked to head, or noSeg if head is the tail
	segs       int   // segments in the queue
	entries    int   // live entries whose record is in the queue
	liveBytes  int64
}

// shard is one lock's worth of the store: an arena of segments shared
// by S3-FIFO's small and main queues (so that either may use all of it, and
// eviction starts only when the whole shard is full), an index from keys to
// record offsets, the ghosts of keys dropped from each queue, and the state
// of the policy's adaptation (see adapt).
//
// Nothing in a shard holds a pointer per entry: the garbage collector sees a
// pointer per chunk of segments (up to chunkSegs of up to 72 KiB) and per
// index part (of up to 8,192 entries), each to a pointer-free slice. A
// chunk is allocated when its first segment leaves the free stack, so the
// arena grows as the shard fills. Chunks rather than single segments: the
// collector's mark work is per pointer, and a full 1 GiB store of 72 KiB
// segments gave it 16,000 (3.8 ms of mark CPU per cycle, against 0.3 ms
// for one arena per shard).
type shard struct {
	mu rwlock

	chunks  [][]byte // segment data, chunkSegs segments each; nil until first used
	segNext []int32  // next segment towards the head, or noSeg
	segUsed []int32  // bytes written in the segment
	segRead []int32  // eviction cursor: bytes already processed
	segN    []int32  // live records in the segment
	segLive []int32  // bytes of the live records in the segment
	segQ    []uint8  // qSmall, qMain or qFree

	q        [2]queue
	free     int32 // stack of free segments linked by segNext
	freeSegs int
	usedSegs int   // segments allocated
	drainSeg int32 // the tail segment the byte cleaner last chose, or noSeg

	idx     index
	entries int
	ghost   ghost  // keys dropped from small (unaccessed, or refused by main)
	mghost  ghost  // keys dropped from main; empty words without adaptation
	freq    sketch // nil words without admission
	rng     uint64 // admission jitter, under the write lock

	// The adaptation's state, under the write lock: small's target in
	// entries, the admission margin, and the evidence counted towards the
	// margin's next step (negative: towards admitting more).
	small    int
	margin   int
	evidence int

	// The current Set's eviction work (see keepRecords): records moved,
	// their bytes, and records processed at the queues' tails; and the
	// most records any Set has processed (Stats.MaxSetSteps).
	keeps, keptBytes, steps int
	maxSteps                int
	// warmed is whether the current Set has loaded the index slots of
	// the records at main's tail (see warm), sink what those loads read.
	warmed bool
	sink   uint64
	// debt is the bytes stored that the cleaner has yet to free (negative:
	// freed ahead); see insert.
	debt int

	evictions uint64
	l         *layout
}

func newShard(l *layout) *shard {
	s := &shard{
		chunks:   make([][]byte, (l.segs+chunkSegs-1)/chunkSegs),
		segNext:  make([]int32, l.segs),
		segUsed:  make([]int32, l.segs),
		segRead:  make([]int32, l.segs),
		segN:     make([]int32, l.segs),
		segLive:  make([]int32, l.segs),
		segQ:     make([]uint8, l.segs),
		idx:      newIndex(l),
		ghost:    newGhost(l.ghostCap, l.ghostBits),
		mghost:   newGhost(l.mainGhostCap, l.ghostBits),
		small:    l.smallEntries,
		margin:   admitMargin,
		freq:     newSketch(l.sketchWords > 0, l.maxEntries),
		rng:      uint64(l.segs)*0x9e3779b97f4a7c15 | 1,
		l:        l,
		free:     noSeg,
		drainSeg: noSeg,
	}
	for i := l.segs - 1; i >= 0; i-- {
		s.pushFree(int32(i))
	}
	for i := range s.q {
		s.q[i].head, s.q[i].tail, s.q[i].beforeHead = noSeg, noSeg, noSeg
	}
	return s
}

func (s *shard) pushFree(seg int32) {
	s.segNext[seg] = s.free
	s.segUsed[seg], s.segRead[seg], s.segQ[seg] = 0, 0, qFree
	s.free = seg
	s.freeSegs++
}

func (s *shard) popFree() int32 {
	seg := s.free
	s.free = s.segNext[seg]
	s.segNext[seg] = noSeg
	s.freeSegs--
	if c := seg / chunkSegs; s.chunks[c] == nil {
		n := min(chunkSegs, s.l.segs-int(c)*chunkSegs)
		s.chunks[c] = make([]byte, n*s.l.segSize)
		s.usedSegs += n
	}
	return seg
}

// chunkSegs is the segments allocated together. 16 segments of 72 KiB are
// 1.1 MiB: a shard's memory still follows its use closely, and a full
// 1 GiB store is a thousand objects for the collector, not 16,000.
const chunkSegs = 16

// allocated reports whether seg's memory exists.
func (s *shard) allocated(seg int32) bool { return s.chunks[seg/chunkSegs] != nil }

// An offset in a shard's arena is a segment number shifted by the layout's
// segShift, or'ed with a position in the segment.

// at returns the arena from off to the end of its segment.
func (s *shard) at(off uint32) []byte {
	seg := int(off >> s.l.segShift)
	base := seg % chunkSegs * s.l.segSize
	return s.chunks[seg/chunkSegs][base+int(off&s.l.segMask) : base+s.l.segSize]
}

func (s *shard) segOf(off uint32) int32 { return int32(off >> s.l.segShift) }

func (s *shard) offset(seg int32, pos int32) uint32 { return uint32(seg)<<s.l.segShift | uint32(pos) }

// keyAt reports whether the record at off holds k.
func (s *shard) keyAt(off uint32, k keyhash.Key) bool {
	b := s.at(off)[:keySize]
	return binary.LittleEndian.Uint64(b) == k.Hi && binary.LittleEndian.Uint64(b[8:]) == k.Lo
}

// record decodes the record at off: its key, where its value starts, the
// value's length and the record's total size.
func (s *shard) record(off uint32) (k keyhash.Key, vstart uint32, vlen int, size int) {
	b := s.at(off)
	k.Hi = binary.LittleEndian.Uint64(b)
	k.Lo = binary.LittleEndian.Uint64(b[8:])
	n, w := binary.Uvarint(b[keySize:])
	vstart = off + uint32(keySize+w)
	return k, vstart, int(n), keySize + w + int(n)
}

// find returns k's index part, the position of its slot there and the
// slot. Readers call it under the read lock, so slots are loaded
// atomically.
func (s *shard) find(k keyhash.Key) (p *part, pos uint64, slot uint64, ok bool) {
	ix := &s.idx
	tag := tagOf(k)
	p = ix.part(tag)
	for i := ix.home(p, tag); ; i = p.next(i) {
		sl := atomic.LoadUint64(&p.slots[i])
		if sl == 0 {
			return p, 0, 0, false
		}
		if slotTag(sl) == tag && s.keyAt(slotOff(sl), k) {
			return p, i, sl, true
		}
	}
}

// count records one request for k in its part's sketch.
func (s *shard) count(p *part, k keyhash.Key) {
	if p.increment(k) {
		s.freq.adds.Add(1)
	}
}

func (s *shard) estimate(k keyhash.Key) uint64 {
	return s.idx.part(tagOf(k)).estimate(k)
}

func (s *shard) get(k keyhash.Key, dst []byte) ([]byte, bool) {
	s.mu.RLock()
	p, pos, slot, ok := s.find(k)
	if !ok {
		if s.freq.on {
			s.count(p, k)
		}
		s.mu.RUnlock()
		return dst, false
	}
	_, vstart, vlen, _ := s.record(slotOff(slot))
	dst = append(dst, s.at(vstart)[:vlen]...)
	if s.freq.on && slotFreq(slot) < freqMax {
		// A key at the top access count has been hit since it last passed
		// main's tail, so it is no victim: skipping its sketch update keeps
		// the hottest keys' hits to the index slot alone.
		s.count(p, k)
	}
	p.touch(pos, slot)
	s.mu.RUnlock()
	return dst, true
}

func (s *shard) contains(k keyhash.Key) bool {
	s.mu.RLock()
	_, _, _, ok := s.find(k)
	s.mu.RUnlock()
	return ok
}

func (s *shard) set(k keyhash.Key, v []byte) {
	size := recordSize(len(v))
	s.mu.Lock()
	defer s.endSet()
	s.keeps, s.keptBytes, s.steps = 0, 0, 0
	s.warmed = false
	s.freq.age(s.idx.parts)
	if s.evictions > 0 {
		s.idx.addSketch(s.idx.part(tagOf(k)))
	}
	if p, pos, slot, ok := s.find(k); ok {
		off := slotOff(slot)
		_, vstart, _, oldSize := s.record(off)
		if oldSize == size {
			// Same length: overwrite in place; readers are locked out.
			copy(s.at(vstart), v)
			return
		}
		// The old record becomes garbage that its segment's eviction skips.
		// The entry stays in its queue with its frequency: an update is not
		// an access, and not a new admission either.
		qi := s.segQ[s.segOf(off)]
		s.account(off, oldSize, -1)
		s.idx.remove(p, pos)
		s.entries--
		s.insert(k, v, size, int(qi), slotFreq(slot))
		return
	}
	qi := qSmall
	inSmall := s.ghost.contains(k)
	inMain := !inSmall && s.l.adapt && s.mghost.contains(k)
	if s.l.adapt {
		s.adapt(k, inSmall, inMain)
	}
	if inSmall || inMain {
		qi = qMain
		if s.freq.on && s.full() && s.mainFull() {
			// The insert will evict: a ghost hit takes main's victim's place
			// only if requested more often (TinyLFU), else starts in small.
			if admit, _ := s.admitOver(s.estimate(k), s.margin-ghostBonus); !admit {
				qi = qSmall
			}
		}
	}
	s.insert(k, v, size, qi, 0)
}

// endSet ends a Set: its work goes into the maximum, and the lock is
// released.
func (s *shard) endSet() {
	s.maxSteps = max(s.maxSteps, s.steps)
	s.mu.Unlock()
}

// insert appends a new record for k, which is absent from the index, making
// room first.
func (s *shard) insert(k keyhash.Key, v []byte, size int, qi int, freq uint64) {
	for s.entries >= s.l.maxEntries {
		s.evictEntry()
	}
	if lead, a := s.l.leadSegs*s.l.segSize, s.ahead(); a < lead {
		// The byte cleaner: once stores could take less than the lead
		// before only the reserve is free, every Set frees at a tail what
		// it stores (twice that while more than a segment behind), so
		// that the work of freeing a segment is spread evenly over the
		// Sets that fill one. The debt carries what a record's size did
		// not match over to the next Set: one drop per Set when sizes are
		// alike. Freeing twice what was stored in every other Set, as
		// before, made the Sets that cleaned twice as slow, and starting
		// within a segment of the reserve let a store find only the
		// reserve and drain the rest of a segment itself whenever moves
		// filled main's head meanwhile: 265 Sets in 400,000 in a 1 GiB
		// store with every entry hot, each processing 200 to 1,100
		// records (BenchmarkStoreHotSet), none with this lead.
		s.debt += size
		if a < lead-s.l.segSize {
			s.debt += size
		}
		s.debt = min(s.debt, 2*size)
		if s.debt > 0 {
			s.debt -= s.clean(s.debt)
		}
	} else {
		s.debt = 0
	}
	if !s.idx.room(s.idx.part(tagOf(k))) {
		return // see index: uniformly hashed keys never get here
	}
	off := s.reserve(qi, size, false)
	b := s.at(off)
	binary.LittleEndian.PutUint64(b, k.Hi)
	binary.LittleEndian.PutUint64(b[8:], k.Lo)
	n := binary.PutUvarint(b[keySize:], uint64(len(v)))
	copy(b[keySize+n:], v)
	s.idx.insert(makeSlot(tagOf(k), off, freq))
	s.entries++
	s.account(off, size, 1)
}

// account adds (delta 1) or removes (delta -1) a live record of size bytes
// at off to or from its segment's and its queue's counters.
func (s *shard) account(off uint32, size int, delta int) {
	seg := s.segOf(off)
	s.segN[seg] += int32(delta)
	s.segLive[seg] += int32(delta * size)
	q := &s.q[s.segQ[seg]]
	q.entries += delta
	q.liveBytes += int64(delta * size)
}

// reserve returns the offset of size free bytes at queue qi's head. A store
// (moving false) evicts segments while only the reserve is free; eviction
// moving a record (moving true) may use the reserve and never evicts, and
// gets ok false if even the reserve is gone.
func (s *shard) reserve(qi int, size int, moving bool) uint32 {
	q := &s.q[qi]
	if q.head != noSeg && int(s.segUsed[q.head])+size <= s.l.segSize {
		return s.bump(q.head, size)
	}
	if !moving {
		for s.freeSegs <= reserveSegs {
			s.evictSegment()
		}
		// Eviction may have appended to this queue's head.
		if q.head != noSeg && int(s.segUsed[q.head])+size <= s.l.segSize {
			return s.bump(q.head, size)
		}
	} else if s.freeSegs == 0 {
		return noRoom
	}
	seg := s.popFree()
	s.segQ[seg] = uint8(qi)
	if q.head == noSeg {
		q.tail = seg
	} else {
		s.segNext[q.head] = seg
	}
	q.head, q.beforeHead = seg, q.head
	q.segs++
	return s.bump(seg, size)
}

// noRoom is reserve's answer when a move finds no free segment.
const noRoom = ^uint32(0)

func (s *shard) bump(seg int32, size int) uint32 {
	off := s.offset(seg, s.segUsed[seg])
	s.segUsed[seg] += int32(size)
	return off
}

// adapt moves small's target and the admission margin on the evidence of a
// new key found in a ghost, as ARC moves its target (Megiddo and Modha). A
// key back soon after it left small unaccessed (it is in the ghost's
// current filter) would have hit in a longer small queue: small's target
// grows by one entry. A key back after it left main would have hit in a
// longer main: the target shrinks by one. The bounds keep either queue from
// vanishing. The margin moves one step after marginEvidence more keys came
// back from one ghost than from the other: keys refused by main (or dropped
// from small) that return are evidence that admission is too strict, keys
// that main evicted that return, that it is too lax. A loop larger than the
// cache mostly returns its keys after the ghost's current filter has turned
// over, so it does not grow small at the expense of main's stable subset
// (counting every small-ghost hit did: docs/HITRATIO.md).
func (s *shard) adapt(k keyhash.Key, inSmall, inMain bool) {
	switch {
	case inSmall:
		if s.ghost.containsRecent(k) {
			s.small = min(s.small+1, s.l.smallMax)
		}
		s.evidence--
	case inMain:
		s.small = max(s.small-1, s.l.smallMin)
		s.evidence++
	default:
		return
	}
	if s.evidence <= -marginEvidence {
		s.margin = max(s.margin-1, minMargin)
		s.evidence = 0
	} else if s.evidence >= marginEvidence {
		s.margin = min(s.margin+1, maxMargin)
		s.evidence = 0
	}
}

// smallShare is small's target as a share of the shard's entries.
func (s *shard) smallShare() float64 {
	return float64(s.small) / float64(s.l.maxEntries)
}

// keepRecords bounds the records one Set's eviction moves: re-appended at
// main's head with one access less, promoted from small, or admitted over
// main's victim. Exact CLOCK, which main's queue is, re-appends every
// accessed record it meets, so with every entry hot one Set would walk main
// up to freqMax times under the write lock (159 ms with a million entries
// in a shard). Once the budget is spent, eviction drops what it finds at
// small's tail, accessed or not (the ghost remembers it, and a key that
// comes back enters main), and only when small is empty main's tail record
// whatever its count; main's walk resumes at the next Set where it stopped.
// Dropping from small keeps main's hot keys, which is what the walk was for.
// On the traces of docs/HITRATIO.md, fewer than 1 Set in 3,000 needs more
// than 128 moves, and the budget changed no mean (6.29 points from OPT with
// and without it); 32 and 64 lost 6–7 points at lirs_ps@150, where the walk
// covers the whole small cache. keepBytes bounds the bytes copied likewise.
const (
	keepRecords = 128
	keepBytes   = 256 << 10
)

// canKeep reports whether the current Set may still move a record of size
// bytes.
func (s *shard) canKeep(size int) bool {
	return s.keeps < s.keepLimit() && s.keptBytes+size <= max(keepBytes, 2*s.l.segSize)
}

// keepLimit is keepRecords for small shards, whose policy is sensitive to
// every move and whose records are cache-resident, and bigKeepRecords
// above bigShard entries, where each move is a cache miss or two. With
// every entry of a 1 GiB store hot, 32 instead of 128 took a Set's p99
// from 95 µs to 49 µs and its p99.9 from 206 µs to 111 µs, and moved no
// point of docs/HITRATIO.md by more than 0.04 (mean gap to OPT 6.27 either
// way). 16 since the byte cleaner frees in every Set what it stores: the
// cleaner used to free two records in every other Set, so 32 moves per Set
// were 16 per record freed, as now; with 32, every other Set moved 32 and
// the others none (the same moves in all, as the walk finds victims at
// count 0 twice as soon), so 16 halves the slowest Sets' work. 8 since the
// shard's lock stopped parking its waiters: the median Set there went from
// 5.1-5.6 µs to 2.8-4.6 µs and p99 from 16-22 µs to 5-15 µs (3 runs each),
// and only three points of docs/HITRATIO.md moved, by at most 0.17
// (arc_p3@190000 58.70 → 58.53; mean gap to OPT 6.27 either way).
func (s *shard) keepLimit() int {
	if s.l.maxEntries > bigShard {
		return bigKeepRecords
	}
	return keepRecords
}

const (
	bigShard       = 1 << 14
	bigKeepRecords = 8
)

// spent reports whether the current Set's moves are used up.
func (s *shard) spent() bool {
	return s.keeps >= s.keepLimit() || s.keptBytes >= max(keepBytes, 2*s.l.segSize)
}

// evictEntry drops one entry, for the entry cap. S3-FIFO evicts from the
// small queue while it holds at least its share of the entries.
func (s *shard) evictEntry() {
	for {
		qi := qMain
		if s.q[qSmall].entries > 0 && float64(s.q[qSmall].entries) >= s.smallShare()*float64(s.entries) {
			qi = qSmall
		} else if s.q[qMain].entries == 0 || s.spent() && s.q[qSmall].entries > 0 {
			qi = qSmall
		}
		if dropped, _ := s.evictStep(qi); dropped {
			return
		}
	}
}

// drainQueue picks the queue whose tail segment the byte-bound eviction
// processes: small while it holds at least its target share of the segments
// in use, else main; a queue's head segment only if it is the last one
// standing. It sticks to the segment it chose until that segment leaves the
// tail, so that work spread over Sets frees whole segments instead of
// leaving both tails half drained; and it turns to small once the Set's
// moves are spent, as evictEntry does.
func (s *shard) drainQueue() int {
	small, main := &s.q[qSmall], &s.q[qMain]
	if d := s.drainSeg; d != noSeg {
		if qi := int(s.segQ[d]); qi != qFree && s.q[qi].tail == d && s.q[qi].segs > 1 && !(qi == qMain && s.spent() && !s.drained(qSmall)) {
			return qi
		}
	}
	qi := qMain
	used := float64(small.segs + main.segs)
	if small.segs > 1 && float64(small.segs) >= s.smallShare()*used || main.segs <= 1 {
		qi = qSmall
	}
	if s.q[qi].segs <= 1 {
		qi ^= 1
	}
	if qi == qMain && s.spent() && !s.drained(qSmall) || s.drained(qi) {
		qi ^= 1
	}
	s.drainSeg = s.q[qi].tail
	return qi
}

// drained reports whether queue qi has nothing left to process: no segment,
// or only its head, already read to the end.
func (s *shard) drained(qi int) bool {
	q := &s.q[qi]
	return q.segs == 0 || q.segs == 1 && s.segRead[q.tail] == s.segUsed[q.tail]
}

// evictSegment frees at least one segment, for the byte budget, when a
// store finds only the reserve free. The cleaner (clean) running ahead makes
// this rare, and absent in shards with the full lead (leadSegs); when it
// happens, it processes at most the rest of a segment or two, the moves
// being bounded by keepRecords.
func (s *shard) evictSegment() {
	free := s.freeSegs
	for s.freeSegs <= free {
		qi := s.drainQueue()
		if s.drained(qi) {
			return
		}
		s.evictStep(qi)
	}
}

// room is the bytes stores can take before only the reserve is free: the
// free segments beyond it and the rest of both heads.
func (s *shard) room() int {
	r := (s.freeSegs - reserveSegs) * s.l.segSize
	for i := range s.q {
		if h := s.q[i].head; h != noSeg {
			r += s.l.segSize - int(s.segUsed[h])
		}
	}
	return r
}

// clean processes records at a tail until target bytes were dropped or
// found to be garbage, or a segment was freed.
func (s *shard) clean(target int) (freed int) {
	free := s.freeSegs
	for freed < target && s.freeSegs <= free {
		qi := s.drainQueue()
		if s.drained(qi) {
			return freed
		}
		_, n := s.evictStep(qi)
		freed += n
	}
	return freed
}

// ahead is room counting the records already processed in the tail
// segments as free: it moves with every record the cleaner drops, not
// only when a whole segment is freed, so that the cleaner's pace follows
// its work.
func (s *shard) ahead() int {
	r := s.room()
	for i := range s.q {
		if t := s.q[i].tail; t != noSeg && t != s.q[i].head {
			r += int(s.segRead[t])
		}
	}
	return r
}

// evictStep processes the record at queue qi's eviction cursor: garbage is
// skipped, a live record is moved (to main, or back to main's head) or
// dropped per S3-FIFO. While main has room, small's whole tail segment is
// spliced into main instead, records and counts as they are. It reports
// whether an entry left the store and the bytes freed (dropped or garbage).
func (s *shard) evictStep(qi int) (dropped bool, freed int) {
	q := &s.q[qi]
	seg := q.tail
	if seg == noSeg {
		return false, 0
	}
	if s.segRead[seg] == s.segUsed[seg] || s.segN[seg] == 0 {
		// Drained, or only garbage left: nothing to read.
		freed = int(s.segUsed[seg] - s.segRead[seg])
		s.segRead[seg] = s.segUsed[seg]
		s.retire(qi)
		return false, freed
	}
	carry := qi == qSmall && s.freq.on && !s.mainFull()
	if carry && s.mainRoom() >= int(s.segN[seg]) && seg != s.q[qSmall].head {
		// Main has room for the whole segment: it becomes main's head as
		// it is (see carry below). Moving it whole, instead of record by
		// record, is what bounds the first drain after a fill, when small
		// holds every key: it was one Set copying nine tenths of the shard.
		// Only when the room is less than a segment do records move one by
		// one (fewer than a segment's worth, so outside keepRecords), so
		// that main does not overshoot its share: the excess would leave
		// from main's tail without admission, which churned the stable
		// subset of a loop (loop:100000 at 50,000 entries lost 33 points).
		s.splice(seg)
		return false, 0
	}
	off := s.offset(seg, s.segRead[seg])
	k, _, _, size := s.record(off)
	s.steps++
	s.segRead[seg] += int32(size)
	defer s.retireIfDrained(qi)

	p, pos, ok := s.idx.findOff(tagOf(k), off)
	if !ok {
		return false, size // garbage: deleted or overwritten
	}
	slot := p.slots[pos]
	freq := slotFreq(slot)
	var keep, victimDropped bool
	var newFreq uint64
	switch {
	case carry:
		// Main has room (it is filling, or small is over its target): the
		// key goes on with the accesses it had in small, as in one CLOCK
		// over both queues. Resetting them, as S3-FIFO does, threw away
		// what the first fill learnt: the hottest keys reached main's tail
		// at count 0 together with the coldest (docs/HITRATIO.md: arc_oltp
		// at 93,000 entries 77.65% → 77.91%, cloud_physics_w106 at 140,000
		// 93.83% → 94.46%).
		keep, newFreq = true, freq
	case !s.canKeep(size):
		// The Set's moves are spent: drop, whatever the count.
	case qi == qSmall:
		// S3-FIFO: a key accessed in small has earned main. With the sketch,
		// an unaccessed one gets main only by outweighing main's victim
		// (TinyLFU).
		keep = freq >= uint64(s.l.promoteAt)
		if !keep && s.freq.on {
			keep, victimDropped = s.admitOver(p.estimate(k), s.margin)
			// Dropping main's victim may have shifted index slots.
			_, pos, _ = s.idx.findOff(tagOf(k), off)
			slot = p.slots[pos]
		}
	case freq > 0:
		keep, newFreq = true, freq-1
	}
	if keep {
		if to := s.reserve(qMain, size, true); to != noRoom {
			copy(s.at(to)[:size], s.at(off)[:size])
			p.slots[pos] = withFreq(withOff(slot, to), newFreq)
			s.account(off, size, -1)
			s.account(to, size, 1)
			if !carry {
				s.keeps++
				s.keptBytes += size
			}
			return victimDropped, 0
		}
	}
	if qi == qSmall {
		s.ghost.add(k)
	} else if s.l.adapt {
		s.mghost.add(k)
	}
	s.idx.remove(p, pos)
	s.account(off, size, -1)
	s.entries--
	s.evictions++
	return true, size
}

// splice moves small's tail segment seg into main just before main's head,
// records, counts and garbage as they are, so that the head keeps taking
// the records that eviction moves. Made main's head, the segment left the
// old head's rest unused, which was most of a segment whenever a few moves
// came between two splices (TestSpliceKeepsMainsHead): main's segments
// then held a few records each.
func (s *shard) splice(seg int32) {
	small, main := &s.q[qSmall], &s.q[qMain]
	small.tail = s.segNext[seg]
	if small.beforeHead == seg {
		small.beforeHead = noSeg
	}
	small.segs--
	n, b := int(s.segN[seg]), int64(s.segLive[seg])
	small.entries -= n
	small.liveBytes -= b
	switch {
	case main.head == noSeg:
		s.segNext[seg] = noSeg
		main.head, main.tail = seg, seg
	case main.beforeHead == noSeg:
		s.segNext[seg] = main.head
		main.tail, main.beforeHead = seg, seg
	default:
		s.segNext[main.beforeHead] = seg
		s.segNext[seg] = main.head
		main.beforeHead = seg
	}
	main.segs++
	main.entries += n
	main.liveBytes += b
	s.segQ[seg] = qMain
}

// full reports whether storing a new key must evict.
func (s *shard) full() bool {
	return s.entries >= s.l.maxEntries || s.room() < s.l.segSize
}

// mainFull reports whether main holds its share of the shard, so that a key
// entering it must displace one.
func (s *shard) mainFull() bool {
	return s.mainRoom() <= 0
}

// mainRoom is how many entries main may still take before it holds its
// share: by entries, or none once it holds its share of the segments.
func (s *shard) mainRoom() int {
	m := &s.q[qMain]
	if m.segs >= int((1-s.smallShare())*float64(s.l.segs-reserveSegs)) {
		return 0
	}
	return s.l.maxEntries - s.small - m.entries
}

// The admission margin: a candidate leaving small unaccessed must beat
// main's victim's estimate by more than the shard's margin, which starts at
// admitMargin and adapts within [minMargin, maxMargin]; a ghost hit must
// beat it by more than the margin less ghostBonus. Rejecting near-ties
// matters with a compact sketch, whose estimates of keys seen equally often
// differ by collisions: otherwise a loop larger than the cache churns on
// noise. Mean gap to OPT on the LIRS traces, loop:20000 and cache2k_web07:
// 7.4 points with a fixed margin of 0, 4.2 with 1 (otter 4.1); letting it
// adapt lifts recency-heavy traces towards LRU (arc_p3 at 190,000 entries:
// 54.9% fixed, 57.2% adaptive, LRU 57.6%); see docs/HITRATIO.md.
const (
	admitMargin    = 1
	ghostBonus     = 1
	minMargin      = 0
	maxMargin      = 3
	marginEvidence = 16
)

// admitOver decides whether a key with sketch estimate cand enters the full
// main queue (TinyLFU's rule, as in Caffeine): it finds main's victim, the
// first unaccessed entry at its tail (re-appending accessed ones as eviction
// would), and admits the candidate only if its estimate exceeds the
// victim's by more than margin, dropping the victim; otherwise the victim
// stays. Rejecting ties is what keeps a stable subset of a loop larger than
// the cache. A small random
// share of warm candidates is admitted anyway, so that an attacker cannot
// pin a victim by flooding its counters' neighbours. dropped reports whether
// an entry left the store.
func (s *shard) admitOver(cand uint64, margin int) (admit, dropped bool) {
	m := &s.q[qMain]
	s.warm(s.keepLimit() - s.keeps + 1)
	for {
		seg := m.tail
		if seg == noSeg || s.segRead[seg] == s.segUsed[seg] && seg == m.head {
			return true, false // main is empty
		}
		if s.segRead[seg] == s.segUsed[seg] || s.segN[seg] == 0 {
			s.evictStep(qMain) // retires the drained or dead segment
			continue
		}
		off := s.offset(seg, s.segRead[seg])
		k, _, _, size := s.record(off)
		p, pos, ok := s.idx.findOff(tagOf(k), off)
		if !ok || slotFreq(p.slots[pos]) > 0 && s.canKeep(size) {
			// Garbage is skipped, an accessed entry re-appended; once the
			// Set's moves are spent, the tail record is the victim.
			if dropped, _ := s.evictStep(qMain); dropped {
				return true, true
			}
			continue
		}
		victim := p.estimate(k)
		if int(cand) > int(victim)+margin || cand >= 6 && s.random()&127 == 0 {
			dropped, _ := s.evictStep(qMain)
			return true, dropped
		}
		return false, false
	}
}

// warm loads the home index slots of the next n records at main's tail,
// once per Set, before admitOver's walk looks them up one by one. The
// loads are independent, so the processor overlaps their cache misses;
// looked up one after the other, each record of the walk waited for its
// own (index.findOff was half of a Set's time with every entry hot, and
// the median Set there went from 7.1 µs to 4.3 µs with this).
func (s *shard) warm(n int) {
	if s.warmed {
		return
	}
	s.warmed = true
	seg := s.q[qMain].tail
	if seg == noSeg {
		return
	}
	ix := &s.idx
	var sink uint64
	for pos, end := s.segRead[seg], s.segUsed[seg]; pos < end && n > 0; n-- {
		b := s.at(s.offset(seg, pos))
		lo := binary.LittleEndian.Uint64(b[8:])
		l, w := binary.Uvarint(b[keySize:])
		pos += int32(keySize + w + int(l))
		tag := lo >> tagShift
		p := ix.part(tag)
		sink += p.slots[ix.home(p, tag)]
	}
	s.sink += sink
}

// random is a xorshift step for admission jitter.
func (s *shard) random() uint64 {
	s.rng ^= s.rng << 13
	s.rng ^= s.rng >> 7
	s.rng ^= s.rng << 17
	return s.rng
}

// retireIfDrained frees queue qi's tail segment once eviction has passed its
// last record, unless it is also the head, which is instead rewound.
func (s *shard) retireIfDrained(qi int) {
	seg := s.q[qi].tail
	if seg != noSeg && s.segRead[seg] == s.segUsed[seg] {
		s.retire(qi)
	}
}

func (s *shard) retire(qi int) {
	q := &s.q[qi]
	seg := q.tail
	if seg == q.head {
		// Keep the queue's only segment, empty, for its next append.
		s.segUsed[seg], s.segRead[seg] = 0, 0
		return
	}
	q.tail = s.segNext[seg]
	if q.beforeHead == seg {
		q.beforeHead = noSeg
	}
	q.segs--
	s.pushFree(seg)
}

func (s *shard) delete(k keyhash.Key) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, pos, slot, ok := s.find(k)
	if !ok {
		return false
	}
	off := slotOff(slot)
	_, _, _, size := s.record(off)
	s.account(off, size, -1)
	s.idx.remove(p, pos)
	s.entries--
	return true
}
