package executor

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain runs the test binary as a worker process when the process tests
// start it with testWorkerEnv set (see testworker_test.go); otherwise it
// runs the tests and fails the package if any leaves a goroutine behind.
func TestMain(m *testing.M) {
	if mode := os.Getenv(testWorkerEnv); mode != "" {
		os.Exit(runTestWorker(mode))
	}
	goleak.VerifyTestMain(m)
}
