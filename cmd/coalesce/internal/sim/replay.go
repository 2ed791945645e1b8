package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coalesce-go/coalesce/cluster"
)

// outcome is what happened to one request of the stream.
type outcome struct {
	latency time.Duration
	lag     time.Duration // from the request's due time to its sending
	kind    Kind
	sent    bool
	failed  bool
}

// replay runs one design on the workload: each agent is a goroutine that
// sends its requests at their scheduled times, but never has more than its
// share of InFlight outstanding; a request due while the agent's slots are
// full waits for one, as a client that waits for answers does. After
// Duration the agents send nothing more, and the run ends when the
// outstanding requests have returned.
func replay(ctx context.Context, cfg Config, w *workload, spec designSpec) (Result, error) {
	computed := make([]atomic.Int32, len(w.keys))
	var computations atomic.Int64
	task := func(ctx context.Context, input []byte) ([]byte, error) {
		idx, err := w.keyIndex(input)
		if err != nil {
			return nil, err
		}
		computations.Add(1)
		computed[idx].Add(1)
		return w.compute(ctx, idx)
	}
	d, err := spec.build(paramsOf(cfg, task))
	if err != nil {
		return Result{}, err
	}

	// An agent's handle on the design is made before the clock starts, as
	// a program opens its client before it has requests to send.
	gets := make([]getFunc, len(w.perAgent))
	for a := range gets {
		gets[a] = d.get
		if ad, ok := d.(agentDesign); ok {
			if gets[a], err = ad.forAgent(a, agentSlots(cfg, a)); err != nil {
				d.close()
				return Result{}, err
			}
		}
	}

	outcomes := make([]outcome, len(w.reqs))
	var done atomic.Int64
	var firstErr atomic.Pointer[error] // the first failure, for the error message
	// Leave the previous design's garbage out of this one's CPU time.
	runtime.GC()
	cpu0 := processCPU()
	start := time.Now()

	stopProgress := watchProgress(cfg.Progress, spec.name, len(w.reqs), &done)
	var agents, inflight sync.WaitGroup
	for a, mine := range w.perAgent {
		slots, get := agentSlots(cfg, a), gets[a]
		agents.Go(func() {
			sem := make(chan struct{}, slots)
			for _, i := range mine {
				q := w.reqs[i]
				if wait := time.Until(start.Add(q.at)); wait > 0 {
					if !sleep(ctx, wait) {
						return
					}
				}
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return
				}
				if time.Since(start) >= cfg.Duration {
					<-sem
					return // behind schedule at the end of the run: the rest is not sent
				}
				if w.beforeSend != nil {
					w.beforeSend(int(i))
				}
				inflight.Go(func() {
					defer func() { <-sem }()
					in := w.inputs[q.idx]
					t0 := time.Now()
					v, kind, err := get(ctx, in)
					lat := time.Since(t0)
					if err == nil && !bytes.Equal(v, w.outputs[q.idx]) {
						err = fmt.Errorf("a wrong result for key %d (%d bytes)", w.keys[q.idx], len(v))
					}
					if err != nil {
						firstErr.CompareAndSwap(nil, &err)
					}
					outcomes[i] = outcome{latency: lat, lag: max(t0.Sub(start)-q.at, 0), kind: kind, sent: true, failed: err != nil}
					done.Add(1)
				})
			}
		})
	}
	agents.Wait()
	inflight.Wait()
	wall := time.Since(start)
	cpu := processCPU() - cpu0
	stopProgress()
	d.close()

	res := summarize(spec, outcomes, wall, cpu)
	res.Computations = computations.Load()
	for i := range computed {
		if computed[i].Load() > 0 {
			res.DistinctComputed++
		}
	}
	res.Duplicates = res.Computations - int64(res.DistinctComputed)
	sent := make([]bool, len(w.keys))
	for i, o := range outcomes {
		if o.sent && !sent[w.reqs[i].idx] {
			sent[w.reqs[i].idx] = true
			res.DistinctSent++
		}
	}
	if res.DistinctSent > 0 {
		res.ComputationsPerInput = float64(res.Computations) / float64(res.DistinctSent)
	}
	if a, ok := d.(annotator); ok {
		a.annotate(&res)
	}
	if ctx.Err() == nil && res.Errors > 0 {
		return res, fmt.Errorf("%d requests failed or returned a wrong result; the first: %w", res.Errors, *firstErr.Load())
	}
	return res, nil
}

// annotator is a design with figures of its own for its Result, added
// after it is closed.
type annotator interface {
	annotate(*Result)
}

// agentSlots is agent a's share of InFlight: the remainder goes to the
// first agents.
func agentSlots(cfg Config, a int) int {
	slots := cfg.InFlight / cfg.Agents
	if a < cfg.InFlight%cfg.Agents {
		slots++
	}
	return slots
}

func paramsOf(cfg Config, task taskFunc) designParams {
	return designParams{
		task:         task,
		workers:      cfg.Workers,
		cacheEntries: max(int(cfg.CacheBytes/int64(cfg.OutputSize+entryOverhead)), 1),
		cacheBytes:   cfg.CacheBytes,
		maxInput:     cfg.InputMax,
		output:       cfg.OutputSize,
		redis:        cfg.Redis,
		nodes:        cfg.Nodes,
	}
}

// checkDesigns builds and closes each design once, so that a configuration
// one of them rejects (a result too large for the library's cache) fails
// before the first run rather than after the runs of the designs before it.
func checkDesigns(cfg Config) error {
	noTask := func(context.Context, []byte) ([]byte, error) { return nil, nil }
	for _, name := range cfg.Designs {
		spec, _ := lookupDesign(name)
		d, err := spec.build(paramsOf(cfg, noTask))
		if errors.Is(err, cluster.ErrUnavailable) || errors.Is(err, cluster.ErrBadOptions) || errors.Is(err, errNoRedis) {
			return fmt.Errorf("design %s: %w", name, err) // Redis, not the sizes
		}
		if err != nil {
			return fmt.Errorf("--output %d with --cache-mib %d: design %s rejects them (%w): raise --cache-mib or lower --output",
				cfg.OutputSize, cfg.CacheBytes>>20, name, err)
		}
		d.close()
	}
	return nil
}

// sleep waits for d or until ctx is done, reporting whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// watchProgress reports done to p every tenth of a second until the
// returned stop is called; the polling keeps the bar out of the requests'
// path.
func watchProgress(p Progress, name string, total int, done *atomic.Int64) (stop func()) {
	if p == nil {
		return func() {}
	}
	p.Start(name, total)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.Set(int(done.Load()))
			case <-quit:
				return
			}
		}
	})
	return func() {
		close(quit)
		wg.Wait()
		p.Set(int(done.Load()))
		p.End()
	}
}
