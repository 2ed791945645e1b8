package sim

import (
	"slices"
	"time"
)

// Report is the outcome of a simulation: the configuration after defaults,
// the stream and one result per design, in the order they ran.
type Report struct {
	Config  Config        `json:"-"`
	Stream  StreamSummary `json:"stream"`
	Results []Result      `json:"designs"`
}

// Result is what one design did with the stream.
type Result struct {
	Design string `json:"design"`
	Title  string `json:"title"`
	// Requests is the number of requests sent and answered; NotSent the
	// requests of the stream an agent was still waiting to send when the
	// run's duration was over.
	Requests int `json:"requests"`
	NotSent  int `json:"not_sent"`
	// Errors counts requests that failed or returned a wrong result.
	Errors int `json:"errors"`
	// Computations is the number of times the task ran; DistinctComputed
	// the number of distinct keys it ran for; Duplicates the difference.
	Computations     int64 `json:"computations"`
	DistinctComputed int   `json:"distinct_keys_computed"`
	Duplicates       int64 `json:"duplicate_computations"`
	// DistinctSent is the number of distinct keys the design was sent;
	// ComputationsPerInput is Computations divided by it: 1 when every
	// input asked for was computed exactly once (with a cache that never
	// evicts, the goal of coalescing), more for duplicates.
	DistinctSent         int     `json:"distinct_keys_sent"`
	ComputationsPerInput float64 `json:"computations_per_input"`
	Hits                 int     `json:"hits"`
	Joined               int     `json:"joined"`
	Misses               int     `json:"misses"`
	// Latency by kind of service, and over all requests.
	All       Latency `json:"latency_all"`
	HitLat    Latency `json:"latency_hit"`
	JoinedLat Latency `json:"latency_joined"`
	MissLat   Latency `json:"latency_miss"`
	// EndToEnd is the latency measured from each request's due time
	// instead of its sending: it adds the time the request waited for a
	// free slot of its agent, which a design that answers slowly causes
	// to the requests behind.
	EndToEnd Latency `json:"latency_end_to_end"`
	// RemoteLat is the latency of the requests a node answered with a
	// result another node computed (coalesce.Loaded, counted as joined),
	// in the cluster design only.
	RemoteLat Latency `json:"latency_remote,omitzero"`
	// Cluster is what the cluster design's tiers did; nil for the others.
	Cluster *ClusterResult `json:"cluster,omitempty"`

	Throughput float64 `json:"throughput_per_s"`
	// MeanInFlight is the mean number of outstanding requests (the sum of
	// latencies over the wall time, by Little's law).
	MeanInFlight float64 `json:"mean_in_flight"`
	WallSeconds  float64 `json:"wall_s"`
	CPUSeconds   float64 `json:"cpu_s"`

	// latencies holds the sorted latencies of each kind, for the charts.
	latencies [numKinds][]time.Duration
}

// ClusterResult is what the tiers of the cluster design's nodes did,
// summed over the nodes (see cluster.Stats), and the time they added.
type ClusterResult struct {
	Nodes          int    `json:"nodes"`
	RemoteHits     uint64 `json:"remote_hits"`
	RemoteJoins    uint64 `json:"remote_joins"`
	NegativeHits   uint64 `json:"negative_hits"`
	LeasesTaken    uint64 `json:"leases_taken"`
	LeasesStolen   uint64 `json:"leases_stolen"`
	LeasesLost     uint64 `json:"leases_lost"`
	LeasesReleased uint64 `json:"leases_released"`
	Wakeups        uint64 `json:"wakeups"`
	RedisErrors    uint64 `json:"redis_errors"`
	// RedisPerMiss is the time each computation spent in the tier on its
	// miss's path: the Load that took the input's lease (before the input
	// was queued) plus the Save of its result (before its waiters were
	// answered). It is what the cluster adds to a miss.
	RedisPerMiss Latency `json:"redis_per_miss"`
	// RedisPerRemote is the time of each Load that found another node's
	// result, at once (a remote hit) or after waiting for its computation
	// (a remote join).
	RedisPerRemote Latency `json:"redis_per_remote_result"`
}

// Latency summarizes a set of latencies; the durations are in nanoseconds
// in JSON.
type Latency struct {
	N   int           `json:"n"`
	P50 time.Duration `json:"p50_ns"`
	P95 time.Duration `json:"p95_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

func summarize(spec designSpec, outs []outcome, wall, cpu time.Duration) Result {
	r := Result{Design: spec.name, Title: spec.title, WallSeconds: wall.Seconds(), CPUSeconds: cpu.Seconds()}
	var all, e2e []time.Duration
	var sum time.Duration
	for _, o := range outs {
		if !o.sent {
			r.NotSent++
			continue
		}
		r.Requests++
		if o.failed {
			r.Errors++
		}
		switch o.kind {
		case Hit:
			r.Hits++
		case Joined:
			r.Joined++
		default:
			r.Misses++
		}
		r.latencies[o.kind] = append(r.latencies[o.kind], o.latency)
		all = append(all, o.latency)
		e2e = append(e2e, o.lag+o.latency)
		sum += o.latency
	}
	for k := range r.latencies {
		slices.Sort(r.latencies[k])
	}
	slices.Sort(all)
	r.All = latencyOf(all)
	slices.Sort(e2e)
	r.EndToEnd = latencyOf(e2e)
	r.HitLat = latencyOf(r.latencies[Hit])
	r.JoinedLat = latencyOf(r.latencies[Joined])
	r.MissLat = latencyOf(r.latencies[Miss])
	if wall > 0 {
		r.Throughput = float64(r.Requests) / wall.Seconds()
		r.MeanInFlight = sum.Seconds() / wall.Seconds()
	}
	return r
}

// latencyOf summarizes sorted latencies with nearest-rank percentiles.
func latencyOf(sorted []time.Duration) Latency {
	n := len(sorted)
	if n == 0 {
		return Latency{}
	}
	rank := func(p float64) time.Duration {
		i := int(p*float64(n)+0.999999999) - 1
		return sorted[min(max(i, 0), n-1)]
	}
	return Latency{N: n, P50: rank(0.50), P95: rank(0.95), P99: rank(0.99), Max: sorted[n-1]}
}

// Result returns the result of the named design, if it ran.
func (r *Report) Result(design string) (Result, bool) {
	for _, res := range r.Results {
		if res.Design == design {
			return res, true
		}
	}
	return Result{}, false
}

func sortDurations(d []time.Duration) { slices.Sort(d) }
