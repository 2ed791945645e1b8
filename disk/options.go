package disk

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// SyncMode says when a saved record reaches the disk.
type SyncMode int

const (
	// SyncGroupCommit (the default): Save queues the record and returns; a
	// committer writes the queued records as one batch and syncs it every
	// CommitInterval. A crash loses at most the last interval's records.
	SyncGroupCommit SyncMode = iota
	// SyncAlways: Save returns only after its record is synced. Saves that
	// arrive together share one batch and one fsync.
	SyncAlways
)

// String returns the name ParseSyncMode accepts.
func (m SyncMode) String() string {
	switch m {
	case SyncGroupCommit:
		return "group"
	case SyncAlways:
		return "always"
	}
	return fmt.Sprintf("SyncMode(%d)", int(m))
}

// ParseSyncMode parses "group" (or "", the default) or "always", for flags.
func ParseSyncMode(s string) (SyncMode, error) {
	switch s {
	case "group", "":
		return SyncGroupCommit, nil
	case "always":
		return SyncAlways, nil
	}
	return 0, fmt.Errorf("%w: sync mode %q; use \"group\" (sync every few ms) or \"always\" (sync before Save returns)", ErrBadOptions, s)
}

// Defaults and limits of Options.
const (
	DefaultMaxBytes       = 10 << 30
	MinMaxBytes           = 1 << 20
	DefaultCommitInterval = 2 * time.Millisecond
	MaxCommitInterval     = time.Second
	DefaultReserveBytes   = 64 << 20
	DefaultMaxPending     = 1 << 16
	// MaxNameLen is the longest namespace or version, in bytes.
	MaxNameLen = 255
	// SecretSize is the length of Store.Secret.
	SecretSize = 32
)

// Options configure a Store. The zero value of every field but Dir is a
// documented default.
type Options struct {
	// Dir is the store's directory, created (0700) if missing. Required.
	Dir string

	// MaxBytes bounds the store's size on disk. Records are accounted at
	// the bytes of their keys, value and index entry, which is about what
	// the engine's files take for them (184 B accounted, 175-177 B of
	// files for a 128 B result), and the least recently used are evicted
	// past 90% of MaxBytes: the rest is for the engine's log, memtables,
	// and deleted records until compaction reclaims them (under eviction
	// churn, files of 57-68 MiB were measured with 64 MiB). 0 means
	// DefaultMaxBytes (10 GiB); at least MinMaxBytes.
	MaxBytes int64

	// Sync chooses when Save's record is durable: SyncGroupCommit
	// (default) or SyncAlways.
	Sync SyncMode

	// CommitInterval is how long the committer gathers records before it
	// writes and syncs them with SyncGroupCommit. 0 means 2 ms; at most
	// MaxCommitInterval.
	CommitInterval time.Duration

	// ReserveBytes is the free space below which the store stops writing
	// (Save returns ErrDiskFull), so that the engine itself never meets a
	// full file system: it cannot recover from a failed log write. 0 means
	// DefaultReserveBytes (64 MiB); negative means no reserve.
	ReserveBytes int64

	// MaxPending bounds the records queued for the committer with
	// SyncGroupCommit; past it Save returns ErrQueueFull. 0 means
	// DefaultMaxPending.
	MaxPending int

	// fs, if set, replaces the file system under the engine: the tests'
	// fault injection.
	fs vfs.FS

	// Logger receives write failures (once per burst), corrupt records
	// and the engine's own messages. Nil means slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	if o.Dir == "" {
		return o, fmt.Errorf("%w: Dir is empty; give the directory that holds (or will hold) the store", ErrBadOptions)
	}
	switch {
	case o.MaxBytes == 0:
		o.MaxBytes = DefaultMaxBytes
	case o.MaxBytes < MinMaxBytes:
		return o, fmt.Errorf("%w: MaxBytes %d; use 0 for the default of 10 GiB, or at least %d", ErrBadOptions, o.MaxBytes, MinMaxBytes)
	}
	if o.Sync != SyncGroupCommit && o.Sync != SyncAlways {
		return o, fmt.Errorf("%w: Sync %d; use SyncGroupCommit or SyncAlways", ErrBadOptions, int(o.Sync))
	}
	switch {
	case o.CommitInterval == 0:
		o.CommitInterval = DefaultCommitInterval
	case o.CommitInterval < 0 || o.CommitInterval > MaxCommitInterval:
		return o, fmt.Errorf("%w: CommitInterval %v; use 0 for 2 ms, or between 1ns and %v", ErrBadOptions, o.CommitInterval, MaxCommitInterval)
	}
	switch {
	case o.ReserveBytes == 0:
		o.ReserveBytes = DefaultReserveBytes
	case o.ReserveBytes < 0:
		o.ReserveBytes = 0
	}
	switch {
	case o.MaxPending == 0:
		o.MaxPending = DefaultMaxPending
	case o.MaxPending < 0:
		return o, fmt.Errorf("%w: MaxPending %d; use 0 for the default of %d, or a positive count", ErrBadOptions, o.MaxPending, DefaultMaxPending)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}
