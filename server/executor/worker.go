package executor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// worker is one worker process of a Process and the calls in flight on it.
//
// Three goroutines serve it: read (frames from stdout, then reaping the
// process), write (frames to stdin, so that no caller ever blocks on a full
// pipe) and os/exec's copy of stderr into the log. Whoever removes a call
// from calls sends its one answer; fail removes them all at once.
type worker struct {
	p      *Process
	cmd    *exec.Cmd
	pid    int
	stdin  *os.File // written only by write
	stdout *os.File // read only by read
	stderr *stderrLog

	// concurrency is set from the hello frame before ready is closed.
	concurrency int
	// inflight counts the places taken in this worker; guarded by p.mu.
	inflight int

	ready      chan struct{} // closed when the hello was accepted
	writerDone chan struct{} // closed when write has returned
	exited     chan struct{} // closed when the process is reaped and every call answered
	wake       chan struct{} // one token: frames are queued, or the worker died

	mu       sync.Mutex
	calls    map[uint64]*call
	out      [][]byte // encoded frames for write
	dead     bool
	deathErr error // what every call in flight was answered with
	answered bool  // the worker answered at least one request: it works
	reaped   bool  // its process id may be reused; never signal it again
}

// errNotSent is returned by do for a worker that died before the request
// could be sent to it.
var errNotSent = errors.New("executor: the worker died before the request was sent")

// call is one request in flight on a worker.
type call struct {
	done      chan answer // buffered: the one answer never blocks its sender
	cancelled bool        // its caller left; a cancel frame was sent
	grace     *time.Timer // kills the worker if a cancelled call is not answered
}

type answer struct {
	val []byte
	err error
}

// start starts one worker process and waits for its hello frame, bounded
// by StartTimeout and Close. Every failure matches ErrWorkerStart (or is
// ErrClosed).
func (p *Process) start() (*worker, error) {
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrWorkerStart, p.argv, err)
	}
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		stdinR.Close()
		stdinW.Close()
		return nil, fmt.Errorf("%w: %s: %w", ErrWorkerStart, p.argv, err)
	}
	w := &worker{
		p:          p,
		stdin:      stdinW,
		stdout:     stdoutR,
		stderr:     &stderrLog{log: p.log},
		ready:      make(chan struct{}),
		writerDone: make(chan struct{}),
		exited:     make(chan struct{}),
		wake:       make(chan struct{}, 1),
		calls:      make(map[uint64]*call),
	}
	cmd := exec.Command(p.opts.Command[0], p.opts.Command[1:]...)
	cmd.Env = p.env()
	cmd.Dir = p.opts.Dir
	cmd.Stdin = stdinR
	cmd.Stdout = stdoutW
	cmd.Stderr = w.stderr
	// A grandchild that escaped the process group may hold stderr open;
	// Wait stops copying it after this long instead of hanging.
	cmd.WaitDelay = time.Second
	setProcessGroup(cmd)
	w.cmd = cmd
	err = cmd.Start()
	stdinR.Close()
	stdoutW.Close()
	if err != nil {
		stdinW.Close()
		stdoutR.Close()
		return nil, fmt.Errorf("%w: %s: %w", ErrWorkerStart, p.argv, err)
	}
	w.pid = cmd.Process.Pid
	w.stderr.setPID(w.pid)
	go w.write()
	go w.read()

	timer := time.NewTimer(p.opts.StartTimeout)
	defer timer.Stop()
	select {
	case <-w.ready:
		return w, nil
	case <-w.exited:
		return nil, w.deathErr
	case <-timer.C:
		w.kill(fmt.Errorf("%w: %s sent no hello frame within %v (StartTimeout)", ErrWorkerStart, w.name(), p.opts.StartTimeout))
		<-w.exited
		return nil, fmt.Errorf("%w: %s sent no hello frame within %v (StartTimeout)%s", ErrWorkerStart, w.name(), p.opts.StartTimeout, w.stderrNote())
	case <-p.done:
		w.kill(ErrClosed)
		<-w.exited
		return nil, ErrClosed
	}
}

// do sends one request to the worker, in which acquire took a place, and
// waits for its answer or the end of ctx.
func (w *worker) do(ctx context.Context, id uint64, input []byte) ([]byte, error) {
	c := &call{done: make(chan answer, 1)}
	req := appendFrame(make([]byte, 0, frameHeaderSize+len(input)), frameRequest, id, input)
	w.mu.Lock()
	if w.dead {
		// It died between acquire and now: nothing was sent, so the call
		// may go to another worker whatever RetryOnCrash says.
		w.mu.Unlock()
		w.p.remove(w)
		return nil, errNotSent
	}
	w.calls[id] = c
	w.queueLocked(req)
	w.mu.Unlock()

	select {
	case a := <-c.done:
		return a.val, a.err
	case <-ctx.Done():
	}
	w.mu.Lock()
	if _, ok := w.calls[id]; !ok {
		// Answered (or failed) while ctx ended: the answer is in c.done.
		w.mu.Unlock()
		a := <-c.done
		return a.val, a.err
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		w.mu.Unlock()
		w.kill(fmt.Errorf("%w: %s was killed because request %d, which it was computing, ran past its deadline", ErrWorkerCrashed, w.name(), id))
		return nil, fmt.Errorf("%w: %s was still computing request %d at its deadline; the worker was killed and is replaced: %w", ErrWorkerTimeout, w.name(), id, context.DeadlineExceeded)
	}
	// The caller left: tell the worker, which may stop early or ignore it.
	// The request keeps its place until the worker answers, so a worker
	// that ignores cancels is never sent more than it announced.
	c.cancelled = true
	c.grace = time.AfterFunc(w.p.opts.CancelGrace, func() {
		w.kill(fmt.Errorf("%w: %s did not answer cancelled request %d within %v (CancelGrace); killed as hung", ErrWorkerCrashed, w.name(), id, w.p.opts.CancelGrace))
	})
	w.queueLocked(appendFrame(nil, frameCancel, id, nil))
	w.mu.Unlock()
	return nil, ctx.Err()
}

// queueLocked hands a frame to write. w.mu is held.
func (w *worker) queueLocked(f []byte) {
	w.out = append(w.out, f)
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// write copies queued frames to the worker's stdin until the worker dies.
// A failed write means the worker is gone or not reading: its process is
// killed, and read reports why.
func (w *worker) write() {
	defer close(w.writerDone)
	defer w.stdin.Close()
	var buf []byte
	for range w.wake {
		w.mu.Lock()
		frames, dead := w.out, w.dead
		w.out = nil
		w.mu.Unlock()
		if dead {
			return
		}
		buf = buf[:0]
		for _, f := range frames {
			buf = append(buf, f...)
		}
		if _, err := w.stdin.Write(buf); err != nil {
			w.killProcess()
			return
		}
		if cap(buf) > 1<<20 {
			buf = nil // do not keep one huge input's buffer for the worker's life
		}
	}
}

// read reads the worker's frames until its stdout ends, then reaps the
// process and answers every call still in flight with the reason.
func (w *worker) read() {
	helloOK, protoErr := w.serve(bufio.NewReaderSize(w.stdout, 64<<10))
	if helloOK && protoErr != nil {
		w.kill(fmt.Errorf("%w: %s: %v; the worker was killed and is replaced", ErrProtocol, w.name(), protoErr))
	} else {
		// Also when the worker exited by itself: whatever it started goes
		// with it.
		w.killProcess()
	}
	waitErr := w.cmd.Wait()
	w.stderr.flush()
	w.mu.Lock()
	w.reaped = true
	w.mu.Unlock()
	w.stdout.Close()

	var reason error
	switch {
	case !helloOK && protoErr != nil:
		reason = fmt.Errorf("%w: %s: %v (%s)%s", ErrWorkerStart, w.name(), protoErr, exitStatus(waitErr), w.stderrNote())
	case !helloOK:
		reason = fmt.Errorf("%w: %s exited before sending its hello frame: %s%s", ErrWorkerStart, w.name(), exitStatus(waitErr), w.stderrNote())
	default:
		reason = fmt.Errorf("%w: %s exited: %s%s", ErrWorkerCrashed, w.name(), exitStatus(waitErr), w.stderrNote())
	}
	w.fail(reason)
	<-w.writerDone
	close(w.exited)
}

// serve reads the hello frame, then answers, until reading fails. It
// returns whether the hello was accepted and, unless the stream simply
// ended (the worker exited or was killed), what was wrong with it.
func (w *worker) serve(r *bufio.Reader) (helloOK bool, err error) {
	f, err := readFrame(r, w.p.opts.MaxFrameSize)
	if err != nil {
		return false, streamError(err)
	}
	c, err := parseHello(f)
	if err != nil {
		return false, err
	}
	w.concurrency = c
	close(w.ready)
	for {
		f, err := readFrame(r, w.p.opts.MaxFrameSize)
		if err != nil {
			return true, streamError(err)
		}
		if err := w.answer(f); err != nil {
			return true, err
		}
	}
}

// streamError is nil for the ends of stream that a dead or killed worker
// causes (its crash is then reported with its exit status), and err for
// bytes that are not frames.
func streamError(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF || errors.Is(err, os.ErrClosed) {
		return nil
	}
	return err
}

// answer delivers a result, error or cancel frame to its call.
func (w *worker) answer(f frame) error {
	if f.typ != frameResult && f.typ != frameError && f.typ != frameCancel {
		return fmt.Errorf("a frame of type %d (only result, error and cancel frames may follow the hello)", f.typ)
	}
	w.mu.Lock()
	c, ok := w.calls[f.id]
	if !ok {
		w.mu.Unlock()
		return fmt.Errorf("an answer (frame type %d) for request id %d, which is not in flight on it", f.typ, f.id)
	}
	if f.typ == frameCancel && !c.cancelled {
		w.mu.Unlock()
		return fmt.Errorf("a cancel frame for request id %d, which was not cancelled (answer with an error frame instead)", f.id)
	}
	delete(w.calls, f.id)
	w.answered = true
	if c.grace != nil {
		c.grace.Stop()
	}
	w.mu.Unlock()

	var a answer
	switch f.typ {
	case frameResult:
		a.val = f.payload
	case frameError:
		a.err = &WorkerError{Message: strings.ToValidUTF8(string(f.payload), "\uFFFD")}
	case frameCancel:
		a.err = context.Canceled
	}
	// The place is free before the caller hears back, so its next call
	// finds it free.
	w.p.release(w)
	c.done <- a
	return nil
}

// fail marks the worker dead for reason and answers every call in flight
// with it. Only the first reason counts.
func (w *worker) fail(reason error) bool {
	w.mu.Lock()
	if w.dead {
		w.mu.Unlock()
		return false
	}
	w.dead = true
	w.deathErr = reason
	calls := w.calls
	w.calls = nil
	w.out = nil
	for _, c := range calls {
		if c.grace != nil {
			c.grace.Stop()
		}
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
	w.mu.Unlock()
	// Out of the pool before anyone hears of its death, so that a retry
	// cannot pick it again.
	w.p.remove(w)
	for _, c := range calls {
		c.done <- answer{err: reason}
	}
	return true
}

// kill fails the worker's calls with reason and kills its process group.
func (w *worker) kill(reason error) {
	if w.fail(reason) && !errors.Is(reason, ErrClosed) {
		w.p.log.Warn("killing worker", "pid", w.pid, "reason", reason)
	}
	w.killProcess()
	// Unblock read and write even if something outside the process group
	// holds the other ends of the pipes.
	w.stdout.Close()
	w.stdin.Close()
}

// killProcess sends SIGKILL to the worker's process group, unless it was
// reaped already (its id may then belong to another process).
func (w *worker) killProcess() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.reaped {
		killProcessGroup(w.cmd)
	}
}

func (w *worker) isDead() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dead
}

func (w *worker) hasAnswered() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.answered
}

func (w *worker) name() string {
	return fmt.Sprintf("worker %s (pid %d)", w.p.argv, w.pid)
}

// stderrNote quotes the worker's last stderr line for an error message.
func (w *worker) stderrNote() string {
	if l := w.stderr.lastLine(); l != "" {
		return fmt.Sprintf("; its last line on stderr: %q", l)
	}
	return "; it wrote nothing to stderr"
}

// exitStatus describes how a process ended, from cmd.Wait's error.
func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.String()
	}
	return err.Error()
}
