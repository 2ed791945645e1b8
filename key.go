package coalesce

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/coalesce-go/coalesce/internal/keyhash"
)

// Key names an input within one Group: its 128-bit keyed hash. Keys let a
// caller that has handed an input over (to a daemon, say) ask about its
// result later without sending the input again. They are stable only
// between Groups that share Options.Secret; with the default random secret,
// a key means nothing to another process.
type Key struct{ k keyhash.Key }

// String returns the key as 32 lowercase hexadecimal digits.
func (k Key) String() string {
	b := k.Bytes()
	return hex.EncodeToString(b[:])
}

// ErrBadKey is returned, wrapped, by ParseKey.
var ErrBadKey = errors.New("coalesce: malformed key")

// ParseKey parses a key written by Key.String.
func ParseKey(s string) (Key, error) {
	if len(s) != 32 {
		return Key{}, fmt.Errorf("%w: %d characters; a key is 32 hexadecimal digits", ErrBadKey, len(s))
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return Key{}, fmt.Errorf("%w: %q is not hexadecimal; a key is 32 hexadecimal digits", ErrBadKey, s)
	}
	return Key{keyhash.Key{Hi: binary.BigEndian.Uint64(b[:8]), Lo: binary.BigEndian.Uint64(b[8:])}}, nil
}

// KeyOf returns input's key. It fails only for an input that is too large
// or a Group not made by New.
func (g *Group) KeyOf(input []byte) (Key, error) {
	if g.def == nil {
		return Key{}, ErrNotInitialized
	}
	return g.def.KeyOf(input)
}

// KeyOf is Group.KeyOf in the namespace: the same input has a different
// key in each namespace and version. The key does not change with Forget.
func (n *Namespace) KeyOf(input []byte) (Key, error) {
	if err := n.g.checkInput(input); err != nil {
		return Key{}, err
	}
	return Key{n.hasher.Sum(input)}, nil
}

// PeekKey is Peek by key: Ready with the cached value, Pending if a call
// of the input is queued, running or overdue, or Absent. It never waits and
// never starts a computation; a Ready answer counts as an access.
func (g *Group) PeekKey(k Key) (Status, []byte) {
	if g.def == nil {
		return Absent, nil
	}
	return g.def.PeekKey(k)
}

// PeekKey is Group.PeekKey in the namespace.
func (n *Namespace) PeekKey(k Key) (Status, []byte) {
	n.g.stats.peeks.Add(1)
	return n.peek(n.memKey(k.k))
}

// FindKey is PeekKey that also asks the tiers: when memory holds no
// result for k and no call of its input is pending, each of
// Options.Tiers that is a TierPeeker is asked in turn, within ctx, and
// the first result found is returned Ready, with Source Loaded (Hit when
// memory had it). It waits for those reads but never for a computation,
// and starts none. An error a tier keeps for the key (a computation that
// failed in another process) is returned as the error, with Absent; a
// tier that fails is skipped and counted in Stats.TierErrors; ctx's end
// returns its error. A result found in a tier is not copied into memory:
// a request for the input (Get) does that.
func (g *Group) FindKey(ctx context.Context, k Key) (Status, Result, error) {
	if g.def == nil {
		return Absent, Result{}, ErrNotInitialized
	}
	return g.def.FindKey(ctx, k)
}

// FindKey is Group.FindKey in the namespace.
func (n *Namespace) FindKey(ctx context.Context, k Key) (Status, Result, error) {
	if st, v := n.PeekKey(k); st != Absent {
		return st, Result{Value: v, Source: Hit}, nil
	}
	tk := n.tierKey(k.k)
	for _, t := range n.g.opts.Tiers {
		p, ok := t.(TierPeeker)
		if !ok {
			continue
		}
		r, err := peekFrom(p, ctx, tk)
		switch {
		case ctx.Err() != nil:
			return Absent, Result{}, ctx.Err()
		case err != nil:
			n.g.stats.tierErrors.Add(1)
		case r.Found && (r.Expires.IsZero() || time.Now().Before(r.Expires)):
			return Ready, Result{Value: r.Value[:len(r.Value):len(r.Value)], Source: Loaded}, nil
		case r.Err != nil:
			return Absent, Result{}, r.Err
		}
	}
	return Absent, Result{}, nil
}

// peekFrom calls p.Peek, turning a panic into an error.
func peekFrom(p TierPeeker, ctx context.Context, tk TierKey) (r TierResult, err error) {
	defer func() {
		if x := recover(); x != nil {
			r, err = TierResult{}, fmt.Errorf("coalesce: TierPeeker.Peek panicked: %v", x)
		}
	}()
	return p.Peek(ctx, tk)
}

// Lookup answers input from the cache only: a Hit result and true if its
// result is cached, or false, with no computation started and nothing
// counted, if not. It is the fast path for a caller (the daemon) that does
// more work per miss than per hit; the miss then goes to Get. The key is
// returned either way.
func (g *Group) Lookup(input []byte) (Result, Key, bool, error) {
	if g.def == nil {
		return Result{}, Key{}, false, ErrNotInitialized
	}
	return g.def.Lookup(input)
}

// Lookup is Group.Lookup in the namespace. It looks in memory only.
func (n *Namespace) Lookup(input []byte) (Result, Key, bool, error) {
	g := n.g
	tk, k, err := n.key(input)
	if err != nil {
		return Result{}, Key{}, false, err
	}
	// Contains first, so that a miss is not counted as an access here and
	// again by the Get that follows.
	if !g.store.Contains(k) {
		return Result{}, Key{tk}, false, nil
	}
	v, ok := n.fromMemory(k)
	if !ok {
		return Result{}, Key{tk}, false, nil
	}
	g.touch.hit(n, tk)
	g.stats.request(true)
	return Result{Value: v, Source: Hit}, Key{tk}, true, nil
}

// Bytes returns the key as 16 bytes, big-endian: the form a Tier stores.
func (k Key) Bytes() [16]byte {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], k.k.Hi)
	binary.BigEndian.PutUint64(b[8:], k.k.Lo)
	return b
}

// KeyFromBytes is the inverse of Key.Bytes.
func KeyFromBytes(b [16]byte) Key {
	return Key{keyhash.Key{Hi: binary.BigEndian.Uint64(b[:8]), Lo: binary.BigEndian.Uint64(b[8:])}}
}
