package coalesce

import (
	"fmt"

	"github.com/coalesce-go/coalesce/internal/keyhash"
	"github.com/coalesce-go/coalesce/internal/lru"
	"github.com/coalesce-go/coalesce/internal/store"
)

// resultStore is the seam where the result table varies: the pointer-free
// S3-FIFO store, the plain LRU, and later stores shared between processes.
// Implementations are safe for concurrent use; Get appends a copy of the
// value to dst and counts as one access (a miss too, for policies that
// count requests); Contains counts nothing; Set copies v and is not an
// access.
type resultStore interface {
	Get(k keyhash.Key, dst []byte) ([]byte, bool)
	Contains(k keyhash.Key) bool
	Set(k keyhash.Key, v []byte) error
	Delete(k keyhash.Key) bool
	usage() storeUsage
}

type storeUsage struct {
	entries   int
	bytes     int64
	evictions uint64
}

// newResultStore makes the store o asks for. With resultSizeSet false,
// o.MaxResultSize is only the default, and a cache too small for it gets the
// largest result it can hold instead of an error; the limit in force is
// returned.
func newResultStore(o Options, resultSizeSet bool) (resultStore, int, error) {
	wrap := func(err error) error {
		return fmt.Errorf("coalesce: Options.CacheBytes %d with MaxResultSize %d: %w", o.CacheBytes, o.MaxResultSize, err)
	}
	switch o.Policy {
	case LRU:
		maxValue := o.MaxResultSize
		if room := o.CacheBytes - lru.EntryOverhead; !resultSizeSet && room < int64(maxValue) {
			maxValue = int(max(room, 0))
		}
		if min := lruMinBytes(o, resultSizeSet); o.CacheBytes < min {
			return nil, 0, tooSmall(o, resultSizeSet, min)
		}
		s, err := lru.New(o.CacheBytes, maxValue)
		if err != nil {
			return nil, 0, wrap(err)
		}
		return lruStore{s}, maxValue, nil
	default:
		cfg := store.Config{MaxBytes: o.CacheBytes, MaxValueSize: o.MaxResultSize}
		if !resultSizeSet {
			cfg.MaxValueSize = 0 // the store's default: 64 KiB, or what fits
		}
		minCfg := cfg
		if !resultSizeSet {
			minCfg.MaxValueSize = minResultRoom
		}
		if min := minCfg.MinBytes(); o.CacheBytes < min {
			return nil, 0, tooSmall(o, resultSizeSet, min)
		}
		s, err := store.New(cfg)
		if err != nil {
			return nil, 0, wrap(err)
		}
		return s3fifoStore{s}, min(o.MaxResultSize, s.MaxValueSize()), nil
	}
}

// minResultRoom is the largest result that the smallest cache must hold
// when MaxResultSize is left to its default: a cache that holds only a few
// bytes per result is a mistake, not a configuration.
const minResultRoom = 1 << 10

// lruMinBytes is the least CacheBytes with which the LRU holds one result
// of MaxResultSize, or of minResultRoom if that is not set.
func lruMinBytes(o Options, resultSizeSet bool) int64 {
	room := int64(minResultRoom)
	if resultSizeSet {
		room = int64(o.MaxResultSize)
	}
	return room + lru.EntryOverhead
}

// tooSmall says how small a cache may be, in the terms of Options.
func tooSmall(o Options, resultSizeSet bool, min int64) error {
	with, what := fmt.Sprintf("with Policy %v", o.Policy), "raise CacheBytes"
	if resultSizeSet {
		with += fmt.Sprintf(" and MaxResultSize %d", o.MaxResultSize)
		what += " or lower MaxResultSize"
	}
	return fmt.Errorf("coalesce: Options.CacheBytes %d is too small: the minimum is %d bytes %s; %s",
		o.CacheBytes, min, with, what)
}

type s3fifoStore struct{ *store.Store }

func (s s3fifoStore) usage() storeUsage {
	st := s.Stats()
	return storeUsage{entries: st.Entries, bytes: st.Bytes, evictions: st.Evictions}
}

type lruStore struct{ *lru.Store }

func (s lruStore) usage() storeUsage {
	st := s.Stats()
	return storeUsage{entries: st.Entries, bytes: st.Bytes, evictions: st.Evictions}
}
