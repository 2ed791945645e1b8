package coalesce

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: every
// Group a test makes must be closed, and Close must reap what it started.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
