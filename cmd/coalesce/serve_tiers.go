package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/coalesce-go/coalesce"
	"github.com/coalesce-go/coalesce/cluster"
	"github.com/coalesce-go/coalesce/disk"
)

// tierSet is what the daemon runs behind its memory cache, and what the
// server needs to report on it.
type tierSet struct {
	disk       *disk.Store   // nil with --data-dir none
	redis      *cluster.Tier // nil without --redis
	checks     map[string]func() error
	stats      map[string]func() any
	collectors []prometheus.Collector
}

// openTiers opens the tiers the flags ask for and adds them to opts.
func openTiers(f serveFlags, log *slog.Logger, opts *coalesce.Options) (*tierSet, error) {
	t := &tierSet{checks: map[string]func() error{}, stats: map[string]func() any{}}
	if f.dataDir != "none" {
		if err := t.openDisk(f, log, opts); err != nil {
			return nil, err
		}
	}
	if f.redis != "" {
		if err := t.openRedis(f, log, opts); err != nil {
			t.close()
			return nil, err
		}
	}
	return t, nil
}

// openRedis joins the cluster: the Redis tier goes behind the disk, and
// its shared secret replaces the disk's, since keys must mean the same on
// every node (results the disk kept from before joining are then
// unreachable, and evicted in time).
func (t *tierSet) openRedis(f serveFlags, log *slog.Logger, opts *coalesce.Options) error {
	co := cluster.Options{Prefix: f.redisPrefix, LivenessTTL: f.redisLiveness, FailClosed: f.redisFailClosed,
		Logger: log.With("tier", "redis")}
	if strings.Contains(f.redis, "://") {
		co.URL = f.redis
	} else {
		co.Addr = f.redis
	}
	// A lease outlives the longest computation the daemon lets run.
	if d := 2 * f.taskTimeout; d > 5*time.Minute {
		co.LeaseTTL = d
	}
	r, secret, err := joinCluster(co, f.redisWait, log)
	if err != nil {
		return fmt.Errorf("--redis %s: %w", f.redis, err)
	}
	t.redis = r
	opts.Secret = secret
	opts.Tiers = append(opts.Tiers, r)
	h := &redisHealth{tier: r}
	t.checks["redis"] = h.check
	t.stats["redis"] = func() any { return r.Stats() }
	t.collectors = append(t.collectors, statsCollector[cluster.Stats]{r.Stats, clusterMetrics})
	return nil
}

// joinCluster connects to Redis and reads the cluster's shared secret,
// trying again for up to wait while Redis cannot be reached: daemons and
// their Redis are often started together, and the daemon cannot start
// without Redis (its keys are hashed with the secret Redis keeps, so it
// could not serve the others' results, nor they its own). Bad options
// fail at once.
func joinCluster(co cluster.Options, wait time.Duration, log *slog.Logger) (*cluster.Tier, []byte, error) {
	deadline := time.Now().Add(wait)
	pause := 100 * time.Millisecond
	for tries := 1; ; tries++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := cluster.New(ctx, co)
		var secret []byte
		if err == nil {
			if secret, err = r.SharedSecret(ctx); err != nil {
				r.Close()
			}
		}
		cancel()
		if err == nil {
			return r, secret, nil
		}
		if !errors.Is(err, cluster.ErrUnavailable) || time.Now().Add(pause).After(deadline) {
			if tries > 1 {
				err = fmt.Errorf("%w (tried %d times in %v: --redis-wait)", err, tries, wait)
			}
			return nil, nil, err
		}
		log.Warn("cannot reach Redis yet; trying again", "err", err, "try", tries, "until", deadline.Format(time.TimeOnly))
		time.Sleep(pause)
		pause = min(2*pause, 2*time.Second)
	}
}

// redisHealth fails while Redis errors are recent: the daemon then serves
// and computes on its own.
type redisHealth struct {
	tier *cluster.Tier
	mu   sync.Mutex
	seen uint64
	at   time.Time
}

// redisErrorWindow is how long after its last Redis error the daemon
// reports Redis as failing.
const redisErrorWindow = 10 * time.Second

func (h *redisHealth) check() error {
	n := h.tier.Stats().RedisErrors
	h.mu.Lock()
	defer h.mu.Unlock()
	if n > h.seen {
		h.seen, h.at = n, time.Now()
	}
	if !h.at.IsZero() && time.Since(h.at) < redisErrorWindow {
		return fmt.Errorf("%d Redis errors so far, the last at %s; computing locally meanwhile", n, h.at.Format("15:04:05"))
	}
	return nil
}

// openDisk opens the disk tier in --data-dir.
func (t *tierSet) openDisk(f serveFlags, log *slog.Logger, opts *coalesce.Options) error {
	mode, _ := disk.ParseSyncMode(f.syncMode)
	d, err := disk.Open(disk.Options{
		Dir:      f.dataDir,
		MaxBytes: int64(f.diskMaxGiB * (1 << 30)),
		Sync:     mode,
		Logger:   log.With("tier", "disk"),
	})
	if err != nil {
		return fmt.Errorf("--data-dir %s: %w", f.dataDir, err)
	}
	t.disk = d
	opts.Secret = d.Secret()
	opts.Tiers = append(opts.Tiers, d)
	t.stats["disk"] = func() any { return d.Stats() }
	t.checks["disk"] = func() error {
		if st := d.Stats(); !st.Healthy {
			return fmt.Errorf("writes failing since %s: %s", st.LastErrorAt.Format("15:04:05"), st.LastError)
		}
		return nil
	}
	t.collectors = append(t.collectors, statsCollector[disk.Stats]{d.Stats, diskMetrics})
	return nil
}

// deleteNamespace deletes a namespace's results (every version, or one)
// from the tiers that keep them: the disk, then Redis, which tells the
// other daemons to forget them too (see forgetWith).
func (t *tierSet) deleteNamespace(ns, version string) (int64, error) {
	n, err := t.deleteLocal(ns, version)
	if err != nil || t.redis == nil {
		return n, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := t.redis.DeleteNamespace(ctx, ns, version)
	return n + m, err
}

// deleteLocal deletes a namespace's results from the disk tier.
func (t *tierSet) deleteLocal(ns, version string) (int64, error) {
	if t.disk == nil {
		return 0, nil
	}
	if version == "" {
		return t.disk.DeleteNamespace(ns)
	}
	return t.disk.DeleteVersion(ns, version)
}

// forgetWith makes a namespace deleted through another daemon forgotten
// here too: in memory, and on this daemon's disk, from which it would
// otherwise be loaded again.
func (t *tierSet) forgetWith(g *coalesce.Group, log *slog.Logger) {
	if t.redis == nil {
		return
	}
	t.redis.OnForget(func(ns, version string) {
		if version == "" {
			g.ForgetNamespace(ns)
		} else if n, err := g.Namespace(ns, version); err == nil {
			n.Forget()
		} else {
			log.Warn("another daemon deleted a namespace this one cannot name", "namespace", ns, "version", version, "err", err)
			return
		}
		n, err := t.deleteLocal(ns, version)
		if err != nil {
			log.Warn("another daemon deleted a namespace; deleting it from this daemon's disk failed", "namespace", ns, "version", version, "err", err)
			return
		}
		log.Info("another daemon deleted a namespace; forgotten here", "namespace", ns, "version", version, "deleted_from_disk", n)
	})
}

func (t *tierSet) close() error {
	var errs []error
	if t.redis != nil {
		t.redis.Close()
	}
	if t.disk != nil {
		errs = append(errs, t.disk.Close())
	}
	return errors.Join(errs...)
}

// statsCollector exports a tier's Stats, read once per scrape so that the
// values of one scrape are of one moment.
type statsCollector[S any] struct {
	read    func() S
	metrics []statMetric[S]
}

type statMetric[S any] struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(*S) float64
}

func (c statsCollector[S]) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics {
		ch <- m.desc
	}
}

func (c statsCollector[S]) Collect(ch chan<- prometheus.Metric) {
	st := c.read()
	for _, m := range c.metrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(&st))
	}
}

func diskDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("coalesce_disk_"+name, help, nil, nil)
}

var diskMetrics = []statMetric[disk.Stats]{
	{diskDesc("entries", "Results on disk (expired ones until they are met)."), prometheus.GaugeValue, func(s *disk.Stats) float64 { return float64(s.Entries) }},
	{diskDesc("bytes", "Accounted size of the results on disk, which --disk-max-gib bounds."), prometheus.GaugeValue, func(s *disk.Stats) float64 { return float64(s.Bytes) }},
	{diskDesc("capacity_bytes", "The disk tier's budget."), prometheus.GaugeValue, func(s *disk.Stats) float64 { return float64(s.MaxBytes) }},
	{diskDesc("files_bytes", "Size of the store's files."), prometheus.GaugeValue, func(s *disk.Stats) float64 { return float64(s.DiskBytes) }},
	{diskDesc("hits_total", "Memory misses found on disk."), prometheus.CounterValue, func(s *disk.Stats) float64 { return float64(s.Hits) }},
	{diskDesc("misses_total", "Memory misses not found on disk."), prometheus.CounterValue, func(s *disk.Stats) float64 { return float64(s.Misses) }},
	{diskDesc("writes_total", "Results written."), prometheus.CounterValue, func(s *disk.Stats) float64 { return float64(s.Writes) }},
	{diskDesc("write_errors_total", "Results whose write failed or was refused for want of space."), prometheus.CounterValue, func(s *disk.Stats) float64 { return float64(s.WriteErrors) }},
	{diskDesc("dropped_total", "Results not written because the write queue was full."), prometheus.CounterValue, func(s *disk.Stats) float64 { return float64(s.Dropped) }},
	{diskDesc("read_errors_total", "Failed reads."), prometheus.CounterValue, func(s *disk.Stats) float64 { return float64(s.ReadErrors) }},
	{diskDesc("evictions_total", "Results evicted for space."), prometheus.CounterValue, func(s *disk.Stats) float64 { return float64(s.Evictions) }},
	{diskDesc("corrupt_total", "Records that failed their checksum (deleted, never served)."), prometheus.CounterValue, func(s *disk.Stats) float64 { return float64(s.Corrupt) }},
	{diskDesc("expired_total", "Records found past their namespace's TTL (deleted)."), prometheus.CounterValue, func(s *disk.Stats) float64 { return float64(s.Expired) }},
	{diskDesc("healthy", "1 while writes succeed, 0 while they fail (a full disk, permissions)."), prometheus.GaugeValue, func(s *disk.Stats) float64 {
		if s.Healthy {
			return 1
		}
		return 0
	}},
}

func clusterDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("coalesce_cluster_"+name, help, nil, nil)
}

// clusterCounter turns one of the cluster tier's counters into a metric.
func clusterCounter(name, help string, v func(*cluster.Stats) uint64) statMetric[cluster.Stats] {
	return statMetric[cluster.Stats]{clusterDesc(name, help), prometheus.CounterValue, func(s *cluster.Stats) float64 { return float64(v(s)) }}
}

var clusterMetrics = []statMetric[cluster.Stats]{
	clusterCounter("remote_hits_total", "Memory and disk misses found in Redis, computed by some node before.", func(s *cluster.Stats) uint64 { return s.RemoteHits }),
	clusterCounter("remote_joins_total", "Misses that waited for another node's computation.", func(s *cluster.Stats) uint64 { return s.RemoteJoins }),
	clusterCounter("negative_hits_total", "Misses answered with another node's recent error.", func(s *cluster.Stats) uint64 { return s.NegativeHits }),
	clusterCounter("leases_taken_total", "Inputs this node took the lease of, and computed.", func(s *cluster.Stats) uint64 { return s.LeasesTaken }),
	clusterCounter("leases_stolen_total", "Leases taken over from a node found dead.", func(s *cluster.Stats) uint64 { return s.LeasesStolen }),
	clusterCounter("leases_lost_total", "Outcomes rejected because another node had taken the lease meanwhile (fencing).", func(s *cluster.Stats) uint64 { return s.LeasesLost }),
	clusterCounter("leases_released_total", "Leases given back unused.", func(s *cluster.Stats) uint64 { return s.LeasesReleased }),
	clusterCounter("writes_total", "Results and errors stored in Redis.", func(s *cluster.Stats) uint64 { return s.Writes }),
	clusterCounter("wakeups_total", "Waits ended by an invalidation rather than by polling.", func(s *cluster.Stats) uint64 { return s.Wakeups }),
	clusterCounter("namespaces_deleted_total", "Namespaces deleted through this daemon from Redis, and published to the others.", func(s *cluster.Stats) uint64 { return s.NamespacesDeleted }),
	clusterCounter("namespaces_forgotten_total", "Namespaces another daemon deleted, forgotten here.", func(s *cluster.Stats) uint64 { return s.NamespacesForgotten }),
	clusterCounter("redis_errors_total", "Failed round trips to Redis; each made the node compute on its own (or fail, with --redis-fail-closed).", func(s *cluster.Stats) uint64 { return s.RedisErrors }),
}
