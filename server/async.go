package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/coalesce-go/coalesce"
)

// asyncTable keeps respond-async computations alive for clients that will
// poll: each holds its Future (so the computation is not abandoned when the
// request that started it returns) until it finishes or AsyncTimeout
// passes. A failure is remembered for AsyncTimeout too, so that the poll
// finds the error instead of a 404; a success needs no record, it is in the
// cache. Safe for concurrent use.
type asyncTable struct {
	g       *coalesce.Group
	max     int
	timeout time.Duration
	log     *slog.Logger

	mu       sync.Mutex
	pending  map[coalesce.Key]*coalesce.Future
	failed   map[coalesce.Key]failure
	order    []coalesce.Key // failures, oldest first, for expiry
	closed   bool
	stop     chan struct{}
	routines sync.WaitGroup
}

type failure struct {
	err     error
	expires time.Time
}

func newAsyncTable(g *coalesce.Group, max int, timeout time.Duration, log *slog.Logger) *asyncTable {
	return &asyncTable{g: g, max: max, timeout: timeout, log: log,
		pending: map[coalesce.Key]*coalesce.Future{}, failed: map[coalesce.Key]failure{}, stop: make(chan struct{})}
}

// track keeps fu until it is done. A key already tracked keeps its first
// Future, and fu is cancelled: one claim per key is enough.
func (t *asyncTable) track(k coalesce.Key, fu *coalesce.Future) *apiError {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return &apiError{Status: http.StatusServiceUnavailable, Code: codeShuttingDown, Message: "the server is shutting down", RetryAfter: retryAfterOverloaded}
	}
	if _, ok := t.pending[k]; ok {
		fu.Cancel()
		return nil
	}
	if len(t.pending) >= t.max {
		return &apiError{Status: http.StatusServiceUnavailable, Code: codeOverloaded,
			Message: fmt.Sprintf("%d respond-async computations are pending (the server's limit); retry after the Retry-After delay, or wait for the result", t.max), RetryAfter: retryAfterOverloaded}
	}
	t.pending[k] = fu
	delete(t.failed, k)
	t.routines.Add(1)
	go t.watch(k, fu)
	return nil
}

// watch waits for fu, records a failure, and lets go of it.
func (t *asyncTable) watch(k coalesce.Key, fu *coalesce.Future) {
	defer t.routines.Done()
	timer := time.NewTimer(t.timeout)
	defer timer.Stop()
	var err error
	select {
	case <-fu.Done():
		_, err = fu.Poll()
	case <-timer.C:
		fu.Cancel()
		err = fmt.Errorf("%w: no client collected it within the server's async timeout of %v", coalesce.ErrTimeout, t.timeout)
	case <-t.stop:
		fu.Cancel()
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.pending, k)
	if err != nil {
		t.log.Info("respond-async computation failed", "key", k.String(), "error", err)
		t.failed[k] = failure{err: err, expires: time.Now().Add(t.timeout)}
		t.order = append(t.order, k)
		t.expireLocked()
	}
}

// expireLocked drops failures past their time, and the oldest beyond max.
func (t *asyncTable) expireLocked() {
	now := time.Now()
	for len(t.order) > 0 {
		k := t.order[0]
		f, ok := t.failed[k]
		if ok && now.Before(f.expires) && len(t.failed) <= t.max {
			break
		}
		if ok { // expired, or the oldest beyond max
			delete(t.failed, k)
		}
		t.order = t.order[1:]
	}
	if cap(t.order) > 2*t.max+64 { // let the backing array go
		t.order = append([]coalesce.Key(nil), t.order...)
	}
}

// failure returns the error of k's respond-async computation, if it failed
// lately.
// outcome reports whether k's respond-async computation is still tracked
// (its end not yet recorded), or the error it failed with lately.
func (t *asyncTable) outcome(k coalesce.Key) (pending bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.pending[k]; ok {
		return true, nil
	}
	t.expireLocked()
	f, ok := t.failed[k]
	if !ok || time.Now().After(f.expires) {
		return false, nil
	}
	return false, f.err
}

func (t *asyncTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

func (t *asyncTable) close() {
	t.mu.Lock()
	if !t.closed {
		t.closed = true
		close(t.stop)
	}
	t.mu.Unlock()
	t.routines.Wait()
}
