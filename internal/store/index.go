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
// backward-shift deletion can move entries without reading their keys from
// the arena, and so that a probe skips every slot whose tag differs without
// touching the arena at all.
const (
	offBits  = 32
	offMask  = 1<<offBits - 1
	freqBits = 2
	freqMax  = 1<<freqBits - 1
	tagShift = offBits + freqBits
	tagBits  = 64 - tagShift

	// maxArena is the largest arena a shard may have: offsets are stored
	// plus one in 32 bits.
	maxArena = 1<<offBits - 2
	// maxSlots bounds a shard's index so that every home position is
	// reachable from the 30-bit tag.
	maxSlots = 1 << tagBits
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

// index is an open-addressing table with linear probing and backward-shift
// deletion (no tombstones, so probe lengths do not degrade with churn). Its
// size is fixed at construction: it never rehashes, which is what keeps the
// worst insert latency flat while the store fills. The slot count need not
// be a power of two because homes come from multiply-shift range reduction.
//
// Readers holding the shard's read lock load slots atomically and may bump
// the frequency bits with a CAS; every other change happens under the write
// lock.
type index struct {
	slots []uint64
	n     uint64
}

func newIndex(n int) index {
	return index{slots: make([]uint64, n), n: uint64(n)}
}

// home maps a tag uniformly onto [0, n).
func (ix *index) home(tag uint64) uint64 { return tag * ix.n >> tagBits }

func (ix *index) next(i uint64) uint64 {
	i++
	if i == ix.n {
		return 0
	}
	return i
}

// findOff returns the position of the slot with tag pointing at off. The
// eviction scan uses it to decide whether the record at off is still live
// without reading any other record.
func (ix *index) findOff(tag uint64, off uint32) (pos uint64, ok bool) {
	want := uint64(off + 1)
	for i := ix.home(tag); ; i = ix.next(i) {
		s := ix.slots[i]
		if s == 0 {
			return 0, false
		}
		if slotTag(s) == tag && s&offMask == want {
			return i, true
		}
	}
}

// insert stores s in the first empty slot of its probe sequence. The caller
// has checked that the key is absent and that an empty slot exists.
func (ix *index) insert(s uint64) {
	for i := ix.home(slotTag(s)); ; i = ix.next(i) {
		if ix.slots[i] == 0 {
			ix.slots[i] = s
			return
		}
	}
}

// remove empties position i and shifts later members of the cluster back,
// so that every entry stays reachable from its home without tombstones.
func (ix *index) remove(i uint64) {
	for j := ix.next(i); ; j = ix.next(j) {
		s := ix.slots[j]
		if s == 0 {
			break
		}
		h := ix.home(slotTag(s))
		// s may move to i only if i lies cyclically within [h, j).
		var movable bool
		if i <= j {
			movable = h <= i || h > j
		} else {
			movable = h <= i && h > j
		}
		if movable {
			ix.slots[i] = s
			i = j
		}
	}
	ix.slots[i] = 0
}

// touch records one access on the slot at i, saturating at freqMax. It runs
// under the read lock, concurrently with other readers, hence the CAS; a
// lost race only means the access was counted by the other reader.
func (ix *index) touch(i uint64, s uint64) {
	for slotFreq(s) < freqMax {
		if atomic.CompareAndSwapUint64(&ix.slots[i], s, s+1<<offBits) {
			return
		}
		s = atomic.LoadUint64(&ix.slots[i])
	}
}
