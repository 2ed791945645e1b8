package disk

import (
	"errors"
	"syscall"
)

var (
	// ErrClosed is returned by every method of a closed Store.
	ErrClosed = errors.New("disk: store is closed")

	// ErrCorrupt is returned, wrapped, by Get for a record whose checksum
	// or header does not match; Load treats such a record as a miss and
	// deletes it.
	ErrCorrupt = errors.New("disk: corrupt record")

	// ErrNotFound is returned by Get for a key the store does not hold (or
	// holds expired).
	ErrNotFound = errors.New("disk: no such record")

	// ErrDiskFull is returned by Save while the file system has
	// less free space than Options.ReserveBytes: the write is dropped and
	// the store keeps refusing writes until space returns. It matches
	// syscall.ENOSPC too.
	ErrDiskFull = diskFullError{}

	// ErrWriteFailed is returned, wrapped with the engine's error, by Save
	// when its batch could not be written (a permission or I/O error).
	ErrWriteFailed = errors.New("disk: write failed")

	// ErrBroken is returned, possibly wrapped, by Save (and Close) after
	// the engine failed in a way it cannot recover from in this process
	// (its write-ahead log could not be written): reads go on; writes need
	// the process restarted, since the failed engine keeps the directory
	// locked.
	ErrBroken = errors.New("disk: the engine cannot write any more; restart the process to reopen the store")

	// ErrQueueFull is returned by Save with SyncGroupCommit when more
	// records wait for the committer than Options.MaxPending: the disk is
	// slower than the writes, and the record is dropped rather than the
	// caller delayed.
	ErrQueueFull = errors.New("disk: write queue is full; the record was not saved")

	// ErrBadOptions is returned, wrapped, by Open for invalid Options.
	ErrBadOptions = errors.New("disk: invalid options")

	// ErrBadKey is returned, wrapped, for a namespace or version that
	// cannot be stored (longer than MaxNameLen bytes).
	ErrBadKey = errors.New("disk: invalid key")

	// ErrBadSecret is returned, wrapped, by Open when Dir/secret exists but
	// does not hold a secret.
	ErrBadSecret = errors.New("disk: invalid secret file")
)

type diskFullError struct{}

func (diskFullError) Error() string {
	return "disk: file system is full (free space below Options.ReserveBytes); writes resume when space is freed"
}

func (diskFullError) Is(target error) bool { return target == syscall.ENOSPC }
