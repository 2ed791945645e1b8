package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coalesce-go/coalesce"
	"github.com/redis/rueidis"
)

// ErrUnavailable is wrapped by the errors of a Tier that cannot reach
// Redis, and, with Options.FailClosed, by the error Load delivers to the
// waiters.
var ErrUnavailable = errors.New("cluster: Redis is unavailable")

// ErrClosed is returned by a Tier's methods after Close.
var ErrClosed = errors.New("cluster: the tier is closed")

// A Tier is a coalesce.Tier shared by the nodes that use one Redis. It is
// safe for concurrent use, and meant to be shared by every Group of a
// process (one liveness key, one connection).
//
// Load either answers from Redis (a result, or another node's recent
// error), waits for another node's computation of the input, or takes the
// input's lease so that this node computes it; Save then stores the
// outcome if the lease is still this node's. Every round trip is bounded
// by Options.Timeout; a wait, by Load's context only.
type Tier struct {
	opts   Options
	client rueidis.Client
	node   string // random: ids survive neither a restart of the node nor of Redis
	wake   wakeups
	stats  stats
	errLog errLog

	claims atomic.Uint64 // numbers this node's claims

	closeOnce sync.Once
	done      chan struct{}
	refresher sync.WaitGroup
	repairs   sync.WaitGroup // background clean-ups after failed round trips
	repairMu  sync.Mutex     // orders repairs.Add against Close's Wait
	noRepairs bool           // set by Close, under repairMu
}

// lease is the Lease a Tier's Load hands the Group for its Save.
type lease struct {
	key   string
	value string // the lease as stored: L<token>:<node>:<claim>
}

var _ coalesce.Tier = (*Tier)(nil)
var _ coalesce.TierDeleter = (*Tier)(nil)

// New connects to Redis and registers this node's liveness. It fails if
// Redis cannot be reached within Options.Timeout (and a little more for
// the connection's handshake); once made, a Tier outlives Redis' outages.
func New(ctx context.Context, opts Options) (*Tier, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	var co rueidis.ClientOption
	if opts.URL != "" {
		if co, err = rueidis.ParseURL(opts.URL); err != nil {
			return nil, fmt.Errorf("%w: URL %q: %v", ErrBadOptions, opts.URL, err)
		}
	} else {
		co.InitAddress = []string{opts.Addr}
	}
	node := make([]byte, 8)
	rand.Read(node)
	t := &Tier{opts: opts, node: hex.EncodeToString(node), done: make(chan struct{})}
	t.errLog.logger = opts.Logger

	co.Dialer.Timeout = opts.Timeout
	// A server that stops answering on an open connection (paused,
	// partitioned) is found by rueidis' pings within this, and the
	// connection replaced; each command is bounded by Timeout anyway.
	co.ConnWriteTimeout = max(time.Second, 4*opts.Timeout)
	// Retries would stretch a command past Timeout; the Group recovers by
	// computing instead.
	co.DisableRetry = true
	co.OnInvalidations = t.wake.onInvalidations
	// Only the keys waited on are cached here, until they change: small
	// leases, mostly.
	co.CacheSizeEachConn = 8 << 20
	client, err := rueidis.NewClient(co)
	if errors.Is(err, rueidis.ErrNoCache) {
		// A server without RESP3 client tracking (Redis < 6, some
		// proxies): waiters poll.
		opts.Logger.Warn("cluster: the Redis server has no client-side caching; waiters will poll every PollInterval", "poll", opts.PollInterval)
		co.DisableCache = true
		client, err = rueidis.NewClient(co)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: connecting to %s: %v", ErrUnavailable, redisAddr(opts), err)
	}
	t.client = client
	if err := t.refreshLiveness(ctx); err != nil {
		client.Close()
		return nil, fmt.Errorf("%w: registering this node with %s: %v", ErrUnavailable, redisAddr(opts), err)
	}
	t.refresher.Add(1)
	go t.refreshLoop()
	return t, nil
}

func redisAddr(o Options) string {
	if o.Addr != "" {
		return o.Addr
	}
	return "the URL's server"
}

// Node returns this node's id, the one its leases and errors name.
func (t *Tier) Node() string { return t.node }

// Close stops the liveness refresh, deletes this node's liveness key (so
// that any lease it still holds is taken over at once by the waiters) and
// closes the connection. Waiting Loads return ErrClosed. Close the Groups
// that use the Tier first, so that their computations' outcomes are
// saved.
func (t *Tier) Close() {
	t.closeOnce.Do(func() {
		close(t.done)
		t.refresher.Wait()
		t.repairMu.Lock()
		t.noRepairs = true
		t.repairMu.Unlock()
		t.repairs.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), t.opts.Timeout)
		t.client.Do(ctx, t.client.B().Del().Key(t.liveKey(t.node)).Build())
		cancel()
		t.client.Close()
	})
}

func (t *Tier) closed() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

// refreshLoop keeps this node alive in Redis. A failed refresh is only
// counted: the next one may succeed before LivenessTTL runs out, and if
// none does, the worst outcome is that other nodes take this node's
// leases and compute too.
func (t *Tier) refreshLoop() {
	defer t.refresher.Done()
	tick := time.NewTicker(t.opts.LivenessRefresh)
	defer tick.Stop()
	for {
		select {
		case <-t.done:
			return
		case <-tick.C:
			ctx := context.Background()
			if err := t.twice(ctx, func() error { return t.refreshLiveness(ctx) }); err != nil {
				t.redisError("liveness refresh", err)
			}
		}
	}
}

func (t *Tier) refreshLiveness(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, t.opts.Timeout)
	defer cancel()
	host, _ := os.Hostname()
	who := host + " pid " + strconv.Itoa(os.Getpid())
	return t.client.Do(ctx, t.client.B().Set().Key(t.liveKey(t.node)).Value(who).Px(t.opts.LivenessTTL).Build()).Error()
}

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

// SecretSize is the size of the secret that SharedSecret returns, and
// coalesce.Options.Secret takes.
const SecretSize = 32

// SharedSecret returns the secret that keys the hash of inputs on every
// node of the cluster: drawn at random by the first node that asks, and
// stored in Redis (without a TTL) for the others. Nodes that hashed with
// different secrets would never share a result, though none would get a
// wrong one. Anyone who can read Redis can read the secret; they can also
// write results, so guard Redis itself.
func (t *Tier) SharedSecret(ctx context.Context) ([]byte, error) {
	if t.closed() {
		return nil, ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, t.opts.Timeout)
	defer cancel()
	fresh := make([]byte, SecretSize)
	rand.Read(fresh)
	key := t.secretKey()
	err := t.client.Do(ctx, t.client.B().Set().Key(key).Value(rueidis.BinaryString(fresh)).Nx().Build()).Error()
	if err != nil && !rueidis.IsRedisNil(err) {
		return nil, fmt.Errorf("%w: storing the shared secret: %v", ErrUnavailable, err)
	}
	s, err := t.client.Do(ctx, t.client.B().Get().Key(key).Build()).ToString()
	if err != nil {
		return nil, fmt.Errorf("%w: reading the shared secret: %v", ErrUnavailable, err)
	}
	if len(s) != SecretSize {
		return nil, fmt.Errorf("%w: %s holds %d bytes, not a %d-byte secret; delete it to draw a new one", ErrCorrupt, key, len(s), SecretSize)
	}
	return []byte(s), nil
}
