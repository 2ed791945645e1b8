package sim

import (
	"bytes"
	"context"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// userDesign is the design in the user's question, built faithfully: N
// queues (N = workers), each drained by one worker goroutine that alone owns
// a results cache. A request is hashed onto a queue by consistent hashing of
// its input. The worker pops a request, pops the following ones while they
// are identical (peeking at the head), then checks its cache, computes on a
// miss and stores the result. The cache is therefore behind the queue: a
// request whose result is cached still waits for everything queued before
// it on its worker.
//
// Accounting: a group served from the cache counts as hits; a computed
// group counts its first request as the miss and the adjacent requests
// coalesced with it as joined.
type userDesign struct {
	task   taskFunc
	ring   *ring
	queues []*userQueue
	wg     sync.WaitGroup
}

// userVnodes is the number of virtual nodes per queue on the ring; 100 is
// the usual choice and spreads keys within a few percent.
const userVnodes = 100

type userItem struct {
	ctx   context.Context
	input []byte
	hash  uint64
	reply chan userReply // buffered: the worker never blocks on a gone requester
}

type userReply struct {
	value []byte
	kind  Kind
	err   error
}

// userQueue is an unbounded multi-producer single-consumer queue: the only
// synchronization in the user's design.
type userQueue struct {
	mu     sync.Mutex
	items  []*userItem
	head   int
	ready  chan struct{} // capacity 1: a pending wake-up for the worker
	closed bool
}

func newUserDesign(p designParams) (design, error) {
	d := &userDesign{task: p.task, ring: newRing(p.workers, userVnodes)}
	perWorker := max(p.cacheEntries/p.workers, 1)
	for range p.workers {
		q := &userQueue{ready: make(chan struct{}, 1)}
		cache, err := simplelru.NewLRU[uint64, []byte](perWorker, nil)
		if err != nil {
			return nil, err
		}
		d.queues = append(d.queues, q)
		d.wg.Go(func() { d.work(q, cache) })
	}
	return d, nil
}

func (d *userDesign) get(ctx context.Context, input []byte) ([]byte, Kind, error) {
	h := fnv64a(input)
	it := &userItem{ctx: ctx, input: input, hash: h, reply: make(chan userReply, 1)}
	d.queues[d.ring.node(mix64(h))].push(it)
	select {
	case r := <-it.reply:
		return r.value, r.kind, r.err
	case <-ctx.Done():
		return nil, Miss, ctx.Err()
	}
}

func (q *userQueue) push(it *userItem) {
	q.mu.Lock()
	q.items = append(q.items, it)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// pop waits for the next item; it returns nil once the queue is closed and
// empty.
func (q *userQueue) pop() *userItem {
	for {
		q.mu.Lock()
		if q.head < len(q.items) {
			it := q.items[q.head]
			q.items[q.head] = nil
			q.head++
			if q.head == len(q.items) {
				q.items, q.head = q.items[:0], 0
			}
			q.mu.Unlock()
			return it
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return nil
		}
		<-q.ready
	}
}

// popIfSame pops the head of the queue if it is identical to it: the
// user's peek.
func (q *userQueue) popIfSame(it *userItem) *userItem {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.items) {
		return nil
	}
	next := q.items[q.head]
	if next.hash != it.hash || !bytes.Equal(next.input, it.input) {
		return nil
	}
	q.items[q.head] = nil
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
	return next
}

func (d *userDesign) work(q *userQueue, cache *simplelru.LRU[uint64, []byte]) {
	var group []*userItem
	for {
		it := q.pop()
		if it == nil {
			return
		}
		group = append(group[:0], it)
		for next := q.popIfSame(it); next != nil; next = q.popIfSame(it) {
			group = append(group, next)
		}
		if v, ok := cache.Get(it.hash); ok {
			for _, g := range group {
				g.reply <- userReply{value: v, kind: Hit}
			}
			continue
		}
		v, err := d.task(it.ctx, it.input)
		if err == nil {
			cache.Add(it.hash, v)
		}
		for i, g := range group {
			kind := Joined
			if i == 0 {
				kind = Miss
			}
			g.reply <- userReply{value: v, kind: kind, err: err}
		}
	}
}

func (d *userDesign) close() {
	for _, q := range d.queues {
		q.mu.Lock()
		q.closed = true
		q.mu.Unlock()
		select {
		case q.ready <- struct{}{}:
		default:
		}
	}
	d.wg.Wait()
}
