package coalesce

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coalesce-go/coalesce/internal/keyhash"
)

// A Namespace is a Group seen from one namespace and one version of the
// computation. Every request belongs to one; the Group's own methods use
// the default namespace "" with Options.Version. The namespace and the
// version are hashed into every key, so results of one are never served
// for another, and bumping the version makes every older result
// unreachable at once: the memory cache evicts them in time, and a Tier
// can delete them outright. A namespace may have a TTL
// (Options.NamespaceTTL) after which its results go stale.
//
// All namespaces share the Group's Func, workers, queue and cache budget:
// a namespace separates results (tenants, or kinds of request that the
// Func tells apart by input), not capacity. The Func learns a request's
// namespace and version from its context with RequestScope.
//
// A Namespace is safe for concurrent use and lives as long as its Group.
type Namespace struct {
	g       *Group
	name    string
	version string
	ttl     time.Duration
	hasher  keyhash.Hasher
	// mix is xored into the memory cache's keys, so that a key looked up
	// (PeekKey) in another namespace finds nothing there: the memory
	// cache is shared, and values of namespaces with a TTL carry a trailer
	// that others must never be handed.
	mix keyhash.Key
	// gen is bumped by Forget; it is mixed into the memory cache's keys
	// only, so that the tiers' keys stay what they were.
	gen atomic.Uint64
}

// LimitNamespaces bounds the namespace-and-version pairs a Group serves:
// each costs a little memory for the life of the Group, and a client
// that sends a new version with every request must not grow it without
// end.
const LimitNamespaces = 4096

// LimitNameLength bounds a namespace's name and a version's length.
const LimitNameLength = 128

// ErrBadNamespace is returned, wrapped, for a namespace or version that
// is malformed, or one too many.
var ErrBadNamespace = errors.New("coalesce: bad namespace or version")

// checkName checks a namespace or a version: up to LimitNameLength bytes
// of printable ASCII without spaces, so that it can travel in a header, a
// file name or a Redis key unescaped; and no namespace called "_", the
// name under which the daemon's routes and tools take the default one.
func checkName(what, s string) error {
	if what == "namespace" && s == "_" {
		return fmt.Errorf("%w: the namespace %q is reserved: the daemon and its tools name the default namespace (\"\") so", ErrBadNamespace, s)
	}
	if len(s) > LimitNameLength {
		return fmt.Errorf("%w: the %s is %d bytes long; at most %d are allowed", ErrBadNamespace, what, len(s), LimitNameLength)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("%w: the %s %q has byte %#x at %d; printable ASCII without spaces is allowed", ErrBadNamespace, what, s, c, i)
		}
	}
	return nil
}

// namespaces holds a Group's Namespace handles.
type namespaces struct {
	mu sync.Mutex
	m  map[[2]string]*Namespace
}

// newNamespace makes the handle for name and version; g.opts is final.
func (g *Group) newNamespace(master keyhash.Hasher, name, version string) *Namespace {
	// Length-prefixed, so that ("a", "bc") and ("ab", "c") differ.
	b := make([]byte, 0, 16+len(name)+len(version))
	b = binary.AppendUvarint(b, uint64(len(name)))
	b = append(b, name...)
	b = binary.AppendUvarint(b, uint64(len(version)))
	b = append(b, version...)
	h := master.Derive(b)
	return &Namespace{g: g, name: name, version: version, ttl: g.opts.NamespaceTTL[name], hasher: h, mix: h.Sum([]byte("memory"))}
}

// Namespace returns the handle of a namespace and a version of the
// computation ("" for the default namespace, or for Options.Version).
// It fails with ErrBadNamespace for a malformed name or version, or once
// the Group serves LimitNamespaces pairs.
func (g *Group) Namespace(name, version string) (*Namespace, error) {
	if g.fn == nil {
		return nil, ErrNotInitialized
	}
	if version == "" {
		version = g.opts.Version
	}
	if err := checkName("namespace", name); err != nil {
		return nil, err
	}
	if err := checkName("version", version); err != nil {
		return nil, err
	}
	if name == g.def.name && version == g.def.version {
		return g.def, nil
	}
	g.spaces.mu.Lock()
	defer g.spaces.mu.Unlock()
	k := [2]string{name, version}
	if n := g.spaces.m[k]; n != nil {
		return n, nil
	}
	if len(g.spaces.m)+1 >= LimitNamespaces {
		return nil, fmt.Errorf("%w: the Group serves %d namespace and version pairs already, the most it may (LimitNamespaces)", ErrBadNamespace, LimitNamespaces-1)
	}
	if g.spaces.m == nil {
		g.spaces.m = make(map[[2]string]*Namespace)
	}
	n := g.newNamespace(g.hasher, name, version)
	g.spaces.m[k] = n
	return n, nil
}

// Name returns the namespace's name, "" for the default one.
func (n *Namespace) Name() string { return n.name }

// Version returns the version of the computation the handle serves.
func (n *Namespace) Version() string { return n.version }

// TTL returns how long the namespace's results stay fresh; zero for ever.
func (n *Namespace) TTL() time.Duration { return n.ttl }

// Forget makes every result of the namespace and version cached in this
// Group's memory unreachable at once; the memory cache evicts them in
// time. It does not touch the tiers, whose own commands delete a
// namespace there (the disk tier's DeleteNamespace, say), nor calls
// already running, whose results are still delivered and cached.
func (n *Namespace) Forget() {
	n.gen.Add(1)
}

// ForgetNamespace is Forget for every version of the namespace that the
// Group has served.
func (g *Group) ForgetNamespace(name string) {
	if g.def == nil {
		return
	}
	if g.def.name == name {
		g.def.Forget()
	}
	g.spaces.mu.Lock()
	defer g.spaces.mu.Unlock()
	for k, n := range g.spaces.m {
		if k[0] == name {
			n.Forget()
		}
	}
}

// memKey turns a tier key into the memory cache's key for the current
// generation.
func (n *Namespace) memKey(tk keyhash.Key) keyhash.Key {
	tk.Hi ^= n.mix.Hi
	tk.Lo ^= n.mix.Lo
	if g := n.gen.Load(); g != 0 {
		tk.Hi ^= g * 0x9e3779b97f4a7c15 // a fixed odd multiplier spreads small counts over all bits
		tk.Lo ^= g * 0xc2b2ae3d27d4eb4f
	}
	return tk
}

// key checks a request and returns its input's tier key and memory key.
func (n *Namespace) key(input []byte) (tk, mk keyhash.Key, err error) {
	g := n.g
	if err := g.checkInput(input); err != nil {
		return tk, mk, err
	}
	if g.closed.Load() {
		return tk, mk, ErrClosed
	}
	tk = n.hasher.Sum(input)
	return tk, n.memKey(tk), nil
}

// expiryTrailer is the size of the expiry a namespace with a TTL appends
// to each value it caches in memory.
const expiryTrailer = 8

// fromMemory reads mk from the memory cache, dropping a value whose TTL
// has passed.
func (n *Namespace) fromMemory(mk keyhash.Key) ([]byte, bool) {
	v, ok := n.g.store.Get(mk, nil)
	if !ok || n.ttl <= 0 {
		return v, ok
	}
	return n.fresh(mk, v)
}

// fresh strips a cached value's expiry, or deletes the value if it has
// passed.
func (n *Namespace) fresh(mk keyhash.Key, v []byte) ([]byte, bool) {
	if len(v) < expiryTrailer {
		return nil, false // cached before the namespace had a TTL: cannot happen, TTLs are fixed at New
	}
	at := int64(binary.LittleEndian.Uint64(v[len(v)-expiryTrailer:]))
	if time.Now().UnixNano() >= at {
		n.g.store.Delete(mk)
		return nil, false
	}
	v = v[: len(v)-expiryTrailer : len(v)-expiryTrailer]
	return v, true
}

// expiry is when a result computed now goes stale; zero for never.
func (n *Namespace) expiry() time.Time {
	if n.ttl <= 0 {
		return time.Time{}
	}
	return time.Now().Add(n.ttl)
}

// scopeKey carries a computation's namespace and version to its Func.
type scopeKey struct{}

// scopedContext is a computation's context that also answers scopeKey
// with the computation's Namespace.
type scopedContext struct {
	context.Context
	ns *Namespace
}

func (c *scopedContext) Value(key any) any {
	if _, ok := key.(scopeKey); ok {
		return c.ns
	}
	return c.Context.Value(key)
}

// Scope names the namespace and version of the computation a Func runs.
type Scope struct {
	Namespace, Version string
}

// RequestScope returns the namespace and version of the computation whose
// context ctx is: a Func serving several namespaces or versions reads them
// here. ok is false for a context that did not come from a Group.
func RequestScope(ctx context.Context) (Scope, bool) {
	n, ok := ctx.Value(scopeKey{}).(*Namespace)
	if !ok {
		return Scope{}, false
	}
	return Scope{Namespace: n.name, Version: n.version}, true
}
