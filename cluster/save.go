package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/coalesce-go/coalesce"
)

// MaxValueSize is the largest result a Tier stores: Redis' default
// proto-max-bulk-len (512 MiB) less the entry's tag.
const MaxValueSize = 512<<20 - 1

// ErrTooLarge is returned, wrapped, by Save for a result over
// MaxValueSize; the result is not shared, and the lease is given back.
var ErrTooLarge = errors.New("cluster: result too large for Redis")

// Save implements coalesce.Tier. A result is stored, with the TTL that
// out.Expires gives; an error, for Options.NegativeTTL; a cancelled
// computation's lease (out.Err wraps context.Canceled or
// coalesce.ErrClosed) is released at once. A lease that another node took
// meanwhile makes the write a no-op (Stats.LeasesLost): that node's
// outcome stands.
func (t *Tier) Save(ctx context.Context, key coalesce.TierKey, out coalesce.Outcome) error {
	if t.closed() {
		return ErrClosed
	}
	var l *lease
	switch v := out.Lease.(type) {
	case nil:
	case *lease:
		l = v
	default:
		return fmt.Errorf("cluster: Save was given a Lease of type %T, not one this Tier's Load returned", out.Lease)
	}
	k := t.keysOf(key)
	if l != nil && l.key != k.result {
		return fmt.Errorf("cluster: Save was given the lease of %s for %s", l.key, k.result)
	}
	ctx, cancel := context.WithTimeout(ctx, t.opts.Timeout)
	defer cancel()

	release := out.Err != nil && (errors.Is(out.Err, context.Canceled) || errors.Is(out.Err, coalesce.ErrClosed) || errors.Is(out.Err, coalesce.ErrGoexit))
	var value, ttl string
	switch {
	case out.Err == nil && !out.Expires.IsZero() && time.Until(out.Expires) < time.Millisecond:
		release = true // stale already: nothing worth storing
	case out.Err == nil && len(out.Value) > MaxValueSize:
		// Redis would answer a protocol error and drop the connection under
		// the commands pipelined with it; the waiters compute for themselves.
		if l != nil {
			t.repair(func(ctx context.Context) error {
				return releaseScript.Exec(ctx, t.client, []string{k.result}, []string{l.value}).Error()
			})
		}
		return fmt.Errorf("%w: a result of %d bytes; Redis takes at most %d in one value", ErrTooLarge, len(out.Value), MaxValueSize)
	case out.Err == nil:
		value, ttl = "V"+string(out.Value), "0"
		if !out.Expires.IsZero() {
			ttl = strconv.FormatInt(time.Until(out.Expires).Milliseconds(), 10)
		}
	case !release && l == nil:
		// An error not of this node's computation (a farther tier's): this
		// node holds nothing to replace, and must not displace another's lease.
		return nil
	case !release:
		value, ttl = negativeEntry(t.node, out.Err), strconv.FormatInt(t.opts.NegativeTTL.Milliseconds(), 10)
	}
	if release {
		if l == nil {
			return nil
		}
		err := t.twice(ctx, func() error {
			return releaseScript.Exec(ctx, t.client, []string{k.result}, []string{l.value}).Error()
		})
		if err != nil {
			t.redisError("release", err)
			t.repair(func(ctx context.Context) error {
				return releaseScript.Exec(ctx, t.client, []string{k.result}, []string{l.value}).Error()
			})
			return fmt.Errorf("%w: releasing the lease of %s: %v", ErrUnavailable, k.result, err)
		}
		t.stats.leasesReleased.Add(1)
		return nil
	}
	owner := ""
	if l != nil {
		owner = l.value
	}
	args := []string{owner, value, ttl, "0"}
	var n int64
	err := t.twice(ctx, func() (err error) {
		n, err = writeScript.Exec(ctx, t.client, []string{k.result}, args).AsInt64()
		args[3] = "1"
		return err
	})
	if err != nil {
		t.redisError("save", err)
		// Left alone, the lease would keep the other nodes waiting until
		// LeaseTTL, this node being alive. Redis refused the write (out of
		// memory under noeviction, a value over proto-max-bulk-len): give
		// the lease back, so that they compute themselves; the reply was
		// lost: try the write again. args holds copies of the value, not
		// out.Value.
		if !mayHaveRun(err) {
			if l != nil {
				t.repair(func(ctx context.Context) error {
					return releaseScript.Exec(ctx, t.client, []string{k.result}, []string{l.value}).Error()
				})
			}
			return fmt.Errorf("cluster: Redis refused to store %s: %w", k.result, err)
		}
		args = []string{owner, value, ttl, "1"} // the closure's own: twice's may still be read
		t.repair(func(ctx context.Context) error {
			n, err := writeScript.Exec(ctx, t.client, []string{k.result}, args).AsInt64()
			if err == nil && n == 1 {
				t.stats.writes.Add(1)
			}
			return err
		})
		return fmt.Errorf("%w: storing %s: %v", ErrUnavailable, k.result, err)
	}
	if n == 0 {
		if l != nil {
			t.stats.leasesLost.Add(1)
		}
		return nil
	}
	t.stats.writes.Add(1)
	return nil
}

// Delete implements coalesce.TierDeleter: it deletes the input's result or
// error, never a lease (the computation holding it is not interrupted).
func (t *Tier) Delete(key coalesce.TierKey) (bool, error) {
	if t.closed() {
		return false, ErrClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.opts.Timeout)
	defer cancel()
	n, err := deleteScript.Exec(ctx, t.client, []string{t.keysOf(key).result}, nil).AsInt64()
	if err != nil {
		t.redisError("delete", err)
		return false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return n > 0, nil
}
