package trace

import (
	"fmt"
	"math"
)

// OPT computes the hit count of Belady's optimal policy on one key sequence:
// on a miss with a full cache, of the resident keys and the requested one,
// drop the key whose next request is furthest in the future (possibly the
// requested key itself, so no admission policy can do better). It is
// computed offline, which only a replay can do, and bounds every policy from
// above. An OPT is safe for concurrent use; computing several capacities at
// once shares the next-use table.
type OPT struct {
	// next[i] is the position of the next request for the key requested at
	// i, or len(next) if there is none.
	next     []int32
	distinct int
}

// NewOPT prepares keys for OPT. It fails if the sequence is longer than
// 2^30 requests, which the int32 positions cannot order.
func NewOPT(keys []uint64) (*OPT, error) {
	if len(keys) >= 1<<30 {
		return nil, fmt.Errorf("a trace of %d requests is too long for OPT: at most %d are allowed", len(keys), 1<<30-1)
	}
	next := make([]int32, len(keys))
	seen := make(map[uint64]int32)
	for i := len(keys) - 1; i >= 0; i-- {
		if j, ok := seen[keys[i]]; ok {
			next[i] = j
		} else {
			next[i] = int32(len(keys))
		}
		seen[keys[i]] = int32(i)
	}
	return &OPT{next: next, distinct: len(seen)}, nil
}

// Distinct returns the number of distinct keys in the sequence.
func (o *OPT) Distinct() int { return o.distinct }

// Len returns the number of requests in the sequence.
func (o *OPT) Len() int { return len(o.next) }

// Hits returns the number of requests that hit with capacity keys resident.
// It runs in O(n log capacity) time and O(n) space for n requests.
func (o *OPT) Hits(capacity int) int {
	n := int32(len(o.next))
	if capacity < 1 || n == 0 {
		return 0
	}
	capacity = min(capacity, math.MaxInt32/4)
	// resident[p] says whether the key requested at p is cached when p comes.
	// A cached key is an entry in a max-heap ordered by its next request;
	// keys never requested again get distinct priorities n+i beyond every
	// real position. An entry goes stale when its request comes (the key is
	// pushed again with its following request), and stale entries stay in
	// the heap until a compaction: they are all below the current position,
	// so the maximum is always live.
	resident := make([]bool, n)
	h := maxHeap(make([]int32, 0, min(int(n), 2*capacity+64)))
	live, hits := 0, 0
	for i := int32(0); i < n; i++ {
		if len(h) > 2*capacity+64 {
			h.compact(i)
		}
		hit := resident[i]
		nu := o.next[i]
		prio := nu
		if nu == n {
			prio = n + i
		} else {
			resident[nu] = true
		}
		h.push(prio)
		if hit {
			hits++
			continue // the entry at priority i went stale: live is unchanged
		}
		live++
		if live > capacity {
			if p := h.pop(); p < n {
				resident[p] = false
			}
			live--
		}
	}
	return hits
}

// maxHeap is a binary max-heap of positions, hand-rolled because
// container/heap's interface calls double the cost of OPT on long traces.
type maxHeap []int32

func (h *maxHeap) push(p int32) {
	*h = append(*h, p)
	s := *h
	i := len(s) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if s[parent] >= s[i] {
			break
		}
		s[parent], s[i] = s[i], s[parent]
		i = parent
	}
}

func (h *maxHeap) pop() int32 {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	*h = s[:last]
	h.down(0)
	return top
}

func (h maxHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		big := l
		if r := l + 1; r < len(h) && h[r] > h[l] {
			big = r
		}
		if h[i] >= h[big] {
			return
		}
		h[i], h[big] = h[big], h[i]
		i = big
	}
}

// compact drops the stale entries, those below position i, and restores the
// heap order.
func (h *maxHeap) compact(i int32) {
	s := (*h)[:0]
	for _, p := range *h {
		if p >= i {
			s = append(s, p)
		}
	}
	*h = s
	for j := len(s)/2 - 1; j >= 0; j-- {
		s.down(j)
	}
}
