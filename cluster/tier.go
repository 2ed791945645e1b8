package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
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

	onForget      atomic.Pointer[func(namespace, version string)]
	subscribeOnce sync.Once

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
