//go:build unix

package executor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The example workers under examples/ compute sha256 in hex and refuse an
// empty input; both are run here through the pool, as the daemon runs them.
func TestExampleWorkers(t *testing.T) {
	t.Run("go", func(t *testing.T) {
		bin := filepath.Join(t.TempDir(), "worker-go")
		build := exec.Command("go", "build", "-o", bin, ".")
		build.Dir = filepath.Join("..", "..", "examples", "worker-go")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build examples/worker-go: %v\n%s", err, out)
		}
		testExampleWorker(t, []string{bin})
	})
	t.Run("python", func(t *testing.T) {
		python, err := exec.LookPath("python3")
		if err != nil {
			t.Skip("python3 is not installed: the Python example worker is not tested")
		}
		script, err := filepath.Abs(filepath.Join("..", "..", "examples", "worker-python", "worker.py"))
		if err != nil {
			t.Fatal(err)
		}
		testExampleWorker(t, []string{python, script})
	})
}

func testExampleWorker(t *testing.T, command []string) {
	logs := &syncBuffer{}
	p, err := NewProcess(ProcessOptions{
		Command: command,
		Workers: 2,
		Logger:  slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	defer func() {
		if t.Failed() {
			t.Logf("pool log:\n%s", logs)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				in := []byte(fmt.Sprintf("input %d/%d %s", g, i, strings.Repeat("x", i*100)))
				sum := sha256.Sum256(in)
				out, err := p.Compute(ctx, in)
				if err != nil || string(out) != hex.EncodeToString(sum[:]) {
					t.Errorf("Compute(%.20q) = %q, %v; want its sha256", in, out, err)
					return
				}
			}
		})
	}
	wg.Wait()

	_, err = p.Compute(ctx, nil)
	var we *WorkerError
	if !errors.As(err, &we) || !strings.Contains(we.Message, "empty input") {
		t.Errorf("empty input: %v; want a *WorkerError about it", err)
	}
	big := make([]byte, 1<<20)
	sum := sha256.Sum256(big)
	if out, err := p.Compute(ctx, big); err != nil || string(out) != hex.EncodeToString(sum[:]) {
		t.Errorf("a 1 MiB input: %q, %v", out, err)
	}
	if n := len(livePIDs(p)); n != 2 {
		t.Errorf("%d live workers after the run; want the 2 started (none replaced)", n)
	}
}
