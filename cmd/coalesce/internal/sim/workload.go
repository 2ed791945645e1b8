package sim

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// request is one entry of the stream: agent sends the input of key index
// idx at offset at from the start of the run.
type request struct {
	at    time.Duration
	agent int32
	idx   int32
}

// workload is the pre-generated stream and everything the simulated task
// needs to know about each key. It is read-only once built, so every design
// replays the same thing.
type workload struct {
	cfg      Config
	reqs     []request
	perAgent [][]int32 // indices into reqs, in time order
	keys     []uint64  // key index -> key
	inputs   [][]byte  // key index -> input
	outputs  [][]byte  // key index -> the one correct result
	durs     []time.Duration

	// Hooks for tests that must order events without timing: beforeSend
	// runs in the agent just before it sends request i, onCompute at the
	// start of every computation of key index idx.
	beforeSend func(i int)
	onCompute  func(idx int)
}

// minInput is the simulator's header in every input: the key index and the
// key, so that the task can find its duration and result without a map.
const minInput = 16

func newWorkload(cfg Config) (*workload, error) {
	sample, err := durationSampler(cfg.TaskDist, cfg.TaskMin, cfg.TaskMax)
	if err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	var zipf *rand.Zipf
	if cfg.TraceKeys == nil {
		zipf = rand.NewZipf(r, cfg.ZipfS, 1, uint64(cfg.Keys-1))
	}
	w := &workload{cfg: cfg, perAgent: make([][]int32, cfg.Agents)}
	index := make(map[uint64]int32)
	var t float64 // seconds
	for i := 0; ; i++ {
		t += r.ExpFloat64() / cfg.Rate
		at := time.Duration(t * float64(time.Second))
		if at >= cfg.Duration {
			break
		}
		var key uint64
		if zipf != nil {
			key = zipf.Uint64()
		} else {
			key = cfg.TraceKeys[i%len(cfg.TraceKeys)]
		}
		idx, ok := index[key]
		if !ok {
			idx = int32(len(w.keys))
			index[key] = idx
			w.addKey(key, sample)
		}
		agent := int32(r.IntN(cfg.Agents))
		w.perAgent[agent] = append(w.perAgent[agent], int32(len(w.reqs)))
		w.reqs = append(w.reqs, request{at: at, agent: agent, idx: idx})
	}
	return w, nil
}

// addKey derives a key's input, duration and result from the seed and the
// key alone, so that a key costs the same whatever the stream around it.
func (w *workload) addKey(key uint64, sample func(*rand.Rand) time.Duration) {
	r := rand.New(rand.NewPCG(w.cfg.Seed, key))
	size := w.cfg.InputMin + r.IntN(w.cfg.InputMax-w.cfg.InputMin+1)
	in := make([]byte, size)
	binary.LittleEndian.PutUint64(in[0:], uint64(len(w.keys)))
	binary.LittleEndian.PutUint64(in[8:], key)
	for i := minInput; i < size; i++ {
		in[i] = byte(r.Uint32())
	}
	h := fnv.New64a()
	h.Write(in)
	or := rand.New(rand.NewPCG(h.Sum64(), 0x07))
	out := make([]byte, w.cfg.OutputSize)
	for i := range out {
		out[i] = byte(or.Uint32())
	}
	w.keys = append(w.keys, key)
	w.inputs = append(w.inputs, in)
	w.outputs = append(w.outputs, out)
	w.durs = append(w.durs, sample(r))
}

// durationSampler returns the sampler of the named distribution of task
// durations between lo and hi.
func durationSampler(dist string, lo, hi time.Duration) (func(*rand.Rand) time.Duration, error) {
	mean := (lo + hi) / 2
	switch dist {
	case "uniform":
		return func(r *rand.Rand) time.Duration { return lo + time.Duration(r.Int64N(int64(hi-lo)+1)) }, nil
	case "fixed":
		return func(*rand.Rand) time.Duration { return mean }, nil
	case "normal":
		sd := float64(hi-lo) / 6
		return func(r *rand.Rand) time.Duration {
			d := time.Duration(float64(mean) + r.NormFloat64()*sd)
			return min(max(d, lo), hi)
		}, nil
	case "exp":
		return func(r *rand.Rand) time.Duration {
			return lo + time.Duration(r.ExpFloat64()*float64(hi-lo)/2)
		}, nil
	}
	return nil, fmt.Errorf("task distribution %q is unknown; use uniform, fixed, normal or exp", dist)
}

// keyIndex returns the key index an input carries, checking that the input
// is one the workload made.
func (w *workload) keyIndex(input []byte) (int, error) {
	if len(input) < minInput {
		return 0, fmt.Errorf("input of %d bytes is shorter than the simulator's %d-byte header", len(input), minInput)
	}
	idx := binary.LittleEndian.Uint64(input)
	if idx >= uint64(len(w.keys)) || binary.LittleEndian.Uint64(input[8:]) != w.keys[idx] {
		return 0, fmt.Errorf("input does not belong to the stream (key index %d)", idx)
	}
	return int(idx), nil
}

// burnSink keeps the CPU burner's work observable so the compiler cannot
// drop it.
var burnSink atomic.Uint64

// compute is the simulated task: it spends the key's duration sleeping or
// burning CPU and returns a fresh copy of the key's result.
func (w *workload) compute(ctx context.Context, idx int) ([]byte, error) {
	if w.onCompute != nil {
		w.onCompute(idx)
	}
	d := w.durs[idx]
	switch w.cfg.Task {
	case TaskCPU:
		// Burning until a wall-clock deadline (rather than a calibrated
		// amount of work) keeps a task's cost the same whatever the
		// machine; with workers = cores it is also its CPU time.
		deadline := time.Now().Add(d)
		x := uint64(idx) + 1
		for i := 0; ; i++ {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			if i%1024 == 0 && (!time.Now().Before(deadline) || ctx.Err() != nil) {
				break
			}
		}
		burnSink.Add(x)
	default:
		if d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]byte, len(w.outputs[idx]))
	copy(out, w.outputs[idx])
	return out, nil
}

// StreamSummary describes the generated stream.
type StreamSummary struct {
	Requests     int     `json:"requests"`
	DistinctKeys int     `json:"distinct_keys"`
	Rate         float64 `json:"rate_per_s"`
	// RepeatShare is the share of requests whose key was also requested
	// within the previous mean task duration: a request that, under an
	// ideal design, would find the same computation still in flight.
	RepeatShare float64 `json:"repeat_within_task_share"`
	// MeanTask is the mean task duration over the distinct keys.
	MeanTask time.Duration `json:"mean_task_ns"`
}

func (w *workload) summary() StreamSummary {
	s := StreamSummary{Requests: len(w.reqs), DistinctKeys: len(w.keys), Rate: w.cfg.Rate}
	var sum time.Duration
	for _, d := range w.durs {
		sum += d
	}
	if len(w.durs) > 0 {
		s.MeanTask = sum / time.Duration(len(w.durs))
	}
	window := (w.cfg.TaskMin + w.cfg.TaskMax) / 2
	last := make([]time.Duration, len(w.keys))
	for i := range last {
		last[i] = math.MinInt64 / 2
	}
	repeats := 0
	for _, q := range w.reqs {
		if q.at-last[q.idx] < window {
			repeats++
		}
		last[q.idx] = q.at
	}
	if len(w.reqs) > 0 {
		s.RepeatShare = float64(repeats) / float64(len(w.reqs))
	}
	return s
}
