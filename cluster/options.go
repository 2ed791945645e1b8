package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Options configures a Tier. The zero value of every field but Addr (or
// URL) is a documented default.
type Options struct {
	// Addr is the Redis server's host:port. One of Addr and URL is
	// required. A Redis Cluster is found from any of its nodes.
	Addr string
	// URL is the server as redis://[user:password@]host:port[/db] (or
	// rediss:// for TLS), instead of Addr.
	URL string

	// Prefix starts every key this package writes, so that several
	// deployments can share one Redis. Default "coalesce:". It may not
	// contain '{' or '}', which Redis Cluster reads as a hash tag.
	Prefix string

	// LeaseTTL bounds how long a node may hold an input's lease, whatever
	// happens to it: past it, another node may compute. It is a backstop
	// for a live node whose computation hangs; a crashed node is detected
	// sooner, through LivenessTTL. Set it above the computation's
	// Options.TaskTimeout. Default 5 minutes.
	LeaseTTL time.Duration
	// LivenessTTL is how long a node counts as alive after its last
	// refresh: a node that crashed while holding leases loses them to the
	// waiting nodes within LivenessTTL + PollInterval. Default 3 s.
	LivenessTTL time.Duration
	// LivenessRefresh is how often a node refreshes its liveness. Default
	// LivenessTTL/3; it must be below LivenessTTL.
	LivenessRefresh time.Duration
	// PollInterval is how often a node that waits for another's
	// computation reads the input's key again, and checks the owner's
	// liveness, when no invalidation woke it. Default 250 ms.
	PollInterval time.Duration
	// NegativeTTL is how long a failed computation's error is kept for
	// the other nodes' waiters, so that they get the error instead of
	// computing again at once. Default 2 s.
	NegativeTTL time.Duration
	// Timeout bounds each round trip to Redis, and each dial: when Redis
	// is unreachable, Load and Save fail within it and the Group computes
	// locally. Default 250 ms.
	Timeout time.Duration

	// FailClosed makes Load answer with an error wrapping ErrUnavailable
	// when Redis cannot be reached, instead of letting the node compute
	// on its own.
	FailClosed bool

	// Logger receives the Redis errors, at most one line every ten
	// seconds with the count of those left out. Default slog.Default().
	Logger *slog.Logger
}

// Limits of the Options, against typing mistakes (a TTL in nanoseconds
// meant as seconds) more than for the server's sake.
const (
	LimitPrefixLength = 256
	LimitTTL          = 7 * 24 * time.Hour
	minDuration       = time.Millisecond
)

// ErrBadOptions is returned, wrapped, by New for invalid Options.
var ErrBadOptions = errors.New("cluster: bad options")

func (o Options) withDefaults() (Options, error) {
	bad := func(field, why string) error {
		return fmt.Errorf("%w: %s %s", ErrBadOptions, field, why)
	}
	switch {
	case o.Addr == "" && o.URL == "":
		return o, bad("Addr", "is empty: give the Redis server's host:port, or a URL")
	case o.Addr != "" && o.URL != "":
		return o, bad("URL", "is set with Addr: give one of them")
	case o.Addr != "" && !strings.Contains(o.Addr, ":"):
		return o, bad("Addr", fmt.Sprintf("%q has no port: use host:port, such as 127.0.0.1:6379", o.Addr))
	case strings.ContainsAny(o.Prefix, "{}"):
		return o, bad("Prefix", fmt.Sprintf("%q contains a brace: Redis Cluster would read it as a hash tag", o.Prefix))
	case len(o.Prefix) > LimitPrefixLength:
		return o, bad("Prefix", fmt.Sprintf("is %d bytes long; at most %d are allowed", len(o.Prefix), LimitPrefixLength))
	}
	if o.Prefix == "" {
		o.Prefix = "coalesce:"
	}
	durations := []struct {
		name string
		p    *time.Duration
		def  time.Duration
	}{
		{"LeaseTTL", &o.LeaseTTL, 5 * time.Minute},
		{"LivenessTTL", &o.LivenessTTL, 3 * time.Second},
		{"LivenessRefresh", &o.LivenessRefresh, 0},
		{"PollInterval", &o.PollInterval, 250 * time.Millisecond},
		{"NegativeTTL", &o.NegativeTTL, 2 * time.Second},
		{"Timeout", &o.Timeout, 250 * time.Millisecond},
	}
	for _, d := range durations {
		switch {
		case *d.p < 0:
			return o, bad(d.name, fmt.Sprintf("is negative (%v): use 0 for the default", *d.p))
		case *d.p > LimitTTL:
			return o, bad(d.name, fmt.Sprintf("is %v; at most %v is allowed", *d.p, LimitTTL))
		case *d.p > 0 && *d.p < minDuration:
			return o, bad(d.name, fmt.Sprintf("is %v; Redis counts in milliseconds, so at least %v", *d.p, minDuration))
		case *d.p == 0:
			*d.p = d.def
		}
	}
	if o.LivenessRefresh == 0 {
		o.LivenessRefresh = o.LivenessTTL / 3
	}
	if o.LivenessRefresh >= o.LivenessTTL {
		return o, bad("LivenessRefresh", fmt.Sprintf("(%v) is not below LivenessTTL (%v): a live node would be taken for dead between refreshes", o.LivenessRefresh, o.LivenessTTL))
	}
	if o.LeaseTTL < o.LivenessTTL {
		return o, bad("LeaseTTL", fmt.Sprintf("(%v) is below LivenessTTL (%v): leases would lapse before a crash is even detected; set it above the computation's time", o.LeaseTTL, o.LivenessTTL))
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}
