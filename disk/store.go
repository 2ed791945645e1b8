package disk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/coalesce-go/coalesce"
)

// Store is a durable coalesce.Tier in one directory.
//
// A Store is safe for concurrent use. Loads, Gets and the read-only admin
// calls run in the caller's goroutine and never wait for writes; every
// write (Save, Delete, the range deletes, and the moves of used records to
// the current generation) goes through one committer goroutine, in order,
// so the store's counters are written in the same atomic batch as the
// records they count. Close waits for the queued writes, then closes the
// engine; every method returns ErrClosed afterwards. Only one process can
// open a directory at a time.
type Store struct {
	opts   Options
	db     *pebble.DB
	secret []byte
	log    *slog.Logger

	// mu guards closed and the sending on reqs: senders hold it for
	// reading, Close for writing, so that no send races the channel's
	// close and no read races the engine's.
	mu     sync.RWMutex
	closed bool
	reqs   chan *request
	done   chan struct{}

	gen    atomic.Uint32 // the committer's current generation, for Load
	health health
	ctr    counters

	// The committer's own state.
	meta        meta
	evictCursor []byte
}

var _ coalesce.Tier = (*Store)(nil)
var _ coalesce.Toucher = (*Store)(nil)
var _ coalesce.TierPeeker = (*Store)(nil)

// Open opens the store in o.Dir, creating it if needed. It reads the
// store's counters and secret, not its records.
func Open(o Options) (*Store, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("disk: creating the store's directory: %w", err)
	}
	cache := pebble.NewCache(cacheBytes)
	defer cache.Unref() // the engine holds its own reference
	popts := &pebble.Options{
		Cache: cache,
		// The plain file system, not the engine's default wrapper that
		// watches for slow disks: that wrapper's goroutine outlives a
		// failed Open (a directory locked by another process).
		FS:                 vfs.Default,
		Logger:             pebbleLogger{o.Logger},
		FormatMajorVersion: pebble.FormatNewest,
	}
	// Most Loads are misses (the memory cache answers the rest): bloom
	// filters let a miss skip the tables' data blocks.
	for i := range popts.Levels {
		popts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	// Eviction scatters point deletes over the whole key space (keys are
	// hashes): blocks with a fifth of their records deleted count as
	// tombstone-dense, so compaction reclaims evicted records' space soon
	// (files under churn: 57-68 MiB for MaxBytes 64 MiB, against 64-97
	// MiB with the engine's defaults).
	popts.Experimental.NumDeletionsThreshold = 20
	popts.Experimental.DeletionSizeRatioThreshold = 0.1
	popts.Experimental.TombstoneDenseCompactionThreshold = 0.05
	if o.fs != nil {
		popts.FS = o.fs
	}
	db, err := openEngine(filepath.Join(o.Dir, "db"), popts)
	if err != nil {
		return nil, err
	}
	s := &Store{
		opts: o,
		db:   db,
		log:  o.Logger,
		reqs: make(chan *request, o.MaxPending),
		done: make(chan struct{}),
	}
	fail := func(err error) (*Store, error) {
		_ = db.Close()
		return nil, err
	}
	if s.secret, err = loadSecret(o.Dir); err != nil {
		return fail(err)
	}
	raw, closer, err := db.Get(metaKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		s.meta = meta{gen: 1}
	case err != nil:
		return fail(fmt.Errorf("disk: reading the store's counters: %w", err))
	default:
		s.meta, err = decodeMeta(raw)
		_ = closer.Close()
		if err != nil {
			// The counters can be rebuilt from the records: one scan, only
			// after this rare damage, rather than a store that will not open.
			o.Logger.Warn("disk: the store's counters are damaged; recounting the records", "dir", o.Dir, "err", err)
			if s.meta, err = s.recount(); err != nil {
				return fail(err)
			}
		}
	}
	s.gen.Store(s.meta.gen)
	s.health.init(o.Logger)
	go s.commitLoop()
	return s, nil
}

// cacheBytes is the engine's block cache: enough for the index and filter
// blocks of a 10 GiB store (so that a miss reads no file) and some data.
const cacheBytes = 64 << 20

// openEngine turns the engine's panics on a damaged directory into errors.
func openEngine(dir string, popts *pebble.Options) (db *pebble.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("disk: opening %s: the engine failed: %v", dir, r)
		}
	}()
	db, err = pebble.Open(dir, popts)
	if err != nil {
		return nil, fmt.Errorf("disk: opening %s: %w", dir, err)
	}
	return db, nil
}

// Secret returns the store's 32-byte secret, for coalesce.Options.Secret:
// keys hashed with it mean the same in every process that opens the
// store. The caller must not modify it.
func (s *Store) Secret() []byte { return s.secret }

// Close writes and syncs the queued records, then closes the engine. It
// is safe to call more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.reqs)
	s.mu.Unlock()
	<-s.done
	if s.health.broken.Load() {
		// The engine's commit pipeline stopped mid-write; its Close could
		// wait forever for it. Leaving it to the process's exit loses
		// nothing that was acknowledged.
		return ErrBroken
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("disk: closing the engine: %w", err)
	}
	return nil
}

// rlock holds the store open for a read or a send.
func (s *Store) rlock() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

func recordKey(k coalesce.TierKey) ([]byte, error) {
	if err := checkName("namespace", k.Namespace); err != nil {
		return nil, err
	}
	if err := checkName("version", k.Version); err != nil {
		return nil, err
	}
	return appendRecordKey(make([]byte, 0, recordKeyBase+len(k.Namespace)+len(k.Version)),
		k.Namespace, k.Version, k.Key.Bytes()), nil
}

// Peek implements coalesce.TierPeeker. The disk takes no leases and waits
// for no computation, so Peek is Load: a result found by its key alone
// (GET /v1/results/KEY after a restart) counts as a use.
func (s *Store) Peek(ctx context.Context, k coalesce.TierKey) (coalesce.TierResult, error) {
	return s.Load(ctx, k)
}

// Load implements coalesce.Tier. A corrupt or expired record is a miss;
// it is counted and deleted. A hit on a record of an older generation
// moves it to the current one (in the background), so that eviction
// takes it last.
func (s *Store) Load(ctx context.Context, k coalesce.TierKey) (coalesce.TierResult, error) {
	rk, err := recordKey(k)
	if err != nil {
		return coalesce.TierResult{}, err
	}
	if err := s.rlock(); err != nil {
		return coalesce.TierResult{}, err
	}
	defer s.mu.RUnlock()
	raw, closer, err := s.lookup(rk)
	if errors.Is(err, pebble.ErrNotFound) {
		s.ctr.misses.Add(1)
		return coalesce.TierResult{}, nil
	}
	if err != nil {
		s.ctr.readErrors.Add(1)
		return coalesce.TierResult{}, fmt.Errorf("disk: reading %s: %w", k.Key, err)
	}
	defer closer.Close()
	rec, err := decodeRecord(rk, raw)
	if err != nil {
		s.ctr.corrupt.Add(1)
		s.ctr.misses.Add(1)
		s.log.Warn("disk: corrupt record treated as a miss and deleted",
			"namespace", k.Namespace, "version", k.Version, "key", k.Key.String(), "err", err)
		s.sendLocked(&request{op: opDrop, rk: rk})
		return coalesce.TierResult{}, nil
	}
	if rec.expires != 0 && time.Now().UnixNano() >= rec.expires {
		s.ctr.expired.Add(1)
		s.ctr.misses.Add(1)
		s.sendLocked(&request{op: opDrop, rk: rk})
		return coalesce.TierResult{}, nil
	}
	s.ctr.hits.Add(1)
	if rec.gen != s.gen.Load() {
		s.sendLocked(&request{op: opTouch, rk: rk})
	}
	r := coalesce.TierResult{Found: true, Value: append([]byte(nil), rec.value...)}
	if rec.expires != 0 {
		r.Expires = time.Unix(0, rec.expires)
	}
	return r, nil
}

// Save implements coalesce.Tier: it stores out.Value under k unless
// out.Err is set (failures are not kept on disk). With SyncGroupCommit it
// queues the record and returns at once, with the error of the last
// failed write while writes are failing (the record is still tried); with
// SyncAlways it returns once the record is synced, or its write's error.
func (s *Store) Save(ctx context.Context, k coalesce.TierKey, out coalesce.Outcome) error {
	if out.Err != nil {
		return nil
	}
	rk, err := recordKey(k)
	if err != nil {
		return err
	}
	var expires int64
	if !out.Expires.IsZero() {
		expires = out.Expires.UnixNano()
		if expires == 0 { // the one instant the format cannot tell from "none"
			expires = 1
		}
	}
	r := &request{op: opSave, rk: rk, value: append([]byte(nil), out.Value...), expires: expires}
	if s.opts.Sync == SyncAlways {
		return s.sendWait(r)
	}
	if err := s.rlock(); err != nil {
		return err
	}
	select {
	case s.reqs <- r:
		s.mu.RUnlock()
	default:
		s.mu.RUnlock()
		s.ctr.dropped.Add(1)
		return ErrQueueFull
	}
	return s.health.err()
}

// Touched implements coalesce.Toucher: keys hit in memory that sit in an
// older generation on disk are moved to the current one, so that the
// memory tier's hits count as uses here. Moves are dropped, not waited
// for, when the committer is behind.
func (s *Store) Touched(keys []coalesce.TierKey) {
	if s.rlock() != nil {
		return
	}
	defer s.mu.RUnlock()
	cur := s.gen.Load()
	for _, k := range keys {
		rk, err := recordKey(k)
		if err != nil {
			continue
		}
		// Reading the generation here keeps the committer's work to the
		// keys that need a move: most touched keys are already current.
		raw, closer, err := s.lookup(rk)
		if err != nil {
			continue
		}
		rec, err := decodeRecord(rk, raw)
		_ = closer.Close()
		if err != nil || rec.gen == cur {
			continue
		}
		s.ctr.touches.Add(1)
		s.sendLocked(&request{op: opTouch, rk: rk})
	}
}

// RecordInfo describes a stored record, for inspection.
type RecordInfo struct {
	Namespace, Version string
	Key                coalesce.Key
	// Generation is the generation of the record's last use; eviction
	// takes the lowest first.
	Generation uint32
	// Expires is the record's deadline, zero for none.
	Expires time.Time
	// Size is the record's encoded size: header, value and checksum.
	Size int
}

// Get returns the value and description of the record under k, without
// counting it as a use. It returns an error matching ErrNotFound for a
// missing or expired record and ErrCorrupt for a corrupt one (which it
// leaves in place, for inspection).
func (s *Store) Get(k coalesce.TierKey) ([]byte, RecordInfo, error) {
	rk, err := recordKey(k)
	if err != nil {
		return nil, RecordInfo{}, err
	}
	if err := s.rlock(); err != nil {
		return nil, RecordInfo{}, err
	}
	defer s.mu.RUnlock()
	info := RecordInfo{Namespace: k.Namespace, Version: k.Version, Key: k.Key}
	raw, closer, err := s.lookup(rk)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, info, fmt.Errorf("%w: %s/%s/%s", ErrNotFound, k.Namespace, k.Version, k.Key)
	}
	if err != nil {
		return nil, info, fmt.Errorf("disk: reading %s: %w", k.Key, err)
	}
	defer closer.Close()
	info.Size = len(raw)
	rec, err := decodeRecord(rk, raw)
	if err != nil {
		return nil, info, err
	}
	info.Generation = rec.gen
	if rec.expires != 0 {
		info.Expires = time.Unix(0, rec.expires)
		if time.Now().UnixNano() >= rec.expires {
			return nil, info, fmt.Errorf("%w: %s/%s/%s expired at %v", ErrNotFound, k.Namespace, k.Version, k.Key, info.Expires)
		}
	}
	return append([]byte(nil), rec.value...), info, nil
}

// Delete removes the record under k, synced, and reports whether there
// was one.
func (s *Store) Delete(k coalesce.TierKey) (bool, error) {
	rk, err := recordKey(k)
	if err != nil {
		return false, err
	}
	r := &request{op: opDelete, rk: rk}
	if err := s.sendWait(r); err != nil {
		return false, err
	}
	return r.existed, nil
}

// Flush writes and syncs every record queued before it.
func (s *Store) Flush() error {
	return s.sendWait(&request{op: opFlush})
}

// sendWait queues r and waits for the committer's answer.
func (s *Store) sendWait(r *request) error {
	r.done = make(chan error, 1)
	if err := s.rlock(); err != nil {
		return err
	}
	// A blocking send: the committer drains the queue whatever happens,
	// and a caller that asked to wait for the disk accepts its pace.
	s.reqs <- r
	s.mu.RUnlock()
	return <-r.done
}

// sendAsync queues r unless the queue is full or the store closed.
func (s *Store) sendAsync(r *request) {
	if s.rlock() != nil {
		return
	}
	s.sendLocked(r)
	s.mu.RUnlock()
}

func (s *Store) sendLocked(r *request) {
	select {
	case s.reqs <- r:
	default:
	}
}

// lookupOptions ask the engine to consult the bottom level's bloom
// filters too, which its Get skips (they are large, and most Gets in its
// usual use find their key): most Loads here are misses, and without them
// each miss reads a data block of the largest level.
var lookupOptions = pebble.IterOptions{UseL6Filters: true}

// lookup is the engine's Get with lookupOptions: the value under rk until
// the closer is closed, or pebble.ErrNotFound.
func (s *Store) lookup(rk []byte) ([]byte, io.Closer, error) {
	it, err := s.db.NewIter(&lookupOptions)
	if err != nil {
		return nil, nil, err
	}
	if !it.SeekPrefixGE(rk) || !bytes.Equal(it.Key(), rk) {
		err := it.Close()
		if err == nil {
			err = pebble.ErrNotFound
		}
		return nil, nil, err
	}
	v, err := it.ValueAndErr()
	if err != nil {
		it.Close()
		return nil, nil, err
	}
	return v, it, nil
}

// recount rebuilds the counters from the records, and stores them.
func (s *Store) recount() (meta, error) {
	m := meta{gen: 1}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixRecord}, UpperBound: []byte{prefixRecord + 1}})
	if err != nil {
		return m, fmt.Errorf("disk: recounting the store: %w", err)
	}
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return m, fmt.Errorf("disk: recounting the store: %w", err)
		}
		m.entries++
		m.bytes += cost(it.Key(), len(v))
		if rec, err := decodeRecord(it.Key(), v); err == nil {
			m.gen = max(m.gen, rec.gen)
		}
	}
	if err := it.Close(); err != nil {
		return m, fmt.Errorf("disk: recounting the store: %w", err)
	}
	if err := s.db.Set(metaKey, m.encode(), pebble.Sync); err != nil {
		return m, fmt.Errorf("disk: storing the recounted counters: %w", err)
	}
	return m, nil
}
