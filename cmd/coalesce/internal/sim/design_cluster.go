package sim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/coalesce-go/coalesce"
	"github.com/coalesce-go/coalesce/cluster"
)

// clusterDesign is this project's library on several machines sharing one
// Redis: N nodes, each a Group made as in the coalesce design
// (coalesceOptions: the same workers, cache and BlockWhenFull per node, as
// each node is a machine with cores of its own) with a cluster.Tier of its
// own behind its memory cache (its own connection and liveness key, as a
// separate process has), all on one Redis server. The agents are spread
// over the nodes round-robin, each talking to one node only, so an input
// requested on several nodes is computed once in the cluster only if the
// tier coalesces it; the replay's task counter, shared by the nodes,
// counts the computations of all of them.
//
// Every build of the design takes a fresh random key prefix, so a run never
// finds the results of an earlier one (or of checkDesigns' trial build);
// close deletes the keys under it.
//
// Accounting: Result.Source, with Loaded (a result another node computed)
// counted as Joined (see kindOf). The design also times what Redis adds:
// the tier's Load and Save around each computation, the Loads that found
// another node's result, and the requests answered with Loaded.
type clusterDesign struct {
	addr   string
	prefix string
	nodes  []*clusterNode

	remote  latencyLog // requests answered with coalesce.Loaded
	perMiss latencyLog // the tier's Load that took a lease plus the Save of its outcome
	found   latencyLog // the tier's Loads that found a result (or another node's error)
}

// clusterNode is one machine of the cluster design.
type clusterNode struct {
	g    *coalesce.Group
	tier *cluster.Tier
}

// MaxNodes bounds --nodes: each node is a Group with its own workers and a
// Redis connection.
const MaxNodes = 64

// clusterTimeout bounds the connection and handshake of each node's tier,
// as `coalesce serve --redis` does.
const clusterTimeout = 10 * time.Second

func newCluster(p designParams) (design, error) {
	if p.redis == "" {
		return nil, errNoRedis
	}
	nodes := max(p.nodes, 1)
	run := make([]byte, 8)
	rand.Read(run)
	d := &clusterDesign{addr: p.redis, prefix: "coalesce-sim:" + hex.EncodeToString(run) + ":"}
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	for range nodes {
		n, err := d.newNode(ctx, p)
		if err != nil {
			d.close()
			return nil, err
		}
		d.nodes = append(d.nodes, n)
	}
	return d, nil
}

// errNoRedis is the cluster design's error without --redis: it says how to
// start a Redis to run it on.
var errNoRedis = errors.New(`the cluster design needs a Redis server: give --redis HOST:PORT, or leave cluster out. ` +
	`To start a throwaway one (Debian's redis-server, installed if missing): ` +
	`info=$(scripts/redis); read -r addr pid dir <<<"$info"; then --redis $addr, and afterwards scripts/redis stop $pid $dir`)

// newNode joins one node to the cluster: its tier, the secret shared
// through Redis (so that every node keys an input alike), and its Group.
func (d *clusterDesign) newNode(ctx context.Context, p designParams) (*clusterNode, error) {
	opts := cluster.Options{
		Prefix: d.prefix,
		// Redis errors are counted (Stats.RedisErrors, in the report);
		// a log line each would only break the progress bar.
		Logger: slog.New(slog.DiscardHandler),
	}
	// Like `coalesce serve --redis`: host:port, or a redis:// URL.
	if strings.Contains(d.addr, "://") {
		opts.URL = d.addr
	} else {
		opts.Addr = d.addr
	}
	tier, err := cluster.New(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("--redis %s: %w", d.addr, err)
	}
	secret, err := tier.SharedSecret(ctx)
	if err != nil {
		tier.Close()
		return nil, fmt.Errorf("--redis %s: %w", d.addr, err)
	}
	gopts := coalesceOptions(p)
	gopts.Secret = secret
	gopts.Tiers = []coalesce.Tier{&timedTier{tier: tier, d: d}}
	g, err := coalesce.New(coalesce.Func(p.task), gopts)
	if err != nil {
		tier.Close()
		return nil, err
	}
	return &clusterNode{g: g, tier: tier}, nil
}

// get serves a request on the first node, for callers that are not an
// agent of the replay; the replay's agents use forAgent.
func (d *clusterDesign) get(ctx context.Context, input []byte) ([]byte, Kind, error) {
	return d.nodeGet(d.nodes[0])(ctx, input)
}

// forAgent gives agent a the node a mod N: the agents are spread evenly,
// and each keeps to its node as a program keeps to the daemon it was
// configured with.
func (d *clusterDesign) forAgent(agent, _ int) (getFunc, error) {
	return d.nodeGet(d.nodes[agent%len(d.nodes)]), nil
}

func (d *clusterDesign) nodeGet(n *clusterNode) getFunc {
	return func(ctx context.Context, input []byte) ([]byte, Kind, error) {
		t0 := time.Now()
		res, err := n.g.Get(ctx, input)
		if err == nil && res.Source == coalesce.Loaded {
			d.remote.add(time.Since(t0))
		}
		return kindOf(res, err)
	}
}

// close closes every node's Group, then its tier (which deletes its
// liveness key), then deletes what the run left in Redis.
func (d *clusterDesign) close() {
	for _, n := range d.nodes {
		n.g.Close()
		n.tier.Close()
	}
	d.deleteKeys()
}

// deleteKeys deletes the keys under the design's prefix (results, fencing
// counters, the shared secret), so that runs against a long-lived Redis do
// not pile up. It is best effort: a failure leaves keys that no later run
// reads, under a prefix of their own. On a Redis Cluster, SCAN sees only
// the node it is sent to.
func (d *clusterDesign) deleteKeys() {
	co := rueidis.ClientOption{InitAddress: []string{d.addr}}
	if strings.Contains(d.addr, "://") {
		var err error
		if co, err = rueidis.ParseURL(d.addr); err != nil {
			return
		}
	}
	co.DisableCache = true
	co.Dialer = net.Dialer{Timeout: clusterTimeout}
	c, err := rueidis.NewClient(co)
	if err != nil {
		return
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	var cursor uint64
	for {
		e, err := c.Do(ctx, c.B().Scan().Cursor(cursor).Match(d.prefix+"*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			return
		}
		if len(e.Elements) > 0 {
			if c.Do(ctx, c.B().Unlink().Key(e.Elements...).Build()).Error() != nil {
				return
			}
		}
		if cursor = e.Cursor; cursor == 0 {
			return
		}
	}
}

// annotate adds the nodes' tier counters, summed, and the times Redis
// added. The counters are read after close, when they no longer move.
func (d *clusterDesign) annotate(r *Result) {
	c := &ClusterResult{Nodes: len(d.nodes)}
	for _, n := range d.nodes {
		st := n.tier.Stats()
		c.RemoteHits += st.RemoteHits
		c.RemoteJoins += st.RemoteJoins
		c.NegativeHits += st.NegativeHits
		c.LeasesTaken += st.LeasesTaken
		c.LeasesStolen += st.LeasesStolen
		c.LeasesLost += st.LeasesLost
		c.LeasesReleased += st.LeasesReleased
		c.RedisErrors += st.RedisErrors
		c.Wakeups += st.Wakeups
	}
	c.RedisPerMiss = d.perMiss.summary()
	c.RedisPerRemote = d.found.summary()
	r.Cluster = c
	r.RemoteLat = d.remote.summary()
}

// timedTier is a node's cluster tier timed: a Load that takes a lease
// hands back its duration inside the lease, and the Save of that lease
// adds its own, so that perMiss holds what Redis added to each
// computation's path (the Group loads before queueing the input and saves
// before answering its waiters). Loads that found a result go to found.
type timedTier struct {
	tier *cluster.Tier
	d    *clusterDesign
}

// timedLease carries the tier's lease and the duration of the Load that
// took it.
type timedLease struct {
	lease any
	load  time.Duration
}

func (t *timedTier) Load(ctx context.Context, key coalesce.TierKey) (coalesce.TierResult, error) {
	t0 := time.Now()
	r, err := t.tier.Load(ctx, key)
	took := time.Since(t0)
	switch {
	case err != nil:
	case r.Lease != nil:
		r.Lease = &timedLease{lease: r.Lease, load: took}
	case r.Found || r.Err != nil:
		t.d.found.add(took)
	}
	return r, err
}

func (t *timedTier) Save(ctx context.Context, key coalesce.TierKey, out coalesce.Outcome) error {
	tl, ok := out.Lease.(*timedLease)
	if !ok {
		return t.tier.Save(ctx, key, out)
	}
	out.Lease = tl.lease
	t0 := time.Now()
	err := t.tier.Save(ctx, key, out)
	if err == nil && out.Err == nil {
		t.d.perMiss.add(tl.load + time.Since(t0))
	}
	return err
}

// latencyLog collects durations from many goroutines.
type latencyLog struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencyLog) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencyLog) summary() Latency {
	l.mu.Lock()
	defer l.mu.Unlock()
	sortDurations(l.d)
	return latencyOf(l.d)
}
