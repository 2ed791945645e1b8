package store

import (
	"sync/atomic"

	"github.com/coalesce-go/coalesce/internal/keyhash"
)

// A slot of the index packs, from the low bits up:
//
//	bits  0..31  record offset + 1 in the shard's arena (0 marks an empty slot)
//	bits 32..33  the S3-FIFO access frequency, 0..3
//	bits 34..63  a 30-bit tag: the top bits of Key.Lo
//
// The home position of a slot is computed from its tag alone, so that
// backward-shift deletion and growth can move entries without reading
// their keys from the arena, and so that a probe skips every slot whose tag
// differs without touching the arena at all.
const (
	offBits  = 32
	offMask  = 1<<offBits - 1
	freqBits = 2
	freqMax  = 1<<freqBits - 1
	tagShift = offBits + freqBits
	tagBits  = 64 - tagShift

	// maxOffsets bounds a shard's arena addresses (segment << segShift |
	// position): offsets are stored plus one in 32 bits.
	maxOffsets = 1<<offBits - 1
	// maxSlots bounds a shard's index so that every home position is
	// reachable from the 30-bit tag.
	maxSlots = 1 << tagBits

	// maxPartSlots bounds a part's table: growing one rehashes at most this
	// many slots (64 KiB, some tens of microseconds), whatever the shard's
	// size, so growth keeps the Set worst case of eviction.
	maxPartSlots = 8192
	// minPartSlots is a part's table when the shard is empty.
	minPartSlots = 8
)

func tagOf(k keyhash.Key) uint64 { return k.Lo >> tagShift }

func slotOff(s uint64) uint32  { return uint32(s&offMask) - 1 }
func slotFreq(s uint64) uint64 { return s >> offBits & freqMax }
func slotTag(s uint64) uint64  { return s >> tagShift }

func makeSlot(tag uint64, off uint32, freq uint64) uint64 {
	return tag<<tagShift | freq<<offBits | uint64(off+1)
}

func withOff(s uint64, off uint32) uint64 { return s&^offMask | uint64(off+1) }

func withFreq(s uint64, freq uint64) uint64 {
	return s&^(freqMax<<offBits) | freq<<offBits
}

// index maps a shard's keys to their records. It is a directory of parts
// picked by the top bits of the tag; each part is an open-addressing table
// with linear probing and backward-shift deletion (no tombstones, so probe
// lengths do not degrade with churn), and carries the count-min sketch of
// the keys it picks (sketch.go). A part starts at minPartSlots and doubles
// when its load passes the layout's, up to the layout's partSlots: memory
// follows the entries, and growth rehashes one part of at most maxPartSlots
// slots, never the shard's whole table, which is what keeps the worst Set
// flat while the store fills. Slot counts need not be powers of two because
// homes come from multiply-shift range reduction of the tag's low bits.
//
// At partSlots a part may fill beyond the load, since the shard's entry cap
// holds the parts' mean load at the layout's; a part past 15/16 refuses new
// keys (Set then stores nothing), which uniformly hashed keys do not reach:
// at the default load and 8,192 slots that is 11 standard deviations above
// the mean.
//
// Readers holding the shard's read lock load slots atomically and may bump
// the frequency bits with a CAS; every other change, growth included,
// happens under the write lock.
type index struct {
	parts []part
	shift uint // tagBits - log2(len(parts)): a tag's low shift bits pick its home
	l     *layout
	bytes int64 // tables and sketches allocated
	slots int   // slots allocated
}

// part is one table of the index and the sketch of its keys.
type part struct {
	slots   []uint64
	n       uint64 // len(slots)
	entries int
	sketch  []uint64 // count-min words, blockWords per block; nil without admission
	blocks  uint64
}

// partBytes is what a part's header costs besides its table and sketch.
const partBytes = 72

func newIndex(l *layout) index {
	ix := index{parts: make([]part, l.parts), shift: uint(l.partShift), l: l}
	n := uint64(min(minPartSlots, l.partSlots))
	for i := range ix.parts {
		ix.resize(&ix.parts[i], n)
	}
	return ix
}

// part returns the part holding tag's slot.
func (ix *index) part(tag uint64) *part { return &ix.parts[tag>>ix.shift] }

// home maps a tag's low bits uniformly onto [0, n).
func (ix *index) home(p *part, tag uint64) uint64 {
	return (tag & (1<<ix.shift - 1)) * p.n >> ix.shift
}

func (p *part) next(i uint64) uint64 {
	i++
	if i == p.n {
		return 0
	}
	return i
}

// findOff returns the part and position of the slot with tag pointing at
// off. The eviction scan uses it to decide whether the record at off is
// still live without reading any other record.
func (ix *index) findOff(tag uint64, off uint32) (p *part, pos uint64, ok bool) {
	p = ix.part(tag)
	want := uint64(off + 1)
	for i := ix.home(p, tag); ; i = p.next(i) {
		s := p.slots[i]
		if s == 0 {
			return p, 0, false
		}
		if slotTag(s) == tag && s&offMask == want {
			return p, i, true
		}
	}
}

// room makes room for one more slot in p, growing it if its load allows,
// and reports whether p may take it.
func (ix *index) room(p *part) bool {
	if p.n < uint64(ix.l.partSlots) && float64(p.entries+1) > ix.l.maxLoad*float64(p.n) {
		ix.resize(p, min(2*p.n, uint64(ix.l.partSlots)))
	}
	return p.entries+1 <= int(p.n-max(p.n/16, 1))
}

// resize gives p a table of n slots, rehashing its entries, and its sketch
// once n is sketchStart of its full size.
func (ix *index) resize(p *part, n uint64) {
	old := p.slots
	ix.bytes += int64(n-p.n) * 8
	ix.slots += int(n - p.n)
	p.slots, p.n = make([]uint64, n), n
	for _, s := range old {
		if s != 0 {
			ix.put(p, s)
		}
	}
	if n*sketchStart >= uint64(ix.l.partSlots) {
		ix.addSketch(p)
	}
}

// addSketch allocates p's sketch at its full size, if the store has one and
// p has none yet.
func (ix *index) addSketch(p *part) {
	if ix.l.sketchWords == 0 || p.sketch != nil {
		return
	}
	p.blocks = uint64(ix.l.sketchWords / ix.l.parts / blockWords)
	p.sketch = make([]uint64, p.blocks*blockWords)
	ix.bytes += int64(len(p.sketch)) * 8
}

// insert stores s in the first empty slot of its probe sequence. The caller
// has checked that the key is absent and that room allows it.
func (ix *index) insert(s uint64) {
	p := ix.part(slotTag(s))
	ix.put(p, s)
	p.entries++
}

func (ix *index) put(p *part, s uint64) {
	for i := ix.home(p, slotTag(s)); ; i = p.next(i) {
		if p.slots[i] == 0 {
			p.slots[i] = s
			return
		}
	}
}

// remove empties position i of p and shifts later members of the cluster
// back, so that every entry stays reachable from its home without
// tombstones.
func (ix *index) remove(p *part, i uint64) {
	p.entries--
	for j := p.next(i); ; j = p.next(j) {
		s := p.slots[j]
		if s == 0 {
			break
		}
		h := ix.home(p, slotTag(s))
		// s may move to i only if i lies cyclically within [h, j).
		var movable bool
		if i <= j {
			movable = h <= i || h > j
		} else {
			movable = h <= i && h > j
		}
		if movable {
			p.slots[i] = s
			i = j
		}
	}
	p.slots[i] = 0
}

// touch records one access on the slot at i, saturating at freqMax. It runs
// under the read lock, concurrently with other readers, hence the CAS; a
// lost race only means the access was counted by the other reader.
func (p *part) touch(i uint64, s uint64) {
	for slotFreq(s) < freqMax {
		if atomic.CompareAndSwapUint64(&p.slots[i], s, s+1<<offBits) {
			return
		}
		s = atomic.LoadUint64(&p.slots[i])
	}
}
