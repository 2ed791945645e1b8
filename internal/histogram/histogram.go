// Package histogram records durations in fixed log-linear buckets with
// atomic counters, so that recording from many goroutines never takes a lock
// and a snapshot never stops recorders.
//
// Bucket i covers a range whose width is 1/8 of its lower bound (3 bits of
// mantissa), so a reported quantile is within 12.5% of the true value.
package histogram

import (
	"math/bits"
	"sync/atomic"
	"time"
)

const (
	subBits    = 3
	subBuckets = 1 << subBits
	// 64 exponents × 8 sub-buckets covers every non-negative int64.
	numBuckets = 64 * subBuckets
)

// Histogram is a concurrent duration histogram. The zero value is ready.
type Histogram struct {
	counts [numBuckets]atomic.Uint64
	sum    atomic.Int64
	max    atomic.Int64
}

func bucketOf(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	exp := bits.Len64(v) - 1 // v in [2^exp, 2^(exp+1))
	sub := (v >> (uint(exp) - subBits)) & (subBuckets - 1)
	return (exp-subBits+1)*subBuckets + int(sub)
}

// upperBound returns the largest value that falls in bucket i.
func upperBound(i int) uint64 {
	if i < subBuckets {
		return uint64(i)
	}
	exp := i/subBuckets + subBits - 1
	sub := uint64(i % subBuckets)
	lo := uint64(1)<<uint(exp) | sub<<(uint(exp)-subBits)
	return lo + (uint64(1) << (uint(exp) - subBits)) - 1
}

// Record adds one observation; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))].Add(1)
	h.sum.Add(int64(d))
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// Summary is a snapshot of a histogram.
type Summary struct {
	Count uint64
	Mean  time.Duration
	P50   time.Duration
	P90   time.Duration
	P99   time.Duration
	P999  time.Duration
	Max   time.Duration
}

// Summary reads the histogram. Recorders running at the same time may be
// partly included; each counter is read once, so the snapshot is consistent
// with itself.
func (h *Histogram) Summary() Summary {
	var counts [numBuckets]uint64
	var n uint64
	for i := range counts {
		counts[i] = h.counts[i].Load()
		n += counts[i]
	}
	s := Summary{Count: n, Max: time.Duration(h.max.Load())}
	if n == 0 {
		return s
	}
	s.Mean = time.Duration(h.sum.Load() / int64(n))
	q := func(p float64) time.Duration {
		rank := uint64(p*float64(n-1)) + 1
		var seen uint64
		for i, c := range counts {
			seen += c
			if seen >= rank {
				v := time.Duration(upperBound(i))
				if v > s.Max {
					v = s.Max
				}
				return v
			}
		}
		return s.Max
	}
	s.P50, s.P90, s.P99, s.P999 = q(0.50), q(0.90), q(0.99), q(0.999)
	return s
}
