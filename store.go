package coalesce

import (
	"github.com/coalesce-go/coalesce/internal/keyhash"
	"github.com/coalesce-go/coalesce/internal/lru"
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
	default:
		s, err := lru.New(o.CacheBytes, o.MaxResultSize)
		if err != nil {
			return nil, err
		}
		return lruStore{s}, nil
	}
}

type lruStore struct{ *lru.Store }

func (s lruStore) usage() storeUsage {
	st := s.Stats()
	return storeUsage{entries: st.Entries, bytes: st.Bytes, evictions: st.Evictions}
}
