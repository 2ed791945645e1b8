package disk

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

type opKind uint8

const (
	opSave   opKind = iota
	opTouch         // move a used record to the current generation
	opDrop          // delete a record if it is still corrupt or expired
	opDelete        // delete a record
	opRange         // delete every record in [rk, end)
	opFlush         // nothing but a synced commit
)

// request is one write for the committer. done, if set, receives the
// outcome of the batch it went in.
type request struct {
	op      opKind
	rk      []byte
	end     []byte
	value   []byte
	expires int64
	done    chan error

	existed bool  // opDelete: there was a record
	count   int64 // opRange: records deleted
}

const (
	// maxBatch bounds one commit, so that a burst cannot make one batch
	// (and the latency of the Saves waiting on it) arbitrarily large.
	maxBatch = 4096
	// maxEvictPerBatch bounds the eviction work one commit does; the rest
	// is left for the next ones.
	maxEvictPerBatch = 4096
	// generations is about how many generations a full store spans: the
	// current one ends after MaxBytes/generations bytes of writes.
	generations = 32
)

// cost is the accounted size of a record and its index entry: their keys'
// and value's bytes. What the engine adds per key (an 8-byte trailer, block
// offsets) is about what it saves by sharing key prefixes: 1 M results of
// 128 B are accounted 184 B each and took 177-181 B of files as written,
// 174-175 B compacted (BenchmarkBytesPerResult), so MaxBytes is near the
// files' size.
func cost(rk []byte, recLen int) int64 {
	return int64(len(rk) + recLen + len(rk) + 4)
}

// limit is the accounted size past which the committer evicts. It leaves
// a tenth of MaxBytes for what the engine keeps besides live records:
// the log, the memtables, and deleted records until compaction.
func (s *Store) limit() int64 { return s.opts.MaxBytes / 10 * 9 }

// urgent requests are waited for: they end the gathering of a batch.
func (r *request) urgent() bool { return r.done != nil }

func (s *Store) commitLoop() {
	defer close(s.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	batch := make([]*request, 0, 64)
	for {
		r, ok := <-s.reqs
		if !ok {
			return
		}
		batch = append(batch[:0], r)
		open := true
		if !r.urgent() {
			// Gather for one interval: one sync for all the records
			// that arrive meanwhile.
			timer.Reset(s.opts.CommitInterval)
		gather:
			for len(batch) < maxBatch {
				select {
				case r, ok := <-s.reqs:
					if !ok {
						open = false
						break gather
					}
					batch = append(batch, r)
					if r.urgent() {
						break gather
					}
				case <-timer.C:
					break gather
				}
			}
			timer.Stop()
		}
		// Whatever else is queued already goes in the same sync.
	drain:
		for open && len(batch) < maxBatch {
			select {
			case r, ok := <-s.reqs:
				if !ok {
					open = false
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		s.apply(batch)
		clear(batch)
		if !open {
			// Close closed the queue: what was in it has been applied.
			return
		}
	}
}

// apply writes one batch of requests, synced, and answers them.
func (s *Store) apply(reqs []*request) {
	err := s.applyBatch(reqs)
	if err != nil {
		s.ctr.writeErrors.Add(countSaves(reqs))
		s.health.failed(err)
	}
	for _, r := range reqs {
		if r.done != nil {
			r.done <- err
		}
	}
}

func (s *Store) applyBatch(reqs []*request) (err error) {
	if s.health.broken.Load() {
		return ErrBroken
	}
	full := s.opts.ReserveBytes > 0 && freeBytes(s.opts.Dir) < uint64(s.opts.ReserveBytes)
	w := &writer{s: s, b: s.db.NewBatch(), pending: map[string][]byte{}, m: s.meta}
	defer func() { w.b.Close() }()
	m := &w.m
	for _, r := range reqs {
		switch r.op {
		case opSave:
			if full {
				continue
			}
			w.removeOld(r.rk)
			rec := appendRecord(make([]byte, 0, recordLen(len(r.value), r.expires)), r.rk, m.gen, r.expires, r.value)
			w.setRecord(r.rk, rec)
			set(w.b, genKey(m.gen, r.rk), nil)
			c := cost(r.rk, len(rec))
			m.bytes += c
			m.genBytes += c
			m.entries++
			w.saves++
		case opTouch:
			if full {
				continue
			}
			raw, ok := w.raw(r.rk)
			if !ok {
				continue
			}
			rec, derr := decodeRecord(r.rk, raw)
			if derr != nil || rec.gen == m.gen {
				continue
			}
			value := appendRecord(nil, r.rk, m.gen, rec.expires, rec.value)
			del(w.b, genKey(rec.gen, r.rk))
			w.setRecord(r.rk, value)
			set(w.b, genKey(m.gen, r.rk), nil)
			m.genBytes += cost(r.rk, len(value))
		case opDrop:
			raw, ok := w.raw(r.rk)
			if !ok {
				continue
			}
			rec, derr := decodeRecord(r.rk, raw)
			if derr == nil && (rec.expires == 0 || time.Now().UnixNano() < rec.expires) {
				continue // replaced since by a good record
			}
			if derr == nil {
				del(w.b, genKey(rec.gen, r.rk))
			}
			// A corrupt record's index entry cannot be found from it; the
			// eviction scan drops it when it gets there.
			w.delRecord(r.rk)
			m.bytes -= cost(r.rk, len(raw))
			m.entries--
		case opDelete:
			r.existed = w.removeOld(r.rk)
		case opRange:
			// The range is counted from the engine: what this batch wrote
			// so far goes first (unsynced; the batch's own commit syncs
			// the log up to it).
			if !w.b.Empty() {
				if err := w.commit(pebble.NoSync); err != nil {
					return err
				}
			}
			n, size, ierr := s.measureRange(r.rk, r.end)
			if ierr != nil {
				return ierr
			}
			if err := w.b.DeleteRange(r.rk, r.end, nil); err != nil {
				return err
			}
			r.count = n
			m.bytes -= size
			m.entries -= n
			// Committed at once, so that the requests after it, which
			// read the engine, do not see the deleted records.
			if err := w.commit(pebble.NoSync); err != nil {
				return err
			}
		}
	}
	w.evicted = s.evict(w)
	if m.genBytes > s.opts.MaxBytes/generations {
		m.gen++
		m.genBytes = 0
	}
	if err := w.commit(pebble.Sync); err != nil {
		return err
	}
	if full {
		if countSaves(reqs) > 0 {
			return ErrDiskFull
		}
		return nil // nothing was refused, nothing proved the disk writable
	}
	s.health.ok()
	return nil
}

// writer is one commit's batch, with the records it has written so far,
// so that later requests in it see them without an indexed batch (whose
// reads skip the bottom level's bloom filters).
type writer struct {
	s       *Store
	b       *pebble.Batch
	pending map[string][]byte // nil: deleted in this batch
	m       meta

	saves, evicted int64
}

func (w *writer) setRecord(rk, v []byte) {
	set(w.b, rk, v)
	w.pending[string(rk)] = v
}

func (w *writer) delRecord(rk []byte) {
	del(w.b, rk)
	w.pending[string(rk)] = nil
}

// raw returns the bytes stored under rk, as this batch leaves them.
func (w *writer) raw(rk []byte) ([]byte, bool) {
	if v, ok := w.pending[string(rk)]; ok {
		return v, v != nil
	}
	v, closer, err := w.s.lookup(rk)
	if err != nil {
		return nil, false
	}
	v = bytes.Clone(v)
	_ = closer.Close()
	return v, true
}

// removeOld deletes the record under rk and its index entry, if there is
// one, and takes it off the counts.
func (w *writer) removeOld(rk []byte) bool {
	raw, ok := w.raw(rk)
	if !ok {
		return false
	}
	if rec, err := decodeRecord(rk, raw); err == nil {
		del(w.b, genKey(rec.gen, rk))
	}
	w.delRecord(rk)
	w.m.bytes -= cost(rk, len(raw))
	w.m.entries--
	return true
}

// commit writes the batch with the counters, and starts a new one.
func (w *writer) commit(opts *pebble.WriteOptions) error {
	s := w.s
	// Corrupt records are counted at their stored size, not the size they
	// were counted at: never let the drift go below zero.
	w.m.bytes, w.m.entries = max(w.m.bytes, 0), max(w.m.entries, 0)
	if w.m != s.meta {
		set(w.b, metaKey, w.m.encode())
	}
	if w.b.Empty() {
		return nil
	}
	if err := commit(w.b, opts); err != nil {
		if errors.Is(err, errEngineBroken) {
			s.health.broken.Store(true)
			s.log.Error("disk: the engine cannot write any more; writes fail until the store is reopened", "err", err)
			return fmt.Errorf("%w: %w", ErrBroken, err)
		}
		return fmt.Errorf("%w: %w", ErrWriteFailed, err)
	}
	s.meta = w.m
	s.gen.Store(w.m.gen)
	s.ctr.writes.Add(w.saves)
	s.ctr.evictions.Add(w.evicted)
	w.saves, w.evicted = 0, 0
	w.b.Close()
	w.b = s.db.NewBatch()
	clear(w.pending)
	return nil
}

var errEngineBroken = errors.New("engine panicked")

// commit writes b. The engine panics (or calls Logger.Fatalf, which panics
// here) when its log cannot be written; that is turned into an error so
// that the process goes on serving from memory.
func commit(b *pebble.Batch, opts *pebble.WriteOptions) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errEngineBroken, r)
		}
	}()
	return b.Commit(opts)
}

func countSaves(reqs []*request) int64 {
	var n int64
	for _, r := range reqs {
		if r.op == opSave {
			n++
		}
	}
	return n
}

// set and del write into an indexed batch, whose only error is a closed
// or committed batch: not something apply does.
func set(b *pebble.Batch, k, v []byte) {
	if err := b.Set(k, v, nil); err != nil {
		panic(err)
	}
}

func del(b *pebble.Batch, k []byte) {
	if err := b.Delete(k, nil); err != nil {
		panic(err)
	}
}

func (s *Store) measureRange(start, end []byte) (n, size int64, err error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: end})
	if err != nil {
		return 0, 0, err
	}
	for it.First(); it.Valid(); it.Next() {
		n++
		size += cost(it.Key(), len(it.Value()))
	}
	return n, size, it.Close()
}

// evict deletes the records of the oldest generations until the store is
// back under its limit, at most maxEvictPerBatch of them. The index is
// walked from a cursor, not from its start, so that the tombstones of
// earlier evictions are not walked over again and again.
func (s *Store) evict(w *writer) int64 {
	m := &w.m
	if m.bytes <= s.limit() {
		return 0
	}
	target := s.limit() - s.opts.MaxBytes/64
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixGen}, UpperBound: []byte{prefixGen + 1}})
	if err != nil {
		return 0
	}
	defer it.Close()
	valid := it.First()
	if s.evictCursor != nil {
		valid = it.SeekGE(s.evictCursor)
	}
	var n, work int64
	for ; valid && m.bytes > target && work < maxEvictPerBatch; valid = it.Next() {
		work++
		gk := it.Key()
		gen, rk, ok := parseGenKey(gk)
		if !ok {
			del(w.b, bytes.Clone(gk))
			continue
		}
		if gen == m.gen {
			// Everything older is gone: evicting the current generation
			// means the store is one generation deep; start a new one so
			// that the records written from now on are kept.
			m.gen++
			m.genBytes = 0
		}
		del(w.b, bytes.Clone(gk))
		raw, ok := w.raw(rk)
		if !ok {
			continue // deleted with its namespace or version
		}
		rec, derr := decodeRecord(rk, raw)
		if derr == nil && rec.gen != gen {
			continue // moved to a newer generation; its entry there stays
		}
		w.delRecord(rk)
		m.bytes -= cost(rk, len(raw))
		m.entries--
		n++
	}
	if valid {
		s.evictCursor = bytes.Clone(it.Key())
	} else {
		s.evictCursor = nil
	}
	return n
}
