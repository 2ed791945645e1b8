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
	"runtime"
	"time"
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
	// Default: all of them.
	Designs []string
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
		c.Designs = DesignNames()
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
// range, saying what is allowed.
func (c Config) Validate() error {
	switch {
	case c.Agents < 1:
		return fmt.Errorf("agents is %d; it must be at least 1", c.Agents)
	case c.InFlight < c.Agents:
		return fmt.Errorf("in-flight is %d; it must be at least the number of agents (%d), one slot each", c.InFlight, c.Agents)
	case c.Rate <= 0:
		return fmt.Errorf("rate is %g requests/s; it must be > 0", c.Rate)
	case c.Duration <= 0:
		return fmt.Errorf("duration is %v; it must be > 0", c.Duration)
	case c.Rate*c.Duration.Seconds() > maxRequests:
		return fmt.Errorf("rate %g/s for %v makes %.0f requests; at most %d are allowed, lower the rate or the duration",
			c.Rate, c.Duration, c.Rate*c.Duration.Seconds(), maxRequests)
	case c.Workers < 1:
		return fmt.Errorf("workers is %d; it must be at least 1", c.Workers)
	case c.TraceKeys == nil && c.Keys < 1:
		return fmt.Errorf("keys is %d; it must be at least 1", c.Keys)
	case c.TraceKeys != nil && len(c.TraceKeys) == 0:
		return errors.New("the trace has no keys; give a trace with at least one request")
	case !(c.ZipfS > 1):
		return fmt.Errorf("zipf exponent is %g; it must be > 1", c.ZipfS)
	case c.Task != TaskSleep && c.Task != TaskCPU:
		return fmt.Errorf("task is %q; it must be %q or %q", c.Task, TaskSleep, TaskCPU)
	case c.TaskMin < 0 || c.TaskMax < c.TaskMin:
		return fmt.Errorf("task durations %v..%v: the minimum must be >= 0 and <= the maximum", c.TaskMin, c.TaskMax)
	case c.InputMin < minInput || c.InputMax < c.InputMin:
		return fmt.Errorf("input sizes %d..%d: the minimum must be >= %d bytes (the simulator's header) and <= the maximum", c.InputMin, c.InputMax, minInput)
	case c.OutputSize < 1:
		return fmt.Errorf("output size is %d; it must be at least 1 byte", c.OutputSize)
	case c.CacheBytes < 1:
		return fmt.Errorf("cache bytes is %d; it must be > 0", c.CacheBytes)
	}
	if _, err := durationSampler(c.TaskDist, c.TaskMin, c.TaskMax); err != nil {
		return err
	}
	for _, name := range c.Designs {
		if _, ok := lookupDesign(name); !ok {
			return fmt.Errorf("unknown design %q; the designs are %v", name, DesignNames())
		}
	}
	return nil
}

// maxRequests bounds the stream so that its per-request records fit in
// memory comfortably.
const maxRequests = 20_000_000

// Run generates the stream described by cfg and replays it against each
// design in turn. It stops early, returning ctx's error with the results
// completed so far, when ctx is done.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w, err := newWorkload(cfg)
	if err != nil {
		return nil, err
	}
	rep := &Report{Config: cfg, Stream: w.summary()}
	for _, name := range cfg.Designs {
		spec, _ := lookupDesign(name)
		res, err := replay(ctx, cfg, w, spec)
		if err != nil {
			return rep, fmt.Errorf("design %s: %w", name, err)
		}
		rep.Results = append(rep.Results, res)
		if err := ctx.Err(); err != nil {
			return rep, err
		}
	}
	return rep, nil
}
