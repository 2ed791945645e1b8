package replay

import (
	"fmt"

	"github.com/coalesce-go/coalesce/internal/trace"
)

// Policy is a cache replayed one request at a time.
type Policy interface {
	// Access requests key and reports whether it was cached; on a miss the
	// policy may insert it.
	Access(key uint64) bool
}

// PolicyFunc adapts a function to Policy.
type PolicyFunc func(key uint64) bool

// Access calls f(key).
func (f PolicyFunc) Access(key uint64) bool { return f(key) }

// Names of the policies, in report order. OPT is computed offline and is
// not a Policy.
const (
	Ours  = "ours"
	LRU   = "lru"
	Otter = "otter"
	OPT   = "opt"
)

// online are the policies that replay request by request, with their
// constructors; a capacity is in entries and at least 1.
var online = []struct {
	name string
	new  func(capacity int) (Policy, error)
}{
	{Ours, newOurs},
	{LRU, func(capacity int) (Policy, error) { return trace.NewLRU(capacity), nil }},
	{Otter, newOtter},
}

// Policies returns the names of every policy a replay reports, in order.
func Policies() []string {
	names := make([]string, 0, len(online)+1)
	for _, p := range online {
		names = append(names, p.name)
	}
	return append(names, OPT)
}

func newPolicy(name string, capacity int) (Policy, error) {
	for _, p := range online {
		if p.name == name {
			return p.new(capacity)
		}
	}
	return nil, fmt.Errorf("unknown policy %q", name)
}
