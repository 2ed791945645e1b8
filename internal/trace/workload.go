package trace

import (
	"fmt"
	"math/rand/v2"
)

// maxRequests bounds a generated workload so that a typo in a request count
// fails cleanly instead of exhausting memory (2^28 keys is 2 GiB).
const maxRequests = 1 << 28

func checkCount(count int) error {
	if count < 1 || count > maxRequests {
		return fmt.Errorf("a workload of %d requests is not allowed: it must have 1 to %d", count, maxRequests)
	}
	return nil
}

func newRand(seed uint64) *rand.Rand {
	// The second PCG word is a fixed odd constant so that one seed names one
	// stream everywhere.
	return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
}

// ZipfKeys returns count requests for keys 1..n drawn from a Zipf
// distribution with skew s; key 1 is the most popular. The same seed gives
// the same sequence.
func ZipfKeys(seed uint64, s float64, n uint64, count int) ([]uint64, error) {
	if err := checkCount(count); err != nil {
		return nil, err
	}
	z, err := NewZipf(newRand(seed), s, n)
	if err != nil {
		return nil, err
	}
	keys := make([]uint64, count)
	for i := range keys {
		keys[i] = z.Uint64()
	}
	return keys, nil
}

// ScanZipfKeys returns count requests: Zipf over keys 1..n with skew s, and
// after every period Zipf requests a scan of scanLen keys never requested
// before (above n), as a batch job or a crawler sweeping through data that
// will not be reused. A scan-resistant policy keeps the Zipf head through
// them; LRU flushes it. The same seed gives the same sequence.
func ScanZipfKeys(seed uint64, s float64, n uint64, count, scanLen, period int) ([]uint64, error) {
	if err := checkCount(count); err != nil {
		return nil, err
	}
	if scanLen < 1 || period < 1 {
		return nil, fmt.Errorf("scans of %d keys every %d requests are not allowed: both must be at least 1", scanLen, period)
	}
	z, err := NewZipf(newRand(seed), s, n)
	if err != nil {
		return nil, err
	}
	keys := make([]uint64, 0, count)
	fresh := n + 1
	for len(keys) < count {
		for i := 0; i < period && len(keys) < count; i++ {
			keys = append(keys, z.Uint64())
		}
		for i := 0; i < scanLen && len(keys) < count; i++ {
			keys = append(keys, fresh)
			fresh++
		}
	}
	return keys, nil
}

// LoopKeys returns count requests cycling through keys 1..n in order: with
// a cache smaller than n, LRU always evicts the key needed next and never
// hits, while OPT hits about (capacity-1)/n of the time.
func LoopKeys(n uint64, count int) ([]uint64, error) {
	if err := checkCount(count); err != nil {
		return nil, err
	}
	if n < 1 {
		return nil, fmt.Errorf("a loop over %d keys is not allowed: it needs at least 1", n)
	}
	keys := make([]uint64, count)
	for i := range keys {
		keys[i] = uint64(i)%n + 1
	}
	return keys, nil
}
