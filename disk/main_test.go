package disk

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The crash test re-executes this binary as the process it kills.
	if os.Getenv(crashChildEnv) == "1" {
		crashChild()
		return
	}
	goleak.VerifyTestMain(m)
}
