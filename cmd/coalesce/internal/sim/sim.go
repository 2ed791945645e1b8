// Package sim replays one pre-generated request stream against every design
// of request coalescing the project compares, one design after the other,
// and measures what each did: computations, duplicates, hits, joined
// requests, latency by kind and CPU time.
//
// The one thing to know: every design sees exactly the same requests (the
// same agents, arrival times and keys, generated once from a seed) and the
// same number of workers, so differences in the results come from the
// designs, not from the workload. Counts are exact; latencies and CPU time
// are measurements on a shared machine and are only comparable within one
// run.
package sim

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"time"

	"github.com/coalesce-go/coalesce"
)

// Config describes a simulation: the workload and the designs to run. The
// zero value of a field means its documented default; Defaults returns them
// filled in.
type Config struct {
	// Agents is the number of agents issuing requests. Default 20.
	Agents int
	// InFlight is the number of requests the agents may have outstanding in
	// total; it is split evenly over the agents, each of which waits for a
	// free slot before sending its next request. Default 50.
	InFlight int
	// Rate is the arrival rate in requests per second. Default (0): by
	// Little's law, InFlight divided by the mean task duration, which is
	// the rate at which InFlight requests are outstanding when each waits
	// about one task duration (what the user's clients see).
	Rate float64
	// Duration is how long each design runs; agents stop sending new
	// requests after it and the outstanding ones are waited for.
	// Default 30s.
	Duration time.Duration
	// Workers bounds the computations running at once in every design.
	// Default: GOMAXPROCS.
	Workers int
	// Keys is the size of the key space the Zipf distribution draws from.
	// Default 1000. Ignored when TraceKeys is set.
	Keys int
	// ZipfS is the Zipf exponent; it must be > 1. Default 1.1.
	ZipfS float64
	// TraceKeys, when not nil, replaces the Zipf draw: request i takes key
	// TraceKeys[i mod len(TraceKeys)].
	TraceKeys []uint64
	// Task is how a task spends its duration: TaskSleep (default) or
	// TaskCPU, which burns a core for it.
	Task TaskKind
	// TaskDist is the distribution of task durations between TaskMin and
	// TaskMax: "uniform" (default), "fixed" (always the mean), "normal"
	// (mean in the middle, 3 standard deviations to each end, clamped) or
	// "exp" (TaskMin plus an exponential with mean (TaskMax-TaskMin)/2).
	// A key's duration is drawn once: the same input always costs the same.
	TaskDist string
	// TaskMin and TaskMax bound task durations. Default 15ms and 30ms.
	TaskMin, TaskMax time.Duration
	// InputMin and InputMax bound input sizes in bytes. Default 256, 1024.
	InputMin, InputMax int
	// OutputSize is the size of a result in bytes. Default 128.
	OutputSize int
	// CacheBytes is the result cache budget of the designs that cache.
	// Default 1 GiB.
	CacheBytes int64
	// Seed makes the stream reproducible. Default 1.
	Seed uint64
	// Designs lists the designs to run by name (see DesignNames), in order.
	// Default: DefaultDesigns, all of them but cluster unless Redis is set.
	Designs []string
	// Redis is the host:port of the Redis server the cluster design's
	// nodes share; the cluster design needs it.
	Redis string
	// Nodes is the number of nodes of the cluster design. Default 3.
	Nodes int
	// Progress, when not nil, is told how each design's run advances.
	Progress Progress
}

// TaskKind is how a simulated task spends its duration.
type TaskKind string

// The task kinds.
const (
	TaskSleep TaskKind = "sleep"
	TaskCPU   TaskKind = "cpu"
)

// Progress receives the advance of the runs: Start once per design with the
// number of requests it may send, Set with the number completed so far, and
// End when the design is done. Calls come from one goroutine.
type Progress interface {
	Start(design string, total int)
	Set(done int)
	End()
}

// Defaults returns c with every zero field set to its default.
func (c Config) Defaults() Config {
	if c.Agents == 0 {
		c.Agents = 20
	}
	if c.InFlight == 0 {
		c.InFlight = 50
	}
	if c.Duration == 0 {
		c.Duration = 30 * time.Second
	}
	if c.Workers == 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.Keys == 0 {
		c.Keys = 1000
	}
	if c.ZipfS == 0 {
		c.ZipfS = 1.1
	}
	if c.Task == "" {
		c.Task = TaskSleep
	}
	if c.TaskDist == "" {
		c.TaskDist = "uniform"
	}
	if c.TaskMin == 0 && c.TaskMax == 0 {
		c.TaskMin, c.TaskMax = 15*time.Millisecond, 30*time.Millisecond
	}
	if c.InputMin == 0 && c.InputMax == 0 {
		c.InputMin, c.InputMax = 256, 1024
	}
	if c.OutputSize == 0 {
		c.OutputSize = 128
	}
	if c.CacheBytes == 0 {
		c.CacheBytes = 1 << 30
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if len(c.Designs) == 0 {
		c.Designs = DefaultDesigns(c.Redis != "")
	}
	if c.Nodes == 0 {
		c.Nodes = 3
	}
	if c.Rate == 0 {
		mean := (c.TaskMin + c.TaskMax) / 2
		if mean <= 0 {
			mean = time.Millisecond
		}
		c.Rate = float64(c.InFlight) / mean.Seconds()
	}
	return c
}

// Validate reports the first field of c (after Defaults) that is out of
// range. The command is the only way a user sets a Config, so each error
// names the flag and its value, and says what is allowed.
func (c Config) Validate() error {
	switch {
	case c.Agents < 1 || c.Agents > MaxAgents:
		return fmt.Errorf("--agents %d: allowed 1 to %d (each agent is a goroutine)", c.Agents, MaxAgents)
	case c.InFlight < 1 || c.InFlight > MaxInFlight:
		return fmt.Errorf("--in-flight %d: allowed 1 to %d (each outstanding request is a goroutine)", c.InFlight, MaxInFlight)
	case c.InFlight < c.Agents:
		return fmt.Errorf("--agents %d with --in-flight %d: each agent needs a slot, so at most %d agents (or raise --in-flight)", c.Agents, c.InFlight, c.InFlight)
	case !(c.Rate > 0) || math.IsInf(c.Rate, 1):
		return fmt.Errorf("--rate %g: a finite number of requests per second > 0, or 0 for in-flight / mean task duration", c.Rate)
	case c.Duration <= 0 || c.Duration > MaxDuration:
		return fmt.Errorf("--duration %v: allowed above 0 and at most %v per design", c.Duration, MaxDuration)
	case c.Workers < 1 || c.Workers > MaxWorkers:
		return fmt.Errorf("--workers %d: allowed 1 to %d (coalesce.LimitWorkers), or 0 for GOMAXPROCS", c.Workers, MaxWorkers)
	case c.TraceKeys == nil && (c.Keys < 1 || c.Keys > MaxKeys):
		return fmt.Errorf("--keys %d: allowed 1 to %d", c.Keys, MaxKeys)
	case c.TraceKeys != nil && len(c.TraceKeys) == 0:
		return errors.New("--trace: the trace has no keys; give a trace with at least one request")
	case !(c.ZipfS > 1) || c.ZipfS > MaxZipf:
		return fmt.Errorf("--zipf %g: allowed above 1 and at most %d (at %d every request is already for the same key)", c.ZipfS, MaxZipf, MaxZipf)
	case c.Task != TaskSleep && c.Task != TaskCPU:
		return fmt.Errorf("--task %q: use %q or %q", c.Task, TaskSleep, TaskCPU)
	case c.TaskMin < 0:
		return fmt.Errorf("--task-min %v: at least 0", c.TaskMin)
	case c.TaskMax <= 0 || c.TaskMax > MaxTask:
		// Each design's run ends only when its outstanding tasks have,
		// so one long task stretches every design's run by as much.
		return fmt.Errorf("--task-max %v: allowed above 0 and at most %v (every design waits for its last tasks)", c.TaskMax, MaxTask)
	case c.TaskMax < c.TaskMin:
		return fmt.Errorf("--task-max %v: at least --task-min (%v)", c.TaskMax, c.TaskMin)
	case c.InputMin < minInput || c.InputMin > MaxInputSize:
		return fmt.Errorf("--input-min %d: allowed %d (the simulator's header) to %d bytes", c.InputMin, minInput, MaxInputSize)
	case c.InputMax < c.InputMin || c.InputMax > MaxInputSize:
		return fmt.Errorf("--input-max %d: allowed --input-min (%d) to %d bytes (coalesce.LimitInputSize)", c.InputMax, c.InputMin, MaxInputSize)
	case c.OutputSize < 1 || c.OutputSize > MaxOutputSize:
		return fmt.Errorf("--output %d: allowed 1 to %d bytes (coalesce.LimitResultSize)", c.OutputSize, MaxOutputSize)
	case c.CacheBytes < 1<<20 || c.CacheBytes > MaxCacheBytes:
		return CheckCacheMiB(c.CacheBytes >> 20)
	}
	requests := c.Rate * c.Duration.Seconds()
	switch {
	case requests > maxRequests:
		return fmt.Errorf("--duration %v at --rate %.4g/s makes %.0f requests; at most %d are allowed (the simulator keeps a record of each): lower the duration or the rate",
			c.Duration, c.Rate, requests, maxRequests)
	case requests < 1:
		return fmt.Errorf("--duration %v at --rate %.4g/s makes %.2g requests; at least 1 is needed: raise the duration or the rate (by default in-flight / mean task duration)",
			c.Duration, c.Rate, requests)
	}
	if need, distinct := c.memoryEstimate(requests); need > maxMemory {
		keys := fmt.Sprintf("--keys %d", c.Keys)
		if c.TraceKeys != nil {
			keys = fmt.Sprintf("--trace (%d distinct keys)", distinct)
		}
		return fmt.Errorf("%s, --input-max %d, --output %d: the inputs and results held in memory would take about %s; the simulator allows %s: lower one of them",
			keys, c.InputMax, c.OutputSize, approxBytes(need), bytesString(maxMemory))
	}
	if _, err := durationSampler(c.TaskDist, c.TaskMin, c.TaskMax); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, name := range c.Designs {
		if _, ok := lookupDesign(name); !ok {
			return fmt.Errorf("--designs: unknown design %q; choose among %s", name, strings.Join(DesignNames(), ","))
		}
		if seen[name] {
			return fmt.Errorf("--designs: %q is listed twice; each design runs once", name)
		}
		seen[name] = true
	}
	if seen["cluster"] && c.Redis == "" {
		return fmt.Errorf("--designs %s: %w", strings.Join(c.Designs, ","), errNoRedis)
	}
	if c.Nodes < 1 || c.Nodes > MaxNodes {
		return fmt.Errorf("--nodes %d: allowed 1 to %d (each node is a Group with its own workers and a Redis connection)", c.Nodes, MaxNodes)
	}
	if seen["daemon"] && c.InFlight > daemonMaxInFlight {
		return fmt.Errorf("--in-flight %d with design daemon: allowed up to %d there, since each outstanding request holds a loopback connection (two file descriptors and an ephemeral port); lower it, or leave daemon out of --designs",
			c.InFlight, daemonMaxInFlight)
	}
	return nil
}

// CheckCacheMiB reports whether a cache budget of n MiB is allowed. The
// command checks it before converting to bytes, which could overflow.
func CheckCacheMiB(n int64) error {
	if n < 1 || n > MaxCacheBytes>>20 {
		return fmt.Errorf("--cache-mib %d: allowed 1 to %d (%s; the library accepts up to %s, coalesce.LimitCacheBytes, but sizes its index by the budget up front)",
			n, MaxCacheBytes>>20, bytesString(MaxCacheBytes), bytesString(coalesce.LimitCacheBytes))
	}
	return nil
}

// Upper bounds of the workload. They are far above the user's figures and
// exist so that a typo fails at once, naming the limit, instead of
// exhausting the machine's memory or running for days.
const (
	MaxAgents   = 1 << 16
	MaxInFlight = 1 << 16
	// MaxWorkers is the library's own limit; the user's design builds a
	// ring of 100 points per worker, about 0.5 GB at this bound.
	MaxWorkers  = coalesce.LimitWorkers
	MaxKeys     = 1 << 30
	MaxDuration = time.Hour
	MaxTask     = time.Minute
	MaxZipf     = 100
	// MaxInputSize and MaxOutputSize are the library's limits; maxMemory
	// bounds them further together with the number of keys.
	MaxInputSize  = coalesce.LimitInputSize
	MaxOutputSize = coalesce.LimitResultSize
	// MaxCacheBytes is below coalesce.LimitCacheBytes: the library's store
	// takes memory for its index in proportion to the budget when it is
	// made (about 1.4 GB for 1 TiB), which a simulation that caches at most
	// keys × output bytes has no use for.
	MaxCacheBytes = 64 << 30
)

// maxRequests bounds the stream so that its per-request records fit in
// memory comfortably.
const maxRequests = 20_000_000

// maxMemory bounds memoryEstimate: what the simulator may hold for inputs
// and results on a laptop shared with other work.
const maxMemory = 2 << 30

// MaxMemoryString is maxMemory for the help text.
var MaxMemoryString = bytesString(maxMemory)

// memoryEstimate is the bytes held for inputs and results when the stream
// has about requests requests: every distinct key's input and result (the
// result twice: the stream's reference copy and the cache's), and a fresh
// result for each computation running at once.
func (c Config) memoryEstimate(requests float64) (need int64, distinct int) {
	distinct = int(math.Min(float64(c.Keys), math.Ceil(requests)))
	if c.TraceKeys != nil {
		// A trace repeats keys far more than the Zipf draw over a few
		// keys does, so its distinct keys are counted, not bounded.
		seen := make(map[uint64]struct{})
		for _, k := range c.TraceKeys[:min(len(c.TraceKeys), int(math.Ceil(requests)))] {
			seen[k] = struct{}{}
		}
		distinct = len(seen)
	}
	running := float64(min(c.Workers, c.InFlight))
	n := float64(distinct)*float64(c.InputMax) + (2*float64(distinct)+running)*float64(c.OutputSize)
	return int64(math.Min(n, math.MaxInt64/2)), distinct
}

// Run generates the stream described by cfg and replays it against each
// design in turn. When ctx is done it stops early, returning the results of
// the designs that finished and an *InterruptedError.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := checkDesigns(cfg); err != nil {
		return nil, err
	}
	w, err := newWorkload(cfg)
	if err != nil {
		return nil, err
	}
	if len(w.reqs) == 0 {
		return nil, fmt.Errorf("the stream has no requests (%g/s over %v); raise --duration or --rate", cfg.Rate, cfg.Duration)
	}
	rep := &Report{Config: cfg, Stream: w.summary()}
	for _, name := range cfg.Designs {
		spec, _ := lookupDesign(name)
		res, err := replay(ctx, cfg, w, spec)
		if err := ctx.Err(); err != nil {
			// A design cut short served part of the stream: its figures
			// would not compare with the others', so it is left out.
			return rep, &InterruptedError{Design: name, Finished: len(rep.Results), Err: err}
		}
		if err != nil {
			return rep, fmt.Errorf("design %s: %w", name, err)
		}
		rep.Results = append(rep.Results, res)
	}
	return rep, nil
}

// InterruptedError is Run's error when its context ended during a design.
type InterruptedError struct {
	Design   string // the design cut short, whose results are left out
	Finished int    // designs that finished, whose results are in the report
	Err      error  // the context's error
}

func (e *InterruptedError) Error() string {
	if e.Finished == 0 {
		return fmt.Sprintf("interrupted during design %s, before any design finished", e.Design)
	}
	return fmt.Sprintf("interrupted during design %s, after %d designs finished", e.Design, e.Finished)
}

func (e *InterruptedError) Unwrap() error { return e.Err }
