package cluster

import (
	"context"
	"fmt"

	"github.com/coalesce-go/coalesce"
	"github.com/redis/rueidis"
)

var _ coalesce.TierPeeker = (*Tier)(nil)

// Peek implements coalesce.TierPeeker: one GET of the input's key, bounded
// by Options.Timeout. A result is Found; another node's recent error is
// the TierResult's Err; a lease (a computation running somewhere) or
// nothing is not found. Peek never takes a lease and never waits.
func (t *Tier) Peek(ctx context.Context, key coalesce.TierKey) (coalesce.TierResult, error) {
	if t.closed() {
		return coalesce.TierResult{}, ErrClosed
	}
	k := t.keysOf(key)
	ctx, cancel := context.WithTimeout(ctx, t.opts.Timeout)
	defer cancel()
	raw, err := t.client.Do(ctx, t.client.B().Get().Key(k.result).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return coalesce.TierResult{}, nil
	}
	if err != nil {
		t.redisError("peek", err)
		return coalesce.TierResult{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	d, err := decode(k.result, raw)
	if err != nil {
		return coalesce.TierResult{}, err
	}
	switch d.tag {
	case tagValue:
		return coalesce.TierResult{Found: true, Value: d.value}, nil
	case tagNegative:
		return coalesce.TierResult{Err: d.err}, nil
	}
	return coalesce.TierResult{}, nil
}
