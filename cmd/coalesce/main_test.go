package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coalesce-go/coalesce/cmd/coalesce/internal/sim"
	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine running. With
// COALESCE_TEST_RUN_MAIN=1 in its environment, the test binary is the
// command instead: the daemon's integration tests start it that way, as a
// real process, without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("COALESCE_TEST_RUN_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

// TestSimInterruptReportedOnce sends the process a real SIGINT when the
// second design starts, and waits for the run's context to end before
// letting that design run, so the interruption lands there whatever the
// timing. The first design's results must be printed and written, and the
// interruption reported once, with the shell's status for Ctrl-C.
func TestSimInterruptReportedOnce(t *testing.T) {
	report := filepath.Join(t.TempDir(), "r.html")
	simTestHook = func(ctx context.Context, cfg *sim.Config) {
		cfg.Progress = &interruptAt{design: "coalesce", ctx: ctx, t: t}
	}
	defer func() { simTestHook = nil }()
	var stdout, stderr bytes.Buffer
	code := run([]string{"sim", "--designs", "none,coalesce", "--duration", "50ms", "--keys", "20",
		"--task-min", "1ms", "--task-max", "2ms", "--report", report}, &stdout, &stderr)
	if code != exitInterrupted {
		t.Errorf("exit %d; want %d", code, exitInterrupted)
	}
	want := "coalesce sim: interrupted during design coalesce; the results above are of the one design that finished before it\n"
	if stderr.String() != want {
		t.Errorf("stderr %q; want exactly %q", stderr.String(), want)
	}
	if !strings.Contains(stdout.String(), "\n    none ") || strings.Contains(stdout.String(), "\ncoalesce ") {
		t.Errorf("stdout has not the finished design alone:\n%s", stdout.String())
	}
	if _, err := os.Stat(report); err != nil {
		t.Errorf("the report of the finished design: %v", err)
	}
}

// interruptAt is a sim.Progress that interrupts the process when design
// starts.
type interruptAt struct {
	design string
	ctx    context.Context
	t      *testing.T
}

func (p *interruptAt) Start(design string, total int) {
	if design != p.design {
		return
	}
	self, err := os.FindProcess(os.Getpid())
	if err == nil {
		err = self.Signal(os.Interrupt)
	}
	if err != nil {
		p.t.Skipf("cannot interrupt the process on this system: %v", err)
	}
	select {
	case <-p.ctx.Done():
	case <-time.After(time.Minute):
		p.t.Error("SIGINT did not cancel the run")
	}
}

func (p *interruptAt) Set(int) {}
func (p *interruptAt) End()    {}
