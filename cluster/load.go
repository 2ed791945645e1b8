package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/coalesce-go/coalesce"
	"github.com/redis/rueidis"
)

// Load implements coalesce.Tier: it answers with the input's result or
// error if Redis has one, waits while another live node computes it, and
// otherwise takes the input's lease (returned as TierResult.Lease) so
// that this node computes it.
func (t *Tier) Load(ctx context.Context, key coalesce.TierKey) (coalesce.TierResult, error) {
	if t.closed() {
		return coalesce.TierResult{}, ErrClosed
	}
	r, err := t.load(ctx, t.keysOf(key))
	if err != nil && t.closed() {
		return coalesce.TierResult{}, ErrClosed // the connection's end woke it
	}
	if err == nil || ctx.Err() != nil || errors.Is(err, ErrClosed) {
		return r, err
	}
	if errors.Is(err, ErrCorrupt) {
		t.opts.Logger.Error("cluster: computing locally", "err", err)
		return coalesce.TierResult{}, err
	}
	t.redisError("load", err)
	err = fmt.Errorf("%w: %v", ErrUnavailable, err)
	if t.opts.FailClosed {
		return coalesce.TierResult{Err: err}, nil
	}
	return coalesce.TierResult{}, err
}

// claimed is the outcome of one claim round trip.
type claimed struct {
	acquired bool
	raw      string // the key's value, or the lease taken
	pttl     int64
}

func (t *Tier) claim(ctx context.Context, k keys, dead string) (claimed, error) {
	ctx, cancel := context.WithTimeout(ctx, t.opts.Timeout)
	defer cancel()
	ttl := strconv.FormatInt(t.opts.LeaseTTL.Milliseconds(), 10)
	holder := t.node + ":" + strconv.FormatUint(t.claims.Add(1), 10)
	res, err := claimScript.Exec(ctx, t.client, []string{k.result, k.fence}, []string{holder, ttl, dead}).ToArray()
	if err != nil && mayHaveRun(err) {
		// The script may have run, and taken a lease nobody will use.
		t.repair(func(ctx context.Context) error {
			return abandonScript.Exec(ctx, t.client, []string{k.result}, []string{":" + holder}).Error()
		})
		return claimed{}, err
	}
	if len(res) < 2 {
		return claimed{}, fmt.Errorf("cluster: the claim script returned %d values", len(res))
	}
	var c claimed
	flag, err1 := res[0].AsInt64()
	c.raw, err = res[1].ToString()
	if err = errors.Join(err1, err); err != nil {
		return claimed{}, err
	}
	c.acquired = flag == 1
	if len(res) > 2 {
		c.pttl, _ = res[2].AsInt64()
	}
	return c, nil
}

// look reads an input's key, and claims it only if it is empty (or holds
// the lease dead): most reads find a result (another node's), and a plain
// GET costs Redis a tenth of the claim script's time (1-2 µs against
// 9-26 µs measured, docs/CLUSTER.md), for one more round trip per
// computation.
func (t *Tier) look(ctx context.Context, k keys, dead string) (claimed, error) {
	if dead != "" {
		return t.claim(ctx, k, dead)
	}
	rctx, cancel := context.WithTimeout(ctx, t.opts.Timeout)
	defer cancel()
	res := t.client.DoMulti(rctx, t.client.B().Get().Key(k.result).Build(), t.client.B().Pttl().Key(k.result).Build())
	raw, err := res[0].ToString()
	if rueidis.IsRedisNil(err) {
		return t.claim(ctx, k, "")
	}
	if err != nil {
		return claimed{}, err
	}
	pttl, err := res[1].AsInt64()
	if err != nil {
		return claimed{}, err
	}
	return claimed{raw: raw, pttl: pttl}, nil
}

func (t *Tier) load(ctx context.Context, k keys) (coalesce.TierResult, error) {
	var poll *time.Timer
	defer func() {
		if poll != nil {
			poll.Stop()
		}
	}()
	dead := "" // a lease whose owner was found dead, to take over
	seen := "" // the value the previous wake-up left off at
	waited := false
	for {
		var c claimed
		err := t.twice(ctx, func() (err error) { c, err = t.look(ctx, k, dead); return err })
		if err != nil {
			return coalesce.TierResult{}, err
		}
		if c.acquired {
			t.stats.leasesTaken.Add(1)
			if dead != "" {
				t.stats.leasesStolen.Add(1)
			}
			return coalesce.TierResult{Lease: &lease{key: k.result, value: c.raw}}, nil
		}
		d, err := decode(k.result, c.raw)
		if err != nil {
			return coalesce.TierResult{}, err
		}
		switch d.tag {
		case tagValue:
			if waited {
				t.stats.remoteJoins.Add(1)
			} else {
				t.stats.remoteHits.Add(1)
			}
			r := coalesce.TierResult{Found: true, Value: d.value}
			if c.pttl > 0 {
				r.Expires = time.Now().Add(time.Duration(c.pttl) * time.Millisecond)
			}
			return r, nil
		case tagNegative:
			t.stats.negativeHits.Add(1)
			return coalesce.TierResult{Err: d.err}, nil
		}

		// Another node holds the lease: wait for the key to change, for
		// the owner to die, or for the caller to leave.
		waited = true
		dead = ""
		w := t.wake.watch(k.result)
		var changed bool
		err = t.twice(ctx, func() (err error) { changed, err = t.track(ctx, k.result, c.raw); return err })
		if err != nil || changed {
			t.wake.unwatch(k.result, w)
			if err != nil {
				return coalesce.TierResult{}, err
			}
			continue
		}
		// A lease seen twice in a row without a wake-up between is the
		// poll's case: only then is the owner's liveness worth a round trip,
		// besides the first time, when the owner may have died long ago.
		if seen == "" || seen == c.raw {
			var alive bool
			err := t.twice(ctx, func() (err error) { alive, err = t.alive(ctx, d.owner); return err })
			if err != nil {
				t.wake.unwatch(k.result, w)
				return coalesce.TierResult{}, err
			}
			if !alive {
				t.wake.unwatch(k.result, w)
				dead = c.raw
				continue
			}
		}
		seen = c.raw
		if poll == nil {
			poll = time.NewTimer(t.opts.PollInterval)
		} else {
			poll.Reset(t.opts.PollInterval)
		}
		select {
		case <-w.ch:
			t.stats.wakeups.Add(1)
			seen = "" // woken: look again at whatever the key holds now
		case <-poll.C:
		case <-ctx.Done():
			t.wake.unwatch(k.result, w)
			return coalesce.TierResult{}, ctx.Err()
		case <-t.done:
			t.wake.unwatch(k.result, w)
			return coalesce.TierResult{}, ErrClosed
		}
		t.wake.unwatch(k.result, w)
	}
}

// mayHaveRun reports whether a command that failed with err may still
// have run: anything but an error reply from Redis (a timeout, a dropped
// connection) leaves it unknown.
func mayHaveRun(err error) bool {
	_, refused := rueidis.IsRedisErr(err)
	return !refused
}

// twice runs a round trip, and runs it again if it failed by a connection
// error: the first command on a connection that dropped while idle fails
// (EOF), and the next one dials a new connection. A timeout is not
// retried, so that a Redis that hangs costs one Timeout, nor an error
// reply, which would come again.
func (t *Tier) twice(ctx context.Context, op func() error) error {
	err := op()
	if err == nil || ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || !mayHaveRun(err) || t.closed() {
		return err
	}
	return op()
}

// track reads key through the client-side cache, so that Redis tracks it
// and invalidates it at its next change; it reports whether key no longer
// holds want.
func (t *Tier) track(ctx context.Context, key, want string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, t.opts.Timeout)
	defer cancel()
	// The cached copy lives until the key changes; the TTL only bounds a
	// key that never does.
	v, err := t.client.DoCache(ctx, t.client.B().Get().Key(key).Cache(), t.opts.LivenessTTL).ToString()
	if rueidis.IsRedisNil(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return v != want, nil
}

func (t *Tier) alive(ctx context.Context, node string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, t.opts.Timeout)
	defer cancel()
	n, err := t.client.Do(ctx, t.client.B().Exists().Key(t.liveKey(node)).Build()).AsInt64()
	return n > 0, err
}
