package replay

import (
	"fmt"
	"slices"

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

// Names of the reference policies: classic exact policies that a replay
// runs only when asked, to place ours and LRU among them.
const (
	ARC   = "arc"
	SLRU  = "slru"
	Clock = "clock"
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
	{ARC, func(capacity int) (Policy, error) { return trace.NewARC(capacity), nil }},
	{SLRU, func(capacity int) (Policy, error) { return trace.NewSLRU(capacity), nil }},
	{Clock, func(capacity int) (Policy, error) { return trace.NewClock(capacity), nil }},
}

// Extra lists the policies a replay runs only when named, in the order the
// help gives them; they stay out of Policies so that the default report,
// and the documents quoting it, keep their columns.
var Extra = []string{ARC, SLRU, Clock}

// Policies returns the names of every policy a replay reports by default,
// in order.
func Policies() []string {
	var names []string
	for _, p := range online {
		if !slices.Contains(Extra, p.name) {
			names = append(names, p.name)
		}
	}
	return append(names, OPT)
}

// AllPolicies returns the names of every policy a replay can run: those of
// Policies, then Extra.
func AllPolicies() []string {
	return append(Policies(), Extra...)
}

func newPolicy(name string, capacity int) (Policy, error) {
	for _, p := range online {
		if p.name == name {
			return p.new(capacity)
		}
	}
	return nil, fmt.Errorf("unknown policy %q", name)
}
