package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Limits of ProcessOptions and of what a worker may announce.
const (
	// LimitWorkers bounds ProcessOptions.Workers: each is a process.
	LimitWorkers = 256
	// LimitFrameSize bounds ProcessOptions.MaxFrameSize (1 GiB).
	LimitFrameSize = 1 << 30
	// MaxWorkerConcurrency caps the requests one worker is sent at once,
	// whatever its hello frame announces.
	MaxWorkerConcurrency = 1024
)

const (
	defaultMaxFrameSize = 4 << 20
	defaultStartTimeout = 10 * time.Second
	defaultCancelGrace  = 5 * time.Second

	// A worker that dies before answering anything is restarted after a
	// delay that doubles from restartMin to restartMax, so a broken command
	// costs a few forks a minute, not a fork loop.
	restartMin = 100 * time.Millisecond
	restartMax = 10 * time.Second
)

// ProcessOptions configures a Process. The zero value of every field but
// Command is a documented default.
type ProcessOptions struct {
	// Command is the worker's command line: the program and its arguments,
	// run without a shell (exec.LookPath finds a bare program name).
	// Required.
	Command []string

	// Workers is the number of worker processes. Zero means
	// runtime.GOMAXPROCS(0). Each takes as many requests at once as its
	// hello frame announces.
	Workers int

	// Env lists KEY=VALUE entries added to the daemon's environment for the
	// workers; a key already set is overridden. The pool also sets
	// COALESCE_WORKER_PROTOCOL (the protocol version) and
	// COALESCE_MAX_FRAME_SIZE (MaxFrameSize).
	Env []string

	// Dir is the workers' working directory. Empty means the daemon's.
	Dir string

	// MaxFrameSize bounds the payload of every frame, both ways: a longer
	// input fails with ErrInputTooLarge, and a worker that declares a longer
	// frame is killed (ErrProtocol) before anything is allocated for it.
	// Zero means 4 MiB.
	MaxFrameSize int

	// StartTimeout bounds the wait for a new worker's hello frame. Zero
	// means 10 s.
	StartTimeout time.Duration

	// CancelGrace is how long a worker may take to answer a request that
	// the pool cancelled (its caller left) before it is killed as hung. The
	// request holds its place in the worker until then. Zero means 5 s.
	CancelGrace time.Duration

	// RetryOnCrash retries a call, once, on another worker when its worker
	// died under it (ErrWorkerCrashed, ErrProtocol). Only for functions
	// safe to run twice; a poison input then kills two workers, not one.
	RetryOnCrash bool

	// Logger receives every line the workers write to stderr and the pool's
	// events (starts, exits, kills). Nil means slog.Default().
	Logger *slog.Logger
}

func (o ProcessOptions) withDefaults() (ProcessOptions, error) {
	bad := func(field string, v any, allowed string) error {
		return fmt.Errorf("executor: ProcessOptions.%s is %v; %s", field, v, allowed)
	}
	switch {
	case len(o.Command) == 0 || o.Command[0] == "":
		return o, bad("Command", fmt.Sprintf("%q", o.Command), "give the worker's program and its arguments, e.g. []string{\"python3\", \"worker.py\"}")
	case o.Workers < 0 || o.Workers > LimitWorkers:
		return o, bad("Workers", o.Workers, fmt.Sprintf("it must be from 1 to %d, or zero for GOMAXPROCS", LimitWorkers))
	case o.MaxFrameSize != 0 && (o.MaxFrameSize < helloSize || o.MaxFrameSize > LimitFrameSize):
		return o, bad("MaxFrameSize", o.MaxFrameSize, fmt.Sprintf("it must be from %d to %d bytes, or zero for 4 MiB", helloSize, LimitFrameSize))
	case o.StartTimeout < 0:
		return o, bad("StartTimeout", o.StartTimeout, "it must be positive, or zero for 10 s")
	case o.CancelGrace < 0:
		return o, bad("CancelGrace", o.CancelGrace, "it must be positive, or zero for 5 s")
	}
	for _, kv := range o.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return o, bad("Env", fmt.Sprintf("%q", o.Env), fmt.Sprintf("every entry must be KEY=VALUE, and %q is not", kv))
		}
	}
	if o.Workers == 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.MaxFrameSize == 0 {
		o.MaxFrameSize = defaultMaxFrameSize
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = defaultStartTimeout
	}
	if o.CancelGrace == 0 {
		o.CancelGrace = defaultCancelGrace
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Command = slices.Clone(o.Command)
	o.Env = slices.Clone(o.Env)
	return o, nil
}

// Process is a pool of long-lived worker processes that compute results
// over the framed protocol of docs/WORKER-PROTOCOL.md, each paying its
// start-up once.
//
// It is safe for concurrent use. A call waits for a free place in a worker
// (each takes as many requests at once as it announced), bounded by its
// context. A caller that leaves gets ctx.Err() at once, and the worker is
// sent a cancel frame. When the context's deadline passes while a worker
// computes, the worker's process group is killed (SIGKILL) and the call
// fails with ErrWorkerTimeout. A worker that exits, writes garbage or
// overruns a deadline is replaced; its calls in flight fail with a clear
// error, or are retried once with ProcessOptions.RetryOnCrash. Close kills
// every worker and waits until each is reaped.
type Process struct {
	opts   ProcessOptions
	log    *slog.Logger
	argv   string // the command, quoted, for messages
	nextID atomic.Uint64
	done   chan struct{} // closed by Close
	wg     sync.WaitGroup

	mu       sync.Mutex
	live     []*worker     // started, said hello, not dead
	changed  chan struct{} // closed and replaced when waiters in acquire may proceed
	waiting  int           // callers blocked in acquire
	startErr error         // why the last start failed; nil once one succeeds
	closed   bool
}

// NewProcess starts opts.Workers worker processes and returns once each has
// said hello. If any fails to start, NewProcess stops the others and
// returns an error matching ErrWorkerStart that quotes the worker's last
// stderr line, so a wrong command is reported at once, not on the first
// request.
func NewProcess(opts ProcessOptions) (*Process, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Process{
		opts:    opts,
		log:     opts.Logger,
		argv:    fmt.Sprintf("%q", opts.Command),
		done:    make(chan struct{}),
		changed: make(chan struct{}),
	}
	first := make(chan error, opts.Workers)
	for range opts.Workers {
		p.wg.Add(1)
		go p.supervise(first)
	}
	for range opts.Workers {
		if e := <-first; e != nil && err == nil {
			err = e
		}
	}
	if err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// Compute sends input to a worker and returns its answer: the result, a
// *WorkerError for an error frame, or the error that ended the call.
func (p *Process) Compute(ctx context.Context, input []byte) ([]byte, error) {
	if len(input) > p.opts.MaxFrameSize {
		return nil, fmt.Errorf("%w: %d bytes, more than the worker protocol's MaxFrameSize (%d)", ErrInputTooLarge, len(input), p.opts.MaxFrameSize)
	}
	var first error
	for {
		// A deadline already past would otherwise kill the worker it was
		// sent to.
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		w, err := p.acquire(ctx)
		if err != nil {
			return nil, err
		}
		val, err := w.do(ctx, p.nextID.Add(1), input)
		if err == errNotSent {
			continue
		}
		if err == nil || first != nil {
			if err != nil {
				err = fmt.Errorf("%w (this was the retry; the first attempt failed with: %v)", err, first)
			}
			return val, err
		}
		if !p.opts.RetryOnCrash || ctx.Err() != nil || !(errors.Is(err, ErrWorkerCrashed) || errors.Is(err, ErrProtocol)) {
			return nil, err
		}
		first = err
		p.log.Info("retrying on another worker", "err", err)
	}
}

// Close kills every worker process, fails the calls in flight with
// ErrClosed, and returns once every process is reaped and every goroutine of
// the pool has returned.
func (p *Process) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return nil
	}
	p.closed = true
	close(p.done)
	live := slices.Clone(p.live)
	p.notifyLocked()
	p.mu.Unlock()
	for _, w := range live {
		w.kill(ErrClosed)
	}
	p.wg.Wait()
	return nil
}

// acquire reserves a place in the least busy live worker, waiting for one
// until ctx ends. While no worker runs because the last start failed, it
// returns that failure instead of waiting.
func (p *Process) acquire(ctx context.Context) (*worker, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("executor: no worker was free before the context ended: %w", err)
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrClosed
		}
		var best *worker
		for _, w := range p.live {
			if w.inflight < w.concurrency && (best == nil || w.inflight < best.inflight) {
				best = w
			}
		}
		if best != nil {
			best.inflight++
			p.mu.Unlock()
			return best, nil
		}
		if len(p.live) == 0 && p.startErr != nil {
			err := p.startErr
			p.mu.Unlock()
			return nil, err
		}
		ch := p.changed
		p.waiting++
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		p.mu.Lock()
		p.waiting--
		p.mu.Unlock()
	}
}

// release returns a place taken by acquire.
func (p *Process) release(w *worker) {
	p.mu.Lock()
	w.inflight--
	p.notifyLocked()
	p.mu.Unlock()
}

// notifyLocked wakes every caller waiting in acquire. p.mu is held.
func (p *Process) notifyLocked() {
	if p.waiting > 0 || p.closed {
		close(p.changed)
		p.changed = make(chan struct{})
	}
}

// add makes a worker that said hello available, unless it died meanwhile
// or the pool is closed (then it reports false and the caller kills it).
func (p *Process) add(w *worker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	if !w.isDead() {
		p.live = append(p.live, w)
	}
	p.startErr = nil
	p.notifyLocked()
	return true
}

// remove takes a dead worker out of the live list.
func (p *Process) remove(w *worker) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i := slices.Index(p.live, w); i >= 0 {
		p.live = slices.Delete(p.live, i, i+1)
		p.notifyLocked()
	}
}

// startFailed records why a start failed, for the callers of acquire.
func (p *Process) startFailed(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.startErr = err
	p.notifyLocked()
}

// supervise keeps one worker process running until Close: it starts one,
// waits for it to die, and starts the next, after a growing delay while
// workers die without having answered anything.
func (p *Process) supervise(first chan<- error) {
	defer p.wg.Done()
	failures := 0
	for {
		w, err := p.start()
		if first != nil {
			first <- err
			first = nil
		}
		if errors.Is(err, ErrClosed) {
			return
		}
		if err != nil {
			failures++
			p.startFailed(err)
			delay := restartDelay(failures)
			p.log.Warn("worker failed to start", "err", err, "retry_in", delay)
			if !p.sleep(delay) {
				return
			}
			continue
		}
		if !p.add(w) {
			w.kill(ErrClosed)
			<-w.exited
			return
		}
		p.log.Info("worker started", "pid", w.pid, "concurrency", w.concurrency)
		<-w.exited
		select {
		case <-p.done:
			return
		default:
		}
		if w.hasAnswered() {
			failures = 0
		} else {
			failures++
		}
		delay := restartDelay(failures)
		p.log.Warn("worker exited; starting a replacement", "pid", w.pid, "err", w.deathErr, "restart_in", delay)
		if !p.sleep(delay) {
			return
		}
	}
}

// restartDelay is the wait before the next start after n failures in a row.
func restartDelay(n int) time.Duration {
	if n <= 0 {
		return 0
	}
	d := restartMin
	for i := 1; i < n && d < restartMax; i++ {
		d *= 2
	}
	return min(d, restartMax)
}

// sleep waits d, or less if the pool is closed; it reports whether the
// pool is still open.
func (p *Process) sleep(d time.Duration) bool {
	if d <= 0 {
		select {
		case <-p.done:
			return false
		default:
			return true
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.done:
		return false
	}
}

// env is the workers' environment.
func (p *Process) env() []string {
	return append(append(slices.Clip(os.Environ()), p.opts.Env...),
		"COALESCE_WORKER_PROTOCOL="+strconv.Itoa(protocolVersion),
		"COALESCE_MAX_FRAME_SIZE="+strconv.Itoa(p.opts.MaxFrameSize))
}
