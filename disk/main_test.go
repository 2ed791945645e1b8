package disk

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The crash and broken-engine tests re-execute this binary as a child.
	if os.Getenv(crashChildEnv) == "1" {
		crashChild()
		return
	}
	if os.Getenv(brokenChildEnv) == "1" {
		brokenChild()
		return
	}
	goleak.VerifyTestMain(m)
}
