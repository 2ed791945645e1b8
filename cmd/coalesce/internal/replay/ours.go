package replay

import (
	"github.com/coalesce-go/coalesce/internal/keyhash"
	"github.com/coalesce-go/coalesce/internal/store"
)

// newOurs returns this project's store bounded to capacity entries. A
// replay is one goroutine, so the store's locking costs only time.
func newOurs(capacity int) (Policy, error) {
	s, err := store.New(store.Config{MaxEntries: capacity})
	if err != nil {
		return nil, err
	}
	return &ours{s: s}, nil
}

// ours replays requests against a store.
type ours struct {
	s   *store.Store
	buf [8]byte
}

// oursValue is the value of every entry: a value this small never fills the
// arenas before the entry cap, so capacity in entries is what binds, as for
// the other policies.
var oursValue = []byte{1}

func (o *ours) Access(key uint64) bool {
	k := traceKey(key)
	if _, ok := o.s.Get(k, o.buf[:0]); ok {
		return true
	}
	// Set cannot fail: the value is far below MaxValueSize.
	_ = o.s.Set(k, oursValue)
	return false
}

// traceKey spreads a trace key over both halves of a Key. Trace keys are
// small, dense integers, while the store takes its shard, index and ghost
// bits from different parts of both halves, as a real keyed hash would make
// uniform; passing the raw key as either half would pile keys onto a few
// slots. Hi alone is a bijection of the trace key, so distinct trace keys
// stay distinct.
func traceKey(u uint64) keyhash.Key {
	return keyhash.Key{Hi: mix64(u), Lo: mix64(u ^ 0x6a09e667f3bcc909)}
}

// mix64 is the splitmix64 finalizer: a bijection whose every output bit
// depends on every input bit.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
