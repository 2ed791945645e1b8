package coalesce

import (
	"fmt"
	"runtime"
	"time"

	"github.com/coalesce-go/coalesce/internal/keyhash"
)

// Policy selects the cache's eviction policy.
type Policy uint8

const (
	// S3FIFO is the default: a pointer-free store with the S3-FIFO policy
	// (a small probationary queue, a main queue and ghosts of recently
	// evicted keys) and TinyLFU admission into the main queue. Scans and
	// loops larger than the cache do not flush it, hits take no global lock,
	// and the garbage collector has nothing to scan per entry.
	S3FIFO Policy = iota
	// LRU keeps every entry as a heap object in a least-recently-used list
	// behind one mutex. It is the simple baseline.
	LRU
)

func (p Policy) String() string {
	switch p {
	case S3FIFO:
		return "s3fifo"
	case LRU:
		return "lru"
	}
	return fmt.Sprintf("Policy(%d)", uint8(p))
}

// Options configures a Group. The zero value of every field is a documented
// default, so Options{} is a working configuration.
type Options struct {
	// Workers bounds how many computations run at once.
	// Zero means runtime.GOMAXPROCS(0).
	Workers int

	// QueueSize bounds the distinct inputs waiting for a worker. Zero means
	// 1024. Identical requests join one queued entry and do not count.
	QueueSize int

	// BlockWhenFull makes a request that finds the queue full wait in line
	// (until its context ends) instead of failing with ErrOverloaded. The
	// line is then bounded only by the number of callers waiting in it.
	BlockWhenFull bool

	// MaxInputSize is the longest input accepted. Zero means 64 KiB.
	MaxInputSize int

	// MaxResultSize is the longest result cached. A longer result is
	// delivered to its waiters but not cached (Stats.Uncached). Zero means 64 KiB, or, for a cache too small
	// to hold results that large, the largest the cache can hold.
	MaxResultSize int

	// CacheBytes is the memory budget of the result cache, counting keys,
	// values and the cache's own bookkeeping. The cache evicts only when it
	// is full. Zero means 1 GiB.
	CacheBytes int64

	// Policy is the cache's eviction policy. The zero value is S3FIFO.
	Policy Policy

	// TaskTimeout, if positive, bounds each computation. At expiry its
	// context is cancelled and every waiter gets ErrTimeout at once, even if
	// the function has not returned yet.
	TaskTimeout time.Duration

	// KeepAbandoned lets a computation whose waiters have all left run on
	// to fill the cache. By default its context is cancelled instead.
	KeepAbandoned bool

	// ErrorTTL, if positive, caches a failed computation's error for that
	// long: requests for the same input get the error without computing
	// again. By default errors are never cached. Panics and timeouts are
	// cached too; cancellations caused by callers or Close are not.
	ErrorTTL time.Duration

	// MaxCachedErrors bounds the errors kept for ErrorTTL; the oldest is
	// dropped first. Zero means 4096.
	MaxCachedErrors int

	// Secret keys the hash of inputs: exactly 32 bytes. Nil means a random
	// secret drawn when the Group is made. Without the secret nobody can
	// craft two inputs with the same key; set it only to share keys with
	// another process, and keep it secret.
	Secret []byte

	// MaxOverdue lets the pool replace a worker whose call is overdue (its
	// waiters were answered by TaskTimeout, abandonment or Close, but Func
	// has not returned) with a new one, for at most MaxOverdue such calls
	// at a time; the old goroutine exits when its call returns. Zero means
	// no replacement: a Func that ignores its context holds its worker
	// until it returns. With it, at most Workers+MaxOverdue calls run at
	// once.
	MaxOverdue int

	// Version names the version of the computation, for the default
	// namespace and for Namespace handles made without one. It is hashed
	// into every key: results of another version are never served, so
	// bumping it when the Func changes retires every older result at once
	// (the memory cache evicts them in time; a Tier can delete them). At
	// most LimitNameLength bytes of printable ASCII without spaces.
	Version string

	// NamespaceTTL gives namespaces a time to live: a result older than
	// its namespace's TTL is not served, from memory or from a Tier, and is
	// computed again. Namespaces not listed keep results until evicted.
	NamespaceTTL map[string]time.Duration

	// Tiers are stores behind the memory cache, nearest first: a disk for
	// results that outlive the process, a shared store for results
	// computed on other machines. See Tier. With tiers, Secret must be set
	// (a disk tier keeps one; a shared tier hands the same one to every
	// machine), or the keys would change with every process.
	Tiers []Tier

	// CloseGrace is how long Close lets running computations finish before
	// cancelling their contexts. Zero means Close waits for them as long as
	// they take; a negative value cancels them at once.
	CloseGrace time.Duration
}

// Upper bounds of the Options fields, checked by New. They are far above any
// sensible setting and exist so that a typo or an unchecked flag fails with
// an error that names the limit, instead of exhausting memory.
const (
	// LimitWorkers bounds Options.Workers: each worker is a goroutine.
	LimitWorkers = 1 << 16
	// LimitQueueSize bounds Options.QueueSize.
	LimitQueueSize = 1 << 24
	// LimitInputSize bounds Options.MaxInputSize (1 GiB): every queued
	// input is copied once.
	LimitInputSize = 1 << 30
	// LimitResultSize bounds Options.MaxResultSize (1 GiB).
	LimitResultSize = 1 << 30
	// LimitCacheBytes bounds Options.CacheBytes (1 TiB).
	LimitCacheBytes = 1 << 40
	// LimitCachedErrors bounds Options.MaxCachedErrors.
	LimitCachedErrors = 1 << 24
)

const (
	defaultQueueSize       = 1024
	defaultMaxInputSize    = 64 << 10
	defaultMaxResultSize   = 64 << 10
	defaultCacheBytes      = 1 << 30
	defaultMaxCachedErrors = 4096
)

// withDefaults validates o and fills in its zero fields.
func (o Options) withDefaults() (Options, error) {
	bad := func(field string, v any, allowed string) error {
		return fmt.Errorf("coalesce: Options.%s is %v; %s", field, v, allowed)
	}
	type field struct {
		name  string
		v     int64
		limit int64
		zero  string
		unit  string // " bytes" for a size
	}
	for _, f := range []field{
		{"Workers", int64(o.Workers), LimitWorkers, "zero for GOMAXPROCS", ""},
		{"QueueSize", int64(o.QueueSize), LimitQueueSize, "zero for 1024", ""},
		{"MaxInputSize", int64(o.MaxInputSize), LimitInputSize, "zero for 64 KiB", " bytes"},
		{"MaxResultSize", int64(o.MaxResultSize), LimitResultSize, "zero for 64 KiB", " bytes"},
		{"CacheBytes", o.CacheBytes, LimitCacheBytes, "zero for 1 GiB", " bytes"},
		{"MaxCachedErrors", int64(o.MaxCachedErrors), LimitCachedErrors, "zero for 4096", ""},
		{"MaxOverdue", int64(o.MaxOverdue), LimitWorkers, "zero to never replace a stuck worker", ""},
	} {
		if f.v < 0 || f.v > f.limit {
			return o, bad(f.name, f.v, fmt.Sprintf("it must be from 1 to %s, or %s", humanSize(f.limit, f.unit != ""), f.zero))
		}
	}
	switch {
	case o.Policy != S3FIFO && o.Policy != LRU:
		return o, bad("Policy", o.Policy, "use S3FIFO or LRU")
	case o.TaskTimeout < 0:
		return o, bad("TaskTimeout", o.TaskTimeout, "it must be positive, or zero for no timeout")
	case o.ErrorTTL < 0:
		return o, bad("ErrorTTL", o.ErrorTTL, "it must be positive, or zero to never cache errors")
	case o.Secret != nil && len(o.Secret) != keyhash.SecretSize:
		return o, bad("Secret", fmt.Sprintf("%d bytes long", len(o.Secret)), fmt.Sprintf("it must be exactly %d bytes, or nil for a random one", keyhash.SecretSize))
	case len(o.Tiers) > 0 && o.Secret == nil:
		return o, bad("Secret", "nil with Options.Tiers", "a Group with tiers needs a fixed secret, so that its keys mean the same in the next process and on other machines: the disk tier's Secret(), or the cluster tier's SharedSecret")
	}
	if err := checkName("version", o.Version); err != nil {
		return o, fmt.Errorf("coalesce: Options.Version: %w", err)
	}
	for i, t := range o.Tiers {
		if t == nil {
			return o, bad("Tiers", fmt.Sprintf("a list whose tier %d is nil", i), "every tier must be non-nil")
		}
	}
	for name, ttl := range o.NamespaceTTL {
		if err := checkName("namespace", name); err != nil {
			return o, fmt.Errorf("coalesce: Options.NamespaceTTL: %w", err)
		}
		if ttl < 0 {
			return o, bad("NamespaceTTL", fmt.Sprintf("%v for namespace %q", ttl, name), "a TTL must be positive, or zero for none")
		}
	}
	// The Group keeps its own copies: a caller changing them later must
	// not change what the Group does.
	o.Tiers = append([]Tier(nil), o.Tiers...)
	if o.NamespaceTTL != nil {
		ttls := make(map[string]time.Duration, len(o.NamespaceTTL))
		for k, v := range o.NamespaceTTL {
			ttls[k] = v
		}
		o.NamespaceTTL = ttls
	}
	if o.Workers == 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.QueueSize == 0 {
		o.QueueSize = defaultQueueSize
	}
	if o.MaxInputSize == 0 {
		o.MaxInputSize = defaultMaxInputSize
	}
	if o.MaxResultSize == 0 {
		o.MaxResultSize = defaultMaxResultSize
	}
	if o.CacheBytes == 0 {
		o.CacheBytes = defaultCacheBytes
	}
	if o.MaxCachedErrors == 0 {
		o.MaxCachedErrors = defaultMaxCachedErrors
	}
	return o, nil
}

// humanSize writes a limit in binary units when it is a round one.
func humanSize(n int64, bytes bool) string {
	if !bytes {
		return fmt.Sprint(n)
	}
	for _, u := range []struct {
		shift uint
		name  string
	}{{40, "TiB"}, {30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d %s (%d bytes)", n>>u.shift, u.name, n)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}
