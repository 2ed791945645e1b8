package replay

import "github.com/maypok86/otter/v2"

// newOtter returns otter v2 bounded to capacity entries. Its maintenance
// (applying buffered reads and writes to the policy, evicting) normally runs
// on another goroutine, so a replay would depend on scheduling and could
// briefly exceed the bound; a synchronous executor runs it inline, as
// otter's own hit-ratio simulator does. What remains random per process is
// otter's hash seed and its admission jitter against hash flooding, worth
// a few hundredths of a percent.
func newOtter(capacity int) (Policy, error) {
	c, err := otter.New(&otter.Options[uint64, struct{}]{
		MaximumSize:     capacity,
		InitialCapacity: min(capacity, 1<<20),
		Executor:        func(fn func()) { fn() },
	})
	if err != nil {
		return nil, err
	}
	return PolicyFunc(func(key uint64) bool {
		if _, ok := c.GetIfPresent(key); ok {
			return true
		}
		c.Set(key, struct{}{})
		return false
	}), nil
}
