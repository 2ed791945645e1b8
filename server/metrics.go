package server

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/coalesce-go/coalesce"
	"github.com/coalesce-go/coalesce/internal/histogram"
)

// metrics records what GET /metrics exports, on a registry of the Server's
// own: two Servers in one process do not clash, and a program that mounts
// a Server keeps its default registry to itself. The Group's counters are
// not copied: a collector reads g.Stats() at each scrape. What only the
// Server sees, the latency of each answer by source, is recorded here, in
// a Prometheus histogram for /metrics and in a log-linear one whose
// percentiles GET /v1/status reports. Safe for concurrent use.
type metrics struct {
	reg     *prometheus.Registry
	latency [numKinds]prometheus.Observer
	since   [numKinds]histogram.Histogram
}

// The kinds of answer observe records, in the order of kinds.
const (
	kindHit = iota
	kindJoined
	kindComputed
	kindLoaded
	kindError
	numKinds
)

var kinds = [numKinds]string{"hit", "joined", "computed", "loaded", "error"}

// latencyBuckets resolve tens of microseconds, where hits are answered,
// and steps of 5-10 ms around the tens of milliseconds a computation takes,
// up to the minute of the default task timeout.
var latencyBuckets = []float64{
	5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
	1e-3, 2.5e-3, 5e-3, 10e-3, 15e-3, 20e-3, 25e-3, 30e-3, 40e-3, 50e-3, 75e-3,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
}

func newMetrics(g *coalesce.Group) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	hv := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "coalesce",
		Name:      "http_request_duration_seconds",
		Help:      "Time from a compute request's arrival to its answer, by source: hit, joined (collapsed onto another's computation), computed, loaded (from a tier behind memory: disk or another machine), or error. A batch counts each input, with the batch's time.",
		Buckets:   latencyBuckets,
	}, []string{"source"})
	for i, k := range kinds {
		// Resolved once: observe then costs no label lookup on the hit path.
		m.latency[i] = hv.WithLabelValues(k)
	}
	m.reg.MustRegister(hv, statsCollector{g},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observe records one answered request: kind is "hit", "joined",
// "computed" or "error"; d is from the request's arrival to its answer.
func (m *metrics) observe(kind string, d time.Duration) {
	var i int
	switch kind {
	case "hit":
		i = kindHit
	case "joined":
		i = kindJoined
	case "computed":
		i = kindComputed
	case "loaded":
		i = kindLoaded
	default: // "error"; a kind the handlers do not send counts there too
		i = kindError
	}
	m.latency[i].Observe(d.Seconds())
	m.since[i].Record(d)
}

// observeBatch records each input of a batch, with the batch's time d.
func (m *metrics) observeBatch(results []coalesce.Result, errs []error, d time.Duration) {
	for i, r := range results {
		if errs[i] != nil {
			m.observe("error", d)
		} else {
			m.observe(r.Source.String(), d)
		}
	}
}

// latencies returns the percentiles of the answers by kind since the
// Server started.
func (m *metrics) latencies() map[string]coalesce.Latency {
	out := make(map[string]coalesce.Latency, numKinds)
	for i, k := range kinds {
		s := m.since[i].Summary()
		out[k] = coalesce.Latency{Count: s.Count, Mean: s.Mean, P50: s.P50, P90: s.P90, P99: s.P99, Max: s.Max}
	}
	return out
}

// watchServer adds the Server's own gauges, read at each scrape.
func (m *metrics) watchServer(s *Server) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "coalesce", Name: "http_waiters",
			Help: "HTTP requests blocked waiting for a result (blocking computes, and the inputs of batches)."},
			func() float64 { return float64(s.waiters.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "coalesce", Name: "async_pending",
			Help: "respond-async computations the server keeps alive for clients that will poll."},
			func() float64 { return float64(s.async.len()) }),
	)
}

// watchExtra exports the Config's checks and collectors.
func (m *metrics) watchExtra(checks map[string]func() error, cs []prometheus.Collector) error {
	for name, check := range checks {
		g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "coalesce", Name: "check_ok",
			Help:        "1 while a health check of what the service depends on passes, 0 while it fails (the service then serves from memory and computes).",
			ConstLabels: prometheus.Labels{"check": name}},
			func() float64 {
				if check() != nil {
					return 0
				}
				return 1
			})
		if err := m.reg.Register(g); err != nil {
			return err
		}
	}
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// statsCollector exports a Group's Stats, read once per scrape so that the
// values of one scrape are of one moment.
type statsCollector struct{ g *coalesce.Group }

// statsMetric is one value of Stats as Prometheus sees it.
type statsMetric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(*coalesce.Stats) float64
}

func statDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("coalesce_"+name, help, nil, nil)
}

var statsMetrics = []statsMetric{
	{statDesc("requests_total", "Requests: Get and Start calls, and inputs of batches."), prometheus.CounterValue, func(s *coalesce.Stats) float64 { return float64(s.Requests) }},
	{statDesc("hits_total", "Requests answered from the cache."), prometheus.CounterValue, func(s *coalesce.Stats) float64 { return float64(s.Hits) }},
	{statDesc("joined_total", "Requests that waited for another's computation."), prometheus.CounterValue, func(s *coalesce.Stats) float64 { return float64(s.Joined) }},
	{statDesc("computed_total", "Computations that returned a result."), prometheus.CounterValue, func(s *coalesce.Stats) float64 { return float64(s.Computed) }},
	{statDesc("uncached_total", "Results delivered but not cached: over the result size limit."), prometheus.CounterValue, func(s *coalesce.Stats) float64 { return float64(s.Uncached) }},
	{statDesc("errors_total", "Computations that failed, panics and timeouts included."), prometheus.CounterValue, func(s *coalesce.Stats) float64 { return float64(s.Errors) }},
	{statDesc("panics_total", "Computations that panicked."), prometheus.CounterValue, func(s *coalesce.Stats) float64 { return float64(s.Panics) }},
	{statDesc("timeouts_total", "Computations that exceeded the task timeout."), prometheus.CounterValue, func(s *coalesce.Stats) float64 { return float64(s.Timeouts) }},
	{statDesc("cached_errors_total", "Requests answered with a cached error."), prometheus.CounterValue, func(s *coalesce.Stats) float64 { return float64(s.CachedErrors) }},
	{statDesc("overloaded_total", "Requests refused because the queue was full."), prometheus.CounterValue, func(s *coalesce.Stats) float64 { return float64(s.Overloaded) }},
	{statDesc("abandoned_total", "Computations dropped because every waiter left."), prometheus.CounterValue, func(s *coalesce.Stats) float64 { return float64(s.Abandoned) }},
	{statDesc("evictions_total", "Results evicted from the cache to make room."), prometheus.CounterValue, func(s *coalesce.Stats) float64 { return float64(s.Evictions) }},
	{statDesc("loaded_total", "Results found in a tier behind memory (disk, or another machine) on a memory miss."), prometheus.CounterValue, func(s *coalesce.Stats) float64 { return float64(s.Loaded) }},
	{statDesc("tier_errors_total", "Failed calls of a tier behind memory; the Group served and computed without it."), prometheus.CounterValue, func(s *coalesce.Stats) float64 { return float64(s.TierErrors) }},
	{statDesc("cache_entries", "Results in the cache."), prometheus.GaugeValue, func(s *coalesce.Stats) float64 { return float64(s.Entries) }},
	{statDesc("cache_bytes", "Memory the cache holds, bookkeeping included."), prometheus.GaugeValue, func(s *coalesce.Stats) float64 { return float64(s.Bytes) }},
	{statDesc("cache_capacity_bytes", "The cache's memory budget."), prometheus.GaugeValue, func(s *coalesce.Stats) float64 { return float64(s.CacheBytes) }},
	{statDesc("in_flight", "Computations queued or running."), prometheus.GaugeValue, func(s *coalesce.Stats) float64 { return float64(s.InFlight) }},
	{statDesc("queued", "Computations waiting for a worker."), prometheus.GaugeValue, func(s *coalesce.Stats) float64 { return float64(s.Queued) }},
	{statDesc("waiters", "Callers waiting for a computation."), prometheus.GaugeValue, func(s *coalesce.Stats) float64 { return float64(s.Waiters) }},
	{statDesc("overdue", "Computations still running after their waiters were answered; a value that stays above zero names a hung function."), prometheus.GaugeValue, func(s *coalesce.Stats) float64 { return float64(s.Overdue) }},
}

// The Group's latency distributions, as summaries: the quantiles are over
// the Group's life, within 12.5% of the true values.
var (
	queueWaitDesc   = statDesc("queue_wait_seconds", "Time from queueing a computation to a worker starting it.")
	computeTimeDesc = statDesc("compute_seconds", "Time spent computing a result.")
)

func (c statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, sm := range statsMetrics {
		ch <- sm.desc
	}
	ch <- queueWaitDesc
	ch <- computeTimeDesc
}

func (c statsCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.g.Stats()
	for _, sm := range statsMetrics {
		ch <- prometheus.MustNewConstMetric(sm.desc, sm.kind, sm.value(&st))
	}
	ch <- latencySummary(queueWaitDesc, st.QueueWait)
	ch <- latencySummary(computeTimeDesc, st.ComputeTime)
}

func latencySummary(d *prometheus.Desc, l coalesce.Latency) prometheus.Metric {
	sum := l.Mean.Seconds() * float64(l.Count)
	return prometheus.MustNewConstSummary(d, l.Count, sum, map[float64]float64{
		0.5: l.P50.Seconds(), 0.9: l.P90.Seconds(), 0.99: l.P99.Seconds(),
	})
}
