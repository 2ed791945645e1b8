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
// value to dst and counts as one access; Set copies v and is not an access.
type resultStore interface {
	Get(k keyhash.Key, dst []byte) ([]byte, bool)
	Set(k keyhash.Key, v []byte) error
	Delete(k keyhash.Key) bool
	usage() storeUsage
}

type storeUsage struct {
	entries   int
	bytes     int64
	evictions uint64
}

func newResultStore(o Options) (resultStore, error) {
	switch o.Policy {
	case LRU:
		s, err := lru.New(o.CacheBytes, o.MaxResultSize)
		if err != nil {
			return nil, fmt.Errorf("coalesce: Options.CacheBytes %d with MaxResultSize %d: %w", o.CacheBytes, o.MaxResultSize, err)
		}
		return lruStore{s}, nil
	default:
		s, err := store.New(store.Config{MaxBytes: o.CacheBytes, MaxValueSize: o.MaxResultSize})
		if err != nil {
			return nil, fmt.Errorf("coalesce: Options.CacheBytes %d with MaxResultSize %d: %w", o.CacheBytes, o.MaxResultSize, err)
		}
		return s3fifoStore{s}, nil
	}
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
