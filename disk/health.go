package disk

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// health tracks whether writes succeed, and logs a failing burst once:
// when it starts, at most once a minute while it lasts, and when it ends.
type health struct {
	log    *slog.Logger
	broken atomic.Bool
	bad    atomic.Bool

	mu        sync.Mutex
	loggedAt  time.Time
	failures  int64 // in the current burst
	lastError atomic.Pointer[errorAt]
}

type errorAt struct {
	err error
	at  time.Time
}

// relogEvery is how often a burst of failures is logged again.
const relogEvery = time.Minute

func (h *health) init(log *slog.Logger) { h.log = log }

func (h *health) failed(err error) {
	now := time.Now()
	h.lastError.Store(&errorAt{err, now})
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failures++
	if !h.bad.Load() {
		h.bad.Store(true)
		h.loggedAt = now
		h.log.Error("disk: writes are failing; results are kept in memory only until they succeed again", "err", err)
		return
	}
	if now.Sub(h.loggedAt) >= relogEvery {
		h.loggedAt = now
		h.log.Error("disk: writes are still failing", "err", err, "failed_batches", h.failures)
	}
}

func (h *health) ok() {
	if !h.bad.Load() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.bad.Load() {
		return
	}
	h.bad.Store(false)
	h.log.Info("disk: writes succeed again", "failed_batches", h.failures)
	h.failures = 0
}

// err is the error of the last failed write while writes are failing.
func (h *health) err() error {
	if !h.bad.Load() && !h.broken.Load() {
		return nil
	}
	if e := h.lastError.Load(); e != nil {
		return e.err
	}
	return nil
}

type counters struct {
	hits, misses, writes, writeErrors, readErrors atomic.Int64
	dropped, evictions, corrupt, expired, touches atomic.Int64
}

// Stats is a snapshot of a Store's state and counters since Open.
type Stats struct {
	// Entries is the number of records (expired ones included until they
	// are met); Bytes their accounted size, which MaxBytes bounds.
	Entries, Bytes, MaxBytes int64
	// DiskBytes is the size of the engine's files.
	DiskBytes uint64
	// Generation is the current generation of use.
	Generation uint32

	Hits, Misses int64
	// Writes counts saved records, WriteErrors records whose write failed
	// (or was refused for want of space), Dropped records refused because
	// the queue was full.
	Writes, WriteErrors, Dropped int64
	ReadErrors                   int64
	// Evictions counts records evicted for space; Corrupt and Expired the
	// records found so (and deleted); Touches the moves of used records to
	// the current generation.
	Evictions, Corrupt, Expired, Touches int64

	// Healthy is false while writes are failing (a full disk, a
	// permission or I/O error), and true again after one succeeds.
	Healthy bool
	// LastError is the last write error, and LastErrorAt when it happened.
	LastError   string
	LastErrorAt time.Time
}

// Stats returns the store's counters. It takes no lock that writes wait
// for.
func (s *Store) Stats() Stats {
	st := Stats{
		MaxBytes:    s.opts.MaxBytes,
		Generation:  s.gen.Load(),
		Hits:        s.ctr.hits.Load(),
		Misses:      s.ctr.misses.Load(),
		Writes:      s.ctr.writes.Load(),
		WriteErrors: s.ctr.writeErrors.Load(),
		Dropped:     s.ctr.dropped.Load(),
		ReadErrors:  s.ctr.readErrors.Load(),
		Evictions:   s.ctr.evictions.Load(),
		Corrupt:     s.ctr.corrupt.Load(),
		Expired:     s.ctr.expired.Load(),
		Touches:     s.ctr.touches.Load(),
		Healthy:     !s.health.bad.Load() && !s.health.broken.Load(),
	}
	if e := s.health.lastError.Load(); e != nil {
		st.LastError, st.LastErrorAt = e.err.Error(), e.at
	}
	if s.rlock() == nil {
		// The counters are the committer's; a fresh read of the stored
		// copy is the cheapest consistent view.
		if raw, closer, err := s.db.Get(metaKey); err == nil {
			if m, err := decodeMeta(raw); err == nil {
				st.Entries, st.Bytes = m.entries, m.bytes
			}
			_ = closer.Close()
		}
		st.DiskBytes = s.db.Metrics().DiskSpaceUsage()
		s.mu.RUnlock()
	}
	return st
}
