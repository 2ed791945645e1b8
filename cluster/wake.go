package cluster

import (
	"sync"

	"github.com/redis/rueidis"
)

// wakeups maps the keys that waiters watch to the channel that wakes
// them. Redis tracks a key read with DoCache on the connection that read
// it, and sends an invalidation when the key next changes (the owner
// wrote its result, released or lost its lease, or the key expired).
type wakeups struct {
	mu sync.Mutex
	m  map[string]*wakeup
}

type wakeup struct {
	ch   chan struct{}
	refs int
}

// watch returns the channel closed at key's next invalidation. Call it
// before reading the key, so that no change after the read is missed.
func (w *wakeups) watch(key string) *wakeup {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = make(map[string]*wakeup)
	}
	e := w.m[key]
	if e == nil {
		e = &wakeup{ch: make(chan struct{})}
		w.m[key] = e
	}
	e.refs++
	return e
}

func (w *wakeups) unwatch(key string, e *wakeup) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e.refs--
	if e.refs == 0 && w.m[key] == e {
		delete(w.m, key)
	}
}

// onInvalidations is rueidis' callback. A nil batch means the connection
// that tracked the keys is gone, or Redis flushed: every waiter is woken
// to read its key afresh (or to fail, if Redis is gone), so a lost
// invalidation never leaves a waiter asleep past PollInterval.
func (w *wakeups) onInvalidations(msgs []rueidis.RedisMessage) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if msgs == nil {
		for k, e := range w.m {
			close(e.ch)
			delete(w.m, k)
		}
		return
	}
	for i := range msgs {
		k, err := msgs[i].ToString()
		if err != nil {
			continue
		}
		if e := w.m[k]; e != nil {
			close(e.ch)
			delete(w.m, k)
		}
	}
}
